"""Reports: the README main job's HTML report renders in headless Chromium with its plots and
tables; Markdown from the same data; the SVG fallback; size on the largest corpus model."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest

from conftest import DATA, MODELS, ROOT
from tflopt.cli import main
from tflopt.reports import render_html, render_markdown

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _readme_optimize_args(tmp_path) -> list[str]:
    """The README main job's optimize command, writing into tmp_path."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- ci:main -->", 1)[1].split("```", 2)[1]
    cmd = next(part for part in block.split("&&") if "tflopt optimize" in part)
    args = shlex.split(cmd)[2:]
    args[args.index("-o") + 1] = str(tmp_path / "opt.tflite")
    args[args.index("--report") + 1] = str(tmp_path / "report.html")
    return ["optimize", *args]


@pytest.fixture(scope="module")
def readme_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    assert main(_readme_optimize_args(tmp)) == 0
    return tmp / "report.html"


def test_readme_report_renders_in_headless_chromium(readme_report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed: run .ci/setup-chromium"
    html = readme_report.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: nothing fetched
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           readme_report.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0 and "<h1>tflopt optimize</h1>" in dom
    images = re.findall(r"<img src=\"data:image/png;base64,[A-Za-z0-9+/=]{200,}\"", dom)
    assert len(images) >= 4  # per-layer curves and the density rows
    for title in ("Pipeline", "Sizes", "Fidelity and accuracy per output", "Per-layer error",
                  "Weight density of the largest tensors", "Latency on this host (LiteRT runtime)"):
        assert f"<h2>{title}</h2>" in dom
    assert dom.count("<table>") >= 5 and "candidate top-1" in dom and "xnnpack" in dom


def test_markdown_from_the_same_data_and_svg_fallback(tmp_path, capsys):
    report = tmp_path / "c.md"
    assert main(["compare", str(MODELS / "convnet_fp32.tflite"), str(MODELS / "convnet_int8.tflite"), "--data",
                 str(DATA / "digits.npz"), "--labels", "y_test", "--per-layer", "--report", str(report)]) == 0
    md = report.read_text()
    assert md.startswith("# tflopt compare") and "| output | cosine |" in md and "## Per-layer error" in md
    from tflopt.reports.build import compare_report
    from tflopt.evaluation import compare_models
    result = compare_models(MODELS / "convnet_fp32.tflite", MODELS / "convnet_int8.tflite", DATA / "digits.npz",
                            per_layer=True, samples=4)
    data = compare_report("a", "b", result)
    svg = render_html(data, images="svg")
    assert "<svg" in svg and "<polyline" in svg and "data:image/png" not in svg
    assert render_markdown(data).count("|---|") >= 2


def test_report_paths_are_checked_first(tmp_path, capsys):
    out = tmp_path / "o.tflite"
    for bad in (tmp_path / "r.txt", tmp_path / "missing" / "r.html"):
        assert main(["optimize", str(MODELS / "mlp_fp32.tflite"), "-o", str(out), "--report", str(bad)]) == 2
        assert not out.exists()
    assert capsys.readouterr().err.count("\n") == 2


@pytest.mark.real
def test_report_of_the_largest_corpus_model_is_under_2mb(mediapipe_models, tmp_path):
    largest = max(mediapipe_models, key=lambda p: p.stat().st_size)
    report = tmp_path / "r.html"
    assert main(["optimize", str(largest), "-o", str(tmp_path / "o.tflite"), "-p", "quantize(mode=float16)",
                 "--report", str(report)]) == 0
    assert report.stat().st_size < 2 * 2**20 and "<img" in report.read_text()


def test_every_pass_says_what_it_did_in_words(tmp_path, capsys):
    spec = ("prune(sparsity=0.5,min_elements=0),cluster(clusters=8,min_elements=0),sparsify(min_sparsity=0.3),"
            "quantize(mode=int8),audit(targets=gpu|xnnpack),cleanup")
    assert main(["optimize", str(MODELS / "convnet_fp32.tflite"), "-o", str(tmp_path / "o.tflite"), "-p", spec,
                 "--calibration", str(DATA / "convnet_calib.npz")]) == 0
    out = capsys.readouterr().out
    for words in ("pruned 5 of 5 weight tensors to 50.0%", "distinct values per tensor (asked 8)",
                  "tensors in the sparse format", "int8: ", "ops quantized", "XNNPACK", "ops accelerated", "removed "):
        assert words in out, words


def test_sensitivity_report_ranks_in_a_bar_plot(tmp_path, capsys):
    """``tflopt sensitivity --report``: the ranked bar plot and table render in headless
    Chromium; the SVG fallback draws one labelled bar per island, rank 1 (the fragile
    sigmoid head) longest."""
    import numpy as np

    from tflopt.build import sigmoid_head_mlp
    from tflopt.reports import sensitivity_report
    model = tmp_path / "fragile.tflite"
    model.write_bytes(sigmoid_head_mlp([16, 32, 32, 4]).to_bytes())
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", input=rng.standard_normal((24, 1, 16)).astype(np.float32))
    np.savez(tmp_path / "ev.npz", input=rng.standard_normal((8, 1, 16)).astype(np.float32))
    report = tmp_path / "sens.html"
    assert main(["sensitivity", str(model), "--calibration", str(tmp_path / "cal.npz"), "--data",
                 str(tmp_path / "ev.npz"), "--report", str(report), "--json"]) == 0
    import json
    result = json.loads(capsys.readouterr().out)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed: run .ci/setup-chromium"
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           report.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0 and "<h1>tflopt sensitivity</h1>" in dom
    assert "<h2>Quantization sensitivity</h2>" in dom and "only int8: min cosine" in dom
    assert re.search(r"<img src=\"data:image/png;base64,[A-Za-z0-9+/=]{200,}\"", dom)
    svg = render_html(sensitivity_report(result), images="svg")
    bars = re.findall(r'<text x="[\d.]+" y="[\d.]+" text-anchor="end" font-size="10">([^<]*)</text>'
                      r'<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"', svg)
    assert [label.split(".")[0] for label, _ in bars] == [str(r["rank"]) for r in result["ranked"]]
    assert "LOGISTIC" in bars[0][0] and float(bars[0][1]) == max(float(w) for _, w in bars) > 0
    assert "data:image/png" not in svg
    md = render_markdown(sensitivity_report(result))
    assert "## Quantization sensitivity" in md and "| rank | island |" in md
    assert main(["sensitivity", str(model), "--calibration", str(tmp_path / "cal.npz"),
                 "--report", str(tmp_path / "r.txt")]) == 2
    assert not (tmp_path / "r.txt").exists()


def test_optimize_report_draws_the_ranking_mixed_precision_keeps(tmp_path, capsys):
    """An optimize run whose mixed-precision stats carry a sensitivity ranking
    (``tflopt.sensitivity.ranking`` of its trials) gets the ranked plot and table."""
    import json

    import numpy as np

    from tflopt.build import sigmoid_head_mlp
    from tflopt.calibration import from_iterable
    from tflopt.passes.quantize import QuantizeOptions
    from tflopt.reports import optimize_report
    from tflopt.sensitivity import Trials, ranking
    m = sigmoid_head_mlp([16, 32, 32, 4])
    model = tmp_path / "fragile.tflite"
    model.write_bytes(m.to_bytes())
    samples = np.random.default_rng(0).standard_normal((24, 1, 16)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", input=samples)
    assert main(["optimize", str(model), "-o", str(tmp_path / "o.tflite"), "-p",
                 "quantize(mode=int8,target_cosine=0.99)", "--calibration", str(tmp_path / "cal.npz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    stats = next(p["stats"] for p in out["passes"] if "mixed_precision" in p["stats"])
    trials = Trials(m, from_iterable(list(samples), m), list(samples), QuantizeOptions())
    stats["mixed_precision"]["sensitivity"] = ranking(trials)
    page = render_html(optimize_report(out), images="svg")
    assert "<h2>Quantization sensitivity</h2>" in page and "1. LOGISTIC score" in page
    assert page.index("<h2>Pipeline</h2>") < page.index("<h2>Quantization sensitivity</h2>")
