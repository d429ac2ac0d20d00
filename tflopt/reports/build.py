"""Report data from what the commands measured (see ``render`` for the format)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import plots


def _table(columns, rows) -> dict:
    return {"type": "table", "columns": list(columns), "rows": [list(r) for r in rows]}


def _text(text: str, css: str | None = None) -> dict:
    return {"type": "text", "text": text, **({"css": css} if css else {})}


# -- what a pass achieved, in words -----------------------------------------------------------
def pass_summary(rec: dict) -> list[str]:
    """Plain-words lines for one pass record (``PassRecord.as_dict()``): sparsity reached,
    tensors touched and skipped and why, values per tensor, ops quantized."""
    s, name, lines = rec.get("stats") or {}, rec.get("name"), []
    tensors = s.get("tensors") if isinstance(s.get("tensors"), list) else []  # cleanup counts them
    touched = [t for t in tensors if t.get("pruned") or t.get("clustered") or t.get("sparse_storage_after")
               and not t.get("sparse_storage_before")]
    if name == "prune" and tensors:
        reached = [t.get("sparsity_after", 0.0) for t in touched]
        lines.append(f"pruned {len(touched)} of {len(tensors)} weight tensors to "
                     + (f"{min(reached):.1%}-{max(reached):.1%} zeros" if reached else "no zeros")
                     + f" (target {s.get('sparsity')}, {s.get('pattern', 'unstructured')})")
    elif name == "cluster" and tensors:
        per = sorted({t.get("distinct_after") for t in touched if t.get("distinct_after") is not None})
        lines.append(f"clustered {len(touched)} of {len(tensors)} weight tensors to "
                     + (f"{per[0]}-{per[-1]}" if len(per) > 1 else (f"{per[0]}" if per else "?"))
                     + f" distinct values per tensor (asked {s.get('clusters')})")
    elif name == "sparsify":
        lines.append(f"stored {s.get('sparsified_tensors', 0)} tensors in the sparse format")
    elif name == "quantize":
        mode = s.get("mode")
        if "quantized_ops" in s:
            fl = s.get("float_ops") or {}
            lines.append(f"{mode}: {s['quantized_ops']} ops quantized"
                         + (", left float: " + ", ".join(f"{k} x{v}" for k, v in fl.items()) if fl else
                            ", none left float"))
        else:
            lines.append(f"{mode}: {s.get('quantized', 0)} weight tensors quantized"
                         + "".join(f", {s[k]} {k.replace('_', ' ')}" for k in
                                   ("skipped_small", "skipped_by_selection", "reused_int8") if s.get(k)))
    elif name == "audit":
        for target, a in s.items():
            if isinstance(a, dict) and "summary" in a:
                sm = a["summary"]
                lines.append(f"{a.get('title', target)}: {sm['accelerated_ops']} of {sm['ops']} ops accelerated "
                             f"({sm['accelerated_share']:.0f}%), {sm['partitions']} partition(s)")
    elif name == "cleanup":
        lines.append("removed " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in s.items() if isinstance(v, int)))
    skipped = [t for t in tensors if t not in touched]
    if skipped and name in ("prune", "cluster"):
        lines.append("left as they were: " + ", ".join(
            f"{t.get('name')} ({t.get('reason') or t.get('skip') or 'not selected'})" for t in skipped[:6])
            + (f" and {len(skipped) - 6} more" if len(skipped) > 6 else ""))
    for w in rec.get("warnings") or []:
        lines.append(f"warning: {w}")
    rc = s.get("recovery")
    if rc and rc.get("layers_recovered"):
        lines.append(f"recovery on {rc['layers_recovered']} layers: mean relative output error "
                     f"{rc['mean_error_plain']:.4g} -> {rc['mean_error_recovered']:.4g}")
    return lines


def size_change(before: int, after: int) -> str:
    """'158,240 -> 47,616 (69.91% smaller)' / '... (12.50% larger)': growth reads as growth."""
    if not before:
        return f"{before:,} -> {after:,}"
    change = (after - before) / before * 100
    word = "smaller" if change < 0 else ("larger" if change > 0 else "same size")
    return f"{before:,} -> {after:,} ({abs(change):.2f}% {word})" if change else f"{before:,} -> {after:,} (same size)"


# -- sections ---------------------------------------------------------------------------------
def fidelity_section(result: dict) -> dict:
    blocks = []
    if result.get("random_inputs"):
        from ..evaluation.compare import RANDOM_NOTE
        blocks.append(_text("Note: " + RANDOM_NOTE))
    rows = []
    for o in result["outputs"]:
        acc = o.get("accuracy") or {}
        rows.append([(f"[{o['signature']}] " if o.get("signature") else "") + o["name"], o["cosine"], o["snr_db"],
                     o["max_abs_error"], o.get("top1_agreement"), acc.get("reference_top1"),
                     acc.get("candidate_top1"), acc.get("top1_drop"), acc.get("candidate_topk")])
    k = next((o["accuracy"]["top_k"] for o in result["outputs"] if "accuracy" in o), 5)
    blocks.append(_text(f"{result['samples']} samples."))
    blocks.append(_table(["output", "cosine", "SNR dB", "max |err|", "top-1 agreement", "reference top-1",
                          "candidate top-1", "top-1 drop", f"candidate top-{k}"], rows))
    return {"title": "Fidelity and accuracy per output", "blocks": blocks}


def layers_section(layers: list[dict]) -> dict:
    names = [_short(x["name"]) for x in layers]
    snr = [x["snr_db"] if math.isfinite(x["snr_db"]) else float("nan") for x in layers]
    cos = [x["cosine"] for x in layers]
    fig = {"type": "figure", "title": "Per-layer error: where error enters (shared activations, graph order)",
           "xlabel": "layer (graph order)", "ylabel": "SNR dB / cosine", "logy": False,
           "panels": [{"title": "SNR (dB; exact layers omitted)", "kind": "line", "x": list(range(len(layers))),
                       "y": snr, "xticks": names}]}
    fig2 = {"type": "figure", "title": "Per-layer cosine similarity", "xlabel": "layer (graph order)",
            "ylabel": "cosine", "logy": False,
            "panels": [{"title": "cosine", "kind": "line", "x": list(range(len(layers))), "y": cos,
                        "xticks": names}]}
    return {"title": "Per-layer error", "blocks": [fig, fig2, _table(
        ["layer", "cosine", "SNR dB", "max |err|"],
        [[x["name"], x["cosine"], x["snr_db"], x["max_abs_error"]] for x in layers])]}


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else "..." + name[-(n - 3):]


def latency_section(bench: dict) -> dict:
    rows = []
    for r in bench["results"]:
        if "error" in r:
            rows.append([Path(r["model"]).name, r["backend"], r["threads"], r["error"], "", "", "", "", "", "", ""])
            continue
        dl = ", ".join(f"{k} {v['share']:.0%}" for k, v in r.get("delegated", {}).items()) or "-"
        rows.append([Path(r["model"]).name, r["backend"], r["threads"], r["median_ms"], r["p90_ms"], r["p99_ms"],
                     r["min_ms"], r["init_ms"], r["peak_rss_bytes"] / 2**20, dl, r.get("ratio")])
    blocks = [_table(["model", "backend", "threads", "median ms", "p90 ms", "p99 ms", "min ms", "init ms",
                      "peak MB", "delegated", "ratio to first"], rows)]
    if bench.get("gpu"):
        blocks.append(_text(f"GPU: {bench['gpu']}"))
    blocks.append(_text(f"Note: {bench['per_op']}"))
    return {"title": "Latency on this host (LiteRT runtime)", "blocks": blocks}


def density_section(before, after, max_tensors: int = 3, bins: int = 81) -> dict:
    """Weight-density histograms of the largest kernels, before and after, one row per tensor
    with shared scales (the same bin edges and axis limits across the row)."""
    from ..plot import _key
    from ..weights import find_weights, float_values
    chosen = sorted(find_weights(before), key=lambda r: -r.tensor.num_elements)[:max_tensors]
    later = {_key(r): r for r in find_weights(after)}
    blocks = []
    for ref in chosen:
        v0 = float_values(ref.tensor).ravel()
        lo, hi = float(v0.min()), float(v0.max())
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.linspace(lo - 1, hi + 1, bins + 1)
        panels = [plots.histogram_panel(f"before: {_distinct(v0)}", v0, edges)]
        found = later.get(_key(ref))
        if found is not None:
            v1 = float_values(found.tensor).ravel()
            panels.append(plots.histogram_panel(f"after: {_distinct(v1)}", v1, edges))
        blocks.append({"type": "figure", "title": f"Weight density of {_short(ref.name, 60)} "
                       f"({ref.tensor.num_elements:,} values)", "xlabel": "weight value", "ylabel": "count (log)",
                       "logy": True, "panels": panels})
    return {"title": "Weight density of the largest tensors", "blocks": blocks or [_text("No weight tensors.")]}


def _distinct(v: np.ndarray) -> str:
    from ..distinct import distinct_count
    return f"{distinct_count(v):,} values, {np.mean(v == 0):.0%} zero"


def audit_section(audit_stats: dict) -> dict:
    rows = []
    for target, a in audit_stats.items():
        if isinstance(a, dict) and "summary" in a:
            s = a["summary"]
            rows.append([a.get("title", target), s["ops"], s["supported_share"], s["accelerated_share"],
                         s["partitions"], s.get("accelerated_macs_share")])
    return {"title": "Delegate audit", "blocks": [_table(
        ["target", "ops", "supported %", "accelerated %", "partitions", "accelerated MACs %"], rows)]}


def gates_section(gates: list) -> dict:
    rows = [[g.name, g.threshold, g.measured, g.margin, "passed" if g.passed else "FAILED"] for g in gates]
    return {"title": "Quality gates", "blocks": [_table(["gate", "threshold", "measured", "margin", "result"], rows)]}


# -- whole reports ----------------------------------------------------------------------------
# Bars drawn in the sensitivity ranking; the table lists every island the analysis returned.
SENSITIVITY_BARS = 40


def sensitivity_section(result: dict) -> dict:
    """An ``analyze`` result (tflopt.sensitivity) as a ranked bar plot and a table."""
    ranked = result["ranked"]
    full = result["full_quantized"]
    blocks = [_text(f"Whole model {result['mode']}: min output cosine {full['min_cosine']:.6g}, min SNR "
                    f"{full['min_snr_db']:.3g} dB on {result['evaluation_samples']} evaluation samples; "
                    f"{result['islands']} islands (ops that share an encoding), ranked by the loss of "
                    f"quantizing each alone.")]
    shown = ranked[:SENSITIVITY_BARS]
    blocks.append({"type": "figure", "title": f"Sensitivity: the {len(shown)} islands int8 hurts most",
                   "xlabel": "1 - min output cosine with only this island integer", "ylabel": "island",
                   "logy": False, "panels": [{
                       "title": "", "kind": "hbars",
                       "labels": [f"{r['rank']}. {'+'.join(dict.fromkeys(r['ops']))} {_short(r['island'], 40)}"
                                  for r in shown],
                       "y": [1.0 - r["only_quantized"]["min_cosine"] for r in shown]}]})
    rows = []
    for r in ranked:
        of = r.get("only_float") or {}
        rows.append([r["rank"], r["island"], "+".join(dict.fromkeys(r["ops"])), 100 * r["macs_share"],
                     r["only_quantized"]["min_cosine"], r["only_quantized"]["min_snr_db"], of.get("min_cosine"),
                     r.get("blame"), r.get("gain_if_float")])
    blocks.append(_table(["rank", "island", "ops", "MACs %", "only int8: min cosine", "only int8: min SNR dB",
                          "only float: min cosine", "blame", "gain if float"], rows))
    return {"title": "Quantization sensitivity", "blocks": blocks}


def sensitivity_report(result: dict) -> dict:
    return {"title": "tflopt sensitivity", "subtitle": f"{result.get('model', '')}: {result['mode']}, "
            f"{result['islands']} islands, {result['seconds']:.1f} s", "sections": [sensitivity_section(result)]}


def compare_report(reference, candidate, result: dict, *, data=None, labels=None) -> dict:
    sections = [fidelity_section(result)]
    if result.get("layers"):
        sections.append(layers_section(result["layers"]))
    sub = f"{candidate} against {reference}; data: {data or 'random inputs'}" + (f"; labels: {labels}" if labels else "")
    return {"title": "tflopt compare", "subtitle": sub, "sections": sections}


def bench_report(bench: dict) -> dict:
    return {"title": "tflopt bench", "subtitle": "Latency of whole models as an app runs them.",
            "sections": [latency_section(bench)]}


def optimize_report(out: dict, *, before=None, after=None, comparison: dict | None = None,
                    layers: list | None = None, bench: dict | None = None, gates: list | None = None,
                    notes: list[str] | None = None) -> dict:
    """``out``: the optimize JSON; ``before`` / ``after``: the Models (for density plots)."""
    passes = out.get("passes", [])
    rows = [[p["spec"], "changed" if p["changed"] else "no change", p["seconds"] * 1000,
             size_change(p["bytes_before"], p["bytes_after"]), "; ".join(pass_summary(p))] for p in passes]
    raw_in = out["size"]["before"]["raw_bytes"]
    if passes and passes[0]["bytes_before"] != raw_in:
        rows.insert(0, ["(rewrite, before any pass)", "", 0.0, size_change(raw_in, passes[0]["bytes_before"]),
                        "tflopt's serialisation of the input"])
    sections = [{"title": "Pipeline", "blocks": [_text(out.get("pipeline") or "(empty: a faithful rewrite)"),
                                                 _table(["pass", "result", "ms", "bytes", "what it did"], rows)]}]
    size_rows = [[k[:-6], out["size"]["before"][k], out["size"]["after"][k],
                  size_change(out["size"]["before"][k], out["size"]["after"][k])]
                 for k in ("raw_bytes", "gzip_bytes", "zstd_bytes") if k in out["size"]["after"]]
    sections.append({"title": "Sizes", "blocks": [_table(["size", "before", "after", "change"], size_rows)]})
    if gates:
        sections.append(gates_section(gates))
    if notes:
        sections.append({"title": "Not measured", "blocks": [{"type": "list", "items": list(notes)}]})
    if comparison:
        sections.append(fidelity_section(comparison))
    if layers:
        sections.append(layers_section(layers))
    if before is not None and after is not None:
        sections.append(density_section(before, after))
    if bench:
        sections.append(latency_section(bench))
    for p in passes:
        if p["name"] == "audit":
            sections.append(audit_section(p["stats"]))
        # Mixed precision that kept its sensitivity ranking (an ``analyze`` result) shows it.
        ranking = (p.get("stats") or {}).get("mixed_precision", {}).get("sensitivity")
        if ranking and ranking.get("ranked"):
            sections.append(sensitivity_section(ranking))
    return {"title": "tflopt optimize", "subtitle": f"{out['input']} -> {out['output']}", "sections": sections}
