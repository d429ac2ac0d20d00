"""Bias absorption (Nagel et al. 2019, sec. 4.2), from calibration ranges instead of BN stats.

Where the first op's pre-activation channel c is h_c >= b_c > 0 on every calibration sample and
the activation is the identity above 0 (RELU, PRELU), relu(h) = relu(h - b) + b there, so b can
leave the first op's bias and reach the second's as W2 b: the tensor between them loses the
offset its int8 range carried; on samples where h_c falls below b_c (never on the calibration
data) the result differs. Shifted float16 biases would not round-trip float16, so they become
float32 constants (2 more bytes a channel). With no activation between, any shift is exact on all data, and each
channel is centred on its calibration range. The shift is exact only where the second op sees
it at every tap, so pairs with padding (SAME with a kernel over 1x1, or a PAD between) are left.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from tflopt.schema import TensorType

from .pairs import IN_AXIS, RELU, Operands, Pair, Slot, activation


def _shift_kind(p: Pair) -> tuple[str | None, str]:
    """("relu" | "linear", "") when a per-channel shift can move between the pair's biases,
    else (None, why not)."""
    if any(o.name in ("PAD", "MIRROR_PAD") for o in p.path):
        return None, "PAD between (pads zeros, not the shift)"
    if p.clamp is not None:
        return None, "clamped pair (relu6=clamp)"
    k = p.second.subgraph.tensors[p.second.inputs[1]].shape
    if int(getattr(p.second.options, "padding", 0) or 0) == 0 and (k[1], k[2]) != (1, 1):
        return None, "second op pads its input (SAME, kernel over 1x1): border taps read zeros"
    if activation(p.first) == RELU and all(o.name == "MAX_POOL_2D" for o in p.path) or \
            activation(p.first) == 0 and p.path and p.path[0].name in ("RELU", "PRELU"):
        return "relu", ""
    if activation(p.first) == 0 and not p.path:
        return "linear", ""
    return None, "activation between is not RELU / PRELU / none"


def channel_ranges(model, data, tensors: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per-channel (last axis) minimum and maximum of each tensor over the calibration samples."""
    from tflopt.calibration import calibration_model
    from tflopt.observe import Observer, peek
    first, samples = peek(data)
    if first is None:
        return {}
    shapes = [np.shape(x) for x in first]
    cal, _ = calibration_model(model, shapes)
    observer = Observer(cal, tensors, input_shapes=shapes, owned=cal is not model)
    ranges: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def consume(values):
        for t, v in values.items():
            flat = v.reshape(-1, v.shape[-1])
            lo, hi = np.min(flat, axis=0).astype(np.float64), np.max(flat, axis=0).astype(np.float64)
            ranges[t] = (lo, hi) if t not in ranges else (np.minimum(ranges[t][0], lo), np.maximum(ranges[t][1], hi))

    for sample in samples:
        observer.run(sample, consume)
    return ranges


def _bias32(sg, op, pos: int) -> Slot:
    """The op's bias as a private float32 constant: a float16 one behind DEQUANTIZE is widened
    in place (its DEQUANTIZE goes), since the shifted biases would not round-trip float16."""
    slot = Operands(sg).private(op, pos)  # fresh: earlier pairs inserted and removed ops
    if not slot.half:
        return slot
    out = sg.tensors[op.inputs[pos]]
    deq = sg.producer(out.index)
    out.set_data(slot.values().astype(np.float32), TensorType.FLOAT32)
    sg.remove_operator(deq)
    return Slot(out)


def absorb(model, pairs: list[Pair], data, *, relu: bool) -> tuple[int, int, Counter]:
    """Absorb what the calibration data allows (RELU pairs only with ``relu``); returns
    (channels absorbed, float16 biases widened to float32, pairs left by why)."""
    sg = model.main
    left: Counter = Counter()
    todo = []
    for p in pairs:
        kind, why = _shift_kind(p)
        if kind == "relu" and not relu:
            left["RELU pair (absorb=relu takes it: exact on the calibration data only)"] += 1
        elif kind is None:
            left[why] += 1
        elif len(p.second.inputs) < 3 or p.second.inputs[2] < 0 or p.b1 is None:
            left["an op without bias"] += 1
        else:
            todo.append((p, kind, p.first.outputs[0]))
    if not todo:
        return 0, 0, left
    ranges = channel_ranges(model, data, [t for _, _, t in todo])
    absorbed = widened = 0
    for p, kind, t in todo:
        if t not in ranges:
            left["not reached by the calibration run"] += 1
            continue
        lo, hi = ranges[t]
        # RELU: the part every sample keeps above 0 (relu(h) = relu(h - b) + b for h >= b >= 0).
        # No activation: the shift is exact for any b; centring each channel narrows the
        # tensor's one int8 range to the widest channel's.
        b = np.maximum(lo, 0.0) if kind == "relu" else (lo + hi) / 2
        if not np.any(b != 0):
            left["no channel stays above 0 on the calibration data"] += 1
            continue
        w2 = p.w2.values()
        axis = IN_AXIS[p.second.name]
        shape = [1] * w2.ndim
        shape[axis] = -1
        shift = w2 * b.reshape(shape)
        if p.second.name == "CONV_2D":
            delta = shift.sum(axis=(1, 2, 3))
        else:
            delta = shift.sum(axis=(0, 1, 2))
        for op, change in ((p.second, delta), (p.first, -b)):
            widened += Operands(sg).resolve(op, 2)[0].type == TensorType.FLOAT16
            slot = _bias32(sg, op, 2)
            slot.store(slot.values() + change)
        absorbed += int(np.count_nonzero(b))
    return absorbed, widened, left
