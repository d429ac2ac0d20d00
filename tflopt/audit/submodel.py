"""One-op submodels: an op with its constant operands, its other operands as model inputs.

Compiling them one by one tells which ops a whole-graph runtime (the LiteRT GPU accelerator)
takes. Ops with the same signature (op, version, options, operand types / shapes /
quantization kind, small constant values) get the same answer, so ``distinct_submodels``
builds one model per signature: a model with 300 ops compiles only its distinct op shapes.
"""
from __future__ import annotations

import copy
import hashlib

import numpy as np

from ..model import Buffer, Model
from ..schema import fb

# A constant DEQUANTIZE / DENSIFY feeding an op is how the converter stores float16 / sparse
# weights; the runtime folds it into the consumer, so it travels with the op.
FOLDED_PRODUCERS = ("DEQUANTIZE", "DENSIFY")
# Constants up to this many bytes (axes, shapes, paddings) are part of the signature: the
# runtime may decide on their values. Larger ones (weights) count by type and shape only.
SMALL_CONST_BYTES = 256
# Ops that call other subgraphs cannot stand alone.
CONTROL_FLOW = ("WHILE", "IF", "CALL_ONCE", "CALL", "STABLEHLO_COMPOSITE")


def op_group(sg, index: int, producers: dict | None = None) -> list[int] | None:
    """The op at ``index`` plus the constant-folding producers of its operands, in graph
    order; None for ops that cannot stand alone (control flow)."""
    op = sg.operators[index]
    if op.name in CONTROL_FLOW:
        return None
    producers = sg.producer_map() if producers is None else producers
    group = {index}
    stack = [t for t in op.inputs if t >= 0]
    while stack:  # iterative: a DENSIFY -> DEQUANTIZE chain is walked without recursion
        t = stack.pop()
        p = producers.get(t)
        if p is None or p.name not in FOLDED_PRODUCERS or p.index in group:
            continue
        src = [x for x in p.inputs if x >= 0]
        if not src:
            continue
        if all(sg.tensors[x].is_constant for x in src):
            group.add(p.index)
        elif all(producers.get(x) is not None and producers[x].name in FOLDED_PRODUCERS for x in src):
            group.add(p.index)
            stack.extend(src)
    return sorted(group)


def _options_key(op) -> str:
    opts = op.options
    if opts is None:
        return ""
    return repr(sorted((k, repr(v)) for k, v in vars(opts).items()))


def _tensor_key(t) -> tuple:
    q = t.quantization
    qkind = None if q is None else ("channel" if q.per_channel else "tensor")
    const = None
    if t.is_constant:
        raw = bytes(t.buffer.memoryview())
        const = raw if len(raw) <= SMALL_CONST_BYTES else len(raw)
    return (t.type_name, tuple(t.shape), t.shape_signature, qkind, const, t.is_variable,
            t.sparsity is not None)


def signature(sg, group: list[int]) -> str:
    """A stable key for a group: equal keys, equal runtime verdicts."""
    parts = []
    for i in group:
        op = sg.operators[i]
        parts.append((op.name, op.custom_code, op.version, _options_key(op),
                      bytes(op.custom_options or b""),
                      tuple(_tensor_key(sg.tensors[t]) if t >= 0 else None for t in op.inputs),
                      tuple(_tensor_key(sg.tensors[t]) for t in op.outputs if t >= 0)))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def build(model, sg_index: int, group: list[int]) -> Model:
    """A one-subgraph model running the ops of ``group`` (indices into subgraph ``sg_index``)."""
    sg = model.subgraphs[sg_index]
    raw = fb.ModelT()
    raw.version = 3
    raw.description = "tflopt submodel"
    out_sg = fb.SubGraphT()
    out_sg.name = "main"
    raw.subgraphs = [out_sg]
    raw.operatorCodes = []
    buffers = [Buffer()]
    tensors: dict[int, int] = {}
    out_sg.tensors = []

    def tensor(t: int) -> int:
        if t < 0:
            return t
        if t not in tensors:
            src = sg.tensors[t]
            copy_t = copy.deepcopy(src.raw)
            copy_t.buffer = 0
            if src.is_constant:
                buffers.append(Buffer(np.frombuffer(bytes(src.buffer.memoryview()), np.uint8)))
                copy_t.buffer = len(buffers) - 1
            tensors[t] = len(out_sg.tensors)
            out_sg.tensors.append(copy_t)
        return tensors[t]

    codes: dict[int, int] = {}
    produced: set[int] = set()
    out_sg.operators = []
    for i in group:
        op = sg.operators[i]
        o = copy.deepcopy(op.raw)
        if op.opcode_index not in codes:
            codes[op.opcode_index] = len(raw.operatorCodes)
            raw.operatorCodes.append(copy.deepcopy(op.opcode))
        o.opcodeIndex = codes[op.opcode_index]
        o.inputs = [tensor(t) for t in op.inputs]
        o.outputs = [tensor(t) for t in op.outputs]
        o.intermediates = [tensor(t) for t in (op.raw.intermediates if op.raw.intermediates is not None else [])]
        produced.update(t for t in op.outputs if t >= 0)
        out_sg.operators.append(o)
    main = sg.operators[group[-1]] if group else None
    ins = []
    for i in group:
        for t in sg.operators[i].inputs:
            if t >= 0 and t not in produced and not sg.tensors[t].is_constant and not sg.tensors[t].is_variable:
                if tensors[t] not in ins:
                    ins.append(tensors[t])
    out_sg.inputs = ins
    # The main op is the group's last in graph order (its folding producers come first).
    out_sg.outputs = [tensors[t] for t in main.outputs if t >= 0]
    return Model(raw, buffers, source_name=f"{model.source_name}#op{group[-1]}")


def distinct_submodels(model, sg_index: int = 0) -> tuple[dict[str, list[int]], dict[int, str | None], dict[int, int]]:
    """({signature: group of a representative op}, {op index: its signature, None if it
    cannot stand alone or is folded}, {folded op: the op whose weights it is folded into}).
    A constant DEQUANTIZE / DENSIFY has no verdict of its own: it runs with its consumer."""
    sg = model.subgraphs[sg_index]
    producers = sg.producer_map()
    groups: dict[str, list[int]] = {}
    of_op: dict[int, str | None] = {}
    built = [op_group(sg, i, producers) for i in range(len(sg.operators))]
    folded_into = {p: i for i, g in enumerate(built) if g for p in g if p != i}
    folded: dict[int, int] = {}
    for i, group in enumerate(built):
        if i in folded_into:
            j, hops = i, 0
            while j in folded_into and hops <= len(folded_into):  # up a DENSIFY -> DEQUANTIZE chain
                j, hops = folded_into[j], hops + 1
            folded[i] = j
            of_op[i] = None
            continue
        if group is None:
            of_op[i] = None
            continue
        key = signature(sg, group)
        groups.setdefault(key, group)
        of_op[i] = key
    return groups, of_op, folded
