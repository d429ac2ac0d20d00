"""quantize(mode=int8, target_cosine / target_snr): the fewest ops back to float until the
target holds; the written model runs and meets it on the evaluation data."""
from __future__ import annotations

import numpy as np
import pytest

import tflopt
from tflopt import runtime
from tflopt.build import mlp, sigmoid_head_mlp
from tflopt.calibration import from_iterable
from tflopt.evaluation import compare_models
from tflopt.errors import PipelineError
from tflopt.pipeline import PassContext, get_pass, run_pipeline
from tflopt.schema import TensorType

from conftest import DATA, MODELS, load_module


def _samples(n, seed):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((1, 16)).astype(np.float32)] for _ in range(n)]


def _min_cos(a, b, data) -> float:
    return min(o["cosine"] for o in compare_models(a, b, data, samples=0)["outputs"])


def _eval_file(tmp_path, model, samples):
    path = tmp_path / "evaluation.npz"
    np.savez(path, **{model.main.tensors[t].name: np.stack([s[k] for s in samples])
                      for k, t in enumerate(model.main.inputs)})
    return path


def _mixed(tmp_path, orig, options: str):
    """``quantize(mode=int8,OPTIONS)`` on a clone of ``orig``, calibrated on 32 random samples
    and checked on 16 others: (the written model, its pass stats, the evaluation samples)."""
    ev = _samples(16, 2)
    m = orig.clone()
    spec = f"quantize(mode=int8,{options},evaluation={_eval_file(tmp_path, orig, ev)})"
    rep = run_pipeline(m, spec, PassContext(calibration=from_iterable(_samples(32, 1), orig)))
    return m, rep, ev


@pytest.mark.parametrize("target", ["target_cosine=0.99", "target_snr=25"])
def test_target_on_fragile_head(tmp_path, target):
    orig = sigmoid_head_mlp([16, 32, 32, 4])
    m, rep, ev = _mixed(tmp_path, orig, target)
    mp = rep.passes[-1].stats["mixed_precision"]
    plain = orig.clone()
    run_pipeline(plain, "quantize(mode=int8)", PassContext(calibration=from_iterable(_samples(32, 1), orig)))
    # Measured again from the written bytes, independently of the pass's own scoring.
    got = compare_models(orig, m.to_bytes(), ev, samples=0)["outputs"][0]
    assert got["cosine"] >= 0.99 if "cosine" in target else got["snr_db"] >= 25
    assert _min_cos(orig, plain.to_bytes(), ev) < 0.95  # plain int8 misses it
    assert mp["met"] and mp["before"]["min_cosine"] < 0.95
    # Only the sigmoid head goes back to float, as an output head int8 cannot represent;
    # every FULLY_CONNECTED stays int8.
    assert [k["ops"] for k in mp["kept_float"]] == [["LOGISTIC"]]
    assert mp["kept_float"][0]["reason"].startswith("output head")
    assert mp["integer_macs_share"] == 1.0
    sg = m.main
    assert [op.name for op in sg.operators].count("LOGISTIC") == 1
    logistic = next(op for op in sg.operators if op.name == "LOGISTIC")
    assert sg.tensors[logistic.inputs[0]].type == TensorType.FLOAT32
    assert all(sg.tensors[op.inputs[0]].type == TensorType.INT8 for op in sg.operators if op.name == "FULLY_CONNECTED")
    runtime.run(m.to_bytes())


def test_met_target_changes_nothing_beyond_plain_int8():
    orig = tflopt.load(MODELS / "convnet_fp32.tflite")
    cal = list(np.load(DATA / "digits.npz")["x_calib"][:16])
    a, b = orig.clone(), orig.clone()
    run_pipeline(a, "quantize(mode=int8)", PassContext(calibration=from_iterable(cal, orig)))
    rep = run_pipeline(b, "quantize(mode=int8,target_cosine=0.9)", PassContext(calibration=from_iterable(cal, orig)))
    assert a.to_bytes() == b.to_bytes()
    assert rep.passes[-1].stats["mixed_precision"]["kept_float"] == []
    assert any("calibration data" in w for w in rep.passes[-1].warnings)


