"""Text table, Markdown and JSON renderings of an AuditReport."""
from __future__ import annotations


def _summary_line(name: str, s: dict) -> str:
    line = (f"{name}: {s['accelerated_ops']}/{s['ops']} ops on the accelerator ({s['accelerated_share']:.1f}%), "
            f"{s['supported_ops']} supported, MACs {s['accelerated_macs_share']:.1f}% of {s['macs']:,}, "
            f"{s['partitions']} delegated partition(s)")
    if "parameter_cache_bytes" in s:
        fit = "fits" if s["parameters_fit_cache"] else f"{s['streamed_parameter_bytes']:,} B streamed"
        line += (f", parameters {s['accelerated_parameter_bytes']:,} B of "
                 f"{s['parameter_cache_bytes']:,} B cache ({fit})")
    return line


def _status(op) -> str:
    if op.on_accelerator:
        return "yes"
    return "CPU" if op.supported else "no"


def text(report, *, all_ops: bool = False) -> str:
    lines = [f"{report.model}"]
    for name, tr in report.targets.items():
        lines.append("")
        lines.append(f"== {tr.title} ==")
        lines.append(f"{'sg':>3} {'#':>4}  {'op':32} {'on':4} reasons")
        for op in tr.ops:
            if not all_ops and op.on_accelerator:
                continue
            why = "; ".join(r.message for r in op.reasons) or (op.placement or "")
            lines.append(f"{op.subgraph:>3} {op.index:>4}  {op.op + ' v' + str(op.version):32} {_status(op):4} {why}")
        lines.append(_summary_line(name, tr.summary))
        for s in report.suggestions.get(name, []):
            lines.append(f"  suggestion: {s.get('text') or s['pipeline'] + ': skipped (' + s['skipped'] + ')'}")
        if name in report.observed:
            lines.extend("  " + x for x in observed_lines(report.observed[name]))
    return "\n".join(lines)


def observed_lines(obs: dict) -> list[str]:
    """The --observe part of a target's section: summary, disagreements, numerics, float16."""
    out = []
    if "unavailable" in obs:
        out.append(f"observed: unavailable ({obs['unavailable']})")
    else:
        s = obs["summary"]
        whole = ""
        if "fully_accelerated" in obs:
            whole = (f", whole model fails to compile ({obs['error'][:120]})" if obs.get("error") else
                     f", whole model fully accelerated: {obs['fully_accelerated']}")
        out.append(f"observed by {obs['runtime']}: {s['observed_ops']}/{s['ops']} ops observed, "
                   f"{s['agreements']} agree with the rules, {s['disagreements']} disagree "
                   f"({s['documented']} documented){whole}")
        for r in obs["ops"]:
            if "disagreement" not in r:
                continue
            rule = "taken" if r["rule"] else "not taken"
            seen = "taken" if r["observed"] else "not taken"
            why = f" (documented: {r['exception']})" if r.get("exception") else " (UNDOCUMENTED)"
            out.append(f"  disagreement #{r['index']} {r['op']}: rules say {rule}, {obs['runtime']} "
                       f"observed {seen}: {r['detail']}{why}")
        for o in (obs.get("numerics") or {}).get("outputs", []):
            out.append(f"  GPU vs CPU on {obs['numerics']['samples']} sample(s), output {o['name']}: "
                       f"cosine {o['cosine']:.6f}, SNR {o['snr_db']:.1f} dB" + ("" if o["finite"] else ", NON-FINITE"))
        if obs.get("numerics_skipped"):
            out.append(f"  GPU numerics skipped: {obs['numerics_skipped'][:160]}")
    f16 = obs.get("float16_overflow")
    if f16 is not None:
        if "skipped" in f16:
            out.append(f"float16 overflow check skipped: {f16['skipped'][:160]}")
        elif f16["tensors"]:
            out.append(f"float16 overflow: {len(f16['tensors'])} tensor(s) exceed +-{f16['limit']:g} on "
                       f"{f16['samples']} sample(s) ({f16['source']}):")
            out.extend(f"  {t['kind']} #{t['index']} {t['name']}: [{t['lo']:.4g}, {t['hi']:.4g}]" for t in f16["tensors"])
        else:
            out.append(f"float16 overflow: none on {f16['samples']} sample(s) ({f16['source']})")
    return out


def markdown(report) -> str:
    out = [f"# Delegate audit: `{report.model}`", ""]
    out.append("| target | ops on accelerator | supported | MACs on accelerator | partitions |")
    out.append("|---|---|---|---|---|")
    for name, tr in report.targets.items():
        s = tr.summary
        out.append(f"| {name} | {s['accelerated_ops']}/{s['ops']} ({s['accelerated_share']:.1f}%) | "
                   f"{s['supported_ops']} | {s['accelerated_macs_share']:.1f}% | {s['partitions']} |")
    for name, tr in report.targets.items():
        out += ["", f"## {tr.title}", "", _summary_line(name, tr.summary), ""]
        off = [op for op in tr.ops if not op.on_accelerator]
        if off:
            out += ["| subgraph | # | op | status | reasons |", "|---|---|---|---|---|"]
            for op in off:
                why = "<br>".join(f"{r.message} ({r.source})" for r in op.reasons) or (op.placement or "")
                out.append(f"| {op.subgraph} | {op.index} | `{op.op}` v{op.version} | {_status(op)} | "
                           f"{why.replace('|', '/')} |")
        for s in report.suggestions.get(name, []):
            out.append(f"- suggestion: {s.get('text') or s['pipeline'] + ': skipped (' + s['skipped'] + ')'}")
        if name in report.observed:
            out += [""] + [f"- {x}" for x in observed_lines(report.observed[name])]
    return "\n".join(out) + "\n"
