"""TFLite's sparse tensor format (TACO-style ``SparsityParameters``): decode and encode.

A sparse tensor keeps its dense ``shape``; its buffer holds only the stored values, in
traversal order. Each original dimension may be split by a block dimension (``block_map``);
the expanded dimensions are visited in ``traversal_order``, one ``dim_metadata`` entry per
visited level, each DENSE (every coordinate stored) or SPARSE_CSR (only coordinates whose
sub-tree holds a non-zero; ``array_segments`` are row pointers, ``array_indices`` the
coordinates). Decoding and encoding both walk the levels with whole-array numpy operations,
so a level costs O(stored entries), never a Python loop per element.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import quote
from .schema import fb

DENSE = fb.DimensionType.DENSE
SPARSE_CSR = fb.DimensionType.SPARSE_CSR

_INDEX_VECTORS = (  # narrowest first: the converter picks the smallest type the largest value fits
    (np.uint8, fb.SparseIndexVector.Uint8Vector, fb.Uint8VectorT),
    (np.uint16, fb.SparseIndexVector.Uint16Vector, fb.Uint16VectorT),
    (np.int32, fb.SparseIndexVector.Int32Vector, fb.Int32VectorT),
)


@dataclass
class Layout:
    """Where the expanded dimensions come from: level sizes in traversal order and the map
    from each expanded dimension back to (original dimension, block size or 0)."""

    dense_shape: tuple[int, ...]
    traversal_order: list[int]
    block_map: list[int]
    block_sizes: list[int]

    @property
    def rank(self) -> int:
        return len(self.dense_shape)

    def expanded_shape(self) -> list[int]:
        """Sizes of the n outer dims (blocked dims divided, rounded up) then the k block dims."""
        shape = list(self.dense_shape)
        for d, b in zip(self.block_map, self.block_sizes):
            shape[d] = -(-shape[d] // b)
        return shape + list(self.block_sizes)

    def level_sizes(self) -> list[int]:
        expanded = self.expanded_shape()
        return [expanded[d] for d in self.traversal_order]


def _index_vector_values(vec) -> np.ndarray:
    if vec is None or vec.values is None:
        return np.zeros(0, np.int64)
    return np.asarray(vec.values).astype(np.int64, copy=False)


def check(shape, sparsity: "fb.SparsityParametersT", n_values: int | None = None) -> str | None:
    """The first problem with a tensor's sparse index metadata, or None when ``decode`` (and
    the runtime's DENSIFY / sparse kernels) can walk it: the traversal order a permutation of
    the expanded dimensions, blocks positive and DENSE, each DENSE level the size of its
    dimension, each SPARSE_CSR level's segments one per parent plus one, starting at 0,
    non-decreasing and ending at the number of indices, every index inside its dimension, and
    no more stored nodes than values. Index arrays are checked whole-array, never per element."""
    n = len(shape)
    if any(int(d) < 0 for d in shape):
        return "sparsity: negative dimension in the dense shape"
    order = [int(x) for x in (sparsity.traversalOrder if sparsity.traversalOrder is not None else [])]
    block_map = [int(x) for x in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    dims = sparsity.dimMetadata or []
    k = len(block_map)
    if sorted(order) != list(range(n + k)) or len(dims) != len(order):
        return (f"sparsity: traversal order {quote(order)} with {len(dims)} dim_metadata entries does not "
                f"fit a rank-{n} tensor with {k} block dimension(s)")
    if sorted(set(block_map)) != sorted(block_map) or any(not 0 <= d < n for d in block_map):
        return f"sparsity: block map {quote(block_map)} is not distinct dimensions of a rank-{n} tensor"
    for j in range(k):
        dm = dims[order.index(n + j)]
        if dm.format != DENSE or int(dm.denseSize) <= 0:
            return "sparsity: block dimensions must be DENSE with a positive size"
    layout = layout_of(shape, sparsity)
    sizes = layout.level_sizes()
    nodes = 1
    for level, (dm, size) in enumerate(zip(dims, sizes)):
        if dm.format == DENSE:
            if int(dm.denseSize) != size:
                return f"sparsity: level {level} dense_size {dm.denseSize} does not match its dimension ({size})"
            nodes *= size
            continue
        if dm.format != SPARSE_CSR:
            return f"sparsity: level {level} has unknown format {dm.format}"
        if dm.arraySegments is None or dm.arrayIndices is None:
            return f"sparsity: level {level} is SPARSE_CSR without segments or indices"
        seg = _index_vector_values(dm.arraySegments)
        idx = _index_vector_values(dm.arrayIndices)
        if seg.size != nodes + 1:
            return f"sparsity: level {level} has {seg.size} segments for {nodes} parents (needs {nodes + 1})"
        if seg[0] != 0 or seg[-1] != idx.size or np.any(np.diff(seg) < 0):
            return (f"sparsity: level {level} segments must start at 0, never decrease and end at the "
                    f"{idx.size} indices")
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            return f"sparsity: level {level} has indices outside its dimension of size {size}"
        nodes = int(idx.size)
    if n_values is not None and nodes > n_values:
        return f"sparsity: the index metadata addresses {nodes} values, the buffer holds {n_values}"
    return None


def layout_of(shape, sparsity: "fb.SparsityParametersT") -> Layout:
    n = len(shape)
    order = [int(x) for x in sparsity.traversalOrder]
    block_map = [int(x) for x in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    dims = sparsity.dimMetadata or []
    if len(order) != n + len(block_map) or len(dims) != len(order):
        raise ValueError(f"sparsity: traversal order {order} and {len(dims)} dim_metadata entries "
                         f"do not fit a rank-{n} tensor with block map {block_map}")
    block_sizes = []
    for j in range(len(block_map)):
        level = order.index(n + j)
        if dims[level].format != DENSE:
            raise ValueError("sparsity: block dimensions must be DENSE")
        block_sizes.append(int(dims[level].denseSize))
    return Layout(tuple(int(s) for s in shape), order, block_map, block_sizes)


def decode(values: np.ndarray, shape, sparsity: "fb.SparsityParametersT") -> np.ndarray:
    """Dense array (values' dtype, ``shape``) from stored values and their sparsity parameters."""
    problem = check(shape, sparsity, np.asarray(values).size)
    if problem:
        raise ValueError(problem)
    layout = layout_of(shape, sparsity)
    sizes = layout.level_sizes()
    pos = np.zeros(1, np.int64)           # positions of the current level's nodes
    coords: list[np.ndarray] = []         # per visited level, the coordinate of each node
    for level, dm in enumerate(sparsity.dimMetadata):
        if dm.format == DENSE:
            s = sizes[level]
            if int(dm.denseSize) != s:
                raise ValueError(f"sparsity: level {level} dense_size {dm.denseSize} != {s}")
            coords = [np.repeat(c, s) for c in coords] + [np.tile(np.arange(s, dtype=np.int64), pos.size)]
            pos = (pos[:, None] * s + np.arange(s, dtype=np.int64)).ravel()
        else:
            seg = _index_vector_values(dm.arraySegments)
            idx = _index_vector_values(dm.arrayIndices)
            start, stop = seg[pos], seg[pos + 1]
            counts = stop - start
            # Every child position start..stop-1 of every parent, without a loop over parents.
            child = np.repeat(start - np.cumsum(counts) + counts, counts) + np.arange(counts.sum(), dtype=np.int64)
            coords = [np.repeat(c, counts) for c in coords] + [idx[child]]
            pos = child
    values = np.asarray(values).reshape(-1)
    if pos.size and pos.max() >= values.size:
        raise ValueError(f"sparsity: needs {pos.max() + 1} stored values, the buffer has {values.size}")
    n = layout.rank
    expanded = [None] * len(layout.traversal_order)
    for level, d in enumerate(layout.traversal_order):
        expanded[d] = coords[level]
    full = list(expanded[:n])
    for j, (d, b) in enumerate(zip(layout.block_map, layout.block_sizes)):
        full[d] = full[d] * b + expanded[n + j]
    dense = np.zeros(layout.dense_shape, values.dtype)
    if n == 0:
        return values[:1].reshape(()) if values.size else dense
    # Blocks may overhang a dimension that is not a multiple of the block: drop the padding.
    inside = np.ones(pos.size, bool)
    for d in range(n):
        inside &= full[d] < layout.dense_shape[d]
    flat = np.ravel_multi_index(tuple(c[inside] for c in full), layout.dense_shape)
    dense.reshape(-1)[flat] = values[pos[inside]]
    return dense


def to_dense(tensor) -> np.ndarray:
    """A tflopt Tensor's dense values in its stored dtype and dense shape (sparse or not)."""
    data = tensor.data
    if data is None:
        raise ValueError(f"tensor {tensor.name!r} has no constant data")
    if tensor.sparsity is None:
        return np.asarray(data)
    return decode(data, tensor.shape, tensor.sparsity)


def _index_vector(values: np.ndarray):
    top = int(values.max()) if values.size else 0
    for dtype, union_type, cls in _INDEX_VECTORS:
        if top <= np.iinfo(dtype).max:
            vec = cls()
            vec.values = values.astype(dtype)
            return union_type, vec
    raise ValueError("sparse index does not fit int32")


def encode(dense: np.ndarray, *, block: tuple[int, ...] | None = None, block_dims: list[int] | None = None,
           traversal_order: list[int] | None = None, formats: list[int] | None = None
           ) -> tuple[np.ndarray, "fb.SparsityParametersT"]:
    """(stored values, SparsityParametersT) for a dense array.

    ``block`` gives one block size per blocked dimension (``block_dims``, default the last
    ones, e.g. block=(4,) on a [out, in] weight is the FC kernel's 1x4); ``traversal_order``
    defaults to the dimensions in order then the block dims; ``formats`` (one per level)
    defaults to the converter's choice: original dims DENSE except the last, which is
    SPARSE_CSR, and block dims DENSE.
    """
    dense = np.asarray(dense)
    n = dense.ndim
    block = tuple(int(b) for b in (block or ()))
    block_dims = list(block_dims) if block_dims is not None else list(range(n - len(block), n))
    if len(block_dims) != len(block):
        raise ValueError("encode: one block dimension per block size")
    layout = Layout(dense.shape, list(traversal_order) if traversal_order is not None else list(range(n + len(block))),
                    block_dims, list(block))
    if formats is None:
        formats = [DENSE] * len(layout.traversal_order)
        formats[n - 1] = SPARSE_CSR
    if any(formats[layout.traversal_order.index(n + j)] != DENSE for j in range(len(block))):
        raise ValueError("encode: block dimensions must be DENSE")
    expanded = _expand(dense, layout)
    nonzero = expanded != 0
    sizes = layout.level_sizes()
    params = fb.SparsityParametersT()
    params.traversalOrder = list(layout.traversal_order)
    params.blockMap = list(block_dims) if block else None
    params.dimMetadata = []
    prefix = np.zeros(1, np.int64)        # flat index of each stored node over the levels so far
    for level, (fmt, s) in enumerate(zip(formats, sizes)):
        dm = fb.DimensionMetadataT()
        dm.format = fmt
        cand = (prefix[:, None] * s + np.arange(s, dtype=np.int64))
        if fmt == DENSE:
            dm.denseSize = s
            prefix = cand.ravel()
        else:
            reach = nonzero.any(axis=tuple(range(level + 1, len(sizes)))) if level + 1 < len(sizes) else nonzero
            keep = reach.reshape(-1)[cand]
            dm.arraySegmentsType, dm.arraySegments = _index_vector(
                np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64))
            dm.arrayIndicesType, dm.arrayIndices = _index_vector(
                np.broadcast_to(np.arange(s, dtype=np.int64), cand.shape)[keep])
            prefix = cand[keep]
        params.dimMetadata.append(dm)
    values = expanded.reshape(-1)[prefix]
    return values, params


