"""Goals (``accuracy_drop<=0.01,latency<=1.0x``) and the objective a search minimises.

A goal names a metric, a comparison and a bound. ``x`` after the bound makes it relative to
the input model (``latency<=1.0x``: no slower than the input; ``gzip_bytes<=0.25x``), resolved
against the input's figures, measured once. Quality metrics only get worse with more
compression, so a branch that breaks one is not descended further (``QUALITY``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import TfloptError

# metric -> (better: "lower" | "higher", unit, may be relative to the input)
METRICS: dict[str, tuple[str, str, bool]] = {
    "raw_bytes": ("lower", "bytes", True),
    "gzip_bytes": ("lower", "bytes", True),
    "zstd_bytes": ("lower", "bytes", True),
    "accuracy": ("higher", "", False),          # top-1 against --labels
    "accuracy_drop": ("lower", "", False),      # input's top-1 minus the candidate's
    "min_cosine": ("higher", "", False),        # lowest output cosine against the input model
    "min_snr": ("higher", "dB", False),
    "latency": ("lower", "ms", True),           # median, from the evaluation's bench
    "target_ops_share": ("higher", "", False),  # share of ops the --target's accelerator takes (audit)
    "target_macs_share": ("higher", "", False),
}
# More compression never brings these back: a branch that breaks one stops there.
QUALITY = frozenset({"accuracy", "accuracy_drop", "min_cosine", "min_snr"})
NEEDS_LABELS = frozenset({"accuracy", "accuracy_drop"})
NEEDS_TARGET = frozenset({"target_ops_share", "target_macs_share"})

_GOAL = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+|inf)\s*(x?)\s*$")


@dataclass(frozen=True)
class Goal:
    metric: str
    op: str
    value: float
    relative: bool = False

    @property
    def text(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}{'x' if self.relative else ''}"

    def bound(self, baseline: dict) -> float:
        """The absolute bound: relative ones scale the input model's figure."""
        if not self.relative:
            return self.value
        base = baseline.get(self.metric)
        if base is None:
            raise TfloptError(f"--goal {self.text}: the input model has no {self.metric} figure")
        return self.value * base

    def met(self, metrics: dict, baseline: dict) -> bool:
        v = metrics.get(self.metric)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return False
        b = self.bound(baseline)
        return {"<=": v <= b, ">=": v >= b, "<": v < b, ">": v > b}[self.op]


def parse_goals(text: str | None) -> list[Goal]:
    """``"accuracy_drop<=0.01,latency<=1.0x"`` -> goals; any mistake is one TfloptError line."""
    goals: list[Goal] = []
    for part in [p for p in (text or "").split(",") if p.strip()]:
        m = _GOAL.match(part)
        if not m:
            raise TfloptError(f"--goal {part.strip()!r}: want METRIC<=VALUE or METRIC>=VALUE "
                              f"(metrics: {', '.join(METRICS)})")
        metric, op, raw, rel = m.groups()
        if metric not in METRICS:
            raise TfloptError(f"--goal {part.strip()!r}: unknown metric {metric!r} (metrics: {', '.join(METRICS)})")
        try:
            value = float(raw)
        except ValueError:
            raise TfloptError(f"--goal {part.strip()!r}: {raw!r} is not a number") from None
        if rel and not METRICS[metric][2]:
            raise TfloptError(f"--goal {part.strip()!r}: {metric} cannot be relative ('x'); "
                              "relative bounds apply to sizes and latency")
        better = METRICS[metric][0]
        if (better == "lower" and op.startswith(">")) or (better == "higher" and op.startswith("<")):
            raise TfloptError(f"--goal {part.strip()!r}: {metric} is better {better}; "
                              f"bound it with {'<=' if better == 'lower' else '>='}")
        goals.append(Goal(metric, op, value, bool(rel)))
    if not goals:
        raise TfloptError("--goal: give at least one goal, e.g. 'accuracy_drop<=0.01' or 'min_cosine>=0.99'")
    seen = [g.metric for g in goals]
    dup = next((g for g in seen if seen.count(g) > 1), None)
    if dup:
        raise TfloptError(f"--goal: {dup} is bounded twice")
    return goals


def check_objective(name: str) -> str:
    if name not in METRICS or METRICS[name][0] != "lower":
        lower = ", ".join(k for k, v in METRICS.items() if v[0] == "lower")
        raise TfloptError(f"--minimize {name!r}: want one of {lower}")
    return name


def sort_key(metric: str, value) -> float:
    """Smaller is better, whichever way the metric points (for fronts and choices)."""
    if value is None:
        return math.inf
    return float(value) if METRICS[metric][0] == "lower" else -float(value)
