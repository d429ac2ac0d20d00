"""The core subcommands: inspect, size, optimize, passes."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from .cli import emit_json, fail
from .evaluation.cli import gate_options
from .io import load
from .model import Model

MODEL_ARG = click.argument("model", type=click.Path(dir_okay=False, path_type=Path))


def describe(model: Model, path: Path | None = None) -> dict:
    """The stable summary ``inspect --json`` prints (keys listed in the README)."""
    subgraphs = []
    for si, sg in enumerate(model.subgraphs):
        def io(idxs):
            return [{"index": t, "name": sg.tensors[t].name, "shape": list(sg.tensors[t].shape),
                     "dtype": sg.tensors[t].type_name,
                     "quantization": _quant(sg.tensors[t])} for t in idxs]
        subgraphs.append({
            "index": si, "name": sg.name, "tensors": len(sg.tensors), "operators": len(sg.operators),
            "inputs": io(sg.inputs), "outputs": io(sg.outputs),
            "ops": [{"index": oi, "op": op.name, "version": op.version, "inputs": list(op.inputs),
                     "outputs": list(op.outputs)} for oi, op in enumerate(sg.operators)],
        })
    op_counts = Counter(op.name for op in model.operators())
    const_bytes: Counter = Counter()
    params: Counter = Counter()
    seen = set()
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.is_constant and t.buffer_index not in seen:
                seen.add(t.buffer_index)
                const_bytes[t.type_name] += t.buffer.nbytes
                params[t.type_name] += t.num_elements
    return {
        "path": str(path) if path else model.source_name,
        "file_bytes": path.stat().st_size if path else None,
        "schema_version": model.version,
        "description": model.description,
        "min_runtime_version": model.min_runtime_version,
        "metadata": model.metadata_names(),
        "signatures": [{"key": _name(s.signatureKey),
                        "subgraph": s.subgraphIndex,
                        "inputs": [_name(tm.name) for tm in s.inputs or []],
                        "outputs": [_name(tm.name) for tm in s.outputs or []]} for s in model.signature_defs],
        "operator_codes": [{"op": _opname(oc), "version": int(oc.version or 1)} for oc in model.operator_codes],
        "op_counts": dict(sorted(op_counts.items())),
        "constant_bytes": dict(sorted(const_bytes.items())),
        "parameters": dict(sorted(params.items())),
        "buffers": len(model.buffers),
        "subgraphs": subgraphs,
        "sparse_tensors": sum(1 for sg in model.subgraphs for t in sg.tensors if t.sparsity is not None),
    }


def _name(s):
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else s


def _opname(oc):
    from .schema import op_name
    return op_name(oc)


def _quant(t):
    q = t.quantization
    if q is None or q.scale.size == 0:
        return None
    if q.scale.size == 1:
        return {"scale": float(q.scale[0]), "zero_point": int(q.zero_point[0]) if q.zero_point.size else 0}
    return {"scales": int(q.scale.size), "axis": q.axis}


@click.command("inspect")
@MODEL_ARG
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (keys in the README).")
@click.option("--ops", "show_ops", is_flag=True, help="List every operator in graph order.")
def inspect_cmd(model: Path, as_json: bool, show_ops: bool):
    """Summarise MODEL: subgraphs, inputs and outputs, operators, constants, metadata."""
    m = load(model)
    info = describe(m, model)
    if as_json:
        emit_json(info)
        return
    click.echo(f"{info['path']}: {info['file_bytes']:,} bytes, schema v{info['schema_version']}, "
               f"min runtime {info['min_runtime_version'] or '-'}")
    if info["description"]:
        click.echo(f"description: {info['description']}")
    for sg in info["subgraphs"]:
        click.echo(f"subgraph {sg['index']} {sg['name']!r}: {sg['operators']} ops, {sg['tensors']} tensors")
        for kind in ("inputs", "outputs"):
            for t in sg[kind]:
                q = f" q={t['quantization']}" if t["quantization"] else ""
                click.echo(f"  {kind[:-1]:6} {t['name']} {t['dtype']}{t['shape']}{q}")
        if show_ops:
            for op in sg["ops"]:
                click.echo(f"    {op['index']:4} {op['op']} v{op['version']} {op['inputs']} -> {op['outputs']}")
    click.echo("operators: " + ", ".join(f"{k} x{v}" for k, v in info["op_counts"].items()))
    click.echo("constants: " + ", ".join(f"{k} {info['parameters'][k]:,} values / {v:,} bytes"
                                         for k, v in info["constant_bytes"].items()))
    if info["signatures"]:
        click.echo("signatures: " + ", ".join(s["key"] for s in info["signatures"]))
    click.echo("metadata: " + (", ".join(info["metadata"]) or "-"))


@click.command("size")
@MODEL_ARG
@click.argument("other", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print figures as JSON (raw_bytes, gzip_bytes, zstd_bytes, tensors).")
@click.option("--zstd-level", type=click.IntRange(1, 22), default=None,
              help="zstd level [default: 3, zstd's own; 19 is ~50x slower for ~1% less].")
@click.option("--gzip-level", type=click.IntRange(1, 9), default=None,
              help="gzip (zlib) level [default: 6, gzip's own; 1 when a file is over 1 GiB; 9 as `gzip -9`].")
@click.option("--top", type=click.IntRange(0), default=15, show_default=True,
              help="Tensors listed in the text table (largest first); 0 lists none.")
@click.option("--exact-unique", is_flag=True, help="Count distinct values of 32-bit tensors over 2^24 values too "
              "(a sort each, seconds per tensor); otherwise they show '-' (null).")
def size_cmd(model: Path, other: Path | None, as_json: bool, zstd_level: int | None, gzip_level: int | None, top: int,
             exact_unique: bool):
    """Raw, gzip and zstd sizes of MODEL (streamed from the file), a per-tensor table, and
    deltas against OTHER."""
    from .size import compare, default_levels, measure, summary_line
    results = []
    paths = [model] + ([other] if other else [])
    for path in paths:
        load(path)  # a bad file fails here, with the loader's one-line error
    gzip_level, zstd_level = default_levels(max(p.stat().st_size for p in paths), gzip_level, zstd_level)
    for path in paths:
        r = measure(path, zstd_level=zstd_level, gzip_level=gzip_level, exact_unique=exact_unique)
        r["path"] = str(path)
        results.append(r)
    if as_json:
        out = dict(results[0])
        if other:
            out["other"] = results[1]
            out["delta"] = compare(results[0], results[1])
        emit_json(out)
        return
    for r in results:
        click.echo(f"{r['path']}: raw {r['raw_bytes']:,}  gzip-{gzip_level} {r['gzip_bytes']:,}  "
                   f"zstd-{zstd_level} {r['zstd_bytes']:,}")
        rows = sorted(r["tensors"], key=lambda x: -x["bytes"])[:top]
        if rows:
            click.echo(f"  {'bytes':>12} {'dtype':8} {'elements':>10} {'unique':>8} {'zeros':>6}  name")
            for t in rows:
                unique = "-" if t["unique_values"] is None else f"{t['unique_values']:,}"
                click.echo(f"  {t['bytes']:>12,} {t['dtype']:8} {t['elements']:>10,} {unique:>8} "
                           f"{t['zero_fraction']:>6.1%}  {t['name']}")
    if other:
        d = compare(results[0], results[1])
        for key in ("raw_bytes", "gzip_bytes", "zstd_bytes"):
            click.echo(f"{key[:-6]:>5}: {summary_line(d[key]['before'], d[key]['after'])}")


@click.command("optimize")
@MODEL_ARG
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the optimised model (written atomically).")
@click.option("-p", "--pipeline", default="", help="Passes to run, e.g. 'prune(sparsity=0.5),quantize(mode=int8)'.")
@click.option("--calibration", type=click.Path(path_type=Path), default=None,
              help="Calibration samples: FILE.npz[:KEY], .npy, an image folder, or module:function.")
@click.option("--calibration-normalize", type=click.Choice(["unit", "signed", "raw", "imagenet"]), default="unit",
              show_default=True, help="Image folder pixels: unit [0,1], signed [-1,1], raw 0..255, imagenet mean/std.")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D1,D2,...",
              help="Size of a dynamic input for generated calibration samples (random:N, images), e.g. "
                   "audio=1,1760; repeatable. Data files give their own shapes.")
@click.option("--force", is_flag=True, help="Allow OUTPUT to be the same file as MODEL.")
@click.option("--layout", type=click.Choice(["auto", "inline", "external"]), default="auto", show_default=True,
              help="Where buffer bytes go: inside the flatbuffer, or after it (needed above 2 GB).")
@click.option("--sizes", is_flag=True, help="Also report gzip and zstd sizes before and after (gzip -6, -1 for "
              "an input over 1 GiB, and zstd -3, streamed from the files; levels as `tflopt size` takes them).")
@click.option("--gzip-level", type=click.IntRange(1, 9), default=None, help="gzip level for --sizes [default: as size].")
@click.option("--zstd-level", type=click.IntRange(1, 22), default=None, help="zstd level for --sizes [default: 3].")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.option("--check", "check", is_flag=True,
              help="Load, allocate and run OUTPUT in the interpreter (a child process) before writing it.")
@gate_options
def optimize_cmd(model: Path, output: Path, pipeline: str, calibration, calibration_normalize: str, input_shape,
                 force: bool, layout: str, sizes: bool, gzip_level: int | None, zstd_level: int | None, as_json: bool,
                 eval_data, labels, min_cosine, min_snr, max_accuracy_drop, max_latency_ratio, allow_same_data,
                 report, check: bool = False):
    """Run a pipeline of passes over MODEL and write the result to OUTPUT.

    With --data EVAL and gates (--min-cosine, --min-snr, --max-accuracy-drop,
    --max-latency-ratio) the result is measured against MODEL first; a failing gate exits 1,
    says which gate and by how much, and writes nothing."""
    from .evaluation.cli import check_gate_options, echo_passes, evaluate_output
    from .pipeline import PassContext, PassManager, parse_pipeline
    passes = parse_pipeline(pipeline)  # before any I/O, so a typo fails fast
    from .runtime import parse_input_shapes
    try:
        input_shapes = parse_input_shapes(input_shape)
    except ValueError as e:
        fail(str(e))
    thresholds = {"min_cosine": min_cosine, "min_snr": min_snr, "max_accuracy_drop": max_accuracy_drop,
                  "max_latency_ratio": max_latency_ratio}
    check_gate_options(eval_data=eval_data, labels=labels, calibration=calibration, allow_same_data=allow_same_data,
                       report=report, thresholds=thresholds)
    if output.exists() and model.exists() and output.resolve() == model.resolve() and not force:
        fail(f"{output}: output is the input file; pass --force to overwrite it")
    if output.exists() and output.is_dir():
        fail(f"{output}: is a directory")
    if not output.parent.exists() and str(output.parent):
        fail(f"{output}: folder {output.parent} does not exist")
    m = load(model)
    # Everything "before" is measured now: with --force, OUT may be MODEL and be replaced below.
    gated = any(v is not None for v in thresholds.values())
    evaluating = gated or report is not None or eval_data is not None
    before_size = model.stat().st_size
    before_bytes = model.read_bytes() if evaluating else None
    before = m.clone() if report is not None else None
    before_sizes = None
    if sizes or report is not None:
        from .size import default_levels, file_sizes
        gzip_level, zstd_level = default_levels(before_size, gzip_level, zstd_level)
        before_sizes = file_sizes(model, gzip_level=gzip_level, zstd_level=zstd_level)
    ctx = PassContext(input_shapes=input_shapes)
    if calibration is not None:
        from .calibration import load_calibration
        ctx.calibration = load_calibration(calibration, m, normalize=calibration_normalize, input_shapes=input_shapes)
    run = PassManager(passes).run(m, ctx)
    measured = None
    if evaluating:
        measured = evaluate_output(before_bytes, m.to_bytes(), eval_data=eval_data, labels=labels,
                                   thresholds=thresholds, report=report is not None)
        failed = [g for g in measured["gates"] if not g.passed]
        if failed:
            for g in measured["gates"]:
                click.echo(f"tflopt: {g.message()}", err=True)
            click.echo(f"tflopt: {len(failed)} gate(s) failed; {output} not written", err=True)
            raise click.exceptions.Exit(1)
    checks: list[str] = []
    if check:
        from .check import save_checked
        checks = save_checked(m, output, layout=layout, input_path=model, input_shapes=input_shapes)
    else:
        m.save(output, layout=layout)
    out = {"input": str(model), "output": str(output), "pipeline": ",".join(p.spec() for p in passes),
           **run.as_dict()}
    if check:
        out["check"] = checks
    out["size"] = {"before": {"raw_bytes": before_size}, "after": {"raw_bytes": output.stat().st_size}}
    if before_sizes is not None:
        out["size"]["before"].update(before_sizes)
        out["size"]["after"].update(file_sizes(output, gzip_level=gzip_level, zstd_level=zstd_level))
    if measured is not None:
        out["gates"] = [g.as_dict() for g in measured["gates"]]
        if measured["comparison"] is not None:
            out["comparison"] = measured["comparison"]
    if report is not None:
        from .reports import optimize_report, write_report
        write_report(report, optimize_report(out, before=before, after=m, comparison=measured["comparison"],
                                             layers=measured["layers"], bench=measured["bench"],
                                             gates=measured["gates"], notes=measured["notes"]))
    if as_json:
        emit_json(out)
        return
    from .reports.build import size_change
    echo_passes(run, details=lambda rec: _echo_recovery(rec.stats.get("recovery")), input_bytes=before_size)
    for key in ("raw_bytes", "gzip_bytes", "zstd_bytes"):
        if key in out["size"]["after"]:
            click.echo(f"{key[:-6]:>5}: {size_change(out['size']['before'][key], out['size']['after'][key])}")
    for line in checks:
        click.echo(line)
    if measured is not None:
        from .evaluation.cli import compare_lines
        if measured["comparison"] is not None and eval_data is not None:
            for line in compare_lines(measured["comparison"]):
                click.echo(line)
        for g in measured["gates"]:
            click.echo(g.message())
    if report is not None:
        click.echo(f"wrote {report}")
    click.echo(f"wrote {output}")


def _echo_recovery(rec: dict | None) -> None:
    """The calibrated methods' per-layer figures: relative output error plain -> recovered."""
    if not rec or not rec.get("layers_recovered"):
        return
    click.echo(f"  recovery: {rec['layers_recovered']} layers ({rec['layers_fallback']} plain), mean relative "
               f"output error {rec['mean_error_plain']:.4g} -> {rec['mean_error_recovered']:.4g}, "
               f"{rec['recovery_seconds']:.1f} s")
    for r in rec["layers"]:
        if r.get("recovered"):
            plain = "-" if r["error_plain"] is None else f"{r['error_plain']:.4g}"
            click.echo(f"    {plain:>10} -> {r['error_recovered']:<10.4g} {r['seconds']:7.3f} s  {r['name']}")


def _type_name(hint) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


@click.command("passes")
@click.option("--json", "as_json", is_flag=True)
def passes_cmd(as_json: bool):
    """List the available passes and their options."""
    import dataclasses
    import typing

    from .pipeline import REGISTRY, _load_builtin_passes, option_default
    _load_builtin_passes()
    out = []
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        hints = typing.get_type_hints(cls.Options)
        opts = [{"name": f.name, "type": _type_name(hints[f.name]), "default": option_default(f),
                 "search": list(f.metadata.get("search", []))}   # values `tflopt search` explores
                for f in dataclasses.fields(cls.Options)]
        out.append({"name": name, "summary": cls.summary, "options": opts})
    if as_json:
        emit_json(out)
        return
    for p in out:
        click.echo(f"{p['name']}: {p['summary']}")
        for o in p["options"]:
            searched = f"  [search: {', '.join(map(str, o['search']))}]" if o["search"] else ""
            click.echo(f"    {o['name']} ({o['type']}) = {o['default']!r}{searched}")


