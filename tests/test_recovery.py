"""Training-free recovery (tflopt.recovery): calibrated pruning, clustering, GPTQ, bias correction."""
from __future__ import annotations

import numpy as np
import pytest

from tflopt.distinct import distinct_count
from tflopt import io, runtime
from tflopt.calibration import from_iterable
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.recovery import RecoveryConfig, cluster_obs, prune_obs
from tflopt.recovery.obs import quad_error
from tflopt.recovery.sparsegpt import obc_prune, prune_layer
from tflopt.weights import find_weights

from conftest import DATA, MODELS

CONVNET = MODELS / "convnet_fp32.tflite"


@pytest.fixture(scope="module")
def digits():
    return np.load(DATA / "digits.npz")


def _accuracy(model, digits) -> float:
    interp = runtime.interpreter(model, xnnpack=False)
    preds = [runtime.invoke(interp, [x[None]])[0].argmax() for x in digits["x_test"]]
    return float((np.array(preds) == digits["y_test"]).mean())


def _calibration(model, digits):
    # x_calib (64 images) is disjoint from x_test, on which accuracy is measured.
    return from_iterable(list(digits["x_calib"][:, None]), model)


@pytest.fixture(scope="module")
def float_accuracy(digits):
    return _accuracy(io.load(CONVNET), digits)


# -- the algorithms on synthetic layers ---------------------------------------------------------
def _layer(rows=24, cols=40, n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, cols)) @ rng.normal(size=(cols, cols)) * 0.3 + rng.normal(size=(n, cols))
    W = rng.normal(size=(rows, cols))
    return W, X.T @ X


def test_obs_pruning_beats_magnitude_and_keeps_the_count():
    W, H = _layer()
    target = W.size // 2
    mag = np.zeros(W.size, bool)
    mag[np.argsort(np.abs(W).ravel())[:target]] = True
    mag = mag.reshape(W.shape)
    err_mag = quad_error(np.where(mag, 0, W) - W, H)
    forced = np.zeros(W.shape, bool)
    forced[0, :5] = True
    for obc in (False, True):
        Q, mask = prune_layer(W, H, pattern="unstructured", target=target, forced=forced, obc=obc)
        assert np.all(Q[mask] == 0) and mask.sum() == target and np.all(mask[forced])
        assert quad_error(Q - W, H) < 0.95 * err_mag
    # Exact OBC is at least as good as the one-shot SparseGPT mask on a small layer.
    q_obc, _ = obc_prune(W, H, target=target, forced=forced)
    q_sg, _ = prune_layer(W, H, pattern="unstructured", target=target, forced=forced, obc=False)
    assert quad_error(q_obc - W, H) <= quad_error(q_sg - W, H) * 1.05


def test_gptq_and_clustering_stay_on_their_grids():
    from tflopt.recovery.gptq import gptq_layer, rtn
    from tflopt.recovery.obc_cluster import cluster_layer
    W, H = _layer(seed=1)
    scale = np.abs(W).max(axis=1) / 127 * 8          # a coarse grid, so rounding matters
    Q = gptq_layer(W, H, scale)
    ints = Q / scale[:, None]
    assert np.allclose(ints, np.rint(ints)) and np.abs(np.rint(ints)).max() <= 127
    assert quad_error(Q - W, H) < quad_error(rtn(W, scale) - W, H)
    cent = np.linspace(W.min(), W.max(), 6)
    cent[np.argmin(np.abs(cent))] = 0.0
    forced = np.abs(W) < 0.2
    Qc, labels, new = cluster_layer(W, H, cent, forced=forced, pinned=cent == 0)
    assert np.all(Qc[forced] == 0) and distinct_count(Qc) <= 6
    nearest = cent[np.argmin(np.abs(W[..., None] - cent), axis=-1)]
    nearest[forced] = 0
    assert quad_error(Qc - W, H) < quad_error(nearest - W, H)


