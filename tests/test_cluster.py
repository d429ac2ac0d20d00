"""1-D k-means (tflopt.kmeans) and the cluster pass."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tflopt.distinct import distinct_count
from tflopt import io, runtime
from tflopt.errors import PipelineError
from tflopt.kmeans import INITS, kmeans_1d, kmeans_rows
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.weights import find_weights, float_values

from conftest import MODELS
from test_prune import _accuracy


def _lloyd_reference(x: np.ndarray, cent: np.ndarray, iters: int) -> np.ndarray:
    """Plain O(n k) Lloyd, to check the sorted/cumsum version against."""
    c = cent.copy()
    for _ in range(iters):
        lab = np.abs(x[:, None] - c[None, :]).argmin(1)
        c = np.array([x[lab == j].mean() if np.any(lab == j) else c[j] for j in range(c.size)])
        c.sort()
    return c


def test_matches_plain_lloyd_from_the_same_start():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(-2, 0.3, 400), rng.normal(0.5, 0.2, 300), rng.laplace(3, 0.5, 300)])
    ours = kmeans_1d(x, 6, init="linear", max_iter=40, tol=0)
    ref = _lloyd_reference(x, np.linspace(x.min(), x.max(), 6), 40)
    np.testing.assert_allclose(ours.centroids[0], ref, rtol=0, atol=1e-9)


def test_rows_are_independent_fixed_points():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 211)) * rng.uniform(0.1, 10, (37, 1)) + rng.normal(0, 5, (37, 1))
    res = kmeans_rows(x, 8, init="density")
    nearest = np.abs(x[:, :, None] - res.centroids[:, None, :]).argmin(2)
    assert np.array_equal(np.take_along_axis(res.centroids, nearest, 1), res.values())
    for r in range(37):
        for j in range(8):
            members = x[r][res.labels[r] == j]
            if members.size:
                assert abs(members.mean() - res.centroids[r, j]) < 1e-6 * np.ptp(x[r])


@pytest.mark.parametrize("init", INITS)
def test_every_init_gives_at_most_k_values_and_is_seeded(init):
    x = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
    a = kmeans_1d(x, 16, init=init, seed=5)
    b = kmeans_1d(x, 16, init=init, seed=5)
    assert distinct_count(a.values()) <= 16
    assert np.array_equal(a.centroids, b.centroids)
    assert ((a.values() - x) ** 2).mean() < 0.012  # Lloyd-Max optimum for N(0,1), k=16: 0.0095


def test_random_and_plusplus_depend_on_the_seed():
    x = np.random.default_rng(1).standard_normal(5000)
    for init in ("random", "kmeans++"):
        a = kmeans_1d(x, 16, init=init, seed=1, max_iter=1)
        b = kmeans_1d(x, 16, init=init, seed=2, max_iter=1)
        assert not np.array_equal(a.centroids, b.centroids)


def test_pinned_zero_and_ignored_weights():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1000))
    x[:, ::2] = 0
    res = kmeans_rows(x, 8, weights=(x != 0).astype(float), pin_zero=True)
    v = res.values()
    assert np.all(v[:, ::2] == 0)
    assert np.all((res.centroids == 0).sum(axis=1) >= 1)
    assert max(distinct_count(row) for row in v) <= 8


def test_large_tensor_is_fast():
    x = np.random.default_rng(0).standard_normal(4_000_000).astype(np.float32)
    t0 = time.perf_counter()
    res = kmeans_1d(x, 16)
    assert time.perf_counter() - t0 < 10
    assert distinct_count(res.centroids) == 16


def _run(path, pipeline, ctx=None):
    model = io.load(path)
    ctx = ctx or PassContext()
    report = run_pipeline(model, pipeline, ctx)
    return model, report.passes[-1], ctx


def _per_channel_distinct(a: np.ndarray, axis: int) -> int:
    rows = np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
    return max(distinct_count(r) for r in rows)


def test_per_tensor_clustering_keeps_accuracy():
    model, rec, ctx = _run(MODELS / "convnet_fp32.tflite", "cluster(clusters=16,min_elements=0)")
    assert rec.stats["clustered_tensors"] == 5
    for w in find_weights(model, min_elements=0):
        assert distinct_count(w.tensor.data) <= 16
    for row in rec.stats["tensors"]:
        assert row["distinct_after"] <= 16 < row["distinct_before"]
        assert 0 < row["mse"] < 0.01
    assert _accuracy(model) >= _accuracy(io.load(MODELS / "convnet_fp32.tflite")) - 0.05
    assert ctx.facts["clustered"]
    json.dumps(rec.stats)


def test_per_channel_clustering():
    model, rec, _ = _run(MODELS / "convnet_fp32.tflite", "cluster(clusters=4,per_channel=true,min_elements=0)")
    for w in find_weights(model, min_elements=0):
        assert _per_channel_distinct(w.tensor.data, w.axis) <= 4
        assert distinct_count(w.tensor.data) > 4
    runtime.run(model)


def test_float16_and_int8_storage():
    model, _, _ = _run(MODELS / "convnet_fp16.tflite", "cluster(clusters=8,min_elements=0)")
    for w in find_weights(model, min_elements=0):
        assert w.tensor.type_name == "FLOAT16" and distinct_count(w.tensor.data) <= 8
    runtime.run(model)
    original = {w.name: w.tensor.quantization.scale.copy() for w in find_weights(io.load(MODELS / "convnet_int8.tflite"))}
    model, rec, _ = _run(MODELS / "convnet_int8.tflite", "cluster(clusters=8)")
    for w in find_weights(model, min_elements=1024):
        q = w.tensor.quantization
        assert w.tensor.type_name == "INT8" and np.array_equal(q.scale, original[w.name])
        assert _per_channel_distinct(w.tensor.data, q.axis) <= 8
    assert all(r["distinct_clustered"] <= 8 for r in rec.stats["tensors"])
    runtime.run(model)


def test_preserves_pruned_zeros_by_default_after_prune():
    ctx = PassContext()
    model, rec, _ = _run(MODELS / "mlp_fp32.tflite", "prune(sparsity=0.5),cluster(clusters=8)", ctx)
    for w in find_weights(model, min_elements=1024):
        mask = ctx.facts["pruned_masks"][f"0/{w.name}"]
        assert np.all(w.tensor.data[mask] == 0)
        assert np.mean(w.tensor.data == 0) >= 0.5
        assert distinct_count(w.tensor.data) <= 8
    assert all(r["preserve_sparsity"] for r in rec.stats["tensors"])
    _, rec, _ = _run(MODELS / "mlp_fp32.tflite", "prune(sparsity=0.5),cluster(clusters=4,preserve_sparsity=false)")
    assert not any(r["preserve_sparsity"] for r in rec.stats["tensors"])


def test_deterministic_bytes_and_seed():
    a, _, _ = _run(MODELS / "mlp_fp32.tflite", "cluster(clusters=16)")
    b, _, _ = _run(MODELS / "mlp_fp32.tflite", "cluster(clusters=16)")
    c, _, _ = _run(MODELS / "mlp_fp32.tflite", "cluster(clusters=16)", PassContext(seed=7))
    assert a.to_bytes() == b.to_bytes() != c.to_bytes()


def test_bad_options():
    for text in ("cluster(clusters=1)", "cluster(clusters=2,preserve_sparsity=true)", "cluster(init=foo)"):
        with pytest.raises(PipelineError):
            run_pipeline(io.load(MODELS / "mlp_fp32.tflite"), text)


def test_mediapipe_sixteen_values(mediapipe_model):
    model = io.load(mediapipe_model)
    report = run_pipeline(model, "cluster(clusters=16,sizes=false)", PassContext())
    stats = report.passes[0].stats
    assert stats["clustered_tensors"] > 0
    names = {r["name"] for r in stats["tensors"]}
    for w in find_weights(model, min_elements=1024):
        if w.name in names:
            assert distinct_count(float_values(w.tensor)) <= 16, w.name
    runnable, _ = runtime.runnable(model)
    runtime.run(runnable)
