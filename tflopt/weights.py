"""Finding the weights of weighted ops, whatever way the converter stored them.

A weight may be a float32 constant, a float16 or int8 constant behind DEQUANTIZE, a sparse
constant behind DENSIFY, or an int8 constant read directly by a hybrid or integer kernel.
Passes that edit weights (prune, cluster, quantize) all start from ``find_weights``.
"""
from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np

from .deferred import store
from .distinct import distinct_count, max_distinct_along
from .model import Model, Operator, Subgraph, Tensor
from .quantization import dequantize
from .size import FIGURES_GZIP_LEVEL, FIGURES_ZSTD_LEVEL, CompressedSizes
from .sparse import encode_like, to_dense

# op -> (weight input position, output-channel axis of the weight as TFLite stores it)
WEIGHT_OPERANDS: dict[str, tuple[int, int | None]] = {
    "CONV_2D": (1, 0),
    "DEPTHWISE_CONV_2D": (1, 3),
    "FULLY_CONNECTED": (1, 0),
    "TRANSPOSE_CONV": (1, 0),
    "CONV_3D": (1, 4),
    "BATCH_MATMUL": (1, None),
    "EMBEDDING_LOOKUP": (1, 0),
}
# op -> bias input position
BIAS_OPERANDS: dict[str, int] = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3,
                                 "CONV_3D": 2}
LOOK_THROUGH = ("DEQUANTIZE", "DENSIFY")


@dataclass
class WeightRef:
    subgraph: Subgraph
    op: Operator            # the consumer (CONV_2D, FULLY_CONNECTED, ...)
    position: int           # which input of ``op``
    tensor: Tensor          # the stored constant
    via: list[Operator]     # DEQUANTIZE / DENSIFY ops between the constant and ``op``
    axis: int | None        # output-channel axis of the stored weight

    @property
    def name(self) -> str:
        return self.tensor.name

    @property
    def sparse(self) -> bool:
        return self.tensor.sparsity is not None

    def float_values(self) -> np.ndarray:
        """The weight as dense float32, in the consumer's layout."""
        return float_values(self.tensor)


def stored_constant(sg: Subgraph, tensor_index: int, producers: dict | None = None) -> tuple[Tensor | None, list[Operator]]:
    """The constant behind ``tensor_index`` looking through DEQUANTIZE / DENSIFY producers."""
    producers = sg.producer_map() if producers is None else producers
    via: list[Operator] = []
    t = sg.tensors[tensor_index]
    while not t.is_constant:
        op = producers.get(t.index)
        # len(via) bounds the walk: a corrupt graph can feed an op its own output.
        if op is None or op.name not in LOOK_THROUGH or not op.inputs or op.inputs[0] < 0 \
                or len(via) > len(sg.operators):
            return None, via
        via.insert(0, op)
        t = sg.tensors[op.inputs[0]]
    return t, via


def float_values(t: Tensor) -> np.ndarray:
    """Dense float32 values of a constant: float16 widened, integers dequantized with their
    scale (per channel), sparse storage expanded."""
    if t.sparsity is not None:
        from .sparse import to_dense
        data = to_dense(t)
    else:
        data = t.data
    if data is None:
        raise ValueError(f"tensor {t.name!r} has no constant data")
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    q = t.quantization
    if q is None or q.scale.size == 0:
        return data.astype(np.float32)
    return dequantize(data, q.scale, q.zero_point, q.axis)


def find_weights(model: Model, *, ops: list[str] | None = None, name_regex: str | None = None,
                 exclude_regex: str | None = None, min_elements: int = 0) -> list[WeightRef]:
    """Weights of weighted ops in graph order; a constant shared by several ops is listed once
    (at its first consumer), since editing it affects them all."""
    pattern = re.compile(name_regex) if name_regex else None
    excluded = re.compile(exclude_regex) if exclude_regex else None
    wanted = set(ops) if ops else None
    seen: set[tuple[int, int]] = set()
    refs: list[WeightRef] = []
    for sg in model.subgraphs:
        producers = sg.producer_map()
        for op in sg.operators:
            spec = WEIGHT_OPERANDS.get(op.name)
            if spec is None or (wanted is not None and op.name not in wanted):
                continue
            pos, axis = spec
            if pos >= len(op.inputs) or op.inputs[pos] < 0:
                continue
            t, via = stored_constant(sg, op.inputs[pos], producers)
            if t is None or t.num_elements < min_elements:
                continue
            if pattern and not pattern.search(t.name) or excluded and excluded.search(t.name):
                continue
            key = (id(sg), t.index)
            if key in seen:
                continue
            seen.add(key)
            refs.append(WeightRef(sg, op, pos, t, via, axis if len(t.shape) > (axis or 0) else None))
    return refs


