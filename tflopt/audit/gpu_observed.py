"""What the LiteRT GPU accelerator really takes, observed through ``CompiledModel``.

The whole model: ``is_fully_accelerated()``. Per op: one-op submodels (``submodel.py``),
memoised by op signature. Everything that touches the GPU runtime runs in a child process
(``gpu_worker``): the runtime can crash on some models, and a crash then costs one verdict
("the runtime crashed") instead of the audit.

On a host without a GPU, LiteRT's WebGPU accelerator runs on Mesa's software Vulkan driver
(lavapipe, Mesa 25; see .ci/setup-vulkan).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .submodel import build, distinct_submodels

# Whole-worker limit: lavapipe compiles a shader per kernel on the CPU.
TIMEOUT_S = 900


def runtime_version() -> str:
    from importlib.metadata import version
    return f"ai-edge-litert {version('ai-edge-litert')}"


def _env(tmp: str) -> dict:
    env = dict(os.environ)
    run_dir = env.get("XDG_RUNTIME_DIR")
    if not run_dir or not os.path.isdir(run_dir):
        # Dawn wants a private runtime directory; mkdtemp makes it mode 0700.
        env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="xdg-", dir=tmp)
    return env


def run_jobs(jobs: list[dict], tmp: str) -> tuple[list[dict], str | None]:
    """Results in job order (a job the runtime crashed on gets ``error``), and the Vulkan
    adapter the runtime selected (None if it never said)."""
    results: list[dict] = []
    adapter = None
    pending = list(jobs)
    env = _env(tmp)
    attempt = 0
    while pending:
        attempt += 1
        jobs_path = Path(tmp, f"jobs{attempt}.json")
        res_path = Path(tmp, f"results{attempt}.jsonl")
        jobs_path.write_text(json.dumps(pending))
        res_path.write_text("")
        try:
            proc = subprocess.run([sys.executable, "-m", "tflopt.audit.gpu_worker", str(jobs_path), str(res_path)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT_S)
            err = proc.stderr.decode(errors="replace")
            rc = proc.returncode
        except subprocess.TimeoutExpired as e:
            err = (e.stderr or b"").decode(errors="replace")
            rc = "timeout"
        m = re.search(r"Selected adapter: (.*?), arch=", err)
        if m and adapter is None:
            adapter = m.group(1).strip()
        done = [json.loads(line) for line in res_path.read_text().splitlines() if line.strip()]
        results.extend(done)
        pending = pending[len(done):]
        if pending and rc == 0:
            raise RuntimeError("GPU worker stopped early without an error")
        if pending:
            why = f"signal {-rc}" if isinstance(rc, int) and rc < 0 else f"exit {rc}"
            tail = [l for l in err.splitlines() if "rror" in l][-1:]
            results.append({"path": pending[0]["path"],
                            "error": f"the runtime crashed ({why})" + (f": {tail[0][:200]}" if tail else "")})
            pending = pending[1:]
    return results, adapter


@lru_cache(maxsize=1)
def gpu_available() -> tuple[bool, str]:
    """(whether the GPU accelerator takes a one-layer float model, adapter or why not)."""
    from ..build import mlp
    with tempfile.TemporaryDirectory(prefix="tflopt-gpu-") as tmp:
        path = Path(tmp, "probe.tflite")
        mlp([8, 4]).save(str(path))
        try:
            (res,), adapter = run_jobs([{"path": str(path)}], tmp)
        except (OSError, RuntimeError, ValueError) as e:
            return False, str(e)
    if res.get("fully_accelerated"):
        return True, adapter or "unknown adapter"
    return False, res.get("error") or "no GPU adapter (the probe model stayed on the CPU)"


def _write_samples(path: Path, model, samples: list[list[np.ndarray]]) -> None:
    """Samples in input order, stored by input tensor index (the worker matches them by name)."""
    inputs = model.subgraphs[0].inputs
    np.savez(path, **{f"s_{i}_{t}": np.asarray(x) for i, s in enumerate(samples) for t, x in zip(inputs, s)})


def observe(model, *, samples: list[list[np.ndarray]] | None = None, per_op: bool = True) -> dict:
    """{"runtime", "adapter", "fully_accelerated", "error", "ops": {op index: (taken, why)}
    for subgraph 0, "numerics"}; ``samples`` (input lists) adds GPU-vs-CPU numerics."""
    with tempfile.TemporaryDirectory(prefix="tflopt-gpu-") as tmp:
        whole = Path(tmp, "model.tflite")
        whole.write_bytes(model.to_bytes())
        job = {"path": str(whole)}
        if samples:
            _write_samples(Path(tmp, "samples.npz"), model, samples)
            job["samples"] = str(Path(tmp, "samples.npz"))
        jobs = [job]
        groups, of_op, folded = distinct_submodels(model, 0) if per_op else ({}, {}, {})
        keys = sorted(groups)
        for k in keys:
            p = Path(tmp, f"op_{k}.tflite")
            p.write_bytes(build(model, 0, groups[k]).to_bytes())
            jobs.append({"path": str(p)})
        results, adapter = run_jobs(jobs, tmp)
    head = results[0]
    by_key = dict(zip(keys, results[1:]))
    ops = {}
    for i, k in of_op.items():
        if i in folded:
            ops[i] = (None, f"folded into #{folded[i]}'s weights (observed with it)")
            continue
        if k is None:
            ops[i] = (None, "cannot be compiled on its own (control flow)")
            continue
        r = by_key[k]
        if "error" in r:
            ops[i] = (False, f"one-op model fails: {r['error']}")
        else:
            ops[i] = (bool(r["fully_accelerated"]), "one-op model " +
                      ("fully accelerated" if r["fully_accelerated"] else "not fully accelerated"))
    return {"runtime": runtime_version(), "adapter": adapter, "fully_accelerated": head.get("fully_accelerated"),
            "error": head.get("error"), "ops": ops, "numerics": head.get("numerics"),
            "numerics_error": head.get("numerics_error"),
            "distinct_submodels": len(keys)}
