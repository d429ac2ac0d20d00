"""The Optimal Brain Surgeon sweep shared by calibrated pruning, rounding and clustering.

Given a layer's weight ``W`` [rows, cols] and its input Hessian ``H`` (shared, [cols, cols],
or one per row, [rows, cols, cols]), columns are fixed left to right: each column is
replaced by its compressed value (pruned to 0, rounded to a grid, or snapped to a
centroid) and the error is spread over the columns not yet fixed, weighted by the upper
Cholesky factor of H^-1 (SparseGPT / GPTQ). Columns go in blocks so the update of the
remaining columns is one matrix product per block; inside a block one step per column,
vectorised over rows.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tflopt.runtime import one_blas_thread


def _diag_add(H: np.ndarray, v: np.ndarray) -> None:
    idx = np.arange(H.shape[-1])
    H[..., idx, idx] += v


def inverse_cholesky(H: np.ndarray, damp: float = 0.01) -> np.ndarray:
    """Upper Cholesky factor of (H + damp * mean(diag H) I)^-1, per batch if H is 3-D.

    Inputs never seen non-zero (diag 0) get a unit diagonal so the factor exists; their
    weights then are judged by magnitude alone."""
    H = np.array(H, np.float64, copy=True)
    diag = np.diagonal(H, axis1=-2, axis2=-1).copy()
    mean = diag.mean(axis=-1, keepdims=True)
    mean = np.where(mean > 0, mean, 1.0)
    dead = diag <= 0
    _diag_add(H, np.where(dead, mean, 0.0))
    for attempt in range(6):
        Hd = H.copy()
        _diag_add(Hd, np.broadcast_to(damp * (10 ** attempt) * mean, diag.shape))
        try:
            with one_blas_thread():
                return _upper_factor_of_inverse(Hd)
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("Hessian is not positive definite even with strong dampening")


def _upper_factor_of_inverse(A: np.ndarray) -> np.ndarray:
    """U upper triangular with U^T U = A^-1, from one Cholesky factorisation: with J the
    reversal, J A J = L L^T gives A^-1 = (J L^-1 J)^T (J L^-1 J), and J L^-1 J is upper.
    (Inverting A and factorising the inverse costs about five times the flops.)"""
    F = A[..., ::-1, ::-1]
    if A.ndim == 2:
        # LAPACK potrf / trtri: numpy has no triangular inverse and its own Cholesky is
        # several times slower than potrf on the large matrices of wide layers.
        from scipy.linalg import lapack
        L, info = lapack.dpotrf(F, lower=1, clean=1)
        if info == 0:
            L, info = lapack.dtrtri(L, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("not positive definite")
        return np.ascontiguousarray(L[::-1, ::-1])
    # Stacks of small matrices (depthwise kernels): numpy's batched routines.
    L = np.linalg.cholesky(F)
    Linv = np.linalg.solve(L, np.broadcast_to(np.eye(A.shape[-1]), A.shape))
    return np.ascontiguousarray(Linv[..., ::-1, ::-1])


def column_blocks(cols: int, block: int, cuts: np.ndarray | None = None) -> list[tuple[int, int]]:
    """[(start, end)] of at most ``block`` columns, ending only where ``cuts[j]`` allows
    (no mask group straddles column j-1 / j); a block grows past ``block`` if it must."""
    if cuts is None:
        return [(a, min(a + block, cols)) for a in range(0, cols, block)]
    allowed = np.flatnonzero(cuts[1:]) + 1
    allowed = np.append(allowed[allowed < cols], cols)
    out, a = [], 0
    while a < cols:
        cand = allowed[(allowed > a) & (allowed <= a + block)]
        b = int(cand[-1]) if cand.size else int(allowed[allowed > a][0])
        out.append((a, b))
        a = b
    return out


Quantizer = Callable[[np.ndarray, int, "np.ndarray | None"], np.ndarray]
Selector = Callable[[int, int, np.ndarray, np.ndarray], "np.ndarray | None"]


def sweep(W: np.ndarray, U: np.ndarray, quantize: Quantizer, *, blocks: list[tuple[int, int]],
          select: Selector | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(compressed W, pruned mask or None). ``quantize(w_col, col, pruned_col)`` returns the
    column's compressed values; ``select(start, end, W_block, d_block)`` picks the block's
    pruned mask from the current (already compensated) weights and diag of U."""
    # Column-major work copies (one contiguous row per column): every step reads and
    # updates columns, which are strided in W's own layout.
    WT = np.array(np.asarray(W, np.float64).T, order="C")
    cols, rows = WT.shape
    QT = np.zeros_like(WT)
    batched = U.ndim == 3
    mask_all = np.zeros((rows, cols), bool) if select is not None else None
    for a, b in blocks:
        W1 = WT[a:b]                                       # [B, rows]; WT[a:b] is not read again
        U1 = U[..., a:b, a:b]
        d = np.diagonal(U1, axis1=-2, axis2=-1)            # [B] or [rows, B]
        mask1 = select(a, b, W1.T, d) if select is not None else None
        if mask1 is not None:
            mask_all[:, a:b] = mask1
        Err1 = np.zeros_like(W1)
        for j in range(b - a):
            w = W1[j]
            q = quantize(w, a + j, None if mask1 is None else mask1[:, j])
            QT[a + j] = q
            if batched:
                err = (w - q) / d[:, j]
                W1[j:] -= (err[:, None] * U1[:, j, j:]).T
            else:
                err = (w - q) / d[j]
                W1[j:] -= U1[j, j:, None] * err
            Err1[j] = err
        if b < cols:
            if batched:
                WT[b:] -= np.einsum("jr,rjc->cr", Err1, U[:, a:b, b:])
            else:
                WT[b:] -= U[a:b, b:].T @ Err1
    return np.ascontiguousarray(QT.T), mask_all


def quad_error(D: np.ndarray, H: np.ndarray) -> float:
    """sum_r D_r H D_r^T (H shared or per row): the squared output error of a weight change."""
    if H.ndim == 3:
        return float(np.einsum("rk,rkl,rl->", D, H, D))
    return float(np.sum((D @ H) * D))
