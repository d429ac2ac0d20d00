"""Bias absorption (Nagel et al. 2019, sec. 4.2), from calibration ranges instead of BN stats.

Where the first op's pre-activation channel c is h_c >= b_c > 0 on every calibration sample and
the activation is the identity above 0 (RELU, PRELU), relu(h) = relu(h - b) + b there, so b can
leave the first op's bias and reach the second's as W2 b: the tensor between them loses the
offset its int8 range carried. The shift is exact only where the second op sees b at every tap,
so pairs with padding (SAME with a kernel over 1x1, or a PAD between) are left; on samples where
h_c falls below b_c (never on the calibration data) the result differs.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .pairs import IN_AXIS, RELU, Operands, Pair, activation


def _activation_input(p: Pair) -> int | None:
    """The tensor holding the activation's input of the pair's channels (what must stay >= b),
    or None when the pair is not one absorption is exact for."""
    if any(o.name in ("PAD", "MIRROR_PAD") for o in p.path) or p.clamp is not None:
        return None
    k = p.second.subgraph.tensors[p.second.inputs[1]].shape
    if int(getattr(p.second.options, "padding", 0) or 0) == 0 and (k[1], k[2]) != (1, 1):
        return None  # SAME padding: border taps read zeros, not b
    if activation(p.first) == RELU:
        return p.first.outputs[0]  # relu(h) >= b > 0 means h >= b
    if p.path and p.path[0].name in ("RELU", "PRELU") and activation(p.first) == 0:
        return p.first.outputs[0]
    return None


def channel_minima(model, data, tensors: list[int]) -> dict[int, np.ndarray]:
    """Per-channel (last axis) minimum of each tensor over the calibration samples."""
    from tflopt.calibration import calibration_model
    from tflopt.observe import Observer, peek
    first, samples = peek(data)
    if first is None:
        return {}
    shapes = [np.shape(x) for x in first]
    cal, _ = calibration_model(model, shapes)
    observer = Observer(cal, tensors, input_shapes=shapes, owned=cal is not model)
    lows: dict[int, np.ndarray] = {}

    def consume(values):
        for t, v in values.items():
            m = np.min(v.reshape(-1, v.shape[-1]), axis=0).astype(np.float64)
            lows[t] = m if t not in lows else np.minimum(lows[t], m)

    for sample in samples:
        observer.run(sample, consume)
    return lows


def absorb(model, pairs: list[Pair], data) -> tuple[int, Counter]:
    """Absorb what the calibration data allows; returns (channels absorbed, pairs left by why)."""
    sg = model.main
    left: Counter = Counter()
    todo = []
    for p in pairs:
        t = _activation_input(p)
        if t is None:
            left["padding, PAD, clamp or activation not RELU / PRELU: not exact"] += 1
        elif len(p.second.inputs) < 3 or p.second.inputs[2] < 0 or p.b1 is None:
            left["an op without bias"] += 1
        else:
            todo.append((p, t))
    if not todo:
        return 0, left
    lows = channel_minima(model, data, [t for _, t in todo])
    ops = Operands(sg)
    absorbed = 0
    for p, t in todo:
        b = np.maximum(lows.get(t, np.zeros(1)), 0.0)
        if t not in lows or not np.any(b > 0):
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
        b2 = ops.private(p.second, 2)
        b2.store(b2.values() + delta)
        p.b1.store(p.b1.values() - b)
        absorbed += int(np.count_nonzero(b > 0))
    return absorbed, left
