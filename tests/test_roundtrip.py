"""A pipeline with no passes is a faithful rewrite: same tables, same bytes of every buffer,
bit-identical interpreter outputs; the appended (>2 GB) layout reads, writes and runs."""
from __future__ import annotations

import numpy as np
import pytest

import tflopt
from tflopt import runtime
from tflopt.cli import main

from conftest import model_digest


def _assert_faithful(src, out_path):
    original = tflopt.load(src)
    rewritten = tflopt.load(out_path)
    assert model_digest(rewritten) == model_digest(original)
    # Custom ops the stock interpreter lacks are cut from both, identically.
    runnable_a, cut_a = runtime.runnable(original)
    runnable_b, cut_b = runtime.runnable(rewritten)
    assert cut_a == cut_b
    if not cut_a:
        # Run the two files' own bytes: a Model would be re-serialised (inline) by tflopt first.
        runnable_a, runnable_b = src, out_path
    inputs, expected = runtime.run(runnable_a, seed=1)
    _, got = runtime.run(runnable_b, inputs)
    assert len(got) == len(expected)
    for a, b in zip(expected, got):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=True)


def test_fixture_roundtrip_through_cli(fixture_model, tmp_path):
    out = tmp_path / "out.tflite"
    assert main(["optimize", str(fixture_model), "-o", str(out)]) == 0
    _assert_faithful(fixture_model, out)


def test_corpus_roundtrip_through_cli(mediapipe_model, tmp_path):
    out = tmp_path / "out.tflite"
    assert main(["optimize", str(mediapipe_model), "-o", str(out)]) == 0
    _assert_faithful(mediapipe_model, out)


def test_same_input_gives_identical_bytes(fixture_model, tmp_path):
    a, b = tmp_path / "a.tflite", tmp_path / "b.tflite"
    assert main(["optimize", str(fixture_model), "-o", str(a)]) == 0
    assert main(["optimize", str(fixture_model), "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_input_file_is_never_modified(fixture_model, tmp_path):
    before = fixture_model.read_bytes()
    main(["optimize", str(fixture_model), "-o", str(tmp_path / "o.tflite"), "-p", "cleanup"])
    assert fixture_model.read_bytes() == before


@pytest.mark.parametrize("name", ["convnet_fp32.tflite", "convnet_int8.tflite", "mlp_fp16.tflite"])
def test_external_layout_runs_and_reads_back(name, tmp_path):
    from conftest import MODELS
    src = MODELS / name
    m = tflopt.load(src)
    ext = tmp_path / "ext.tflite"
    m.save(ext, layout="external")
    data = ext.read_bytes()
    # Buffers live after the flatbuffer, 16-byte aligned, with the converter's marker entry.
    m2 = tflopt.load(ext)
    assert m2.get_metadata("buffer_location") == b"outside flatbuffers"
    spans = [b.source_span() for b in m2.buffers if b.source_span() and b.nbytes > 64]
    assert spans and all(start % 16 == 0 for start, _ in spans)
    root = int.from_bytes(data[:4], "little")
    assert all(start > root for start, _ in spans)
    _assert_faithful(src, ext)
    # And back to inline: the marker goes, the model stays the same.
    inline = tmp_path / "inline.tflite"
    m2.save(inline, layout="inline")
    assert tflopt.load(inline).get_metadata("buffer_location") is None
    _assert_faithful(src, inline)


def test_auto_layout_switches_above_the_flatbuffer_limit(monkeypatch, tmp_path):
    from conftest import MODELS
    from tflopt import io
    m = tflopt.load(MODELS / "mlp_fp32.tflite")
    # Pretend the limit is tiny so the automatic switch is exercised on a small model.
    monkeypatch.setattr(io, "FLATBUFFER_MAX", 2**28 + 1024)
    out = tmp_path / "auto.tflite"
    m.save(out)
    assert tflopt.load(out).get_metadata("buffer_location") == b"outside flatbuffers"
    _assert_faithful(MODELS / "mlp_fp32.tflite", out)


def test_load_from_bytes_and_to_bytes_agree(fixture_model):
    m = tflopt.load(fixture_model.read_bytes())
    assert m.to_bytes() == tflopt.load(fixture_model).to_bytes()


def test_edits_copy_on_write_shared_buffer(tmp_path):
    from conftest import MODELS
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    sg = m.main
    weights = [t for t in sg.tensors if t.is_constant and t.type_name == "FLOAT32" and len(t.shape) == 4]
    t = weights[0]
    # Share t's buffer with a clone, then edit the clone only.
    clone = sg.clone_tensor(t.index)
    assert clone.buffer_index == t.buffer_index
    original = t.data.copy()
    clone.set_data(np.zeros_like(original))
    assert clone.buffer_index != t.buffer_index
    assert np.array_equal(t.data, original)
    assert not clone.data.any()


def test_output_gets_the_usual_file_mode(tmp_path):
    # Written through a temp file, but with the mode open() would give (not mkstemp's 0600),
    # and an overwritten file keeps its own mode.
    import os
    from conftest import MODELS
    umask = os.umask(0o022)
    try:
        out = tmp_path / "o.tflite"
        assert main(["optimize", str(MODELS / "mlp_fp32.tflite"), "-o", str(out)]) == 0
        assert out.stat().st_mode & 0o777 == 0o644
        out.chmod(0o640)
        assert main(["optimize", str(MODELS / "mlp_fp32.tflite"), "-o", str(out)]) == 0
        assert out.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)
