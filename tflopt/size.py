"""Size figures: raw bytes, gzip and zstd bytes (streamed, a chunk at a time), per-tensor tables."""
from __future__ import annotations

import mmap
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import zstandard

from .distinct import distinct_count
from .model import Model
from .parallel_gzip import ParallelGzip, gzip_length
from .runtime import cores

# The command-line tools' own default levels: fast enough to stay within seconds per 100 MB
# (zstd -19 runs at ~2 MB/s, 19 minutes for a 2 GB model); -9 / -19 stay available
# (``--gzip-level`` / ``--zstd-level``) for the last few percent.
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
# Inputs over 1 GiB default to gzip -1: on compressible weights (int8, pruned) -6 deflates
# 2-5x slower than -1 for 1-3% fewer bytes, minutes on a multi-GB model; on float32 weights
# the two differ by <0.2% in bytes and ~15% in time (benchmarks/bench_size.py).
LARGE_INPUT = 1 << 30
LARGE_GZIP_LEVEL = 1
_CHUNK = 4 << 20


def default_levels(nbytes: int, gzip_level: int | None = None, zstd_level: int | None = None) -> tuple[int, int]:
    """The (gzip, zstd) levels for inputs of at most ``nbytes`` (the largest of the files
    compared, so both sides of a before/after use the same); levels given are kept."""
    if gzip_level is None:
        gzip_level = LARGE_GZIP_LEVEL if nbytes > LARGE_INPUT else GZIP_LEVEL
    return gzip_level, ZSTD_LEVEL if zstd_level is None else zstd_level


def zstd_compressor(level: int = ZSTD_LEVEL) -> zstandard.ZstdCompressor:
    # Up to level 9 zstd is several times faster than the deflate threads it runs beside:
    # single-threaded (the multi-threaded mode only adds ~60 MB of job buffers there). From
    # 10 up zstd is the slow one (-19: ~2 MB/s a core): every core, in the multi-threaded
    # mode, whose bytes are the same for any worker count (within 0.2% of single-threaded
    # zstd on the fixtures, identical on most), so the figure does not depend on the machine.
    return zstandard.ZstdCompressor(level=level, threads=cores() if level >= 10 else 0)


def gzip_size(data, level: int = GZIP_LEVEL) -> int:
    return gzip_length(data, level)


def zstd_size(data, level: int = ZSTD_LEVEL) -> int:
    return len(zstd_compressor(level).compress(data))


class CompressedSizes:
    """A write-only sink that counts the bytes written and what gzip and zstd make of them,
    a chunk at a time: nothing is kept but the compressors' windows and a few blocks in
    flight. gzip is deflated on every core (ParallelGzip: one stream, within a sync marker
    per MiB of ``gzip.compress``) while zstd runs here (see zstd_compressor). zstd is told
    the total size up front when known (the frame header then records it, as a one-shot
    compression does)."""

    def __init__(self, gzip_level: int = GZIP_LEVEL, zstd_level: int = ZSTD_LEVEL, size: int | None = None):
        self.gzip_level, self.zstd_level = gzip_level, zstd_level
        self.raw = self._gzip = self._zstd = 0
        self._gz = ParallelGzip(None, gzip_level)
        zs = zstd_compressor(zstd_level)
        self._zs = zs.compressobj(size=size) if size is not None else zs.compressobj()

    def write(self, b) -> None:
        self.raw += len(b)
        self._gz.write(b)
        self._zstd += len(self._zs.compress(b))

    def result(self) -> dict:
        if self._gz is not None:
            self._gzip = self._gz.close()
            self._zstd += len(self._zs.flush())
            self._gz = None
        return {"raw_bytes": self.raw, "gzip_bytes": self._gzip, "zstd_bytes": self._zstd,
                "gzip_level": self.gzip_level, "zstd_level": self.zstd_level}


