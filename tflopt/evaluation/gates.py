"""Quality gates: thresholds a build can fail on, each checked against a measured figure.

A gate result says what was measured, the threshold, the margin (positive: room to spare,
negative: by how much it failed) and whether it passed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# name -> (what it measures, True when the measured value must stay at or above the threshold)
GATES = {
    "min_cosine": ("lowest cosine over the outputs", True),
    "min_snr": ("lowest SNR (dB) over the outputs", True),
    "max_accuracy_drop": ("largest top-1 accuracy drop against the labels", False),
    "max_latency_ratio": ("median latency of the candidate over the reference's", False),
}


@dataclass
class Gate:
    name: str
    threshold: float
    measured: float
    margin: float
    passed: bool
    what: str

    def message(self) -> str:
        word = "passed" if self.passed else "FAILED"
        rel = ">=" if GATES[self.name][1] else "<="
        how = f"margin {self.margin:.4g}" if self.passed else f"short by {abs(self.margin):.4g}"
        return (f"gate {self.name} {word}: {self.what} is {_fmt(self.measured)}, wants {rel} {_fmt(self.threshold)} "
                f"({how})")

    def as_dict(self) -> dict:
        return asdict(self)


def _fmt(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else str(x)


def check(name: str, threshold: float, measured: float) -> Gate:
    """One gate: ``measured`` against ``threshold`` (NaN never passes)."""
    if name not in GATES:
        raise ValueError(f"unknown gate {name!r} (gates: {', '.join(GATES)})")
    what, at_least = GATES[name]
    margin = (measured - threshold) if at_least else (threshold - measured)
    if math.isnan(margin) and math.isinf(measured) and math.isinf(threshold):
        margin = 0.0
    passed = (not math.isnan(measured)) and margin >= 0
    return Gate(name, float(threshold), float(measured), float(margin), bool(passed), what)


def measured_values(comparison: dict | None = None, latency_ratio: float | None = None) -> dict[str, float]:
    """The figure each gate reads, from a ``compare_models`` result and a latency ratio."""
    out: dict[str, float] = {}
    if comparison:
        outs = comparison["outputs"]
        out["min_cosine"] = min(o["cosine"] for o in outs)
        out["min_snr"] = min(o["snr_db"] for o in outs)
        drops = [o["accuracy"]["top1_drop"] for o in outs if "accuracy" in o]
        if drops:
            out["max_accuracy_drop"] = max(drops)
    if latency_ratio is not None:
        out["max_latency_ratio"] = float(latency_ratio)
    return out


def evaluate(thresholds: dict[str, float | None], comparison: dict | None = None,
             latency_ratio: float | None = None) -> list[Gate]:
    """Every gate with a threshold, checked; a gate whose figure was not measured is an error
    (e.g. max_accuracy_drop without labels)."""
    values = measured_values(comparison, latency_ratio)
    gates = []
    for name, threshold in thresholds.items():
        if threshold is None:
            continue
        if name not in values:
            raise ValueError(f"gate {name} has nothing to measure"
                             + (" (it needs --labels)" if name == "max_accuracy_drop" else ""))
        gates.append(check(name, threshold, values[name]))
    return gates
