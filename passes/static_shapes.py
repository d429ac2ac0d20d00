"""The ``static_shapes`` pass: fix free (-1) input dimensions and propagate them through the graph.

The Edge TPU compiler rejects any -1 in a tensor's ``shape_signature`` ("dynamic-sized
tensors"), and the Keras converter writes one in the batch dimension of almost every model.
This pass sets each input's free batch dimension to ``batch`` (or an input's whole shape from
``shapes=NAME=1,224,224,3``), lets the interpreter allocate the graph at those shapes, and
writes every resolved shape into ``shape`` and ``shape_signature``. Only metadata changes:
the model computes bit-identically at the fixed shapes.

Left alone, and reported: tensors whose shape depends on values computed at run time
(``tflopt.audit.shapes``: the interpreter cannot know them before it runs), inputs with free
dimensions other than the batch when no explicit shape is given, and subgraphs other than the
first (the interpreter's Python API shows only that one).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tflopt.pipeline import Pass, PassResult, register


@dataclass
class StaticShapesOptions:
    batch: int = 1
    # Explicit input shapes, "NAME=D1,D2,..." (several separated by |; quote the value).
    shapes: list[str] = field(default_factory=list)

    def validate(self) -> None:
        from tflopt.runtime import parse_input_shapes
        if self.batch < 1:
            raise ValueError("batch must be at least 1")
        parse_input_shapes(self.shapes)


def _free(t) -> bool:
    sig = t.shape_signature
    return sig is not None and any(d < 0 for d in sig)


def input_shapes(sg, batch: int, explicit: dict[str, list[int]]) -> tuple[list[list[int] | None], list[str]]:
    """Per graph input the shape to allocate (None: leave it), and warnings."""
    out, warnings = [], []
    names = {sg.tensors[t].name for t in sg.inputs}
    for name in sorted(set(explicit) - names):
        raise ValueError(f"static_shapes: no input named {name!r} (inputs: {', '.join(sorted(names))})")
    for t in sg.inputs:
        tensor = sg.tensors[t]
        if tensor.name in explicit:
            shape = explicit[tensor.name]
            sig = tensor.shape_signature or tensor.shape
            if len(shape) != len(sig) or any(s >= 0 and s != d for s, d in zip(sig, shape)):
                raise ValueError(f"static_shapes: input {tensor.name!r} has signature {list(sig)}, "
                                 f"not compatible with {shape}")
            out.append(list(shape))
            continue
        if not _free(tensor):
            out.append(None)
            continue
        sig = list(tensor.shape_signature)
        if any(d < 0 for d in sig[1:]):
            warnings.append(f"input {tensor.name!r} {sig}: free dimensions besides the batch; "
                            f"give shapes={tensor.name}=... to fix them")
            out.append(None)
            continue
        out.append([batch] + sig[1:])
    return out, warnings


def resolve(model, shapes: list[list[int] | None]) -> dict[int, tuple[int, ...]]:
    """Shapes of subgraph 0's tensors once allocated at ``shapes`` and run once: only those
    the run did not change (a shape a kernel sets while running is data-dependent)."""
    from tflopt.runtime import interpreter, random_input
    interp = interpreter(model, xnnpack=False, preserve_all=True,
                         input_shapes=[s for s in shapes] if any(s is not None for s in shapes) else None)
    allocated = {d["index"]: tuple(int(x) for x in d["shape"]) for d in interp.get_tensor_details()}
    rng = np.random.default_rng(0)
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], random_input(d, rng))
    interp.invoke()
    after = {d["index"]: tuple(int(x) for x in d["shape"]) for d in interp.get_tensor_details()}
    return {t: s for t, s in allocated.items() if after.get(t) == s}


@register
class StaticShapes(Pass):
    name = "static_shapes"
    summary = ("Fix free (-1) input dimensions (batch, or shapes=NAME=D1,D2,...) and write the resolved "
               "shape of every tensor into shape_signature: what the Edge TPU compiler needs.")
    Options = StaticShapesOptions

    def run(self, model, ctx) -> PassResult:
        from tflopt.audit.shapes import dynamic_tensors
        from tflopt.runtime import parse_input_shapes
        sg = model.subgraphs[0]
        free = [t for t in sg.tensors if _free(t)]
        warnings = []
        for i, other in enumerate(model.subgraphs[1:], 1):
            if any(_free(t) for t in other.tensors):
                warnings.append(f"subgraph {i}: free dimensions left (only subgraph 0 is resolved)")
        explicit = parse_input_shapes(self.options.shapes)
        if not free and not explicit:
            return PassResult(changed=False, stats={"tensors_fixed": 0}, warnings=warnings)
        shapes, w = input_shapes(sg, self.options.batch, explicit)
        warnings += w
        resolved = resolve(model, shapes)
        dynamic = dynamic_tensors(sg)
        fixed = left = 0
        for t in sg.tensors:
            needs = _free(t) or (t.index in sg.inputs and shapes[sg.inputs.index(t.index)] is not None)
            if not needs:
                continue
            shape = resolved.get(t.index)
            if shape is None or t.index in dynamic or len(shape) != len(t.shape_signature or t.shape):
                left += 1
                continue
            t.raw.shape = list(shape)
            t.raw.shapeSignature = list(shape)
            fixed += 1
        if left:
            warnings.append(f"{left} tensor(s) with data-dependent shapes keep their free dimensions")
        return PassResult(changed=fixed > 0, stats={"tensors_fixed": fixed, "tensors_left": left,
                                                    "input_shapes": {sg.tensors[t].name: s for t, s in
                                                                     zip(sg.inputs, shapes) if s is not None}},
                          warnings=warnings)
