"""Sensitivity analysis: a model built with one fragile layer ranks it first; the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tflopt.build import sigmoid_head_mlp
from tflopt.calibration import from_iterable
from tflopt.cli import main
from tflopt.passes.quantize import QuantizeOptions
from tflopt.sensitivity import analyze, islands


def _samples(n, seed):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((1, 16)).astype(np.float32)] for _ in range(n)]


@pytest.fixture(scope="module")
def fragile():
    return sigmoid_head_mlp([16, 32, 32, 4])


def test_fragile_sigmoid_head_ranks_first(fragile):
    r = analyze(fragile, from_iterable(_samples(32, 1), fragile), _samples(16, 2), QuantizeOptions(), top=0)
    top = r["ranked"][0]
    assert top["ops"] == ["LOGISTIC"] and top["head"]
    # Quantizing it alone costs more than any other island alone; floating it alone recovers
    # most of the whole-model loss, and every other island floated alone recovers none.
    others = r["ranked"][1:]
    assert top["only_quantized"]["min_cosine"] < min(o["only_quantized"]["min_cosine"] for o in others) - 0.05
    assert top["only_float"]["min_cosine"] > 0.99 > r["full_quantized"]["min_cosine"]
    assert all(o["only_float"]["min_cosine"] < 0.95 for o in others)
    assert top["blame"] == "activations"  # LOGISTIC has no weights
    assert [x["rank"] for x in r["ranked"]] == list(range(1, len(r["ranked"]) + 1))
    # One build (the whole model integer): every single-island question went to a switched model.
    assert r["builds"] == 1 and r["switched"]["only"] == r["switched"]["float"] == len(r["ranked"])
    assert r["notes"] == []


def _fragile_weights_mlp():
    """An MLP whose middle layer (dense_2) has, in every output row, one weight 1000x the
    rest on an input unit the layer before keeps at 0 (its bias is -100 under the RELU):
    worthless in float, but per-channel int8 then spends every level on it and rounds the
    weights that matter to zero. Nothing else is fragile: no head, no wide activation."""
    from tflopt.build import mlp
    from tflopt.weights import float_values
    m = mlp([16, 32, 32, 32, 4])
    sg = m.main
    dead = sg.tensors[sg.operators[1].inputs[2]]
    b = float_values(dead).copy()
    b[0] = -100.0
    dead.set_data(b)
    kernel = sg.tensors[sg.operators[2].inputs[1]]
    w = float_values(kernel).copy()
    w[:, 0] = 1000.0 * np.abs(w).max()
    kernel.set_data(w)
    return m


def test_fragile_middle_layer_ranks_first_and_blames_its_weights():
    m = _fragile_weights_mlp()
    r = analyze(m, from_iterable(_samples(32, 1), m), _samples(16, 2), QuantizeOptions(), top=0)
    top, others = r["ranked"][0], r["ranked"][1:]
    assert top["island"] == "dense_2/out" and not top["head"]
    assert top["only_quantized"]["min_cosine"] < 0.9 < min(o["only_quantized"]["min_cosine"] for o in others)
    assert top["blame"] == "weights" and top["weights_only_loss"] > 0.5 * (1 - top["only_quantized"]["min_cosine"])
    assert top["only_float"]["min_cosine"] > 0.99 > r["full_quantized"]["min_cosine"]


def _random_samples(model, n, seed):
    from tflopt import runtime
    interp = runtime.interpreter(runtime.runnable(model)[0])
    return [runtime.random_inputs(interp, seed=seed * 1000 + k) for k in range(n)]


@pytest.mark.parametrize("name,mode", [("convnet_fp32.tflite", "int8"), ("convnet_fp32.tflite", "int16x8"),
                                       ("attention_fp32.tflite", "int8")])
def test_switched_models_answer_as_the_rebuilds(name, mode):
    """Each question asked of the switched model (one interpreter, a switch input) scores as
    the model rebuilt for that question alone; islands a switch would change are rebuilt."""
    import tflopt
    from conftest import MODELS
    from tflopt.sensitivity import Trials
    m = tflopt.load(MODELS / name)
    trials = Trials(m, from_iterable(_random_samples(m, 16, 1), m), _random_samples(m, 4, 2),
                    QuantizeOptions(mode=mode), workers=1)
    full = trials.full_score()
    assert full.min_cosine < 0.99999  # quantizing changes the outputs: the switches have something to switch
    for kind in ("only", "float", "weights"):
        content, slots = trials._switch_model(kind)
        switched = [i for i in trials.islands if i.name in slots]
        assert len(switched) >= 4
        rebuilt = [i for i in trials.islands if i.name not in slots and (kind != "weights" or i.weighted)]
        for island in switched[:3] + switched[-2:]:
            job = trials.switch_job(kind, island)
            assert job[0] == "switch"
            reference = ("weights", trials.islands.index(island)) if kind == "weights" else \
                (kind, frozenset(island.keys))
            fast, slow = trials.variant(job), trials.variant(reference)
            for a, b in zip(fast.outputs, slow.outputs):
                assert a["name"] == b["name"]
                assert a["cosine"] == pytest.approx(b["cosine"], abs=1e-6)
                assert a["snr_db"] == pytest.approx(b["snr_db"], rel=1e-4, abs=1e-3)
        for island in rebuilt:
            assert trials.switch_job(kind, island)[0] != "switch"
        if name.startswith("attention") and kind == "float":
            # SOFTMAX hands its fixed 1/256 grid to an integer BATCH_MATMUL: floating it alone
            # makes the reader requantize, so that question is rebuilt, not switched.
            assert any("SOFTMAX" in i.kinds for i in rebuilt)
    assert trials.switch_notes == []
    # Several islands float at once (what mixed precision asks): the same as their rebuild.
    names = [i.name for i in trials.islands if i.name in trials.switch_models["float"][1]][1:4]
    fast = trials.float_score(names)
    slow = trials.score(trials.build(frozenset(k for i in trials.islands if i.name in names for k in i.keys))[0])
    assert fast.min_cosine == pytest.approx(slow.min_cosine, abs=1e-6)
    assert fast.min_snr == pytest.approx(slow.min_snr, rel=1e-4, abs=1e-3)


def test_islands_behind_a_cut_custom_op_answer_as_their_rebuilds():
    """A custom op the interpreter lacks is cut with everything after it: the islands there
    change nothing compared, and say so without a rebuild, with the rebuilds' numbers."""
    from tflopt.build import mlp
    from tflopt.schema import TensorType
    m = mlp([16, 32, 32, 32, 4])
    sg = m.main
    hidden = sg.operators[1].outputs[0]
    odd = sg.add_tensor("odd", sg.tensors[hidden].shape, TensorType.FLOAT32)
    sg.insert_operator(2, "CUSTOM", [hidden], [odd.index], custom_code="TfloptNoSuchOp")
    sg.operators[3].set_input(0, odd.index)
    runs = [analyze(m, from_iterable(_samples(16, 1), m), _samples(8, 2), QuantizeOptions(), top=0, switched=s)
            for s in (True, False)]
    assert runs[0]["cut_ops"] == ["CUSTOM:TfloptNoSuchOp"]
    assert runs[0]["builds"] == 1 < runs[1]["builds"]
    behind = [r for r in runs[0]["ranked"] if r["island"] in ("dense_2/out", "dense_3/out")]
    assert len(behind) == 2 and all(r["only_quantized"]["min_cosine"] == pytest.approx(1.0) for r in behind)
    assert runs[0]["ranked"] == runs[1]["ranked"]


