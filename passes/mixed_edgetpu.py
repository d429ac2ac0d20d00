"""Fallback cuts that keep an Edge TPU's part in one piece (``quantize(..., target=edgetpu)``).

The Edge TPU runs int8 ops only, and its compiler makes a single cut: the first op it cannot
map and everything after it run on the CPU (tflopt.audit's ``first_cut``). An island kept at
higher precision in the middle of the graph therefore sends the whole rest of the model to
the CPU. So the islands are also chosen tail first: an island whose readers are all graph
outputs or already off the accelerator (kept islands, ops with no int8 kernel) goes first, so
the kept part grows back from the tail, and when giving islands back to int8 only one whose
inputs all come from int8 ops is given back, so no hole opens. Tail first is not always better
(hand_landmark_lite: it keeps 14 islands float where the plain order keeps 5, all at the tail
anyway), so the pass makes both choices and keeps the one whose model the Edge TPU audit
gives more MACs; the report gives both shares and the written model's partitions.
"""
from __future__ import annotations


class Cuts:
    """Where each island sits in the graph, to ask "at the tail" / "at the front"."""

    def __init__(self, sg, islands: dict):
        self.island_of = {op: name for name, isl in islands.items() for op in isl.ops}
        self.islands = islands
        consumers, producers = sg.consumer_map(), sg.producer_map()
        self.readers: dict[str, set] = {}
        self.writers: dict[str, set] = {}
        for name, isl in islands.items():
            ops = set(isl.ops)
            outs = [t for i in isl.ops for t in sg.operators[i].outputs]
            ins = [t for i in isl.ops for t in sg.operators[i].inputs if t >= 0 and not sg.tensors[t].is_constant]
            self.readers[name] = {op.index for t in outs for op, _ in consumers.get(t, []) if op.index not in ops}
            self.writers[name] = {producers[t].index for t in ins if t in producers and producers[t].index not in ops}

    def _off(self, op: int, kept) -> bool:
        name = self.island_of.get(op)
        return name is None or name in kept   # no integer kernel, or kept at higher precision

    def at_tail(self, name: str, kept) -> bool:
        return all(self._off(op, kept) for op in self.readers[name])

    def at_front(self, name: str, kept) -> bool:
        return not any(self.island_of.get(op) in kept for op in self.writers[name])

    def next(self, order: list[str], kept) -> str:
        """The best-ranked island at the tail, else the best-ranked one."""
        free = [n for n in order if n not in kept]
        return next((n for n in free if self.at_tail(n, kept)), free[0])


def edgetpu_partitions(model) -> dict:
    """Edge TPU audit figures of the written model: delegated partitions, MAC share."""
    from tflopt.audit import audit
    s = audit(model, "edgetpu").targets["edgetpu"].summary
    return {"partitions": s["partitions"], "accelerated_macs_share": s["accelerated_macs_share"] / 100}
