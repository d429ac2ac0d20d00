"""equalize: cross-layer equalization keeps the float model's outputs (1e-5 relative; exactly
for float16-stored weights, whose scales are powers of two), evens out channel ranges, takes
pairs through PRELU / PAD / MAX_POOL and (relu6=clamp) RELU6, absorbs biases from calibration
data; what it cannot take is left and reported."""
from __future__ import annotations

import numpy as np
import pytest

import tflopt
from tflopt import runtime
from tflopt.calibration import load_calibration
from tflopt.evaluation import compare_models
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.schema import TensorType
from tflopt.weights import float_values, stored_constant

from conftest import DATA, MODELS

CHAIN = MODELS / "equalize" / "chain_fp32.tflite"
CHAIN_DATA = DATA / "equalize_chain_calib.npz"


def _outputs(model, inputs):
    return runtime.invoke(runtime.interpreter(model, xnnpack=False), inputs)


def _rel(a, b) -> float:
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(x))) for x, y in zip(a, b))


def _worst(a, b, samples) -> float:
    return max(_rel(_outputs(a, x), _outputs(b, x)) for x in samples)


def _range_spread(sg, op, axis):
    w = stored_constant(sg, op.inputs[1])[0]  # float32, or float16 behind DEQUANTIZE
    r = np.max(np.abs(float_values(w)), axis=tuple(i for i in range(4) if i != axis))
    return float(r.max() / r.min())


def _imbalance(sg, first, second, in_axis) -> float:
    """Mean |log(r1_c / r2_c)|: how far the pair's channel ranges are from equal."""
    r1 = np.max(np.abs(float_values(stored_constant(sg, first.inputs[1])[0])), axis=(1, 2, 3))
    r2 = np.max(np.abs(float_values(stored_constant(sg, second.inputs[1])[0])),
                axis=tuple(i for i in range(4) if i != in_axis))
    return float(np.mean(np.abs(np.log(r1 / r2))))


def _chain_samples(key):
    return [[x[None]] for x in np.load(CHAIN_DATA)[key]]


def _structure(m):
    sg = m.main
    return ([op.name for op in sg.operators],
            sorted(t.type for t in sg.tensors if t.is_constant))


def test_float_outputs_kept_and_ranges_even_out():
    path = MODELS / "convnet_fp32.tflite"
    before_bytes = path.read_bytes()
    m = tflopt.load(path)
    conv = m.main.operators[0]  # CONV_2D -> DEPTHWISE_CONV_2D, fused RELU
    spread = _range_spread(m.main, conv, 0)
    rep = run_pipeline(m, "equalize(absorb=relu)", PassContext())  # no calibration: no absorption
    st = rep.passes[-1].stats
    assert st["pairs"] == 1 and rep.passes[-1].changed
    assert _range_spread(m.main, m.main.operators[0], 0) < spread
    rng = np.random.default_rng(0)
    samples = [[rng.uniform(0, 1, (1, 16, 16, 1)).astype(np.float32)] for _ in range(4)]
    assert _worst(before_bytes, m.to_bytes(), samples) < 1e-5
    assert path.read_bytes() == before_bytes
    assert "no calibration" in st["bias_absorption"] and any("absorption (absorb=relu) skipped" in w for w in rep.passes[-1].warnings)


def test_relu6_pair_left_and_reported():
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    m.main.operators[0].options.fusedActivationFunction = 3  # RELU6: min(relu(x), 6) is not scale-invariant
    before = m.to_bytes()
    rep = run_pipeline(m, "equalize", PassContext())
    assert rep.passes[-1].stats["pairs"] == 0 and not rep.passes[-1].changed
    assert rep.passes[-1].stats["skipped"]["RELU6 / RELU_N1_TO_1 fused into the first op (relu6=keep)"] == 2
    assert any("RELU6" in w for w in rep.passes[-1].warnings)
    assert m.to_bytes() == before


def test_float16_weights_equalized_exactly_and_stay_float16():
    """convnet_fp16 (float16 behind DEQUANTIZE): rescaled in float64, stored back float16 with
    power-of-two scales that keep every value exact, so outputs are bit-identical. With exact
    scales the outputs differ by float16 rounding of the rescaled weights (measured here)."""
    path = MODELS / "convnet_fp16.tflite"
    rng = np.random.default_rng(1)
    samples = [[rng.uniform(0, 1, (1, 16, 16, 1)).astype(np.float32)] for _ in range(4)]
    m = tflopt.load(path)
    first = next(op for op in m.main.operators if op.name == "CONV_2D")
    dwop = next(op for op in m.main.operators if op.name == "DEPTHWISE_CONV_2D")
    imbalance = _imbalance(m.main, first, dwop, 3)
    rep = run_pipeline(m, "equalize(relu6=clamp)", PassContext())
    st = rep.passes[-1].stats
    assert st["pairs"] == 2 and st["float16_pairs"] == 2 and st["clamp_ops_added"] == 1
    assert _worst(path.read_bytes(), m.to_bytes(), samples) == 0.0
    ops, consts = _structure(m)
    ops0, consts0 = _structure(tflopt.load(path))
    dw = ops0.index("DEPTHWISE_CONV_2D") + 1
    assert ops == ops0[:dw] + ["MINIMUM"] + ops0[dw:]  # the RELU6 clamp; DEQUANTIZEs unchanged
    assert consts.count(TensorType.FLOAT16) == consts0.count(TensorType.FLOAT16)
    assert _imbalance(m.main, first, dwop, 3) < imbalance  # powers of two: within 2x of equal
    m2 = tflopt.load(path)
    run_pipeline(m2, "equalize(rounding=exact)", PassContext())
    assert 0 < _worst(path.read_bytes(), m2.to_bytes(), samples) < 1e-2


