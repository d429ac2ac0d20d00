"""Models that answer many single-island questions each, picked by a runtime switch.

Rebuilding, packing and loading a variant per question costs far more than running it on
the corpus (iris_landmark: 27 of 35 s were flatbuffer unpack / pack). So each island gets a
second copy of its ops, right behind the originals, and every tensor the island hands on
(to another island, a float op or a graph output) is read through
``copy * on + original * (1 - on)`` with ``on = switch[slot]``, 0 or 1: exact for finite
values (``x * 1 + y * 0`` is ``x``), and MUL / ADD stay in the CPU delegate, where a
broadcasting SELECT_V2 falls out of it into the interpreter's generic broadcast loop.
``switch`` is one extra float32 graph input; one interpreter, allocated once, answers any set
of switched islands.

Which copy does what is set by what is quantized afterwards: quantizing only the copies gives
"only this island integer" (the originals are the float model), quantizing only the
originals gives "all but this island integer" (the copies are the float path), and float
copies with rounded weights give the weights-alone test. The quantization itself is the
plain ``quantize_static`` from the cached ranges, so encodings are chosen by the same code
as the per-variant rebuild; new tensors take the range of the tensor they copy.
"""
from __future__ import annotations

import copy

import numpy as np

from tflopt.calibration import Ranges
from tflopt.model import Model, Operator
from tflopt.schema import BuiltinOptions, TensorType, fb

from .islands import op_key

SWITCH_INPUT = "tflopt_sensitivity_switch"


def add_switches(model: Model, groups: dict[str, list[str]], make_copy=None) -> tuple[dict[str, int], set[int], set[int], dict[int, int]]:
    """Give each group (name -> op keys) of ``model``'s subgraph 0 a switched copy, in place.

    ``make_copy(original, copy)`` may edit a copy (e.g. round its weights). Returns ({group:
    switch slot}, ids of the raw copies, ids of every raw operator added, {new tensor index:
    tensor it copies}).
    Groups none of whose ops are in the model (cut away) get no slot."""
    sg = model.main
    key_group = {k: g for g, keys in groups.items() for k in keys}
    consumers = sg.consumer_map()
    outputs = set(sg.outputs)
    group_raw: dict[str, set[int]] = {}
    for op in sg.operators:
        g = key_group.get(op_key(sg, op))
        if g is not None:
            group_raw.setdefault(g, set()).add(id(op.raw))
    slots = {g: i for i, g in enumerate(g for g in groups if g in group_raw)}
    switch = sg.add_tensor(SWITCH_INPUT, [max(len(slots), 1)], TensorType.FLOAT32)
    sg.raw.inputs = list(sg.inputs) + [switch.index]
    model.raw.signatureDefs = []  # run by position; the signature would not list the switch
    added: set[int] = set()
    copies: set[int] = set()
    source: dict[int, int] = {}
    copied: dict[str, dict[int, int]] = {g: {} for g in slots}
    cond: dict[str, int] = {}

    def insert(pos: int, raw) -> Operator:
        sg.raw.operators.insert(pos, raw)
        op = Operator(sg, raw)
        sg.operators.insert(pos, op)
        added.add(id(raw))
        return op

    def new_op(pos: int, name: str, inputs, outs, options=None) -> Operator:
        op = sg.insert_operator(pos, name, inputs, outs, options=options)
        added.add(id(op.raw))
        return op

    for original in list(sg.operators):
        g = key_group.get(op_key(sg, original)) if id(original.raw) not in added else None
        if g not in slots:
            continue
        raw = copy.deepcopy(original.raw)
        mine = copied[g]
        raw.inputs = [mine.get(t, t) for t in original.inputs]
        outs = []
        for t in original.outputs:
            twin = sg.clone_tensor(t, "/tflopt_switched")
            source[twin.index] = source.get(t, t)
            mine[t] = twin.index
            outs.append(twin.index)
        raw.outputs = outs
        pos = original.index + 1
        dup = insert(pos, raw)
        copies.add(id(raw))
        if make_copy is not None:
            make_copy(original, dup)
        pos += 1
        for t in original.outputs:
            readers = [op for op, _ in consumers.get(t, []) if id(op.raw) not in group_raw[g]]
            if not readers and t not in outputs:
                continue
            if g not in cond:
                cond[g] = _gates(sg, switch.index, slots[g], new_op)
                pos += 2
            on, off = cond[g]
            src = sg.tensors[t]
            shape, sig = src.shape, src.shape_signature
            chosen = sg.add_tensor(src.name + "/tflopt_chosen", shape, src.type, shape_signature=sig)
            source[chosen.index] = source.get(t, t)
            a = sg.add_tensor(src.name + "/tflopt_on", shape, src.type, shape_signature=sig)
            b = sg.add_tensor(src.name + "/tflopt_off", shape, src.type, shape_signature=sig)
            source[a.index] = source[b.index] = source[chosen.index]
            new_op(pos, "MUL", [mine[t], on], [a.index])
            new_op(pos + 1, "MUL", [t, off], [b.index])
            new_op(pos + 2, "ADD", [a.index, b.index], [chosen.index])
            pos += 3
            sg.replace_uses(t, chosen.index, ops=readers, graph_outputs=False)
            if t in outputs:
                # The graph output keeps its place and name: scores pair outputs by position
                # and report them by name.
                sg.raw.outputs = [chosen.index if x == t else x for x in sg.outputs]
                chosen.name, src.name = src.name, chosen.name
    return slots, copies, added, source


