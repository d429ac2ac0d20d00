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


# Everything native stays referenced until os._exit: a runtime object destroyed after a failed
# call can deadlock in its destructor.
_KEEP: list = []


def _compile(path: str, accel, env):
    from ai_edge_litert.compiled_model import CompiledModel
    return CompiledModel.from_file(path, hardware_accel=accel, environment=env)


def _gpu_run(model, samples: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    key = next(iter(model.get_signature_list()))
    ins = model.get_input_tensor_details(key)
    outs = model.get_output_tensor_details(key)
    ib = {n: model.create_input_buffer_by_name(key, n) for n in ins}
    ob = {n: model.create_output_buffer_by_name(key, n) for n in outs}
    _KEEP.extend([ib, ob])
    results = []
    for sample in samples:
        for name, d in ins.items():
            ib[name].write(np.ascontiguousarray(np.asarray(sample[name], d["dtype"]).reshape(d["shape"])))
        model.run_by_name(key, ib, ob)
        results.append({n: ob[n].read(int(np.prod(d["shape"])), np.dtype(d["dtype"])).reshape(d["shape"])
                        for n, d in outs.items()})
    return results


def _cpu_runner(path: str, key: str):
    """The reference: the interpreter's builtin kernels (no delegate), by the compiled model's
    input / output names (signature names, or tensor names for a model without signatures)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    _KEEP.append(interp)
    if key in interp.get_signature_list():
        runner = interp.get_signature_runner(key)
        names = {n: d["index"] for n, d in runner.get_input_details().items()}
        return names, lambda sample: runner(**sample)
    interp.allocate_tensors()
    names = {d["name"]: d["index"] for d in interp.get_input_details()}

    def run(sample):
        for n, t in names.items():
            interp.set_tensor(t, sample[n])
        interp.invoke()
        return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    return names, run


def _numerics(path: str, gpu_model, samples_path: str) -> dict:
    from ..evaluation.metrics import fidelity as metrics
    key = next(iter(gpu_model.get_signature_list()))
    names, cpu = _cpu_runner(path, key)
    loaded = np.load(samples_path, allow_pickle=False)
    # Samples are stored by input tensor index (s_<sample>_<tensor>), matched here by name.
    count = len({k.split("_")[1] for k in loaded.keys()})
    samples = [{n: loaded[f"s_{i}_{t}"] for n, t in names.items()} for i in range(count)]
    details = gpu_model.get_input_tensor_details(key)
    samples = [{n: np.asarray(x, details[n]["dtype"]) for n, x in s.items()} for s in samples]
    gpu = _gpu_run(gpu_model, samples)
    ref = [cpu(s) for s in samples]
    out = []
    for name in gpu[0]:
        a = np.concatenate([np.asarray(r[name], np.float64).ravel() for r in ref])
        b = np.concatenate([np.asarray(g[name], np.float64).ravel() for g in gpu])
        m = metrics(a, b)
        m["finite"] = bool(np.isfinite(b).all())
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
                _KEEP.append(model)
                out["fully_accelerated"] = model.is_fully_accelerated()
            except Exception as e:  # noqa: BLE001 - a model the runtime refuses is an observation
                out["error"] = _message(e)
            if job.get("samples") and "error" not in out:
                for attempt in range(2):  # buffer locks fail now and then on a loaded host: retry once
                    try:
                        out["numerics"] = _numerics(job["path"], model, job["samples"])
                        out.pop("numerics_error", None)
                        break
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
