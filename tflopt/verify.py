"""Structural checks the interpreter relies on; run on load and after every pass."""
from __future__ import annotations

import math

import numpy as np

from .errors import quote
from .model import Model
from .schema import NUMPY_DTYPES, TensorType

# Types whose byte size is not elements x itemsize.
_PACKED = {TensorType.STRING, TensorType.RESOURCE, TensorType.VARIANT}
for _n in ("INT4", "UINT4", "INT2"):
    if hasattr(TensorType, _n):
        _PACKED.add(getattr(TensorType, _n))


# Ops that may legitimately write nothing (state updates, control flow, init, custom kernels);
# every other op the runtime knows fails to prepare without an output, and passes read outs[0].
_NO_OUTPUTS_OK = {"ASSIGN_VARIABLE", "CALL_ONCE", "HASHTABLE_IMPORT", "CUSTOM", "IF", "WHILE", "CALL",
                  "STABLEHLO_COMPOSITE", "STABLEHLO_CUSTOM_CALL", "STABLEHLO_WHILE", "STABLEHLO_CASE"}


def verify_model(model: Model) -> list[str]:
    """Every problem found, worded for a user; an empty list means the model is sound."""
    problems: list[str] = []
    n_codes = len(model.operator_codes)
    n_buffers = len(model.buffers)
    n_sg = len(model.subgraphs)
    if n_sg == 0:
        problems.append("model has no subgraphs")
    for si, sg in enumerate(model.subgraphs):
        where = f"subgraph {si}"
        n_t = len(sg.tensors)
        for name, idxs in (("input", sg.inputs), ("output", sg.outputs)):
            for t in idxs:
                if not 0 <= t < n_t:
                    problems.append(f"{where}: {name} tensor index {t} out of range (0..{n_t - 1})")
        for oi, op in enumerate(sg.operators):
            code = op.raw.opcodeIndex
            if not 0 <= code < n_codes:
                problems.append(f"{where} op {oi}: operator code index {code} out of range ({n_codes} codes)")
                continue
            for kind, idxs in (("input", op.inputs), ("output", op.outputs)):
                for t in idxs:
                    if t < -1 or t >= n_t:
                        problems.append(f"{where} op {oi} ({op.name}): {kind} tensor index {t} out of range")
            if not any(t >= 0 for t in op.outputs) and op.name not in _NO_OUTPUTS_OK:
                problems.append(f"{where} op {oi} ({op.name}): has no output tensor")
        if not problems:
            cycle = _cycle_op(sg)
            if cycle is not None:
                problems.append(f"{where} op {cycle} ({sg.operators[cycle].name}): the graph has a cycle "
                                f"(the op depends on its own output)")
        for t in sg.tensors:
            tw = f"{where} tensor {t.index} ({quote(t.name, 80)})"
            b = t.buffer_index
            if not 0 <= b < n_buffers:
                problems.append(f"{tw}: buffer index {b} out of range ({n_buffers} buffers)")
                continue
            if t.type not in NUMPY_DTYPES:
                problems.append(f"{tw}: unknown tensor type {t.type}")
                continue
            if any(d < 0 for d in t.shape):
                problems.append(f"{tw}: negative dimension in shape {quote(t.shape)}")
                continue
            dt = NUMPY_DTYPES.get(t.type)
            if math.prod(t.shape) * (dt.itemsize if dt is not None else 1) >= 2**64:
                # The interpreter's BytesRequired refuses it ("number of elements overflowed").
                problems.append(f"{tw}: shape {quote(t.shape)} needs more than 2^64 bytes")
                continue
            if t.sparsity is not None:
                problem = _check_sparsity(t)
                if problem:
                    problems.append(f"{tw}: {problem}")
                    continue
            problems.extend(_check_data(t, tw))
            problems.extend(_check_quantization(t, tw))
    for k, sig in enumerate(model.signature_defs):
        # The interpreter refuses a signature without its key or a tensor map without a name.
        if sig.signatureKey is None:
            problems.append(f"signature {k}: has no key")
            continue
        if any(tm.name is None for tm in list(sig.inputs or []) + list(sig.outputs or [])):
            problems.append(f"signature {quote(sig.signatureKey)}: an input or output has no name")
            continue
        si = sig.subgraphIndex
        if not 0 <= si < n_sg:
            problems.append(f"signature {quote(sig.signatureKey)}: subgraph index {si} out of range")
            continue
        n_t = len(model.subgraphs[si].tensors)
        for tm in list(sig.inputs or []) + list(sig.outputs or []):
            if not 0 <= tm.tensorIndex < n_t:
                problems.append(f"signature {quote(sig.signatureKey)}: tensor index {tm.tensorIndex} out of range")
    for md in model.raw.metadata:
        if not 0 <= md.buffer < n_buffers:
            problems.append(f"metadata {quote(md.name)}: buffer index {md.buffer} out of range")
    return problems


