"""Per-channel clamps for pairs whose first op had RELU6 / RELU_N1_TO_1 fused.

relu6(x / s) != relu6(x) / s, but min(relu(x / s), 6 / s_c) = relu6(x) / s per channel c: the
first op keeps only RELU (or nothing, for RELU_N1_TO_1) and an explicit MINIMUM (and MAXIMUM)
with a per-channel constant follows it. The float function is unchanged; the cost is one op
(two for RELU_N1_TO_1), and in int8 the tensor before the clamp no longer stops at 6, so its
range can be wider than before (MINIMUM shares one encoding over its operands).
"""
from __future__ import annotations

import numpy as np

from tflopt.schema import TensorType

from .pairs import NONE, RELU, Pair


def add_clamps(sg, pairs: list[Pair]) -> int:
    """Rewrite the clamped pairs; returns how many ops were added."""
    added = 0
    for p in pairs:
        if p.clamp is None or np.all(p.scale == 1):
            continue  # unscaled: the fused clamp is still right
        lo, hi = p.clamp
        op, y = p.first, p.first.outputs[0]
        p.first.options.fusedActivationFunction = RELU if lo == 0 else NONE
        src = sg.clone_tensor(y, "_unclamped")
        op.outputs[0] = src.index
        at = op.index + 1
        steps = [("MINIMUM", hi)] if lo == 0 else [("MAXIMUM", lo), ("MINIMUM", hi)]
        for k, (name, bound) in enumerate(steps):
            c = sg.add_tensor(f"{sg.tensors[y].name}_{name.lower()}_bound", [p.scale.size], TensorType.FLOAT32,
                              data=(bound / p.scale).astype(np.float32))
            out = y if k == len(steps) - 1 else sg.clone_tensor(y, "_lower_clamped").index
            sg.insert_operator(at + k, name, [src.index, c.index], [out])
            src = sg.tensors[out]
            added += 1
    return added
