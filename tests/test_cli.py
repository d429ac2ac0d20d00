"""The command line: documented JSON keys, one-line errors with exit 2, nothing written."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
import zstandard

from tflopt.cli import main

from conftest import MODELS

MODEL = MODELS / "convnet_fp32.tflite"


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _bad_inputs(tmp_path):
    data = MODEL.read_bytes()
    cases = {}
    cases["missing"] = tmp_path / "missing.tflite"
    (tmp_path / "empty.tflite").write_bytes(b"")
    cases["empty"] = tmp_path / "empty.tflite"
    (tmp_path / "short.tflite").write_bytes(data[:6])
    cases["tiny"] = tmp_path / "short.tflite"
    (tmp_path / "trunc.tflite").write_bytes(data[: len(data) // 3])
    cases["truncated"] = tmp_path / "trunc.tflite"
    (tmp_path / "text.tflite").write_bytes(b"this is not a model at all, just text\n" * 20)
    cases["not tflite"] = tmp_path / "text.tflite"
    (tmp_path / "png.tflite").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    cases["png"] = tmp_path / "png.tflite"
    # Bit flips in the structure: root offset, and the model table's vtable.
    for pos, label in ((2, "flip root offset"), (20, "flip vtable")):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        p = tmp_path / f"flip{pos}.tflite"
        p.write_bytes(bytes(flipped))
        cases[label] = p
    cases["directory"] = tmp_path
    return cases


@pytest.mark.parametrize("command", ["inspect", "size", "optimize", "audit", "compare", "compare-reference"])
def test_bad_input_is_one_line_exit_2_nothing_written(command, tmp_path, capsys):
    for label, path in _bad_inputs(tmp_path).items():
        out = tmp_path / "out" / "o.tflite"
        out.parent.mkdir(exist_ok=True)
        if command == "compare":
            args = ["compare", MODEL, path]
        elif command == "compare-reference":
            args = ["compare", path, MODEL]
        else:
            args = [command, path] + (["-o", out] if command == "optimize" else [])
        before = sorted(p.name for p in out.parent.iterdir())
        rc, stdout, stderr = _run(capsys, *args)
        assert rc == 2, (label, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, (label, stderr)
        assert lines[0].startswith("tflopt: error: ") and str(path.name) in lines[0], (label, lines[0])
        assert "Traceback" not in stderr
        assert sorted(p.name for p in out.parent.iterdir()) == before, label


def test_inspect_survives_odd_but_loadable_tables(tmp_path, capsys):
    # Bit flips the loader accepts: a signature key that is not UTF-8, and a metadata entry
    # pointing at an empty buffer. inspect reports them instead of a traceback.
    import tflopt
    m = tflopt.load(MODEL)
    assert m.signature_defs and m.raw.metadata
    m.raw.signatureDefs[0].signatureKey = b"serving\x9c"
    empty = next(i for i, b in enumerate(m.buffers) if b.nbytes == 0)
    for md in m.raw.metadata:
        md.buffer = empty
    odd = tmp_path / "odd.tflite"
    m.save(odd)
    for args in (["inspect", odd], ["inspect", odd, "--json"], ["size", odd], ["audit", odd]):
        rc, _, err = _run(capsys, *args)
        assert rc == 0, (args, err)


def test_console_script_has_no_traceback_and_exit_2(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"garbage" * 10)
    r = subprocess.run([sys.executable, "-m", "tflopt", "inspect", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "bad.tflite" in r.stderr and "Traceback" not in r.stderr


def test_cli_start_does_not_import_tensorflow():
    code = ("import sys; from tflopt.cli import main; main(['inspect', r'%s']); "
            "print('tensorflow' in sys.modules)") % MODEL
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_usage_errors_exit_2(capsys, tmp_path):
    for args in (["bogus"], ["optimize", MODEL], ["size"], ["optimize", MODEL, "-o", tmp_path / "x.tflite", "-p", "nope"],
                 ["optimize", MODEL, "-o", tmp_path / "x.tflite", "-p", "cleanup(x=1)"],
                 ["optimize", MODEL, "-o", tmp_path / "x.tflite", "-p", "cleanup("]):
        rc, _, err = _run(capsys, *args)
        assert rc == 2 and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "x.tflite").exists()


def test_output_equal_to_input_needs_force(tmp_path, capsys):
    m = tmp_path / "m.tflite"
    m.write_bytes(MODEL.read_bytes())
    rc, _, err = _run(capsys, "optimize", m, "-o", m)
    assert rc == 2 and "--force" in err
    assert m.read_bytes() == MODEL.read_bytes()
    rc, _, _ = _run(capsys, "optimize", m, "-o", m, "--force")
    assert rc == 0
    assert not [p for p in tmp_path.iterdir() if p.name != "m.tflite"]  # no temp files left


def test_help_for_every_command(capsys):
    for cmd in ([], ["inspect"], ["size"], ["optimize"], ["passes"]):
        rc, out, _ = _run(capsys, *cmd, "--help")
        assert rc == 0 and "Usage:" in out


def test_size_json_matches_independent_compressors(capsys):
    rc, out, _ = _run(capsys, "size", MODEL, "--json", "--gzip-level", "9", "--zstd-level", "19")
    assert rc == 0
    d = json.loads(out)
    data = MODEL.read_bytes()
    assert d["raw_bytes"] == len(data)
    assert (d["gzip_level"], d["zstd_level"]) == (9, 19)
    assert d["gzip_bytes"] == len(gzip.compress(data, compresslevel=9))
    assert d["zstd_bytes"] == len(zstandard.ZstdCompressor(level=19).compress(data))
    # The defaults: gzip's and zstd's own levels, zstd streamed with the size announced.
    rc, out, _ = _run(capsys, "size", MODEL, "--json")
    d = json.loads(out)
    z = zstandard.ZstdCompressor(level=3).compressobj(size=len(data))
    assert (d["gzip_level"], d["zstd_level"]) == (6, 3)
    assert d["gzip_bytes"] == len(gzip.compress(data, compresslevel=6))
    assert d["zstd_bytes"] == len(z.compress(data) + z.flush())
    names = {t["name"] for t in d["tensors"]}
    assert len(names) == len(d["tensors"]) > 3
    for t in d["tensors"]:
        assert set(t) >= {"name", "dtype", "elements", "bytes", "unique_values", "zero_fraction"}
        assert 0 <= t["zero_fraction"] <= 1 and 1 <= t["unique_values"] <= t["elements"]


def test_size_of_two_models_gives_deltas(capsys):
    other = MODELS / "convnet_int8.tflite"
    rc, out, _ = _run(capsys, "size", MODEL, other, "--json")
    d = json.loads(out)
    assert d["delta"]["raw_bytes"]["before"] == MODEL.stat().st_size
    assert d["delta"]["raw_bytes"]["after"] == other.stat().st_size
    assert d["delta"]["raw_bytes"]["delta"] == other.stat().st_size - MODEL.stat().st_size
    rc, out, _ = _run(capsys, "size", MODEL, other)
    assert rc == 0 and "->" in out and "%" in out


def test_inspect_json_keys(capsys):
    rc, out, _ = _run(capsys, "inspect", MODEL, "--json")
    d = json.loads(out)
    assert {"path", "file_bytes", "schema_version", "min_runtime_version", "metadata", "signatures",
            "operator_codes", "op_counts", "constant_bytes", "parameters", "subgraphs"} <= set(d)
    assert d["op_counts"].get("CONV_2D", 0) >= 1
    sg = d["subgraphs"][0]
    assert sg["inputs"][0]["dtype"] == "FLOAT32" and sg["ops"][0]["op"]


def test_optimize_json_report(tmp_path, capsys):
    out = tmp_path / "o.tflite"
    rc, stdout, _ = _run(capsys, "optimize", MODEL, "-o", out, "-p", "cleanup", "--json", "--sizes")
    assert rc == 0
    d = json.loads(stdout)
    assert d["passes"][0]["name"] == "cleanup" and "seconds" in d["passes"][0]
    assert d["size"]["after"]["raw_bytes"] == out.stat().st_size
    assert {"gzip_bytes", "zstd_bytes"} <= set(d["size"]["before"])
