"""Reports people read: one self-contained HTML file or Markdown, from the same report data.

Report data is a plain dict (``title``, ``sections``); builders make it from what the
commands measured, renderers turn it into text. See ``build.py`` and ``render.py``.
"""
from .build import bench_report, compare_report, optimize_report, sensitivity_report
from .render import render_html, render_markdown, write_report

__all__ = ["compare_report", "bench_report", "optimize_report", "sensitivity_report", "render_html", "render_markdown", "write_report"]