def _check_data(t, tw: str) -> list[str]:
    buf = t.buffer
    if buf is None or buf.nbytes == 0 or t.type in _PACKED:
        return []
    dt = NUMPY_DTYPES[t.type]
    if dt is None:
        return []
    if t.sparsity is not None:
        if buf.nbytes % dt.itemsize:
            return [f"{tw}: sparse buffer of {buf.nbytes} bytes is not a whole number of {dt.name}"]
        return []
    expected = math.prod(t.shape) * dt.itemsize  # Python ints: an inflated shape must not wrap
    if buf.nbytes != expected:
        return [f"{tw}: buffer holds {buf.nbytes} bytes, shape {quote(t.shape)} x {t.type_name} needs {expected}"]
    return []


def _check_sparsity(t) -> str | None:
    from .sparse import check
    dt = NUMPY_DTYPES.get(t.type)
    buf = t.buffer
    n_values = buf.nbytes // dt.itemsize if dt is not None and buf is not None else None
    return check(t.shape, t.sparsity, n_values)


def _cycle_op(sg) -> int | None:
    """The first op (graph order) on or behind a cycle of the data-flow graph, or None.
    Kahn's algorithm: iterative, linear in ops + operands."""
    ops = sg.operators
    producers: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        for t in op.outputs:
            if t >= 0:
                producers.setdefault(t, []).append(i)
    pending = [0] * len(ops)
    readers: list[list[int]] = [[] for _ in ops]
    for i, op in enumerate(ops):
        for t in set(op.inputs):
            for p in producers.get(t, ()):
                pending[i] += 1
                readers[p].append(i)
    ready = [i for i, n in enumerate(pending) if n == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for r in readers[i]:
            pending[r] -= 1
            if pending[r] == 0:
                ready.append(r)
    if done == len(ops):
        return None
    return next(i for i, n in enumerate(pending) if n > 0)


def _check_quantization(t, tw: str) -> list[str]:
    q = t.raw.quantization
    if q is None or q.detailsType:
        return []
    # A corrupt file can hold NaN scales: reported below, never a numpy warning on stderr.
    with np.errstate(all="ignore"):
        scale = np.asarray(q.scale if q.scale is not None else [], np.float64)
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
    if scale.size == 0:
        return []
    out = []
    if zp.size != scale.size:
        out.append(f"{tw}: {scale.size} scales but {zp.size} zero points")
    shape = t.shape
    if scale.size > 1:
        axis = int(q.quantizedDimension or 0)
        if not 0 <= axis < len(shape):
            out.append(f"{tw}: quantized_dimension {axis} outside rank {len(shape)}")
        elif shape[axis] != scale.size:
            out.append(f"{tw}: {scale.size} scales for dimension {axis} of size {shape[axis]}")
    if not np.all(np.isfinite(scale)):
        out.append(f"{tw}: non-finite quantization scale")
    return out
