"""Which pass would move ops onto an accelerator, measured by auditing the transformed copy."""
from __future__ import annotations

from typing import Any


def _context(model, calibration):
    from ..pipeline import PassContext
    ctx = PassContext()
    if calibration is not None:
        ctx.calibration = calibration
        return ctx
    from ..calibration import random_calibration
    # Synthetic samples let int8 calibration run without user data.
    ctx.calibration = random_calibration(model)
    return ctx


def try_pipeline(model, spec: str, target_names: list[str], calibration=None) -> dict[str, Any]:
    """Run ``spec`` on a clone and audit the result; {'error': why} if it cannot run."""
    from ..pipeline import PassManager, parse_pipeline
    from .engine import evaluate
    from .rules import get_target
    try:
        passes = parse_pipeline(spec)
        copy = model.clone()
        PassManager(passes, measure=False).run(copy, _context(copy, calibration))
    except Exception as e:  # noqa: BLE001 - a candidate that cannot run is reported, not fatal
        return {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"}
    return {"reports": {n: evaluate(copy, get_target(n)) for n in target_names}}


def suggestions(model, report, calibration=None) -> dict[str, list[dict[str, Any]]]:
    from .rules import get_target
    wanted: dict[str, list[str]] = {}
    for name, tr in report.targets.items():
        if tr.summary["cpu_ops"] == 0:
            continue
        for spec in get_target(name).suggestions:
            wanted.setdefault(spec, []).append(name)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in report.targets}
    for spec in sorted(wanted):
        result = try_pipeline(model, spec, wanted[spec], calibration)
        for name in wanted[spec]:
            before = report.targets[name].summary
            if "error" in result:
                out[name].append({"pipeline": spec, "skipped": result["error"]})
                continue
            after = result["reports"][name].summary
            out[name].append({
                "pipeline": spec, "cpu_ops_before": before["cpu_ops"], "cpu_ops_after": after["cpu_ops"],
                "accelerated_share_before": before["accelerated_share"],
                "accelerated_share_after": after["accelerated_share"],
                "text": f"{spec}: {before['cpu_ops']} -> {after['cpu_ops']} ops off the {name}",
            })
    return out
