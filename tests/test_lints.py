"""Post-quantization lints."""
from __future__ import annotations

import numpy as np

from conftest import MODELS
from tflopt.io import load
from tflopt.lints import lint_quantization
from tflopt.schema import TensorType


def _rules(m):
    return sorted({(f["rule"], f["tensor"]) for f in lint_quantization(m)})


def test_converter_models_are_clean():
    for name in ("convnet_int8", "mlp_int8io", "convnet_dynamic", "convnet_int16x8"):
        assert lint_quantization(load(MODELS / f"{name}.tflite")) == []


def test_each_rule_fires():
    m = load(MODELS / "convnet_int8.tflite")
    fc = next(op for op in m.main.operators if op.name == "FULLY_CONNECTED")
    w, b, x = fc.input(1), fc.input(2), fc.input(0)
    data = w.data.copy()
    data.reshape(-1)[0] = -128
    w.set_data(data, TensorType.INT8)
    q = w.quantization
    w.set_quantization(q.scale, np.r_[1, q.zero_point[1:]], q.axis)
    bias = b.data.copy()
    bias[0] = 2 ** 31 - 5
    b.set_data(bias, TensorType.INT32)
    x.set_quantization([1e-40], x.quantization.zero_point)
    out = fc.output(0)
    out.set_quantization([0.0], out.quantization.zero_point)
    found = _rules(m)
    assert ("weight-range", w.name) in found
    assert ("weight-zero-point", w.name) in found
    assert ("bias-overflow", b.name) in found
    assert ("subnormal-scale", x.name) in found
    assert ("zero-scale", out.name) in found
    f = lint_quantization(m)[0]
    assert set(f) >= {"subgraph", "tensor", "rule", "message"} and f["subgraph"] == 0
