"""Sensitivity analysis time per mediapipe model: switched models against the rebuild per question.

    python benchmarks/bench_sensitivity.py [--top 10] [--workers N] [--before DIR | --no-rebuild] [NAME ...]

Calibration on the calibration photos, scores on the evaluation photos (fixtures/fetch_photos.py),
int8, as benchmarks/mixed_precision.py runs it. Per model, interleaved, each run in its own
process: seconds of ``analyze`` with the switched models (the default) and with a rebuild per
question (``switched=False``; with ``--before DIR``, the tflopt of another checkout, e.g.
``git archive`` of the commit before, instead), the builds each needed, how many islands each
switched model answered, and the largest difference of any island's min cosine (or weights-alone
loss) between the two: the answers must agree. Timings share the machine: the load average is
printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "fixtures"))
if "--tree" in sys.argv:  # a child run measuring another checkout's tflopt: imported first,
    sys.path.insert(0, sys.argv[sys.argv.index("--tree") + 1])  # before fidelity_weights puts ROOT ahead
    import tflopt  # noqa: E402,F401

from fetch_photos import photo_samples  # noqa: E402
from fidelity_weights import corpus  # noqa: E402
from tflopt.calibration import from_iterable  # noqa: E402
from tflopt.io import load  # noqa: E402
from tflopt.passes.quantize import QuantizeOptions  # noqa: E402
from tflopt.sensitivity import analyze  # noqa: E402


def largest_difference(a: dict, b: dict) -> float:
    """Largest |min cosine| difference of any island and question between two analyses."""
    rows = {r["island"]: r for r in b["ranked"]}
    worst = 0.0
    for r in a["ranked"]:
        other = rows[r["island"]]
        for q in ("only_quantized", "only_float"):
            if q in r:
                worst = max(worst, abs(r[q]["min_cosine"] - other[q]["min_cosine"]))
        worst = max(worst, abs(r.get("weights_only_loss", 0.0) - other.get("weights_only_loss", 0.0)))
    return worst


def one(name: str, top: int, workers, switched: bool) -> dict:
    """One timed analysis of the corpus model ``name`` in this process."""
    import inspect
    path = next(p for p in corpus() if p.stem == name)
    orig = load(path)
    calib = photo_samples(orig, path, split="calibration")
    tests = photo_samples(orig, path, split="evaluation")
    kw = {"switched": switched} if "switched" in inspect.signature(analyze).parameters else {}
    t0 = time.perf_counter()
    r = analyze(load(path), from_iterable(calib, orig), tests, QuantizeOptions(), top=top, workers=workers, **kw)
    r["wall"] = time.perf_counter() - t0
    return r


def child(name: str, args, *, switched: bool, tree: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--one", name, "--top", str(args.top)]
    cmd += ["--workers", str(args.workers)] if args.workers else []
    cmd += [] if switched else ["--rebuild"]
    cmd += ["--tree", tree] if tree else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tree or ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-rebuild", action="store_true", help="only the switched run")
    ap.add_argument("--before", help="checkout whose tflopt gives the rebuild figures")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--rebuild", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        r = one(args.one, args.top, args.workers, not args.rebuild)
        import tflopt
        r["tflopt"] = str(Path(tflopt.__file__).parent)
        print(json.dumps({k: r.get(k) for k in ("wall", "builds", "islands", "switched", "notes", "ranked", "tflopt")}))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; top {args.top}; "
          f"rebuild figures from {args.before or 'this checkout, switched=False'}")
    print(f"{'model':34s} {'MB':>5s} {'isl':>4s} {'switched s':>10s} {'builds':>6s} {'only/float/w':>13s} "
          f"{'rebuild s':>9s} {'builds':>6s} {'max diff':>8s} {'load':>5s}")
    for path in corpus():
        if args.names and not any(n in path.name for n in args.names):
            continue
        fast = child(path.stem, args, switched=True)
        sw = fast["switched"]
        counts = "/".join(str(sw.get(k, 0)) for k in ("only", "float", "weights"))
        line = (f"{path.stem[:34]:34s} {path.stat().st_size / 1e6:5.2f} {fast['islands']:4d} {fast['wall']:10.1f} "
                f"{fast['builds']:6d} {counts:>13s}")
        if not args.no_rebuild:
            slow = child(path.stem, args, switched=False, tree=args.before)
            assert args.before is None or slow["tflopt"].startswith(str(Path(args.before).resolve()))
            line += f" {slow['wall']:9.1f} {slow['builds']:6d} {largest_difference(fast, slow):8.1e}"
        print(f"{line} {os.getloadavg()[0]:5.1f}" + (f"  {'; '.join(fast['notes'])}" if fast["notes"] else ""),
              flush=True)


if __name__ == "__main__":
    main()
