"""The dequantize pass: float16, dynamic-range, sparse and full-integer models back to float32."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, MODELS
from tflopt import runtime
from tflopt.evaluation import compare_models
from tflopt.io import load
from tflopt.pipeline import run_pipeline
from tflopt.schema import TensorType

INT_TYPES = {TensorType.INT8, TensorType.UINT8, TensorType.INT16}


def dequantized(path, what="all"):
    m = load(path)
    run_pipeline(m, f"dequantize(what={what})", measure=False)
    return m


def assert_float(m):
    for sg in m.subgraphs:
        assert not any(op.name in ("QUANTIZE", "DEQUANTIZE", "DENSIFY") for op in sg.operators)
        for t in sg.tensors:
            assert not (t.type in INT_TYPES or t.type == TensorType.FLOAT16), t
            assert not t.is_quantized, t


@pytest.mark.parametrize("variant", ["fp16", "dynamic"])
def test_weights_back_to_float_match_the_float_model(variant):
    m = dequantized(MODELS / f"convnet_{variant}.tflite", "weights")
    assert_float(m)
    assert m.get_metadata("reduced_precision_support") is None
    assert {(op.name, op.version) for op in m.operators()} == \
        {(op.name, op.version) for op in load(MODELS / "convnet_fp32.tflite").operators()}
    r = compare_models(MODELS / "convnet_fp32.tflite", m, DATA / "digits.npz", samples=64)
    assert r["outputs"][0]["cosine"] > 0.9999 and r["outputs"][0]["top1_agreement"] == 1.0
    if variant == "fp16":  # exact: the same float32 weights the fp16 model computes with
        ins, a = runtime.run(MODELS / "convnet_fp16.tflite", xnnpack=False)
        _, b = runtime.run(m, ins, xnnpack=False)
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("name, variant, data", [
    ("convnet", "int8", "digits.npz"), ("convnet", "int8io", "digits.npz"), ("convnet", "int16x8", "digits.npz"),
    ("mlp", "int8", "mlp_calib.npz"), ("mlp", "int8io", "mlp_calib.npz"), ("gru", "int8", "gru_calib.npz"),
])
def test_full_integer_to_float_close_to_the_integer_model(name, variant, data):
    src = MODELS / f"{name}_{variant}.tflite"
    m = dequantized(src)
    assert_float(m)
    sig_inputs = [tm.tensorIndex for tm in m.signature_defs[0].inputs]
    assert sig_inputs == list(m.main.inputs)
    r = compare_models(src, m, DATA / data, samples=32)
    for o in r["outputs"]:
        assert o["cosine"] > 0.999, o
        assert o.get("top1_agreement", 1.0) >= 0.95


def test_weights_only_leaves_full_integer_activations():
    m = dequantized(MODELS / "mlp_int8.tflite", "weights")
    assert any(op.name == "QUANTIZE" for op in m.operators())
    weights = [op.input(1) for op in m.operators() if op.name == "FULLY_CONNECTED"]
    assert weights and all(w.type == TensorType.INT8 and w.is_quantized for w in weights)
    r = compare_models(MODELS / "mlp_int8.tflite", m, DATA / "mlp_calib.npz", samples=8)
    assert r["outputs"][0]["max_abs_error"] == 0.0


def test_deterministic():
    a = dequantized(MODELS / "convnet_int8.tflite").to_bytes()
    assert a == dequantized(MODELS / "convnet_int8.tflite").to_bytes()


@pytest.mark.real
def test_mediapipe_dequantize(mediapipe_model):
    original = mediapipe_model.read_bytes()
    m = load(original)
    run_pipeline(m, "dequantize", measure=False)
    for t in m.main.tensors:
        assert t.sparsity is None and t.type != TensorType.FLOAT16
    try:
        interp = runtime.interpreter(original)
    except RuntimeError as e:  # unresolved custom op: the rewrite must fail the same way
        assert "custom op" in str(e)
        with pytest.raises(RuntimeError, match="custom op"):
            runtime.interpreter(m)
        return
    ins = runtime.random_inputs(interp, 0)
    for a, b in zip(runtime.invoke(interp, ins), runtime.run(m, ins)[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(a).max())))
