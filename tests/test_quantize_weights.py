"""float16 and dynamic-range modes of the quantize pass, and the selective-quantization recipe."""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest

from conftest import DATA, MODELS
from tflopt import runtime
from tflopt.evaluation import compare_models
from tflopt.errors import TfloptError
from tflopt.io import load
from tflopt.pipeline import run_pipeline
from tflopt.recipe import Selector
from tflopt.schema import TensorType

KERAS_MODELS = ["convnet", "mlp", "gru", "lstm", "attention"]
CONVERTER_VARIANT = {"float16": "fp16", "dynamic": "dynamic"}


def data_for(name: str):
    return DATA / ("digits.npz" if name == "convnet" else f"{name}_calib.npz")


@lru_cache(maxsize=None)
def quantized(source: str, spec: str) -> bytes:
    m = load(MODELS / source)
    run_pipeline(m, spec, measure=False)
    return m.to_bytes()


def digits_accuracy(model) -> float:
    d = np.load(DATA / "digits.npz")
    interp = runtime.interpreter(model)
    preds = [runtime.invoke(interp, [x[None]])[0].argmax() for x in d["x_test"]]
    return float(np.mean(np.asarray(preds) == d["y_test"]))


@pytest.mark.parametrize("mode", ["float16", "dynamic"])
@pytest.mark.parametrize("name", KERAS_MODELS)
def test_fidelity_at_least_converters(name, mode):
    ref = MODELS / f"{name}_fp32.tflite"
    ours = quantized(f"{name}_fp32.tflite", f"quantize(mode={mode})")
    theirs = MODELS / f"{name}_{CONVERTER_VARIANT[mode]}.tflite"
    a = compare_models(ref, ours, data_for(name), samples=64)
    b = compare_models(ref, theirs, data_for(name), samples=64)
    for o, c in zip(a["outputs"], b["outputs"]):
        assert o["cosine"] >= c["cosine"] - 1e-7, (o, c)
        assert o["snr_db"] >= c["snr_db"] - 0.05, (o, c)


def test_convnet_digits_accuracy_at_least_converters():
    for mode, variant in CONVERTER_VARIANT.items():
        ours = digits_accuracy(quantized("convnet_fp32.tflite", f"quantize(mode={mode})"))
        assert ours >= digits_accuracy(MODELS / f"convnet_{variant}.tflite")


def test_float16_matches_converter_pattern():
    m = load(quantized("convnet_fp32.tflite", "quantize(mode=float16)"))
    conv = load(MODELS / "convnet_fp16.tflite")
    consts = [t for t in m.main.tensors if t.is_constant]
    assert sorted(t.type_name for t in consts) == sorted(t.type_name for t in conv.main.tensors if t.is_constant)
    assert {(op.name, op.version) for op in m.operators()} == {(op.name, op.version) for op in conv.operators()}
    assert m.get_metadata("reduced_precision_support") == b"fp16accfp32"
    assert m.min_runtime_version == conv.min_runtime_version == "1.15.0"
    for op in m.main.operators:
        if op.name == "DEQUANTIZE":
            assert op.input(0).type == TensorType.FLOAT16 and op.output(0).type == TensorType.FLOAT32


def test_dynamic_matches_converter_pattern():
    m = load(quantized("convnet_fp32.tflite", "quantize(mode=dynamic)"))
    conv = load(MODELS / "convnet_dynamic.tflite")
    assert {(op.name, op.version) for op in m.operators()} == {(op.name, op.version) for op in conv.operators()}
    assert m.min_runtime_version == conv.min_runtime_version
    ours = {t.name: t for t in m.main.tensors if t.is_constant and t.type == TensorType.INT8}
    theirs = {t.name: t for t in conv.main.tensors if t.is_constant and t.type == TensorType.INT8}
    assert ours.keys() == theirs.keys() and ours
    for name, t in ours.items():
        assert t.quantization.axis == theirs[name].quantization.axis
        assert np.abs(t.data.astype(int) - theirs[name].data.astype(int)).max() <= 1
        assert np.all(t.quantization.zero_point == 0)
    for op in m.main.operators:
        if op.name == "FULLY_CONNECTED" and op.input(1).type == TensorType.INT8:
            assert op.options.asymmetricQuantizeInputs
            assert op.input(2).type == TensorType.FLOAT32 and op.input(2).is_constant


