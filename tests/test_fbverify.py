"""The runtime's flatbuffer verifier in Python (tflopt/fbverify.py), on load and on write, and
``optimize --check`` (tflopt/check.py)."""
from __future__ import annotations

import struct

import pytest
from ai_edge_litert.interpreter import Interpreter
from conftest import FIXTURES, MODELS, ROOT, fixture_paths, load_module

import tflopt
from tflopt import io as tio
from tflopt.check import save_checked
from tflopt.cli import main
from tflopt.errors import ModelFormatError, WriteCheckError
from tflopt.fbverify import FlatbufferError, verify
from tflopt.schema import fb

MLP = MODELS / "mlp_fp32.tflite"


def _runtime_refuses(data: bytes) -> bool:
    try:
        Interpreter(model_content=data)
    except (ValueError, RuntimeError) as e:
        return "flatbuffer" in str(e).lower()
    return False


def _vectors(data: bytes) -> list[tuple[int, int, int]]:
    found: list = []
    verify(data, collect=found)
    return found


def _string_positions(data: bytes) -> list[int]:
    """Positions of strings (tensor names): 1-byte vectors whose terminator is a 0."""
    return [p for p, n, w in _vectors(data) if w == 1 and n and data[p + 4 + n] == 0
            and data[p + 4:p + 4 + n].isascii()]


def test_schema_file_matches_installed_schema():
    gen = load_module(FIXTURES / "gen_fbschema.py")
    assert gen.build(fb) == (ROOT / "tflopt" / "fbschema.py").read_text(), \
        "the schema changed: run python fixtures/gen_fbschema.py"


@pytest.mark.parametrize("path", fixture_paths(), ids=lambda p: p.name)
def test_every_fixture_passes(path):
    verify(path.read_bytes())


@pytest.mark.real
def test_every_corpus_model_passes(mediapipe_models):
    for p in mediapipe_models:
        verify(p.read_bytes())


def _corruptions(data: bytes) -> dict[str, bytes]:
    d = bytearray(data)
    out = {}
    pos = _string_positions(data)[0]
    n = struct.unpack_from("<I", data, pos)[0]
    s = bytearray(d)
    s[pos + 4 + n] = ord("A")               # string without its 0 terminator
    out["unterminated string"] = bytes(s)
    vec = next(v for v in _vectors(data) if v[2] == 4 and v[1] > 0)
    v = bytearray(d)
    struct.pack_into("<I", v, vec[0], (len(data) - vec[0]) // 4)  # elements run past the end
    out["vector past the end"] = bytes(v)
    r = bytearray(d)
    struct.pack_into("<I", r, 0, struct.unpack_from("<I", data, 0)[0] + 2)  # misaligned root
    out["misaligned root"] = bytes(r)
    root = struct.unpack_from("<I", data, 0)[0]
    vt = root - struct.unpack_from("<i", data, root)[0]
    o = bytearray(d)
    struct.pack_into("<H", o, vt, struct.unpack_from("<H", data, vt)[0] + 1)  # odd vtable size
    out["odd vtable size"] = bytes(o)
    i = bytearray(d)
    i[4] ^= 0x10  # "DFL3": the verifier checks the file identifier too (the long fuzz run)
    out["file identifier"] = bytes(i)
    return out


def test_rejects_what_the_runtime_rejects():
    data = MLP.read_bytes()
    for what, bad in _corruptions(data).items():
        assert _runtime_refuses(bad), what
        with pytest.raises(FlatbufferError):
            verify(bad)


def test_load_refuses_an_unterminated_string_the_old_reader_accepted(tmp_path, capsys):
    """Issue 10 item 6: the Python readers accept a string without its terminator, the
    runtime's verifier does not; tflopt used to rewrite such a file with exit 0."""
    bad = _corruptions(MLP.read_bytes())["unterminated string"]
    src = tmp_path / "bad.tflite"
    src.write_bytes(bad)
    out = tmp_path / "out.tflite"
    assert main(["optimize", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runtime would refuse" in err[0] and str(src) in err[0]
    assert not out.exists()
    with pytest.raises(ModelFormatError):
        tflopt.load(bad)


def test_save_refuses_bytes_the_verifier_rejects(tmp_path, monkeypatch):
    model = tflopt.load(MLP)
    out = tmp_path / "out.tflite"
    out.write_bytes(b"previous")
    real_write = tio._write

    def broken(m, f, layout):
        sink = tio._Sink()
        real_write(m, sink, layout)
        data = bytearray(b"".join(sink.parts))
        data[0] |= 2  # a misaligned root offset: a writer bug the verifier must catch
        f.write(bytes(data))
    monkeypatch.setattr(tio, "_write", broken)
    with pytest.raises(WriteCheckError, match="flatbuffer verifier"):
        model.save(out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tflite"]


def test_optimize_check_runs_the_output(tmp_path, capsys):
    out = tmp_path / "o.tflite"
    assert main(["optimize", str(MODELS / "convnet_fp32.tflite"), "-o", str(out), "--check",
                 "-p", "quantize(mode=float16)"]) == 0
    assert "check: the output loads, allocates and runs" in capsys.readouterr().out
    Interpreter(model_path=str(out)).allocate_tensors()


def test_check_refuses_an_output_the_interpreter_cannot_allocate(tmp_path):
    model = tflopt.load(MLP)
    fcs = [op for op in model.main.operators if op.name == "FULLY_CONNECTED"]
    # Another layer's kernel: a sound flatbuffer whose shapes no longer chain.
    fcs[0].raw.inputs[1] = fcs[1].raw.inputs[1]
    out = tmp_path / "o.tflite"
    with pytest.raises(WriteCheckError, match="--check: the interpreter fails at allocate"):
        save_checked(model, out, input_path=MLP)
    assert not out.exists() and not list(tmp_path.iterdir())
