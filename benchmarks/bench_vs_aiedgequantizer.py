"""tflopt vs ai-edge-quantizer on the same model and recipe, each as a whole process.

Recipes: dynamic-range int8 (int8 per-channel weights, float activations) and static int8
(int8 weights and activations, min/max calibration on the same samples). For each run the
table shows wall time, peak resident memory of the child process (``os.wait4`` rusage,
imports included, as a user would experience it) and the output SNR of the quantized model
against the float one on samples disjoint from the calibration set.

ai-edge-quantizer is not a tflopt dependency; install it into the same environment first:

    pip install ai-edge-quantizer

Usage:

    python benchmarks/bench_vs_aiedgequantizer.py [--model fixtures/models/convnet_fp32.tflite ...]
        [--calibration DATA.npz] [--repeat 3]

ai-edge-quantizer only accepts float32 models with signature definitions, so the default
models are the fixtures' convnet and mlp.
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
MODELS = ROOT / "fixtures" / "models"
DATA = ROOT / "fixtures" / "data"
RECIPES = ("dynamic", "int8")


# -- workers (run in a child process) ----------------------------------------------------------
def _aeq_worker(model: str, recipe: str, calibration: str, out: str) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe as aeq_recipe

    q = quantizer.Quantizer(model)
    q.load_quantization_recipe(aeq_recipe.dynamic_wi8_afp32() if recipe == "dynamic" else aeq_recipe.static_wi8_ai8())
    result = None
    if q.need_calibration:
        interp = Interpreter(model_path=model)
        key, runner_inputs = next(iter(interp.get_signature_list().items()))
        details = interp.get_signature_runner(key).get_input_details()
        z = np.load(calibration)
        arrays = {name: z[d["name"]] for name, d in details.items()}
        n = len(next(iter(arrays.values())))
        samples = [{name: a[i:i + 1] if a.ndim == len(details[name]["shape"]) else a[i]
                    for name, a in arrays.items()} for i in range(n)]
        result = q.calibrate({key: samples})
    q.quantize(result, enable_progress_report=False).export_model(out, overwrite=True)


def _tflopt_cmd(model: str, recipe: str, calibration: str, out: str) -> list[str]:
    spec = "quantize(mode=dynamic,min_elements=0)" if recipe == "dynamic" else "quantize(mode=int8)"
    cmd = [sys.executable, "-m", "tflopt", "optimize", model, "-o", out, "-p", spec]
    return cmd + (["--calibration", calibration] if recipe == "int8" else [])


# -- measuring -------------------------------------------------------------------------------
def measure(cmd: list[str]) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MiB, exit code, stderr tail) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace").strip().splitlines()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, proc.returncode, (err[-1] if err else "")


def fidelity(float_model: Path, quant_model: Path, calibration: Path, test: int = 32) -> float:
    """Worst output SNR (dB) of the quantized model on the last ``test`` samples."""
    sys.path.insert(0, str(ROOT))
    from tflopt import runtime
    z = np.load(calibration)
    a_it, b_it = runtime.interpreter(float_model, xnnpack=False), runtime.interpreter(quant_model, xnnpack=False)
    names = [d["name"] for d in a_it.get_input_details()]
    arrays = [z[n] for n in names]
    worst = np.inf
    ref, got = [], []
    for i in range(len(arrays[0]) - test, len(arrays[0])):
        inputs = [a[i:i + 1].reshape(d["shape"]) for a, d in zip(arrays, a_it.get_input_details())]
        ref.append(runtime.invoke(a_it, inputs))
        got.append(_invoke_real(runtime, b_it, inputs))
    for k in range(len(ref[0])):
        r = np.concatenate([x[k].ravel() for x in ref]).astype(np.float64)
        g = np.concatenate([x[k].ravel() for x in got]).astype(np.float64)
        worst = min(worst, 10 * np.log10((r @ r) / max(((r - g) ** 2).sum(), 1e-30)))
    return float(worst)


def _invoke_real(runtime, it, inputs):
    """Outputs as real values; integer model inputs/outputs (ai-edge-quantizer's static int8
    models take and return int8) are encoded/decoded with their scale and zero point."""
    feed = []
    for d, x in zip(it.get_input_details(), inputs):
        scale, zp = d["quantization"]
        if np.dtype(d["dtype"]).kind in "iu" and scale:
            info = np.iinfo(d["dtype"])
            x = np.clip(np.rint(x / scale + zp), info.min, info.max)
        feed.append(np.asarray(x).astype(d["dtype"]))
    outs = []
    for d, y in zip(it.get_output_details(), runtime.invoke(it, feed)):
        scale, zp = d["quantization"]
        outs.append((y.astype(np.float64) - zp) * scale if np.dtype(d["dtype"]).kind in "iu" and scale else y)
    return outs


def default_calibration(model: Path, workdir: Path) -> Path:
    """The fixture data for a fixture model: digits for convnet (mlp sees them subsampled)."""
    from ai_edge_litert.interpreter import Interpreter
    detail = Interpreter(model_path=str(model)).get_input_details()[0]
    d = np.load(DATA / "digits.npz")
    x = np.concatenate([d["x_calib"], d["x_test"][:32]])  # 64 to calibrate, then 32 to test
    if tuple(detail["shape"][1:]) == (64,):
        x = x[:, ::2, ::2, 0].reshape(len(x), -1)
    path = workdir / f"{model.stem}_calib.npz"
    np.savez(path, **{detail["name"]: x.astype(np.float32)})
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", type=Path,
                    help="float32 model with a signature (repeatable); default: fixture convnet and mlp")
    ap.add_argument("--calibration", type=Path, help=".npz keyed by input tensor name; last 32 samples test")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the best time is reported")
    ap.add_argument("--worker", nargs=4, metavar=("MODEL", "RECIPE", "CALIB", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _aeq_worker(*args.worker)
        return 0
    try:
        import ai_edge_quantizer  # noqa: F401
    except ImportError:
        print("ai-edge-quantizer is not installed: pip install ai-edge-quantizer", file=sys.stderr)
        return 2
    models = args.model or [MODELS / "convnet_fp32.tflite", MODELS / "mlp_fp32.tflite"]
    print(f"{'model':14} {'recipe':8} {'tool':20} {'seconds':>8} {'peak MiB':>9} {'SNR dB':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for model in models:
            calib = args.calibration or default_calibration(model, tmpdir)
            # The calibration file holds calibration then test samples; both tools calibrate on
            # every sample in it, so hand them only the calibration part.
            z = np.load(calib)
            calib_only = tmpdir / f"{model.stem}_calib_only.npz"
            np.savez(calib_only, **{k: z[k][:-32] for k in z.files})
            for recipe in RECIPES:
                rows = {}
                for tool in ("ai-edge-quantizer", "tflopt"):
                    out = tmpdir / f"{model.stem}_{recipe}_{tool}.tflite"
                    if tool == "tflopt":
                        cmd = _tflopt_cmd(str(model), recipe, str(calib_only), str(out))
                    else:
                        cmd = [sys.executable, __file__, "--worker", str(model), recipe, str(calib_only), str(out)]
                    runs = [measure(cmd) for _ in range(args.repeat)]
                    seconds = min(r[0] for r in runs)
                    peak = max(r[1] for r in runs)
                    failed = [r for r in runs if r[2] != 0]
                    if failed:
                        print(f"{model.stem:14} {recipe:8} {tool:20} failed: {failed[0][3]}")
                        continue
                    snr = fidelity(model, out, calib)
                    rows[tool] = seconds
                    print(f"{model.stem:14} {recipe:8} {tool:20} {seconds:8.2f} {peak:9.1f} {snr:7.2f}")
                if len(rows) == 2:
                    print(f"{'':14} {'':8} {'tflopt / aeq time':20} {rows['tflopt'] / rows['ai-edge-quantizer']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
