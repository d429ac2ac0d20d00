"""Latency of whole models on this host through the LiteRT runtime, as an app runs them.

Each configuration runs in a child process (``python -m tflopt.evaluation.bench``), so the
peak memory reported is that run's own (``ru_maxrss`` of the child, and what the model
added over the interpreter's import) and one configuration cannot warm another's caches.
Timing is ``perf_counter`` around ``invoke()`` with the inputs already set, as LiteRT's
``litert-benchmark`` times ``run_by_name``.

The Python runtime exposes no per-op profiler (ai_edge_litert's Interpreter has no profiling
API; only the C++ benchmark tool has ``--enable_op_profiling``), so there are no per-op
times here. What it does expose is which nodes a delegate replaced: the share of ops
XNNPACK took is read from the delegate nodes' partitions.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from .. import runtime
from ..errors import TfloptError

PER_OP_NOTE = ("per-op times are not available: ai_edge_litert's Python runtime has no profiler API "
               "(the C++ benchmark_model tool's --enable_op_profiling has one)")


def default_threads() -> list[int]:
    """1 and all cores (once if they are the same)."""
    return sorted({1, runtime.cores()})


def _percentile(sorted_ms: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(sorted_ms), q)) if sorted_ms else float("nan")


def summarize(times_ms: list[float]) -> dict:
    """median, p90, p99, min, max, mean and spread (p90 - min, relative to the median)."""
    t = sorted(times_ms)
    med = statistics.median(t)
    return {"runs": len(t), "median_ms": med, "p90_ms": _percentile(t, 90), "p99_ms": _percentile(t, 99),
            "min_ms": t[0], "max_ms": t[-1], "mean_ms": statistics.fmean(t),
            "spread": (_percentile(t, 90) - t[0]) / med if med > 0 else 0.0}


def bench_model(model, *, threads: int = 1, xnnpack: bool = True, runs: int = 50, warmup: int = 5, data=None,
                input_shapes: dict | None = None, accelerator: str = "cpu", seed: int = 0,
                timeout: float = 600) -> dict:
    """Benchmark one model (a path) in one configuration in a child process.

    ``accelerator``: "cpu" (Interpreter; XNNPACK unless ``xnnpack=False``) or "gpu" (LiteRT's
    CompiledModel with the GPU accelerator, CPU fallback). Returns the ``summarize`` figures
    plus ``init_ms``, ``peak_rss_bytes``, ``model_rss_bytes``, ``ops``, ``delegated`` (per
    delegate: ops taken, share, partitions), the configuration, and ``error`` instead of
    figures when the configuration cannot run (e.g. no GPU)."""
    path = Path(model)
    if not path.is_file():
        raise TfloptError(f"{path}: no such model file")
    job = {"model": str(path), "threads": int(threads), "xnnpack": bool(xnnpack), "runs": int(runs),
           "warmup": int(warmup), "data": None if data is None else str(data), "input_shapes": input_shapes or {},
           "accelerator": accelerator, "seed": seed}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        proc = subprocess.run([sys.executable, "-m", "tflopt.evaluation.bench"], input=json.dumps(job),
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**_config(job), "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " ".join((proc.stderr or "").strip().splitlines()[-1:])[:200]
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        return {**_config(job), "error": f"the run failed ({why}): {tail}"}
    result = json.loads(lines[-1])
    if "error" in result:
        return {**_config(job), "error": result["error"]}
    return {**_config(job), **summarize(result.pop("times_ms")), **result}


def _config(job: dict) -> dict:
    label = "gpu" if job["accelerator"] == "gpu" else ("xnnpack" if job["xnnpack"] else "builtin")
    return {"model": job["model"], "backend": label, "threads": job["threads"]}


def bench_models(models: list, *, threads: list[int] | None = None, xnnpack: bool = True, gpu: bool = False,
                 **kw) -> dict:
    """Every model in every configuration, with each figure's ratio to the first model's in
    the same configuration: {"results": [...], "gpu": status, "per_op": note}."""
    configs = [("cpu", t) for t in (threads or default_threads())]
    if gpu:
        configs.append(("gpu", 1))
    results, first = [], {}
    for i, m in enumerate(models):
        for accel, t in configs:
            r = bench_model(m, threads=t, xnnpack=xnnpack, accelerator=accel, **kw)
            key = (r["backend"], r["threads"])
            if i == 0:
                first[key] = r
            ref = first.get(key)
            if ref and "median_ms" in ref and "median_ms" in r and ref["median_ms"] > 0:
                r["ratio"] = r["median_ms"] / ref["median_ms"]
            results.append(r)
    out = {"results": results, "per_op": PER_OP_NOTE}
    if gpu:
        errs = [r["error"] for r in results if r["backend"] == "gpu" and "error" in r]
        out["gpu"] = "not available: " + errs[0] if errs else gpu_note()
    return out


def gpu_note() -> str:
    """What the GPU row means on this host: LiteRT's WebGPU accelerator also runs on a software
    adapter, so without a GPU device node the figures are not a GPU's."""
    if sys.platform.startswith("linux") and not Path("/dev/dri").exists():
        return ("LiteRT GPU accelerator (WebGPU) ran, but this host has no GPU device (/dev/dri): "
                "it ran on a software adapter, these are not GPU figures")
    return "LiteRT GPU accelerator (WebGPU)"


