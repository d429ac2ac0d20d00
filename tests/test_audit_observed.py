"""Rule verdicts against the runtimes installed here, op by op (``tflopt audit --observe``).

XNNPACK is observed through the interpreter's DELEGATE nodes; the LiteRT GPU accelerator through
``CompiledModel`` on Mesa's software Vulkan driver (.ci/setup-vulkan installs it; without it
these tests fail, they do not skip). A disagreement fails unless the target lists it in
``observed_exceptions`` with a reason; each listed exception is itself checked to still occur.
"""
from __future__ import annotations

import functools
import json
import pathlib

import numpy as np
import pytest

import tflopt
from tflopt.audit import audit
from tflopt.audit.fp16 import F16_MAX, float16_overflow
from tflopt.audit.gpu_observed import gpu_available
from tflopt.audit.observe import observe_targets
from tflopt.audit.rules import get_target
from tflopt.audit.submodel import build, distinct_submodels
from tflopt.pipeline import run_pipeline
from tflopt.runtime import run

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "fixtures" / "models"
AUDIT = ROOT / "fixtures" / "audit"
TARGETS = ["xnnpack", "litert-gpu"]
# Fast set: the audit fixtures, and one fixture per behaviour the litert-gpu table records
# (UNPACK and rank-2 STRIDED_SLICE in the GRU, mutual-broadcast MUL in attention, int16
# elementwise ops, a model that fails to compile whole: WHILE in the LSTM).
FAST = sorted(AUDIT.glob("*.tflite")) + [MODELS / f"{n}.tflite" for n in
                                          ("gru_fp32", "attention_fp32", "convnet_int16x8", "lstm_fp32")]
BATCH = ["convnet_batch_fp32", "convnet_batch_int8", "mlp_batch_fp32"]


@pytest.fixture(scope="module", autouse=True)
def gpu():
    ok, why = gpu_available()
    assert ok, f"LiteRT GPU accelerator unavailable ({why}): run .ci/setup-vulkan"
    return why


@functools.lru_cache(maxsize=None)
def observe(path, numerics=False):
    """One observation per model and setting for the whole module: the GPU runs are the cost."""
    model = tflopt.load(path, verify=False)
    report = audit(model, TARGETS)
    return model, report, observe_targets(model, report, numerics=numerics)


def undocumented(obs):
    return [(name, r["index"], r["op"], r["rule"], r["observed"], r["detail"])
            for name, o in obs.items() for r in o["ops"] if r.get("disagreement") == "undocumented"]


def check(path, numerics=False):
    model, report, obs = observe(path, numerics)
    assert not undocumented(obs), f"{path.name}: {undocumented(obs)}"
    for name in TARGETS:
        s = obs[name]["summary"]
        assert s["ops"] == len(model.subgraphs[0].operators) and s["observed_ops"] > 0
        assert s["agreements"] + s["disagreements"] == s["observed_ops"]
    return obs


@pytest.mark.parametrize("path", FAST, ids=lambda p: p.stem)
def test_rules_agree_with_runtimes_on_fixtures(path):
    check(path)


@pytest.mark.real
@pytest.mark.parametrize("path", sorted(MODELS.glob("*.tflite")), ids=lambda p: p.stem)
def test_rules_agree_with_runtimes_on_every_fixture(path):
    check(path)


def corpus():
    import sys
    sys.path.insert(0, str(ROOT / "fixtures"))
    from fetch_mediapipe import mediapipe_models
    paths = mediapipe_models()
    assert len(paths) == 14
    return paths


@pytest.mark.real
def test_rules_agree_with_runtimes_on_mediapipe():
    bad = {}
    for p in corpus():
        _, _, obs = observe(p, numerics=True)
        if undocumented(obs):
            bad[p.name] = undocumented(obs)
    assert not bad, bad


@pytest.mark.real
def test_float16_check_flags_no_corpus_model_the_gpu_runs_correctly():
    """Checked against the observed GPU numerics: a model whose every output keeps cosine
    >= 0.99 against the CPU on the GPU accelerator has no tensor beyond float16's range."""
    correct = 0
    for p in corpus():
        gpu = observe(p, numerics=True)[2]["litert-gpu"]
        outputs = (gpu.get("numerics") or {}).get("outputs")
        if outputs and all(o["cosine"] >= 0.99 and o["finite"] for o in outputs):
            correct += 1
            assert gpu["float16_overflow"]["tensors"] == [], p.name
    assert correct >= 5


@pytest.mark.parametrize("name", BATCH)
def test_free_batch_models_run_whole_on_the_gpu(name):
    obs = check(AUDIT / f"{name}.tflite")["litert-gpu"]
    assert obs["fully_accelerated"] is True
    assert obs["summary"]["agreements"] == obs["summary"]["ops"]


