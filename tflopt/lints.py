"""Checks on a quantized model that the interpreter does not make but that signal bad numbers.

Each finding is ``{"subgraph", "tensor", "rule", "message"}``. Rules:

* ``zero-scale`` / ``subnormal-scale`` / ``nonfinite-scale``: a scale of 0, below float32's
  normal range (requantization multipliers lose all precision), or inf / NaN.
* ``weight-range``: an int8 weight holds -128; the spec keeps weights in [-127, 127] so that
  the kernels' int8 x int8 products never meet -128 x -128.
* ``weight-zero-point``: an int8 / int16 weight with a non-zero zero point (the spec and the
  integer conv / FC kernels want symmetric weights).
* ``bias-overflow``: int32 bias values beyond 90% of the int32 range, where accumulation
  with the products can overflow.
"""
from __future__ import annotations

import numpy as np

from .model import Model, Tensor
from .schema import TensorType
from .weights import BIAS_OPERANDS, WEIGHT_OPERANDS

BIAS_LIMIT = 0.9 * 2 ** 31
_WEIGHT_TYPES = {TensorType.INT8, TensorType.INT16}


def _finding(sg_index: int, t: Tensor, rule: str, message: str) -> dict:
    return {"subgraph": sg_index, "tensor": t.name, "tensor_index": t.index, "rule": rule, "message": message}


def _scale_findings(si: int, t: Tensor) -> list[dict]:
    scale = t.quantization.scale
    out = []
    if not np.all(np.isfinite(scale)):
        out.append(_finding(si, t, "nonfinite-scale", f"{t.name}: scale is inf or NaN"))
        scale = scale[np.isfinite(scale)]
    zero = int(np.count_nonzero(scale == 0))
    if zero:
        out.append(_finding(si, t, "zero-scale", f"{t.name}: {zero} zero scale(s)"))
    tiny = int(np.count_nonzero((scale != 0) & (np.abs(scale) < np.finfo(np.float32).tiny)))
    if tiny:
        out.append(_finding(si, t, "subnormal-scale", f"{t.name}: {tiny} subnormal scale(s)"))
    return out


def lint_quantization(model: Model) -> list[dict]:
    """Every finding, in subgraph and tensor order."""
    findings: list[dict] = []
    for si, sg in enumerate(model.subgraphs):
        weights, biases = set(), set()
        for op in sg.operators:
            wpos = WEIGHT_OPERANDS.get(op.name, (None,))[0]
            if wpos is not None and wpos < len(op.inputs) and op.inputs[wpos] >= 0:
                weights.add(op.inputs[wpos])
            bpos = BIAS_OPERANDS.get(op.name)
            if bpos is not None and bpos < len(op.inputs) and op.inputs[bpos] >= 0:
                biases.add(op.inputs[bpos])
            if op.name == "DEQUANTIZE" and op.inputs and sg.tensors[op.inputs[0]].is_constant:
                weights.add(op.inputs[0])  # weight-only int8 behind DEQUANTIZE
        for t in sg.tensors:
            if not t.is_quantized:
                continue
            findings.extend(_scale_findings(si, t))
            if not t.is_constant:
                continue
            data = t.data
            if t.index in weights and t.type in _WEIGHT_TYPES:
                if t.type == TensorType.INT8 and data is not None and np.any(data == -128):
                    n = int(np.count_nonzero(data == -128))
                    findings.append(_finding(si, t, "weight-range",
                                             f"{t.name}: {n} int8 weight value(s) of -128 (outside [-127, 127])"))
                if np.any(t.quantization.zero_point != 0):
                    findings.append(_finding(si, t, "weight-zero-point",
                                             f"{t.name}: weight zero point(s) not 0"))
            if t.index in biases and t.type == TensorType.INT32 and data is not None and data.size:
                peak = int(np.max(np.abs(data.astype(np.int64))))
                if peak > BIAS_LIMIT:
                    findings.append(_finding(si, t, "bias-overflow",
                                             f"{t.name}: |bias| reaches {peak}, over 90% of the int32 range"))
    return findings