def test_options_declared_and_checked():
    fields = {f.name: f for f in __import__("dataclasses").fields(get_pass("quantize").Options)}
    assert fields["fallback"].default == "float" and fields["target_cosine"].default is None
    # Not in search's default space: a target is meaningless for mode=float16 / dynamic.
    assert "search" not in fields["target_cosine"].metadata
    with pytest.raises(PipelineError):
        get_pass("quantize")(mode="float16", target_cosine=0.99)
    with pytest.raises(PipelineError):
        get_pass("quantize")(mode="int8", target_cosine=1.5)


@pytest.mark.real
@pytest.mark.parametrize("fallback", ["float", "int16"])
def test_corpus_model_reaches_target(tmp_path, fallback):
    """face_detection_short_range: plain int8 min cosine 0.979 on the evaluation photos;
    after equalize, mixed precision reaches 0.99 keeping nearly every MAC int8 (with
    fallback=int16 every MAC integer: its islands compute in 16x8)."""
    from conftest import corpus
    photos = load_module(DATA.parent / "fetch_photos.py")
    path = next(p for p in corpus() if p.name == "face_detection_short_range.tflite")
    orig = tflopt.load(path)
    cal = photos.photo_samples(orig, path, split="calibration")
    ev = photos.photo_samples(orig, path, split="evaluation")
    m = tflopt.load(path)
    rep = run_pipeline(m, "dequantize,equalize,"
                       f"quantize(mode=int8,target_cosine=0.99,fallback={fallback},"
                       f"evaluation={_eval_file(tmp_path, orig, ev)})",
                       PassContext(calibration=from_iterable(cal, orig)))
    mp = rep.passes[-1].stats["mixed_precision"]
    assert _min_cos(orig, m.to_bytes(), ev) >= 0.99
    assert mp["int8_macs_share"] >= 0.9
    if fallback == "int16":
        assert mp["integer_macs_share"] == 1.0 and mp["kept_float"] == []
        assert {k["precision"] for k in mp["kept"]} == {"int16"}
    runtime.run(m.to_bytes())


def test_int16_fallback_keeps_the_head_integer(tmp_path):
    """fallback=int16: the sigmoid head int8 cannot carry computes in int16 (16x8 kernel)
    instead of float, so every op stays integer; measured again from the written bytes."""
    orig = sigmoid_head_mlp([16, 32, 32, 4])
    m, rep, ev = _mixed(tmp_path, orig, "target_cosine=0.99,fallback=int16")
    mp = rep.passes[-1].stats["mixed_precision"]
    assert [(k["ops"], k["precision"]) for k in mp["kept"]] == [(["LOGISTIC"], "int16")]
    assert mp["kept_float"] == [] and mp["met"]
    assert mp["int8_macs_share"] == 1.0 and mp["integer_macs_share"] == 1.0
    sg = m.main
    kinds = {op.name: sg.tensors[op.inputs[0]].type for op in sg.operators}
    assert kinds["LOGISTIC"] == TensorType.INT16 and kinds["FULLY_CONNECTED"] == TensorType.INT8
    assert all(sg.tensors[t].type != TensorType.FLOAT32 for op in sg.operators
               if op.name not in ("QUANTIZE", "DEQUANTIZE") for t in op.inputs if t >= 0)
    assert _min_cos(orig, m.to_bytes(), ev) >= 0.99
    runtime.run(m.to_bytes())


