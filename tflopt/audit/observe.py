"""``audit --observe``: the installed runtime's verdict per op beside the rule verdict.

XNNPACK: the interpreter's DELEGATE nodes (``observed.py``). LiteRT GPU: the accelerator's
``is_fully_accelerated()`` on the whole model, else one-op submodels (``gpu_observed.py``),
plus GPU-vs-CPU numerics on evaluation (or random) samples. Only subgraph 0 is observed
(the runtimes' Python APIs expose no other). A disagreement is either listed in the target's
``observed_exceptions`` (documented, with its reason) or undocumented: a table to fix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

OBSERVABLE = ("xnnpack", "litert-gpu")
SAMPLES = 8
# Targets that compute in float16 by default: they get the float16-overflow check.
FLOAT16_TARGETS = ("gpu", "litert-gpu")


def _model_key(model) -> str:
    return Path(str(model.source_name)).stem


def _compare(model, target, tr, observed: dict[int, tuple[bool | None, str]], runtime: str,
             use: str) -> dict[str, Any]:
    key = _model_key(model)
    rows = []
    for v in tr.ops:
        if v.subgraph != 0:
            continue
        rule = getattr(v, use)
        seen, detail = observed.get(v.index, (None, "not observed"))
        row = {"index": v.index, "op": v.op, "rule": rule, "observed": seen, "detail": detail}
        if seen is not None and seen != rule:
            exc = next((e for e in target.observed_exceptions if e.matches(v.op, rule, key)), None)
            row["disagreement"] = "documented" if exc else "undocumented"
            if exc:
                row["exception"] = exc.reason
        rows.append(row)
    seen_rows = [r for r in rows if r["observed"] is not None]
    dis = [r for r in rows if "disagreement" in r]
    return {
        "runtime": runtime, "compared": use, "checked_against": target.checked_against,
        "summary": {"ops": len(rows), "observed_ops": len(seen_rows), "agreements": len(seen_rows) - len(dis),
                    "disagreements": len(dis),
                    "documented": sum(r["disagreement"] == "documented" for r in dis)},
        "ops": rows,
    }


def observe_xnnpack(model, target, tr) -> dict[str, Any]:
    from .gpu_observed import runtime_version
    from .observed import xnnpack_delegated
    taken, parts = xnnpack_delegated(model)
    ops = {i: (i in taken, "delegated" if i in taken else "left to the builtin kernels")
           for i in range(len(model.subgraphs[0].operators))}
    out = _compare(model, target, tr, ops, runtime_version() + " interpreter (XNNPACK delegate)", "on_accelerator")
    out["partitions"] = len(parts)
    return out


def samples_for(model, data=None, count: int = SAMPLES):
    """Evaluation samples (input lists) from ``data`` (an .npz / .npy path), else seeded random."""
    from ..evaluation.compare import load_samples
    from ..runtime import interpreter
    details = interpreter(model, xnnpack=False).get_input_details()
    return load_samples(data, details, count)


def observe_gpu(model, target, tr, data=None, numerics: bool = True) -> dict[str, Any]:
    from .gpu_observed import gpu_available, observe
    ok, adapter = gpu_available()
    if not ok:
        return {"unavailable": adapter}
    samples, why = None, None
    if numerics:
        try:
            samples = samples_for(model, data)
        except Exception as e:  # noqa: BLE001 - a model the CPU interpreter cannot run gets no numerics
            why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    first = observe(model, samples=samples, per_op=False)
    whole = first["fully_accelerated"]
    if whole:
        from .submodel import distinct_submodels
        folded = distinct_submodels(model, 0)[2]
        n = len(model.subgraphs[0].operators)
        ops = {i: (None, f"folded into #{folded[i]}'s weights (observed with it)") if i in folded else
               (True, "the whole model is fully accelerated") for i in range(n)}
        first["distinct_submodels"] = 0
        per_op = first
    else:
        per_op = observe(model, per_op=True)
        ops = per_op["ops"]
    runtime = f"{first['runtime']} GPU accelerator ({first['adapter'] or adapter})"
    out = _compare(model, target, tr, ops, runtime, "supported")
    out["fully_accelerated"] = whole
    if first["error"]:
        out["error"] = first["error"]
    out["distinct_submodels"] = per_op["distinct_submodels"]
    if first.get("numerics"):
        out["numerics"] = first["numerics"]
    elif first.get("numerics_error") or why:
        out["numerics_skipped"] = first.get("numerics_error") or why
    return out


def observe_targets(model, report, data=None, *, numerics: bool = True) -> dict[str, dict[str, Any]]:
    """{target: observation} for the observable targets of ``report``; other targets get
    {"unavailable": why}. ``numerics=False`` skips the GPU-vs-CPU run and the float16 check."""
    from .rules import get_target
    out = {}
    overflow = None
    for name, tr in report.targets.items():
        target = get_target(name)
        if name == "xnnpack":
            out[name] = observe_xnnpack(model, target, tr)
        elif name == "litert-gpu":
            out[name] = observe_gpu(model, target, tr, data, numerics)
        else:
            out[name] = {"unavailable": f"no runtime for {name} on this host (observable: {', '.join(OBSERVABLE)})"}
        if name in FLOAT16_TARGETS and numerics:
            if overflow is None:
                from .fp16 import float16_overflow
                overflow = float16_overflow(model, data)
            out[name]["float16_overflow"] = overflow
    return out
