"""The ``sparsify`` pass: store mostly-zero weights in TFLite's sparse format.

Pruning and clustering leave weights dense in the file; only generic compression sees the
zeros. This pass re-encodes each weight with enough zeros (``min_sparsity``, default the
converter's 30%) where that saves bytes, in one of the two forms the interpreter runs:

- FULLY_CONNECTED reads a few sparse layouts itself (op version 8): float weights random
  sparse (DENSE, SPARSE_CSR) or in 1x4 blocks; int8 weights of a full-integer FC in 1x16
  blocks with zero point 0. The pass picks the smaller encoding that kernel accepts.
- Every other consumer (and FC weights that fit no kernel layout) gets a DENSIFY op in front
  of it, which expands the constant once at prepare time. For float16 weights DENSIFY goes
  before the DEQUANTIZE, as the converter does. The encoding is the smallest of random, 1x4
  and 1x16 blocks along the last (input) axis.

The dense values are unchanged, so outputs equal the dense model's.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import numpy as np

from tflopt.deferred import store
from tflopt.pipeline import Pass, PassResult, register
from tflopt.sparse import encode, stored_nbytes
from tflopt.versioning import update_versions

from tflopt.size import pass_sizes, size_stats
from tflopt.weights import DEFAULT_OPS, weight_slots

# What a DENSIFY costs in the file: the operator table, a tensor table with its name and
# shape, and an empty buffer entry (measured: ~100-150 bytes; keep a margin) ...
DENSIFY_OVERHEAD = 192
# ... plus a copy of the quantization parameters: the consumer reads the weight's scales
# from the DENSIFY output (float32 scale + int64 zero point per channel).
QUANT_BYTES_PER_CHANNEL = 12
FC_SPARSE_VERSION = 8


@dataclass
class SparsifyOptions:
    min_sparsity: float = 0.3
    # Let FULLY_CONNECTED read sparse weights itself where its kernels accept the layout.
    fc_kernel: bool = True
    ops: list[str] = field(default_factory=list)    # empty: the prune pass's DEFAULT_OPS
    include: str | None = None
    exclude: str | None = None
    min_elements: int = 0
    sizes: bool = True

    def validate(self) -> None:
        if not 0.0 <= self.min_sparsity <= 1.0:
            raise ValueError(f"min_sparsity must be in [0, 1], got {self.min_sparsity}")
        if self.min_elements < 0:
            raise ValueError("min_elements must be >= 0")
        for rx in (self.include, self.exclude):
            if rx:
                re.compile(rx)


def _encodings(dense: np.ndarray, blocks: list[int]):
    """(stored bytes, values, params) for the random layout and each block along the last axis."""
    out = []
    for b in [0] + blocks:
        if b and (dense.ndim == 0 or dense.shape[-1] % b):
            continue
        values, params = encode(dense, block=(b,) if b else None)
        out.append((stored_nbytes(values, params), values, params, b))
    return out


def _readers(slot):
    """The ops that finally use the weight (past DEQUANTIZE), with input positions."""
    sg = slot.ref.subgraph
    last = slot.ref.via[-1].outputs[0] if slot.ref.via else slot.tensor.index
    return sg.consumers(last)


def _fc_kernel_blocks(slot, model) -> list[int] | None:
    """Block sizes the FC kernel reading this weight accepts directly (0 = random), or None."""
    t, sg = slot.tensor, slot.ref.subgraph
    users = sg.consumers(t.index)
    if slot.ref.via or t.index in sg.outputs or not users or len(t.shape) != 2:
        return None
    if any(op.name != "FULLY_CONNECTED" or pos != 1 for op, pos in users):
        return None
    if t.type_name == "FLOAT32":
        if all(op.input(0).type_name == "FLOAT32" for op, _ in users):
            return [0, 4]
        return None
    if t.type_name == "INT8":
        q = t.quantization
        if (q is not None and not np.any(q.zero_point)
                and all(op.input(0).type_name == "INT8" and op.output(0).type_name == "INT8" for op, _ in users)):
            return [16]
    return None


@register
class Sparsify(Pass):
    name = "sparsify"
    summary = "Store mostly-zero weights sparse: sparse FULLY_CONNECTED kernels or DENSIFY."
    Options = SparsifyOptions

    def run(self, model, ctx) -> PassResult:
        o = self.options
        before_sizes = pass_sizes(model, compress=o.sizes)
        slots = weight_slots(model, ops=o.ops or DEFAULT_OPS, include=o.include, exclude=o.exclude,
                             min_elements=o.min_elements)
        warnings = [f"{s.name}: {s.skip}" for s in slots if s.skip]
        rows, changed = [], False
        for slot in (s for s in slots if not s.skip):
            row = sparsify_slot(slot, min_sparsity=o.min_sparsity, fc_kernel=o.fc_kernel, sizes=o.sizes,
                                warnings=warnings)
            slot.release()
            if row is not None:
                rows.append(row)
                changed = True
        if changed:
            update_versions(model)
        stats = {"sparsified_tensors": len(rows), "tensors": rows}
        stats.update(pass_sizes(model, before_sizes, compress=o.sizes) if changed else {"size": before_sizes})
        return PassResult(changed=changed, stats=stats, warnings=warnings)


def _densify(slot) -> None:
    """Readers of the constant now read a DENSIFY output, placed before the first of them."""
    t, sg = slot.tensor, slot.ref.subgraph
    users = sg.consumers(t.index)
    out = sg.add_tensor(t.name + "_densified", t.shape, t.type)
    out.raw.quantization = copy.deepcopy(t.raw.quantization)
    first = min(op.index for op, _ in users)
    sg.replace_uses(t.index, out.index, ops=[op for op, _ in users], graph_outputs=False)
    sg.insert_operator(first, "DENSIFY", [t.index], [out.index])


def sparsify_slot(slot, *, min_sparsity: float, fc_kernel: bool = True, sizes: bool = False,
                  warnings: list[str]) -> dict | None:
    """Store one dense weight sparse in the smallest form its readers run, if that saves
    bytes; returns the per-tensor row, or None when it stays dense."""
    t = slot.tensor
    if t.sparsity is not None:
        return None
    dense = slot.stored
    zeros = float(np.mean(dense == 0)) if dense.size else 0.0
    if zeros < min_sparsity or dense.dtype.kind not in "fi" or np.any(slot.zero_stored() != 0):
        return None
    kernel = _fc_kernel_blocks(slot, t.model) if fc_kernel else None
    choice, form = None, None
    if kernel is not None:
        fits = [e for e in _encodings(dense, [b for b in kernel if b]) if e[3] in kernel]
        if fits:
            choice, form = min(fits, key=lambda e: e[0]), "fc_kernel"
    if choice is None:
        if dense.dtype.kind == "i" and any(op.name == "FULLY_CONNECTED" for op, _ in _readers(slot)):
            # XNNPACK claims an FC whose integer weights come out of DENSIFY, then
            # fails to prepare it, so the model would not load with the default delegate.
            warnings.append(f"{slot.name}: integer FC weights that fit no sparse FC kernel stay dense")
            return None
        choice, form = min(_encodings(dense, [4, 16]), key=lambda e: e[0]), "densify"
    nbytes, values, params, block = choice
    overhead = 0
    if form == "densify":
        q = t.quantization
        overhead = DENSIFY_OVERHEAD + len(t.name) + (0 if q is None else QUANT_BYTES_PER_CHANNEL * q.scale.size)
    if nbytes + overhead >= dense.nbytes:
        return None
    before = slot.figures(sizes)
    if form == "densify":
        _densify(slot)
    t.raw.sparsity = params
    store(t, values)
    return {"form": form, "block": f"1x{block}" if block else "random", **size_stats(before, slot.figures(sizes))}
