"""Mixed precision, plain int8 / int16x8, equalization and sensitivity time on the mediapipe corpus.

    python benchmarks/mixed_precision.py [--target 0.99] [--fallback float|int16] [--weights rtn|gptq]
        [--edgetpu] [--no-equalize] [--no-sensitivity] [NAME ...]

Calibration on the calibration photos, every figure on the evaluation photos (other photos,
fixtures/fetch_photos.py); mixed precision checks its target on those evaluation photos
(``evaluation=``). Per model: min output cosine of plain int8, int16x8 and mixed (target
cosine), the shares of MACs mixed keeps int8 and integer (int8 + int16x8 islands), how many
islands it keeps float / int16, file bytes of int8 and mixed, the share of mixed's MACs the
Edge TPU audit puts on the accelerator (its compiler cuts at the first op it cannot map;
--edgetpu: chosen with target=edgetpu), min cosine of int8 after ``equalize``; mixed runs after
``equalize`` unless --no-equalize (it rescales float16 weights in place, so float islands keep
the input's float16 storage), seconds of mixed precision and of the
sensitivity analysis (top 10). Fidelity is tflopt.evaluation.compare_models on the part the stock
interpreter runs (tflopt.runtime.runnable), as benchmarks/fidelity_full_integer.py.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "fixtures"))

from fetch_photos import photo_samples  # noqa: E402
from fidelity_weights import corpus  # noqa: E402
from tflopt import runtime  # noqa: E402
from tflopt.calibration import from_iterable  # noqa: E402
from tflopt.evaluation import compare_models  # noqa: E402
from tflopt.io import load  # noqa: E402
from tflopt.pipeline import PassContext, get_pass, run_pipeline  # noqa: E402


def _min_cos(orig, out: bytes, tests) -> float:
    a, _ = runtime.runnable(orig)
    b, _ = runtime.runnable(load(out))
    return min(o["cosine"] for o in compare_models(a, b, tests, samples=0)["outputs"])


def _quantize(path, spec, calib):
    m = load(path)
    rep = run_pipeline(m, spec, PassContext(calibration=from_iterable(calib, m)), measure=False)
    return m.to_bytes(), rep.passes[-1].stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--no-equalize", action="store_true", help="mixed precision on the model as it is")
    ap.add_argument("--equalize", default="equalize", metavar="SPEC",
                    help="the equalize step before int8 / mixed, e.g. 'equalize(rounding=exact)'")
    ap.add_argument("--no-sensitivity", action="store_true")
    ap.add_argument("--fallback", choices=["float", "int16"], default="float")
    ap.add_argument("--weights", choices=["rtn", "gptq"], default="rtn")
    ap.add_argument("--edgetpu", action="store_true", help="mixed precision with target=edgetpu")
    ap.add_argument("--equalize-only", action="store_true", help="only the int8 / int8-after-equalize columns")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"mixed: quantize(mode=int8,target_cosine={args.target},fallback={args.fallback},weights={args.weights}"
          f"{',target=edgetpu' if args.edgetpu else ''})")
    print(f"{'model':34s} {'MB':>5s} {'int8':>7s} {'16x8':>7s} {'mixed':>7s} {'int8 MAC':>8s} {'int MAC':>7s} "
          f"{'flt/i16':>7s} {'int8 B':>8s} {'mixed B':>8s} {'TPU MAC':>7s} {'eq int8':>7s} {'mix s':>6s} {'sens s':>6s}")
    n90 = n90i = 0
    for path in corpus():
        if args.names and not any(n in path.name for n in args.names):
            continue
        orig = load(path)
        calib = photo_samples(orig, path, split="calibration")
        tests = photo_samples(orig, path, split="evaluation")
        int8, _ = _quantize(path, "quantize(mode=int8)", calib)
        if args.equalize_only:
            eq_bytes, st = _quantize(path, f"{args.equalize},quantize(mode=int8)", calib)
            print(f"{path.stem[:34]:34s} int8 {_min_cos(orig, int8, tests):7.4f}  equalize+int8 "
                  f"{_min_cos(orig, eq_bytes, tests):7.4f}", flush=True)
            continue
        i16, _ = _quantize(path, "quantize(mode=int16x8)", calib)
        with tempfile.TemporaryDirectory() as d:
            ev = Path(d) / "evaluation.npz"
            np.savez(ev, **{orig.main.tensors[t].name: np.stack([s[k] for s in tests])
                            for k, t in enumerate(orig.main.inputs)})
            t0 = time.perf_counter()
            # Mixed precision after equalization: equalize is data-free and float-exact, and the
            # fewer islands int8 breaks, the fewer go back to float.
            before = "" if args.no_equalize else f"{args.equalize},"
            extra = f",fallback={args.fallback},weights={args.weights}" + (",target=edgetpu" if args.edgetpu else "")
            mixed, stats = _quantize(path, f"{before}quantize(mode=int8,target_cosine={args.target}{extra},"
                                     f"evaluation={ev})", calib)
            mix_s = time.perf_counter() - t0
        mp = stats["mixed_precision"]
        eq = float("nan")
        if not args.no_equalize:
            eq_bytes, _ = _quantize(path, f"{args.equalize},quantize(mode=int8)", calib)
            eq = _min_cos(orig, eq_bytes, tests)
        sens_s = float("nan")
        if not args.no_sensitivity:
            from tflopt.passes.quantize import QuantizeOptions
            from tflopt.sensitivity import analyze
            t0 = time.perf_counter()
            analyze(load(path), from_iterable(calib, orig), tests, QuantizeOptions(), top=10)
            sens_s = time.perf_counter() - t0
        runs = _runs(mixed)
        if runs != "yes" and runs == _runs(path):
            runs = "as orig"  # stops at the same custom op the stock interpreter lacks
        n90 += mp["int8_macs_share"] >= 0.9
        n90i += mp["integer_macs_share"] >= 0.9
        kept = f"{len(mp['kept_float'])}/{len(mp['kept']) - len(mp['kept_float'])}"
        from tflopt.passes.mixed_edgetpu import edgetpu_partitions
        tpu = edgetpu_partitions(load(mixed))["accelerated_macs_share"]
        print(f"{path.stem[:34]:34s} {path.stat().st_size / 1e6:5.2f} {_min_cos(orig, int8, tests):7.4f} "
              f"{_min_cos(orig, i16, tests):7.4f} {_min_cos(orig, mixed, tests):7.4f} {mp['int8_macs_share']:8.1%} "
              f"{mp['integer_macs_share']:7.1%} {kept:>7s} {len(int8):8d} {len(mixed):8d} {tpu:7.1%} {eq:7.4f} "
              f"{mix_s:6.1f} {sens_s:6.1f}  runs: {runs}", flush=True)
    print(f"models keeping >= 90% of MACs int8: {n90}, integer: {n90i}; load average {os.getloadavg()[0]:.1f}")


def _runs(model) -> str:
    try:
        runtime.run(model)
        return "yes"
    except RuntimeError as e:
        return "no: " + " ".join(str(e).split())[:40]


if __name__ == "__main__":
    main()