@pytest.mark.parametrize("name", BATCH)
def test_static_shapes_passes_edgetpu_static_shape_rule(name):
    model = tflopt.load(AUDIT / f"{name}.tflite")
    original = model.to_bytes()
    before = audit(model, ["edgetpu"]).targets["edgetpu"]
    tripped = sum(any(r.rule == "edgetpu.static_shape" for r in o.reasons) for o in before.ops)
    assert tripped > 0
    run_pipeline(model, "static_shapes(batch=1)")
    after = audit(model, ["edgetpu"]).targets["edgetpu"]
    assert not [o.index for o in after.ops if any(r.rule == "edgetpu.static_shape" for r in o.reasons)]
    assert all(-1 not in (t.shape_signature or ()) for t in model.subgraphs[0].tensors)
    reloaded = tflopt.load(model.to_bytes())
    inputs, ref = run(original, xnnpack=False)
    _, got = run(reloaded, inputs, xnnpack=False)
    assert all(np.array_equal(a, b) for a, b in zip(ref, got))


def test_static_shapes_explicit_shape_and_bad_name():
    model = tflopt.load(AUDIT / "mlp_batch_fp32.tflite")
    name = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].name
    run_pipeline(model, f"static_shapes(shapes='{name}=4,64')")
    assert model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].shape_signature == (4, 64)
    out = model.subgraphs[0].tensors[model.subgraphs[0].outputs[0]]
    assert out.shape_signature == (4, 10)
    inputs = [np.random.default_rng(0).random((4, 64), np.float32)]
    assert run(model, inputs, xnnpack=False)[1][0].shape == (4, 10)
    with pytest.raises(Exception, match="no input named"):
        run_pipeline(tflopt.load(AUDIT / "mlp_batch_fp32.tflite"), "static_shapes(shapes='nope=1,64')")


def test_suggest_proposes_static_shapes_for_edgetpu():
    report = audit(AUDIT / "convnet_batch_int8.tflite", ["edgetpu"], suggest=True)
    items = {s["pipeline"]: s for s in report.suggestions["edgetpu"]}
    s = items["static_shapes(batch=1)"]
    assert s["cpu_ops_after"] < s["cpu_ops_before"]


def test_float16_overflow_flags_the_overflow_fixture_only():
    bad = float16_overflow(tflopt.load(AUDIT / "f16_overflow_fp32.tflite"))
    assert bad["tensors"] and all(max(abs(t["lo"]), abs(t["hi"])) > F16_MAX for t in bad["tensors"])
    assert {t["kind"] for t in bad["tensors"]} == {"activation", "constant"}
    for name in ("convnet_fp32", "mlp_fp32"):
        assert float16_overflow(tflopt.load(MODELS / f"{name}.tflite"))["tensors"] == []


def test_gpu_numerics_confirm_the_float16_check():
    broken = observe(AUDIT / "f16_overflow_fp32.tflite", numerics=True)[2]["litert-gpu"]
    fine = observe(AUDIT / "convnet_batch_fp32.tflite", numerics=True)[2]["litert-gpu"]
    assert broken["float16_overflow"]["tensors"] and not fine["float16_overflow"]["tensors"]
    assert broken["numerics"]["outputs"][0]["cosine"] < 0.5
    assert fine["numerics"]["outputs"][0]["cosine"] > 0.999 and fine["numerics"]["outputs"][0]["snr_db"] > 30


def test_submodels_are_memoised_and_run():
    model = tflopt.load(MODELS / "gru_fp32.tflite", verify=False)
    groups, of_op, folded = distinct_submodels(model)
    assert len(groups) < len(model.subgraphs[0].operators) / 3
    assert set(of_op.values()) - {None} == set(groups)
    assert all(of_op[i] is None for i in folded)
    for group in groups.values():
        sub = tflopt.load(build(model, 0, group).to_bytes())
        outs = run(sub, xnnpack=False)[1]
        assert all(np.isfinite(o.astype(np.float64)).all() for o in outs)


@pytest.mark.parametrize("target", TARGETS)
def test_exceptions_are_documented_data(target):
    t = get_target(target)
    assert t.checked_against
    for e in t.observed_exceptions:
        assert e.reason and e.op


def test_documented_exceptions_still_occur():
    """Every listed exception is a disagreement the runtime still shows on the fixtures it names
    (corpus-only exceptions are checked by the real corpus test)."""
    for target in TARGETS:
        for e in get_target(target).observed_exceptions:
            local = [m for m in e.models if (MODELS / f"{m}.tflite").exists() or (AUDIT / f"{m}.tflite").exists()]
            for m in local:
                path = MODELS / f"{m}.tflite" if (MODELS / f"{m}.tflite").exists() else AUDIT / f"{m}.tflite"
                obs = observe(path)[2][target]
                hit = [r for r in obs["ops"] if r["op"] == e.op and r.get("disagreement") == "documented"]
                assert hit, f"{target}: exception {e.op} no longer occurs on {m}"


