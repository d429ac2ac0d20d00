"""Fidelity of the full-integer quantize modes on the mediapipe corpus.

    python benchmarks/fidelity_full_integer.py [--modes int8,int16x8] [--calib N] [--test N] [--before PASSES]

(--modes float16,dynamic also works; --before dequantize requantizes from float32.)

Calibration is what the `real` tests use (tests/test_quantize_static.py, smooth_images):
N smooth random images in [-1, 1] (6x6 uniform noise upsampled bilinearly), seed 0. The
fidelity inputs are drawn the same way with other seeds (99, 100, ...), so they are disjoint
from the calibration set. For each model and mode: whether the written model runs in the
interpreter as a whole, the ops left float, and the worst output cosine / SNR (dB) against the
original, from tflopt.compare.compare_models (default resolver, XNNPACK on) on the part the
stock interpreter runs (custom ops it lacks are cut from both, tflopt.runtime.runnable).
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

from fidelity_weights import corpus  # noqa: E402
from tflopt import runtime  # noqa: E402
from tflopt.calibration import from_iterable, input_specs, resize_bilinear  # noqa: E402
from tflopt.compare import compare_models  # noqa: E402
from tflopt.io import load  # noqa: E402
from tflopt.pipeline import PassContext, run_pipeline  # noqa: E402


def smooth_images(model, n: int, seed: int) -> list[list[np.ndarray]]:
    """Same generator as tests/test_quantize_static.py::smooth_images."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sample = []
        for spec in input_specs(model):
            if len(spec.shape) == 4:
                low = rng.uniform(-1, 1, (6, 6, spec.shape[3])).astype(np.float32)
                sample.append(resize_bilinear(low, spec.shape[1], spec.shape[2])[None].astype(spec.dtype))
            else:
                sample.append(rng.uniform(-1, 1, spec.shape).astype(spec.dtype))
        out.append(sample)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="int8,int16x8")
    ap.add_argument("--calib", type=int, default=8, help="calibration samples (the tests use 8)")
    ap.add_argument("--test", type=int, default=4, help="fidelity samples")
    ap.add_argument("--before", default="", help="passes to run first, e.g. dequantize")
    args = ap.parse_args()
    print(f"calibration: {args.calib} smooth random images (seed 0); fidelity on {args.test} more (seeds 99+)")
    print(f"{'model':38s} {'mode':8s} {'runs':7s} {'q ops':>5s} {'float ops':22s} {'min cos':>8s} "
          f"{'min SNR':>7s} {'med SNR':>7s} {'sec':>5s}")
    for path in corpus():
        for mode in args.modes.split(","):
            m = load(path)
            t0 = time.perf_counter()
            ctx = PassContext(calibration=from_iterable(smooth_images(m, args.calib, 0), m))
            spec = ",".join(filter(None, [args.before, f"quantize(mode={mode})"]))
            rep = run_pipeline(m, spec, ctx, measure=False)
            seconds = time.perf_counter() - t0
            out = m.to_bytes()
            stats = rep.passes[-1].stats
            runs = _runs(out)  # the whole written model, default resolver (XNNPACK on)
            if runs != "yes" and _runs(path) == runs:
                runs = "as orig"  # the original stops at the same unresolved custom op
            a, _ = runtime.runnable(load(path))
            b, cut = runtime.runnable(load(out))
            tests = [s for k in range(args.test) for s in smooth_images(m, 1, 99 + k)]
            r = compare_models(a, b, tests, samples=0)
            cos = [o["cosine"] for o in r["outputs"]]
            snr = [o["snr_db"] for o in r["outputs"]]
            floats = ",".join(f"{k}x{v}" for k, v in sorted(stats.get("float_ops", {}).items())) or "-"
            print(f"{path.name:38s} {mode:8s} {runs:7s} {str(stats.get('quantized_ops', '-')):>5s} {floats[:22]:22s} "
                  f"{min(cos):8.4f} {min(snr):7.1f} {float(np.median(snr)):7.1f} {seconds:5.1f}"
                  + (f"  (cut: {','.join(sorted(set(cut)))})" if cut else ""))


def _runs(model) -> str:
    try:
        runtime.run(model)
        return "yes"
    except RuntimeError as e:
        return "no: " + " ".join(str(e).split())[:50]


if __name__ == "__main__":
    main()
