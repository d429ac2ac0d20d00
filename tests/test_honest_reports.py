"""Reports that mislead (issue 10): each item has a test that failed before the fix."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import DATA, MODELS, ROOT
from tflopt.cli import main

PLOT = ["-p", "prune(sparsity=0.5,sizes=false)", "--max-tensors", "1"]


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_plot_never_overwrites_the_model_and_fails_in_one_line(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    shutil.copy(MODELS / "mlp_fp32.tflite", model)
    before = model.read_bytes()
    rc, _, err = _run(capsys, "plot", model, "-o", model, *PLOT)
    assert rc == 2 and "input model" in err and model.read_bytes() == before
    rc, _, err = _run(capsys, "plot", model, "-o", tmp_path / "missing" / "p.png", *PLOT)
    assert rc == 2 and err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err
    rc, _, err = _run(capsys, "plot", model, "-o", tmp_path / "p.jpg", *PLOT)
    assert rc == 2 and ".pdf" in err


@pytest.mark.parametrize("suffix,magic", [(".pdf", b"%PDF-"), (".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_plot_writes_the_format_its_name_says(tmp_path, capsys, suffix, magic):
    out = tmp_path / f"p{suffix}"
    rc, _, _ = _run(capsys, "plot", MODELS / "mlp_fp32.tflite", "-o", out, *PLOT)
    assert rc == 0 and out.read_bytes().startswith(magic)
    if suffix == ".svg":
        assert b"<svg" in out.read_bytes()[:2000]


def test_force_over_the_input_measures_before_first(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    shutil.copy(MODELS / "convnet_fp32.tflite", model)
    size = model.stat().st_size
    rc, out, _ = _run(capsys, "optimize", model, "-o", model, "--force", "-p", "quantize(mode=float16)", "--sizes",
                      "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["size"]["before"]["raw_bytes"] == size
    assert doc["size"]["after"]["raw_bytes"] == model.stat().st_size < size * 0.6
    assert doc["size"]["before"]["gzip_bytes"] > doc["size"]["after"]["gzip_bytes"]


def test_rows_chain_from_the_file_size_and_growth_reads_as_growth(tmp_path, capsys):
    model = MODELS / "convnet_int8.tflite"
    rc, out, _ = _run(capsys, "optimize", model, "-o", tmp_path / "o.tflite", "-p", "dequantize(what=all)")
    assert rc == 0
    size = model.stat().st_size
    numbers = [int(x.replace(",", "")) for x in re.findall(r"([\d,]+) ->", out)]
    assert numbers[0] == size  # the first row starts at the file's size, as the raw line does
    raw = next(line for line in out.splitlines() if line.strip().startswith("raw:"))
    assert raw.split(":", 1)[1].strip().startswith(f"{size:,} ->")
    assert "% larger)" in raw and "-" not in raw.split("(")[1]


@pytest.mark.parametrize("pipeline,expect", [
    ("prune(ops=CONV2D)", "did you mean 'CONV_2D'?"),
    ("quantize(mode=dynamic,skip_ops=FULY_CONNECTED)", "did you mean 'FULLY_CONNECTED'?"),
    ("prnue(sparsity=0.5)", "did you mean 'prune'?"),
    ("cluster(clustrs=8)", "did you mean 'clusters'?"),
])
def test_typos_are_errors_with_a_suggestion(tmp_path, capsys, pipeline, expect):
    out = tmp_path / "o.tflite"
    rc, _, err = _run(capsys, "optimize", MODELS / "mlp_fp32.tflite", "-o", out, "-p", pipeline)
    assert rc == 2 and expect in err and not out.exists()


def test_audit_cites_public_docs_not_internal_notes(capsys):
    for model in ("attention_fp32.tflite", "convnet_int8.tflite", "gru_fp32.tflite"):
        rc, out, _ = _run(capsys, "audit", MODELS / model, "-t", "edgetpu,hexagon,gpu,xnnpack", "--json")
        assert rc == 0 and "delegates.md" not in out and "https://" in out
        rc, out, _ = _run(capsys, "audit", MODELS / model, "--markdown")
        assert rc == 0 and "delegates.md" not in out


def test_readme_python_example_runs_from_the_repository_root(tmp_path):
    text = (ROOT / "README.md").read_text()
    example = text.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    example = example.replace('"model.tflite"', '"fixtures/models/mlp_fp32.tflite"').replace(
        '"out.tflite"', repr(str(tmp_path / "out.tflite")))
    # As a regular (non-editable) install sees a checkout: the root's tflopt/ comes first and
    # no editable finder maps tflopt.passes.
    prelude = ("import sys\nsys.meta_path[:] = [m for m in sys.meta_path if 'editable' not in repr(m).lower()]\n"
               "sys.path.insert(0, '')\n")
    proc = subprocess.run([sys.executable, "-c", prelude + example], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert (tmp_path / "out.tflite").stat().st_size > 1000


def test_calibration_and_compare_take_the_same_multi_array_npz(tmp_path, capsys):
    # digits.npz holds x_train, x_calib, x_test and labels: both commands pick x_test.
    out = tmp_path / "o.tflite"
    rc, text, _ = _run(capsys, "optimize", MODELS / "convnet_fp32.tflite", "-o", out, "-p", "quantize(mode=int8)",
                       "--calibration", DATA / "digits.npz")
    assert rc == 0 and out.exists()
    rc, text, _ = _run(capsys, "compare", MODELS / "convnet_fp32.tflite", out, "--data", DATA / "digits.npz")
    assert rc == 0 and text.startswith("360 samples")
