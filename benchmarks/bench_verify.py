"""What the flatbuffer verifier (tflopt/fbverify.py) costs on every load and write: its time per
model (best of --repeat), the tables it walks, and the share of a whole ``tflopt.load``.

    python benchmarks/bench_verify.py [--repeat 20] [--fixtures]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--fixtures", action="store_true", help="also the fixture models")
    args = ap.parse_args(argv)
    import tflopt
    from tflopt.fbverify import verify
    paths = sorted((Path.home() / ".cache" / "tflopt" / "mediapipe").glob("*.tflite"))
    if args.fixtures or not paths:
        paths = sorted((ROOT / "fixtures" / "models").glob("*.tflite")) + paths
    print(f"{'model':42} {'bytes':>11} {'vectors':>8} {'verify ms':>10} {'load ms':>8} {'share':>6}")
    for p in paths:
        data = p.read_bytes()
        found: list = []
        verify(data, collect=found)
        v = best(lambda: verify(data), args.repeat)
        ld = best(lambda: tflopt.load(data), max(3, args.repeat // 4))
        print(f"{p.name:42} {len(data):>11,} {len(found):>8,} {v * 1000:>10.2f} {ld * 1000:>8.1f} {v / ld:>6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
