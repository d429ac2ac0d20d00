"""Pipeline text, typed options, the verifier between passes, and the run report."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest

import tflopt
from tflopt import runtime
from tflopt.errors import PipelineError, VerificationError
from tflopt.pipeline import REGISTRY, Pass, PassManager, PassResult, parse_pipeline, register
from tflopt.verify import verify_model

from conftest import MODELS


@dataclass
class _ToyOptions:
    ratio: float = 0.5
    count: int = 3
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    names: list[str] = None
    pattern: str | None = None

    def validate(self):
        if not 0 <= self.ratio <= 1:
            raise ValueError("ratio must be in [0, 1]")


@pytest.fixture
def toy():
    @register
    class Toy(Pass):
        name = "toy"
        Options = _ToyOptions

        def run(self, model, ctx):
            return PassResult(False, {"ratio": self.options.ratio})

    yield Toy
    REGISTRY.pop("toy")


def test_parse_typed_options(toy):
    (p,) = parse_pipeline("toy(ratio=0.25, count=0x10, mode=b, flag=true, names=x|y, pattern='a,(b)=c')")
    o = p.options
    assert (o.ratio, o.count, o.mode, o.flag, o.names, o.pattern) == (0.25, 16, "b", True, ["x", "y"], "a,(b)=c")
    assert parse_pipeline(p.spec())[0].options == o


@pytest.mark.parametrize("text, message", [
    ("nope", "unknown pass 'nope'"),
    ("toy(size=1)", "unknown option 'size'"),
    ("toy(ratio=abc)", "wants float"),
    ("toy(ratio=2)", "ratio must be in [0, 1]"),
    ("toy(mode=c)", "must be one of a, b"),
    ("toy(count=1.5)", "wants int"),
    ("toy(flag=maybe)", "wants bool"),
    ("toy(ratio=0.1", "missing ')'"),
    ("toy(ratio)", "needs '=value'"),
    ("toy toy", "expected ','"),
    ("toy,", "trailing ','"),
    ("toy(ratio=0.1,ratio=0.2)", "given twice"),
])
def test_parse_errors_are_clear(toy, text, message):
    with pytest.raises(PipelineError) as e:
        parse_pipeline(text)
    assert message in str(e.value)


def test_empty_pipeline_is_no_passes():
    assert parse_pipeline("") == [] and parse_pipeline("  ") == []


def test_manager_reports_time_change_and_sizes(toy):
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    report = PassManager(parse_pipeline("toy(ratio=0.3),cleanup")).run(m)
    assert [r.name for r in report.passes] == ["toy", "cleanup"]
    assert report.passes[0].stats == {"ratio": 0.3}
    assert all(r.seconds >= 0 and r.bytes_before > 0 and r.bytes_after > 0 for r in report.passes)
    assert not report.passes[0].changed


def test_verifier_stops_a_pass_that_breaks_the_model():
    @register
    class Breaker(Pass):
        name = "breaker"

        def run(self, model, ctx):
            model.main.operators[0].raw.inputs[0] = 10_000
            return PassResult(True)

    try:
        m = tflopt.load(MODELS / "convnet_fp32.tflite")
        with pytest.raises(VerificationError) as e:
            PassManager([Breaker()]).run(m)
        assert "after breaker" in str(e.value) and "out of range" in str(e.value)
    finally:
        REGISTRY.pop("breaker")


def test_verifier_catches_each_invariant():
    m = tflopt.load(MODELS / "convnet_int8.tflite")
    sg = m.main
    weight = next(t for t in sg.tensors if t.is_constant and t.quantization is not None and t.quantization.per_channel)
    checks = []

    def expect(mutate, fragment):
        mm = tflopt.load(MODELS / "convnet_int8.tflite")
        mutate(mm)
        problems = verify_model(mm)
        checks.append(fragment)
        assert any(fragment in p for p in problems), (fragment, problems)

    expect(lambda mm: setattr(mm.main.raw.tensors[weight.index], "shape", [3, 3]), "needs")
    expect(lambda mm: setattr(mm.main.raw.tensors[weight.index], "buffer", 9999), "buffer index")
    expect(lambda mm: setattr(mm.main.operators[0].raw, "opcodeIndex", 99), "operator code index")
    expect(lambda mm: mm.main.raw.outputs.append(5000), "output tensor index")
    expect(lambda mm: setattr(mm.main.raw.tensors[weight.index].quantization, "quantizedDimension", 7),
           "quantized_dimension")
    expect(lambda mm: setattr(mm.main.raw.tensors[weight.index].quantization, "zeroPoint", [0]), "zero points")
    expect(lambda mm: setattr(mm.main.raw.tensors[weight.index].quantization, "scale",
                              np.ones(3, np.float32)), "scales for dimension")
    assert len(checks) == 7
    assert verify_model(m) == []


def test_remove_unused_drops_dead_parts_and_model_still_runs(tmp_path):
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    sg = m.main
    n_t, n_b = len(sg.tensors), len(m.buffers)
    sg.add_tensor("dead", [4], tflopt.schema.TensorType.FLOAT32, data=np.ones(4, np.float32))
    m.opcode_index("DENSIFY")
    removed = m.remove_unused()
    assert removed["tensors"] == 1 and removed["buffers"] >= 1 and removed["operator_codes"] == 1
    assert len(sg.tensors) == n_t and len(m.buffers) <= n_b
    out = tmp_path / "c.tflite"
    m.save(out)
    inputs, expected = runtime.run(MODELS / "convnet_fp32.tflite", xnnpack=False)
    _, got = runtime.run(out, inputs, xnnpack=False)
    assert np.array_equal(expected[0], got[0])


def test_inserted_op_runs(tmp_path):
    """Insert a DEQUANTIZE in front of a consumer: float16 weights, the converter's pattern."""
    from tflopt.schema import TensorType
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    sg = m.main
    op = next(o for o in sg.operators if o.name == "CONV_2D")
    w = op.input(1)
    w16 = sg.add_tensor(w.name + "_fp16", w.shape, TensorType.FLOAT16, data=w.data.astype(np.float16))
    deq_out = sg.add_tensor(w.name + "_deq", w.shape, TensorType.FLOAT32)
    sg.insert_before(op, "DEQUANTIZE", [w16.index], [deq_out.index], version=3)
    op.set_input(1, deq_out.index)
    m.remove_unused()
    assert verify_model(m) == []
    out = tmp_path / "fp16w.tflite"
    m.save(out)
    inputs, expected = runtime.run(MODELS / "convnet_fp32.tflite", xnnpack=False)
    _, got = runtime.run(out, inputs, xnnpack=False)
    assert np.allclose(expected[0], got[0], atol=1e-2)
    assert tflopt.load(out).main.operators[0].name == "DEQUANTIZE"


def test_cleanup_shares_the_empty_buffer_and_model_still_runs(tmp_path):
    src = MODELS / "convnet_fp32.tflite"
    m = tflopt.load(src)
    n_buffers = len(m.buffers)
    report = PassManager(parse_pipeline("cleanup")).run(m)
    stats = report.passes[0].stats
    assert stats["empty_buffers_shared"] > 0 and stats["buffers"] == stats["empty_buffers_shared"]
    assert len(m.buffers) == n_buffers - stats["buffers"]
    assert all(t.buffer_index == 0 for t in m.main.tensors if not t.is_constant)
    out = tmp_path / "clean.tflite"
    m.save(out)
    assert out.stat().st_size < src.stat().st_size
    inputs, expected = runtime.run(src)
    _, got = runtime.run(out, inputs)
    assert np.array_equal(expected[0], got[0])
