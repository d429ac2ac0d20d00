"""Models with dynamic input sizes (issue 10 item 3): the fixture's input signature is
[-1, -1], stored as [1, 1], at which its VALID Conv1D cannot even prepare. Calibration,
random samples, compare and the recovery statistics must size the interpreter from the data
(or --input-shape) before its first allocation."""
from __future__ import annotations

import numpy as np
import pytest

import tflopt
from tflopt import runtime
from tflopt.calibration import collect_ranges, load_calibration
from tflopt.cli import main as cli_main
from tflopt.evaluation import compare_models
from tflopt.errors import TfloptError
from tflopt.pipeline import PassContext, run_pipeline

from conftest import DATA, MODELS

MODEL = MODELS / "dynamic_fp32.tflite"
CALIB = DATA / "dynamic_calib.npz"
NAME = "serving_default_audio:0"


def _float_and_quantized_outputs(path_or_model, x: np.ndarray) -> np.ndarray:
    it = runtime.interpreter(path_or_model, input_shapes=[x.shape])
    d = it.get_input_details()[0]
    scale, zp = d["quantization"]
    feed = x if not scale else np.clip(np.rint(x / scale + zp), -128, 127).astype(d["dtype"])
    (y,) = runtime.invoke(it, [feed])
    o = it.get_output_details()[0]
    scale, zp = o["quantization"]
    return (y.astype(np.float64) - zp) * scale if scale else y.astype(np.float64)


@pytest.mark.parametrize("xnnpack", [True, False])
def test_fixture_cannot_run_at_its_stored_shape(xnnpack):
    # What the fix is about: an interpreter allocated at the stored [1, 1] fails to prepare.
    with pytest.raises(RuntimeError):
        runtime.invoke(runtime.interpreter(MODEL, xnnpack=xnnpack), [np.zeros((1, 1), np.float32)])


def test_int8_calibrates_from_data_and_runs_close_to_float():
    m = tflopt.load(MODEL)
    ctx = PassContext(calibration=load_calibration(CALIB, m))
    run_pipeline(m, "quantize(mode=int8)", ctx)
    x = np.load(CALIB)[NAME]
    for length in (1760, 800):  # the data's length and another: still dynamic after quantizing
        ref = np.concatenate([_float_and_quantized_outputs(MODEL, s[None, :length]) for s in x[:6]])
        got = np.concatenate([_float_and_quantized_outputs(m, s[None, :length]) for s in x[:6]])
        cos = ref.ravel() @ got.ravel() / (np.linalg.norm(ref) * np.linalg.norm(got))
        assert cos > 0.999, (length, cos)


def test_random_needs_input_shape_and_uses_it(tmp_path, capsys):
    m = tflopt.load(MODEL)
    with pytest.raises(TfloptError, match=r"--input-shape serving_default_audio:0=1,N"):
        load_calibration("random:4", m)
    data = load_calibration("random:4", m, input_shapes={NAME: [1, 1760]})
    assert [s[0].shape for s in data] == [(1, 1760)] * 4
    r = collect_ranges(m, data)
    assert r.samples == 4 and len(r.ranges) >= 10

    out = tmp_path / "q.tflite"
    args = ["optimize", str(MODEL), "-o", str(out), "-p", "quantize(mode=int8)", "--calibration", "random:4"]
    assert cli_main(args) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--input-shape" in err and "Traceback" not in err
    assert cli_main(args + ["--input-shape", f"{NAME}=1,960"]) == 0
    y = _float_and_quantized_outputs(out, np.zeros((1, 960), np.float32))
    assert y.shape == (1, 5) and np.isfinite(y).all()
    capsys.readouterr()
    for bad in ("nope=1,960", f"{NAME}=1,x", f"{NAME}=2,3,4"):
        assert cli_main(args + ["--input-shape", bad]) == 2, bad
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("tflopt: error: --input-shape"), (bad, err)


def test_compare_with_correctly_shaped_data():
    m = tflopt.load(MODEL)
    run_pipeline(m, "quantize(mode=float16)", PassContext())
    result = compare_models(MODEL, m.to_bytes(), str(CALIB), samples=4)
    assert result["samples"] == 4
    assert result["outputs"][0]["cosine"] > 0.9999
    per_layer = compare_models(MODEL, MODEL, str(CALIB), per_layer=True, samples=2)
    assert per_layer["outputs"][0]["snr_db"] == float("inf") and per_layer["layers"]


@pytest.mark.parametrize("fast", [True, False])
def test_recovery_statistics_follow_the_data_shape(fast):
    from tflopt.weights import weight_slots
    from tflopt.recovery.bias_correction import read_bias
    from tflopt.recovery.stats import gather, layer_spec
    m = tflopt.load(MODEL)
    specs = [layer_spec(s)[0] for s in weight_slots(m, ops=None, min_elements=0)]
    assert all(specs) and sorted(s.kind for s in specs) == ["conv", "conv", "conv", "fc"]
    x = np.load(CALIB)[NAME]
    samples = [[s[None]] for s in x[:3]]
    stats = gather(m, specs, samples, weights={i: s.to2d(s.slot.floats()) for i, s in enumerate(specs)},
                   biases={i: read_bias(s.op, s.bias_position) for i, s in enumerate(specs)}, fast=fast)
    for i, s in enumerate(specs):
        # X rebuilt at the data's size reproduces the op's output (the stored shapes are [1, 1, ...]).
        assert stats[i].check < 1e-4, (s.name, stats[i].check)
        assert stats[i].samples == 3
    first = next(i for i, s in enumerate(specs) if s.weight_shape == (8, 1, 5, 1))
    assert stats[first].count == 3 * (1760 - 4)  # VALID kernel 5: every output position


def test_round_trip_is_faithful_at_the_data_size(tmp_path):
    out = tmp_path / "rt.tflite"
    assert cli_main(["optimize", str(MODEL), "-o", str(out)]) == 0
    x = np.load(CALIB)[NAME][:1]
    for xnnpack in (True, False):
        a = runtime.invoke(runtime.interpreter(MODEL, xnnpack=xnnpack, input_shapes=[x.shape]), [x])
        b = runtime.invoke(runtime.interpreter(out, xnnpack=xnnpack, input_shapes=[x.shape]), [x])
        assert np.array_equal(a[0], b[0])


def test_check_probes_at_the_given_input_shape(tmp_path, capsys):
    """At its stored placeholder shape [1, 1] the model does not run (XNNPACK cannot prepare
    it); ``--check`` must probe the shape the user gave, as calibration and evaluation do."""
    out = tmp_path / "o.tflite"
    args = ["optimize", str(MODEL), "-o", str(out), "-p", "quantize(mode=float16)", "--check"]
    assert cli_main(args) == 0
    assert "fails at invoke as the input does" in capsys.readouterr().out
    assert cli_main(args + ["--input-shape", f"{NAME}=1,1760"]) == 0
    assert "check: the output loads, allocates and runs" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((1, 1760)).astype(np.float32)
    ref = runtime.interpreter(MODEL, input_shapes=[x.shape])
    got = runtime.interpreter(out, input_shapes=[x.shape])
    for it in (ref, got):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
    a = ref.get_tensor(ref.get_output_details()[0]["index"])
    b = got.get_tensor(got.get_output_details()[0]["index"])
    assert np.allclose(a, b, rtol=1e-2, atol=1e-2 * np.abs(a).max())
