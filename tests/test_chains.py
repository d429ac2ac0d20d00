"""Preserving chains: quantizing after clustering keeps <= k values (per channel when the
weight is per channel), quantizing after pruning keeps every pruned weight zero, clustering
after pruning keeps the sparsity. Asserted on the weights of real outputs."""
from __future__ import annotations

import numpy as np
import pytest

from tflopt.distinct import distinct_count
from tflopt import io, runtime
from tflopt.calibration import random_calibration
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.sparse import to_dense
from tflopt.weights import find_weights, float_values

from conftest import DATA, MODELS


def _key(w):
    # Passes rename and replace weight tensors, and int8 renames graph outputs (X -> X_int8);
    # the consumer's kind and its place among the ops of that kind stay.
    sg = w.subgraph
    same = [op for op in sg.operators if op.name == w.op.name]
    return sg.model.subgraphs.index(sg), w.op.name, next(i for i, op in enumerate(same) if op is w.op), w.position


def _snapshot(model):
    return {_key(w): (w.name, float_values(w.tensor)) for w in find_weights(model)}


def _count_axis(w, clustered_axis):
    """Where at most k values must remain: per quantization channel for per-channel integer
    storage (each channel has its own scale), per clustered channel, else the whole tensor."""
    q = w.tensor.quantization
    if w.tensor.dtype.kind in "iu" and q is not None and q.scale.size > 1:
        return q.axis
    return clustered_axis


def _max_nonzero_distinct(stored: np.ndarray, zero: np.ndarray, axis) -> int:
    rows = [stored] if axis is None else [np.take(stored, c, axis=axis) for c in range(stored.shape[axis])]
    zeros = [zero] if axis is None else [np.take(zero, c, axis=axis) for c in range(stored.shape[axis])]
    return max(distinct_count(r[~z]) for r, z in zip(rows, zeros))


def check_chain(model, before: dict, ctx, *, k: int | None, pruned: bool, per_channel: bool = False) -> int:
    """Assert the invariants on every weight that prune/cluster touched; returns how many."""
    masks = ctx.facts.get("pruned_masks", {})
    clustered = ctx.facts.get("clustered", {})
    checked = 0
    after = {_key(w): w for w in find_weights(model)}
    for bkey, (name, _) in before.items():
        key = f"{bkey[0]}/{name}"
        if pruned and key not in masks or k is not None and key not in clustered:
            continue
        assert bkey in after, f"{name}: the weight prune/cluster touched is no longer found"
        w = after[bkey]
        values = float_values(w.tensor)
        stored = to_dense(w.tensor)
        zero = stored == (0 if stored.dtype.kind == "f" else _zero_point(w))
        if pruned:
            mask = masks[key]
            assert np.all(values[mask] == 0.0), f"{name}: a pruned weight is no longer zero"
            assert np.all(zero[mask])
        if k is not None:
            axis = _count_axis(w, clustered[key]["axis"] if per_channel else None)
            assert _max_nonzero_distinct(stored, zero, axis) <= k, f"{name}: more than {k} values"
        checked += 1
    return checked


def _zero_point(w):
    q = w.tensor.quantization
    zp = q.zero_point
    if zp.size <= 1:
        return zp.reshape(()) if zp.size else 0
    shape = [1] * len(w.tensor.shape)
    shape[q.axis] = -1
    return zp.reshape(shape)


def _chain(path, pipeline, **ctx_kw):
    model = io.load(path)
    ctx = PassContext(calibration=random_calibration(model, 4), **ctx_kw)
    passes = pipeline.split("|")
    run_pipeline(model, passes[0], ctx)
    before = _snapshot(model)
    if len(passes) > 1:
        run_pipeline(model, passes[1], ctx)
    return model, before, ctx


@pytest.mark.parametrize("mode", ["int8", "dynamic"])
@pytest.mark.parametrize("name", ["convnet_fp32", "mlp_fp32"])
def test_prune_then_quantize_keeps_zeros(name, mode):
    model, before, ctx = _chain(MODELS / f"{name}.tflite", f"prune(sparsity=0.5,sizes=false)|quantize(mode={mode})")
    assert check_chain(model, before, ctx, k=None, pruned=True) >= 2
    assert any(w.tensor.type_name == "INT8" for w in find_weights(model))
    runtime.run(model)


