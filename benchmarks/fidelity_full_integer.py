"""Fidelity of the full-integer quantize modes on the mediapipe corpus.

    python benchmarks/fidelity_full_integer.py [--modes int8,int16x8] [--calib N] [--before PASSES] [NAME ...]

(--modes float16,dynamic also works; --before dequantize requantizes from float32.)

Calibration and fidelity data are what the `real` tests use (tests/test_quantize_static.py,
test_mediapipe_models_quantize_and_run): real photos from fixtures/fetch_photos.py, the 16 of
the calibration folder for calibration and the 4 of the evaluation folder (other photos) for
fidelity, loaded as a --calibration image folder (fetch_photos.photo_samples: [-1, 1] for the
detectors, [0, 1] for the others). For each model and mode: whether the written model runs in
the interpreter as a whole, the ops left float, and the min / median output cosine and SNR (dB)
against the original, from tflopt.compare.compare_models (default resolver, XNNPACK on) on the
part the stock interpreter runs (custom ops it lacks are cut from both, tflopt.runtime.runnable).
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
from tflopt.calibration import from_iterable  # noqa: E402
from tflopt.evaluation import compare_models  # noqa: E402
from tflopt.io import load  # noqa: E402
from tflopt.pipeline import PassContext, run_pipeline  # noqa: E402

sys.path.insert(0, str(ROOT / "fixtures"))
from fetch_photos import photo_samples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="only models whose file name contains one of these")
    ap.add_argument("--modes", default="int8,int16x8")
    ap.add_argument("--calib", type=int, default=0, help="calibration photos (default all 16, as the tests)")
    ap.add_argument("--before", default="", help="passes to run first, e.g. dequantize")
    args = ap.parse_args()
    print("calibration: the calibration photos; fidelity on the 4 evaluation photos (fixtures/fetch_photos.py)")
    print(f"{'model':38s} {'mode':8s} {'runs':7s} {'q ops':>5s} {'float ops':22s} {'min cos':>8s} "
          f"{'med cos':>8s} {'min SNR':>7s} {'med SNR':>7s} {'sec':>5s}")
    for path in corpus():
        if args.names and not any(n in path.name for n in args.names):
            continue
        for mode in args.modes.split(","):
            m = load(path)
            calib = photo_samples(m, path, split="calibration", limit=args.calib)
            tests = photo_samples(m, path, split="evaluation")
            t0 = time.perf_counter()
            ctx = PassContext(calibration=from_iterable(calib, m))
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
            r = compare_models(a, b, tests, samples=0)
            cos = [o["cosine"] for o in r["outputs"]]
            snr = [o["snr_db"] for o in r["outputs"]]
            floats = ",".join(f"{k}x{v}" for k, v in sorted(stats.get("float_ops", {}).items())) or "-"
            print(f"{path.name:38s} {mode:8s} {runs:7s} {str(stats.get('quantized_ops', '-')):>5s} {floats[:22]:22s} "
                  f"{min(cos):8.4f} {float(np.median(cos)):8.4f} {min(snr):7.1f} {float(np.median(snr)):7.1f} "
                  f"{seconds:5.1f}" + (f"  (cut: {','.join(sorted(set(cut)))})" if cut else ""), flush=True)


def _runs(model) -> str:
    try:
        runtime.run(model)
        return "yes"
    except RuntimeError as e:
        return "no: " + " ".join(str(e).split())[:50]


if __name__ == "__main__":
    main()
