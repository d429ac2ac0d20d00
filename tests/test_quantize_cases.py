"""The quantize pass on model shapes that used to give wrong results with exit 0 (issue 10):
float16 constants float16 cannot hold, weights an IF passes to its branches, and models that
are already full integer with resource-variable state. Fixtures: fixtures/build_quant_cases.py."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, MODELS
from tflopt import runtime
from tflopt.calibration import load_calibration
from tflopt.io import load
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.quantization import float16_loss, to_float16
from tflopt.schema import TensorType
from tflopt.weights import branch_readers

QUANT = MODELS / "quant"


def calib(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / f"quant_{name}_calib.npz") as z:
        return {k: z[k] for k in z.files}


def run_sequence(model, samples: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Outputs of ``n`` consecutive calls of one interpreter (state carries over)."""
    runner = runtime.interpreter(model, xnnpack=False).get_signature_runner()
    return np.stack([runner(**{k: v[i:i + 1] for k, v in samples.items()})["output"] for i in range(n)])


def quantize(path, spec: str, calibration=None):
    m = load(path)
    ctx = PassContext(calibration=load_calibration(calibration, m) if calibration else None)
    rep = run_pipeline(m, spec, ctx, measure=False)
    return m, rep.passes[0]


# -- 1. float16: cast a constant only where float16 holds it ---------------------------------
def test_float16_loss_rules():
    assert float16_loss(np.array([np.inf, -np.inf, np.nan, 0.0, 1.5], np.float32)) is None
    assert "range" in float16_loss(np.array([1e6, 1.0], np.float32))
    assert "range" in float16_loss(np.array([np.finfo(np.float32).max], np.float32))   # the converter's +inf
    assert "flush" in float16_loss(np.array([1e-10], np.float32))
    assert "flush" in float16_loss(np.array([3e-5, 0.0], np.float32))                    # subnormal in float16
    w = np.random.default_rng(0).standard_normal(4096).astype(np.float32) * 0.1
    w[:3] = [1e-7, -2e-6, 1e-9]   # below the tensor's own float16 rounding error
    assert float16_loss(w, weight=True) is None
    assert float16_loss(w) is not None                        # not as a non-weight constant
    assert float16_loss(w * 1e-4, weight=True) is not None    # a kernel float16 only holds as subnormals
    assert np.array_equal(to_float16(np.array([np.inf, -np.inf, 1e6], np.float32)),
                          np.array([np.inf, -np.inf, 65504], np.float16))
    assert np.isnan(to_float16(np.array([np.nan], np.float32))[0])


@pytest.mark.parametrize("name, constant", [("clip_inf", "clip_by_value/Minimum/y"), ("log_eps", "add/y")])
def test_float16_keeps_constants_it_cannot_hold(name, constant):
    path = QUANT / f"{name}_fp32.tflite"
    m, result = quantize(path, "quantize(mode=float16)")
    # Audio-scale samples (the clip bound matters above 65504) and silence (log of the epsilon).
    x = np.concatenate([calib(name)["x"][:8], np.zeros((2, 64), np.float32)])
    ref = run_sequence(path, {"x": x}, len(x))
    got = run_sequence(m.to_bytes(), {"x": x}, len(x))
    assert np.all(np.isfinite(got))
    scale = np.abs(ref).max(axis=-1, keepdims=True) + 1e-6
    assert np.max(np.abs(got - ref) / scale) < 5e-3
    assert np.allclose(got[-2:], ref[-2:], rtol=5e-3, atol=1e-3)
    kept = [t for t in m.main.tensors if t.name == constant]
    assert kept and kept[0].type == TensorType.FLOAT32 and kept[0].is_constant
    assert constant in result.stats["kept_float32"]
    assert any(constant in w and "kept float32" in w for w in result.warnings)
    assert result.stats["quantized"] == 2     # the two kernels are float16 all the same


# -- 4. dynamic: weights an IF op passes to its branches -------------------------------------
def test_branch_readers_follow_if_and_while():
    m = load(QUANT / "cond_fp32.tflite")
    (if_op,) = [op for op in m.main.operators if op.name == "IF"]
    weight = if_op.inputs.index(next(t.index for t in m.main.tensors if t.is_constant and t.num_elements == 4096))
    readers = branch_readers(m, if_op, weight)
    assert sorted((sg.index, op.name, pos) for sg, op, pos in readers) == [(1, "FULLY_CONNECTED", 1),
                                                                             (2, "FULLY_CONNECTED", 1)]
    assert branch_readers(m, if_op, 0) == []                 # the condition goes to no branch
    loop = load(MODELS / "loop_fp32.tflite")
    (while_op,) = [op for op in loop.main.operators if op.name == "WHILE"]
    # Operand 2 is the recurrent state: the body's FULLY_CONNECTED reads it as its data input.
    assert [(sg.index, op.name, pos) for sg, op, pos in branch_readers(loop, while_op, 2)] == \
        [(2, "FULLY_CONNECTED", 0)]