# Control-flow ops -> the options fields naming the subgraphs they call, and how many leading
# operands are not passed on (IF's condition).
CALLS: dict[str, tuple[tuple[str, ...], int]] = {
    "IF": (("thenSubgraphIndex", "elseSubgraphIndex"), 1),
    "WHILE": (("condSubgraphIndex", "bodySubgraphIndex"), 0),
}


def branch_readers(model: Model, op: Operator, position: int) -> list[tuple[Subgraph, Operator | None, int]]:
    """Who reads operand ``position`` of an IF / WHILE ``op`` inside the subgraphs it calls:
    ``(subgraph, reader, input position)`` for every op reading it there, following nested
    IF / WHILE, and ``(subgraph, None, output position)`` where it leaves a called subgraph
    as an output other than a WHILE body handing it on unchanged to the next iteration.

    Empty for other ops or the IF condition. The walk is iterative and visits each
    (subgraph, tensor) once, so a cyclic or self-calling graph cannot loop."""
    out: list[tuple[Subgraph, Operator | None, int]] = []
    todo = [(op, position)]
    seen: set[tuple[int, int]] = set()
    while todo:
        caller, pos = todo.pop()
        spec = CALLS.get(caller.name)
        if spec is None or caller.options is None or pos < spec[1]:
            continue
        for field in spec[0]:
            index = getattr(caller.options, field, None)
            if index is None or not 0 <= index < len(model.subgraphs):
                continue
            sg = model.subgraphs[index]
            arg = pos - spec[1]
            if arg >= len(sg.inputs) or (index, sg.inputs[arg]) in seen:
                continue
            t = sg.inputs[arg]
            seen.add((index, t))
            for reader, p in sg.consumers(t):
                if reader.name in CALLS:
                    todo.append((reader, p))   # its readers are the ones that matter
                else:
                    out.append((sg, reader, p))
            passed_on = caller.name == "WHILE" and field == "bodySubgraphIndex"
            out.extend((sg, None, k) for k, o in enumerate(sg.outputs) if o == t and not (passed_on and k == arg))
    return out