def _gates(sg, switch: int, slot: int, new_op) -> tuple[int, int]:
    """(on, off) float [1] tensors: the switch's value at ``slot`` and one minus it. Made at
    the top of the graph, so the ops the CPU delegate does not take (GATHER) do not split
    the rest of the graph into pieces."""
    name = f"{SWITCH_INPUT}/{slot}"
    index = sg.add_tensor(name, [1], TensorType.INT32, data=np.array([slot], np.int32))
    one = sg.add_tensor(name + "/one", [1], TensorType.FLOAT32, data=np.ones(1, np.float32))
    on = sg.add_tensor(name + "/on", [1], TensorType.FLOAT32)
    off = sg.add_tensor(name + "/off", [1], TensorType.FLOAT32)
    new_op(0, "GATHER", [switch, index.index], [on.index],
           options=(BuiltinOptions.GatherOptions, fb.GatherOptionsT()))
    new_op(1, "SUB", [one.index, on.index], [off.index])
    return on.index, off.index


def extended_ranges(ranges: Ranges, source: dict[int, int]) -> Ranges:
    """``ranges`` with each new tensor given the range of the tensor it copies."""
    more = {t: ranges.ranges[s] for t, s in source.items() if s in ranges.ranges}
    return Ranges({**ranges.ranges, **more}, ranges.samples, list(ranges.cut_ops))


class SwitchRunner:
    """An allocated interpreter of a switched model, scoring switch settings on fixed samples."""

    def __init__(self, content: bytes, slots: dict[str, int], samples):
        from tflopt import runtime
        from tflopt.evaluation.compare import from_float
        self.slots = slots
        self.interp = runtime.interpreter(content)
        ins = self.interp.get_input_details()
        self.switch = ins[-1]
        self.feeds = [[from_float(np.asarray(x, np.float32), d) for x, d in zip(s, ins[:-1])] for s in samples]
        self.details = self.interp.get_output_details()

    def run(self, on=()) -> list[list[np.ndarray]]:
        """Per sample, every output (as float) with the groups named in ``on`` switched."""
        from tflopt import runtime
        from tflopt.evaluation.compare import to_float
        vector = np.zeros(self.switch["shape"], np.float32)
        for g in on:
            if g in self.slots:
                vector[self.slots[g]] = 1.0
        result = []
        for feed in self.feeds:
            r = runtime.invoke(self.interp, feed + [vector])
            result.append([to_float(x, d) for x, d in zip(r, self.details)])
        return result


def switchable(sg, islands, plan, kind: str) -> list:
    """The islands whose switched copy answers ``kind`` ("only", "float", "weights") exactly
    as a rebuild would; the rest are rebuilt.

    The rebuild decides encodings from who produces a tensor, so a copy is only exact where
    putting the switch in front of a reader changes nothing the plan looks at: a sigmoid
    feeding an elementwise MUL gives that MUL a gated range (the switch would hide the
    sigmoid), and, for "float", a tensor an integer reader takes at its producer's encoding
    (a fixed sigmoid grid, a pool's inherited range) takes the reader's own encoding of its
    range once the producer is float."""
    consumers = sg.consumer_map()
    outputs = set(sg.outputs)
    out = []
    for island in islands:
        mine = set(island.ops)
        ok = True
        for i in island.ops:
            op = sg.operators[i]
            for t in op.outputs:
                readers = [r for r, _ in consumers.get(t, []) if r.index not in mine]
                if not readers and t not in outputs:
                    continue
                if op.name == "LOGISTIC" and any(r.name == "MUL" for r in readers):
                    ok = False
                if kind == "float" and t in plan.act and any(id(r) in plan.quantized_ids for r in readers) \
                        and plan.act[t] != plan.encoding(*plan._range(t)):
                    ok = False
        if ok:
            out.append(island)
    return out
