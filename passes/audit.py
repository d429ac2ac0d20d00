"""The audit as a pipeline step: reports delegate compatibility in its stats, changes nothing."""
from __future__ import annotations

from dataclasses import dataclass, field

from tflopt.pipeline import Pass, PassResult, register


@dataclass
class AuditOptions:
    targets: list[str] = field(default_factory=lambda: ["edgetpu", "hexagon", "gpu", "xnnpack"])
    # Include every op's verdict in the stats, not only the summaries and unsupported ops.
    ops: bool = False

    def validate(self) -> None:
        from tflopt.audit import parse_targets
        from tflopt.errors import TfloptError
        try:
            parse_targets(self.targets)
        except TfloptError as e:
            raise ValueError(str(e)) from None


@register
class Audit(Pass):
    name = "audit"
    summary = "Report which ops each delegate (Edge TPU, Hexagon, GPU, XNNPACK) takes; the model is unchanged."
    Options = AuditOptions

    def run(self, model, ctx) -> PassResult:
        from tflopt.audit import audit
        report = audit(model, self.options.targets)
        stats = {}
        for name, tr in report.targets.items():
            d = tr.as_dict()
            if not self.options.ops:
                d["ops"] = [o for o in d["ops"] if not o["on_accelerator"]]
            stats[name] = d
        warnings = [f"{n}: {t.summary['cpu_ops']} of {t.summary['ops']} ops stay on the CPU"
                    for n, t in report.targets.items() if t.summary["cpu_ops"]]
        return PassResult(changed=False, stats=stats, warnings=warnings)