def test_dynamic_per_tensor_versions():
    m = load(quantized("convnet_fp32.tflite", "quantize(mode=dynamic,per_channel=false)"))
    versions = {op.name: op.version for op in m.operators()}
    assert versions["CONV_2D"] == 2 and versions["FULLY_CONNECTED"] == 9
    assert m.min_runtime_version == "2.3.0"
    for t in m.main.tensors:
        if t.is_constant and t.type == TensorType.INT8:
            assert t.quantization.scale.size == 1
    runtime.run(m)


def test_dynamic_weight_only_for_ops_without_hybrid_kernel():
    # ADD has no hybrid kernel: asked for explicitly, its constant becomes int8 -> DEQUANTIZE.
    m = load(MODELS / "lstm_fp32.tflite")
    run_pipeline(m, "quantize(mode=dynamic,ops=ADD,min_elements=0)", measure=False)
    deq = [op for op in m.operators() if op.name == "DEQUANTIZE"]
    assert deq and all(op.input(0).type == TensorType.INT8 for op in deq)
    assert not any(op.name == "FULLY_CONNECTED" and op.input(1).type == TensorType.INT8 for op in m.operators())
    r = compare_models(MODELS / "lstm_fp32.tflite", m, data_for("lstm"), samples=16)
    assert r["outputs"][0]["cosine"] > 0.999


@pytest.mark.parametrize("mode", ["float16", "dynamic"])
@pytest.mark.parametrize("variant", ["fp16", "dynamic", "int8", "int8io", "int16x8"])
def test_any_input(mode, variant):
    path = MODELS / f"mlp_{variant}.tflite"
    m = load(quantized(path.name, f"quantize(mode={mode})"))
    assert not any(op.name == "QUANTIZE" for op in m.operators())
    ins = [t for t in m.main.inputs]
    assert all(m.main.tensors[t].type == TensorType.FLOAT32 for t in ins)
    r = compare_models(MODELS / "mlp_fp32.tflite", m, data_for("mlp"), samples=32)
    ref = compare_models(MODELS / "mlp_fp32.tflite", path, data_for("mlp"), samples=32)
    # Requantizing cannot undo the input's own error, but must not add much to it.
    assert r["outputs"][0]["cosine"] >= min(ref["outputs"][0]["cosine"], 0.9999) - 2e-3
    if mode == "float16":
        assert not any(t.is_constant and t.type == TensorType.INT8 for t in m.main.tensors)
    else:
        assert any(t.is_constant and t.type == TensorType.INT8 for t in m.main.tensors)


def test_already_float16_left_and_reported():
    m = load(MODELS / "convnet_fp16.tflite")
    before = m.to_bytes()
    rep = run_pipeline(m, "quantize(mode=float16)", measure=False)
    assert rep.passes[0].stats["already_float16"] == 10
    assert any("already float16" in w for w in rep.passes[0].warnings)
    assert m.to_bytes() == before


def test_deterministic():
    for spec in ("quantize(mode=float16)", "quantize(mode=dynamic)"):
        a = load(MODELS / "attention_fp32.tflite")
        b = load(MODELS / "attention_fp32.tflite")
        run_pipeline(a, spec, measure=False)
        run_pipeline(b, spec, measure=False)
        assert a.to_bytes() == b.to_bytes()


