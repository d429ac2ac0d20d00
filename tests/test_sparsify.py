"""The sparsify pass: sparse FC kernels and DENSIFY, smaller files, unchanged outputs; and
prune / cluster on weights that are already stored sparse."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tflopt.distinct import distinct_count
from tflopt import io, runtime, sparse
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.schema import fb
from tflopt.weights import find_weights, float_values

from conftest import MODELS


def _prepared(name, prune):
    model = io.load(MODELS / name)
    run_pipeline(model, prune, PassContext())
    return model


def _outputs_match(dense_bytes, model, *, atol=1e-5, runnable=False):
    a, b = (dense_bytes, model)
    if runnable:
        a, b = runtime.runnable(io.load(dense_bytes))[0], runtime.runnable(model)[0]
    for xnnpack in (True, False):
        try:
            inputs, want = runtime.run(a, seed=3, xnnpack=xnnpack)
        except RuntimeError as e:
            # selfie_segmentation's Convolution2DTransposeBias exists only in XNNPACK.
            assert not xnnpack and "unresolved custom op" in str(e)
            continue
        _, got = runtime.run(b, inputs, xnnpack=xnnpack)
        for w, g in zip(want, got):
            if w.dtype.kind == "f":
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=atol)
            else:
                assert np.array_equal(g, w)


def _sparsify(model, text="sparsify"):
    dense = model.to_bytes()
    rec = run_pipeline(model, text, PassContext()).passes[0]
    return dense, rec


def _fc_ops(model):
    return [op for op in model.main.operators if op.name == "FULLY_CONNECTED"]


def test_float_fc_reads_random_sparse_weights_directly():
    model = _prepared("mlp_fp32.tflite", "prune(sparsity=0.5)")
    dense, rec = _sparsify(model)
    assert [r["form"] for r in rec.stats["tensors"]] == ["fc_kernel"] * 2
    assert len(model.to_bytes()) < len(dense) * 0.7
    assert "DENSIFY" not in {op.name for op in model.main.operators}
    sparse_fcs = [op for op in _fc_ops(model) if op.input(1).sparsity is not None]
    assert len(sparse_fcs) == 2 and all(op.version >= 8 for op in sparse_fcs)
    for op in sparse_fcs:
        dims = op.input(1).sparsity.dimMetadata
        assert [d.format for d in dims] == [sparse.DENSE, sparse.SPARSE_CSR]
        assert dims[1].arrayIndicesType == fb.SparseIndexVector.Uint8Vector  # in <= 128
    _outputs_match(dense, model)
    json.dumps(rec.stats)


def test_float_fc_one_by_four_blocks():
    model = _prepared("mlp_fp32.tflite", "prune(sparsity=0.6,pattern=block,block=1x4)")
    dense, rec = _sparsify(model)
    assert {r["block"] for r in rec.stats["tensors"]} == {"1x4"}
    for op in _fc_ops(model):
        if op.input(1).sparsity is not None:
            dims = op.input(1).sparsity.dimMetadata
            assert len(dims) == 3 and dims[2].denseSize == 4
    _outputs_match(dense, model)


def test_int8_fc_one_by_sixteen_blocks():
    model = _prepared("mlp_int8.tflite", "prune(sparsity=0.6,pattern=block,block=1x16)")
    dense, rec = _sparsify(model)
    assert [(r["form"], r["block"]) for r in rec.stats["tensors"]] == [("fc_kernel", "1x16")] * 2
    assert len(model.to_bytes()) < len(dense)
    _outputs_match(dense, model)


def test_float16_weights_get_densify_before_dequantize():
    model = _prepared("convnet_fp16.tflite", "prune(sparsity=0.6,min_elements=0)")
    dense, rec = _sparsify(model)
    assert rec.stats["sparsified_tensors"] >= 2 and {r["form"] for r in rec.stats["tensors"]} == {"densify"}
    producers = model.main.producer_map()
    for op in model.main.operators:
        if op.name == "DENSIFY":
            t = op.input(0)
            assert t.sparsity is not None and t.type_name == "FLOAT16"
            user = model.main.consumers(op.outputs[0])[0][0]
            assert user.name == "DEQUANTIZE" and producers[user.inputs[0]] is op
    assert len(model.to_bytes()) < len(dense)
    _outputs_match(dense, model)


def test_hybrid_int8_fc_weights_stay_dense_and_unworthy_weights_are_left():
    model = _prepared("mlp_dynamic.tflite", "prune(sparsity=0.6)")
    dense, rec = _sparsify(model)
    assert rec.stats["sparsified_tensors"] == 0 and rec.warnings
    model = _prepared("mlp_fp32.tflite", "prune(sparsity=0.2)")
    dense, rec = _sparsify(model)
    assert not rec.changed and model.to_bytes() == dense


def test_prune_and_cluster_work_on_sparse_weights_in_place():
    model = _prepared("convnet_fp16.tflite", "prune(sparsity=0.4,min_elements=0)")
    _sparsify(model)
    before = model.to_bytes()
    ctx = PassContext()
    run_pipeline(model, "prune(sparsity=0.7,min_elements=0),cluster(clusters=8,min_elements=0)", ctx)
    stored = [w for w in find_weights(model, min_elements=0) if w.sparse]
    assert stored and all(w.via[0].name == "DENSIFY" for w in stored)
    for w in stored:
        values = float_values(w.tensor)
        assert abs(np.mean(values == 0) - 0.7) < 0.01
        assert distinct_count(values) <= 8
        assert np.all(values[ctx.facts["pruned_masks"][f"0/{w.name}"]] == 0)
    assert len(model.to_bytes()) < len(before)
    runtime.run(model)


def test_deterministic_bytes():
    a = _prepared("convnet_fp16.tflite", "prune(sparsity=0.6,min_elements=0),sparsify")
    b = _prepared("convnet_fp16.tflite", "prune(sparsity=0.6,min_elements=0),sparsify")
    assert a.to_bytes() == b.to_bytes()


def test_mediapipe_sparsify_shrinks_and_matches(mediapipe_model):
    model = io.load(mediapipe_model)
    run_pipeline(model, "prune(sparsity=0.5,sizes=false)", PassContext())
    dense, rec = _sparsify(model, "sparsify(sizes=false)")
    assert rec.stats["sparsified_tensors"] > 0
    assert len(model.to_bytes()) < len(dense)
    _outputs_match(dense, model, atol=1e-4, runnable=True)