def file_sizes(path, *, gzip_level: int = GZIP_LEVEL, zstd_level: int = ZSTD_LEVEL) -> dict:
    """Raw, gzip and zstd bytes of a file, read through a memory map a chunk at a time (its
    pages dropped once compressed), so a 2 GB file costs a few MB of memory."""
    path = Path(path)
    n = path.stat().st_size
    sink = CompressedSizes(gzip_level, zstd_level, size=n)
    if n:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            mv = memoryview(mm)
            try:
                done = 0
                for lo in range(0, n, _CHUNK):
                    sink.write(mv[lo:lo + _CHUNK])
                    # Pages of the chunk before the one just handed over are no longer read.
                    if lo > done and hasattr(mm, "madvise"):
                        mm.madvise(mmap.MADV_DONTNEED, done, lo - done)
                        done = lo
                out = sink.result()
            finally:
                mv.release()
    else:
        out = sink.result()
    return out


def model_sizes(model: Model, *, gzip_level: int = GZIP_LEVEL, zstd_level: int = ZSTD_LEVEL,
                layout: str = "auto") -> dict:
    """The same figures for a model as it would be written, streamed through the writer
    (never the whole file in memory)."""
    from .io import stream
    sink = CompressedSizes(gzip_level, zstd_level, size=model.serialized_size(layout=layout))
    stream(model, sink, layout=layout)
    return sink.result()


@dataclass
class TensorSize:
    subgraph: int
    index: int
    name: str
    dtype: str
    shape: list[int]
    elements: int
    bytes: int
    unique_values: int | None
    zero_fraction: float


# Distinct values of wider tensors than this are counted only when asked (``exact_unique``):
# counting needs a sort, ~5 s per 67M float32 values, most of `tflopt size` on a 2 GB model.
# 8- and 16-bit tensors are always counted (a histogram of their bit patterns, linear time).
UNIQUE_SORT_LIMIT = 1 << 24


def _distinct_by_histogram(values: np.ndarray) -> int:
    """distinct_count for 8- and 16-bit dtypes from a histogram of bit patterns (float16:
    0.0 and -0.0 once, NaNs once, as distinct_count counts them)."""
    bits = values.view(np.uint8 if values.dtype.itemsize == 1 else np.uint16)
    seen = np.bincount(bits, minlength=1 << (8 * values.dtype.itemsize)) > 0
    n = int(np.count_nonzero(seen))
    if values.dtype == np.float16:
        n -= int(seen[0] and seen[0x8000])
        patterns = np.arange(seen.size)
        nans = int(np.count_nonzero(seen[(patterns & 0x7FFF) > 0x7C00]))
        n -= max(nans - 1, 0)
    return n


def _unique_count(values: np.ndarray, exact: bool) -> int | None:
    if values.size == 0:
        return 0
    if values.dtype.itemsize <= 2 and values.dtype.kind in "iuf":
        return _distinct_by_histogram(values)
    if values.size > UNIQUE_SORT_LIMIT and not exact:
        return None
    return distinct_count(values)


def tensor_table(model: Model, *, exact_unique: bool = False) -> list[TensorSize]:
    """One row per constant tensor (buffers shared by several tensors are listed for each);
    ``unique_values`` is None for tensors over ``UNIQUE_SORT_LIMIT`` 32/64-bit values unless
    ``exact_unique``."""
    rows = []
    for si, sg in enumerate(model.subgraphs):
        for t in sg.tensors:
            if not t.is_constant:
                continue
            data = t.data
            values = np.asarray(data).reshape(-1)
            unique = _unique_count(values, exact_unique)
            zeros = float(np.count_nonzero(values == 0) / values.size) if values.size else 0.0
            if t.sparsity is not None:
                # Stored values only: elements not stored are zeros too.
                zeros = 1.0 - (values.size - np.count_nonzero(values == 0)) / max(t.num_elements, 1)
            rows.append(TensorSize(si, t.index, t.name, t.type_name, list(t.shape), t.num_elements,
                                   t.buffer.nbytes, unique, round(zeros, 6)))
            del data, values
            t.buffer.release_source()  # one tensor's file pages resident at a time
    return rows