def test_min_elements_and_selection():
    m = load(quantized("convnet_fp32.tflite", "quantize(mode=float16,min_elements=1000)"))
    floats = [t for t in m.main.tensors if t.is_constant and t.type == TensorType.FLOAT32]
    halves = [t for t in m.main.tensors if t.is_constant and t.type == TensorType.FLOAT16]
    assert floats and halves
    assert all(t.num_elements < 1000 for t in floats) and all(t.num_elements >= 1000 for t in halves)

    m = load(quantized("convnet_fp32.tflite", "quantize(mode=dynamic,skip_ops=FULLY_CONNECTED)"))
    assert {op.name: op.version for op in m.operators()}["FULLY_CONNECTED"] == 1
    assert any(op.name == "CONV_2D" and op.input(1).type == TensorType.INT8 for op in m.operators())

    m = load(quantized("convnet_fp32.tflite", "quantize(mode=dynamic,exclude=dense)"))
    assert not any(op.name == "FULLY_CONNECTED" and op.input(1).type == TensorType.INT8 for op in m.operators())


def test_recipe_last_match_wins(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps([
        {"ops": ["CONV_2D", "FULLY_CONNECTED"], "action": "skip"},
        {"regex": "dense_1/MatMul", "action": "quantize", "per_channel": False},
    ]))
    sel = Selector(recipe=recipe)
    assert not sel.decide("CONV_2D", ["conv/w"]).quantize
    d = sel.decide("FULLY_CONNECTED", ["x/dense_1/MatMul"])
    assert d.quantize and d.per_channel is False
    assert sel.decide("ADD", ["anything"]).quantize
    m = load(MODELS / "convnet_fp32.tflite")
    run_pipeline(m, f"quantize(mode=dynamic,recipe='{recipe}')", measure=False)
    int8 = [(op.name, op.input(1).quantization.scale.size) for op in m.operators()
            if op.name in ("CONV_2D", "FULLY_CONNECTED") and op.input(1).type == TensorType.INT8]
    assert int8 == [("FULLY_CONNECTED", 1)]


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ('{"a": 1}', "expected a list"),
    ('[{"action": "drop"}]', "'action' must be"),
    ('[{"regex": "(", "action": "skip"}]', "bad regex"),
    ('[{"ops": ["CONV_2D"], "colour": 1, "action": "skip"}]', "unknown key"),
    ('[{"ops": ["CONV_2D"]}]', "needs at least one"),
])
def test_bad_recipe(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(TfloptError, match=message):
        Selector(recipe=p)
    with pytest.raises(TfloptError, match="cannot read"):
        Selector(recipe=tmp_path / "missing.json")


def _stray_float32(m) -> list[str]:
    """Float32 constants other than the operands of hybrid ops (which their kernels, and
    XNNPACK, need as float32 constants: a float16 bias behind DEQUANTIZE fails to delegate)."""
    from tflopt.passes.quantize_weights import HYBRID_WEIGHTS
    stray = []
    for sg in m.subgraphs:
        for t in sg.tensors:
            if not (t.is_constant and t.type == TensorType.FLOAT32):
                continue
            for op, _ in sg.consumers(t.index):
                spec = HYBRID_WEIGHTS.get(op.name)
                if spec is None or not any(op.input(p) is not None and op.input(p).type == TensorType.INT8
                                           for p in spec[0]):
                    stray.append(f"{t.name} -> {op.name}")
    return stray


@pytest.mark.parametrize("name", ["convnet", "mlp", "attention", "gru", "lstm"])
def test_dynamic_from_float16_keeps_float16_storage(name):
    """From float16 weights, what dynamic leaves float stays float16 + DEQUANTIZE: float32
    constants are only the hybrid ops' biases, the file is smaller, and the model runs with
    and without XNNPACK like the float16 input does."""
    src = MODELS / f"{name}_fp16.tflite"
    m = load(quantized(src.name, "quantize(mode=dynamic)"))
    assert _stray_float32(m) == []
    before = sum(t.num_elements for sg in load(src).subgraphs for t in sg.tensors
                 if t.is_constant and t.type == TensorType.FLOAT16)
    left16 = sum(t.num_elements for sg in m.subgraphs for t in sg.tensors
                 if t.is_constant and t.type == TensorType.FLOAT16)
    assert 0 < left16 < before
    assert len(m.to_bytes()) < src.stat().st_size
    for xnnpack in (True, False):
        ins, ref = runtime.run(src, xnnpack=xnnpack)
        _, out = runtime.run(m, ins, xnnpack=xnnpack)
        for a, b in zip(ref, out):
            assert compare_cos(a, b) > 0.999


# -- the mediapipe corpus -------------------------------------------------------------------------
def _runs_like_original(original: bytes, model) -> tuple[list, list] | None:
    """Outputs of (original, model) on seeded random inputs; None when the original itself
    cannot run here (unresolved custom op), after checking the rewrite fails the same way."""
    try:
        interp = runtime.interpreter(original)
    except RuntimeError as e:
        assert "custom op" in str(e)
        with pytest.raises(RuntimeError, match="custom op"):
            runtime.interpreter(model)
        load(model.to_bytes())  # still a valid model
        return None
    ins = runtime.random_inputs(interp, 0)
    return runtime.invoke(interp, ins), runtime.invoke(runtime.interpreter(model), ins)


@pytest.mark.real
@pytest.mark.parametrize("mode", ["float16", "dynamic"])
def test_mediapipe_modes_run(mediapipe_model, mode):
    original = mediapipe_model.read_bytes()
    m = load(original)
    run_pipeline(m, f"quantize(mode={mode})", measure=False)
    if mode == "dynamic" and not any(t.is_constant and t.type == TensorType.FLOAT32
                                     for sg in load(original).subgraphs for t in sg.tensors):
        assert _stray_float32(m) == []  # from float16 weights, what stays float stays float16
    outs = _runs_like_original(original, m)
    if outs is None:
        return
    for a, b in zip(*outs):
        assert np.all(np.isfinite(b))
        if mode == "float16":
            cos = compare_cos(a, b)
            assert cos >= 0.9999


def compare_cos(a, b) -> float:
    from tflopt.evaluation import metrics
    return metrics(a, b)["cosine"]


@pytest.mark.real
def test_mediapipe_float16_from_float32_and_sparse(mediapipe_models):
    """float32 mediapipe models get the converter pattern; a sparse float32 weight behind
    DENSIFY stays sparse with float16 values (sparse fp16 -> DENSIFY -> DEQUANTIZE)."""
    by_name = {p.name: p for p in mediapipe_models}
    iris = load(by_name["iris_landmark.tflite"])
    run_pipeline(iris, "quantize(mode=float16)", measure=False)
    assert not any(t.is_constant and t.type == TensorType.FLOAT32 for t in iris.main.tensors)

    src = by_name["face_detection_full_range_sparse.tflite"]
    m = load(src)
    # Build the float32-sparse form: sparse values widened, the DEQUANTIZE after DENSIFY removed.
    sg = m.main
    for op in list(sg.operators):
        if op.name == "DENSIFY":
            root = op.input(0)
            root.set_data(root.data.astype(np.float32), TensorType.FLOAT32)
            op.output(0).raw.type = TensorType.FLOAT32
            for deq, _ in sg.consumers(op.outputs[0]):
                sg.replace_uses(deq.outputs[0], op.outputs[0])
                sg.remove_operator(deq)
    m = load(m.to_bytes())
    assert sum(t.sparsity is not None and t.type == TensorType.FLOAT32 for t in m.main.tensors) == 46
    rep = run_pipeline(m, "quantize(mode=float16)", measure=False)
    assert rep.passes[0].stats["sparse_float16"] == 46
    sparse = [t for t in m.main.tensors if t.sparsity is not None]
    assert len(sparse) == 46 and all(t.type == TensorType.FLOAT16 for t in sparse)
    for op in m.main.operators:
        if op.name == "DENSIFY":
            (reader, _), = m.main.consumers(op.outputs[0])
            assert reader.name == "DEQUANTIZE"
    ins, a = runtime.run(src)
    _, b = runtime.run(m, ins)
    for x, y in zip(a, b):
        assert compare_cos(x, y) >= 0.99999
