"""GPTQ: calibrated rounding of a layer's weights to a symmetric int8 grid.

Columns are rounded left to right to ``scale * clip(rint(w / scale), -qmax, qmax)`` and
each rounding error is compensated on the columns not yet rounded (see ``obs.sweep``). The
scale is the round-to-nearest one (max |w| / 127 of the original weights, per output
channel or per tensor), so the result is exactly what the int8 encoding stores; weights
that are zero stay zero.
"""
from __future__ import annotations

import numpy as np

from tflopt.quantization import INT8_WEIGHT_MAX

from .obs import column_blocks, inverse_cholesky, sweep


def rtn(W: np.ndarray, scale: np.ndarray, qmax: int = INT8_WEIGHT_MAX) -> np.ndarray:
    s = np.asarray(scale, np.float64).reshape(-1, 1) if np.size(scale) > 1 else float(np.asarray(scale).reshape(-1)[0])
    return np.clip(np.rint(W / s), -qmax, qmax) * s


def gptq_layer(W: np.ndarray, H: np.ndarray, scale: np.ndarray, *, forced: np.ndarray | None = None,
               damp: float = 0.01, block: int = 128, qmax: int = INT8_WEIGHT_MAX) -> np.ndarray:
    """W [rows, cols] rounded to the grid ``scale`` (per row [rows] or one value), compensated.
    Returns the float values on the grid (divide by scale for the integers)."""
    rows, cols = W.shape
    U = inverse_cholesky(H, damp)
    s = np.asarray(scale, np.float64).reshape(-1)
    s = np.broadcast_to(s if s.size > 1 else s[:1], (rows,)).copy()

    def quantize(w: np.ndarray, col: int, pruned) -> np.ndarray:
        q = np.clip(np.rint(w / s), -qmax, qmax) * s
        if forced is not None:
            q = np.where(forced[:, col], 0.0, q)
        return q

    Q, _ = sweep(W, U, quantize, blocks=column_blocks(cols, block))
    return Q
