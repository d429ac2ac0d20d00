"""Level by level through the deployment tree, as the seed tells users to do by hand.

At each level every node that may still be extended (the input model, and every earlier
node that keeps the quality goals) gets each of the level's choices as a child. A node that
breaks a quality goal (accuracy, cosine, SNR) is not extended: more compression never brings
accuracy back. Within a level, choices that differ only along a monotone option (sparsity
0.5 -> 0.75 -> 0.9) are tried mild first, in waves, and once one breaks a quality goal the
stronger ones of that group are skipped. Every wave goes to the executor at once, so trials
run in parallel; results are taken in submission order, so the tree is the same however
many workers ran it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .goals import QUALITY, Goal, sort_key
from .space import Level


@dataclass
class Node:
    passes: tuple[str, ...]
    record: dict
    parent: tuple[str, ...] | None
    level: int = -1
    meets: bool = False            # every goal
    keeps_quality: bool = False    # every quality goal (may be extended)
    violated: list[str] = field(default_factory=list)

    @property
    def pipeline(self) -> str:
        return ",".join(self.passes)

    @property
    def metrics(self) -> dict:
        return self.record.get("metrics") or {}


@dataclass
class Budget:
    max_trials: int | None = None
    max_time: float | None = None
    stop_when_met: bool = False


def judge(node: Node, goals: list[Goal], baseline: dict) -> Node:
    if node.record.get("status") != "ok":
        node.violated = ["failed"]
    else:
        node.violated = [g.text for g in goals if not g.met(node.metrics, baseline)]
    node.meets = not node.violated
    node.keeps_quality = node.record.get("status") == "ok" and all(
        g.met(node.metrics, baseline) for g in goals if g.metric in QUALITY)
    return node


def walk(levels: list[Level], goals: list[Goal], baseline: dict, root_record: dict,
         run_batch: Callable[[list[tuple[str, ...]]], list[dict]], budget: Budget) -> tuple[list[Node], dict]:
    """All nodes in the order they were tried (root first) and what stopped the walk."""
    t0 = time.monotonic()
    root = judge(Node((), root_record, None), goals, baseline)
    nodes: list[Node] = [root]
    info = {"stopped": "space exhausted", "skipped_monotone": 0, "levels": len(levels)}
    tried = 0
    for li, level in enumerate(levels):
        choices = level.choices()
        parents = [n for n in nodes if n.keeps_quality and
                   all(any(p.split("(")[0] == r for p in n.passes) for r in level.requires)]
        # (parent, group) -> that group's choices, mildest first
        groups: dict[tuple, list] = {}
        for parent in parents:
            for c in choices:
                groups.setdefault((parent.passes, c.group), []).append(c)
        for g in groups.values():
            g.sort(key=lambda c: c.rank)
        broken: dict[tuple, list[tuple]] = {}
        while groups:
            wave = []
            for gk in list(groups):
                todo = [c for c in groups[gk]
                        if not any(all(a >= b for a, b in zip(c.rank, r)) for r in broken.get(gk, []))]
                info["skipped_monotone"] += len(groups[gk]) - len(todo)
                if not todo:
                    del groups[gk]
                    continue
                wave.append((gk, todo[0]))
                groups[gk] = todo[1:]
            if not wave:
                break
            if budget.max_time is not None and time.monotonic() - t0 >= budget.max_time:
                info["stopped"] = "max_time"
                return nodes, info
            if budget.max_trials is not None:
                room = budget.max_trials - tried
                if room <= 0:
                    info["stopped"] = "max_trials"
                    return nodes, info
                wave = wave[:room]
            records = run_batch([gk[0] + (c.spec,) for gk, c in wave])
            tried += len(wave)
            for (gk, c), rec in zip(wave, records):
                node = judge(Node(gk[0] + (c.spec,), rec, gk[0], li), goals, baseline)
                nodes.append(node)
                if not node.keeps_quality and c.rank:
                    broken.setdefault(gk, []).append(c.rank)
            if budget.stop_when_met and any(n.meets for n in nodes[1:]):
                info["stopped"] = "goals met (--stop-when-met)"
                return nodes, info
    return nodes, info


def objectives(objective: str, goals: list[Goal], nodes: list[Node]) -> list[str]:
    """What the Pareto front trades off: the minimised metric, every goal's metric, and the
    fidelity / accuracy measured anyway."""
    out = [objective]
    for g in goals:
        if g.metric not in out:
            out.append(g.metric)
    measured = set().union(*(n.metrics.keys() for n in nodes))
    for m in ("accuracy_drop", "min_cosine"):
        if m in measured and m not in out and not (m == "accuracy_drop" and "accuracy" in out):
            out.append(m)
    return out


def pareto(nodes: list[Node], metrics: list[str]) -> list[Node]:
    """Nodes no other node beats on every metric and improves on one (successful trials)."""
    ok = [n for n in nodes if n.record.get("status") == "ok" and all(m in n.metrics for m in metrics)]
    keys = [[sort_key(m, n.metrics[m]) for m in metrics] for n in ok]
    front = []
    for i, n in enumerate(ok):
        dominated = any(all(b <= a for a, b in zip(keys[i], keys[j])) and keys[j] != keys[i]
                        for j in range(len(ok)) if j != i)
        if not dominated:
            front.append(n)
    return sorted(front, key=lambda n: (sort_key(metrics[0], n.metrics[metrics[0]]), n.pipeline))


def choose(nodes: list[Node], objective: str) -> Node | None:
    """The node meeting every goal with the least objective; ties go to the shorter, then the
    alphabetically first pipeline, so the choice does not depend on timing."""
    ok = [n for n in nodes if n.meets and objective in n.metrics]
    if not ok:
        return None
    return min(ok, key=lambda n: (sort_key(objective, n.metrics[objective]), len(n.passes), n.pipeline))
