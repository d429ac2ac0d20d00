"""The audit command, its JSON and the --fail-under gate, the pass and the Python API."""
from __future__ import annotations

import json
import pathlib

import tflopt
from tflopt.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
INT8 = str(ROOT / "fixtures" / "models" / "convnet_int8.tflite")
FP32 = str(ROOT / "fixtures" / "models" / "convnet_fp32.tflite")
MODELS = ROOT / "fixtures" / "models"


def test_json_shape(capsys):
    assert main(["audit", INT8, "--target", "edgetpu", "-t", "xnnpack,gpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["targets"]) == ["edgetpu", "gpu", "xnnpack"]
    ops = out["targets"]["xnnpack"]["ops"]
    assert [o["index"] for o in ops] == list(range(len(ops)))
    for o in ops:
        assert {"subgraph", "index", "op", "supported", "reasons"} <= set(o)
        assert isinstance(o["supported"], bool)
    pool = ops[5]
    assert pool["op"] == "AVERAGE_POOL_2D" and pool["supported"] is False and pool["reasons"]
    assert out["targets"]["edgetpu"]["summary"]["accelerated_ops"] == 10


def test_fail_under_gates_on_supported_or_accelerated_share(capsys):
    # gru_int8 on the Edge TPU: nearly every op is supported, but an early unsupported op
    # sends the rest to the CPU, so the two gates disagree.
    gru = str(MODELS / "gru_int8.tflite")
    assert main(["audit", gru, "-t", "edgetpu", "--fail-under", "90"]) == 0
    assert main(["audit", gru, "-t", "edgetpu", "--fail-under", "90", "--gate", "accelerated"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("tflopt: accelerated ops below --fail-under 90%: edgetpu")


def test_fail_under(capsys):
    assert main(["audit", FP32, "-t", "edgetpu", "--fail-under", "50"]) == 1
    assert main(["audit", FP32, "-t", "xnnpack", "--fail-under", "100"]) == 0
    assert main(["audit", INT8, "-t", "xnnpack", "--fail-under", "90"]) == 1
    assert main(["audit", INT8, "-t", "xnnpack", "--fail-under", "80"]) == 0


def test_bad_input_is_exit_2(capsys, tmp_path):
    assert main(["audit", INT8, "-t", "npu"]) == 2
    assert main(["audit", str(tmp_path / "missing.tflite")]) == 2
    assert "error" in capsys.readouterr().err


def test_markdown(capsys):
    assert main(["audit", INT8, "-t", "edgetpu", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Delegate audit") and "| edgetpu | 10/11" in out


def test_pass_reports_and_does_not_change():
    from tflopt.pipeline import run_pipeline
    m = tflopt.load(INT8)
    before = m.to_bytes()
    rep = run_pipeline(m, "audit(targets=edgetpu|xnnpack)")
    rec = rep.passes[0]
    assert not rec.changed and m.to_bytes() == before
    assert rec.stats["edgetpu"]["summary"]["accelerated_ops"] == 10


def test_suggestions_measure_a_pass():
    from tflopt.audit import audit
    rep = audit(tflopt.load(FP32), ["edgetpu"], suggest=True)
    items = rep.suggestions["edgetpu"]
    done = [s for s in items if "cpu_ops_after" in s]
    assert done and min(s["cpu_ops_after"] for s in done) < rep.targets["edgetpu"].summary["cpu_ops"]