# -- the convnet fixture ------------------------------------------------------------------------
def test_calibrated_pruning_keeps_accuracy_where_magnitude_pruning_loses_it(digits, float_accuracy):
    plain = io.load(CONVNET)
    run_pipeline(plain, "prune(sparsity=0.5,min_elements=0,sizes=false)", PassContext())
    plain_acc = _accuracy(plain, digits)
    model = io.load(CONVNET)
    ctx = PassContext(calibration=_calibration(model, digits))
    rec = run_pipeline(model, "prune(sparsity=0.5,min_elements=0,sizes=false,method=obs)", ctx).passes[-1]
    obs_acc = _accuracy(model, digits)
    assert float_accuracy - plain_acc > 0.10      # measured: 0.989 -> 0.864
    assert obs_acc >= float_accuracy - 0.015      # measured: 0.992
    rows = rec.stats["recovery"]["layers"]
    assert len(rows) == 5 and all(r["recovered"] for r in rows) and not rec.warnings
    for r in rows:
        assert r["error_recovered"] < r["error_plain"] and r["seconds"] >= 0
    for w in find_weights(model, min_elements=0):
        mask = ctx.facts["pruned_masks"][f"0/{w.name}"]
        assert np.all(w.tensor.data[mask] == 0) and abs(mask.mean() - 0.5) < 0.01


def test_the_python_api_matches_the_pass(digits):
    model = io.load(CONVNET)
    result = prune_obs(model, _calibration(model, digits), sparsity=0.5, min_elements=0, sizes=False)
    assert result.changed and result.stats["recovery"]["layers_recovered"] == 5
    for w in find_weights(model, min_elements=0):
        assert abs(np.mean(w.tensor.data == 0) - 0.5) < 0.01


def test_prune_cluster_int8_chain_with_recovery(digits, float_accuracy):
    model = io.load(CONVNET)
    ctx = PassContext(calibration=_calibration(model, digits))
    run_pipeline(model, "prune(sparsity=0.5,min_elements=0,sizes=false,method=obs)", ctx)
    masks = {k: v.copy() for k, v in ctx.facts["pruned_masks"].items()}
    rec = run_pipeline(model, "cluster(clusters=16,min_elements=0,sizes=false,method=obs),"
                              "quantize(mode=int8,weights=gptq)", ctx)
    assert rec.passes[0].stats["recovery"]["layers_recovered"] == 5
    assert not any(p.warnings for p in rec.passes)
    assert _accuracy(model, digits) >= float_accuracy - 0.02    # measured: 0.989 (= float)
    weights = find_weights(model, min_elements=0)
    assert {w.tensor.type_name for w in weights} == {"INT8"}
    for w in weights:
        data = w.tensor.data
        assert np.all(data[masks[f"0/{w.name}"]] == 0)            # zeros stay zero
        per_channel = np.moveaxis(data, w.axis, 0).reshape(data.shape[w.axis], -1)
        assert max(distinct_count(row) for row in per_channel) <= 16   # at most k values


def test_gptq_int8_lowers_every_layer_error(digits, float_accuracy):
    model = io.load(CONVNET)
    ctx = PassContext(calibration=_calibration(model, digits))
    rec = run_pipeline(model, "quantize(mode=int8,weights=gptq)", ctx).passes[-1]
    layers = rec.stats["recovery"]["layers"]
    assert len(layers) == 5
    for r in layers:
        assert r["error_recovered"] <= r["error_plain"]
    assert _accuracy(model, digits) >= float_accuracy - 0.01


