"""tflopt search on the digits convnet: goals, the choice against single techniques, the
cache, widening, and a real Dask LocalCluster. Calibration is the fixture's calibration split
(digits x_calib, 64 samples), evaluation its disjoint test split (x_test / y_test, 360)."""
from __future__ import annotations

import contextlib
import html
import io
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, MODELS
from tflopt import runtime
from tflopt.cli import main
from tflopt.errors import TfloptError
from tflopt.io import load
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.search.goals import parse_goals
from tflopt.size import gzip_size

MODEL = MODELS / "convnet_fp32.tflite"
CALIB = DATA / "convnet_calib.npz"          # digits x_calib
DIGITS = DATA / "digits.npz"
SPACE = {"levels": [
    {"pass": "prune", "options": {"sparsity": [0.5, 0.75, 0.9], "method": ["magnitude"]}},
    {"pass": "cluster", "options": {"clusters": [16, 8, 4], "method": ["kmeans"]}},
    {"pass": "quantize", "options": {"mode": ["int8"], "weights": ["rtn"]}},
]}
README_CHAIN = "prune(sparsity=0.5),cluster(clusters=16),quantize(mode=int8)"


def run_cli(args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def search_args(space: Path, cache: Path, out: Path, *extra):
    return ["search", MODEL, "--calibration", CALIB, "--data", f"{DIGITS}:x_test", "--labels", f"{DIGITS}:y_test",
            "--goal", "accuracy_drop<=0.01", "--minimize", "gzip_bytes", "--space", space, "--cache", cache,
            "-o", out, "--json", *extra]


def write_space(path: Path, space: dict) -> Path:
    path.write_text(json.dumps(space))
    return path


def top1(model, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy computed here, independently of the search: run every sample, argmax, compare."""
    interp = runtime.interpreter(model)
    preds = np.array([np.argmax(runtime.invoke(interp, [x[i:i + 1]])[0]) for i in range(len(x))])
    return float(np.mean(preds == y))


@pytest.fixture(scope="module")
def digits():
    d = np.load(DIGITS)
    return d["x_test"], d["y_test"]


@pytest.fixture(scope="module")
def first_search(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    space = write_space(tmp / "space.json", SPACE)
    rc, out, err = run_cli(search_args(space, tmp / "cache", tmp / "chosen.tflite"))
    assert rc == 0, err
    return tmp, json.loads(out)


@pytest.mark.parametrize("text, words", [
    ("accuracy_drop=>0.01", "want METRIC"),
    ("size<=1000", "unknown metric"),
    ("min_cosine<=0.99", "better higher"),
    ("accuracy_drop<=0.01x", "cannot be relative"),
    ("gzip_bytes<=0.5x,gzip_bytes<=1000", "bounded twice"),
    ("", "at least one goal"),
])
def test_goal_text_errors(text, words):
    with pytest.raises(TfloptError, match=words):
        parse_goals(text)


def test_goal_error_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "x.tflite"
    rc, stdout, err = run_cli(["search", MODEL, "--goal", "latency<=fast", "-o", out, "--cache", tmp_path / "c"])
    assert rc == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("tflopt: error: --goal 'latency<=fast'")
    assert not out.exists() and not (tmp_path / "c").exists()


def test_relative_goals_resolve_against_the_input():
    g = parse_goals("gzip_bytes<=0.25x,min_cosine>=0.99")
    base = {"gzip_bytes": 1000, "min_cosine": 1.0}
    assert g[0].bound(base) == 250 and g[1].bound(base) == 0.99
    assert g[0].met({"gzip_bytes": 250}, base) and not g[0].met({"gzip_bytes": 251}, base)


def test_chosen_beats_every_single_technique_and_the_readme_chain(first_search, digits):
    tmp, result = first_search
    x, y = digits
    chosen = tmp / "chosen.tflite"
    data = chosen.read_bytes()
    ref_acc = top1(MODEL, x, y)
    acc = top1(data, x, y)
    # The search's own top-1 is what an independent run gives, and it keeps the goal.
    assert acc == pytest.approx(result["chosen"]["metrics"]["accuracy"], abs=1e-9)
    assert ref_acc - acc <= 0.01
    assert len(result["chosen"]["pipeline"].split("),")) >= 2   # a chain, not one technique
    calib = None
    from tflopt.calibration import load_calibration
    singles = [f"prune(sparsity={s})" for s in (0.5, 0.75, 0.9)] + \
              [f"cluster(clusters={k})" for k in (16, 8, 4)] + ["quantize(mode=int8)"]
    met = {}
    for pipeline in singles + [README_CHAIN]:
        m = load(MODEL)
        calib = calib or load_calibration(CALIB, m)
        run_pipeline(m, pipeline, PassContext(calibration=calib))
        b = m.to_bytes()
        if ref_acc - top1(b, x, y) <= 0.01:
            met[pipeline] = gzip_size(b)
    assert {"quantize(mode=int8)", README_CHAIN} <= set(met)
    assert any(p.startswith("prune") for p in met) and any(p.startswith("cluster") for p in met)
    for pipeline, size in met.items():
        assert gzip_size(data) < size, pipeline
    # The Pareto front holds the choice and is made of tried candidates.
    assert result["chosen"]["pipeline"] in result["pareto"]
    assert set(result["pareto"]) <= {t["pipeline"] for t in result["trials"]} | {""}


def test_chosen_model_reruns_byte_identically_with_optimize(first_search, tmp_path):
    tmp, result = first_search
    pipeline = (tmp / "chosen.tflite.pipeline").read_text().strip()
    assert pipeline == result["chosen"]["pipeline"]
    rc, _, err = run_cli(["optimize", MODEL, "-o", tmp_path / "again.tflite", "--pipeline", pipeline,
                          "--calibration", CALIB])
    assert rc == 0, err
    assert (tmp_path / "again.tflite").read_bytes() == (tmp / "chosen.tflite").read_bytes()


def test_rerun_is_all_cache_and_byte_identical(first_search, tmp_path):
    tmp, first = first_search
    out = tmp_path / "rerun.tflite"
    report = tmp_path / "search.html"
    rc, stdout, err = run_cli(search_args(tmp / "space.json", tmp / "cache", out, "--report", report))
    assert rc == 0, err
    again = json.loads(stdout)
    page = report.read_text()
    # The page: the Pareto plot inline, every trial in the tree, the chosen model's own report.
    assert page.count("data:image/png;base64,") >= 2 and "Explored tree" in page
    assert all(html.escape(t["pipeline"].split("),")[-1]) in page for t in again["trials"])
    assert "Fidelity and accuracy per output" in page and "http" not in page.split("<body>")[1][:200]
    assert again["counts"]["executed"] == 0 and again["counts"]["passes_run"] == 0
    assert again["counts"]["from_cache"] == again["counts"]["trials"] == first["counts"]["trials"]
    assert out.read_bytes() == (tmp / "chosen.tflite").read_bytes()
    strip = lambda r: [{k: v for k, v in t.items() if k != "from_cache"} for t in r["trials"]]  # noqa: E731
    assert strip(again) == strip(first)


def test_widening_the_space_runs_only_the_new_branches(first_search, tmp_path):
    tmp, first = first_search
    wide = json.loads(json.dumps(SPACE))
    wide["levels"][0]["options"]["sparsity"] = [0.5, 0.75, 0.9, 0.95]
    rc, stdout, err = run_cli(search_args(write_space(tmp_path / "wide.json", wide), tmp / "cache",
                                          tmp_path / "wide.tflite"))
    assert rc == 0, err
    r = json.loads(stdout)
    old = {t["pipeline"] for t in first["trials"]}
    new = [t for t in r["trials"] if t["pipeline"] not in old]
    assert new and all(not t["from_cache"] for t in new)
    assert all(t["from_cache"] for t in r["trials"] if t["pipeline"] in old)
    assert r["counts"]["executed"] == len(new)
    # A new branch starts from its cached parent: one pass of work each.
    assert all(t["passes_run"] == 1 for t in new)


def test_dask_local_cluster_gives_the_same_trials_and_bytes(first_search, tmp_path):
    import distributed  # in the test extra, so CI runs this path
    small = {"levels": [{"pass": "prune", "options": {"sparsity": [0.5, 0.9], "method": ["magnitude"]}},
                        {"pass": "cluster", "options": {"clusters": [8], "method": ["kmeans"]}},
                        {"pass": "quantize", "options": {"mode": ["int8"], "weights": ["rtn"]}}]}
    space = write_space(tmp_path / "small.json", small)
    # The local run of this narrower space comes from the first search's cache (its trials were run
    # in this process); the Dask run starts from an empty cache and runs every trial on the workers.
    rc, local_out, err = run_cli(search_args(space, first_search[0] / "cache", tmp_path / "local.tflite"))
    assert rc == 0, err
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rc, dask_out, err = run_cli(search_args(space, tmp_path / "c2", tmp_path / "dask.tflite",
                                                "--scheduler", cluster.scheduler_address))
    assert rc == 0, err
    a, b = json.loads(local_out), json.loads(dask_out)
    keep = ("pipeline", "status", "metrics", "meets_goals", "violated", "parent")
    assert [{k: t[k] for k in keep} for t in a["trials"]] == [{k: t[k] for k in keep} for t in b["trials"]]
    assert b["counts"]["executed"] == b["counts"]["trials"] > 0
    assert (tmp_path / "dask.tflite").read_bytes() == (tmp_path / "local.tflite").read_bytes()


def test_cache_size_bound_evicts_least_recently_used_models(tmp_path):
    import os

    from tflopt.search.cache import Cache
    cache = Cache(tmp_path, max_bytes=3000)
    for i, key in enumerate("abc"):
        cache.put_model(key, bytes(1000), {"pruned_masks": {(0, i): np.ones(3, bool)}})
        os.utime(cache._model(key), (i, i))
    cache.get_model("a")  # used again: now the most recent
    cache.trim()
    assert cache.get_model("b") is None and cache.get_model("a") is not None
    assert cache.get_model("c")[1]["pruned_masks"][(0, 2)].all()
    assert cache.size() <= 3000


def test_zoo_search_writes_one_model_each_and_a_summary(tmp_path):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for name in ("convnet_fp32", "mlp_fp32"):
        (zoo / f"{name}.tflite").symlink_to(MODELS / f"{name}.tflite")
    space = write_space(tmp_path / "q.json", {"levels": [{"pass": "quantize", "options": {"mode": ["float16", "dynamic"]}}]})
    rc, out, err = run_cli(["search", zoo, "--goal", "min_cosine>=0.999", "--space", space,
                            "--cache", tmp_path / "c", "-o", tmp_path / "out", "--json"])
    assert rc == 0, err
    r = json.loads(out)
    assert [Path(m["model"]).name for m in r["models"]] == ["convnet_fp32.tflite", "mlp_fp32.tflite"]
    for m, row in zip(r["models"], r["summary"]):
        written = tmp_path / "out" / Path(m["model"]).name
        assert row["chosen"] == m["chosen"]["pipeline"] and written.read_bytes()
        assert row["float16"]["gzip_bytes"] == next(t for t in m["trials"] if t["pipeline"] == "quantize(mode=float16)")["metrics"]["gzip_bytes"]
        # The written model runs, and its figure is the one the search reported.
        runtime.run(written.read_bytes())
        assert gzip_size(written.read_bytes()) == row["gzip_bytes"]


@pytest.mark.parametrize("space, words", [
    ({"levels": [{"pass": "prune", "options": {"sparsity": [2]}}]}, "sparsity must be in [0, 1)"),
    ({"levels": [{"pass": "squash"}]}, "unknown pass"),
    ({"levels": [{"pass": "cluster", "options": {"k": [8]}}]}, "unknown option"),
    ({"stages": []}, "want {\"levels\""),
])
def test_bad_space_file_is_one_line_exit_2(tmp_path, space, words):
    rc, out, err = run_cli(["search", MODEL, "--goal", "min_cosine>=0.99", "--space",
                            write_space(tmp_path / "s.json", space), "-o", tmp_path / "o.tflite",
                            "--cache", tmp_path / "c"])
    assert rc == 2 and out == "" and err.count("\n") == 1 and words in err and str(tmp_path / "s.json") in err
    assert not (tmp_path / "o.tflite").exists()


def test_mixed_precision_point_meets_a_cosine_goal_plain_int8_misses(tmp_path):
    """The quantize level's fallback dimension: with a min_cosine goal, int8 / int16x8 also
    come as a mixed-precision point targeting it (float16 / dynamic do not). On a model
    whose sigmoid head int8 cannot carry, plain int8 misses min_cosine>=0.99 and the point
    (head kept float, every FULLY_CONNECTED int8) is chosen; its cosine is measured here again."""
    from tflopt.build import sigmoid_head_mlp
    from tflopt.evaluation import compare_models
    from tflopt.search.space import default_space, with_mixed_precision
    specs = [c.spec for lv in with_mixed_precision(default_space(), parse_goals("min_cosine>=0.99"))
             if lv.pass_name == "quantize" for c in lv.choices()]
    assert "quantize(mode=int8,target_cosine=0.99)" in specs and "quantize(mode=int16x8,target_cosine=0.99)" in specs
    assert not any("target_cosine" in s for s in specs if "float16" in s or "dynamic" in s)
    model = sigmoid_head_mlp([16, 32, 32, 4])
    path = tmp_path / "head.tflite"
    path.write_bytes(model.to_bytes())
    name = model.main.tensors[model.main.inputs[0]].name
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", **{name: rng.standard_normal((32, 16)).astype(np.float32)})
    x = rng.standard_normal((16, 16)).astype(np.float32)
    np.savez(tmp_path / "ev.npz", x=x)
    space = write_space(tmp_path / "q.json", {"levels": [{"pass": "quantize", "options": {"mode": ["int8"],
                                                                                      "weights": ["rtn"]}}]})
    rc, out, err = run_cli(["search", path, "--calibration", tmp_path / "cal.npz", "--data", f"{tmp_path / 'ev.npz'}:x",
                            "--goal", "min_cosine>=0.99", "--space", space, "--cache", tmp_path / "c",
                            "-o", tmp_path / "o.tflite", "--json"])
    assert rc == 0, err
    r = json.loads(out)
    chosen = r["chosen"]["pipeline"]
    assert chosen.startswith("quantize(mode=int8,target_cosine=0.99,evaluation=")
    plain = next(t for t in r["trials"] if t["pipeline"] == "quantize(mode=int8)")
    assert plain["metrics"]["min_cosine"] < 0.99
    written = (tmp_path / "o.tflite").read_bytes()
    got = compare_models(model, written, [[x[i:i + 1]] for i in range(len(x))], samples=0)["outputs"][0]["cosine"]
    assert got >= 0.99
    sg = load(written).main
    assert all(sg.tensors[op.inputs[0]].type == 9 for op in sg.operators if op.name == "FULLY_CONNECTED")
