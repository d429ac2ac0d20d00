"""Per-layer figures of a recovery run, for PassResult.stats."""
from __future__ import annotations

import numpy as np

from .obs import quad_error


def relative_error(D: np.ndarray, H: np.ndarray, W: np.ndarray, count: int, mean: np.ndarray,
                   bias_delta: np.ndarray | None = None) -> float:
    """||D X^T + delta||^2 / ||W X^T||^2 over the calibration rows (H = X^T X, mean = X mean)."""
    num = quad_error(D, H)
    if bias_delta is not None:
        shift = D @ mean if mean.ndim == 1 else np.einsum("rk,rk->r", D, mean)
        num += count * float(2 * np.dot(bias_delta, shift) + np.dot(bias_delta, bias_delta))
    den = quad_error(W, H)
    return float(num / den) if den > 0 else 0.0


def summary(rows: list[dict]) -> dict:
    done = [r for r in rows if r.get("recovered")]
    if not done:
        return {"layers_recovered": 0, "layers_fallback": len(rows)}
    plain = np.array([r["error_plain"] for r in done])
    rec = np.array([r["error_recovered"] for r in done])
    return {"layers_recovered": len(done), "layers_fallback": len(rows) - len(done),
            "mean_error_plain": float(plain.mean()), "mean_error_recovered": float(rec.mean()),
            "recovery_seconds": round(float(sum(r["seconds"] for r in done)), 3)}
