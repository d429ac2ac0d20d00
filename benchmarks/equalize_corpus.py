"""Cross-layer equalization on the mediapipe corpus: pairs taken and left, the float change, and
int8 fidelity with and without it.

    python benchmarks/equalize_corpus.py [--variants eq,linear,relu,clamp,pow2] [-v] [--calib N] [NAME ...]

Data as benchmarks/fidelity_full_integer.py (whose helpers this reuses): the calibration photos
calibrate both ``quantize(mode=int8)`` and bias absorption, the evaluation photos measure. Per
model: pairs equalized and conv / depthwise ops left (by reason, with -v), RELU6 clamps added,
channels absorbed, the equalized float model's largest output change on the evaluation photos
(max |a - b| / max |a| over outputs), then the min output cosine of plain int8 and of int8
after each variant:
    eq      equalize(absorb=off)              (data-free)
    linear  equalize(absorb=linear)           (the default: + centring pairs with no activation)
    relu    equalize(absorb=relu)             (+ RELU / PRELU channels' calibration minimum)
    clamp   equalize(relu6=clamp,absorb=off)  (pairs behind RELU6 too, via per-channel MINIMUM)
    pow2    equalize(rounding=pow2,absorb=off) (float16 scales not bounded to stay exact)
The float change column is that of the first variant; with -v also that of every variant.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fidelity_full_integer import photo_samples  # noqa: E402
from fidelity_weights import corpus  # noqa: E402
from tflopt import runtime  # noqa: E402
from tflopt.calibration import from_iterable  # noqa: E402
from tflopt.evaluation import compare_models  # noqa: E402
from tflopt.evaluation.metrics import fidelity  # noqa: E402
from tflopt.io import load  # noqa: E402
from tflopt.pipeline import PassContext, run_pipeline  # noqa: E402

VARIANTS = {"eq": "equalize(absorb=off)", "linear": "equalize(absorb=linear)", "relu": "equalize(absorb=relu)",
            "clamp": "equalize(relu6=clamp,absorb=off)", "pow2": "equalize(rounding=pow2,absorb=off)"}


def _outputs(model, tests) -> list[np.ndarray]:
    """Per output, all evaluation samples stacked (builtin kernels)."""
    runs = [runtime.invoke(runtime.interpreter(model, xnnpack=False), x) for x in tests]
    return [np.stack([r[i] for r in runs]) for i in range(len(runs[0]))]


def _min_cosine(path, model, tests) -> str:
    """Min output cosine over all evaluation samples together, XNNPACK on as
    fidelity_full_integer.py; where XNNPACK fails to prepare the written model ("failed to
    create XNNPACK runtime", intermittent under load) the builtin kernels, marked *."""
    a, _ = runtime.runnable(load(path))
    try:
        b, _ = runtime.runnable(load(model.to_bytes()))
        return f"{min(o['cosine'] for o in compare_models(a, b, tests, samples=0)['outputs']):.4f}"
    except RuntimeError:
        b, _ = runtime.runnable(load(model.to_bytes()), xnnpack=False)
        cos = [fidelity(u, v)["cosine"] for u, v in zip(_outputs(a, tests), _outputs(b, tests))]
        return f"{min(cos):.4f}*"


def _float_change(path, model, tests) -> float:
    a, _ = runtime.runnable(load(path), xnnpack=False)
    b, _ = runtime.runnable(load(model.to_bytes()), xnnpack=False)
    return max(float(np.max(np.abs(u - v)) / max(float(np.max(np.abs(u))), 1e-30))
               for u, v in zip(_outputs(a, tests), _outputs(b, tests)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="only models whose file name contains one of these")
    ap.add_argument("--variants", default="eq,linear,relu,clamp")
    ap.add_argument("--calib", type=int, default=0, help="calibration photos (default all 16)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print why ops were left")
    args = ap.parse_args()
    variants = args.variants.split(",")
    print("calibration photos calibrate int8 and absorption; figures on the evaluation photos")
    print(f"{'model':34s} {'pairs':>5s} {'left':>4s} {'clamp':>5s} {'absorbed':>9s} {'float d':>8s} {'int8':>7s} "
          + " ".join(f"{v:>7s}" for v in variants) + f" {'sec':>5s}")
    for path in corpus():
        if args.names and not any(n in path.name for n in args.names):
            continue
        t0 = time.perf_counter()
        m = load(path)
        calib = photo_samples(m, path, split="calibration", limit=args.calib)
        tests = photo_samples(m, path, split="evaluation")
        row, cos = {}, {}
        for v in ["int8"] + variants:
            m = load(path)
            ctx = PassContext(calibration=from_iterable(calib, m))
            spec = "quantize(mode=int8)" if v == "int8" else VARIANTS[v]
            rep = run_pipeline(m, spec, ctx, measure=False)
            if v != "int8":
                st = rep.passes[-1].stats
                if v == args.variants.split(",")[0]:
                    row["pairs"], row["left"] = st["pairs"], sum(st["skipped"].values())
                    row["skipped"] = st["skipped"]
                    row["float"] = _float_change(path, m, tests)
                if v == "clamp":
                    row["clamp"] = st["clamp_ops_added"]
                if v in ("linear", "relu"):
                    row["absorb"] = "/".join(filter(None, [row.get("absorb"), str(st["bias_absorption"]["channels"])]))
                row.setdefault("changes", {})[v] = _float_change(path, m, tests)
                run_pipeline(m, "quantize(mode=int8)", PassContext(calibration=from_iterable(calib, m)), measure=False)
            cos[v] = _min_cosine(path, m, tests)
        print(f"{path.stem:34s} {row['pairs']:5d} {row['left']:4d} {str(row.get('clamp', '-')):>5s} "
              f"{str(row.get('absorb', '-')):>9s} {row['float']:8.1e} {cos['int8']:>7s} "
              + " ".join(f"{cos[v]:>7s}" for v in variants) + f" {time.perf_counter() - t0:5.0f}", flush=True)
        if args.verbose:
            print("    float change: " + ", ".join(f"{v} {d:.1e}" for v, d in row["changes"].items()))
            for why, n in sorted(row["skipped"].items(), key=lambda kv: -kv[1]):
                print(f"    left {n:3d}: {why}")


if __name__ == "__main__":
    main()
