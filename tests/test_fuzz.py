"""Fuzzing: a short seeded run of benchmarks/fuzz.py, and one test per crash class the long
run found (issue 10): a cyclic graph, an op with no outputs, a corrupt sparse block, an error
message quoting a 30,000-long shape."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS, ROOT, corpus, fixture_paths, load_module

import tflopt
from tflopt.audit.engine import _views
from tflopt.cli import main
from tflopt.errors import MESSAGE_LIMIT
from tflopt.pipeline import run_pipeline
from tflopt.sparse import decode, encode
from tflopt.versioning import compute_version

fuzz = load_module(ROOT / "benchmarks" / "fuzz.py")


def _assert_clean(rep):
    d = rep.as_dict()
    assert rep.crashes == [], rep.crashes[:3]
    assert rep.unloadable == [], rep.unloadable[:3]
    for name, st in d["by_command"].items():
        assert st["hangs"] == 0 and st["long_lines"] == 0, (name, st)
    # The mutations must reach the passes, not only the reader's refusals.
    assert d["by_command"]["optimize"]["exit0"] > 0 and d["by_command"]["optimize"]["exit2"] > 0
    assert rep.outputs_checked > 0


def test_short_seeded_fuzz_run_has_no_crash():
    rep = fuzz.fuzz(200, seed=1, corpus_share=0, compare_verifier=False, inprocess=True, timeout=30)
    assert rep.mutants == 200
    _assert_clean(rep)


@pytest.mark.real
def test_corpus_fuzz_run_has_no_crash():
    rep = fuzz.fuzz(100, seed=2, compare_verifier=False, inprocess=True, timeout=60, seed_paths=corpus())
    _assert_clean(rep)


def test_mutants_are_reproducible():
    seed = fuzz.load_seed(fixture_paths()[0])
    import random
    a = [fuzz.mutate(seed, random.Random(k)) for k in range(20)]
    b = [fuzz.mutate(seed, random.Random(k)) for k in range(20)]
    assert a == b and len({m for m, _ in a}) > 3


def _one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert len(err[0]) <= MESSAGE_LIMIT
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


# -- a cycle: audit recursed through is_const until RecursionError ---------------------------------
def _cyclic(tmp_path):
    m = tflopt.load(MODELS / "convnet_fp16.tflite")
    deq = next(op for op in m.main.operators if op.name == "DEQUANTIZE")
    deq.raw.inputs = [deq.outputs[0]]  # the weight's DEQUANTIZE now reads its own output
    path = tmp_path / "cycle.tflite"
    m.save(path)
    return path


def test_cyclic_graph_is_refused_with_one_line(tmp_path, capsys):
    path = _cyclic(tmp_path)
    assert main(["audit", str(path)]) == 2
    _one_error_line(capsys, str(path), "cycle")


def test_is_const_walk_is_cycle_safe(tmp_path):
    m = tflopt.load(_cyclic(tmp_path), verify=False)
    views = _views(m.main)
    deq = next(v for v in views if v.name == "DEQUANTIZE")
    assert deq.is_const(deq.op.outputs[0], folded=True) is False


# -- an op with no outputs: versioning read outs[0] ------------------------------------------------
def _no_outputs(tmp_path):
    m = tflopt.load(MODELS / "convnet_int8.tflite")
    q = next(op for op in m.main.operators if op.name == "QUANTIZE")
    q.raw.outputs = []
    path = tmp_path / "noout.tflite"
    m.save(path)
    return path


def test_op_without_outputs_is_refused_with_one_line(tmp_path, capsys):
    path = _no_outputs(tmp_path)
    out = tmp_path / "o.tflite"
    assert main(["optimize", str(path), "-o", str(out), "-p", "quantize(mode=float16)"]) == 2
    _one_error_line(capsys, str(path), "QUANTIZE", "no output")
    assert not out.exists()


def test_versioning_reads_missing_operands_as_absent(tmp_path):
    m = tflopt.load(_no_outputs(tmp_path), verify=False)
    q = next(op for op in m.main.operators if op.name == "QUANTIZE")
    assert compute_version(q) >= 1


# -- a corrupt sparse block: decode hit np.repeat with negative counts -----------------------------
def _sparse_model():
    m = tflopt.load(MODELS / "mlp_fp32.tflite")
    run_pipeline(m, "prune(sparsity=0.8),sparsify")
    t = next(t for t in m.main.tensors if t.sparsity is not None)
    return m, t


def _corrupt_segments(t):
    dm = next(d for d in t.sparsity.dimMetadata if d.arraySegments is not None)
    seg = np.array(dm.arraySegments.values, copy=True)
    seg[1], seg[2] = seg[2] + 5, seg[1]  # no longer non-decreasing
    dm.arraySegments.values = seg


def test_corrupt_sparse_block_is_refused_with_one_line(tmp_path, capsys):
    m, t = _sparse_model()
    _corrupt_segments(t)
    path = tmp_path / "sparse.tflite"
    m.save(path)
    out = tmp_path / "o.tflite"
    assert main(["optimize", str(path), "-o", str(out), "-p", "prune(sparsity=0.5)"]) == 2
    _one_error_line(capsys, str(path), "segments")
    assert not out.exists()


def test_sparse_decode_validates_metadata():
    m, t = _sparse_model()
    dense = decode(t.data, t.shape, t.sparsity)
    values, params = encode(dense, block=None)
    assert np.array_equal(decode(values, dense.shape, params), dense)
    _corrupt_segments(t)
    with pytest.raises(ValueError, match="sparsity: level .* segments"):
        decode(t.data, t.shape, t.sparsity)
    m2, t2 = _sparse_model()
    dm = next(d for d in t2.sparsity.dimMetadata if d.arrayIndices is not None)
    idx = np.array(dm.arrayIndices.values, copy=True).astype(np.int64)
    idx[0] = 10_000  # outside its dimension
    dm.arrayIndices.values = idx.astype(np.int32)
    with pytest.raises(ValueError, match="indices outside its dimension"):
        decode(t2.data, t2.shape, t2.sparsity)


# -- a message quoting an inflated shape was 101,854 characters ------------------------------------
def test_error_quoting_a_huge_shape_stays_short(tmp_path, capsys):
    m = tflopt.load(MODELS / "mlp_fp32.tflite")
    m.main.tensors[m.main.inputs[0]].raw.shape = [-1] * 30000
    path = tmp_path / "huge.tflite"
    m.save(path)
    assert main(["inspect", str(path)]) == 2
    line = _one_error_line(capsys, str(path), "negative dimension", "30,000 items")
    assert len(line) < 300


# -- a signature without its key: inspect joined None into its text (found by the long run) -------
def test_signature_without_key_is_refused_as_the_runtime_does(tmp_path, capsys):
    from ai_edge_litert.interpreter import Interpreter
    m = tflopt.load(MODELS / "multisig_fp32.tflite")
    m.raw.signatureDefs[0].signatureKey = None
    path = tmp_path / "nokey.tflite"
    m.save(path)
    with pytest.raises(ValueError, match="Missing exported method name"):
        Interpreter(model_path=str(path))
    assert main(["inspect", str(path)]) == 2
    _one_error_line(capsys, str(path), "signature 0: has no key")


# -- a signalling-NaN scale: numpy's cast warning put two more lines on stderr (long run) -------
def test_signalling_nan_scale_gives_one_line(tmp_path, capsys):
    m = tflopt.load(MODELS / "convnet_int8.tflite")
    t = next(t for t in m.main.tensors if t.quantization is not None and t.quantization.scale.size)
    n = t.quantization.scale.size
    t.raw.quantization.scale = np.full(n, 0x7F800001, np.uint32).view(np.float32)
    path = tmp_path / "snan.tflite"
    m.save(path)
    assert main(["inspect", str(path)]) == 2
    _one_error_line(capsys, str(path), "non-finite quantization scale")
