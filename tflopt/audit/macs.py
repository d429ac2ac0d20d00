"""Multiply-accumulates per op, from static shapes (dynamic dims count as 1).

Only the ops that dominate compute are counted; elementwise and data-movement ops are 0,
so a MAC share says how much of the heavy work a delegate takes.
"""
from __future__ import annotations

import numpy as np


def _shape(op, i: int, out: bool = False) -> tuple[int, ...] | None:
    seq = op.outputs if out else op.inputs
    if i >= len(seq) or seq[i] < 0:
        return None
    return tuple(max(int(d), 1) for d in op.subgraph.tensors[seq[i]].shape)


def _n(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def op_macs(op) -> int:
    name = op.name
    out = _shape(op, 0, out=True) if op.outputs else None
    if name == "CONV_2D":
        f = _shape(op, 1)
        return _n(out) * f[1] * f[2] * f[3] if f and len(f) == 4 and out else 0
    if name == "DEPTHWISE_CONV_2D":
        f = _shape(op, 1)
        return _n(out) * f[1] * f[2] if f and len(f) == 4 and out else 0
    if name == "CONV_3D":
        f = _shape(op, 1)
        return _n(out) * f[0] * f[1] * f[2] * f[3] if f and len(f) == 5 and out else 0
    if name == "FULLY_CONNECTED":
        f = _shape(op, 1)
        return _n(out) * f[-1] if f and out else 0
    if name == "BATCH_MATMUL":
        a = _shape(op, 0)
        if not a or not out or len(a) < 2:
            return 0
        adj_x = bool(getattr(op.options, "adjX", False)) if op.options is not None else False
        return _n(out) * (a[-2] if adj_x else a[-1])
    if name in ("TRANSPOSE_CONV", "CUSTOM:Convolution2DTransposeBias"):
        x, f = (_shape(op, 2), _shape(op, 1)) if name == "TRANSPOSE_CONV" else (_shape(op, 0), _shape(op, 1))
        return _n(x) * f[0] * f[1] * f[2] if x and f and len(f) == 4 else 0
    if name in ("LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM"):
        # Four gates, each an input and a recurrent matmul over every step.
        x = _shape(op, 0)
        w_in, w_rec = _shape(op, 1), _shape(op, 5)
        if not x or not w_in or not w_rec:
            return 0
        steps = _n(x[:-1])
        return 4 * steps * (w_in[0] * w_in[-1] + w_rec[0] * w_rec[-1])
    return 0
