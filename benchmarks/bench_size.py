"""How fast the size figures are, and how close to `gzip -N` / `zstd -N` (issue 15).

Two tables, every variant run in turn on the same input (interleaved), medians of --repeat:

``deflaters``: seconds per 100 MB and bytes against one-shot zlib at the same level for
tflopt's ParallelGzip on one thread and on every core, and (when installed, they are not
dependencies) zlib-ng and ISA-L at the same level number; zstd single- against
multi-threaded. Inputs: the given files, plus two compressible ones made from ResNet50's
weights (half of them zeroed; rounded to int8), like pruned and quantized models.

``commands``: ``tflopt size --json`` as whole child processes, wall time, CPU time (user +
system: what the work costs whatever else runs on the machine) and peak RSS (``ru_maxrss``); with ``--baseline DIR`` the same command from another checkout (e.g. the
commit before this work) alternates with this one.

    python benchmarks/bench_size.py [--files a.tflite,...] [--levels 1,6] [--repeat 3]
        [--tables deflaters,commands] [--baseline /path/to/checkout]

The load average is printed beside every table: timings on a shared machine vary with it.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import zstandard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_scale import CACHE, child, median  # noqa: E402

from tflopt.parallel_gzip import ParallelGzip  # noqa: E402
from tflopt.runtime import cores  # noqa: E402

DEFAULT_FILES = ["mlp_2048x6.tflite", "resnet50_fp32.tflite"]
COMMAND_FILES = ["mlp_2048x6.tflite", "resnet50_fp32.tflite", "mlp_4096x7.tflite", "mlp_8192x9_ext.tflite"]


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def compressible(resnet: Path) -> dict[str, bytes]:
    """ResNet50's float32 weights pruned by half (smallest magnitudes zeroed) and rounded to
    int8 (scale 100): the kinds of weights tflopt writes."""
    raw = np.frombuffer(resnet.read_bytes(), np.uint8)
    w = np.nan_to_num(raw[: raw.size // 4 * 4].view(np.float32), posinf=0, neginf=0)
    w = np.where(np.abs(w) < 1e3, w, 0).astype(np.float32)
    pruned = np.where(np.abs(w) < np.median(np.abs(w)), 0, w).astype(np.float32)
    return {"resnet50 pruned 50%": pruned.tobytes(),
            "resnet50 as int8": np.clip(np.round(w * 100), -127, 127).astype(np.int8).tobytes()}


def _optional(name: str):
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


def _zlib_like(mod, level: int):
    def run(data: bytes) -> int:
        c = mod.compressobj(level, zlib.DEFLATED, 31)
        return len(c.compress(data)) + len(c.flush())
    return run


def _parallel(level: int, threads: int):
    def run(data: bytes) -> int:
        gz = ParallelGzip(None, level, threads=threads)
        for lo in range(0, len(data), 4 << 20):  # as file_sizes hands the file over
            gz.write(memoryview(data)[lo:lo + (4 << 20)])
        return gz.close()
    return run


def _zstd(level: int, threads: int):
    def run(data: bytes) -> int:
        z = zstandard.ZstdCompressor(level=level, threads=threads).compressobj(size=len(data))
        return sum(len(z.compress(memoryview(data)[lo:lo + (4 << 20)])) for lo in range(0, len(data), 4 << 20)) \
            + len(z.flush())
    return run


def deflaters(inputs: dict[str, bytes], levels: list[int], repeat: int) -> None:
    ng, isal = _optional("zlib_ng.zlib_ng"), _optional("isal.isal_zlib")
    n = cores()
    print(f"\n## deflaters ({n} cores, {load()})")
    print(f"{'input':22} {'compressor':28} {'s/100MB':>8} {'bytes':>14} {'vs ref':>8}")
    for name, data in inputs.items():
        for level in levels:
            variants = {f"zlib -{level} one-shot (ref)": _zlib_like(zlib, level),
                        f"ParallelGzip -{level} 1 thread": _parallel(level, 1),
                        f"ParallelGzip -{level} {n} threads": _parallel(level, n)}
            if ng is not None:
                variants[f"zlib-ng -{level}"] = _zlib_like(ng, level)
            if isal is not None:
                variants[f"isal -{min(level, 3)}"] = _zlib_like(isal, min(level, 3))
            _table(name, data, variants, repeat)
        _table(name, data, {"zstd -3 single-thread (ref)": _zstd(3, 0), f"zstd -3 threads={n}": _zstd(3, n)}, repeat)
    if ng is None or isal is None:
        print("(zlib-ng / isal rows need `pip install zlib-ng isal`; they are not tflopt dependencies)")


def _table(name: str, data: bytes, variants: dict, repeat: int) -> None:
    times: dict[str, list[float]] = {k: [] for k in variants}
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        for k, fn in variants.items():
            t0 = time.perf_counter()
            sizes[k] = fn(data)
            times[k].append(time.perf_counter() - t0)
    ref = sizes[next(iter(variants))]
    for k in variants:
        per = median(times[k]) / len(data) * 1e8
        print(f"{name[:22]:22} {k:28} {per:8.2f} {sizes[k]:>14,} {(sizes[k] / ref - 1) * 100:+7.2f}%")


def commands(files: list[Path], repeat: int, baseline: Path | None) -> None:
    print(f"\n## tflopt size --json, whole process ({load()} at start)")
    print(f"{'model':28} {'MB':>6} {'checkout':9} {'wall s':>8} {'cpu s':>7} {'peak MB':>8} {'peak/file':>9}  load")
    runs = {"this": ROOT, **({"baseline": baseline} if baseline else {})}
    for path in files:
        got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in runs}
        for _ in range(repeat):
            for k, tree in runs.items():  # interleaved: the same load for both
                code = f"import sys; sys.path.insert(0, {str(tree)!r}); from tflopt.cli import entry; entry()"
                cpu = _children_cpu()
                wall, peak = child([sys.executable, "-c", code, "size", str(path), "--json"])
                got[k].append((wall, _children_cpu() - cpu, peak))
        size = path.stat().st_size
        for k, rs in got.items():
            wall, cpu, peak = median([r[0] for r in rs]), median([r[1] for r in rs]), max(r[2] for r in rs)
            print(f"{path.name[:28]:28} {size / 1e6:6.0f} {k:9} {wall:8.1f} {cpu:7.1f} {peak / 1e6:8.0f} "
                  f"{peak / size:9.2f}  {load()}")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", default="", help="comma-separated .tflite paths (default: bench cache models)")
    ap.add_argument("--levels", default="1,6")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tables", default="deflaters,commands")
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout to time `tflopt size` from")
    a = ap.parse_args(argv)
    tables = a.tables.split(",")
    levels = [int(x) for x in a.levels.split(",")]
    given = [Path(p) for p in a.files.split(",") if p]
    if "deflaters" in tables:
        paths = given or [CACHE / f for f in DEFAULT_FILES if (CACHE / f).exists()]
        inputs = {p.name: p.read_bytes() for p in paths}
        if (CACHE / "resnet50_fp32.tflite").exists():
            inputs.update(compressible(CACHE / "resnet50_fp32.tflite"))
        deflaters(inputs, levels, a.repeat)
    if "commands" in tables:
        files = given or [CACHE / f for f in COMMAND_FILES if (CACHE / f).exists()]
        commands(files, a.repeat, a.baseline)


if __name__ == "__main__":
    main()
