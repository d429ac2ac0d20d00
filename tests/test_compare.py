"""Fidelity comparison: metrics, data handling across I/O types, per-layer, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA, MODELS
from tflopt.cli import main
from tflopt.evaluation import compare_models, metrics


def test_metrics():
    a = np.array([1.0, 2.0, 3.0])
    m = metrics(a, a)
    assert m["cosine"] == pytest.approx(1.0) and m["snr_db"] == float("inf") and m["max_abs_error"] == 0
    m = metrics(a, a + np.array([0.1, 0, 0]))
    assert m["max_abs_error"] == pytest.approx(0.1)
    assert m["snr_db"] == pytest.approx(10 * np.log10(14 / 0.01))
    assert metrics(a, -a)["cosine"] == pytest.approx(-1.0)


def test_same_model_is_perfect_and_random_data_is_seeded():
    r = compare_models(MODELS / "mlp_fp32.tflite", MODELS / "mlp_fp32.tflite", samples=3)
    assert r["samples"] == 3
    (o,) = r["outputs"]
    assert o["cosine"] == pytest.approx(1.0) and o["max_abs_error"] == 0 and o["top1_agreement"] == 1.0
    a = compare_models(MODELS / "mlp_fp32.tflite", MODELS / "mlp_int8.tflite", samples=4)
    b = compare_models(MODELS / "mlp_fp32.tflite", MODELS / "mlp_int8.tflite", samples=4)
    assert a == b


def test_int8_io_model_against_float_on_digits():
    # Float data is quantized for the int8 input; the int8 output is dequantized.
    r = compare_models(MODELS / "convnet_fp32.tflite", MODELS / "convnet_int8io.tflite",
                       DATA / "digits.npz", samples=100)
    (o,) = r["outputs"]
    assert o["cosine"] > 0.999 and o["snr_db"] > 25 and o["top1_agreement"] >= 0.97
    lists = [[x[None]] for x in np.load(DATA / "digits.npz")["x_test"][:100]]
    assert compare_models(MODELS / "convnet_fp32.tflite", MODELS / "convnet_int8io.tflite", lists, samples=100) == r


def test_per_layer_shows_shared_activations_in_order():
    r = compare_models(MODELS / "convnet_fp32.tflite", MODELS / "convnet_int8.tflite", DATA / "digits.npz",
                       per_layer=True, samples=8)
    names = [layer["name"] for layer in r["layers"]]
    assert len(names) >= 5 and names[-1] == r["outputs"][0]["name"]
    assert all(layer["cosine"] > 0.99 for layer in r["layers"])
    assert r["layers"][0]["snr_db"] == float("inf")  # the shared float input


def test_cli(tmp_path, capsys):
    a, b = str(MODELS / "mlp_fp32.tflite"), str(MODELS / "mlp_dynamic.tflite")
    assert main(["compare", a, b, "--data", str(DATA / "mlp_calib.npz"), "--samples", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 5 and out["outputs"][0]["cosine"] > 0.999
    assert main(["compare", a, b]) == 0
    assert "cosine" in capsys.readouterr().out
    assert main(["compare", a, str(tmp_path / "none.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    assert main(["compare", a, b, "--data", str(bad)]) == 2
    assert "not a readable" in capsys.readouterr().err
    assert main(["compare", a, b, "--data", str(DATA / "digits.npz")]) == 2
    assert main(["compare", a, str(MODELS / "convnet_fp32.tflite")]) == 2
