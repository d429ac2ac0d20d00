"""XNNPACK verdicts against what the LiteRT interpreter really delegates, op by op."""
from __future__ import annotations

import pathlib

import pytest

import tflopt
from tflopt.audit import audit
from tflopt.audit.observed import xnnpack_delegated

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "fixtures" / "models").glob("*.tflite"))


def _compare(path):
    # The audit reads any model the interpreter runs; verification is not its concern here.
    model = tflopt.load(path, verify=False)
    report = audit(model, ["xnnpack"]).targets["xnnpack"]
    taken, parts = xnnpack_delegated(model)
    main = [o for o in report.ops if o.subgraph == 0]
    wrong = [(o.index, o.op, o.on_accelerator, [r.message for r in o.reasons])
             for o in main if o.on_accelerator != (o.index in taken)]
    assert not wrong, f"{path.name}: {wrong}"
    assert report.summary["partitions_by_subgraph"][0] == len(parts)
    return len(main)


def test_fixtures_are_present():
    assert len(FIXTURES) >= 15


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_xnnpack_agrees_with_interpreter_on_fixtures(path):
    assert _compare(path) > 0


@pytest.mark.real
def test_xnnpack_agrees_with_interpreter_on_mediapipe():
    import sys
    sys.path.insert(0, str(ROOT / "fixtures"))
    from fetch_mediapipe import mediapipe_models
    paths = mediapipe_models()
    assert len(paths) == 14
    assert sum(_compare(p) for p in paths) > 1000
