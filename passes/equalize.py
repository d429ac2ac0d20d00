"""``equalize``: data-free cross-layer equalization (Nagel et al. 2019, "Data-Free
Quantization Through Weight Equalization and Bias Correction").

For a pair of weighted ops where the first's output channel c is the second's input channel
c and only a positively homogeneous function sits between them (nothing, or RELU: relu(x/s)
= relu(x)/s for s > 0), dividing the first's channel c (weights and bias) by s_c and
multiplying the second's input channel c by s_c leaves the float function unchanged. With
s_c = sqrt(r1_c * r2_c) / r2_c (r = max |w| of the channel) both channels end with the same
range sqrt(r1_c r2_c), so per-tensor and per-channel grids waste less of their levels. Chains
are swept until the scales settle.

Left alone and counted in the report: RELU6 / RELU_N1_TO_1 between the pair (clamping at 6
is not scale-invariant: the float outputs would change), weights not stored as float32
(float16 / int8: run ``dequantize`` first), shared weights, a first op whose output other ops
or the graph read, depthwise convs with a depth multiplier. Bias absorption is not done.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from tflopt.pipeline import Pass, PassResult, register
from tflopt.schema import TensorType

# Which weight axis holds output channels / input channels, per op.
OUT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}
IN_AXIS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3}
RELU, RELU6, RELU_N1_TO_1, NONE = 1, 3, 2, 0


@dataclass
class EqualizeOptions:
    sweeps: int = 8           # passes over the chains (stops early once scales are ~1)
    min_range: float = 1e-8   # channels below this range in either op keep scale 1

    def validate(self) -> None:
        if self.sweeps < 1:
            raise ValueError("sweeps must be >= 1")


def _weight(sg, op, users):
    """The op's float32 weight tensor when only this op reads it, else None."""
    if len(op.inputs) < 2 or op.inputs[1] < 0:
        return None
    t = sg.tensors[op.inputs[1]]
    if not t.is_constant or t.type != TensorType.FLOAT32 or t.sparsity is not None or len(users.get(t.index, [])) != 1:
        return None
    return t


def _bias(sg, op, users):
    """The op's float32 bias (None: it has none; False: not a float32 constant). A bias
    other ops read too (the converter shares identical ones, e.g. zeros) is copied when
    the pair is taken."""
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return None
    t = sg.tensors[op.inputs[2]]
    return t if t.is_constant and t.type == TensorType.FLOAT32 and t.sparsity is None else False


def _multiplier_one(op) -> bool:
    return op.name != "DEPTHWISE_CONV_2D" or int(getattr(op.options, "depthMultiplier", 1) or 1) == 1 or \
        op.subgraph.tensors[op.inputs[1]].shape[3] == op.subgraph.tensors[op.inputs[0]].shape[-1]


def find_pairs(sg) -> tuple[list[tuple], Counter]:
    users = sg.consumer_map()
    skipped: Counter = Counter()
    pairs = []
    outputs = set(sg.outputs)
    for op in sg.operators:
        if op.name not in OUT_AXIS or not op.outputs:
            continue
        y = op.outputs[0]
        readers = users.get(y, [])
        if y in outputs or len(readers) != 1:
            continue
        nxt, pos = readers[0]
        if nxt.name not in IN_AXIS or pos != 0:
            continue
        act = int(getattr(op.options, "fusedActivationFunction", 0) or 0)
        if act not in (NONE, RELU):
            skipped["clamping activation between the pair (RELU6 / RELU_N1_TO_1 are not scale-invariant)"] += 1
            continue
        w1, w2 = _weight(sg, op, users), _weight(sg, nxt, users)
        b1 = _bias(sg, op, users)
        if w1 is None or w2 is None or b1 is False:
            skipped["weights not a private float32 constant (run dequantize first), or bias not float32"] += 1
            continue
        if not (_multiplier_one(op) and _multiplier_one(nxt)):
            skipped["depthwise with a depth multiplier"] += 1
            continue
        if w1.shape[OUT_AXIS[op.name]] != w2.shape[IN_AXIS[nxt.name]]:
            skipped["channel counts differ"] += 1
            continue
        if b1 is not None and len(users.get(b1.index, [])) > 1:
            b1 = sg.private_input(op, 2, "_equalized")
        pairs.append((op, nxt, w1, b1, w2))
    return pairs, skipped


def _channel_max(w: np.ndarray, axis: int) -> np.ndarray:
    return np.max(np.abs(w), axis=tuple(i for i in range(w.ndim) if i != axis))


def _bshape(ndim: int, axis: int) -> list[int]:
    shape = [1] * ndim
    shape[axis] = -1
    return shape


def equalize(model, options: EqualizeOptions) -> PassResult:
    sg = model.main
    pairs, skipped = find_pairs(sg)
    from tflopt.weights import float_values
    values = {t.index: float_values(t).astype(np.float64)
              for _, _, w1, b1, w2 in pairs for t in (w1, w2, b1) if t is not None}
    before = [float(np.max(_channel_max(values[w1.index], OUT_AXIS[op.name])) /
                    max(np.min(_channel_max(values[w1.index], OUT_AXIS[op.name])), 1e-12)) for op, _, w1, _, _ in pairs]
    sweeps = 0
    for sweeps in range(1, options.sweeps + 1):
        worst = 0.0
        for op, nxt, w1, b1, w2 in pairs:
            a1, a2 = OUT_AXIS[op.name], IN_AXIS[nxt.name]
            r1, r2 = _channel_max(values[w1.index], a1), _channel_max(values[w2.index], a2)
            ok = (r1 > options.min_range) & (r2 > options.min_range)
            s = np.where(ok, np.sqrt(np.where(ok, r1 * r2, 1.0)) / np.where(ok, r2, 1.0), 1.0)
            values[w1.index] = values[w1.index] / s.reshape(_bshape(values[w1.index].ndim, a1))
            if b1 is not None:
                values[b1.index] = values[b1.index] / s
            values[w2.index] = values[w2.index] * s.reshape(_bshape(values[w2.index].ndim, a2))
            worst = max(worst, float(np.max(np.abs(np.log(s)))))
        if worst < 1e-3:
            break
    for i, v in values.items():
        t = sg.tensors[i]
        t.set_data(v.astype(np.float32), TensorType.FLOAT32)
    after = [float(np.max(_channel_max(values[w1.index], OUT_AXIS[op.name])) /
                   max(np.min(_channel_max(values[w1.index], OUT_AXIS[op.name])), 1e-12)) for op, _, w1, _, _ in pairs]
    warnings = [f"equalize left {n} pair(s): {why}" for why, n in sorted(skipped.items())]
    stats = {"pairs": len(pairs), "sweeps": sweeps, "skipped": dict(skipped),
             "median_channel_range_ratio": {"before": float(np.median(before)) if before else None,
                                            "after": float(np.median(after)) if after else None},
             "bias_absorption": "not done"}
    return PassResult(bool(pairs), stats, warnings)


@register
class Equalize(Pass):
    name = "equalize"
    summary = "Cross-layer equalization (data-free): even out channel ranges of conv/depthwise pairs through ReLU."
    Options = EqualizeOptions

    def run(self, model, ctx) -> PassResult:
        return equalize(model, self.options)
