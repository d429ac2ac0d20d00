"""The evaluation package: accuracy against labels, every signature, honest compare output,
the data-file form, quality gates on optimize, bench figures."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA, MODELS
from tflopt.cli import main
from tflopt.evaluation import compare_models, load_eval_data, topk_accuracy
from tflopt.evaluation.data import split_spec
from tflopt.evaluation.gates import check
from tflopt.evaluation.metrics import json_safe

DIGITS = DATA / "digits.npz"
CONVNET = MODELS / "convnet_fp32.tflite"


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _numpy_top1(path, x, y) -> float:
    """Top-1 of a model on digits, computed without tflopt: the interpreter, argmax, mean."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    right = 0
    for xi, yi in zip(x, y):
        s, zp = i["quantization"]
        xin = xi[None] if not s else np.clip(np.rint(xi[None] / s) + zp, -128, 127).astype(i["dtype"])
        interp.set_tensor(i["index"], xin.astype(i["dtype"]))
        interp.invoke()
        right += int(np.argmax(interp.get_tensor(o["index"])[0]) == yi)
    return right / len(y)


def test_compare_labels_top1_equals_numpy(capsys):
    z = np.load(DIGITS)
    expect_ref = _numpy_top1(CONVNET, z["x_test"], z["y_test"])
    expect_cand = _numpy_top1(MODELS / "convnet_int8io.tflite", z["x_test"], z["y_test"])
    rc, out, _ = _run(capsys, "compare", CONVNET, MODELS / "convnet_int8io.tflite", "--data", f"{DIGITS}:x_test",
                      "--labels", f"{DIGITS}:y_test", "--json")
    assert rc == 0
    acc = json.loads(out)["outputs"][0]["accuracy"]
    assert json.loads(out)["samples"] == 360
    assert acc["reference_top1"] == pytest.approx(expect_ref, abs=1e-12)
    assert acc["candidate_top1"] == pytest.approx(expect_cand, abs=1e-12)
    assert acc["top1_drop"] == pytest.approx(expect_ref - expect_cand, abs=1e-12)
    # The same through --inputs KEY --labels KEY of the --data file, in the text output.
    rc, out, _ = _run(capsys, "compare", CONVNET, MODELS / "convnet_int8io.tflite", "--data", DIGITS,
                      "--inputs", "x_test", "--labels", "y_test", "--top-k", "3")
    assert rc == 0 and f"top-1 {expect_ref:.4f} -> {expect_cand:.4f}" in out and "top-3" in out


