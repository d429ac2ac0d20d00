"""Calibrated pruning (SparseGPT / OBC): choose the mask and update the kept weights so the
layer's output on calibration data moves as little as possible.

Masks follow the plain ``prune`` patterns, defined on the TFLite layout (the 2-D view
[rows, last axis]): unstructured, r x c blocks and N:M groups along the last axis. They are
mapped to the layer's matrix view as *group ids*; a column block of the sweep never splits
a group, and each block's mask is chosen from the OBS saliency w^2 / [H^-1]_jj^2 of the
already-compensated weights, keeping the plain method's sparsity (exact count for
unstructured). Weights that are zero already (earlier prune, sparse storage) stay zero.
"""
from __future__ import annotations

import numpy as np

from tflopt.runtime import one_blas_thread

from .obs import column_blocks, inverse_cholesky, sweep


def _view2d_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    return (1, int(np.prod(shape))) if len(shape) < 2 else (int(np.prod(shape[:-1])), shape[-1])


def group_ids(shape: tuple[int, ...], pattern: str, block: tuple[int, int] = (1, 4), nm: tuple[int, int] = (2, 4)) -> np.ndarray | None:
    """Group id of every weight in the TFLite layout (None for unstructured)."""
    if pattern == "unstructured":
        return None
    rows, cols = _view2d_shape(shape)
    r_idx, c_idx = np.indices((rows, cols))
    if pattern == "nm":
        m = nm[1]
        ids = r_idx * (-(-cols // m)) + c_idx // m
    elif pattern == "block":
        r, c = block
        ids = (r_idx // r) * (-(-cols // c)) + c_idx // c
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return ids.reshape(shape)


def cut_points(gid2d: np.ndarray | None, cols: int) -> np.ndarray | None:
    """cuts[j]: a block may start at column j without splitting a group."""
    if gid2d is None:
        return None
    col = np.broadcast_to(np.arange(cols), gid2d.shape).ravel()
    g = gid2d.ravel()
    n = int(g.max()) + 1
    gmin = np.full(n, cols, np.int64)
    gmax = np.full(n, -1, np.int64)
    np.minimum.at(gmin, g, col)
    np.maximum.at(gmax, g, col)
    used = gmax >= 0
    cover = np.zeros(cols + 2, np.int64)
    np.add.at(cover, gmin[used] + 1, 1)
    np.add.at(cover, gmax[used] + 1, -1)
    return np.cumsum(cover)[:cols] == 0


def _block_counts(blocks, rows: int, total: int, n: int) -> list[int]:
    out = []
    for a, b in blocks:
        lo, hi = rows * a, rows * b
        out.append(int(round(total * hi / n)) - int(round(total * lo / n)))
    return out


def prune_layer(W: np.ndarray, H: np.ndarray, *, pattern: str, target: int, forced: np.ndarray,
                gid: np.ndarray | None = None, nm: tuple[int, int] = (2, 4), damp: float = 0.01,
                block: int = 128, obc: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(pruned and compensated W, pruned mask) for one layer in matrix view.

    ``target``: number of weights to prune (unstructured / block); ``forced``: weights that
    must end zero; ``gid``: group ids in matrix view for block / nm patterns."""
    rows, cols = W.shape
    if pattern == "unstructured" and obc and obc_affordable(rows, cols):
        return obc_prune(W, H, target=target, forced=forced, damp=damp)
    U = inverse_cholesky(H, damp)
    cuts = cut_points(gid, cols)
    blocks = column_blocks(cols, block, cuts)
    counts = _block_counts(blocks, rows, target, W.size)
    starts = {a: i for i, (a, _) in enumerate(blocks)}
    frac = target / max(W.size, 1)

    def select(a: int, b: int, W1: np.ndarray, d: np.ndarray) -> np.ndarray:
        d2 = np.broadcast_to(d, W1.shape) ** 2
        score = W1 ** 2 / d2
        f = forced[:, a:b]
        if pattern == "unstructured":
            k = counts[starts[a]]
            s = np.where(f, -1.0, score).ravel()
            mask = np.zeros(s.size, bool)
            if k > 0:
                mask[np.argsort(s, kind="stable")[:k]] = True
            return mask.reshape(W1.shape) | f
        g = gid[:, a:b].ravel()
        s = np.where(f, 0.0, score).ravel()
        if pattern == "nm":
            n_keep = nm[0]
            order = np.lexsort((-s, g))
            gs = g[order]
            rank = np.arange(gs.size) - np.searchsorted(gs, gs, side="left")
            mask = np.zeros(s.size, bool)
            mask[order[rank >= n_keep]] = True
            return mask.reshape(W1.shape) | f
        # blocks: prune the lowest mean-saliency groups up to the target fraction
        uniq, inv = np.unique(g, return_inverse=True)
        cnt = np.bincount(inv).astype(np.float64)
        mean = np.bincount(inv, weights=s) / cnt
        order = np.argsort(mean, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(cnt[order])])
        k = int(np.argmin(np.abs(cum - frac * s.size)))
        chosen = np.zeros(uniq.size, bool)
        chosen[order[:k]] = True
        return chosen[inv].reshape(W1.shape) | f

    def quantize(w: np.ndarray, col: int, pruned: np.ndarray | None) -> np.ndarray:
        return np.where(pruned, 0.0, w)

    Q, mask = sweep(W, U, quantize, blocks=blocks, select=select)
    return Q, mask


# Exact OBC (one weight at a time, H^-1 updated after each) where it is affordable.
OBC_FLOPS = 2e8    # rows * cols^3 (memory-bound updates of every row's H^-1, one per step)
OBC_MEMORY = 1e7     # rows * cols^2


def obc_affordable(rows: int, cols: int) -> bool:
    return rows * cols ** 3 <= OBC_FLOPS and rows * cols * cols <= OBC_MEMORY


def obc_prune(W: np.ndarray, H: np.ndarray, *, target: int, forced: np.ndarray, damp: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Optimal Brain Compression for unstructured masks: every row removes its weights one at
    a time, cheapest first, with the exact OBS update of the rest and of its H^-1; then the
    rows' loss curves are merged so that ``target`` weights go where they cost least.
    One step per column, vectorised over rows."""
    rows, cols = W.shape
    Hd = np.array(H if H.ndim == 3 else H[None], np.float64)     # shared H: inverted once
    diag = np.diagonal(Hd, axis1=1, axis2=2)
    mean = diag.mean(axis=1)
    mean = np.where(mean > 0, mean, 1.0)
    idx = np.arange(cols)
    Hd[:, idx, idx] += np.where(diag <= 0, mean[:, None], 0.0) + damp * mean[:, None]
    # float32 per-row inverses: the updates are memory-bound, and damping keeps them stable.
    with one_blas_thread():
        Hinv = np.array(np.broadcast_to(np.linalg.inv(Hd).astype(np.float32), (rows, cols, cols)))
    w = np.array(W, np.float64, copy=True)
    r = np.arange(rows)
    # A row rarely loses more than 1.5x the average share: walk that far, not to the end.
    steps = min(cols, int(forced.sum(axis=1).max()) + int(np.ceil(1.5 * target / max(rows, 1))) + 1)
    history = np.empty((steps + 1, rows, cols))
    history[0] = w
    pruned = np.zeros((rows, cols), bool)
    inc = np.full((rows, cols), np.inf)
    for step in range(steps):
        d = np.diagonal(Hinv, axis1=1, axis2=2)
        score = w ** 2 / d
        score = np.where(forced & ~pruned, -1.0, score)
        score[pruned] = np.inf
        j = np.argmin(score, axis=1)
        dj = d[r, j]
        inc[:, step] = np.where(forced[r, j], -np.inf, w[r, j] ** 2 / dj)
        col = Hinv[r, :, j]                                          # [rows, cols]
        w = w - (w[r, j] / dj)[:, None] * col
        w[r, j] = 0.0
        w[pruned] = 0.0
        pruned[r, j] = True
        Hinv -= col[:, :, None] * (Hinv[r, j, :] / dj[:, None].astype(np.float32))[:, None, :]
        Hinv[r, j, :] = 0.0
        Hinv[r, :, j] = 0.0
        Hinv[r, j, j] = 1.0
        history[step + 1] = w
    # Merge: increments made monotone per row, then the ``target`` smallest overall.
    mono = np.maximum.accumulate(inc, axis=1)
    flat = mono.ravel()
    order = np.argsort(flat, kind="stable")
    take = np.zeros(flat.size, bool)
    take[order[:target]] = True
    take |= np.isneginf(flat)
    k = take.reshape(rows, cols).sum(axis=1)
    out = history[k, r]
    mask = out == 0.0
    # Weights the walk zeroed are the pruned ones; a kept weight that is exactly 0 stays 0.
    return out, mask | forced
