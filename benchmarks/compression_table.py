"""File sizes of the 14 mediapipe models through prune / cluster / quantize / sparsify.

    python benchmarks/compression_table.py [--fast] [--models N]

Raw bytes, gzip -9 (as tfmot reports) and zstd -19; ``--fast`` uses gzip -6 / zstd -9.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from tflopt import io, runtime
from tflopt.calibration import random_calibration
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.size import gzip_size, summary_line, zstd_size

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {
    "original": "",
    "prune50": "prune(sparsity=0.5,sizes=false)",
    "cluster16": "cluster(clusters=16,sizes=false)",
    "p50+c16": "prune(sparsity=0.5,sizes=false),cluster(clusters=16,sizes=false)",
    "p50+c16+int8": "prune(sparsity=0.5,sizes=false),cluster(clusters=16,sizes=false),quantize(mode=int8)",
    "p50+sparsify": "prune(sparsity=0.5,sizes=false),sparsify(sizes=false)",
    "p50+c16+i8+sp": "prune(sparsity=0.5,sizes=false),cluster(clusters=16,sizes=false),quantize(mode=int8),"
                     "sparsify(sizes=false)",
}


def _corpus() -> list[Path]:
    spec = importlib.util.spec_from_file_location("fetch_mediapipe", ROOT / "fixtures" / "fetch_mediapipe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [Path(p) for p in mod.mediapipe_models()]


def sizes(path: Path, pipeline: str, levels: tuple[int, int]) -> tuple[int, int, int]:
    model = io.load(path)
    if pipeline:
        run_pipeline(model, pipeline, PassContext(calibration=random_calibration(model, 4)))
        runtime.run(runtime.runnable(model)[0])  # every variant must still run
    data = model.to_bytes()
    return len(data), gzip_size(data, levels[0]), zstd_size(data, levels[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="gzip -6 / zstd -9 instead of -9 / -19")
    ap.add_argument("--models", type=int, default=0, help="only the first N models")
    args = ap.parse_args()
    levels = (6, 9) if args.fast else (9, 19)
    paths = _corpus()[: args.models or None]
    table = {p.stem: {v: sizes(p, text, levels) for v, text in VARIANTS.items()} for p in paths}
    width = max(len(n) for n in table) + 2
    for k, metric in enumerate(("raw", f"gzip -{levels[0]}", f"zstd -{levels[1]}")):
        print(f"\n{metric} bytes")
        print("model".ljust(width) + "".join(v.rjust(15) for v in VARIANTS))
        totals = dict.fromkeys(VARIANTS, 0)
        for name, row in table.items():
            print(name.ljust(width) + "".join(f"{row[v][k]:>15,}" for v in VARIANTS))
            for v in VARIANTS:
                totals[v] += row[v][k]
        print("total".ljust(width) + "".join(f"{totals[v]:>15,}" for v in VARIANTS))
        for v in list(VARIANTS)[1:]:
            print(f"  {v:<14} {summary_line(totals['original'], totals[v])}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
