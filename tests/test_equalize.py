"""equalize: cross-layer equalization keeps the float model's outputs (1e-5 relative) and
evens out channel ranges; clamping activations are left and reported."""
from __future__ import annotations

import numpy as np
import pytest

import tflopt
from tflopt import runtime
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.weights import float_values

from conftest import MODELS


def _outputs(model, inputs):
    return runtime.invoke(runtime.interpreter(model, xnnpack=False), inputs)


def _rel(a, b) -> float:
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(x))) for x, y in zip(a, b))


def _range_spread(sg, op, axis):
    r = np.max(np.abs(float_values(sg.tensors[op.inputs[1]])), axis=tuple(i for i in range(4) if i != axis))
    return float(r.max() / r.min())


def test_float_outputs_kept_and_ranges_even_out():
    path = MODELS / "convnet_fp32.tflite"
    before_bytes = path.read_bytes()
    m = tflopt.load(path)
    conv = m.main.operators[0]  # CONV_2D -> DEPTHWISE_CONV_2D, fused RELU
    spread = _range_spread(m.main, conv, 0)
    rep = run_pipeline(m, "equalize", PassContext())
    st = rep.passes[-1].stats
    assert st["pairs"] == 1 and rep.passes[-1].changed
    assert _range_spread(m.main, m.main.operators[0], 0) < spread
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = [rng.uniform(0, 1, (1, 16, 16, 1)).astype(np.float32)]
        assert _rel(_outputs(before_bytes, x), _outputs(m.to_bytes(), x)) < 1e-5
    assert path.read_bytes() == before_bytes


def test_relu6_pair_left_and_reported():
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    m.main.operators[0].options.fusedActivationFunction = 3  # RELU6: min(relu(x), 6) is not scale-invariant
    before = m.to_bytes()
    rep = run_pipeline(m, "equalize", PassContext())
    assert rep.passes[-1].stats["pairs"] == 0 and not rep.passes[-1].changed
    assert any("RELU6" in w for w in rep.passes[-1].warnings)
    assert m.to_bytes() == before


@pytest.mark.real
def test_corpus_float_outputs_kept():
    """face_detection_short_range (16 pairs) and palm_detection_lite (23, shared zero biases
    copied): float outputs before and after agree to 1e-5 relative."""
    from conftest import corpus
    for path in [p for p in corpus() if p.stem in ("face_detection_short_range", "palm_detection_lite")]:
        m = tflopt.load(path)
        rep = run_pipeline(m, "dequantize,equalize", PassContext())
        assert rep.passes[-1].stats["pairs"] >= 16
        a, _ = runtime.runnable(tflopt.load(path), xnnpack=False)
        b, _ = runtime.runnable(m, xnnpack=False)
        x = runtime.random_inputs(runtime.interpreter(a, xnnpack=False))
        assert _rel(_outputs(a, x), _outputs(b, x)) < 1e-5
