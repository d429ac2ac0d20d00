"""Child process for the LiteRT GPU accelerator: ``python -m tflopt.audit.gpu_worker JOBS RESULTS``.

The GPU runtime can crash the process on some models (a segfault compiling gru_int8), so the
parent (``tflopt.audit.litert_gpu``) runs compilation here and reads one JSON line per job
from RESULTS, written and flushed as each job finishes: the job a crash interrupts is the
first one without a line.

JOBS is a JSON list of {"path": model, "samples": .npz or null}. A result line holds
``fully_accelerated`` (or ``error``), and with samples, per output the GPU-vs-CPU metrics.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np


def _compile(path: str, accel, env):
    from ai_edge_litert.compiled_model import CompiledModel
    return CompiledModel.from_file(path, hardware_accel=accel, environment=env)


def _run(model, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    key = next(iter(model.get_signature_list()))
    ins = model.get_input_tensor_details(key)
    outs = model.get_output_tensor_details(key)
    ib = {n: model.create_input_buffer_by_name(key, n) for n in ins}
    ob = {n: model.create_output_buffer_by_name(key, n) for n in outs}
    results = []
    for sample in samples:
        for (name, d), x in zip(ins.items(), sample):
            ib[name].write(np.ascontiguousarray(np.asarray(x, d["dtype"]).reshape(d["shape"])))
        model.run_by_name(key, ib, ob)
        results.append([ob[n].read(int(np.prod(d["shape"])), np.dtype(d["dtype"])).reshape(d["shape"])
                        for n, d in outs.items()])
    return results, list(outs)


def _numerics(path: str, gpu_model, env, samples_path: str) -> dict:
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator as HA

    from ..compare import metrics
    loaded = np.load(samples_path, allow_pickle=False)
    names = sorted(loaded.keys(), key=lambda k: int(k.split("_")[1]))
    n_inputs = len({k.split("_")[2] for k in names})
    count = len(names) // max(n_inputs, 1)
    samples = [[loaded[f"s_{i}_{j}"] for j in range(n_inputs)] for i in range(count)]
    gpu, out_names = _run(gpu_model, samples)
    cpu, _ = _run(_compile(path, HA.CPU, env), samples)
    out = []
    for k, name in enumerate(out_names):
        ref = np.concatenate([np.asarray(c[k], np.float64).ravel() for c in cpu])
        got = np.concatenate([np.asarray(g[k], np.float64).ravel() for g in gpu])
        m = metrics(ref, got)
        m["finite"] = bool(np.isfinite(got).all())
        out.append({"name": name, **m})
    return {"samples": count, "outputs": out}


def main(jobs_path: str, results_path: str) -> int:
    from ai_edge_litert.environment import Environment
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator as HA
    jobs = json.loads(open(jobs_path).read())
    env = Environment.create()
    with open(results_path, "a") as res:
        for job in jobs:
            out: dict = {"path": job["path"]}
            try:
                model = _compile(job["path"], HA.GPU | HA.CPU, env)
                out["fully_accelerated"] = model.is_fully_accelerated()
            except Exception as e:  # noqa: BLE001 - a model the runtime refuses is an observation
                out["error"] = _message(e)
            if job.get("samples") and "error" not in out:
                try:
                    out["numerics"] = _numerics(job["path"], model, env, job["samples"])
                except Exception as e:  # noqa: BLE001 - e.g. buffers of a partly accelerated model
                    out["numerics_error"] = _message(e)
            res.write(json.dumps(out) + "\n")
            res.flush()
    return 0


def _message(e: Exception) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__


if __name__ == "__main__":
    rc = main(*sys.argv[1:3])
    sys.stdout.flush()
    sys.stderr.flush()
    # The runtime's threads can hang interpreter shutdown; every result is written already.
    os._exit(rc)
