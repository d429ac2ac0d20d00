"""Whole-process round trip (`tflopt optimize M -o O`, no passes) against `cp` of the same file:
wall time and peak memory (max RSS of the child), on a generated ~100 MB float32 model
(ResNet50-sized, 25M weights) and on the largest mediapipe model.

    python benchmarks/bench_roundtrip.py [--repeat 5] [--mb 100]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _child(cmd: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS in bytes) of one command run as a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss * 1024


def _best(cmd: list[str], repeat: int) -> tuple[float, int]:
    runs = [_child(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def _generated(path: Path, megabytes: int) -> None:
    # Built in a child so this process stays small: a child forked from a big parent would
    # inherit its resident pages in ru_maxrss.
    layers = max(1, round(megabytes * 2**20 / (2048 * 2048 * 4)))  # 2048x2048 float32 = 16 MB
    code = f"from tflopt.build import mlp; mlp([2048] * {layers + 1}).save({str(path)!r})"
    subprocess.run([sys.executable, "-c", code], check=True)


def _in_process(model: Path, out: Path, repeat: int) -> float:
    """Load + save inside one warm process: the round trip without interpreter start-up."""
    code = ("import sys, time, tflopt; best = 1e9\n"
            f"for _ in range({repeat}):\n"
            f"    t = time.perf_counter(); tflopt.load({str(model)!r}).save({str(out)!r}); "
            "best = min(best, time.perf_counter() - t)\n"
            "print(best)")
    r = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(r.stdout.strip().splitlines()[-1])


def _corpus_largest() -> Path | None:
    code = ("import sys; sys.path.insert(0, %r); from fetch_mediapipe import mediapipe_models; "
            "print(max(mediapipe_models(), key=lambda p: p.stat().st_size))") % str(ROOT / "fixtures")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        print("(corpus model skipped: the download failed)")
        return None
    return Path(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mb", type=int, default=100, help="size of the generated model")
    args = ap.parse_args()
    tflopt_cmd = [sys.executable, "-m", "tflopt"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = []
        big = tmp / "generated.tflite"
        _generated(big, args.mb)
        models.append(big)
        largest = _corpus_largest()
        if largest is not None:
            models.append(largest)
        print(f"{'model':28} {'MB':>7} {'tflopt s':>9} {'in-proc s':>9} {'cp s':>7} {'x cp':>6} "
              f"{'RSS MB':>8} {'RSS/size':>9}")
        for model in models:
            out = tmp / "out.tflite"
            size = model.stat().st_size
            t_opt, rss = _best(tflopt_cmd + ["optimize", str(model), "-o", str(out)], args.repeat)
            t_in = _in_process(model, out, args.repeat)
            t_cp, _ = _best(["cp", str(model), str(tmp / "copy.tflite")], args.repeat)
            print(f"{model.name:28} {size / 2**20:7.1f} {t_opt:9.3f} {t_in:9.3f} {t_cp:7.3f} {t_opt / t_cp:6.1f} "
                  f"{rss / 2**20:8.1f} {rss / size:9.2f}")
        # Start-up alone (interpreter + imports): the floor under any run of the command.
        t_help, rss_help = _best(tflopt_cmd + ["--help"], args.repeat)
        t_py, rss_py = _best([sys.executable, "-c", "import numpy"], args.repeat)
        print(f"start-up: tflopt --help {t_help:.3f} s / {rss_help / 2**20:.1f} MB RSS; "
              f"python -c 'import numpy' {t_py:.3f} s / {rss_py / 2**20:.1f} MB")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