def test_cli_observe_json(capsys):
    from tflopt.cli import main
    path = str(AUDIT / "mlp_batch_fp32.tflite")
    assert main(["audit", path, "--observe", "-t", "xnnpack,litert-gpu,edgetpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    gpu = data["targets"]["litert-gpu"]["observed"]
    assert gpu["runtime"].startswith("ai-edge-litert") and gpu["summary"]["disagreements"] == 0
    assert gpu["numerics"]["outputs"][0]["cosine"] > 0.999
    assert "unavailable" in data["targets"]["edgetpu"]["observed"]
    assert main(["audit", path, "--data", "x.npz"]) == 2
    assert "--observe" in capsys.readouterr().err


# Float ops that need no options: a one-op model of each, the XNNPACK rules against the interpreter.
PROBE_UNARY = ("ABS", "CEIL", "COS", "EXP", "FLOOR", "GELU", "HARD_SWISH", "NEG", "RELU", "RELU6", "RELU_N1_TO_1",
               "ROUND", "RSQRT", "SIN", "SQRT", "SQUARE", "LOG", "SIGN", "LOGISTIC", "TANH", "ELU", "ZEROS_LIKE")
PROBE_BINARY = ("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW", "FLOOR_DIV",
                "FLOOR_MOD", "PRELU")


@pytest.mark.parametrize("name", PROBE_UNARY + PROBE_BINARY)
def test_xnnpack_table_matches_runtime_op_by_op(name):
    from tflopt.audit.observed import xnnpack_delegated
    from tflopt.build import new_model
    from tflopt.schema import TensorType
    m = new_model()
    sg = m.main
    ins = [sg.add_tensor(f"x{i}", [1, 4, 4, 8], TensorType.FLOAT32).index
           for i in range(2 if name in PROBE_BINARY else 1)]
    out = sg.add_tensor("y", [1, 4, 4, 8], TensorType.FLOAT32).index
    sg.raw.inputs, sg.raw.outputs = ins, [out]
    sg.insert_operator(0, name, ins, [out])
    taken, _ = xnnpack_delegated(m)
    assert audit(m, ["xnnpack"]).targets["xnnpack"].ops[0].on_accelerator == (0 in taken)
    if name == "LOG":
        assert 0 in taken  # the installed runtime delegates LOG (issue 14)


def test_shape_arithmetic_is_not_a_dynamic_shape():
    from tflopt.audit.shapes import dynamic_tensors
    # Flatten under a free batch: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, all known once the
    # input shape is; the gpu.dynamic_shape rule stays quiet (other rules reject those ops).
    model = tflopt.load(AUDIT / "convnet_flatten_batch_fp32.tflite")
    assert "SHAPE" in {op.name for op in model.subgraphs[0].operators}
    assert dynamic_tensors(model.subgraphs[0]) == set()
    ops = audit(model, ["gpu"]).targets["gpu"].ops
    assert not [o.index for o in ops if any(r.rule == "gpu.dynamic_shape" for r in o.reasons)]


def test_a_listed_exception_documents_a_real_disagreement():
    """The GPU delegate's table (not the accelerator's) lacks UNPACK, which the accelerator takes
    in the GRU: an undocumented disagreement, until an exception names it."""
    from dataclasses import replace

    from tflopt.audit.observe import _compare
    from tflopt.audit.spec import ObservedException
    model, _, obs = observe(MODELS / "gru_fp32.tflite")
    seen = {r["index"]: (r["observed"], r["detail"]) for r in obs["litert-gpu"]["ops"]}
    plain = get_target("gpu")
    tr = audit(model, ["gpu"]).targets["gpu"]
    before = _compare(model, plain, tr, seen, obs["litert-gpu"]["runtime"], "supported")
    unpack = [r for r in before["ops"] if r["op"] == "UNPACK"]
    assert unpack and all(r["disagreement"] == "undocumented" for r in unpack)
    listed = replace(plain, observed_exceptions=(
        ObservedException("UNPACK", False, "the accelerator has an UNPACK kernel", ("gru_fp32",)),))
    after = _compare(model, listed, tr, seen, obs["litert-gpu"]["runtime"], "supported")
    assert all(r["disagreement"] == "documented" and r["exception"] for r in after["ops"] if r["op"] == "UNPACK")
    assert after["summary"]["documented"] == len(unpack)
    elsewhere = replace(listed, observed_exceptions=(
        ObservedException("UNPACK", False, "only in another model", ("gru_int8",)),))
    assert _compare(model, elsewhere, tr, seen, "", "supported")["summary"]["documented"] == 0
