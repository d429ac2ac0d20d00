"""Calibrated clustering (OBC style): snap weights to k centroids with error compensation,
then refit the centroids to the layer's output error.

Centroids start from the plain k-means (per tensor or per output channel, with a centroid
pinned at 0 when sparsity is preserved). The OBS sweep snaps each column to the nearest
centroid and spreads the error over the columns not yet snapped. The centroid values are
then refit by least squares on sum_r (w_r - c[l_r]) H (w_r - c[l_r])^T with the labels fixed
(the pinned zero stays 0), when that system is affordable. Every weight ends as one of the
k centroids of its row / tensor, so "at most k distinct values" and "zeros stay zero" hold.
"""
from __future__ import annotations

import numpy as np

from .obs import column_blocks, inverse_cholesky, quad_error, sweep

# rows * cols^2 * k above which the exact centroid refit is skipped
REFIT_BUDGET = 4e9


def _nearest(w: np.ndarray, cent: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid: cent [k] (shared) or [rows, k]."""
    if cent.ndim == 1:
        mids = (cent[1:] + cent[:-1]) / 2
        return np.searchsorted(mids, w)
    return np.argmin(np.abs(w[:, None] - cent), axis=1)


def cluster_layer(W: np.ndarray, H: np.ndarray, centroids: np.ndarray, *, forced: np.ndarray | None = None,
                  pinned: np.ndarray | None = None, damp: float = 0.01, block: int = 128,
                  refit: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clustered W, labels, centroids). ``centroids``: sorted [k] shared or [rows, k];
    ``pinned``: bool like centroids, entries kept as they are by the refit (the zero)."""
    rows, cols = W.shape
    cent = np.asarray(centroids, np.float64)
    U = inverse_cholesky(H, damp)
    labels = np.zeros(W.shape, np.int64)
    zero_label = None
    if forced is not None and forced.any():
        zero_label = np.argmin(np.abs(cent), axis=-1)           # the pinned 0 centroid

    def quantize(w: np.ndarray, col: int, pruned) -> np.ndarray:
        idx = _nearest(w, cent)
        if forced is not None and zero_label is not None:
            idx = np.where(forced[:, col], zero_label, idx)
        labels[:, col] = idx
        return cent[idx] if cent.ndim == 1 else np.take_along_axis(cent, idx[:, None], 1)[:, 0]

    Q, _ = sweep(W, U, quantize, blocks=column_blocks(cols, block))
    if forced is not None:
        Q = np.where(forced, 0.0, Q)
    if refit:
        k = cent.shape[-1]
        if rows * cols * cols * k <= REFIT_BUDGET:
            new = _refit(W, H, labels, cent, pinned)
            if new is not None:
                Q2 = new[labels] if new.ndim == 1 else np.take_along_axis(new, labels, 1)
                if forced is not None:
                    Q2 = np.where(forced, 0.0, Q2)
                if quad_error(Q2 - W, H) < quad_error(Q - W, H):
                    Q, cent = Q2, new
    return Q, labels, cent


def _refit(W, H, labels, cent, pinned) -> np.ndarray | None:
    """Least-squares centroids for fixed labels; pinned (and unused) centroids keep their value.
    One (rows x cols) @ H product per centroid, so memory stays at the weight's size."""
    rows, cols = W.shape
    k = cent.shape[-1]
    shared = cent.ndim == 1
    offsets = 0 if shared else (np.arange(rows) * k)[:, None]
    flat = (labels + offsets).ravel()
    size = k if shared else rows * k
    WH = np.einsum("rj,rjl->rl", W, H) if H.ndim == 3 else W @ H
    b = np.bincount(flat, weights=WH.ravel(), minlength=size)
    A = np.zeros((size, k))
    for c in range(k):                        # one product per centroid, not per weight
        S = (labels == c).astype(np.float64)
        SH = np.einsum("rj,rjl->rl", S, H) if H.ndim == 3 else S @ H
        A[:, c] = np.bincount(flat, weights=SH.ravel(), minlength=size)
    if shared:
        A, b, c0 = A[None], b[None], cent[None]
        fixed = np.zeros((1, k), bool) if pinned is None else np.asarray(pinned, bool).reshape(1, k)
    else:
        A, b, c0 = A.reshape(rows, k, k), b.reshape(rows, k), cent
        fixed = np.zeros((rows, k), bool) if pinned is None else np.asarray(pinned, bool).reshape(rows, k)
    fixed = fixed | (np.diagonal(A, axis1=1, axis2=2) <= 0)
    # Fixed centroids: identity rows, value on the right-hand side (moved out of the others).
    rhs = b - np.einsum("rkl,rl->rk", A * fixed[:, None, :], c0)
    A = np.where(fixed[:, :, None] | fixed[:, None, :], 0.0, A)
    idx = np.arange(k)
    A[:, idx, idx] += np.where(fixed, 1.0, 1e-9 * np.abs(A[:, idx, idx]).max(axis=1, keepdims=True))
    rhs = np.where(fixed, c0, rhs)
    try:
        new = np.linalg.solve(A, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return None
    return new[0] if shared else new
