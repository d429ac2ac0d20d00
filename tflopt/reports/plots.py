"""Figures for reports: PNG through matplotlib when it is installed, else inline SVG drawn
here. A figure is data (a row of panels sharing their scales), so Markdown can list the same
numbers and HTML can draw them.

figure = {"type": "figure", "title", "xlabel", "ylabel", "logy": bool,
          "panels": [{"title", "kind": "line" | "bars", "x": [...], "y": [...], "xticks"?: [...]}]}
A ranking is one panel of kind "hbars": "labels" (top first) and "y" (bar lengths, >= 0), drawn
as labelled horizontal bars; ``xlabel`` names the bar length.
"""
from __future__ import annotations

import base64
import html
import io
import math

import numpy as np


def histogram_panel(title: str, values: np.ndarray, edges: np.ndarray) -> dict:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    centers = (edges[:-1] + edges[1:]) / 2
    return {"title": title, "kind": "bars", "x": centers.tolist(), "y": counts.tolist(),
            "width": float(edges[1] - edges[0])}


def _limits(fig: dict):
    xs = [v for p in fig["panels"] for v in p["x"] if _finite(v)]
    ys = [v for p in fig["panels"] for v in p["y"] if _finite(v)]
    if fig.get("logy"):
        ys = [v for v in ys if v > 0]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if not fig.get("logy"):
        y0 = min(y0, 0.0)
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 <= y0:
        y1 = y0 + 1
    return x0, x1, y0, y1


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def png_base64(fig: dict) -> str | None:
    """The figure as a base64 PNG, or None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = fig["panels"]
    if panels[0]["kind"] == "hbars":
        return _png_hbars(fig, plt)
    wide = any(p.get("xticks") for p in panels)  # a per-layer curve needs room for its labels
    size = (10, 4.2) if wide else (min(3.6 * len(panels), 13), 2.8)
    f, axes = plt.subplots(1, len(panels), figsize=size, squeeze=False, sharex=True, sharey=True)
    for ax, p in zip(axes[0], panels):
        y = [v if _finite(v) else np.nan for v in p["y"]]
        if p["kind"] == "bars":
            ax.bar(p["x"], y, width=p.get("width", 0.8), color="C0")
        else:
            ax.plot(p["x"], y, marker="o", markersize=3, color="C1")
            if p.get("xticks"):
                ax.set_xticks(range(len(p["xticks"])))
                ax.set_xticklabels(p["xticks"], rotation=60, ha="right", fontsize=6)
        if fig.get("logy"):
            ax.set_yscale("log")
        ax.set_title(p["title"], fontsize=8)
        ax.set_xlabel(fig["xlabel"], fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel(fig["ylabel"], fontsize=7)
    f.suptitle(fig["title"], fontsize=9)
    return _png(f, plt)


def _png(f, plt) -> str:
    f.tight_layout()
    buf = io.BytesIO()
    f.savefig(buf, format="png", dpi=72)
    plt.close(f)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png_hbars(fig: dict, plt) -> str:
    p = fig["panels"][0]
    f, ax = plt.subplots(figsize=(10, 1.0 + 0.26 * max(len(p["y"]), 1)))
    ax.barh(range(len(p["y"])), [v if _finite(v) else 0.0 for v in p["y"]], color="C0")
    ax.set_yticks(range(len(p["labels"])))
    ax.set_yticklabels(p["labels"], fontsize=9)
    ax.invert_yaxis()  # rank 1 on top
    ax.set_xlabel(fig["xlabel"], fontsize=9)
    ax.set_title(fig["title"], fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    return _png(f, plt)


def _svg_hbars(fig: dict) -> str:
    """A ranking as labelled horizontal bars, rank 1 on top, lengths on one linear scale."""
    p = fig["panels"][0]
    values = [v if _finite(v) and v > 0 else 0.0 for v in p["y"]]
    top, row, label_w, bar_w = 30, 16, 330, 560
    scale = max(values, default=0.0) or 1.0
    height = top + row * len(values) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" height="{height}" role="img">',
           f'<title>{html.escape(fig["title"])}</title>',
           f'<text x="{(label_w + bar_w) / 2}" y="14" text-anchor="middle" font-size="12">{html.escape(fig["title"])}</text>']
    for i, (label, v) in enumerate(zip(p["labels"], values)):
        y = top + i * row
        w = v / scale * bar_w
        out.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end" font-size="10">{html.escape(str(label))}</text>'
                   f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 4}" fill="#1f77b4"/>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 11}" font-size="9">{v:.3g}</text>')
    out.append(f'<text x="{label_w + bar_w / 2}" y="{height - 8}" text-anchor="middle" font-size="10">'
               f'{html.escape(fig["xlabel"])}</text></svg>')
    return "".join(out)


def svg(fig: dict) -> str:
    """The figure as inline SVG (no matplotlib needed): one panel per column, shared scales."""
    panels = fig["panels"]
    if panels[0]["kind"] == "hbars":
        return _svg_hbars(fig)
    pw, ph, m = 240, 170, 34
    width, height = pw * len(panels), ph + 40
    x0, x1, y0, y1 = _limits(fig)
    log = bool(fig.get("logy"))
    ty = (lambda v: math.log10(v)) if log else (lambda v: v)
    ly0, ly1 = (ty(max(y0, 1e-12)), ty(y1)) if log else (y0, y1)
    if ly1 <= ly0:
        ly1 = ly0 + 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
           f'<title>{html.escape(fig["title"])}</title>',
           f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{html.escape(fig["title"])}</text>']
    for i, p in enumerate(panels):
        ox = i * pw + m
        w, h, top = pw - m - 8, ph - 50, 30

        def sx(v):
            return ox + (v - x0) / (x1 - x0) * w

        def sy(v):
            if log and v <= 0:
                return top + h
            return top + h - (ty(v) - ly0) / (ly1 - ly0) * h
        out.append(f'<rect x="{ox}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
        out.append(f'<text x="{ox + w / 2}" y="{top - 4}" text-anchor="middle" font-size="9">'
                   f'{html.escape(p["title"])}</text>')
        pts = [(x, y) for x, y in zip(p["x"], p["y"]) if _finite(x) and _finite(y)]
        if p["kind"] == "bars":
            bw = max(1.0, p.get("width", 1.0) / (x1 - x0) * w)
            for x, y in pts:
                if y > 0:
                    out.append(f'<rect x="{sx(x) - bw / 2:.1f}" y="{sy(y):.1f}" width="{bw:.1f}" '
                               f'height="{top + h - sy(y):.1f}" fill="#1f77b4"/>')
        elif pts:
            out.append('<polyline fill="none" stroke="#ff7f0e" points="'
                       + " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts) + '"/>')
        out.append(f'<text x="{ox + w / 2}" y="{top + h + 22}" text-anchor="middle" font-size="9">'
                   f'{html.escape(fig["xlabel"])}</text>')
        out.append(f'<text x="{ox}" y="{top + h + 12}" font-size="8">{x0:.3g}</text>'
                   f'<text x="{ox + w}" y="{top + h + 12}" font-size="8" text-anchor="end">{x1:.3g}</text>')
        if i == 0:
            out.append(f'<text x="{ox - 4}" y="{top + 8}" font-size="8" text-anchor="end">{y1:.3g}</text>')
            out.append(f'<text x="10" y="{top + h / 2}" font-size="9" transform="rotate(-90 10 {top + h / 2})" '
                       f'text-anchor="middle">{html.escape(fig["ylabel"])}</text>')
    out.append("</svg>")
    return "".join(out)
