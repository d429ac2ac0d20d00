"""Calibration speed: full int8 of ResNet50 with 8 / 32 / 128 samples, tflopt vs
ai-edge-quantizer, and prune(sparsity=0.5, method=obs) with 16 samples.

Each run is a whole child process (imports included); the table prints wall time, CPU time
(user + system of every thread) and peak resident memory (``os.wait4`` rusage). tflopt runs twice per row: the observer copy with
XNNPACK on every core (the default) and the builtin-kernel path (``TFLOPT_OBSERVE=builtin``).

The model is keras.applications.ResNet50(weights=None) converted to float32 .tflite; build it
once with TensorFlow (cached under ~/.cache/tflopt/bench/):

    /work/tfvenv/bin/python benchmarks/bench_calibration.py --build

then run (ai-edge-quantizer runs from its own venv, given with --aeq-python):

    python benchmarks/bench_calibration.py [--samples 8 32 128] [--aeq-python /work/aeq-venv/bin/python]
        [--prune] [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "tflopt" / "bench"
RESNET = CACHE / "resnet50_fp32.tflite"


def build() -> None:
    import tensorflow as tf
    CACHE.mkdir(parents=True, exist_ok=True)
    model = tf.keras.applications.ResNet50(weights=None)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    data = conv.convert()
    tmp = RESNET.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(RESNET)
    print(f"wrote {RESNET} ({len(data):,} bytes)")


def calibration_file(workdir: Path, n: int) -> Path:
    """``n`` smooth random images in [0, 1] keyed by the input's name (seeded)."""
    from ai_edge_litert.interpreter import Interpreter
    name = Interpreter(model_path=str(RESNET)).get_input_details()[0]["name"]
    rng = np.random.default_rng(0)
    # Low-frequency noise upsampled: activations look more like images than white noise does.
    small = rng.uniform(0, 1, (n, 28, 28, 3)).astype(np.float32)
    x = np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)
    path = workdir / f"calib_{n}.npz"
    np.savez(path, **{name: x})
    return path


AEQ_WORKER = r"""
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_quantizer import quantizer, recipe
model, calib, out = sys.argv[1:4]
q = quantizer.Quantizer(model)
q.load_quantization_recipe(recipe.static_wi8_ai8())
interp = Interpreter(model_path=model)
key = next(iter(interp.get_signature_list()))
details = interp.get_signature_runner(key).get_input_details()
z = np.load(calib)
arrays = {name: z[d["name"]] if d["name"] in z.files else z[z.files[0]] for name, d in details.items()}
n = len(next(iter(arrays.values())))
samples = [{name: a[i:i + 1] for name, a in arrays.items()} for i in range(n)]
result = q.calibrate({key: samples})
q.quantize(result, enable_progress_report=False).export_model(out, overwrite=True)
"""


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float, int, str, float]:
    """(seconds, peak RSS MiB, exit code, stderr tail, CPU seconds) of one child process.
    CPU seconds (user + system, every thread) say how much work a run is when the machine is
    shared and wall time mostly measures the neighbours."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace").strip().splitlines()
    return (seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), (err[-1] if err else ""),
            usage.ru_utime + usage.ru_stime)


def _row(label: str, runs) -> None:
    failed = [r for r in runs if r[2] != 0]
    if failed:
        print(f"{label:44} failed: {failed[0][3][:120]}", flush=True)
        return None
    seconds = sorted(r[0] for r in runs)[len(runs) // 2]
    cpu = sorted(r[4] for r in runs)[len(runs) // 2]
    print(f"{label:44} {seconds:8.2f} {cpu:8.2f} {max(r[1] for r in runs):9.1f}", flush=True)
    return seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", action="store_true", help="build the ResNet50 model (needs TensorFlow)")
    ap.add_argument("--samples", type=int, nargs="*", default=[8, 32, 128])
    ap.add_argument("--aeq-python", help="python of a venv with ai-edge-quantizer")
    ap.add_argument("--prune", action="store_true", help="also prune(sparsity=0.5,method=obs), 16 samples")
    ap.add_argument("--modes", default="fast,builtin", help="tflopt observer paths to time")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row; the median is printed")
    args = ap.parse_args(argv)
    if args.build:
        build()
        return 0
    if not RESNET.exists():
        print(f"{RESNET} missing: run with --build under TensorFlow first", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m]
    tflopt = [sys.executable, "-m", "tflopt", "optimize", str(RESNET)]
    print(f"{'work':44} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        out = str(tmpdir / "out.tflite")
        for n in args.samples:
            calib = str(calibration_file(tmpdir, n))
            for mode in modes:
                # Interleaved per sample count, so drift of the shared machine hits both.
                env = {"TFLOPT_OBSERVE": mode}
                _row(f"resnet50 int8 {n:3} samples tflopt ({mode})",
                     [measure(tflopt + ["-o", out, "-p", "quantize(mode=int8)", "--calibration", calib], env)
                      for _ in range(args.repeat)])
            if args.aeq_python:
                script = tmpdir / "aeq_worker.py"
                script.write_text(AEQ_WORKER)
                _row(f"resnet50 int8 {n:3} samples ai-edge-quantizer",
                     [measure([args.aeq_python, str(script), str(RESNET), calib, out]) for _ in range(args.repeat)])
        if args.prune:
            calib = str(calibration_file(tmpdir, 16))
            for mode in modes:
                _row(f"resnet50 prune(0.5,obs) 16 samples ({mode})",
                     [measure(tflopt + ["-o", out, "-p", "prune(sparsity=0.5,method=obs)", "--calibration", calib],
                              {"TFLOPT_OBSERVE": mode}) for _ in range(args.repeat)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