def test_chain_every_path_float_kept_and_bias_absorbed():
    """The chain fixture: conv/conv through RELU (absorbed: 1x1 second op), conv/depthwise
    through RELU6 + PAD (relu6=clamp: a per-channel MINIMUM), depthwise/conv with nothing between
    (centred), conv/conv through PRELU + MAX_POOL. Float outputs agree to 1e-5: without absorption
    on any data, with it on the calibration samples (a RELU channel above 0 on all of them may dip
    below on others). The int8 model runs and is closer to float than without."""
    cal, test = _chain_samples("x_calib"), _chain_samples("x_test")
    m = tflopt.load(CHAIN)
    rep = run_pipeline(m, "equalize(relu6=clamp,absorb=relu)",
                       PassContext(calibration=load_calibration(f"{CHAIN_DATA}:x_calib", m)))
    st = rep.passes[-1].stats
    assert st["pairs"] == 4 and st["clamp_ops_added"] == 1
    assert st["skipped"] == {"output is a graph output": 1}
    assert st["bias_absorption"]["channels"] >= 4 + 12  # 4 always-on RELU channels, 12 centred
    assert st["bias_absorption"]["pairs_left"] == {"PAD between (pads zeros, not the shift)": 1}
    assert [op.name for op in m.main.operators].count("MINIMUM") == 1
    assert _worst(CHAIN.read_bytes(), m.to_bytes(), cal) < 1e-5
    free = tflopt.load(CHAIN)
    run_pipeline(free, "equalize(relu6=clamp,absorb=off)", PassContext())
    assert _worst(CHAIN.read_bytes(), free.to_bytes(), cal + test) < 1e-5
    cos = {}
    for spec in ("", "equalize(relu6=clamp),"):
        q = tflopt.load(CHAIN)
        run_pipeline(q, spec + "quantize(mode=int8,per_channel=false)",
                     PassContext(calibration=load_calibration(f"{CHAIN_DATA}:x_calib", q)))
        cos[spec] = compare_models(CHAIN, q.to_bytes(), test, samples=0)["outputs"][0]["cosine"]
    assert cos["equalize(relu6=clamp),"] > cos[""]


def test_chain_float16_exact_and_linear_absorption_widens_biases():
    """float16 chain: equalization alone is bit-exact; absorb=linear centres the depthwise/conv pair, exact on any data, its two shifted biases
    widened to float32 (a shifted float16 bias would round)."""
    m = tflopt.load(CHAIN)
    run_pipeline(m, "quantize(mode=float16)", PassContext())
    ref = m.to_bytes()
    rep = run_pipeline(m, "equalize(relu6=clamp,absorb=off)", PassContext())
    assert rep.passes[-1].stats["float16_pairs"] == 4
    test = _chain_samples("x_test")
    assert _worst(ref, m.to_bytes(), test) == 0.0
    m = tflopt.load(ref)
    rep = run_pipeline(m, "equalize(absorb=linear)", PassContext(calibration=load_calibration(f"{CHAIN_DATA}:x_calib", m)))
    ab = rep.passes[-1].stats["bias_absorption"]
    assert ab["channels"] == 12 and ab["float16_biases_widened"] == 2
    assert ab["pairs_left"]["RELU pair (absorb=relu takes it: exact on the calibration data only)"] == 2
    assert _worst(ref, m.to_bytes(), test) < 1e-5
    deq = [op.name for op in tflopt.load(ref).main.operators].count("DEQUANTIZE")
    assert [op.name for op in m.main.operators].count("DEQUANTIZE") == deq - 2


@pytest.mark.real
def test_corpus_float_outputs_kept():
    """Straight from the float16 files (no dequantize): face_detection_short_range (16 pairs),
    palm_detection_lite (23, shared float16 zero biases copied with their own DEQUANTIZE),
    iris_landmark (float32, 52 pairs through PRELU), pose_landmark_full (53 RELU6 pairs with
    relu6=clamp), face_detection_full_range_sparse (62 pairs, float16 weights stored sparse behind
    DENSIFY, re-encoded): float outputs agree to 1e-5 relative (bit-identical for float16)."""
    from conftest import corpus
    want = {"face_detection_short_range": ("equalize", 16), "palm_detection_lite": ("equalize", 23),
            "face_detection_full_range_sparse": ("equalize", 62),
            "iris_landmark": ("equalize", 52), "pose_landmark_full": ("equalize(relu6=clamp)", 53)}
    for path in [p for p in corpus() if p.stem in want]:
        spec, pairs = want[path.stem]
        m = tflopt.load(path)
        rep = run_pipeline(m, spec, PassContext())
        assert rep.passes[-1].stats["pairs"] >= pairs, path.stem
        a, _ = runtime.runnable(tflopt.load(path), xnnpack=False)
        b, _ = runtime.runnable(m, xnnpack=False)
        x = runtime.random_inputs(runtime.interpreter(a, xnnpack=False))
        assert _rel(_outputs(a, x), _outputs(b, x)) < 1e-5, path.stem
