"""tflopt bench against LiteRT's own litert-benchmark, side by side on the same models and threads.

    python benchmarks/bench_latency.py [--threads 1,2] [--runs 50] [--models NAME,...] [--no-corpus]

For a fixture and three mediapipe corpus models, each as fp32 and as tflopt's float16 /
dynamic / int8 / int16x8 variants (int8 and int16x8 calibrated on 8 random samples: latency
does not depend on how good the ranges are), prints the median latency from `tflopt bench`
(XNNPACK on, and the builtin kernels with --no-xnnpack) and from `litert-benchmark` (the
ai-edge-litert wheel's tool: CompiledModel on the CPU accelerator, which is XNNPACK; it has no
switch to turn XNNPACK off, so the builtin column has no reference), with their ratio.
The goal is tflopt's median within 10% of litert-benchmark's. litert-benchmark prints times
to 0.01 ms: below ~0.2 ms its median is too coarse to compare to 10%. On a shared host the
two are interleaved (--repeats pairs, tflopt then litert-benchmark) and each column is the
median of its runs' medians, so a burst of load elsewhere hits both; the load average is
printed first, as context.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tflopt.calibration import random_calibration  # noqa: E402
from tflopt.evaluation import bench_model  # noqa: E402
from tflopt.io import load  # noqa: E402
from tflopt.pipeline import PassContext, run_pipeline  # noqa: E402

CORPUS = ("face_detection_short_range", "selfie_segmentation", "hand_landmark_lite")
VARIANTS = {"fp32": "", "float16": "quantize(mode=float16)", "dynamic": "quantize(mode=dynamic)",
            "int8": "quantize(mode=int8)", "int16x8": "quantize(mode=int16x8)"}


def litert_benchmark() -> str:
    exe = shutil.which("litert-benchmark") or str(Path(sys.executable).parent / "litert-benchmark")
    if not Path(exe).exists():
        raise SystemExit("litert-benchmark not found (it ships in the ai-edge-litert wheel)")
    return exe


def reference_median(exe: str, model: Path, threads: int, runs: int, warmup: int) -> float | str:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "r.json"
        proc = subprocess.run([exe, "--model", str(model), "--num_threads", str(threads), "--num_runs", str(runs),
                               "--warmup_runs", str(warmup), "--result_json", str(out)],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or not out.exists():
            return "failed: " + " ".join((proc.stderr or proc.stdout).split()[-12:])
        return float(json.loads(out.read_text())["latency"]["median_ms"])


def variants(model: Path, work: Path) -> list[tuple[str, Path]]:
    out = []
    for name, spec in VARIANTS.items():
        if not spec:
            out.append((name, model))
            continue
        m = load(model)
        ctx = PassContext()
        if "int" in spec and "dynamic" not in spec:
            ctx.calibration = random_calibration(m, 8)
        try:
            run_pipeline(m, spec, ctx)
        except Exception as e:  # a variant tflopt cannot make is a row saying so, not a crash
            out.append((name, f"cannot make: {' '.join(str(e).split())[:80]}"))
            continue
        path = work / f"{model.stem}_{name}.tflite"
        m.save(path)
        out.append((name, path))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", default=",".join(CORPUS))
    ap.add_argument("--no-corpus", action="store_true", help="the fixture only")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved tflopt / litert-benchmark pairs")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    exe = litert_benchmark()
    models = [ROOT / "fixtures" / "models" / "convnet_fp32.tflite"]
    if not args.no_corpus:
        sys.path.insert(0, str(ROOT / "fixtures"))
        from fetch_mediapipe import mediapipe_models
        by_stem = {Path(p).stem: Path(p) for p in mediapipe_models()}
        models += [by_stem[n] for n in args.models.split(",") if n]
    threads = [int(t) for t in args.threads.split(",")]
    import os
    import statistics
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.repeats} interleaved pairs of "
          f"{args.runs} runs each")
    print(f"{'model':34} {'variant':8} {'thr':>3} {'tflopt xnnpack':>14} {'litert-benchmark':>16} {'ratio':>6} "
          f"{'tflopt builtin':>14}  (median ms)")
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as d:
        for model in models:
            wanted = args.variants.split(",")
            for name, path in [v for v in variants(model, Path(d)) if v[0] in wanted]:
                if isinstance(path, str):
                    print(f"{model.stem[:34]:34} {name:8}     {path}")
                    continue
                for t in threads:
                    mine, refs = [], []
                    for _ in range(args.repeats):
                        mine.append(bench_model(path, threads=t, runs=args.runs, warmup=args.warmup))
                        refs.append(reference_median(exe, path, t, args.runs, args.warmup))
                    builtin = bench_model(path, threads=t, runs=args.runs, warmup=args.warmup, xnnpack=False)
                    ok = [r["median_ms"] for r in mine if "median_ms" in r]
                    a = statistics.median(ok) if ok else mine[0].get("error")
                    okr = [r for r in refs if isinstance(r, float)]
                    ref = statistics.median(okr) if okr else refs[0]
                    b = builtin.get("median_ms", builtin.get("error"))
                    ratio = f"{a / ref:.2f}" if isinstance(a, float) and isinstance(ref, float) and ref > 0 else "-"
                    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)[:40]  # noqa: E731
                    print(f"{model.stem[:34]:34} {name:8} {t:>3} {fmt(a):>14} {fmt(ref):>16} {ratio:>6} "
                          f"{fmt(b):>14}", flush=True)


if __name__ == "__main__":
    main()
