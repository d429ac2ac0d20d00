"""Size figures: raw bytes, gzip -9 (as the TFLite docs measure), zstd, and per-tensor tables."""
from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass

import numpy as np
import zstandard

from .distinct import distinct_count
from .model import Model

ZSTD_LEVEL = 19


def gzip_size(data: bytes, level: int = 9) -> int:
    # mtime=0 so the figure (and any written archive) is reproducible.
    return len(gzip.compress(data, compresslevel=level, mtime=0))


def zstd_size(data: bytes, level: int = ZSTD_LEVEL) -> int:
    return len(zstandard.ZstdCompressor(level=level).compress(data))


@dataclass
class TensorSize:
    subgraph: int
    index: int
    name: str
    dtype: str
    shape: list[int]
    elements: int
    bytes: int
    unique_values: int
    zero_fraction: float


def tensor_table(model: Model) -> list[TensorSize]:
    """One row per constant tensor (buffers shared by several tensors are listed for each)."""
    rows = []
    for si, sg in enumerate(model.subgraphs):
        for t in sg.tensors:
            if not t.is_constant:
                continue
            data = t.data
            values = np.asarray(data).reshape(-1)
            unique = distinct_count(values)
            zeros = float(np.count_nonzero(values == 0) / values.size) if values.size else 0.0
            if t.sparsity is not None:
                # Stored values only: elements not stored are zeros too.
                zeros = 1.0 - (values.size - np.count_nonzero(values == 0)) / max(t.num_elements, 1)
            rows.append(TensorSize(si, t.index, t.name, t.type_name, list(t.shape), t.num_elements,
                                   t.buffer.nbytes, unique, round(zeros, 6)))
    return rows


def measure(model_or_bytes, *, tensors: bool = True, zstd_level: int = ZSTD_LEVEL) -> dict:
    """``{raw_bytes, gzip_bytes, zstd_bytes, tensors}`` for a model or serialised bytes."""
    if isinstance(model_or_bytes, Model):
        model, data = model_or_bytes, model_or_bytes.to_bytes()
    else:
        from .io import load
        data = bytes(model_or_bytes)
        model = load(data) if tensors else None
    out = {"raw_bytes": len(data), "gzip_bytes": gzip_size(data), "zstd_bytes": zstd_size(data, zstd_level),
           "zstd_level": zstd_level}
    if tensors:
        out["tensors"] = [asdict(r) for r in tensor_table(model)]
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
