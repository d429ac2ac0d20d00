"""The prune pass: patterns, thresholds, storages, selection, facts, stats, determinism."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tflopt import io, runtime
from tflopt.errors import PipelineError
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.weights import BIAS_OPERANDS, find_weights, float_values

from conftest import DATA, MODELS


def _pruned(path, pipeline, ctx=None):
    model = io.load(path)
    ctx = ctx or PassContext()
    report = run_pipeline(model, pipeline, ctx)
    return model, report.passes[-1], ctx


def _accuracy(model) -> float:
    d = np.load(DATA / "digits.npz")
    interp = runtime.interpreter(model, xnnpack=False)
    preds = [runtime.invoke(interp, [x[None].astype(np.float32)])[0].argmax() for x in d["x_test"]]
    return float((np.array(preds) == d["y_test"]).mean())


def test_unstructured_hits_the_target_exactly_and_model_still_classifies():
    model, rec, _ = _pruned(MODELS / "convnet_fp32.tflite", "prune(sparsity=0.3,min_elements=0)")
    rows = [r for r in rec.stats["tensors"] if r["pruned"]]
    assert len(rows) == 5  # 2 conv, 1 depthwise, 2 FC
    for r in rows:
        assert r["zeros_after"] == round(r["elements"] * 0.3)
    base = _accuracy(io.load(MODELS / "convnet_fp32.tflite"))
    assert base > 0.8
    assert _accuracy(model) >= base - 0.1
    json.dumps(rec.stats)


def test_biases_and_small_tensors_are_skipped_by_default():
    original = io.load(MODELS / "convnet_fp32.tflite")
    model, rec, _ = _pruned(MODELS / "convnet_fp32.tflite", "prune(sparsity=0.5)")
    assert {r["name"] for r in rec.stats["tensors"]} == {w.name for w in find_weights(original, min_elements=1024)}
    for sg_a, sg_b in zip(original.subgraphs, model.subgraphs):
        for op_a, op_b in zip(sg_a.operators, sg_b.operators):
            pos = BIAS_OPERANDS.get(op_a.name)
            if pos is not None and pos < len(op_a.inputs) and op_a.inputs[pos] >= 0:
                assert np.array_equal(op_a.input(pos).data, op_b.input(pos).data)


def test_float16_weights_stay_float16_behind_dequantize():
    model, rec, _ = _pruned(MODELS / "convnet_fp16.tflite", "prune(sparsity=0.5,min_elements=0)")
    weights = find_weights(model, min_elements=0)
    assert weights and all(w.tensor.type_name == "FLOAT16" and w.via for w in weights)
    for w in weights:
        assert abs(np.mean(w.tensor.data == 0) - 0.5) < 0.01
    runtime.run(model)


def test_int8_pruned_weights_are_the_zero_point_and_keep_quantization():
    original = io.load(MODELS / "convnet_int8.tflite")
    before = {w.name: (w.tensor.quantization.scale.copy(), w.tensor.quantization.zero_point.copy())
              for w in find_weights(original, min_elements=0)}
    model, rec, ctx = _pruned(MODELS / "convnet_int8.tflite", "prune(sparsity=0.5,min_elements=0)")
    for w in find_weights(model, min_elements=0):
        q = w.tensor.quantization
        assert w.tensor.type_name == "INT8"
        assert np.array_equal(q.scale, before[w.name][0]) and np.array_equal(q.zero_point, before[w.name][1])
        mask = ctx.facts["pruned_masks"][f"0/{w.name}"]
        assert np.all(w.tensor.data[mask] == 0) and np.all(float_values(w.tensor)[mask] == 0.0)
        assert abs(mask.mean() - 0.5) < 0.01
    runtime.run(model)


def test_asymmetric_int8_prunes_to_the_zero_point():
    model = io.load(MODELS / "mlp_int8.tflite")
    w = find_weights(model, ops=["FULLY_CONNECTED"])[0].tensor
    q = w.quantization
    shifted = np.clip(w.data.astype(np.int16) + 3, -128, 127).astype(np.int8)
    w.set_data(shifted)
    w.set_quantization(q.scale, np.full(q.scale.shape, 3), q.axis)
    run_pipeline(model, "prune(sparsity=0.5,include=" + repr(w.name) + ")", PassContext(), verify=False)
    assert abs(np.mean(w.data == 3) - 0.5) < 0.01
    assert np.all(float_values(w)[w.data == 3] == 0.0)


def test_block_pattern_zeroes_whole_blocks():
    for block in ("1x4", "4x1", "2x2"):
        model, rec, _ = _pruned(MODELS / "mlp_fp32.tflite", f"prune(sparsity=0.5,pattern=block,block={block})")
        r, c = map(int, block.split("x"))
        for w in find_weights(model, min_elements=1024):
            a = w.tensor.data
            blocks = (a != 0).reshape(a.shape[0] // r, r, a.shape[1] // c, c).sum(axis=(1, 3))
            assert set(np.unique(blocks)) <= {0, r * c}
            assert abs(np.mean(a == 0) - 0.5) < 0.01


def test_nm_pattern_keeps_n_of_every_m_along_the_input_axis():
    model, rec, _ = _pruned(MODELS / "convnet_fp32.tflite", "prune(pattern=nm,nm=2:4,min_elements=0,ops=CONV_2D|FULLY_CONNECTED)")
    for w in find_weights(model, ops=["CONV_2D", "FULLY_CONNECTED"], min_elements=0):
        a = w.tensor.data
        if a.shape[-1] % 4:
            continue  # the 1-channel first conv: its single group is padded
        groups = (a != 0).reshape(-1, a.shape[-1] // 4, 4).sum(axis=2)
        assert groups.max() <= 2 and np.mean(a == 0) >= 0.5


def test_global_threshold_prunes_the_overall_fraction_unevenly():
    model, rec, _ = _pruned(MODELS / "convnet_fp32.tflite", "prune(sparsity=0.5,threshold=global,min_elements=0)")
    rows = rec.stats["tensors"]
    assert abs(rec.stats["sparsity"] - 0.5) < 0.001
    per = [r["sparsity_after"] for r in rows]
    assert max(per) - min(per) > 0.05


def test_selection_by_op_and_name():
    _, rec, _ = _pruned(MODELS / "convnet_fp32.tflite", "prune(ops=FULLY_CONNECTED,min_elements=0)")
    assert {r["op"] for r in rec.stats["tensors"]} == {"FULLY_CONNECTED"}
    model = io.load(MODELS / "convnet_fp32.tflite")
    names = [w.name for w in find_weights(model, min_elements=0)]
    _, rec, _ = _pruned(MODELS / "convnet_fp32.tflite", f"prune(min_elements=0,exclude={names[0]!r})")
    assert names[0] not in {r["name"] for r in rec.stats["tensors"]}
    _, rec, _ = _pruned(MODELS / "convnet_fp32.tflite", f"prune(min_elements=0,include={names[1]!r})")
    assert [r["name"] for r in rec.stats["tensors"]] == [names[1]]


def test_stats_report_sizes_and_figures():
    _, rec, _ = _pruned(MODELS / "mlp_fp32.tflite", "prune(sparsity=0.5)")
    s = rec.stats
    assert s["size"]["after"]["gzip"] < s["size"]["before"]["gzip"]
    assert s["size"]["summary"]["gzip"].count("->") == 1 and s["size"]["summary"]["gzip"].endswith("%)")
    row = s["tensors"][0]
    for k in ("sparsity", "distinct", "bits_per_weight", "bytes", "gzip", "zstd"):
        assert f"{k}_before" in row and f"{k}_after" in row
    assert row["gzip_after"] < row["gzip_before"] and row["distinct_after"] < row["distinct_before"]
    json.dumps(s)


def test_deterministic_bytes():
    a, _, _ = _pruned(MODELS / "convnet_fp16.tflite", "prune(sparsity=0.6,pattern=block,block=1x4,min_elements=0)")
    b, _, _ = _pruned(MODELS / "convnet_fp16.tflite", "prune(sparsity=0.6,pattern=block,block=1x4,min_elements=0)")
    assert a.to_bytes() == b.to_bytes()


def test_bad_options():
    for text in ("prune(sparsity=1.0)", "prune(block=1y4)", "prune(nm=4:2)", "prune(pattern=nm,threshold=global)"):
        with pytest.raises(PipelineError):
            run_pipeline(io.load(MODELS / "mlp_fp32.tflite"), text)


def test_mediapipe_half_sparsity(mediapipe_model):
    model = io.load(mediapipe_model)
    key = lambda w: (w.op.name, w.op.output(0).name)
    before = {key(w): float_values(w.tensor) for w in find_weights(model)}
    report = run_pipeline(model, "prune(sparsity=0.5,sizes=false)", PassContext())
    stats = report.passes[0].stats
    assert stats["pruned_tensors"] > 0
    assert abs(stats["sparsity"] - 0.5) <= 0.01
    # Measured on the weights themselves, not the pass's figure: over the tensors pruning
    # changed, half are zero, and every kept weight is as it was.
    zeros = total = changed = 0
    for w in find_weights(model):
        old, new = before[key(w)], float_values(w.tensor)
        if np.array_equal(old, new):
            continue
        assert np.all((new == old) | (new == 0)), w.name
        zeros, total, changed = zeros + int(np.sum(new == 0)), total + new.size, changed + 1
    assert changed == stats["pruned_tensors"] and abs(zeros / total - 0.5) <= 0.01
    runnable, _ = runtime.runnable(model)
    _, outs = runtime.run(runnable)
    assert all(np.isfinite(o).all() for o in outs if o.dtype.kind == "f")


def test_nothing_selected_is_a_clean_no_op():
    for text in ("prune(threshold=global,min_elements=100000000)", "prune(pattern=block,threshold=global,include=nomatch)"):
        model = io.load(MODELS / "mlp_fp32.tflite")
        before = model.to_bytes()
        rec = run_pipeline(model, text, PassContext()).passes[0]
        assert not rec.changed and rec.stats["pruned_tensors"] == 0 and model.to_bytes() == before