@pytest.mark.parametrize("mode", ["dynamic", "int16x8"])
def test_gptq_in_the_other_int8_weight_modes(digits, float_accuracy, mode):
    plain = io.load(CONVNET)
    ctx = PassContext(calibration=_calibration(plain, digits))
    run_pipeline(plain, f"quantize(mode={mode})", ctx)
    model = io.load(CONVNET)
    rec = run_pipeline(model, f"quantize(mode={mode},weights=gptq)", PassContext(calibration=ctx.calibration)).passes[-1]
    layers = rec.stats["recovery"]["layers"]
    assert all(r["recovered"] for r in layers) and not rec.warnings
    for r in layers:
        assert r["error_recovered"] < r["error_plain"]
    # The same int8 grids (scales) as round-to-nearest, other integers on them; dynamic
    # leaves the three small (< 1024 weights) layers float, and GPTQ does not touch them either.
    moved, int8 = 0, 0
    for a, b in zip(find_weights(plain, min_elements=0), find_weights(model, min_elements=0)):
        assert a.tensor.type_name == b.tensor.type_name
        if a.tensor.type_name == "INT8":
            int8 += 1
            assert np.array_equal(a.tensor.quantization.scale, b.tensor.quantization.scale)
            moved += int(np.sum(a.tensor.data != b.tensor.data))
    assert len(layers) == int8 == (2 if mode == "dynamic" else 5) and moved > 0
    assert _accuracy(model, digits) >= float_accuracy - 0.01


def test_gptq_has_no_float16_grid():
    with pytest.raises(Exception, match="float16 has none"):
        run_pipeline(io.load(CONVNET), "quantize(mode=float16,weights=gptq)", PassContext())


@pytest.mark.parametrize("pattern,extra", [("nm", "2:4"), ("block", "1x4")])
def test_structured_patterns_keep_their_shape(digits, pattern, extra):
    model = io.load(MODELS / "mlp_fp32.tflite")
    feats = digits["x_calib"][:, ::2, ::2, 0].reshape(-1, 64)
    cal = from_iterable(list(feats[:, None]), model)
    kw = {"nm": extra} if pattern == "nm" else {"block": extra}
    result = prune_obs(model, cal, sparsity=0.5, pattern=pattern, min_elements=0, sizes=False, **kw)
    rows = result.stats["recovery"]["layers"]
    assert rows and all(r["recovered"] and r["error_recovered"] < r["error_plain"] for r in rows)
    for w in find_weights(model, min_elements=0):
        groups = (w.tensor.data != 0).reshape(w.tensor.data.shape[0], -1, 4).sum(-1)
        if pattern == "nm":
            assert groups.max() <= 2
        else:
            assert set(np.unique(groups).tolist()) <= {0, 4}     # whole 1x4 blocks go
            assert np.mean(groups == 0) >= 0.45


def test_unmodelled_layers_fall_back_to_plain_with_a_warning(digits, monkeypatch):
    from tflopt.recovery import stats
    monkeypatch.setattr(stats, "MAX_COLUMNS", 256)          # the 512-wide dense layer is "too big"
    model = io.load(CONVNET)
    result = prune_obs(model, _calibration(model, digits), sparsity=0.5, min_elements=0, sizes=False)
    assert any("dense_1/MatMul" in w and "plain method" in w for w in result.warnings)
    rows = result.stats["recovery"]["layers"]
    assert sum(not r["recovered"] for r in rows) == 1
    fc = next(w for w in find_weights(model) if w.name.endswith("dense_1/MatMul"))
    assert np.mean(fc.tensor.data == 0) == 0.5


def test_no_calibration_is_an_error():
    from tflopt.errors import TfloptError
    model = io.load(CONVNET)
    with pytest.raises(TfloptError, match="need calibration data"):
        prune_obs(model, None, sparsity=0.5, min_elements=0, config=RecoveryConfig())
    with pytest.raises(TfloptError, match="need calibration data"):
        run_pipeline(model, "prune(method=obs)", PassContext())


def test_bias_correct_pass_recovers_part_of_plain_pruning(digits, float_accuracy):
    model = io.load(CONVNET)
    ctx = PassContext(calibration=_calibration(model, digits))
    run_pipeline(model, "prune(sparsity=0.5,min_elements=0,sizes=false)", ctx)
    before = _accuracy(model, digits)
    rec = run_pipeline(model, f"bias_correct(reference='{CONVNET}')", ctx).passes[-1]
    assert rec.stats["corrected"] == 5 and not rec.warnings
    after = _accuracy(model, digits)
    assert after > before + 0.03                 # measured: 0.864 -> 0.922
    for w in find_weights(model, min_elements=0):
        assert abs(np.mean(w.tensor.data == 0) - 0.5) < 0.01      # weights untouched
    with pytest.raises(Exception, match="reference"):
        run_pipeline(io.load(CONVNET), "bias_correct", PassContext(calibration=ctx.calibration))


