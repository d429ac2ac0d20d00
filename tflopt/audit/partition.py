"""From per-op support to what a delegate really takes: TFLite's partitioning, the Edge TPU
compiler's single cut, and the largest-N / min-size selection some delegates apply."""
from __future__ import annotations


def tflite_partitions(sg, supported: list[bool]) -> list[tuple[bool, list[int]]]:
    """TFLite's PartitionGraphIntoIndependentNodeSubsets: each epoch takes, in execution order,
    every ready op of the epoch's kind (the kind of the first ready op); returns
    [(is_supported_kind, op indices)] in epoch order."""
    ready = {t for t, x in enumerate(sg.tensors) if x.is_constant}
    ready.update(sg.inputs)
    produced = {t for op in sg.operators for t in op.outputs}
    # Tensors nothing produces (variables, unset optionals) are ready from the start.
    ready.update(t for op in sg.operators for t in op.inputs if t >= 0 and t not in produced)
    done = [False] * len(sg.operators)
    subsets = []
    while not all(done):
        kind = None
        taken = []
        for i, op in enumerate(sg.operators):
            if done[i] or not all(t < 0 or t in ready for t in op.inputs):
                continue
            if kind is None:
                kind = supported[i]
            if supported[i] != kind:
                continue
            taken.append(i)
            done[i] = True
            ready.update(op.outputs)
        if not taken:  # a cycle or an unreachable op: keep the remainder on its own
            rest = [i for i, d in enumerate(done) if not d]
            for i in rest:
                done[i] = True
            subsets.append((False, rest))
            break
        subsets.append((kind, taken))
    return subsets


def place(sg, supported: list[bool], policy) -> tuple[list[bool], list[str | None], int]:
    """(on accelerator per op, why a supported op is not placed, number of delegated partitions)."""
    n = len(supported)
    placed = list(supported)
    why: list[str | None] = [None] * n
    if policy.first_cut:
        cut = next((i for i, s in enumerate(supported) if not s), n)
        for i in range(cut, n):
            if supported[i]:
                placed[i] = False
                why[i] = f"after the first unmapped op (#{cut}): more than one subgraph is not supported"
        return placed, why, 1 if cut > 0 else 0
    parts = [ops for kind, ops in tflite_partitions(sg, supported) if kind]
    kept = [p for p in parts if len(p) >= policy.min_ops]
    for p in parts:
        if len(p) < policy.min_ops:
            for i in p:
                placed[i] = False
                why[i] = f"partition of {len(p)} op(s) is below the delegate's minimum of {policy.min_ops}"
    if policy.max_partitions and len(kept) > policy.max_partitions:
        # Largest first; ties keep graph order, as the delegate's stable sort does.
        order = sorted(range(len(kept)), key=lambda k: -len(kept[k]))
        dropped = [kept[k] for k in order[policy.max_partitions:]]
        kept = [kept[k] for k in sorted(order[:policy.max_partitions])]
        for p in dropped:
            for i in p:
                placed[i] = False
                why[i] = (f"in a smaller partition ({len(p)} ops): only the largest "
                          f"{policy.max_partitions} partition(s) are delegated")
    return placed, why, len(kept)
