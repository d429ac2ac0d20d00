"""``tflopt search --report FILE.html``: one self-contained page (images inline, no network).

Per model: the Pareto plot (size against accuracy or fidelity, latency as colour when
measured; the front joined, the choice starred), and the tree as explored, each node with its
figures and whether it meets the goals, was skipped or failed.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from .goals import METRICS


def _quality_axis(result: dict) -> str:
    measured = set(result["baseline"])
    for m in ("accuracy", "min_cosine", "min_snr"):
        if m in measured:
            return m
    return result["pareto_metrics"][-1]


def pareto_png(result: dict) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    obj, q = result["objective"], _quality_axis(result)
    ok = [t for t in result["trials"] if t["status"] == "ok" and obj in t["metrics"] and q in t["metrics"]]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    xs = [t["metrics"][obj] for t in ok]
    ys = [t["metrics"][q] for t in ok]
    colour = [t["metrics"].get("latency") for t in ok]
    if ok and all(c is not None for c in colour):
        sc = ax.scatter(xs, ys, c=colour, cmap="viridis", s=28, zorder=2)
        fig.colorbar(sc, ax=ax, label="latency (ms, median)")
    else:
        ax.scatter(xs, ys, c=["tab:blue" if t["meets_goals"] else "tab:gray" for t in ok], s=28, zorder=2)
    # The front in this plot's two dimensions (the JSON's front spans every goal metric).
    sign = 1 if METRICS[q][0] == "higher" else -1
    pts = sorted([(x, y) for x, y in zip(xs, ys)] + [(result["baseline"][obj], result["baseline"][q])])
    front, best = [], -float("inf")
    for x, y in pts:
        if sign * y > best:
            front.append((x, y))
            best = sign * y
    ax.step([f[0] for f in front], [f[1] for f in front], "--", where="post", color="tab:red", lw=1,
            label="Pareto front", zorder=1)
    b = result["baseline"]
    ax.scatter([b[obj]], [b[q]], marker="s", color="black", s=40, label="input model", zorder=3)
    if result["chosen"]:
        c = result["chosen"]["metrics"]
        ax.scatter([c[obj]], [c[q]], marker="*", color="tab:orange", s=220, label="chosen", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel(f"{obj} (log scale)")
    ax.set_ylabel(q + (f" ({METRICS[q][1]})" if METRICS[q][1] else ""))
    ax.set_title(f"{Path(result['model']).name}: {len(ok)} candidates, {obj} against {q}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}"


def _tree_rows(result: dict, columns: list[str]) -> str:
    by_parent: dict[str, list] = {}
    for t in result["trials"]:
        by_parent.setdefault(t["parent"], []).append(t)
    rows = []

    def add(t, depth):
        name = t["pipeline"].split("),")[-1] if depth else t["pipeline"]
        cls = "meets" if t["meets_goals"] else ("failed" if t["status"] != "ok" else "misses")
        status = "meets" if t["meets_goals"] else (t["error"] or "failed" if t["status"] != "ok"
                                                     else "misses " + ", ".join(t["violated"]))
        cells = "".join(f"<td>{_fmt(t['metrics'].get(c))}</td>" for c in columns)
        chosen = " &#9733;" if result["chosen"] and t["pipeline"] == result["chosen"]["pipeline"] else ""
        rows.append(f"<tr class='{cls}'><td style='padding-left:{depth * 1.4 + 0.3}em' title='{html.escape(t['pipeline'])}'>"
                    f"{html.escape(name)}{chosen}</td>{cells}<td>{html.escape(status)}</td>"
                    f"<td>{'cache' if t['from_cache'] else 'run'}</td></tr>")
        for child in by_parent.get(t["pipeline"], []):
            add(child, depth + 1)
    base = "".join(f"<td>{_fmt(result['baseline'].get(c))}</td>" for c in columns)
    rows.append(f"<tr><td><b>input model</b></td>{base}<td>baseline</td><td></td></tr>")
    for t in by_parent.get("", []):
        add(t, 1)
    return "\n".join(rows)


_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} td:first-child,td:nth-last-child(2),th:first-child{text-align:left}
tr.meets{background:#eef8ee} tr.misses{background:#fff} tr.failed{background:#fbeaea} h2{margin-top:1.6em}
code{background:#f3f3f3;padding:1px 4px}"""


def chosen_report(result: dict, ev) -> str | None:
    """The evaluation issue's report of the chosen model against the input (fidelity and
    accuracy per output, weight densities), as its own page for an iframe."""
    if not result.get("chosen") or not result["chosen"].get("output"):
        return None
    from ..io import load
    from ..reports import build, render
    from .measure import compare, runnable_pair
    before = Path(result["model"]).read_bytes()
    after = Path(result["chosen"]["output"]).read_bytes()
    ref, cand, _ = runnable_pair(before, after)
    comparison = compare(ref, cand, ev)
    report = build.compare_report(result["model"], result["chosen"]["output"], comparison, data=ev.data,
                                  labels=ev.labels)
    report["title"] = "chosen model: " + (result["chosen"]["pipeline"] or "(input unchanged)")
    report["sections"].append(build.density_section(load(before), load(after)))
    return render.render_html(report)


def render(results: list[dict], chosen_pages: list[str | None] | None = None) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>tflopt search</title><style>{_CSS}</style>"
             "</head><body><h1>tflopt search</h1>"]
    for r in results:
        c = r["counts"]
        parts.append(f"<h2>{html.escape(r['model'])}</h2><p>goals: <code>{html.escape(', '.join(r['goals']))}</code>; "
                     f"minimise <code>{r['objective']}</code>; {c['trials']} trials ({c['executed']} run, "
                     f"{c['from_cache']} from cache, {c['failed']} failed); stopped: {html.escape(r['stopped'])}; "
                     f"{r['seconds']:.1f} s.</p>")
        if r["chosen"]:
            parts.append(f"<p>chosen: <code>{html.escape(r['chosen']['pipeline'] or '(input unchanged)')}</code> "
                         f"&rarr; {html.escape(str(r['chosen'].get('output', '')))}; rerun it with "
                         f"<code>tflopt optimize MODEL -o OUT --pipeline \"{html.escape(r['chosen']['pipeline'])}\""
                         f" --calibration CAL</code></p>")
        else:
            parts.append("<p><b>no candidate meets every goal</b>: nothing written.</p>")
        png = base64.b64encode(pareto_png(r)).decode()
        parts.append(f"<img alt='Pareto plot' src='data:image/png;base64,{png}'>")
        columns = [m for m in dict.fromkeys(r["pareto_metrics"] + ["raw_bytes", "latency"])
                   if m in r["baseline"] or any(m in t["metrics"] for t in r["trials"])]
        head = "".join(f"<th>{m}</th>" for m in columns)
        parts.append(f"<h3>Explored tree</h3><table><tr><th>pass</th>{head}<th>goals</th><th>trial</th></tr>"
                     f"{_tree_rows(r, columns)}</table>")
        page = (chosen_pages or [None] * len(results))[results.index(r)]
        if page:
            parts.append("<h3>Chosen model</h3><iframe style='width:100%;height:900px;border:1px solid #ccc' "
                         f"srcdoc=\"{html.escape(page, quote=True)}\"></iframe>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, results: list[dict], ev=None) -> None:
    from ..io import atomic_write
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    pages = [chosen_report(r, ev) if ev is not None else None for r in public]
    text = render(public, pages).encode()
    atomic_write(Path(path), lambda f: f.write(text))