# -- the child ------------------------------------------------------------------------------
def _delegated(interp) -> dict:
    """Per delegate kind, the original ops its nodes replaced: walk back from each delegate
    node's outputs to its inputs through the ops that produce them."""
    ops = interp._get_ops_details()
    originals = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {t: o["index"] for o in originals for t in o["outputs"]}
    taken: set[int] = set()
    partitions = 0
    for d in (o for o in ops if o["op_name"] == "DELEGATE"):
        partitions += 1
        boundary = set(int(t) for t in d["inputs"])
        stack = [int(t) for t in d["outputs"]]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if t in seen or t in boundary or t not in producer:
                continue
            seen.add(t)
            op = producer[t]
            if op not in taken:
                taken.add(op)
                stack.extend(int(x) for x in ops[op]["inputs"] if x >= 0)
    n = len(originals)
    return {"ops": n, "delegated": {"xnnpack": {"ops": len(taken), "share": len(taken) / n if n else 0.0,
                                                "partitions": partitions}} if partitions else {}}


def _inputs(details: list[dict], data, seed: int) -> list[np.ndarray]:
    from .compare import from_float, load_samples
    if data:
        sample = load_samples(data, details, 1)[0]
        return [from_float(np.asarray(x), d) for x, d in zip(sample, details)]
    rng = np.random.default_rng(seed)
    return [runtime.random_input(d, rng) for d in details]


def _rss() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _child(job: dict) -> dict:
    import time

    import ai_edge_litert.interpreter  # noqa: F401  (imported before the baseline)
    base = _rss()
    runs, warmup = max(1, job["runs"]), max(0, job["warmup"])
    times = []
    if job["accelerator"] == "gpu":
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator as HW
        t0 = time.perf_counter()
        try:
            cm = CompiledModel.from_file(job["model"], hardware_accel=HW.GPU)
        except Exception as e:  # the runtime raises plain RuntimeError / ValueError texts
            return {"error": f"GPU: not available ({' '.join(str(e).split())[:160]})"}
        init_ms = (time.perf_counter() - t0) * 1000
        ins, outs = cm.create_input_buffers(0), cm.create_output_buffers(0)
        for _ in range(warmup):
            cm.run_by_index(0, ins, outs)
        for _ in range(runs):
            t0 = time.perf_counter()
            cm.run_by_index(0, ins, outs)
            times.append((time.perf_counter() - t0) * 1000)
        extra = {"fully_accelerated": bool(cm.is_fully_accelerated())}
    else:
        content = Path(job["model"]).read_bytes()
        t0 = time.perf_counter()
        interp = runtime.interpreter(content, xnnpack=job["xnnpack"], num_threads=job["threads"],
                                     input_shapes=job["input_shapes"] or None)
        init_ms = (time.perf_counter() - t0) * 1000
        details = interp.get_input_details()
        for d, x in zip(details, _inputs(details, job["data"], job["seed"])):
            if list(x.shape) != list(d["shape"]):
                interp.resize_tensor_input(d["index"], list(x.shape))
                interp.allocate_tensors()
            interp.set_tensor(d["index"], x)
        for _ in range(warmup):
            interp.invoke()
        for _ in range(runs):
            t0 = time.perf_counter()
            interp.invoke()
            times.append((time.perf_counter() - t0) * 1000)
        extra = _delegated(interp)
    peak = _rss()
    return {"times_ms": times, "init_ms": init_ms, "peak_rss_bytes": peak, "model_rss_bytes": max(0, peak - base),
            **extra}


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        out = _child(job)
    except (TfloptError, ValueError, RuntimeError) as e:
        out = {"error": " ".join(str(e).split())[:300]}
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