def test_dynamic_quantizes_weights_passed_to_if():
    path = QUANT / "cond_fp32.tflite"
    m, result = quantize(path, "quantize(mode=dynamic)")
    out = m.to_bytes()
    samples = calib("cond")   # flags alternate: both branches run
    ref, got = run_sequence(path, samples, 8), run_sequence(out, samples, 8)
    cos = np.sum(ref * got) / (np.linalg.norm(ref) * np.linalg.norm(got))
    assert cos > 0.999 and np.max(np.abs(got - ref)) < 0.05 * np.abs(ref).max()
    big_float = [(sg.index, t.name) for sg in m.subgraphs for t in sg.tensors
                 if t.is_constant and t.type == TensorType.FLOAT32 and t.num_elements >= 1024]
    assert big_float == []
    assert len(out) < path.stat().st_size / 2
    assert result.stats["control_flow"] == 1
    assert any("IF / WHILE" in w for w in result.warnings)


# -- 5. already full integer, with resource variables ----------------------------------------
def _variable_types(m) -> list[str]:
    return sorted(op.output(0).type_name for sg in m.subgraphs for op in sg.operators if op.name == "READ_VARIABLE")


def test_int8_on_full_int8_with_variables_keeps_it():
    path = QUANT / "stream_int8.tflite"
    plain = load(path).to_bytes()   # the faithful rewrite: what "unchanged" writes
    m, result = quantize(path, "quantize(mode=int8)", DATA / "quant_stream_calib.npz")
    assert _variable_types(m) == ["INT8"]
    assert len(m.to_bytes()) <= len(plain)
    x = calib("stream")
    assert np.array_equal(run_sequence(m.to_bytes(), x, 8), run_sequence(path, x, 8))
    assert m.to_bytes() == plain
    assert not result.changed and "already full int8" in result.warnings[0]


def test_int16x8_on_full_int16x8_keeps_it():
    path = MODELS / "mlp_int16x8.tflite"
    m, result = quantize(path, "quantize(mode=int16x8)", DATA / "mlp_calib.npz")
    assert m.to_bytes() == load(path).to_bytes()
    assert not result.changed and "already full int16x8" in result.warnings[0]
    m, result = quantize(path, "quantize(mode=int16x8)")    # nothing to calibrate: none needed
    assert not result.changed


def test_int16x8_on_int8_state_says_it_goes_float():
    path = QUANT / "stream_int8.tflite"
    m, result = quantize(path, "quantize(mode=int16x8)", DATA / "quant_stream_calib.npz")
    assert result.changed
    assert any("resource variable" in w and "float32" in w for w in result.warnings)
    x = calib("stream")
    ref, got = run_sequence(QUANT / "stream_fp32.tflite", x, 8), run_sequence(m.to_bytes(), x, 8)
    assert np.max(np.abs(got - ref)) < 0.1 * np.abs(ref).max()


@pytest.mark.parametrize("mode", ["float16", "dynamic"])
def test_weight_modes_on_full_int8_say_it_grows(mode):
    path = QUANT / "stream_int8.tflite"
    m, result = quantize(path, f"quantize(mode={mode})")
    assert _variable_types(m) == ["FLOAT32"]
    x = calib("stream")
    ref, got = run_sequence(QUANT / "stream_fp32.tflite", x, 8), run_sequence(m.to_bytes(), x, 8)
    assert np.max(np.abs(got - ref)) < 0.1 * np.abs(ref).max()
    said = result.warnings[0]
    assert "full-integer" in said and "resource variable" in said and "4x the memory" in said
    if mode == "float16":
        assert "grows from" in said and result.stats["bytes"]["after"] > result.stats["bytes"]["before"]


@pytest.mark.parametrize("source, options, reference", [
    ("mlp_int8io", "", "mlp_int8"),                                      # int8 I/O -> float I/O
    ("mlp_int8", ",input_type=int8,output_type=int8", "mlp_int8io"),     # float I/O -> int8 I/O
])
def test_int8_on_full_int8_only_retypes_the_boundary(source, options, reference):
    """Another boundary type costs a QUANTIZE / DEQUANTIZE, not a requantized model: the
    result computes exactly what the converter's model with those boundary types does."""
    m, result = quantize(MODELS / f"{source}.tflite", f"quantize(mode=int8{options})", DATA / "mlp_calib.npz")
    assert result.stats["boundary_changes"] == 2 and "already full int8" in result.warnings[0]
    ref = MODELS / f"{reference}.tflite"
    got_interp, ref_interp = runtime.interpreter(m.to_bytes(), xnnpack=False), runtime.interpreter(ref, xnnpack=False)
    assert [(d["name"], d["dtype"], d["quantization"]) for d in got_interp.get_input_details()] == \
        [(d["name"], d["dtype"], d["quantization"]) for d in ref_interp.get_input_details()]
    assert got_interp.get_signature_list() == ref_interp.get_signature_list()
    with np.load(DATA / "mlp_calib.npz") as z:
        x = z[z.files[0]][:16]
    d = ref_interp.get_input_details()[0]
    if d["dtype"] == np.int8:
        s, z = d["quantization"]
        x = np.clip(np.rint(x / s) + z, -128, 127).astype(np.int8)
    got = np.stack([runtime.invoke(got_interp, [x[i:i + 1]])[0] for i in range(len(x))])
    want = np.stack([runtime.invoke(ref_interp, [x[i:i + 1]])[0] for i in range(len(x))])
    assert got.dtype == want.dtype and np.array_equal(got, want)