def test_max_accuracy_drop_with_labels(tmp_path):
    """A 100-class head whose close scores int8 flips (top-1 drop 0.047 on these samples,
    cosine still 0.9995): the accuracy goal keeps ops float until the drop is within 2
    points, checked against the labels again on the written model."""
    orig = mlp([16, 32, 100])
    ev = _samples(64, 2)
    labels = np.array([runtime.run(orig.to_bytes(), s)[1][0].argmax() for s in ev])
    path = tmp_path / "evaluation.npz"
    np.savez(path, x=np.concatenate([s[0] for s in ev]), y=labels)
    cal = _samples(32, 1)
    plain = orig.clone()
    run_pipeline(plain, "quantize(mode=int8)", PassContext(calibration=from_iterable(cal, orig)))
    drop = compare_models(orig, plain.to_bytes(), ev, samples=0, labels=labels)["outputs"][0]["accuracy"]["top1_drop"]
    assert drop > 0.02
    m = orig.clone()
    rep = run_pipeline(m, f"quantize(mode=int8,max_accuracy_drop=0.02,labels=y,evaluation={path}:x)",
                       PassContext(calibration=from_iterable(cal, orig)))
    mp = rep.passes[-1].stats["mixed_precision"]
    got = compare_models(orig, m.to_bytes(), ev, samples=0, labels=labels)["outputs"][0]["accuracy"]["top1_drop"]
    assert got <= 0.02 and mp["met"] and mp["kept"]
    assert mp["before"]["accuracy"]["top1_drop"] == pytest.approx(drop)
    assert mp["after"]["accuracy"]["top1_drop"] == pytest.approx(got)
    with pytest.raises(PipelineError):
        get_pass("quantize")(mode="int8", max_accuracy_drop=0.02)   # no labels


def test_gptq_weights_are_those_plain_gptq_writes():
    """weights=gptq: the choice is made on GPTQ weights computed once on the float model, and
    the int8 weights written are the plain GPTQ pass's; where int8 rounded to nearest already
    meets the goal, it is kept (GPTQ can only cost there) and the result is plain int8's."""
    from tflopt.weights import float_values
    orig = sigmoid_head_mlp([16, 64, 64, 4])
    cal = _samples(32, 1)
    a, b = orig.clone(), orig.clone()
    run_pipeline(a, "quantize(mode=int8,weights=gptq)", PassContext(calibration=from_iterable(cal, orig)))
    rep = run_pipeline(b, "quantize(mode=int8,weights=gptq,target_cosine=0.99)",
                       PassContext(calibration=from_iterable(cal, orig)))
    mp = rep.passes[-1].stats["mixed_precision"]
    assert mp["weights"] == "gptq" and rep.passes[-1].stats["gptq_weights"] == 3
    assert [k["ops"] for k in mp["kept"]] == [["LOGISTIC"]]

    def fc_weights(m):
        sg = m.main
        return [float_values(sg.tensors[op.inputs[1]]) for op in sg.operators if op.name == "FULLY_CONNECTED"]
    assert all(np.array_equal(x, y) for x, y in zip(fc_weights(a), fc_weights(b), strict=True))
    plain, mixed = orig.clone(), orig.clone()
    run_pipeline(plain, "quantize(mode=int8)", PassContext(calibration=from_iterable(cal, orig)))
    rep = run_pipeline(mixed, "quantize(mode=int8,weights=gptq,target_cosine=0.5)",
                       PassContext(calibration=from_iterable(cal, orig)))
    assert rep.passes[-1].stats["mixed_precision"]["weights"] == "rtn"
    assert mixed.to_bytes() == plain.to_bytes()


@pytest.mark.parametrize("options", [dict(mode="int16x8", target_cosine=0.99, fallback="int16"),
                                     dict(mode="int8", fallback="int16"),
                                     dict(mode="int8", labels="y"),
                                     dict(mode="int8", max_accuracy_drop=1.5, labels="y")])
def test_fallback_and_accuracy_options_checked(options):
    with pytest.raises(PipelineError):
        get_pass("quantize")(**options)


