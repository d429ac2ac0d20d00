"""Weights computed while the model is written, a block of rows at a time.

A pass that rewrites every large constant (float16, dynamic int8) records how each new one
is computed from the old one's bytes (memory-mapped from the input); the writer computes
them one at a time while streaming the file, each from blocks of source rows whose file pages
are dropped once read. Peak memory is then near the largest output tensor, not the model
(a 2.4 GB model becomes float16 in ~0.1 of its size). The element-wise functions given are
the passes' own, so the bytes are those the whole-array computation gives.
"""
from __future__ import annotations

import mmap
import tempfile
from typing import Callable

import numpy as np

from .io import _release
from .model import Buffer, Tensor
from .schema import TensorType

BLOCK_BYTES = 4 << 20  # source bytes per block: its temporaries stay a few times this
# Rewritten constants from this size on are parked in a temporary file rather than kept in
# memory (see ``store``); smaller ones are not worth a mapping each.
SPILL_BYTES = 8 << 20
FLOAT_TYPES = {TensorType.FLOAT32: np.float32, TensorType.FLOAT16: np.float16}


def deferrable(t: Tensor) -> bool:
    """A dense float constant: the case whose values are its bytes, read by row blocks."""
    return (t.type in FLOAT_TYPES and t.sparsity is None and t.buffer is not None and t.num_elements > 0
            and t.buffer.nbytes == t.num_elements * np.dtype(FLOAT_TYPES[t.type]).itemsize)


def _blocks(source: Buffer, dtype, shape: tuple[int, ...]):
    """(lo, hi, block) row blocks of the source values (float32), dropping each block's file
    pages once the caller is done with it."""
    # write_view: a deferred source (float16 then dynamic) is computed for this read, not kept.
    values = np.frombuffer(source.write_view(), dtype).reshape(shape)
    if values.ndim == 0:
        yield 0, 1, values.astype(np.float32)
        return
    row = max(1, values[0].nbytes)
    step = max(1, BLOCK_BYTES // row)
    for lo in range(0, shape[0], step):
        hi = min(shape[0], lo + step)
        yield lo, hi, values[lo:hi].astype(np.float32)
        _release(source, lo * row, hi * row)


def map_rows(t: Tensor, fn: Callable[[np.ndarray, int, int], np.ndarray], out_dtype) -> Buffer:
    """A deferred Buffer of ``fn(float32 rows lo:hi, lo, hi)`` over the constant ``t`` (which
    must be ``deferrable``), stacked; ``fn`` must be element-wise along the first axis."""
    source = t.buffer.snapshot()
    dtype, shape = FLOAT_TYPES[t.type], t.shape
    out_dtype = np.dtype(out_dtype)

    def make() -> np.ndarray:
        out = np.empty(shape, out_dtype)
        for lo, hi, block in _blocks(source, dtype, shape):
            if out.ndim == 0:
                out[()] = fn(block, lo, hi)
            else:
                out[lo:hi] = fn(block, lo, hi)
        return out

    return Buffer.deferred(make, t.num_elements * out_dtype.itemsize)


def abs_max(t: Tensor, axis: int | None) -> np.ndarray:
    """max |values| of a ``deferrable`` constant, over all but ``axis`` (everything when None),
    shaped to keep ``axis`` (size 1 elsewhere): read by row blocks, file pages dropped."""
    source = t.buffer.snapshot()
    shape = t.shape
    ndim = len(shape)
    acc = None
    for lo, hi, block in _blocks(source, FLOAT_TYPES[t.type], shape):
        if axis is None or ndim == 0:
            m = np.max(np.abs(block)).reshape((1,) * max(ndim, 1))
        else:
            m = np.max(np.abs(block), axis=tuple(i for i in range(ndim) if i != axis and i != 0), keepdims=True)
            if axis != 0:
                m = np.max(m, axis=0, keepdims=True)
        if acc is None or axis == 0:
            acc = m if acc is None else np.concatenate([acc, m], axis=0)
        else:
            acc = np.maximum(acc, m)
    return acc


_spill_file = None


def spilled(array: np.ndarray) -> Buffer:
    """A Buffer of ``array``'s bytes parked in an unlinked temporary file and mapped
    read-only: the bytes live in the page cache, not in this process, until the writer streams
    them (and drops their pages again, as for the input file)."""
    global _spill_file
    arr = np.ascontiguousarray(array)
    if arr.dtype.byteorder == ">":
        arr = arr.byteswap().view(arr.dtype.newbyteorder("<"))
    data = memoryview(arr.reshape(-1).view(np.uint8))
    if _spill_file is None:
        _spill_file = tempfile.TemporaryFile(prefix="tflopt-spill-")
    f = _spill_file
    grain = mmap.ALLOCATIONGRANULARITY
    start = -(-f.seek(0, 2) // grain) * grain   # mappings start on a granule
    f.seek(start)
    f.write(data)
    f.flush()
    return Buffer(source=mmap.mmap(f.fileno(), data.nbytes, offset=start, access=mmap.ACCESS_READ),
                  size=data.nbytes)


def store(t: Tensor, array: np.ndarray) -> None:
    """Replace a constant's bytes with ``array`` (type and stored shape kept), the pass having
    done with the old ones: their input pages are dropped, and a large result is parked in a
    temporary file (``spilled``) so a pass rewriting weights one at a time holds about one
    tensor, not the rewritten model."""
    array = np.asarray(array)
    if array.nbytes < max(SPILL_BYTES, 1):
        t.set_data(array, t.type)
        return
    if t.buffer is not None:
        t.buffer.release_source()
    t.set_buffer(spilled(array))
