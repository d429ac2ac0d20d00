"""Op versions and min_runtime_version recomputed with op_version.cc's rules."""
from __future__ import annotations

import pytest

from conftest import MODELS
from tflopt.io import load
from tflopt.schema import TensorType
from tflopt.versioning import MAX_VERSION, compute_version, min_runtime_version, update_versions

MLIR_VARIANTS = ("fp32", "fp16", "dynamic", "int8", "int8io")


def _versions(m):
    return sorted((op.name, op.version) for op in m.operators())


@pytest.mark.parametrize("path", [p for p in sorted(MODELS.glob("*.tflite")) if p.stem.rsplit("_", 1)[1] in MLIR_VARIANTS],
                         ids=lambda p: p.stem)
def test_recomputed_versions_equal_the_converters(path):
    m = load(path)
    expected, mrv = _versions(m), m.min_runtime_version
    for oc in m.operator_codes:
        oc.version = 1
    m.min_runtime_version = "0.0.0"
    update_versions(m)
    assert _versions(m) == expected
    assert m.min_runtime_version == mrv


def test_legacy_16x8_versions_differ_deliberately():
    # The legacy 16x8 quantizer takes versions from operator_property, not op_version.cc:
    # op_version.cc puts the int16 ops, quantized_bias_type and the int16 QUANTIZE higher.
    m = load(MODELS / "convnet_int16x8.tflite")
    changes = update_versions(m)
    assert changes["CONV_2D"] == (3, 8) and changes["FULLY_CONNECTED"] == (4, 11)
    assert changes["QUANTIZE"] == (1, 2) and changes["MAX_POOL_2D"] == (2, 3)
    # int16 x int8 depthwise has no rule of its own in op_version.cc: kept, not lowered to 1.
    assert "DEPTHWISE_CONV_2D" not in changes
    assert m.min_runtime_version == "2.15.0"


def test_versions_follow_tensor_types_and_are_lowered_back():
    m = load(MODELS / "convnet_dynamic.tflite")
    fc = next(op for op in m.operators() if op.name == "FULLY_CONNECTED" and op.input(1).type == TensorType.INT8)
    assert compute_version(fc) == 12
    fc.options.asymmetricQuantizeInputs = True
    q = fc.input(1)
    q.set_quantization(q.quantization.scale[:1], 0)
    assert compute_version(fc) == 9
    fc.options.asymmetricQuantizeInputs = False
    assert compute_version(fc) == 3
    fc.input(1).raw.type = TensorType.FLOAT32
    assert compute_version(fc) == 1


def test_unknown_ops_keep_their_version_and_cap():
    m = load(MODELS / "lstm_fp32.tflite")
    while_code = next(op.opcode for op in m.operators() if op.name == "WHILE")
    while_code.version = 2
    update_versions(m)
    assert while_code.version == 2
    assert MAX_VERSION["LSTM"] == 4 and MAX_VERSION["FULLY_CONNECTED"] == 14
    while_code.version = 1
    assert min_runtime_version(m) == "1.15.0"  # WHILE v1 needs 1.15.0


def test_min_runtime_version_absent_stays_absent():
    m = load(MODELS / "mlp_fp32.tflite")
    m.remove_metadata("min_runtime_version")
    update_versions(m)
    assert m.min_runtime_version is None and min_runtime_version(m) == "1.5.0"