def test_edgetpu_cuts_grow_from_the_tail(tmp_path):
    """target=edgetpu: of two islands that help, the one whose readers are already off the
    Edge TPU goes first, so the int8 part stays one piece; the report counts the partitions
    with the Edge TPU audit of the written model."""
    from tflopt.passes.mixed_edgetpu import Cuts
    from tflopt.sensitivity.islands import islands
    orig = mlp([16, 32, 32, 4])
    named = {i.name: i for i in islands(orig.main)}
    first, middle, last = list(named)
    cuts = Cuts(orig.main, named)
    assert cuts.at_tail(last, set()) and not cuts.at_tail(middle, set()) and cuts.at_tail(middle, {last})
    assert cuts.next([first, middle, last], set()) == last
    assert cuts.next([first, middle], {last}) == middle
    assert cuts.at_front(first, {middle}) and not cuts.at_front(last, {middle})
    ev = _samples(16, 2)
    head = sigmoid_head_mlp([16, 32, 32, 4])
    m = head.clone()
    rep = run_pipeline(m, f"quantize(mode=int8,target_cosine=0.99,target=edgetpu,"
                          f"evaluation={_eval_file(tmp_path, head, ev)})",
                       PassContext(calibration=from_iterable(_samples(32, 1), head)))
    mp = rep.passes[-1].stats["mixed_precision"]
    assert [k["ops"] for k in mp["kept"]] == [["LOGISTIC"]]
    assert mp["edgetpu"]["partitions"] == 1 and mp["edgetpu"]["accelerated_macs_share"] == 1.0
    tried = mp["edgetpu"]["tried"]   # both orders were tried; the kept one has the larger share
    assert tried["chosen"] == "by_damage" and tried["by_damage"] == tried["tail_first"] == 1.0
    assert _min_cos(head, m.to_bytes(), ev) >= 0.99


def test_int16_island_in_the_middle_requantizes_directly():
    """A 16x8 island between int8 ops: its boundaries are single QUANTIZE ops int8 -> int16
    and int16 -> int8 (no float detour), the model runs with and without XNNPACK and its
    output is as close to the float model's as plain int8's."""
    from tflopt.calibration import collect_ranges
    from tflopt.passes.mixed_int16 import int16_islands, ranges_by_name
    from tflopt.passes.quantize import QuantizeOptions
    from tflopt.passes.quantize_static import quantize_static
    orig = mlp([16, 32, 32, 4])
    cal, ev = _samples(32, 1), _samples(16, 2)
    sg = orig.main
    middle = sg.tensors[[op for op in sg.operators if op.name == "FULLY_CONNECTED"][1].outputs[0]].name
    named = ranges_by_name(sg, collect_ranges(orig, from_iterable(cal, orig)).ranges)
    m, plain = orig.clone(), orig.clone()
    quantize_static(plain, PassContext(calibration=from_iterable(cal, orig)), QuantizeOptions())
    quantize_static(m, PassContext(calibration=from_iterable(cal, orig)), QuantizeOptions(),
                    op_filter=lambda op: m.main.tensors[op.outputs[0]].name != middle)
    assert int16_islands(m, {middle}, named, QuantizeOptions()) == ["FULLY_CONNECTED"]
    q = m.main
    steps = [(op.name, q.tensors[op.inputs[0]].type, q.tensors[op.outputs[0]].type) for op in q.operators]
    assert ("QUANTIZE", TensorType.INT8, TensorType.INT16) in steps
    assert ("QUANTIZE", TensorType.INT16, TensorType.INT8) in steps
    assert ("FULLY_CONNECTED", TensorType.INT16, TensorType.INT16) in steps
    assert [s for s in steps if s[0] == "DEQUANTIZE"] == [("DEQUANTIZE", TensorType.INT8, TensorType.FLOAT32)]
    data = m.to_bytes()
    runtime.run(data, xnnpack=False)
    assert _min_cos(orig, data, ev) >= _min_cos(orig, plain.to_bytes(), ev) - 1e-4


