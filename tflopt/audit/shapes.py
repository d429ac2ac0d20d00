"""Which tensors have data-dependent shapes: what "dynamic tensor" means to a GPU delegate.

A -1 in ``shape_signature`` is not by itself dynamic: the interpreter resolves a free batch
(or any input) dimension when tensors are allocated, before a delegate sees the graph, and
every shape that follows from input shapes alone is then fixed. A shape is data-dependent
when it follows from tensor *values* the graph computes at run time: the outputs of ops whose
size depends on their data (WHERE, UNIQUE, non-max suppression, ...), the outputs of ops whose
shape operand is computed from such values (RESHAPE to a computed shape), and everything
downstream of them.

One forward walk in execution order (no recursion): ``shape_only[t]`` holds for tensors whose
value is known once input shapes are (constants, SHAPE outputs and arithmetic on them).
"""
from __future__ import annotations

# Output size depends on the input values.
DATA_DEPENDENT_OPS = frozenset({
    "WHERE", "UNIQUE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "RANGE", "SEGMENT_SUM",
    "UNSORTED_SEGMENT_SUM", "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_MIN", "UNSORTED_SEGMENT_PROD",
    "SPARSE_TO_DENSE", "FILL", "BROADCAST_TO",
})
# Operands that give the output's shape (by op, input positions).
SHAPE_OPERANDS = {
    "RESHAPE": (1,), "RESIZE_BILINEAR": (1,), "RESIZE_NEAREST_NEIGHBOR": (1,), "TILE": (1,),
    "BROADCAST_TO": (1,), "FILL": (0,), "PAD": (1,), "PADV2": (1,), "MIRROR_PAD": (1,),
    "SLICE": (1, 2), "STRIDED_SLICE": (1, 2, 3), "TRANSPOSE_CONV": (0,), "EXPAND_DIMS": (1,),
    "SPLIT_V": (1,), "ONE_HOT": (1,), "RANGE": (0, 1, 2), "SPARSE_TO_DENSE": (1,),
    "SUM": (1,), "MEAN": (1,), "REDUCE_MAX": (1,), "REDUCE_MIN": (1,),
    "REDUCE_PROD": (1,), "TRANSPOSE": (1,),
}
# Ops whose output value depends only on the input's shape.
SHAPE_OF = frozenset({"SHAPE", "RANK"})


def dynamic_tensors(sg) -> set[int]:
    """Indices of the tensors of ``sg`` whose shape depends on values computed at run time."""
    shape_only = {t for t, x in enumerate(sg.tensors) if x.is_constant}
    dynamic: set[int] = set()
    for op in sg.operators:  # stored order is execution order
        ins = [t for t in op.inputs if t >= 0]
        outs = [t for t in op.outputs if t >= 0]
        if op.name in SHAPE_OF:
            shape_only.update(outs)
            if any(t in dynamic for t in ins):
                dynamic.update(outs)  # the rank/shape of a dynamic tensor is itself unknown
            continue
        if ins and all(t in shape_only for t in ins):
            shape_only.update(outs)
        positions = SHAPE_OPERANDS.get(op.name, ())
        computed = [op.inputs[i] for i in positions
                    if i < len(op.inputs) and op.inputs[i] >= 0 and op.inputs[i] not in shape_only]
        data_dependent = op.name in DATA_DEPENDENT_OPS and not all(t in shape_only for t in ins)
        if data_dependent or computed or any(t in dynamic for t in ins):
            dynamic.update(outs)
    return dynamic


def dynamic_shape(v, which: str = "all") -> list[str]:
    """Rule predicate: the op reads or writes a tensor with a data-dependent shape."""
    if "dynamic" not in v.facts:  # once per subgraph: the views of one subgraph share facts
        v.facts["dynamic"] = dynamic_tensors(v.sg)
    dyn = v.facts["dynamic"]
    return [f"{l} has a data-dependent shape" for l, t in v.select(which) if t in dyn]
