"""Large models in bounded memory (issue 15): sizes without serialising, weights computed
while writing. Checked on the small fixtures: byte-identical to the eager path, and the
written models load and run with outputs close to the float model's."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
import zstandard

from conftest import MODELS
from tflopt import deferred, io, runtime
from tflopt.model import Model
from tflopt.pipeline import run_pipeline
from tflopt.size import CompressedSizes, file_sizes, model_sizes

FIXTURES = ["mlp_fp32", "convnet_fp32", "lstm_fp32", "attention_fp32", "convnet_int8", "mlp_fp16"]
WEIGHT_SPECS = ["quantize(mode=float16)", "quantize(mode=dynamic)", "quantize(mode=dynamic,per_channel=false)",
                "quantize(mode=dynamic,min_elements=0)", "quantize(mode=float16),quantize(mode=dynamic)"]


@pytest.mark.parametrize("name", FIXTURES)
def test_serialized_size_is_the_written_length(name):
    m = io.load(MODELS / f"{name}.tflite")
    run_pipeline(m, "quantize(mode=dynamic)", measure=False)
    for layout in ("auto", "inline", "external"):
        assert m.serialized_size(layout=layout) == len(m.to_bytes(layout=layout))


def _no_serialising(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("to_bytes called")
    monkeypatch.setattr(Model, "to_bytes", refuse)
    monkeypatch.setattr(io, "serialize", refuse)


def test_pass_manager_counts_bytes_without_serialising(monkeypatch):
    rewritten = len(io.load(MODELS / "convnet_fp32.tflite").to_bytes())
    m = io.load(MODELS / "convnet_fp32.tflite")
    with monkeypatch.context() as mp:
        _no_serialising(mp)
        report = run_pipeline(m, "prune(sparsity=0.5),quantize(mode=dynamic)")
    rec = report.passes
    assert rec[0].bytes_before == rewritten
    assert rec[-1].bytes_after == len(m.to_bytes()) < rec[0].bytes_before
    assert rec[0].stats["size"]["after"]["raw"] == rec[1].bytes_before  # prune's own figures, streamed


def test_size_command_streams_the_file(monkeypatch, tmp_path, capsys):
    from pathlib import Path

    from tflopt.cli import main
    path = MODELS / "convnet_fp32.tflite"
    data = path.read_bytes()
    _no_serialising(monkeypatch)
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(AssertionError("read whole")))
    assert main(["size", str(path), "--json", "--gzip-level", "9", "--zstd-level", "19"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["gzip_bytes"] == len(gzip.compress(data, compresslevel=9, mtime=0))
    assert d["zstd_bytes"] == len(zstandard.ZstdCompressor(level=19).compress(data))


def test_streamed_sizes_equal_whole_compression():
    path = MODELS / "convnet_fp32.tflite"
    data = path.read_bytes()
    r = file_sizes(path, gzip_level=6, zstd_level=19)
    assert (r["raw_bytes"], r["gzip_bytes"]) == (len(data), len(gzip.compress(data, 6, mtime=0)))
    assert r["zstd_bytes"] == len(zstandard.ZstdCompressor(level=19).compress(data))
    # A model is streamed through the writer: the same figures as its serialised bytes.
    m = io.load(path)
    run_pipeline(m, "quantize(mode=float16)", measure=False)
    out = m.to_bytes()
    z = zstandard.ZstdCompressor(level=3).compressobj(size=len(out))
    s = model_sizes(m, gzip_level=1)
    assert s["raw_bytes"] == len(out)
    assert s["gzip_bytes"] == len(zlib.compress(out, 1, wbits=31))
    assert s["zstd_bytes"] == len(z.compress(out) + z.flush())
    # Chunking does not change the figures.
    sink = CompressedSizes(1, 3, size=len(out))
    for lo in range(0, len(out), 1000):
        sink.write(out[lo:lo + 1000])
    assert sink.result() == s


def _eager(name: str, spec: str, monkeypatch) -> bytes:
    with monkeypatch.context() as mp:
        mp.setattr(deferred, "deferrable", lambda t: False)  # the whole-array path
        m = io.load(MODELS / f"{name}.tflite")
        run_pipeline(m, spec, measure=False)
        return m.to_bytes()


@pytest.mark.parametrize("spec", WEIGHT_SPECS)
@pytest.mark.parametrize("name", FIXTURES)
def test_weights_written_by_blocks_are_byte_identical(name, spec, monkeypatch, tmp_path):
    monkeypatch.setattr(deferred, "BLOCK_BYTES", 1000)  # many blocks even on small weights
    m = io.load(MODELS / f"{name}.tflite")
    run_pipeline(m, spec)
    out = tmp_path / "out.tflite"
    m.save(out)
    assert out.read_bytes() == m.to_bytes() == _eager(name, spec, monkeypatch)
    for layout in ("external",):  # the >2 GB layout writes the same tensors
        ext = io.load(m.to_bytes(layout=layout))
        assert [b.memoryview().tobytes() for b in ext.buffers[:-1]] == \
               [b.memoryview().tobytes() for b in m.buffers]


def test_deferred_weights_are_computed_when_written_and_not_kept(tmp_path):
    m = io.load(MODELS / "mlp_fp32.tflite")
    run_pipeline(m, "quantize(mode=dynamic)")
    pending = [b for b in m.buffers if b._make is not None]
    assert pending  # the int8 weights wait for the writer
    m.save(tmp_path / "a.tflite")
    assert all(b._array is None for b in pending)  # computed for the write, then dropped
    assert m.to_bytes() == (tmp_path / "a.tflite").read_bytes()


@pytest.mark.parametrize("spec", ["quantize(mode=float16)", "quantize(mode=dynamic)"])
def test_outputs_run_close_to_float(spec, tmp_path):
    src = MODELS / "convnet_fp32.tflite"
    m = io.load(src)
    run_pipeline(m, spec)
    m.save(tmp_path / "q.tflite")
    inputs, ref = runtime.run(src)
    _, got = runtime.run(tmp_path / "q.tflite", inputs)
    for a, b in zip(ref, got):
        cos = float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert cos > 0.99


def test_bench_scale_runs_the_small_model(tmp_path):
    """The benchmark's own commands on a small model built here (no TensorFlow): it prints a
    row per work with a time and a peak."""
    from conftest import ROOT, load_module
    bench = load_module(ROOT / "benchmarks" / "bench_scale.py")
    rows = []
    for work in ("roundtrip", "float16", "dynamic", "size", "prune", "cluster"):
        cmds = bench.commands(work, MODELS / "mlp_fp32.tflite", tmp_path / "o.tflite")
        sec, peak = bench.child(cmds["tflopt"])
        rows.append(bench.format_row({"model": "mlp_fp32", "file_mb": 0.1, "work": work, "tflopt": (sec, peak)}))
    assert all(r.count("|") == 10 and " s | " in r for r in rows)


def test_unique_counts_by_histogram_and_limit(monkeypatch):
    from tflopt import size
    from tflopt.distinct import distinct_count
    rng = np.random.default_rng(0)
    h = rng.integers(0, 40, 5000).astype(np.float16) / np.float16(7)
    h[:3] = [np.float16(0.0), np.float16(-0.0), np.float16(np.nan)]
    h[3:6] = np.array([0x7E01, 0xFE00, 0x7C01], np.uint16).view(np.float16)  # NaNs of other payloads
    for a in (h, rng.integers(-128, 128, 999).astype(np.int8), rng.integers(0, 9, 999).astype(np.uint8),
              rng.integers(-300, 300, 999).astype(np.int16)):
        assert size._unique_count(a, False) == distinct_count(a)
    w = rng.standard_normal(100).astype(np.float32)
    monkeypatch.setattr(size, "UNIQUE_SORT_LIMIT", 50)
    assert size._unique_count(w, False) is None and size._unique_count(w, True) == distinct_count(w) == 100
    rows = size.tensor_table(io.load(MODELS / "mlp_fp32.tflite"))
    assert any(r.unique_values is None for r in rows) and all(r.unique_values is None or r.unique_values > 0 for r in rows)


# -- prune / cluster / sparsify one weight at a time ------------------------------------------
SLOT_SPECS = ["prune(sparsity=0.5)", "prune(sparsity=0.6,pattern=block,min_elements=0)",
              "cluster(clusters=8,per_channel=true)", "prune(sparsity=0.7),cluster(clusters=8),sparsify"]


def _run(name: str, spec: str, spill_bytes: int, monkeypatch) -> io.Model:
    with monkeypatch.context() as mp:
        mp.setattr(deferred, "SPILL_BYTES", spill_bytes)
        m = io.load(MODELS / f"{name}.tflite")
        run_pipeline(m, spec, measure=False)
        return m


@pytest.mark.parametrize("spec", SLOT_SPECS)
@pytest.mark.parametrize("name", ["mlp_fp32", "convnet_fp32", "convnet_int8", "mlp_fp16"])
def test_weights_parked_in_a_file_are_byte_identical(name, spec, monkeypatch, tmp_path):
    import mmap
    kept = _run(name, spec, 2**62, monkeypatch).to_bytes()   # every rewritten weight in memory
    m = _run(name, spec, 1, monkeypatch)                       # every one parked in the spill file
    parked = [b for b in m.buffers if isinstance(b._source, mmap.mmap) and b._source is not m._source]
    assert parked and all(b._array is None for b in parked)
    m.save(tmp_path / "out.tflite")
    assert (tmp_path / "out.tflite").read_bytes() == kept
    inputs, ref = runtime.run(MODELS / f"{name}.tflite")
    _, got = runtime.run(tmp_path / "out.tflite", inputs)
    for a, b in zip(ref, got):
        assert a.shape == b.shape and np.all(np.isfinite(b))


def test_smallest_k_picks_what_a_stable_sort_picks():
    from passes.prune import smallest_k
    rng = np.random.default_rng(0)
    for trial in range(40):
        x = np.round(rng.normal(size=(7, 13)), 1).astype(np.float32)   # many ties
        if trial % 3 == 0:
            x.flat[rng.choice(x.size, 9, replace=False)] = np.nan
        for k in (0, 1, 5, 40, 80, 85, x.size - 1, x.size, x.size + 3):
            want = np.zeros(x.size, bool)
            want[np.argsort(x.ravel(), kind="stable")[:k]] = True
            assert np.array_equal(smallest_k(x, k), want.reshape(x.shape)), (trial, k)


def test_pruned_masks_are_packed_and_read_back():
    import pickle

    from tflopt.weights import PackedMasks, pruned_masks
    rng = np.random.default_rng(1)
    masks = {f"0/w{i}": rng.random(shape) < 0.5 for i, shape in enumerate([(3, 5), (17,), (2, 3, 4, 5), ()])}
    facts = {"pruned_masks": dict(masks)}
    packed = pruned_masks(facts)
    assert isinstance(facts["pruned_masks"], PackedMasks) and pruned_masks(facts) is packed
    back = pickle.loads(pickle.dumps(packed))
    for k, v in masks.items():
        assert packed[k].dtype == bool and np.array_equal(packed[k], v) and np.array_equal(back[k], v)
    assert sorted(packed) == sorted(masks) and len(packed) == 4