# -- weights as prune, cluster and sparsify edit them -----------------------------------------
# The ops whose weights prune / cluster / sparsify edit unless told otherwise.
DEFAULT_OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL"]
class WeightSlot:
    """One stored weight constant: its dense stored values, float view, zero and write-back.

    Editing happens in the stored domain (float32, float16, or integers with their
    quantization kept), so the graph around the constant (DEQUANTIZE, DENSIFY) stays valid.
    """

    def __init__(self, ref: WeightRef, subgraph_index: int):
        self.ref = ref
        self.tensor = ref.tensor
        self.key = f"{subgraph_index}/{self.tensor.name}"
        self.skip: str | None = None
        t = self.tensor
        dt = t.dtype
        if dt is None or dt.kind not in "fiu":
            self.skip = f"{t.type_name} weights are not supported"
        elif dt.kind in "iu" and not t.is_quantized:
            self.skip = "integer weights without quantization parameters"
        self._stored = None

    @property
    def name(self) -> str:
        return self.tensor.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.tensor.shape

    @property
    def axis(self) -> int | None:
        return self.ref.axis

    @property
    def stored(self) -> np.ndarray:
        if self._stored is None:
            self._stored = to_dense(self.tensor)
        return self._stored

    def floats(self) -> np.ndarray:
        return float_values(self.tensor)

    def zero_stored(self) -> np.ndarray:
        """The stored value meaning 0.0: 0 for floats, the zero point (per channel) for ints."""
        q = self.tensor.quantization
        if self.stored.dtype.kind == "f" or q is None or q.zero_point.size == 0:
            return np.zeros((), self.stored.dtype)
        zp = q.zero_point.astype(self.stored.dtype)
        if zp.size == 1:
            return zp.reshape(())
        shape = [1] * self.stored.ndim
        shape[q.axis] = -1
        return zp.reshape(shape)

    def zero_mask(self) -> np.ndarray:
        return np.broadcast_to(self.stored == self.zero_stored(), self.shape).copy()

    def write(self, dense: np.ndarray) -> None:
        t = self.tensor
        dense = np.ascontiguousarray(dense, dtype=self.stored.dtype).reshape(self.shape)
        if t.sparsity is not None:
            values, params = encode_like(dense, t.sparsity)
            t.raw.sparsity = params
            store(t, values)
        else:
            store(t, dense)
        self._stored = dense

    def release(self) -> None:
        """Done with this weight: forget its values and drop its file pages, so a pass going
        through the weights one at a time holds about one of them."""
        self._stored = None
        if self.tensor.buffer is not None:
            self.tensor.buffer.release_source()

    def stored_bytes(self) -> bytes | memoryview:
        t = self.tensor
        if t.sparsity is None:
            return t.buffer.memoryview()   # no copy: a large weight is read where it lies
        raw = bytes(t.buffer.memoryview())
        idx = b"".join(np.asarray(v.values).tobytes() for d in t.sparsity.dimMetadata or []
                       for v in (d.arraySegments, d.arrayIndices) if v is not None and v.values is not None)
        return raw + idx

    def distinct_per_channel(self) -> int | None:
        if self.axis is None or self.stored.ndim < 2:
            return None
        return max_distinct_along(self.stored, self.axis)

    def figures(self, sizes: bool = True) -> dict:
        """Sparsity, distinct values, bits per weight and stored size (raw, gzip, zstd)."""
        data = self.stored_bytes()
        n = max(int(np.prod(self.shape)), 1)
        zeros = int(self.zero_mask().sum())
        out = {"name": self.name, "op": self.ref.op.name, "shape": list(self.shape), "dtype": self.tensor.type_name,
               "sparse_storage": self.tensor.sparsity is not None, "elements": n, "zeros": zeros,
               "sparsity": round(zeros / n, 6), "distinct": distinct_count(self.stored),
               "distinct_per_channel": self.distinct_per_channel(), "bytes": len(data),
               "bits_per_weight": round(len(data) * 8 / n, 4)}
        if sizes:
            sink = CompressedSizes(FIGURES_GZIP_LEVEL, FIGURES_ZSTD_LEVEL, size=len(data))
            sink.write(data)
            r = sink.result()
            out["gzip"], out["zstd"] = r["gzip_bytes"], r["zstd_bytes"]
        return out


class PackedMasks(MutableMapping):
    """Boolean masks by weight key (``facts["pruned_masks"]``), kept at one bit per element:
    the masks of every weight of a large model stay a small fraction of it."""

    def __init__(self, items=()):
        self._packed: dict = {}
        self.update(items)

    def __getitem__(self, key) -> np.ndarray:
        bits, shape = self._packed[key]
        return np.unpackbits(bits, count=int(np.prod(shape))).view(np.bool_).reshape(shape)

    def __setitem__(self, key, mask) -> None:
        mask = np.asarray(mask, bool)
        self._packed[key] = (np.packbits(mask.ravel()), mask.shape)

    def __delitem__(self, key) -> None:
        del self._packed[key]

    def __iter__(self):
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


def pruned_masks(facts: dict) -> PackedMasks:
    """The pipeline's pruned masks (prune's, kept up to date by cluster), packed."""
    masks = facts.get("pruned_masks")
    if not isinstance(masks, PackedMasks):
        masks = facts["pruned_masks"] = PackedMasks(masks or {})
    return masks


def weight_slots(model, *, ops, include=None, exclude=None, min_elements=0) -> list[WeightSlot]:
    refs = find_weights(model, ops=ops, name_regex=include, exclude_regex=exclude, min_elements=min_elements)
    index = {id(sg): i for i, sg in enumerate(model.subgraphs)}
    return [WeightSlot(r, index[id(r.subgraph)]) for r in refs]
