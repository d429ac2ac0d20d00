"""Selective quantization: which ops and tensors a quantize pass touches, and how.

A ``Selector`` combines the pass options with an optional JSON recipe:

1. Options give the baseline. ``ops`` (if non-empty) lists the op types to quantize,
   ``skip_ops`` the op types to leave, ``include`` / ``exclude`` are regexes searched in the
   tensor names (the weight's name or the op's output name; any match counts).
2. A recipe file then refines it: a JSON list of rules (or ``{"rules": [...]}``), each::

       {"ops": ["CONV_2D", ...], "regex": "...", "action": "skip" | "quantize",
        "per_channel": true | false, "mode": "float16" | "dynamic" | "int8" | "int16x8"}

   A rule matches when the op type is in ``ops`` (any op if absent) and ``regex`` is found in
   one of the names (any name if absent). Rules are evaluated in order and the **last matching
   rule wins** for each field it sets: ``action`` decides quantize/skip, ``per_channel`` and
   ``mode`` override the pass's setting. Fields a rule leaves out keep the earlier value.

A bad recipe (unreadable, not JSON, unknown keys or values, bad regex) raises ``TfloptError``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import TfloptError

MODES = ("float16", "dynamic", "int8", "int16x8")
_RULE_KEYS = {"ops", "regex", "action", "per_channel", "mode"}


@dataclass(frozen=True)
class Decision:
    quantize: bool
    per_channel: bool | None = None  # None: the pass's own setting
    mode: str | None = None          # None: the pass's own mode
    reason: str = ""


@dataclass(frozen=True)
class Rule:
    ops: frozenset[str] | None
    regex: re.Pattern | None
    action: str | None
    per_channel: bool | None
    mode: str | None

    def matches(self, op_name: str, names: list[str]) -> bool:
        if self.ops is not None and op_name not in self.ops:
            return False
        return self.regex is None or any(self.regex.search(n) for n in names)


def _compile(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise TfloptError(f"{where}: bad regex {pattern!r}: {e}") from None


def _parse_rule(raw, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise TfloptError(f"{where}: a rule must be a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise TfloptError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_RULE_KEYS))})")
    ops = raw.get("ops")
    if ops is not None:
        if isinstance(ops, str):
            ops = [ops]
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise TfloptError(f"{where}: 'ops' must be a list of op names")
        ops = frozenset(o.upper() for o in ops)
    regex = raw.get("regex")
    if regex is not None and not isinstance(regex, str):
        raise TfloptError(f"{where}: 'regex' must be a string")
    action = raw.get("action")
    if action is not None and action not in ("skip", "quantize"):
        raise TfloptError(f"{where}: 'action' must be 'skip' or 'quantize', not {action!r}")
    per_channel = raw.get("per_channel")
    if per_channel is not None and not isinstance(per_channel, bool):
        raise TfloptError(f"{where}: 'per_channel' must be true or false")
    mode = raw.get("mode")
    if mode is not None and mode not in MODES:
        raise TfloptError(f"{where}: 'mode' must be one of {', '.join(MODES)}, not {mode!r}")
    if action is None and per_channel is None and mode is None:
        raise TfloptError(f"{where}: a rule needs at least one of 'action', 'per_channel', 'mode'")
    return Rule(ops, _compile(regex, where) if regex is not None else None, action, per_channel, mode)


def load_recipe(path) -> list[Rule]:
    """Rules from a recipe file, validated."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise TfloptError(f"recipe {p}: cannot read: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TfloptError(f"recipe {p}: not valid JSON: {e.msg} at line {e.lineno}") from None
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    if not isinstance(data, list):
        raise TfloptError(f"recipe {p}: expected a list of rules (or {{\"rules\": [...]}})")
    return [_parse_rule(r, f"recipe {p} rule {i}") for i, r in enumerate(data)]


class Selector:
    """Answers "should this op / tensor be quantized, and how" for the quantize passes."""

    def __init__(self, *, ops: Iterable[str] = (), skip_ops: Iterable[str] = (), include: str | None = None,
                 exclude: str | None = None, recipe: str | Path | None = None, rules: list[Rule] | None = None):
        self.ops = frozenset(o.upper() for o in ops) or None
        self.skip_ops = frozenset(o.upper() for o in skip_ops)
        self.include = _compile(include, "include") if include else None
        self.exclude = _compile(exclude, "exclude") if exclude else None
        self.rules = list(rules or []) + (load_recipe(recipe) if recipe else [])

    @classmethod
    def from_options(cls, options) -> "Selector":
        """From a QuantizeOptions-like object (ops, skip_ops, include, exclude, recipe)."""
        return cls(ops=getattr(options, "ops", ()) or (), skip_ops=getattr(options, "skip_ops", ()) or (),
                   include=getattr(options, "include", None), exclude=getattr(options, "exclude", None),
                   recipe=getattr(options, "recipe", None))

    def op_wanted(self, op_name: str) -> bool:
        """Whether any tensor of this op type could be quantized (before name rules)."""
        if any(r.ops is not None and op_name in r.ops and r.action == "quantize" for r in self.rules):
            return True
        return (self.ops is None or op_name in self.ops) and op_name not in self.skip_ops

    def decide(self, op_name: str, names: str | Iterable[str] = ()) -> Decision:
        names = [names] if isinstance(names, str) else [n for n in names if n]
        quantize, reason = True, ""
        if self.ops is not None and op_name not in self.ops:
            quantize, reason = False, f"{op_name} not in ops"
        elif op_name in self.skip_ops:
            quantize, reason = False, f"{op_name} in skip_ops"
        elif self.include is not None and not any(self.include.search(n) for n in names):
            quantize, reason = False, "name does not match include"
        elif self.exclude is not None and any(self.exclude.search(n) for n in names):
            quantize, reason = False, "name matches exclude"
        per_channel = mode = None
        for i, rule in enumerate(self.rules):
            if not rule.matches(op_name, names):
                continue
            if rule.action is not None:
                quantize = rule.action == "quantize"
                reason = f"recipe rule {i}: {rule.action}"
            if rule.per_channel is not None:
                per_channel = rule.per_channel
            if rule.mode is not None:
                mode = rule.mode
        return Decision(quantize, per_channel, mode, reason)