def _conv_zoo():
    """A small graph of the layouts the statistics have to reproduce: strided VALID conv with
    dilation, depthwise with multiplier 2, SAME transpose conv, BATCH_MATMUL with a constant."""
    from tflopt.build import new_model
    from tflopt.schema import BuiltinOptions, TensorType, fb
    rng = np.random.default_rng(0)
    m = new_model()
    sg = m.main

    def const(name, a, t=TensorType.FLOAT32):
        return sg.add_tensor(name, a.shape, t, data=a).index

    x = sg.add_tensor("x", [1, 9, 9, 3], TensorType.FLOAT32)
    sg.raw.inputs = [x.index]
    o = fb.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor = 1, 2, 1, 1, 2
    o.fusedActivationFunction = 0
    y1 = sg.add_tensor("conv", [1, 4, 5, 4], TensorType.FLOAT32)
    sg.insert_operator(0, "CONV_2D", [x.index, const("w1", rng.normal(size=(4, 3, 3, 3)).astype(np.float32)),
                                      const("b1", rng.normal(size=4).astype(np.float32))], [y1.index],
                       options=(BuiltinOptions.Conv2DOptions, o))
    d = fb.DepthwiseConv2DOptionsT()
    d.padding, d.strideH, d.strideW, d.depthMultiplier, d.dilationHFactor, d.dilationWFactor = 0, 2, 2, 2, 1, 1
    d.fusedActivationFunction = 3
    y2 = sg.add_tensor("dw", [1, 2, 3, 8], TensorType.FLOAT32)
    sg.insert_operator(1, "DEPTHWISE_CONV_2D", [y1.index, const("w2", rng.normal(size=(1, 3, 3, 8)).astype(np.float32)),
                                                const("b2", rng.normal(size=8).astype(np.float32))], [y2.index],
                       options=(BuiltinOptions.DepthwiseConv2DOptions, d), version=2)
    t = fb.TransposeConvOptionsT()
    t.padding, t.strideH, t.strideW = 0, 2, 2
    y3 = sg.add_tensor("tconv", [1, 4, 6, 5], TensorType.FLOAT32)
    sg.insert_operator(2, "TRANSPOSE_CONV", [const("shape", np.array([1, 4, 6, 5], np.int32), TensorType.INT32),
                                             const("w3", rng.normal(size=(5, 3, 3, 8)).astype(np.float32)), y2.index,
                                             const("b3", rng.normal(size=5).astype(np.float32))], [y3.index],
                       options=(BuiltinOptions.TransposeConvOptions, t), version=3)
    y4 = sg.add_tensor("bmm", [1, 4, 6, 3], TensorType.FLOAT32)
    sg.insert_operator(3, "BATCH_MATMUL", [y3.index, const("w4", rng.normal(size=(5, 3)).astype(np.float32))],
                       [y4.index], options=(BuiltinOptions.BatchMatMulOptions, fb.BatchMatMulOptionsT()))
    sg.raw.outputs = [y4.index]
    return m


