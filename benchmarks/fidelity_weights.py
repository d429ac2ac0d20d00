"""Fidelity of the weight-only quantize modes on the mediapipe corpus.

    python benchmarks/fidelity_weights.py [--samples N]

For each model and mode (float16, dynamic): minimum output cosine and SNR against the
original on seeded random inputs, and file sizes. Models whose custom ops the stock
interpreter lacks are listed as not runnable.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tflopt.evaluation import compare_models  # noqa: E402
from tflopt.io import load  # noqa: E402
from tflopt.pipeline import run_pipeline  # noqa: E402


def corpus() -> list[Path]:
    spec = importlib.util.spec_from_file_location("fetch_mediapipe", ROOT / "fixtures" / "fetch_mediapipe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [Path(p) for p in mod.mediapipe_models()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=8)
    args = ap.parse_args()
    print(f"{'model':40s} {'mode':8s} {'min cos':>10s} {'min SNR dB':>10s} {'bytes in':>10s} {'bytes out':>10s}")
    for path in corpus():
        for mode in ("float16", "dynamic"):
            m = load(path)
            run_pipeline(m, f"quantize(mode={mode})", measure=False)
            out = m.to_bytes()
            try:
                r = compare_models(path, out, None, samples=args.samples)
            except RuntimeError as e:
                print(f"{path.name:40s} {mode:8s} not runnable here: {' '.join(str(e).split())[:60]}")
                continue
            cos = min(o["cosine"] for o in r["outputs"])
            snr = min(o["snr_db"] for o in r["outputs"])
            print(f"{path.name:40s} {mode:8s} {cos:10.6f} {snr:10.1f} {path.stat().st_size:10d} {len(out):10d}")


if __name__ == "__main__":
    main()
