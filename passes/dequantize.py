"""The ``dequantize`` pass: back to float32, from any quantized form.

``what=weights`` rewrites stored weights only: float16 / int8 constants behind DEQUANTIZE,
sparse constants behind DENSIFY and int8 weights read directly by hybrid kernels all become
dense float32 constants, and the DEQUANTIZE / DENSIFY ops go. ``what=all`` also undoes
full-integer quantization: QUANTIZE / DEQUANTIZE ops on activations are removed, quantized
activations (and int8/int16 model inputs and outputs) become float32, and integer weights and
biases are dequantized with their scales.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tflopt.model import Model, Subgraph, Tensor
from tflopt.pipeline import Pass, PassResult, register
from tflopt.schema import TensorType
from tflopt.versioning import update_versions
from tflopt.weights import float_values

FP16_METADATA = "reduced_precision_support"
_INT_TYPES = {TensorType.INT8, TensorType.UINT8, TensorType.INT16, TensorType.INT32, TensorType.INT64}
# Options fields that only mean something for quantized kernels.
_QUANT_OPTION_FIELDS = {"asymmetricQuantizeInputs": False, "quantizedBiasType": 0}


@dataclass
class DequantizeOptions:
    what: Literal["weights", "all"] = "all"


def _is_quantized_int(t: Tensor) -> bool:
    return t.type in _INT_TYPES and t.is_quantized


def drop_fp16_metadata_if_unused(model: Model) -> None:
    """``reduced_precision_support`` tells XNNPACK about float16 weights; drop it with them."""
    if not any(t >= 0 and sg.tensors[t].type == TensorType.FLOAT16 and sg.tensors[t].is_constant
               for sg in model.subgraphs for op in sg.operators for t in op.inputs):
        model.remove_metadata(FP16_METADATA)


def has_quantized_activations(model: Model) -> bool:
    """True for full-integer models: some non-constant tensor carries integer quantization."""
    return any(_is_quantized_int(t) and not t.is_constant for sg in model.subgraphs for t in sg.tensors)


def integer_variables(model: Model) -> dict[str, str]:
    """{resource variable (READ_VARIABLE output name): type} for variables read as quantized
    integers (a full-integer streaming model's state)."""
    out = {}
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.name == "READ_VARIABLE" and op.outputs and _is_quantized_int(op.output(0)):
                out[op.output(0).name] = op.output(0).type_name
    return out


class _FloatBuffers:
    """Float32 copies of stored constants, one buffer per source buffer, so tensors that
    shared a constant still share it after dequantizing."""

    def __init__(self, model: Model):
        self.model = model
        self._cache: dict[tuple, int] = {}

    def assign(self, target: Tensor, source: Tensor) -> None:
        key = (source.buffer_index, source.type, source.quantization.scale.tobytes() if source.quantization else b"",
               source.sparsity is not None)
        b = self._cache.get(key)
        if b is None:
            b = self._cache[key] = self.model.add_buffer(np.ascontiguousarray(float_values(source)))
        target.raw.buffer = b
        target.raw.type = TensorType.FLOAT32
        target.raw.sparsity = None
        target.shape = source.shape
        target.set_quantization(None)


def _reset_quant_options(op) -> None:
    opts = op.options
    for name, value in _QUANT_OPTION_FIELDS.items():
        if opts is not None and hasattr(opts, name):
            setattr(opts, name, value)


def materialize_constant_producers(sg: Subgraph, buffers: _FloatBuffers, *, keep=None) -> int:
    """Replace DENSIFY / DEQUANTIZE ops fed by constants with the constants they produce.

    DENSIFY outputs become dense constants of the stored type (keeping its quantization);
    DEQUANTIZE outputs become float32. ``keep(op, root)`` may veto single ops (e.g. float16
    weights a float16 rewrite leaves alone); ``root`` is the stored constant, also for a
    DEQUANTIZE after a DENSIFY. Returns the number of ops removed."""
    removed = 0
    origin: dict[int, int] = {}
    for op in list(sg.operators):
        if op.name != "DENSIFY" or not op.inputs or op.inputs[0] < 0:
            continue
        src = sg.tensors[op.inputs[0]]
        if not src.is_constant or (keep is not None and keep(op, src)):
            continue
        out = op.output(0)
        origin[out.index] = src.index
        from tflopt.sparse import to_dense
        out.raw.buffer = sg.model.add_buffer(np.ascontiguousarray(to_dense(src)))
        out.raw.type = src.type
        out.raw.quantization = src.raw.quantization
        sg.remove_operator(op)
        removed += 1
    for op in list(sg.operators):
        if op.name != "DEQUANTIZE" or not op.inputs or op.inputs[0] < 0:
            continue
        src = sg.tensors[op.inputs[0]]
        if not src.is_constant or (keep is not None and keep(op, sg.tensors[origin.get(src.index, src.index)])):
            continue
        buffers.assign(op.output(0), src)
        sg.remove_operator(op)
        removed += 1
    return removed


def dequantize_hybrid_weights(sg: Subgraph, buffers: _FloatBuffers, *, select=None) -> int:
    """Integer constants read directly by ops with float outputs (hybrid kernels) -> float32.
    ``select(op, position, tensor)`` may restrict which uses change. Returns uses changed."""
    changed = 0
    for op in sg.operators:
        if op.name in ("DEQUANTIZE", "QUANTIZE") or not op.outputs or op.output(0).type != TensorType.FLOAT32:
            continue
        touched = False
        for pos, ti in enumerate(op.inputs):
            if ti < 0:
                continue
            t = sg.tensors[ti]
            if not (t.is_constant and _is_quantized_int(t)) or (select is not None and not select(op, pos, t)):
                continue
            target = sg.private_input(op, pos, "_float")
            buffers.assign(target, t)
            changed += 1
            touched = True
        if touched:
            _reset_quant_options(op)
    return changed


def _merge(sg: Subgraph, keep: int, drop: int) -> None:
    """Make every reference to tensor ``drop`` (op inputs and outputs, graph boundary,
    signatures) refer to ``keep``."""
    for op in sg.operators:
        op.raw.inputs = [keep if t == drop else t for t in op.inputs]
        op.raw.outputs = [keep if t == drop else t for t in op.outputs]
    sg.raw.inputs = [keep if t == drop else t for t in sg.inputs]
    sg.raw.outputs = [keep if t == drop else t for t in sg.outputs]
    sg.model._rename_signature_tensor(sg, drop, keep, outputs=True)
    sg.model._rename_signature_tensor(sg, drop, keep, outputs=False)


def _dequantize_activations(sg: Subgraph, buffers: _FloatBuffers) -> int:
    removed = 0
    for op in list(sg.operators):
        if op.name not in ("QUANTIZE", "DEQUANTIZE") or not op.inputs or op.inputs[0] < 0:
            continue
        src, dst = op.inputs[0], op.outputs[0]
        if sg.tensors[src].is_constant:
            continue
        sg.remove_operator(op)
        # Keep the boundary tensor (graph input / output keeps its name and signature entry).
        if dst in sg.outputs and src not in sg.inputs:
            _merge(sg, dst, src)
        else:
            _merge(sg, src, dst)
        removed += 1
    for t in sg.tensors:
        if not _is_quantized_int(t):
            continue
        if t.is_constant:
            buffers.assign(t, t)
        else:
            t.raw.type = TensorType.FLOAT32
            t.set_quantization(None)
    for op in sg.operators:
        _reset_quant_options(op)
        if op.raw.intermediates:  # quantized LSTM keeps its gate encodings here; float LSTM does not
            op.raw.intermediates = None
    return removed


def dequantize_model(model: Model, what: str = "all") -> dict:
    """Dequantize in place (see the module docstring); returns statistics."""
    buffers = _FloatBuffers(model)
    stats = {"constant_ops_removed": 0, "hybrid_weights": 0, "activation_ops_removed": 0}
    full = what == "all" and has_quantized_activations(model)
    for sg in model.subgraphs:
        stats["constant_ops_removed"] += materialize_constant_producers(sg, buffers)
        stats["hybrid_weights"] += dequantize_hybrid_weights(sg, buffers)
        if full:
            stats["activation_ops_removed"] += _dequantize_activations(sg, buffers)
    drop_fp16_metadata_if_unused(model)
    stats["versions"] = update_versions(model)
    stats["removed"] = model.remove_unused()
    return stats


@register
class Dequantize(Pass):
    name = "dequantize"
    summary = "Turn float16 / dynamic-range / sparse / full-integer models back into float32."
    Options = DequantizeOptions

    def run(self, model, ctx) -> PassResult:
        stats = dequantize_model(model, self.options.what)
        changed = bool(stats["constant_ops_removed"] or stats["hybrid_weights"] or stats["activation_ops_removed"]
                       or stats["versions"])
        return PassResult(changed=changed, stats=stats)
