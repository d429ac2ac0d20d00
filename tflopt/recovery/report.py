"""Per-layer figures of a recovery run, for PassResult.stats."""
from __future__ import annotations

import numpy as np

from .obs import quad_error


class LayerError:
    """Relative output errors ||D X^T + delta||^2 / ||W X^T||^2 of a layer's weight changes D
    over the calibration rows (H = X^T X, mean = X mean). Products with H are the costliest
    figures of a layer: ||W X^T||^2 is computed once, and each D's ``quad`` once."""

    def __init__(self, H: np.ndarray, W: np.ndarray, count: int, mean: np.ndarray):
        self.H, self.count, self.mean = H, count, mean
        self.den = quad_error(W, H)

    def quad(self, D: np.ndarray) -> float:
        return quad_error(D, self.H)

    def relative(self, quad: float, D: np.ndarray | None = None, bias_delta: np.ndarray | None = None) -> float:
        """The relative error of the change D whose ``quad`` is given, its bias moved by ``bias_delta``."""
        num = quad
        if bias_delta is not None:
            mean = self.mean
            shift = D @ mean if mean.ndim == 1 else np.einsum("rk,rk->r", D, mean)
            num += self.count * float(2 * np.dot(bias_delta, shift) + np.dot(bias_delta, bias_delta))
        return float(num / self.den) if self.den > 0 else 0.0


def summary(rows: list[dict]) -> dict:
    done = [r for r in rows if r.get("recovered")]
    if not done:
        return {"layers_recovered": 0, "layers_fallback": len(rows)}
    plain = np.array([r["error_plain"] for r in done])
    rec = np.array([r["error_recovered"] for r in done])
    return {"layers_recovered": len(done), "layers_fallback": len(rows) - len(done),
            "mean_error_plain": float(plain.mean()), "mean_error_recovered": float(rec.mean()),
            "recovery_seconds": round(float(sum(r["seconds"] for r in done)), 3)}