@pytest.mark.parametrize("mode", ["int8", "dynamic"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_cluster_then_quantize_keeps_k_values(mode, per_channel):
    pc = str(per_channel).lower()
    model, before, ctx = _chain(MODELS / "convnet_fp32.tflite",
                                f"cluster(clusters=8,per_channel={pc},sizes=false)|quantize(mode={mode})")
    assert check_chain(model, before, ctx, k=8, pruned=False, per_channel=per_channel) >= 2
    runtime.run(model)


def test_prune_then_cluster_keeps_sparsity():
    model, before, ctx = _chain(MODELS / "mlp_fp32.tflite", "prune(sparsity=0.5,sizes=false),cluster(clusters=16,sizes=false)")
    assert check_chain(model, _snapshot(model), ctx, k=16, pruned=True) == 2


def test_full_chain_int8_is_deterministic():
    text = "prune(sparsity=0.5,min_elements=0,sizes=false),cluster(clusters=16,min_elements=0,sizes=false)|quantize(mode=int8)"
    a, before, ctx = _chain(MODELS / "convnet_fp32.tflite", text)
    assert check_chain(a, before, ctx, k=16, pruned=True) == 5
    b, _, _ = _chain(MODELS / "convnet_fp32.tflite", text)
    assert a.to_bytes() == b.to_bytes()
    runtime.run(a)


def test_mediapipe_full_chain(mediapipe_model, no_float16_sort):
    model, before, ctx = _chain(mediapipe_model,
                                "prune(sparsity=0.5,sizes=false),cluster(clusters=16,sizes=false)|quantize(mode=int8)")
    assert check_chain(model, before, ctx, k=16, pruned=True) > 0
    assert any(w.tensor.type_name == "INT8" for w in find_weights(model))
    runnable, _ = runtime.runnable(model)
    runtime.run(runnable)


def test_checker_catches_a_broken_invariant():
    model, before, ctx = _chain(MODELS / "mlp_fp32.tflite", "prune(sparsity=0.5,sizes=false)|quantize(mode=dynamic)")
    w = next(w for w in find_weights(model) if w.tensor.type_name == "INT8")
    key = f"0/{before[_key(w)][0]}"
    data = w.tensor.data.copy()
    data[np.unravel_index(np.flatnonzero(ctx.facts["pruned_masks"][key])[0], data.shape)] = 5
    w.tensor.set_data(data, w.tensor.type)
    with pytest.raises(AssertionError, match="pruned weight"):
        check_chain(model, before, ctx, k=None, pruned=True)


def test_density_plot_through_the_chain(tmp_path):
    from tflopt.errors import TfloptError
    from tflopt.plot import density_plot, stages

    model = io.load(MODELS / "convnet_fp32.tflite")
    ctx = PassContext(calibration=random_calibration(model, 4))
    staged = stages(model, ["prune(sparsity=0.5,sizes=false)", "cluster(clusters=16,sizes=false)",
                            "quantize(mode=int8)"], ctx)
    assert [label for label, _ in staged][0] == "original" and len(staged) == 4
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(TfloptError, match="matplotlib"):
            density_plot(staged, tmp_path / "d.png")
        return
    out = density_plot(staged, tmp_path / "d.png", max_tensors=2)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_plot_command_draws_each_pass_and_fails_cleanly(tmp_path, capsys):
    from tflopt.cli import main
    out = tmp_path / "d.png"
    args = ["plot", str(MODELS / "convnet_fp32.tflite"), "-o", str(out), "--max-tensors", "2",
            "-p", "prune(sparsity=0.5,sizes=false),cluster(clusters=16,sizes=false),quantize(mode=int8)",
            "--calibration", str(DATA / "convnet_calib.npz")]
    assert main(args) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert not list(tmp_path.glob(".*.tmp"))
    bad = tmp_path / "bad.png"
    assert main(["plot", str(tmp_path / "missing.tflite"), "-o", str(bad), "-p", "prune"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.tflite" in err[0] and not bad.exists()
