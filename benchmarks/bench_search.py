"""tflopt search figures: the digits Pareto front, the --jobs 2 speed-up, and the corpus search.

    python benchmarks/bench_search.py --digits     # Pareto front and time, digits convnet, accuracy_drop<=0.01
    python benchmarks/bench_search.py --speedup    # --jobs 1 vs --jobs 2 on corpus models, fresh caches
    python benchmarks/bench_search.py --speedup-digits   # the same on the digits search
    python benchmarks/bench_search.py --corpus     # one command over the 14 mediapipe models, min_cosine>=0.99

Every search runs the real command (``python -m tflopt search ... --json``) in a child process
with its own fresh cache. The corpus search calibrates on the calibration photos and judges
on the evaluation photos (other images: fixtures/fetch_photos.py), both decoded per model with
the same normalisation ([0, 1]); each chosen model is then measured again here on the evaluation
photos with compare_models, so no model that misses the goal goes unnoticed. The machine is 2
cores shared with other work: times are wall-clock of whole commands, say so when quoting them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

DIGITS_SPACE = {"levels": [
    {"pass": "prune", "options": {"sparsity": [0.5, 0.75, 0.9], "method": ["magnitude", "obs"]}},
    {"pass": "cluster", "options": {"clusters": [16, 8, 4], "method": ["kmeans"]}},
    {"pass": "quantize", "options": {"mode": ["float16", "dynamic", "int8"], "weights": ["rtn"]}}]}
# The corpus is sensitive (16 clusters already costs some models cosine 0.8) and large: milder
# steps, and no calibrated recovery (minutes per trial on the larger models), so 14 models fit
# the shared 2 cores in minutes. The default space (recovery on and off) is for one model.
CORPUS_SPACE = {"levels": [
    {"pass": "prune", "options": {"sparsity": [0.25, 0.5], "method": ["magnitude"]}},
    {"pass": "cluster", "options": {"clusters": [64, 32, 16], "method": ["kmeans"]}},
    {"pass": "quantize", "options": {"mode": ["float16", "dynamic", "int8"], "weights": ["rtn"]}}]}


def search(args: list, space: dict, tmp: Path, tag: str) -> tuple[dict, float]:
    space_file = tmp / f"{tag}.json"
    space_file.write_text(json.dumps(space))
    cmd = [sys.executable, "-m", "tflopt", "search", *map(str, args), "--space", str(space_file),
           "--cache", str(tmp / f"cache-{tag}"), "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    seconds = time.perf_counter() - t0
    (tmp / f"{tag}-result.json").write_text(proc.stdout)
    if proc.returncode not in (0, 1):
        sys.exit(f"search failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout), seconds


def digits_args(tmp: Path, jobs: int) -> list:
    data = ROOT / "fixtures/data/digits.npz"
    return [ROOT / "fixtures/models/convnet_fp32.tflite", "--calibration", ROOT / "fixtures/data/convnet_calib.npz",
            "--data", f"{data}:x_test", "--labels", f"{data}:y_test", "--goal", "accuracy_drop<=0.01",
            "--minimize", "gzip_bytes", "--jobs", jobs, "-o", tmp / f"digits-j{jobs}.tflite"]


def digits(tmp: Path, jobs: int) -> None:
    r, seconds = search(digits_args(tmp, jobs), DIGITS_SPACE, tmp, "digits")
    c = r["counts"]
    print(f"digits convnet, goal accuracy_drop<=0.01, minimise gzip: {c['trials']} trials "
          f"({c['skipped_monotone']} skipped), {seconds:.1f} s wall with --jobs {jobs}")
    print(f"input: gzip {r['baseline']['gzip_bytes']:,}, top-1 {r['baseline']['accuracy']:.4f}")
    by = {t["pipeline"]: t for t in r["trials"]}
    print(f"Pareto front over {', '.join(r['pareto_metrics'])}:")
    for p in r["pareto"]:
        m = by[p]["metrics"] if p in by else r["baseline"]
        mark = "  <- chosen" if r["chosen"] and p == r["chosen"]["pipeline"] else ""
        print(f"  {m['gzip_bytes']:>8,}  top-1 {m['accuracy']:.4f}  drop {m['accuracy_drop']:+.4f}  "
              f"cos {m['min_cosine']:.4f}  {p or '(input)'}{mark}")
    singles = {p: t for p, t in by.items() if p.count("(") == 1 and t["meets_goals"]}
    best = {}
    for p, t in singles.items():
        kind = p.split("(")[0]
        if kind not in best or t["metrics"]["gzip_bytes"] < best[kind][1]:
            best[kind] = (p, t["metrics"]["gzip_bytes"])
    print("best single technique meeting the goal: " +
          "; ".join(f"{p} {g:,}" for p, g in sorted(best.values(), key=lambda x: x[1])))


def corpus_models() -> Path:
    from fetch_mediapipe import mediapipe_models
    return Path(mediapipe_models()[0]).parent


def speedup_digits(tmp: Path) -> None:
    times, chosen = {}, {}
    for jobs in (1, 2):
        r, times[jobs] = search(digits_args(tmp, jobs), DIGITS_SPACE, tmp, f"digits-speed-j{jobs}")
        chosen[jobs] = (tmp / f"digits-j{jobs}.tflite").read_bytes()
        print(f"--jobs {jobs}: digits, {r['counts']['executed']} trials run, {times[jobs]:.1f} s wall")
    print(f"speed-up of --jobs 2 over --jobs 1: {times[1] / times[2]:.2f}x, same chosen bytes: "
          f"{chosen[1] == chosen[2]} (2 cores shared; load average {os.getloadavg()[0]:.1f} at the end)")


def speedup(tmp: Path, count: int) -> None:
    folder = corpus_models()
    from fetch_photos import photo_folders
    calib, evaluation = photo_folders()
    models = sorted(folder.glob("*.tflite"), key=lambda p: p.stat().st_size)[:count]
    sub = tmp / "subset"
    sub.mkdir()
    for m in models:
        (sub / m.name).symlink_to(m)
    times = {}
    for jobs in (1, 2):
        args = [sub, "--calibration", calib, "--data", evaluation, "--goal", "min_cosine>=0.99",
                "--jobs", jobs, "-o", tmp / f"out-j{jobs}"]
        r, times[jobs] = search(args, CORPUS_SPACE, tmp, f"speed-j{jobs}")
        trials = sum(x["counts"]["executed"] for x in r["models"])
        print(f"--jobs {jobs}: {len(models)} corpus models, {trials} trials run, {times[jobs]:.1f} s wall")
    print(f"speed-up of --jobs 2 over --jobs 1: {times[1] / times[2]:.2f}x (2 shared cores; load average "
          f"{os.getloadavg()[0]:.1f} at the end)")


def corpus(tmp: Path, jobs: int) -> None:
    import numpy as np

    from tflopt.evaluation import compare_models
    from tflopt.io import load
    from tflopt.search.measure import EvalSpec, eval_samples, runnable_pair
    from fetch_photos import photo_folders
    calib, evaluation = photo_folders()
    folder = corpus_models()
    args = [folder, "--calibration", calib, "--data", evaluation, "--goal", "min_cosine>=0.99",
            "--minimize", "gzip_bytes", "--jobs", jobs, "-o", tmp / "chosen"]
    r, seconds = search(args, CORPUS_SPACE, tmp, "corpus")
    print(f"one command over {len(r['models'])} models, goal min_cosine>=0.99, minimise gzip: {seconds:.0f} s wall, "
          f"--jobs {jobs}, {sum(m['counts']['executed'] for m in r['models'])} trials")
    print(f"{'model':34} {'input':>10} {'float16':>10} {'int8':>10} {'chosen':>10} {'cos (re-measured)':>18}  pipeline")
    misses = 0
    for m, row in zip(r["models"], r["summary"]):
        def cell(f):
            return f"{'-':>10}" if f is None else f"{f['gzip_bytes']:>9,}{'' if f['meets_goals'] else '!'}"
        recheck = "-"
        if m["chosen"]:
            data = Path(m["model"]).read_bytes()
            chosen = Path(m["chosen"]["output"]).read_bytes()
            ref, cand, _ = runnable_pair(data, chosen)   # custom ops cut, as the search measured
            samples = eval_samples(ref, EvalSpec(str(evaluation)))
            cos = min(o["cosine"] for o in compare_models(ref, cand, samples, samples=None)["outputs"])
            misses += cos < 0.99
            recheck = f"{cos:.5f}"
            _ = load(chosen)
        size = f"{row['gzip_bytes']:>10,}" if row["gzip_bytes"] is not None else f"{'none':>10}"
        print(f"{Path(m['model']).stem[:34]:34} {row['input']:>10,} {cell(row['float16'])} {cell(row['int8'])} "
              f"{size} {recheck:>18}  {'-' if row['chosen'] is None else row['chosen'] or '(input unchanged)'}")
    print("('!': misses the goal on the evaluation photos)")
    print(f"chosen models missing the goal when re-measured: {misses}")
    total_in = sum(row["input"] for row in r["summary"])
    total = sum(row["gzip_bytes"] or row["input"] for row in r["summary"])
    f16 = sum(row["float16"]["gzip_bytes"] for row in r["summary"] if row["float16"])
    print(f"corpus gzip: input {total_in:,}, plain float16 {f16:,}, chosen {total:,} ({np.round(100 * (1 - total / total_in), 1)}% smaller)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--digits", action="store_true")
    ap.add_argument("--speedup", action="store_true", help="on the smallest corpus models")
    ap.add_argument("--speedup-digits", action="store_true", help="on the digits search")
    ap.add_argument("--corpus", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", default=None, help="folder for caches, outputs and the JSON (default: a temporary one)")
    ap.add_argument("--models", type=int, default=6, help="corpus models (smallest first) for --speedup")
    a = ap.parse_args()
    if not (a.digits or a.speedup or a.corpus or a.speedup_digits):
        a.digits = a.speedup = a.corpus = True
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        # --keep: caches, outputs and JSON stay there, so a rerun resumes from the cache.
        tmp = Path(a.keep) if a.keep else Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        if a.digits:
            digits(tmp, a.jobs)
        if a.speedup:
            speedup(tmp, a.models)
        if a.speedup_digits:
            speedup_digits(tmp)
        if a.corpus:
            corpus(tmp, a.jobs)


if __name__ == "__main__":
    main()
