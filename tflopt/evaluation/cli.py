"""The ``compare`` and ``bench`` commands, and the quality gates ``optimize`` runs: thin
wrappers over the Python API in this package."""
from __future__ import annotations

import math
from pathlib import Path

import click

from ..errors import TfloptError
from .bench import PER_OP_NOTE

DATA_HELP = ("Samples: FILE.npz (arrays named like the inputs, else x_test / x_eval / x_calib / x, else "
             "one per input in order), FILE.npz:KEY[,KEY...] or FILE.npy.")


def _shapes(specs):
    from ..runtime import parse_input_shapes
    try:
        return parse_input_shapes(specs) or None
    except ValueError as e:
        raise TfloptError(str(e)) from None


def check_report_path(report: Path | None) -> None:
    if report is None:
        return
    if report.suffix.lower() not in (".html", ".htm", ".md"):
        raise TfloptError(f"{report}: a report is .html or .md")
    if report.parent and not report.parent.exists():
        raise TfloptError(f"{report}: folder {report.parent} does not exist")


def _f(x, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else str(x)


def compare_lines(result: dict) -> list[str]:
    """The text ``compare`` prints (also used by optimize's gates)."""
    from .compare import RANDOM_NOTE
    lines = []
    if result.get("random_inputs"):
        lines.append(f"note: {RANDOM_NOTE}")
    lines.append(f"{result['samples']} samples" + (f", signatures {', '.join(result['signatures'])}"
                                                   if result.get("signatures") else ""))
    for o in result["outputs"]:
        sig = f"[{o['signature']}] " if o.get("signature") else ""
        top1 = f"  top-1 agreement {o['top1_agreement']:.3f}" if "top1_agreement" in o else ""
        lines.append(f"{sig}{o['name']}: cosine {_f(o['cosine'], '.6f')}  SNR {_f(o['snr_db'], '.1f')} dB  "
                     f"max |err| {_f(o['max_abs_error'], '.4g')}{top1}")
        acc = o.get("accuracy")
        if acc:
            k = acc["top_k"]
            lines.append(f"  accuracy vs labels: top-1 {acc['reference_top1']:.4f} -> {acc['candidate_top1']:.4f} "
                         f"(drop {acc['top1_drop']:+.4f}), top-{k} {acc['reference_topk']:.4f} -> "
                         f"{acc['candidate_topk']:.4f} (drop {acc['topk_drop']:+.4f})")
    for layer in result.get("layers", []):
        lines.append(f"  {layer['name']}: cosine {_f(layer['cosine'], '.6f')}  SNR {_f(layer['snr_db'], '.1f')} dB")
    return lines


@click.command("compare")
@click.argument("reference", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("candidate", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", default=None, help=DATA_HELP + " Random inputs if omitted (the first line says so).")
@click.option("--inputs", "input_keys", default=None,
              help="Arrays of --data to feed the inputs, KEY[,KEY...] (same as --data FILE.npz:KEY).")
@click.option("--labels", default=None,
              help="Class labels: FILE.npz:KEY, or a KEY of the --data file; adds top-1 / top-k accuracy and the drop.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="k of the top-k accuracy.")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Samples to use: the first N of --data (default all), or N random ones (default 8).")
@click.option("--signature", default=None, help="Compare this signature only (default: every signature).")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2",
              help="Shape of an input with dynamic dimensions when no data says it.")
@click.option("--per-layer", is_flag=True,
              help="Also compare the intermediate tensors the models share (a separate run on the builtin kernels; "
                   "the outputs' figures stay those of the default runtime).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a report: FILE.html (self-contained) or FILE.md.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compare_cmd(reference, candidate, data, input_keys, labels, top_k, samples, signature, input_shape, per_layer,
                report, as_json):
    """Compare CANDIDATE's outputs against REFERENCE's on the same inputs (and against labels)."""
    from ..io import load
    from .compare import compare_models
    check_report_path(report)
    for p in (reference, candidate):
        load(p)  # a missing or corrupt file is "FILE: problem", before any interpreter starts
    if input_keys:
        if data is None:
            raise TfloptError("--inputs names arrays of --data; give --data FILE.npz")
        from .data import split_spec
        data = f"{split_spec(data)[0]}:{input_keys}"
    try:
        result = compare_models(reference, candidate, data, per_layer, samples=samples, labels=labels, top_k=top_k,
                                signature=signature, input_shapes=_shapes(input_shape))
    except (ValueError, RuntimeError) as e:
        raise TfloptError(f"cannot run the models: {' '.join(str(e).split())[:300]}") from None
    _finish(result, as_json, compare_lines, report,
            lambda r: r.compare_report(reference, candidate, result, data=data, labels=labels))


def _thread_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        out = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        out = []
    if not out or out[0] < 1:
        raise TfloptError(f"--threads {text[:40]!r}: want counts like 1,2")
    return out


def bench_lines(bench: dict) -> list[str]:
    rows = bench["results"]
    lines = [f"{'model':28} {'backend':8} {'thr':>3} {'median ms':>10} {'p90':>9} {'p99':>9} {'min':>9} "
             f"{'spread':>7} {'init ms':>8} {'peak MB':>8} {'delegated':>10} {'ratio':>6}"]
    for r in rows:
        name = Path(r["model"]).name
        if "error" in r:
            lines.append(f"{name[-28:]:28} {r['backend']:8} {r['threads']:>3} {r['error']}")
            continue
        dl = ", ".join(f"{k} {v['share']:.0%}" for k, v in r.get("delegated", {}).items()) or (
            "full" if r.get("fully_accelerated") else "-")
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
        lines.append(f"{name[-28:]:28} {r['backend']:8} {r['threads']:>3} {r['median_ms']:>10.4f} {r['p90_ms']:>9.4f} "
                     f"{r['p99_ms']:>9.4f} {r['min_ms']:>9.4f} {r['spread']:>6.1%} {r['init_ms']:>8.1f} "
                     f"{r['peak_rss_bytes'] / 2**20:>8.1f} {dl:>10} {ratio:>6}")
    if "gpu" in bench:
        lines.append(f"GPU: {bench['gpu']}")
    lines.append(f"note: {bench['per_op']}")
    return lines


@click.command("bench", help=f"""Latency of MODEL (and OTHER models, side by side with ratios to
the first) on this host through the LiteRT runtime: warm-up runs, then median, p90, p99, min
and spread (p90 - min over the median); model initialisation time; peak memory of the run
(each configuration runs in its own process); the share of ops XNNPACK took. Note: {PER_OP_NOTE}.""")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("others", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--threads", default=None, help="CPU thread counts, e.g. 1,2 (default: 1 and all cores).")
@click.option("--no-xnnpack", is_flag=True, help="The builtin kernels only (no XNNPACK delegate).")
@click.option("--gpu", is_flag=True, help="Also the LiteRT GPU accelerator (says 'GPU: not available' without one).")
@click.option("--data", default=None, help=DATA_HELP + " The first sample is used; random inputs if omitted.")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2",
              help="Shape of an input with dynamic dimensions when no data says it.")
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a report: FILE.html (self-contained) or FILE.md.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_cmd(model, others, threads, no_xnnpack, gpu, data, input_shape, runs, warmup, report, as_json):
    from ..io import load
    from .bench import bench_models
    check_report_path(report)
    models = [model, *others]
    for p in models:
        load(p)
    result = bench_models(models, threads=_thread_list(threads), xnnpack=not no_xnnpack, gpu=gpu, data=data,
                          input_shapes=_shapes(input_shape), runs=runs, warmup=warmup)
    _finish(result, as_json, bench_lines, report, lambda r: r.bench_report(result))


# -- optimize: quality gates, plain-words pass report, --report -------------------------------
GATE_OPTIONS = ("min_cosine", "min_snr", "max_accuracy_drop", "max_latency_ratio")


def gate_options(f):
    """The options optimize takes for gates and reports (registered in commands.py)."""
    opts = [
        click.option("--data", "eval_data", default=None,
                     help="Evaluation samples for the gates and the report (disjoint from --calibration). " + DATA_HELP),
        click.option("--labels", default=None, help="Labels for --max-accuracy-drop: FILE.npz:KEY or a KEY of --data."),
        click.option("--min-cosine", type=float, default=None, help="Gate: every output's cosine at least this."),
        click.option("--min-snr", type=float, default=None, help="Gate: every output's SNR at least this many dB."),
        click.option("--max-accuracy-drop", type=float, default=None,
                     help="Gate: top-1 accuracy against --labels drops by at most this (0.01 = one point)."),
        click.option("--max-latency-ratio", type=float, default=None,
                     help="Gate: median latency (XNNPACK, 1 thread) at most this times the input model's."),
        click.option("--allow-same-data", is_flag=True, help="Allow --data to be the --calibration file."),
        click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write a report: FILE.html (self-contained) or FILE.md."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def check_gate_options(*, eval_data, labels, calibration, allow_same_data, report, thresholds: dict) -> None:
    """Before any work: options that cannot go together are a one-line error."""
    from .data import same_file
    check_report_path(report)
    if eval_data is None and any(thresholds.get(k) is not None for k in ("min_cosine", "min_snr", "max_accuracy_drop")):
        raise TfloptError("a fidelity gate needs --data EVAL (samples to measure the output on)")
    if thresholds.get("max_accuracy_drop") is not None and labels is None:
        raise TfloptError("--max-accuracy-drop needs --labels FILE.npz:KEY")
    if labels is not None and eval_data is None:
        raise TfloptError("--labels needs --data")
    if eval_data is not None and calibration is not None and same_file(eval_data, calibration) and not allow_same_data:
        raise TfloptError(f"{eval_data}: is also the --calibration file; evaluating on calibration data flatters "
                          "the result (pass --allow-same-data to do it anyway)")


def evaluate_output(before: bytes, after: bytes, *, eval_data, labels, thresholds: dict, report: bool) -> dict:
    """Measure the optimised model against the input model for the gates and the report."""
    import tempfile

    from .bench import bench_models
    from .compare import compare_models
    from .gates import evaluate
    out: dict = {"comparison": None, "layers": None, "bench": None, "gates": [], "notes": []}
    needed = eval_data is not None  # gates and --data must measure; a report alone says what it could not
    try:
        if eval_data is not None or report:
            out["comparison"] = compare_models(before, after, eval_data, samples=None if eval_data else 8,
                                               labels=labels)
        if report and (out["comparison"] or {}).get("signatures") == []:
            out["layers"] = compare_models(before, after, eval_data, per_layer=True, samples=8)["layers"]
    except (ValueError, RuntimeError, TfloptError) as e:
        why = " ".join(str(e).split())[:300]
        if needed:
            raise TfloptError(f"cannot run the models on --data: {why}") from None
        out["notes"].append(f"fidelity not measured: the models do not run in the stock interpreter ({why})")
    ratio = None
    if thresholds.get("max_latency_ratio") is not None or report:
        with tempfile.TemporaryDirectory(prefix="tflopt-bench-") as d:
            pa, pb = Path(d) / "input.tflite", Path(d) / "output.tflite"
            pa.write_bytes(before)
            pb.write_bytes(after)
            bench = bench_models([pa, pb], threads=[1], runs=30, warmup=5)
        for r, name in zip(bench["results"], ("input model", "output model")):
            r["model"] = name
        out["bench"] = bench
        second = bench["results"][-1]
        ratio = second.get("ratio")
        if ratio is None and thresholds.get("max_latency_ratio") is not None:
            raise TfloptError(f"cannot time the models: {second.get('error') or bench['results'][0].get('error')}")
    try:
        out["gates"] = evaluate({k: thresholds.get(k) for k in GATE_OPTIONS}, out["comparison"] if eval_data else None,
                                ratio)
    except ValueError as e:
        raise TfloptError(str(e)) from None
    return out


def echo_passes(report, echo=click.echo, details=None, input_bytes: int | None = None) -> None:
    """Per pass: the figures, then what it achieved in plain words (``details(record)`` adds
    more lines after them). When tflopt's own rewrite of the input differs in size from the
    input file, a first row says so, so the rows chain from the file's size."""
    from ..reports.build import pass_summary, size_change
    first = report.passes[0].bytes_before if report.passes else None
    if input_bytes is not None and first is not None and first != input_bytes:
        echo(f"{'(rewrite, before any pass)':40} {'':9} {'':8}     {size_change(input_bytes, first)}")
    for rec in report.passes:
        echo(f"{rec.spec:40} {'changed' if rec.changed else 'no change':9} {rec.seconds * 1000:8.1f} ms  "
             f"{size_change(rec.bytes_before, rec.bytes_after)}")
        for line in pass_summary(rec.as_dict()):
            echo(f"  {line}")
        if details:
            details(rec)


def _finish(result: dict, as_json: bool, lines, report, build) -> None:
    """What compare and bench end with: the report file (``build(tflopt.reports)``), then
    JSON or the text lines."""
    from ..cli import emit_json
    if report is not None:
        from .. import reports
        reports.write_report(report, build(reports))
    if as_json:
        emit_json(result)
        return
    for line in lines(result):
        click.echo(line)
    if report is not None:
        click.echo(f"wrote {report}")