def test_int16_gives_way_to_float_where_int8_weights_are_the_loss():
    """16x8 keeps weights int8: a layer whose weights int8 cannot carry (each row's range set by
    one weight on an input that is always 0) misses the target with every island int16, so
    the islands go float instead, and the report says so."""
    from tflopt.schema import TensorType as T
    from tflopt.weights import float_values
    orig = mlp([16, 32, 32, 4])
    sg = orig.main
    fcs = [op for op in sg.operators if op.name == "FULLY_CONNECTED"]
    bias = sg.tensors[fcs[0].inputs[2]]
    bv = float_values(bias).copy()
    bv[0] = -1e3  # channel 0 of the first layer is always 0 after its ReLU
    bias.set_data(bv.astype(np.float32), T.FLOAT32)
    w = sg.tensors[fcs[1].inputs[1]]
    v = float_values(w).copy()
    v[:, 0] = 100 * np.abs(v).max(1)
    w.set_data(v.astype(np.float32), T.FLOAT32)
    ev = _samples(16, 2)
    m = orig.clone()
    rep = run_pipeline(m, "quantize(mode=int8,target_cosine=0.99,fallback=int16)",
                       PassContext(calibration=from_iterable(_samples(32, 1), orig)))
    mp = rep.passes[-1].stats["mixed_precision"]
    assert mp["met"] and mp["fallback"] == "float"
    assert [(k["ops"], k["precision"]) for k in mp["kept"]] == [(["FULLY_CONNECTED"], "float")]
    assert any("fallback=int16 missed the goal" in x for x in rep.passes[-1].warnings)
    assert _min_cos(orig, m.to_bytes(), ev) >= 0.99


def test_report_shows_the_ranking_mixed_precision_chose_from(tmp_path):
    """A fragile middle layer (not a head): mixed precision ranks every island alone in int8,
    keeps that layer float, and the optimize report draws the ranking it chose from."""
    from test_sensitivity import _fragile_weights_mlp

    from tflopt.reports import optimize_report, render_html
    orig = _fragile_weights_mlp()
    m, rep, ev = _mixed(tmp_path, orig, "target_cosine=0.99")
    mp = rep.passes[-1].stats["mixed_precision"]
    assert mp["met"] and [k["island"] for k in mp["kept_float"]] == ["dense_2/out"]
    ranked = mp["sensitivity"]["ranked"]
    assert ranked[0]["island"] == "dense_2/out" and len(ranked) >= 4
    assert compare_models(orig, m.to_bytes(), ev, samples=0)["outputs"][0]["cosine"] >= 0.99
    out = {"input": "in.tflite", "output": "out.tflite", **rep.as_dict(),
           "size": {"before": {"raw_bytes": len(orig.to_bytes())}, "after": {"raw_bytes": len(m.to_bytes())}}}
    html = render_html(optimize_report(out, before=orig, after=m))
    assert "Quantization sensitivity" in html and "dense_2/out" in html


def test_float16_storage_restored_with_current_op_versions(tmp_path):
    """int16 islands and GPTQ weights on a float16 model: the written model keeps float16
    weights behind DEQUANTIZE for what stays float, and every op's version is the one its
    tensor types call for (a DEQUANTIZE of float16 is version 3), as the plain pass writes."""
    from test_sensitivity import _fragile_weights_mlp

    from tflopt.versioning import update_versions
    orig = _fragile_weights_mlp()
    fp16 = orig.clone()
    run_pipeline(fp16, "quantize(mode=float16)", PassContext())
    m, rep, ev = _mixed(tmp_path, fp16, "target_cosine=0.99,fallback=int16,weights=gptq")
    stats = rep.passes[-1].stats
    assert stats["restored_storage"]["float16"] >= 1 and stats["gptq_weights"] >= 1
    deq = [op for op in m.main.operators
           if op.name == "DEQUANTIZE" and m.main.tensors[op.inputs[0]].type == TensorType.FLOAT16]
    assert deq and all(op.version == 3 for op in deq)
    assert update_versions(m.clone()) == {}
    assert compare_models(orig, m.to_bytes(), ev, samples=0)["outputs"][0]["cosine"] >= 0.99
