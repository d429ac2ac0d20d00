"""Delegate compatibility audits: Edge TPU, Hexagon, GPU and XNNPACK.

    from tflopt.audit import audit
    report = audit(model, targets=["edgetpu", "xnnpack"])
    report.targets["edgetpu"].summary["accelerated_share"]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .engine import OpVerdict, Reason, TargetReport, evaluate
from .rules import TARGETS, get_target

__all__ = ["audit", "AuditReport", "TargetReport", "OpVerdict", "Reason", "TARGETS", "parse_targets"]


@dataclass
class AuditReport:
    model: str
    targets: dict[str, TargetReport]
    suggestions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # With observe=True: per target what the installed runtime did (tflopt.audit.observe).
    observed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"model": self.model, "targets": {k: v.as_dict() for k, v in self.targets.items()}}
        for name, items in self.suggestions.items():
            out["targets"][name]["suggestions"] = items
        for name, obs in self.observed.items():
            out["targets"][name]["observed"] = obs
        return out


def parse_targets(values: Iterable[str] | str | None) -> list[str]:
    """Targets from repeated options and/or comma lists, in first-seen order; default all."""
    if values is None:
        return list(TARGETS)
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        for name in str(v).split(","):
            name = name.strip().lower()
            if name == "all":
                out.extend(t for t in TARGETS if t not in out)
            elif name:
                get_target(name)  # validates
                if name not in out:
                    out.append(name)
    return out or list(TARGETS)


def audit(model, targets: Iterable[str] | str | None = None, *, suggest: bool = False,
          calibration=None, observe: bool = False, data=None) -> AuditReport:
    """Audit a Model (or a path / bytes) for each target; ``suggest`` also tries the targets'
    candidate pipelines on copies of the model and reports what each would change;
    ``observe`` runs the installed runtimes (XNNPACK, the LiteRT GPU accelerator) and puts
    their per-op verdicts, GPU numerics on ``data`` (or random samples) and the float16
    overflow check beside the rules'."""
    from ..io import load
    from ..model import Model
    m = model if isinstance(model, Model) else load(model)
    names = parse_targets(targets)
    report = AuditReport(m.source_name, {n: evaluate(m, get_target(n)) for n in names})
    if suggest:
        from .suggest import suggestions
        report.suggestions = suggestions(m, report, calibration=calibration)
    if observe:
        from .observe import observe_targets
        report.observed = observe_targets(m, report, data)
    return report
