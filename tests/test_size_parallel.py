"""The size figures' compressors (issue 15): gzip deflated on every core is still one gzip
stream of the file, a figure within 0.5% of ``gzip.compress`` at the same level, the same
bytes however the input is cut and whatever the thread count; memory stays a few blocks;
large inputs get the documented default levels."""
from __future__ import annotations

import gzip
import json
import tracemalloc

import numpy as np
import pytest
import zstandard

from conftest import MODELS, fixture_paths
from tflopt import parallel_gzip, size
from tflopt.cli import main
from tflopt.parallel_gzip import ParallelGzip, gzip_length
from tflopt.size import CompressedSizes, default_levels, file_sizes

TOLERANCE = 0.005


def _stream(data: bytes, level: int, *, cut: int = 1 << 30, threads: int | None = None) -> bytes:
    parts: list[bytes] = []
    gz = ParallelGzip(parts.append, level, threads=threads)
    for lo in range(0, len(data), cut):
        gz.write(memoryview(data)[lo:lo + cut])
    n = gz.close()
    out = b"".join(parts)
    assert n == len(out)
    return out


def _fixture_bytes() -> bytes:
    # Every committed fixture model back to back: real weights and tables, several blocks
    # once the block is made small.
    return b"".join(p.read_bytes() for p in fixture_paths())


@pytest.mark.parametrize("level", [1, 6, 9])
def test_many_blocks_make_one_gzip_stream_of_the_file(level, monkeypatch):
    monkeypatch.setattr(parallel_gzip, "BLOCK", 64 << 10)
    data = _fixture_bytes()
    assert len(data) > 16 * parallel_gzip.BLOCK
    out = _stream(data, level, cut=50_000)
    assert gzip.decompress(out) == data
    ref = len(gzip.compress(data, level, mtime=0))
    assert abs(len(out) / ref - 1) < TOLERANCE, (len(out), ref)
    # The same bytes however the input is cut and on however many threads.
    assert _stream(data, level, cut=7_777, threads=1) == out
    assert _stream(data, level, threads=3) == out


@pytest.mark.parametrize("path", fixture_paths("*_fp32.tflite")[:4], ids=lambda p: p.stem)
def test_one_block_is_exactly_gzip_compress(path):
    data = path.read_bytes()
    assert len(data) <= parallel_gzip.BLOCK
    for level in (1, 6, 9):
        assert _stream(data, level, cut=1000) == gzip.compress(data, level, mtime=0)
    assert _stream(b"", 6) == gzip.compress(b"", 6, mtime=0)


def test_blocks_in_flight_are_bounded(monkeypatch):
    # 32 MB of float32 weights in 1 MB writes: Python-level memory stays a few blocks per
    # thread (~13 MB here, whatever the input's size; holding the input and its compressed
    # copy would be ~62 MB), and the figure is gzip's.
    data = np.random.default_rng(0).standard_normal(8 << 20).astype(np.float32).tobytes()
    tracemalloc.start()
    try:
        gz = ParallelGzip(None, 1, threads=2)
        for lo in range(0, len(data), 1 << 20):
            gz.write(data[lo:lo + (1 << 20)])
        n = gz.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * parallel_gzip.BLOCK, peak
    assert abs(n / len(gzip.compress(data, 1, mtime=0)) - 1) < TOLERANCE


def test_sizes_sink_and_helpers_agree():
    path = MODELS / "convnet_fp32.tflite"
    data = path.read_bytes()
    sink = CompressedSizes(6, 3, size=len(data))
    for lo in range(0, len(data), 4096):
        sink.write(data[lo:lo + 4096])
    r = sink.result()
    assert r == file_sizes(path, gzip_level=6, zstd_level=3)
    assert r["gzip_bytes"] == size.gzip_size(data, 6) == gzip_length(data, 6) == len(gzip.compress(data, 6, mtime=0))
    assert r["zstd_bytes"] == size.zstd_size(data, 3)
    z = zstandard.ZstdDecompressor()
    assert z.decompress(size.zstd_compressor(3).compress(data)) == data
    assert size.zstd_compressor(3).compress(data) == zstandard.ZstdCompressor(level=3).compress(data)
    # From level 10, multi-threaded zstd: the same frame on any thread count, near the
    # single-threaded one.
    slow = size.zstd_compressor(12).compress(data)
    for threads in (1, 3):
        assert zstandard.ZstdCompressor(level=12, threads=threads).compress(data) == slow
    assert abs(len(slow) / len(zstandard.ZstdCompressor(level=12).compress(data)) - 1) < TOLERANCE


def test_default_levels_rule():
    assert default_levels(size.LARGE_INPUT) == (6, 3)
    assert default_levels(size.LARGE_INPUT + 1) == (1, 3)
    assert default_levels(size.LARGE_INPUT + 1, 9, 19) == (9, 19)
    assert default_levels(10, None, 19) == (6, 19)


def test_size_command_uses_one_level_for_both_files(monkeypatch, capsys):
    small, big = MODELS / "mlp_int8.tflite", MODELS / "convnet_fp32.tflite"
    # Pretend "large" means over the smaller file: the larger file decides for both.
    monkeypatch.setattr(size, "LARGE_INPUT", small.stat().st_size)
    assert main(["size", str(small), str(big), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for r, path in ((d, small), (d["other"], big)):
        assert (r["gzip_level"], r["zstd_level"]) == (1, 3)
        assert r["gzip_bytes"] == len(gzip.compress(path.read_bytes(), 1, mtime=0))
    assert main(["size", str(small), "--json", "--gzip-level", "9"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["gzip_level"] == 9 and d["gzip_bytes"] == len(gzip.compress(small.read_bytes(), 9, mtime=0))


def test_corpus_figures_within_tolerance(mediapipe_models):
    many = 0
    for path in mediapipe_models:
        data = path.read_bytes()
        out = _stream(data, 6, cut=1 << 20)
        assert gzip.decompress(out) == data
        assert abs(len(out) / len(gzip.compress(data, 6, mtime=0)) - 1) < TOLERANCE, path.name
        r = file_sizes(path)
        assert r["gzip_bytes"] == len(out) and r["raw_bytes"] == len(data)
        assert zstandard.ZstdDecompressor().decompress(size.zstd_compressor(3).compress(data)) == data
        many += len(data) > parallel_gzip.BLOCK
    assert many >= 5
