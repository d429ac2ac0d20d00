"""GPTQ weights for mixed precision (``quantize(..., target_cosine=C, weights=gptq)``).

GPTQ rounds each layer's weights against its float inputs, so a layer's result does not
depend on which other ops end up integer: it is computed once, on the float model, and
written over the round-to-nearest int8 weights of every trial build and of the written model
(same per-channel scales, so biases and requantization stay as the plain rewrite made them).
int8 weight error is what int16x8 cannot fix (palm_detection_lite: int16x8 min cosine 0.9897
round-to-nearest, 0.9991 with GPTQ), so the choice is made on the weights that are written.
"""
from __future__ import annotations

import numpy as np

from tflopt.schema import TensorType

from .qkernels import WEIGHTED


def gptq_cache(float_model, calibration, per_channel: bool) -> tuple[dict, object]:
    """({op key: (int8 weights, scale)}, the recovery outcome) for every weighted op."""
    from tflopt.recovery import gptq_weights
    from tflopt.sensitivity.islands import op_key
    sg = float_model.main
    ops = [op for op in sg.operators if op.name in WEIGHTED]
    pre, outcome = gptq_weights(float_model, calibration, ops, per_channel=per_channel,
                                axes={k: v[3] for k, v in WEIGHTED.items()})
    return {op_key(sg, op): pre[id(op)][:2] for op in ops if id(op) in pre}, outcome


def apply_gptq(model, cache: dict) -> int:
    """Write the cached GPTQ weights over the int8 weights of the integer weighted ops of
    subgraph 0 whose scales match (a weight several ops share, or one stored sparse again, is
    left as it is); returns how many it replaced."""
    from tflopt.sensitivity.islands import op_key
    sg = model.main
    readers: dict[int, int] = {}
    for op in sg.operators:
        for t in op.inputs:
            readers[t] = readers.get(t, 0) + 1
    n = 0
    for op in sg.operators:
        # An integer graph output hands its name to its float32 twin and becomes NAME_int8.
        name = op_key(sg, op)
        key = next((k for k in (name, name.removesuffix("_int8"), name.removesuffix("_int16")) if k in cache), None)
        if op.name not in WEIGHTED or key is None:
            continue
        q, scale = cache[key]
        w = sg.tensors[op.inputs[WEIGHTED[op.name][1]]]
        have = w.quantization.scale if w.type == TensorType.INT8 and w.quantization is not None else None
        if have is None or w.sparsity is not None or readers.get(w.index, 0) != 1 or tuple(w.shape) != q.shape or \
                np.size(have) != np.size(scale) or not np.allclose(have, scale, rtol=1e-6):
            continue
        w.set_data(q, TensorType.INT8)
        n += 1
    return n
