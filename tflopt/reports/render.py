"""Report data -> one self-contained HTML page (no network: styles inline, images as base64
PNG or inline SVG) or Markdown for a pull-request comment, from the same dict.

report = {"title": str, "subtitle": str, "sections": [{"title": str, "blocks": [block, ...]}]}
block  = {"type": "text", "text"} | {"type": "list", "items"} | {"type": "table", "columns", "rows"}
       | a figure (see ``plots``)
"""
from __future__ import annotations

import html
import math
from pathlib import Path

from ..errors import TfloptError
from . import plots

_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}"
        "th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f2f2f2}"
        "td.n{text-align:right;white-space:nowrap}td{max-width:460px;overflow-wrap:anywhere}figure{margin:.5em 0 1.2em}"
        "figcaption{font-size:12px;color:#555}h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ddd}"
        ".fail{color:#b00;font-weight:bold}.pass{color:#070}")


def cell(v) -> str:
    """A table cell as text: numbers with sensible precision, non-finite as words."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        # Six significant digits: a cosine of 0.999985 must not print as 1.0000.
        return f"{v:.6g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


def render_html(report: dict, *, images: str = "auto") -> str:
    """``images``: "auto" (PNG when matplotlib is installed, else SVG) or "svg"."""
    e = html.escape
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{e(report['title'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(report['title'])}</h1>"]
    if report.get("subtitle"):
        out.append(f"<p>{e(report['subtitle'])}</p>")
    for section in report["sections"]:
        out.append(f"<h2>{e(section['title'])}</h2>")
        for b in section["blocks"]:
            t = b["type"]
            if t == "text":
                cls = f" class='{b['css']}'" if b.get("css") else ""
                out.append(f"<p{cls}>{e(b['text'])}</p>")
            elif t == "list":
                out.append("<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in b["items"]) + "</ul>")
            elif t == "table":
                out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in b["columns"])
                           + "</tr></thead><tbody>")
                for row in b["rows"]:
                    out.append("<tr>" + "".join(
                        f"<td class='n'>{e(cell(v))}</td>" if isinstance(v, (int, float)) and not isinstance(v, bool)
                        else f"<td>{e(cell(v))}</td>" for v in row) + "</tr>")
                out.append("</tbody></table>")
            elif t == "figure":
                png = plots.png_base64(b) if images == "auto" else None
                body = (f"<img src='data:image/png;base64,{png}' alt='{e(b['title'])}'>" if png
                        else plots.svg(b))
                out.append(f"<figure>{body}<figcaption>{e(b['title'])}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    out = [f"# {report['title']}", ""]
    if report.get("subtitle"):
        out += [report["subtitle"], ""]
    for section in report["sections"]:
        out += [f"## {section['title']}", ""]
        for b in section["blocks"]:
            t = b["type"]
            if t == "text":
                out += [("**" + b["text"] + "**") if b.get("css") == "fail" else b["text"], ""]
            elif t == "list":
                out += [f"- {i}" for i in b["items"]] + [""]
            elif t == "table":
                out.append("| " + " | ".join(_md_escape(c) for c in b["columns"]) + " |")
                out.append("|" + "|".join("---" for _ in b["columns"]) + "|")
                out += ["| " + " | ".join(_md_escape(cell(v)) for v in row) + " |" for row in b["rows"]]
                out.append("")
            elif t == "figure":
                out.append(f"*{b['title']}* ({b['ylabel']} by {b['xlabel']}; drawn in the HTML report)")
                line_panels = [p for p in b["panels"] if p["kind"] == "line"]
                for p in line_panels:
                    labels = p.get("xticks") or p["x"]
                    out += ["", f"| {b['xlabel']} | {b['ylabel']} |", "|---|---|"]
                    out += [f"| {_md_escape(cell(x))} | {cell(y)} |" for x, y in zip(labels, p["y"])]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_report(path, report: dict) -> Path:
    """Write .html / .htm or .md atomically, chosen by the suffix."""
    from ..io import atomic_write
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        text = render_html(report)
    elif suffix == ".md":
        text = render_markdown(report)
    else:
        raise TfloptError(f"{path}: a report is .html or .md")
    if str(path.parent) and not path.parent.exists():
        raise TfloptError(f"{path}: folder {path.parent} does not exist")
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path