def measure(source, *, tensors: bool = True, zstd_level: int = ZSTD_LEVEL, gzip_level: int = GZIP_LEVEL,
            exact_unique: bool = False) -> dict:
    """``{raw_bytes, gzip_bytes, zstd_bytes, gzip_level, zstd_level, tensors}`` for a model,
    a file path or serialised bytes; files and models are streamed, never read whole."""
    if isinstance(source, Model):
        model = source
        out = model_sizes(model, gzip_level=gzip_level, zstd_level=zstd_level)
    elif isinstance(source, (str, os.PathLike)):
        from .io import load
        out = file_sizes(source, gzip_level=gzip_level, zstd_level=zstd_level)
        model = load(source) if tensors else None
    else:
        from .io import load
        data = bytes(source)
        sink = CompressedSizes(gzip_level, zstd_level, size=len(data))
        sink.write(data)
        out = sink.result()
        model = load(data) if tensors else None
    if tensors:
        out["tensors"] = [asdict(r) for r in tensor_table(model, exact_unique=exact_unique)]
    return out


def compare(a: dict, b: dict) -> dict:
    """Deltas between two ``measure`` results (b relative to a)."""
    out = {}
    for key in ("raw_bytes", "gzip_bytes", "zstd_bytes"):
        before, after = a[key], b[key]
        out[key] = {"before": before, "after": after, "delta": after - before,
                    "ratio": round(after / before, 6) if before else None}
    return out


def summary_line(before: int, after: int) -> str:
    """'528,128 -> 334,154 (36.73%)': the saving as the seeds word it."""
    saved = (before - after) / before * 100 if before else 0.0
    return f"{before:,} -> {after:,} ({saved:.2f}%)"


# -- the before / after figures weight passes report ------------------------------------------
# Per-pass and per-tensor figures are computed before and after every pass, so they use
# the fastest levels, gzip -1 and zstd -3, run side by side (CompressedSizes): gzip -6 /
# zstd -9 cost a fifth of a ResNet50 recovery run; on half-zero weights these are ~1% (zstd)
# and ~8% (gzip) above them, before and after alike, so the before -> after saving keeps its
# meaning (benchmarks/compression_table.py reports -9 / -19; `tflopt size` any level).
FIGURES_GZIP_LEVEL = 1
FIGURES_ZSTD_LEVEL = 3


_SAME = ("name", "op", "shape", "elements")


def size_stats(before: dict, after: dict) -> dict:
    """One per-tensor row: identity once, then every figure as x_before / x_after."""
    row = {k: before[k] for k in _SAME}
    for k, v in before.items():
        if k not in _SAME:
            row[f"{k}_before"] = v
            row[f"{k}_after"] = after.get(k)
    return row


def pass_sizes(model, before: dict | None = None, *, compress: bool = True) -> dict:
    """Whole-file raw (and gzip/zstd unless ``compress`` is off) sizes; given the earlier
    figures, both and the summary lines."""
    if compress:  # streamed through the writer: the file is never held whole
        r = model_sizes(model, gzip_level=FIGURES_GZIP_LEVEL, zstd_level=FIGURES_ZSTD_LEVEL)
        now = {"raw": r["raw_bytes"], "gzip": r["gzip_bytes"], "zstd": r["zstd_bytes"],
               "gzip_level": FIGURES_GZIP_LEVEL, "zstd_level": FIGURES_ZSTD_LEVEL}
    else:
        now = {"raw": model.serialized_size()}
    if before is None:
        return now
    return {"size": {"before": before, "after": now,
                     "summary": {k: summary_line(before[k], now[k]) for k in ("raw", "gzip", "zstd") if k in now}}}
