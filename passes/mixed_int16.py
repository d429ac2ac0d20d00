"""int16x8 islands inside an int8 model (``quantize(..., fallback=int16)``).

The int8 pass leaves the chosen islands float; this second rewrite quantizes those float ops
with the stock 16x8 kernels (int16 activations, int8 weights, int64 biases), so the weights
stay int8 and the MACs stay integer. The island's inputs arrive through the int8 model's
DEQUANTIZE and leave through its QUANTIZE, so each boundary becomes int8 -> float -> int16 (and
back); ``fold_requantize`` then makes each such pair one QUANTIZE from int8 to int16 (or back),
which the stock QUANTIZE kernel requantizes directly. Ops without an int16 kernel
(``qkernels.INT16_OPS``) stay float.

Ranges are the int8 calibration's, looked up by tensor name: the int8 rewrite keeps the names
of the tensors it leaves float, and names the float twin of an int8 tensor ``NAME_dequantized``.
"""
from __future__ import annotations

from tflopt.model import Model
from tflopt.recipe import Selector
from tflopt.schema import TensorType
from tflopt.versioning import update_versions

from .quantize_static import Plan, Rewriter

_TWIN = "_dequantized"


def ranges_by_name(sg, ranges: dict) -> dict[str, tuple[float, float]]:
    return {sg.tensors[t].name: r for t, r in ranges.items()}


def _ranges_here(sg, named: dict) -> dict[int, tuple[float, float]]:
    out = {}
    for i, t in enumerate(sg.tensors):
        name = t.name[:-len(_TWIN)] if t.name.endswith(_TWIN) and t.name not in named else t.name
        if name in named:
            out[i] = named[name]
    return out


def int16_islands(model: Model, keys, named_ranges: dict, options) -> list[str]:
    """Quantize to int16x8 the float ops of subgraph 0 whose first output is named in ``keys``;
    returns the op types it quantized (the rest of ``keys`` stays float)."""
    sg = model.main
    keys = set(keys)
    plan = Plan(sg, _ranges_here(sg, named_ranges), 16, Selector.from_options(options),
                lambda op: bool(op.outputs) and sg.tensors[op.outputs[0]].name in keys)
    if not plan.quantized:
        return []
    rw = Rewriter(model, plan, options, 16)
    rw.constants()
    rw.activations()
    rw.requantize()
    fold_requantize(sg)
    model.remove_unused()
    update_versions(model)
    return [op.name for op in plan.quantized]


_REQUANTIZE = {(TensorType.INT8, TensorType.INT16), (TensorType.INT16, TensorType.INT8)}


def fold_requantize(sg) -> int:
    """DEQUANTIZE (int8 | int16 -> float) read only by QUANTIZE ops to the other width: the
    QUANTIZE ops read the integer tensor directly, the DEQUANTIZE goes. Returns how many went."""
    consumers = sg.consumer_map()
    outputs = set(sg.outputs)
    gone = []
    for op in sg.operators:
        if op.name != "DEQUANTIZE" or op.outputs[0] in outputs:
            continue
        src = op.inputs[0]
        readers = [r for r, _ in consumers.get(op.outputs[0], [])]
        if readers and all(r.name == "QUANTIZE" and (sg.tensors[src].type, sg.tensors[r.outputs[0]].type) in _REQUANTIZE
                           for r in readers):
            for r in readers:
                r.set_input(0, src)
            gone.append(op)
    for op in gone:
        sg.remove_operator(op)
    return len(gone)
