"""Evaluates a target's rule table over a model: per-op verdicts, placement and summary."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import predicates
from .macs import op_macs
from .partition import place
from .predicates import OpView
from .sources import public
from .spec import Rule, Target


@dataclass
class Reason:
    rule: str
    category: str
    message: str
    source: str


@dataclass
class OpVerdict:
    subgraph: int
    index: int
    op: str
    version: int
    supported: bool
    on_accelerator: bool
    reasons: list[Reason] = field(default_factory=list)
    placement: str | None = None
    macs: int = 0


@dataclass
class TargetReport:
    target: str
    title: str
    ops: list[OpVerdict]
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "title": self.title, "summary": self.summary,
                "ops": [asdict(o) for o in self.ops], "notes": list(self.notes)}


def _check(rule_kind: str, params: dict, view: OpView) -> list[str]:
    return predicates.KINDS[rule_kind](view, **params)


def _views(sg) -> list[OpView]:
    producers = sg.producer_map()
    consumers: dict[int, list] = {}
    for op in sg.operators:
        for t in op.inputs:
            if t >= 0:
                consumers.setdefault(t, []).append(op)
    return [OpView(op, producers, consumers) for op in sg.operators]


def _local_reasons(view: OpView, rules: tuple[Rule, ...]) -> list[Reason]:
    out: list[Reason] = []
    for rule in rules:
        if rule.kind in predicates.GRAPH_KINDS or not rule.applies_to(view.name):
            continue
        if rule.when is not None and _check(rule.when[0], rule.when[1], view):
            continue
        for detail in _check(rule.kind, rule.params, view):
            out.append(Reason(rule.id, predicates.category(rule.kind), f"{rule.reason}: {detail}", public(rule.source)))
    return out


def _unpacked_consumers(views, local_ok, rule: Rule) -> dict[int, list[Reason]]:
    """XNNPACK folds constant DEQUANTIZE/DENSIFY outputs into its consumers' weights, and drops
    the fold when an op it cannot delegate reads that output (PrepareOpsToDelegate)."""
    out: dict[int, list[Reason]] = {}
    index = {id(v.op): i for i, v in enumerate(views)}
    for i, v in enumerate(views):
        if not rule.applies_to(v.name) or (rule.when and _check(rule.when[0], rule.when[1], v)):
            continue
        if v.name == "DENSIFY" and not v.is_const(v.op.inputs[0]):
            continue
        bad = []
        for t in v.op.outputs:
            for c in v.consumers(t):
                j = index[id(c)]
                folding = views[j].name in ("DEQUANTIZE", "DENSIFY") and views[j].is_const(c.inputs[0], folded=True)
                if not folding and not local_ok[j]:
                    bad.append(f"#{j} {c.name}")
        if bad:
            out[i] = [Reason(rule.id, predicates.category(rule.kind),
                             f"{rule.reason}: read by {', '.join(bad)}", public(rule.source))]
    return out


def _param_bytes(model, verdicts_by_sg) -> tuple[int, int]:
    """(bytes of constants read by accelerated ops, bytes of all constants read by ops),
    each buffer counted once."""
    seen_acc, seen_all = set(), set()
    acc = total = 0
    for sg, verdicts in zip(model.subgraphs, verdicts_by_sg):
        for op, v in zip(sg.operators, verdicts):
            for t in op.inputs:
                if t < 0:
                    continue
                tensor = sg.tensors[t]
                if not tensor.is_constant:
                    continue
                b = tensor.buffer_index
                if b not in seen_all:
                    seen_all.add(b)
                    total += tensor.buffer.nbytes
                if v.on_accelerator and b not in seen_acc:
                    seen_acc.add(b)
                    acc += tensor.buffer.nbytes
    return acc, total


def evaluate(model, target: Target) -> TargetReport:
    verdicts_by_sg: list[list[OpVerdict]] = []
    partitions: list[int] = []
    for si, sg in enumerate(model.subgraphs):
        views = _views(sg)
        reasons = [_local_reasons(v, target.rules) for v in views]
        local_ok = [not r for r in reasons]
        for rule in target.rules:
            if rule.kind == "unpacked_weights_consumers":
                for i, extra in _unpacked_consumers(views, local_ok, rule).items():
                    reasons[i].extend(extra)
        supported = [not r for r in reasons]
        placed, why, n_parts = place(sg, supported, target.partitioning)
        partitions.append(n_parts)
        verdicts_by_sg.append([
            OpVerdict(si, i, op.name, op.version, supported[i], placed[i], reasons[i], why[i], op_macs(op))
            for i, op in enumerate(sg.operators)])
    ops = [v for vs in verdicts_by_sg for v in vs]
    n = len(ops)
    n_sup = sum(v.supported for v in ops)
    n_acc = sum(v.on_accelerator for v in ops)
    macs = sum(v.macs for v in ops)
    macs_acc = sum(v.macs for v in ops if v.on_accelerator)
    acc_bytes, all_bytes = _param_bytes(model, verdicts_by_sg)
    summary: dict[str, Any] = {
        "ops": n, "supported_ops": n_sup, "accelerated_ops": n_acc, "cpu_ops": n - n_acc,
        "supported_share": round(100.0 * n_sup / n, 2) if n else 100.0,
        "accelerated_share": round(100.0 * n_acc / n, 2) if n else 100.0,
        "macs": macs, "accelerated_macs": macs_acc,
        "accelerated_macs_share": round(100.0 * macs_acc / macs, 2) if macs else (100.0 if n_acc == n else 0.0),
        "partitions": sum(partitions), "partitions_by_subgraph": partitions,
        "parameter_bytes": all_bytes, "accelerated_parameter_bytes": acc_bytes,
    }
    if target.param_cache_bytes:
        summary["parameter_cache_bytes"] = target.param_cache_bytes
        summary["parameters_fit_cache"] = acc_bytes <= target.param_cache_bytes
        summary["streamed_parameter_bytes"] = max(0, acc_bytes - target.param_cache_bytes)
    return TargetReport(target.name, target.title, ops, summary, [public(n) for n in target.notes])