def _expand(dense: np.ndarray, layout: Layout) -> np.ndarray:
    """The dense array in expanded layout (outer dims, block dims) and traversal order."""
    n = layout.rank
    shape = list(dense.shape)
    pad = [(0, 0)] * n
    for d, b in zip(layout.block_map, layout.block_sizes):
        pad[d] = (0, -shape[d] % b)
    if any(p[1] for p in pad):
        dense = np.pad(dense, pad)
    # Split each blocked dim d into (outer, inner); inner axes go to the end in block order.
    split_shape, outer_axes, inner_axes = [], [], {}
    for d in range(n):
        if d in layout.block_map:
            b = layout.block_sizes[layout.block_map.index(d)]
            outer_axes.append(len(split_shape))
            inner_axes[d] = len(split_shape) + 1
            split_shape += [dense.shape[d] // b, b]
        else:
            outer_axes.append(len(split_shape))
            split_shape.append(dense.shape[d])
    axes = outer_axes + [inner_axes[d] for d in layout.block_map]
    expanded = dense.reshape(split_shape).transpose(axes)
    return np.ascontiguousarray(expanded.transpose(layout.traversal_order))


def stored_nbytes(values: np.ndarray, sparsity: "fb.SparsityParametersT") -> int:
    """Bytes of values plus index arrays (the flatbuffer's own table overhead aside)."""
    total = np.asarray(values).nbytes
    for dm in sparsity.dimMetadata or []:
        for vec in (dm.arraySegments, dm.arrayIndices):
            if vec is not None and vec.values is not None:
                total += np.asarray(vec.values).nbytes
    return total


def block_density(dense: np.ndarray, block: tuple[int, int]) -> float:
    """Fraction of (rows x cols) blocks of a 2-D array holding any non-zero."""
    rows, cols = block
    h, w = dense.shape
    padded = np.pad(dense != 0, ((0, -h % rows), (0, -w % cols)))
    blocks = padded.reshape(padded.shape[0] // rows, rows, padded.shape[1] // cols, cols).any(axis=(1, 3))
    return float(blocks.mean()) if blocks.size else 0.0


def encode_like(dense: np.ndarray, sparsity: "fb.SparsityParametersT") -> tuple[np.ndarray, "fb.SparsityParametersT"]:
    """Encode ``dense`` with the traversal order, blocks and level formats of ``sparsity``,
    so consumers that accepted the old encoding (DENSIFY, sparse FC kernels) accept the new."""
    layout = layout_of(dense.shape, sparsity)
    return encode(dense, block=tuple(layout.block_sizes), block_dims=layout.block_map,
                  traversal_order=layout.traversal_order, formats=[int(d.format) for d in sparsity.dimMetadata])
