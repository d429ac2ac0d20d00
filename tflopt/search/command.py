"""``tflopt search``: the command line over ``runner``."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import TfloptError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bytes(text: str) -> int:
    t = text.strip().lower().rstrip("b")
    unit = t[-1] if t and t[-1] in _UNITS else ""
    try:
        return int(float(t[: len(t) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise TfloptError(f"--cache-size {text!r}: want a size like 500M or 4G") from None


@click.command("search")
@click.argument("models", required=False)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write the chosen model (a folder when several models are searched); "
                   "its pipeline goes beside it as OUT.pipeline.")
@click.option("--goal", "goal_text", default=None,
              help="Goals, comma separated: METRIC<=V or >=V, V with 'x' relative to the input model. Metrics: "
                   "raw_bytes gzip_bytes zstd_bytes accuracy accuracy_drop min_cosine min_snr latency "
                   "target_ops_share target_macs_share. E.g. 'accuracy_drop<=0.01,latency<=1.0x'.")
@click.option("--minimize", "objective", default="gzip_bytes", show_default=True,
              help="What to make smallest among the models meeting every goal.")
@click.option("--calibration", default=None, help="Calibration samples, as optimize takes them (disjoint from --data).")
@click.option("--calibration-normalize", type=click.Choice(["unit", "signed", "raw", "imagenet"]), default="unit",
              show_default=True)
@click.option("--data", default=None, help="Evaluation samples: FILE.npz[:KEY], FILE.npy, or an image folder (decoded for each model as "
                   "--calibration is; random inputs if omitted).")
@click.option("--labels", default=None, help="Labels for accuracy goals: FILE.npz:KEY or a KEY of the --data file.")
@click.option("--samples", type=click.IntRange(min=1), default=None, help="Use the first N evaluation samples.")
@click.option("--allow-same-data", is_flag=True, help="Allow --calibration and --data to be the same data.")
@click.option("--target", default=None, help="Delegate whose op / MAC share the target_*_share goals read (audit).")
@click.option("--space", "space_file", type=click.Path(path_type=Path), default=None,
              help="JSON or YAML file narrowing or widening the default space (see `tflopt passes`).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Local worker processes.")
@click.option("--scheduler", default=None, help="Run trials on a Dask cluster (tcp://HOST:PORT); the cache "
                                               "must be a path every worker shares. Needs tflopt[dask].")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
              help="Cache folder (default ~/.cache/tflopt/search).")
@click.option("--cache-size", default="4G", show_default=True, help="Size bound of the cache; oldest models go first.")
@click.option("--clean-cache", is_flag=True, help="Empty the cache (and stop, if no model is given).")
@click.option("--max-trials", type=click.IntRange(min=1), default=None, help="Stop after this many trials per model.")
@click.option("--max-time", type=click.FloatRange(min=0), default=None, help="Stop starting trials after this many seconds per model.")
@click.option("--stop-when-met", is_flag=True, help="Stop after the first wave in which a candidate meets every goal.")
@click.option("--json", "as_json", is_flag=True, help="Print every trial, the Pareto front and the choice as JSON.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write an HTML report: Pareto plot, the explored tree, the chosen model.")
@click.option("--progress/--no-progress", default=None, help="A line per trial on stderr (default: on a terminal).")
def search_cmd(models, output, goal_text, objective, calibration, calibration_normalize, data, labels, samples,
               allow_same_data, target, space_file, jobs, scheduler, cache_dir, cache_size, clean_cache,
               max_trials, max_time, stop_when_met, as_json, report, progress):
    """Search the deployment tree (prune -> cluster -> quantize, recovery on and off) of MODELS
    (a file, a folder or a glob) for the model that meets every --goal with the least --minimize."""
    from .cache import DEFAULT_DIR, Cache
    from .goals import NEEDS_LABELS, NEEDS_TARGET, check_objective, parse_goals
    cache = Cache(cache_dir or DEFAULT_DIR, _bytes(cache_size))
    if clean_cache:
        cache.clean()
        if not models:
            click.echo(f"emptied {cache.root}", err=True)
            return 0
    if not models:
        raise TfloptError("give a MODEL (a file, a folder or a glob)")
    goals = parse_goals(goal_text)  # before any I/O, so a typo fails fast
    check_objective(objective)
    names = {g.metric for g in goals} | {objective}
    if names & NEEDS_LABELS and not labels:
        raise TfloptError("accuracy goals need --labels (and --data)")
    if labels and not data:
        raise TfloptError("--labels needs --data: accuracy on random inputs means nothing")
    if names & NEEDS_TARGET and not target:
        raise TfloptError("target_*_share goals need --target")
    if target:
        from ..audit import parse_targets
        try:
            targets = parse_targets(target)
        except (KeyError, ValueError) as e:
            raise TfloptError(f"--target {target}: {e}") from None
        if len(targets) != 1:
            raise TfloptError(f"--target {target}: name one target")
        target = targets[0]
    from ..evaluation.data import same_file
    if calibration and data and not allow_same_data and same_file(data, calibration):
        raise TfloptError(f"{data}: is also the --calibration file; choosing on calibration data flatters "
                          "the result (pass --allow-same-data to do it anyway)")
    from .measure import EvalSpec
    from .runner import SearchConfig, model_paths, search_one, write_chosen
    from .space import default_space, load_space, with_mixed_precision
    levels = load_space(space_file) if space_file else default_space(objective)
    levels = with_mixed_precision(levels, goals, evaluation=data, target=target)
    paths = model_paths(models)
    zoo = len(paths) > 1 or Path(models).is_dir()
    if output is None:
        raise TfloptError("give -o OUT (a folder when several models are searched)")
    if zoo:
        if output.exists() and not output.is_dir():
            raise TfloptError(f"{output}: several models are searched, -o must be a folder")
        if not output.parent.exists():
            raise TfloptError(f"{output}: folder {output.parent} does not exist")
    else:
        if output.is_dir():
            raise TfloptError(f"{output}: is a directory")
        if str(output.parent) and not output.parent.exists():
            raise TfloptError(f"{output}: folder {output.parent} does not exist")
        if output.exists() and output.resolve() == paths[0].resolve():
            raise TfloptError(f"{output}: output is the input file")
    show = sys.stderr.isatty() if progress is None else progress
    from .strategy import Budget
    cfg = SearchConfig(goals, objective, levels, calibration, calibration_normalize,
                       EvalSpec(data, labels, samples, latency="latency" in names, target=target,
                                normalize=calibration_normalize),
                       cache.root, cache.max_bytes, Budget(max_trials, max_time, stop_when_met),
                       (lambda line: click.echo(line, err=True)) if show else None)
    from .executors import make_executor
    results, errors = [], []
    with make_executor(jobs, scheduler) as ex:
        for p in paths:
            try:
                results.append(search_one(p, cfg, ex))
            except TfloptError as e:
                if not zoo:
                    raise
                errors.append({"model": str(p), "error": " ".join(str(e).split())})  # the zoo goes on
                click.echo(f"tflopt: {p}: not searched: {errors[-1]['error']}", err=True)
    if zoo:
        output.mkdir(exist_ok=True)
    missed = len(errors)
    for r in results:
        if r["_chosen"] is None:
            missed += 1
            continue
        out = output / (Path(r["model"]).stem + ".tflite") if zoo else output
        r["chosen"].update(write_chosen(r, out))
    cache.trim()  # after the chosen models are written from it
    if report:
        from .report import write_report
        write_report(report, results, cfg.eval)
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    if as_json:
        from ..cli import emit_json
        emit_json({"models": public, "summary": [_summary_row(r) for r in public], "errors": errors}
                  if zoo else public[0])
    else:
        for r in public:
            _echo_result(r)
        if zoo:
            _echo_zoo(public)
    return 1 if missed else 0


def _summary_row(r: dict) -> dict:
    by = {t["pipeline"]: t for t in r["trials"]}
    obj = r["objective"]

    def fig(pipeline):
        t = by.get(pipeline)
        if t is None or t["status"] != "ok":
            return None
        return {"pipeline": pipeline, obj: t["metrics"].get(obj), "meets_goals": t["meets_goals"]}
    return {"model": r["model"], "chosen": None if r["chosen"] is None else r["chosen"]["pipeline"],
            obj: None if r["chosen"] is None else r["chosen"]["metrics"].get(obj),
            "input": r["baseline"].get(obj), "float16": fig("quantize(mode=float16)"),
            "int8": fig("quantize(mode=int8)"), "trials": r["counts"]["trials"], "executed": r["counts"]["executed"]}


def _echo_result(r: dict) -> None:
    from ..size import summary_line
    c = r["counts"]
    click.echo(f"{r['model']}: {c['trials']} trials ({c['executed']} run, {c['from_cache']} from cache, "
               f"{c['failed']} failed, {c['skipped_monotone']} skipped as stronger than a failing one), "
               f"{r['seconds']:.1f} s; stopped: {r['stopped']}")
    click.echo(f"  goals: {', '.join(f'{g} ({v:.6g})' for g, v in r['resolved_goals'].items())}; "
               f"minimise {r['objective']}")
    click.echo("  Pareto front (" + ", ".join(r["pareto_metrics"]) + "):")
    by = {t["pipeline"]: t for t in r["trials"]}
    for p in r["pareto"]:
        m = by[p]["metrics"] if p in by else r["baseline"]
        figs = "  ".join(f"{k} {m[k]:,}" if isinstance(m.get(k), int) else f"{k} {m.get(k, float('nan')):.4g}"
                         for k in r["pareto_metrics"])
        ok = "meets" if (p not in by or by[p]["meets_goals"]) else "misses"
        click.echo(f"    {p or '(input)':70} {figs}  {ok}")
    if r["chosen"] is None:
        click.echo("  no candidate meets every goal: nothing written")
        return
    obj = r["objective"]
    click.echo(f"  chosen: {r['chosen']['pipeline'] or '(input unchanged)'}")
    click.echo(f"  {obj}: {summary_line(r['baseline'][obj], r['chosen']['metrics'][obj])}")
    click.echo(f"  wrote {r['chosen']['output']} (pipeline in {r['chosen']['pipeline_file']})")


def _echo_zoo(public: list[dict]) -> None:
    rows = [_summary_row(r) for r in public]
    obj = public[0]["objective"]
    click.echo(f"\nzoo summary ({obj}):")
    click.echo(f"  {'model':36} {'input':>12} {'float16':>12} {'int8':>12} {'chosen':>12}  pipeline")

    def cell(f):
        if f is None:
            return f"{'-':>12}"
        return f"{f[obj]:>11,}{'' if f['meets_goals'] else '!'}"
    for row in rows:
        chosen = f"{row[obj]:>12,}" if row[obj] is not None else f"{'none':>12}"
        click.echo(f"  {Path(row['model']).stem[:36]:36} {row['input']:>12,} {cell(row['float16'])} "
                   f"{cell(row['int8'])} {chosen}  {'-' if row['chosen'] is None else row['chosen'] or '(input unchanged)'}")
    click.echo("  ('!' after a figure: that model misses a goal)")