def test_islands_group_activation_and_reshape_with_producer():
    import tflopt
    from conftest import MODELS
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    found = islands(m.main)
    kinds = [i.kinds for i in found]
    # MAX_POOL follows the depthwise conv, AVERAGE_POOL and RESHAPE the second conv.
    assert ["DEPTHWISE_CONV_2D", "MAX_POOL_2D"] in kinds
    assert ["CONV_2D", "AVERAGE_POOL_2D", "RESHAPE"] in kinds
    assert sorted(i for isl in found for i in isl.ops) == list(range(len(m.main.operators)))


def test_cli_json_and_bad_input(tmp_path, fragile, capsys):
    model = tmp_path / "fragile.tflite"
    model.write_bytes(fragile.to_bytes())
    for name, seed in (("cal", 1), ("ev", 2)):
        np.savez(tmp_path / f"{name}.npz", input=np.stack([s[0] for s in _samples(16, seed)]))
    before = model.read_bytes()
    assert main(["sensitivity", str(model), "--calibration", str(tmp_path / "cal.npz"),
                 "--data", str(tmp_path / "ev.npz"), "--json", "--top", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ranked"][0]["ops"] == ["LOGISTIC"] and len(out["ranked"]) == 2
    assert model.read_bytes() == before
    assert main(["sensitivity", str(model), "--calibration", str(tmp_path / "cal.npz")]) == 0
    assert "LOGISTIC" in capsys.readouterr().out.splitlines()[2]
    (tmp_path / "bad.tflite").write_bytes(b"nope")
    assert main(["sensitivity", str(tmp_path / "bad.tflite"), "--calibration", str(tmp_path / "cal.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.tflite" in err


def test_forked_workers_give_the_same_answers(fragile):
    runs = [analyze(fragile, from_iterable(_samples(16, 1), fragile), _samples(8, 2), QuantizeOptions(),
                    workers=w) for w in (1, 2)]
    assert runs[1]["workers"] == 2
    assert [r["ranked"] for r in runs][0] == runs[1]["ranked"]
    assert runs[0]["builds"] == runs[1]["builds"]
