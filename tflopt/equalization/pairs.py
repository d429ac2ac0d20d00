"""Which conv / depthwise pairs cross-layer equalization may rescale, and why the others are left.

A pair is a first op whose output channel c reaches the second op's input channel c through
ops f with f(x / s) = f(x) / s per channel for s > 0: nothing, RELU (fused or an op), PRELU
(any alpha: both branches are linear), zero PAD / MIRROR_PAD (pads with 0 or copies), and
MAX_POOL_2D (a per-channel max). A RELU6 / RELU_N1_TO_1 fused into the first op clamps at a
fixed bound, so it is only taken when the caller will make that bound per channel (``clamp``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tflopt.model import Operator, Subgraph, Tensor
from tflopt.quantization import to_float16
from tflopt.schema import TensorType
from tflopt.sparse import encode_like, to_dense
from tflopt.weights import stored_constant

# Which weight axis holds output channels / input channels, per op.
OUT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}
IN_AXIS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3}
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3
CLAMPS = {RELU6: (0.0, 6.0), RELU_N1_TO_1: (-1.0, 1.0)}
# Positively homogeneous per channel: f(x / s) = f(x) / s.
THROUGH = {"RELU", "PRELU", "PAD", "MIRROR_PAD", "MAX_POOL_2D"}


def activation(op: Operator) -> int:
    return int(getattr(op.options, "fusedActivationFunction", 0) or 0)


@dataclass
class Slot:
    """A constant the pass rewrites: float32, or float16 read through DEQUANTIZE (written back
    float16, so the file keeps its layout); weights may be sparse behind DENSIFY (re-encoded)."""
    tensor: Tensor

    @property
    def half(self) -> bool:
        return self.tensor.type == TensorType.FLOAT16

    def values(self) -> np.ndarray:
        return to_dense(self.tensor).astype(np.float64)

    def store(self, v: np.ndarray) -> None:
        t = self.tensor
        dense = to_float16(v) if self.half else np.asarray(v, np.float32)
        if t.sparsity is None:
            t.set_data(dense, t.type)
            return
        # Rescaling keeps every zero, so the same layout re-encodes it (DENSIFY reads it as before).
        values, params = encode_like(dense, t.sparsity)
        t.raw.sparsity = params
        t.set_data(values, t.type)


@dataclass
class Pair:
    first: Operator
    second: Operator
    w1: Slot
    b1: Slot | None
    w2: Slot
    path: list[Operator]                  # the ops between them
    clamp: tuple[float, float] | None     # fused RELU6 / RELU_N1_TO_1 bounds of the first op
    scale: np.ndarray | None = field(default=None)  # first op's channel c is divided by scale[c]

    @property
    def half(self) -> bool:
        return self.w1.half or self.w2.half or (self.b1 is not None and self.b1.half)


class Operands:
    """Resolves an op's weight / bias to the constant behind it (directly or through one
    DEQUANTIZE of a float16 constant) and says whether other ops read it too."""

    def __init__(self, sg: Subgraph):
        self.sg = sg
        self.users = sg.consumer_map()
        self.producers = sg.producer_map()

    def resolve(self, op: Operator, pos: int) -> tuple[Tensor | None, bool, str | None]:
        """(stored constant, shared, why not usable)."""
        if pos >= len(op.inputs) or op.inputs[pos] < 0:
            return None, False, None
        t, via = stored_constant(self.sg, op.inputs[pos], self.producers)
        read = [op.inputs[pos]] + [v.inputs[0] for v in via]
        shared = any(len(self.users.get(i, [])) != 1 or i in self.sg.outputs for i in read)
        if t is None:
            return None, shared, "not a constant (float32, or float16 behind DEQUANTIZE)"
        if t.type not in (TensorType.FLOAT32, TensorType.FLOAT16):
            return None, shared, "stored as integers (run dequantize first)"
        if t.sparsity is not None and (pos != 1 or shared):
            return None, shared, "a sparse bias, or sparse weights other ops read too"
        return t, shared, None

    def private(self, op: Operator, pos: int) -> Slot:
        """A Slot for the op's bias that no other op reads: a shared one (the converter shares
        identical biases, e.g. zeros) is copied, with its own DEQUANTIZE when float16."""
        t, shared, _ = self.resolve(op, pos)
        if not shared:
            return Slot(t)
        sg, read = self.sg, op.inputs[pos]
        # The last reader left keeps the original (no orphan constant in the file).
        self.users[read] = [u for u in self.users.get(read, []) if u[0] is not op]
        if t.index == read:
            return Slot(sg.private_input(op, pos, "_equalized"))
        const = sg.clone_tensor(t.index, "_equalized")
        out = sg.clone_tensor(read, "_equalized")
        sg.insert_before(op, "DEQUANTIZE", [const.index], [out.index])
        op.set_input(pos, out.index)
        return Slot(const)


def _multiplier_one(sg: Subgraph, op: Operator) -> bool:
    return op.name != "DEPTHWISE_CONV_2D" or sg.tensors[op.inputs[1]].shape[3] == sg.tensors[op.inputs[0]].shape[-1]


def _walk(sg: Subgraph, users, y: int) -> tuple[list[Operator], Operator | None, str | None]:
    """(ops passed through, the weighted op reached, why the walk stopped short)."""
    path: list[Operator] = []
    while True:
        readers = users.get(y, [])
        if y in sg.outputs:
            return path, None, "output is a graph output"
        if len(readers) != 1:
            return path, None, f"output read by {len(readers)} ops" + \
                (f" ({'|'.join(sorted({o.name for o, _ in readers}))})" if readers else "")
        nxt, pos = readers[0]
        if nxt.name in OUT_AXIS:
            return path, (nxt if pos == 0 else None), None if pos == 0 else "reaches a conv's weight input"
        if nxt.name not in THROUGH or pos != 0 or activation(nxt) not in (NONE, RELU):
            return path, None, f"next op {nxt.name} is not scale-invariant per channel"
        path.append(nxt)
        y = nxt.outputs[0]


def find_pairs(sg: Subgraph, *, clamp: bool) -> tuple[list[Pair], Counter]:
    """The pairs to rescale (shared biases copied), and per reason the first ops left."""
    ops = Operands(sg)
    skipped: Counter = Counter()
    found = []
    for op in sg.operators:
        if op.name not in OUT_AXIS or not op.outputs:
            continue
        path, nxt, why = _walk(sg, ops.users, op.outputs[0])
        if nxt is None:
            skipped[why] += 1
            continue
        act = activation(op)
        if act not in (NONE, RELU) and not (clamp and act in CLAMPS):
            skipped["RELU6 / RELU_N1_TO_1 fused into the first op (relu6=keep)" if act in CLAMPS
                    else "non-clamping fused activation of the first op"] += 1
            continue
        w1, shared1, why1 = ops.resolve(op, 1)
        w2, shared2, why2 = ops.resolve(nxt, 1)
        b1, _, whyb = ops.resolve(op, 2)
        why = why1 or why2 or whyb
        if w1 is None or w2 is None or why:
            skipped[f"weight or bias {why or 'missing'}"] += 1
            continue
        if shared1 or shared2:
            skipped["weights shared with other ops"] += 1
            continue
        if not (_multiplier_one(sg, op) and _multiplier_one(sg, nxt)):
            skipped["depthwise with a depth multiplier"] += 1
            continue
        if w1.shape[OUT_AXIS[op.name]] != w2.shape[IN_AXIS[nxt.name]]:
            skipped["channel counts differ"] += 1
            continue
        found.append((op, nxt, w1, b1 is not None, w2, path, CLAMPS.get(act)))
    # Copying shared biases inserts ops, so it waits until the walk over the ops is done.
    pairs = [Pair(op, nxt, Slot(w1), ops.private(op, 2) if has_bias else None, Slot(w2), path, clamp)
             for op, nxt, w1, has_bias, w2, path, clamp in found]
    return pairs, skipped