def test_topk_accuracy():
    s = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    y = np.array([1, 1, 0])
    assert topk_accuracy(s, y, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(s, y, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(s, np.eye(3)[y], 3) == 1.0
    with pytest.raises(ValueError):
        topk_accuracy(s, np.array([0, 1, 5]), 1)


def test_random_inputs_are_said_in_the_first_line(capsys):
    rc, out, _ = _run(capsys, "compare", CONVNET, MODELS / "convnet_int8.tflite")
    assert rc == 0 and out.splitlines()[0].startswith("note: inputs are random")
    rc, out, _ = _run(capsys, "compare", CONVNET, MODELS / "convnet_int8.tflite", "--data", DIGITS, "--samples", "4")
    assert rc == 0 and "random" not in out


def test_every_signature_is_compared(capsys):
    a, b = MODELS / "multisig_fp32.tflite", MODELS / "multisig_fp16.tflite"
    r = compare_models(a, b, DATA / "multisig_calib.npz", samples=None)
    assert sorted(r["signatures"]) == ["decode", "encode"] and r["samples"] == 64
    assert {o["signature"] for o in r["outputs"]} == {"decode", "encode"}
    assert all(o["cosine"] > 0.9999 for o in r["outputs"])
    one = compare_models(a, b, DATA / "multisig_calib.npz", samples=None, signature="encode")
    assert [o["signature"] for o in one["outputs"]] == ["encode"]
    assert one["outputs"][0] == next(o for o in r["outputs"] if o["signature"] == "encode")
    rc, _, err = _run(capsys, "compare", a, b, "--signature", "nope")
    assert rc == 2 and "no signature 'nope'" in err and "decode" in err


def test_json_has_no_bare_nan_or_infinity(capsys):
    rc, out, _ = _run(capsys, "compare", CONVNET, CONVNET, "--json")
    assert rc == 0 and "Infinity" not in out and "NaN" not in out
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert doc["outputs"][0]["snr_db"] == "inf"
    assert json_safe({"a": [float("nan"), -float("inf"), np.float32(1.5)]}) == {"a": ["nan", "-inf", 1.5]}


def test_per_layer_does_not_change_the_outputs_figures():
    args = (CONVNET, MODELS / "convnet_int8.tflite", DIGITS)
    plain = compare_models(*args, samples=16)
    layered = compare_models(*args, per_layer=True, samples=16)
    assert layered["outputs"] == plain["outputs"] and len(layered["layers"]) >= 5


def test_per_layer_skips_resource_tensors(tmp_path):
    # VAR_HANDLE's output is a resource handle: never read (reading them crashed the runtime
    # on streaming int8 models), the values around it still compared.
    from tflopt.evaluation.compare import _activation_names
    model = MODELS.parent / "extra" / "stateful_fp32.tflite"
    assert "Variable" not in _activation_names(model) and "add/ReadVariableOp" in _activation_names(model)
    r = compare_models(model, model, per_layer=True, samples=2)
    names = [x["name"] for x in r["layers"]]
    assert "Variable" not in names and "add/ReadVariableOp" in names
    assert r["outputs"][0]["cosine"] == pytest.approx(1.0)


def test_errors_are_words_not_numpy_reprs(tmp_path, capsys):
    bad = tmp_path / "wrong.npz"
    np.savez(bad, x=np.zeros((3, 5, 5), np.float32))
    rc, _, err = _run(capsys, "compare", CONVNET, MODELS / "convnet_int8.tflite", "--data", bad)
    assert rc == 2 and "np." not in err and "[5, 5]" in err and "[1, 16, 16, 1]" in err and err.count("\n") == 1


def test_one_data_form_for_compare_and_calibration():
    from tflopt import load
    from tflopt.calibration import load_calibration
    assert split_spec("d/x.npz:x_test,x2") == (split_spec("d/x.npz")[0], ["x_test", "x2"])
    assert split_spec("mod:func") == (split_spec("mod:func")[0], [])
    names = ["serving_default_image:0"]
    # digits.npz holds six arrays: both pick x_test, and both take FILE.npz:KEY.
    assert load_eval_data(DIGITS, names).keys == ["x_test"]
    m = load(CONVNET)
    assert len(load_calibration(DIGITS, m)) == 360
    assert len(load_calibration(f"{DIGITS}:x_calib", m)) == 64
    assert load_eval_data(f"{DIGITS}:x_calib", names).keys == ["x_calib"]


def test_gate_margin_and_message():
    g = check("min_cosine", 0.99, 0.83)
    assert not g.passed and g.margin == pytest.approx(-0.16) and "short by 0.16" in g.message()
    g = check("max_latency_ratio", 1.0, 0.8)
    assert g.passed and g.margin == pytest.approx(0.2)
    assert not check("min_snr", 10, float("nan")).passed


def test_gate_fails_lstm_pipeline_exit_1_nothing_written(tmp_path, capsys):
    out = tmp_path / "lstm.tflite"
    rc, stdout, err = _run(capsys, "optimize", MODELS / "lstm_fp32.tflite", "-o", out, "-p", "prune(sparsity=0.9)",
                           "--data", DATA / "lstm_calib.npz", "--min-cosine", "0.99")
    assert rc == 1 and not out.exists() and not list(tmp_path.iterdir())
    assert "gate min_cosine FAILED" in err and "short by" in err and "not written" in err
    rc, stdout, err = _run(capsys, "optimize", MODELS / "lstm_fp32.tflite", "-o", out, "-p", "prune(sparsity=0.1)",
                           "--data", DATA / "lstm_calib.npz", "--min-cosine", "0.95", "--min-snr", "10")
    assert rc == 0 and out.exists() and "gate min_cosine passed" in stdout
    from tflopt import runtime
    runtime.run(out)  # the written model runs


def test_gate_options_are_checked_first(tmp_path, capsys):
    out = tmp_path / "o.tflite"
    base = ["optimize", CONVNET, "-o", out, "-p", "prune(sparsity=0.5)"]
    rc, _, err = _run(capsys, *base, "--data", DIGITS, "--calibration", DIGITS, "--min-cosine", "0.9")
    assert rc == 2 and "--allow-same-data" in err and not out.exists()
    rc, _, err = _run(capsys, *base, "--data", DIGITS, "--max-accuracy-drop", "0.01")
    assert rc == 2 and "--labels" in err
    rc, _, err = _run(capsys, *base, "--min-cosine", "0.9")
    assert rc == 2 and "--data" in err
    rc, out_text, _ = _run(capsys, *base, "--data", f"{DIGITS}:x_test", "--labels", "y_test",
                           "--max-accuracy-drop", "0.5", "--calibration", f"{DIGITS}:x_calib", "--allow-same-data")
    assert rc == 0 and "gate max_accuracy_drop passed" in out_text


def test_bench_json_is_sane(capsys):
    rc, out, _ = _run(capsys, "bench", CONVNET, MODELS / "convnet_int8.tflite", "--threads", "1", "--runs", "20",
                      "--json")
    assert rc == 0
    doc = json.loads(out)
    a, b = doc["results"]
    for r in (a, b):
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["runs"] == 20 and r["init_ms"] > 0 and r["peak_rss_bytes"] > 2**20 and 0 <= r["model_rss_bytes"] < r["peak_rss_bytes"]
        assert 0 < r["delegated"]["xnnpack"]["share"] <= 1 and r["backend"] == "xnnpack"
    assert a["delegated"]["xnnpack"]["share"] == 1.0 and a["ratio"] == 1.0
    assert b["ratio"] == pytest.approx(b["median_ms"] / a["median_ms"])
    assert "profiler" in doc["per_op"]
    rc, out, _ = _run(capsys, "bench", CONVNET, "--threads", "1", "--runs", "5", "--no-xnnpack", "--json")
    (r,) = json.loads(out)["results"]
    assert rc == 0 and r["backend"] == "builtin" and r["delegated"] == {} and r["ops"] == 9


def test_bench_help_says_there_is_no_per_op_profile(capsys):
    rc, out, _ = _run(capsys, "bench", "--help")
    assert rc == 0 and "per-op" in out and "no profiler" in " ".join(out.split())
