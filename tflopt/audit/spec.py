"""The shape of the rule tables: a target is data (rules, partitioning policy, sources).

A rule names a predicate kind from ``predicates.KINDS`` and its parameters; its scope says
which ops it applies to (op names, op versions, and an optional ``when`` condition that is
itself a predicate). Adding a rule or a target is a change to ``rules/*.py``, not to code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL = "*"


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    reason: str
    source: str
    ops: tuple[str, ...] | str = ALL
    params: dict[str, Any] = field(default_factory=dict)
    # Applies only if this (kind, params) condition holds for the op.
    when: tuple[str, dict[str, Any]] | None = None
    # Ops the rule skips even when ``ops`` is ALL (e.g. the float input of a leading QUANTIZE).
    except_ops: tuple[str, ...] = ()

    def applies_to(self, op_name: str) -> bool:
        if op_name in self.except_ops:
            return False
        return self.ops == ALL or op_name in self.ops


@dataclass(frozen=True)
class Partitioning:
    """How the delegate turns per-op support into what actually runs on it.

    ``first_cut``: only the ops before the first unsupported one (Edge TPU compiler default).
    ``max_partitions``/``min_ops``: TFLite's delegate partitioning, keeping the largest
    partitions (0 = no limit).
    """
    first_cut: bool = False
    max_partitions: int = 0
    min_ops: int = 1
    note: str = ""


@dataclass(frozen=True)
class ObservedException:
    """A documented disagreement between a rule verdict and the observed runtime: on ``op``
    (optionally only in the models named), the rules say ``rule_says`` (True: taken) and the
    runtime does the opposite, for ``reason``."""
    op: str
    rule_says: bool
    reason: str
    models: tuple[str, ...] = ()

    def matches(self, op: str, rule_says: bool, model: str) -> bool:
        return op == self.op and rule_says == self.rule_says and (not self.models or model in self.models)


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    rules: tuple[Rule, ...]
    partitioning: Partitioning
    sources: tuple[str, ...] = ()
    # On-chip parameter cache in bytes, where the accelerator has one.
    param_cache_bytes: int | None = None
    # Pipelines that may make unsupported ops supported, tried by ``suggest``.
    suggestions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # The runtime the table was last checked against op by op (``audit --observe``).
    checked_against: str = ""
    observed_exceptions: tuple[ObservedException, ...] = ()