def test_statistics_reproduce_every_layer_kind():
    from tflopt.weights import weight_slots
    from tflopt.recovery.stats import gather, layer_spec
    from tflopt.recovery.bias_correction import read_bias
    m = io.load(_conv_zoo().to_bytes())
    runtime.run(m)
    specs = []
    for slot in weight_slots(m, ops=None, min_elements=0):
        spec, why = layer_spec(slot)
        assert spec is not None, (slot.name, why)
        specs.append(spec)
    assert [s.kind for s in specs] == ["conv", "depthwise", "tconv", "bmm"]
    rng = np.random.default_rng(1)
    samples = [[rng.normal(size=(1, 9, 9, 3)).astype(np.float32)] for _ in range(3)]
    stats = gather(m, specs, samples, weights={i: s.to2d(s.slot.floats()) for i, s in enumerate(specs)},
                   biases={i: read_bias(s.op, s.bias_position) for i, s in enumerate(specs)})
    for i, s in enumerate(specs):
        assert stats[i].check < 1e-5, (s.kind, stats[i].check)
        assert np.array_equal(s.from2d(s.to2d(s.slot.floats())), s.slot.floats())
    # And the calibrated methods run on all of them (bias correction where there is a bias).
    cal = from_iterable(samples * 4, m)
    result = prune_obs(m, cal, sparsity=0.5, min_elements=0, sizes=False)
    rows = result.stats["recovery"]["layers"]
    assert not result.warnings and len(rows) == 4
    assert all(r["recovered"] and r["error_recovered"] <= r["error_plain"] for r in rows)
    runtime.run(m)


# -- the fast paths against a reference computation ---------------------------------------------
def _textbook_factor(A):
    """Upper Cholesky factor of A^-1 the direct way: invert, then factorise the inverse."""
    return np.swapaxes(np.linalg.cholesky(np.linalg.inv(A)), -1, -2)


def test_the_solver_factor_matches_the_textbook_one():
    from tflopt.recovery.obs import inverse_cholesky
    _, H = _layer(cols=60)
    H[7] = H[:, 7] = 0.0                  # an input never seen: unit diagonal
    U = inverse_cholesky(H, 0.01)
    assert np.allclose(U, np.triu(U))
    Hd = H + np.diag(np.where(np.diag(H) > 0, 0.0, np.diag(H).mean()) + 0.01 * np.diag(H).mean())
    assert np.allclose(U, _textbook_factor(Hd), rtol=1e-9, atol=1e-12)
    stack = np.stack([_layer(cols=9, seed=s)[1] for s in range(4)])   # depthwise: one H per channel
    Ub = inverse_cholesky(stack, 0.01)
    for k in range(4):
        assert np.allclose(Ub[k], inverse_cholesky(stack[k], 0.01), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("pipeline", [
    "prune(sparsity=0.5,min_elements=0,sizes=false,method=obs)",
    "prune(pattern=nm,min_elements=0,sizes=false,method=obs)",
    "quantize(mode=dynamic,min_elements=0,weights=gptq)",
])
def test_per_layer_errors_match_the_reference_computation(digits, monkeypatch, pipeline):
    """The recovery report's per-layer errors with the fast paths (LAPACK factor, every wave
    observed on only the ops it depends on) equal those of the reference computation (the
    textbook factor, the whole graph run for every wave), and so do the weights."""
    import contextlib
    from tflopt.recovery import obs, stats

    def run(m):
        report = run_pipeline(m, pipeline, PassContext(calibration=_calibration(m, digits)), measure=False)
        return report.passes[0].stats["recovery"]["layers"]

    fast_model, ref_model = io.load(CONVNET), io.load(CONVNET)
    fast = run(fast_model)
    with monkeypatch.context() as mp:
        mp.setattr(obs, "_upper_factor_of_inverse", _textbook_factor)
        mp.setattr(stats, "_only_ops_feeding", lambda model, tensors: contextlib.nullcontext())
        ref = run(ref_model)
    assert len(fast) == 5 and [r["name"] for r in fast] == [r["name"] for r in ref]
    for a, b in zip(fast, ref):
        assert a["recovered"] and b["recovered"]
        for key in ("error_plain", "error_compensated", "error_recovered"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-12), (a["name"], key)
    for wa, wb in zip(find_weights(fast_model, min_elements=0), find_weights(ref_model, min_elements=0)):
        assert np.allclose(wa.tensor.data, wb.tensor.data, rtol=1e-5, atol=1e-6), wa.name
    for m in (fast_model, ref_model):
        runtime.run(m)
