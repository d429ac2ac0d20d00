"""Fast 1-D k-means for weight clustering, many rows (channels) at once.

In one dimension the clusters of sorted data are contiguous runs, and the boundary between
two neighbouring centroids is their midpoint. So after one sort per row, a Lloyd iteration is
a ``searchsorted`` of the k-1 midpoints plus differences of cumulative sums: O(k log n) per
row and iteration instead of O(n k). All rows advance together: each row's values are mapped
into a band of its own on one monotone axis, so a single global ``searchsorted`` answers every
row's queries without a Python loop over rows or elements.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distinct import sortable

INITS = ("kmeans++", "linear", "density", "random")
_BAND = 3.0          # row r occupies [3r, 3r+1]; queries are clipped to [3r-0.5, 3r+1.5]
_PLUSPLUS_SAMPLE = 8192      # points per row for k-means++ seeding ...
_PLUSPLUS_BUDGET = 1 << 21   # ... and over all rows, so per-channel seeding stays cheap
_STRIDE = 64                 # coarse index stride for cache-friendly batched searches


def _searchsorted(keys: np.ndarray, coarse: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``searchsorted(keys, queries, 'left')`` for a huge ``keys``: a binary search per query
    over a big array misses the cache at every level, so search a strided copy that fits in
    cache first, then finish with a vectorised binary search inside one stride."""
    q = queries.ravel()
    j = np.searchsorted(coarse, q, side="left")          # keys[(j-1)*S] < q <= keys[j*S]
    pos = np.maximum(j - 1, 0) * _STRIDE
    last = keys.size - 1
    step = _STRIDE
    while step:
        probe = pos + step - 1
        pos = np.where((probe <= last) & (keys[np.minimum(probe, last)] < q), pos + step, pos)
        step //= 2
    return pos.reshape(queries.shape)


@dataclass
class KMeansResult:
    centroids: np.ndarray   # [rows, k], sorted per row (unused centroids stay in place)
    labels: np.ndarray      # like the input: index of each value's centroid in its row
    iterations: int

    def values(self) -> np.ndarray:
        """Each input value replaced by its centroid."""
        return np.take_along_axis(self.centroids, self.labels.reshape(self.centroids.shape[0], -1), 1)\
            .reshape(self.labels.shape)


class _Positions:
    """The cumulative weights of unweighted values, ``arange(size)`` as float64, computed where
    indexed rather than stored: 8 bytes per weight less at the peak (a 2 GB model's largest
    tensors cluster with several such arrays alive)."""

    def __init__(self, size: int):
        self.size = size

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return np.arange(self.size, dtype=np.float64)[idx]
        return np.asarray(idx, dtype=np.float64)


def _cumsum0(x: np.ndarray) -> np.ndarray:
    """``concatenate([[0], cumsum(x)])`` written into one array (no second full-size copy)."""
    out = np.empty(x.size + 1, np.float64)
    out[0] = 0.0
    np.cumsum(x.ravel(), out=out[1:])
    return out


class _Rows:
    """Rows sorted once, their cumulative weights and sums, and a batched searchsorted."""

    def __init__(self, values: np.ndarray, weights: np.ndarray | None):
        self.weighted = weights is not None
        if weights is None:
            self.sorted = np.sort(values, axis=1).astype(np.float64)
            w = None
        else:
            order = np.argsort(values, axis=1, kind="stable")
            self.sorted = np.take_along_axis(values, order, 1).astype(np.float64)
            w = np.take_along_axis(weights, order, 1).astype(np.float64)
        rows, n = self.sorted.shape
        self.rows, self.n = rows, n
        # Global cumulative sums with a leading 0, so segment [a, b) sums to cs[b] - cs[a].
        if w is None:
            self.cw = _Positions(rows * n + 1)
            self.cwv = _cumsum0(self.sorted)
            w = np.ones((rows, 1))
        else:
            self.cw = _cumsum0(w)
            self.cwv = _cumsum0(w * self.sorted)
        if w.shape[1] == 1:
            self.lo, self.hi = self.sorted[:, 0], self.sorted[:, -1]
            self.total_w = np.full(rows, float(n))
        else:
            valid = w > 0
            empty = ~valid.any(axis=1)
            self.lo = np.where(empty, 0.0, np.where(valid, self.sorted, np.inf).min(axis=1))
            self.hi = np.where(empty, 0.0, np.where(valid, self.sorted, -np.inf).max(axis=1))
            self.total_w = w.sum(axis=1)
        if rows > 1:
            self._lo_all = self.sorted[:, 0]
            self._span = np.maximum(self.sorted[:, -1] - self._lo_all, 1e-300)
            self._keys = ((self.sorted - self._lo_all[:, None]) / self._span[:, None]
                          + _BAND * np.arange(rows)[:, None]).ravel()
            self._coarse = self._keys[::_STRIDE].copy()

    def search(self, queries: np.ndarray) -> np.ndarray:
        """Per row: how many of the row's sorted values are < each query ([rows, q])."""
        if self.rows == 1:
            return np.searchsorted(self.sorted[0], queries[0], side="left")[None, :]
        qn = np.clip((queries - self._lo_all[:, None]) / self._span[:, None], -0.5, 1.5)
        qn += _BAND * np.arange(self.rows)[:, None]
        return _searchsorted(self._keys, self._coarse, qn) - (np.arange(self.rows) * self.n)[:, None]


def _init_centroids(rows: _Rows, k: int, init: str, rng: np.random.Generator) -> np.ndarray:
    lo, hi = rows.lo[:, None], rows.hi[:, None]
    if init == "linear":
        return lo + (hi - lo) * np.linspace(0.0, 1.0, k)[None, :]
    if init == "random":
        return np.sort(lo + (hi - lo) * rng.random((rows.rows, k)), axis=1)
    if init == "density":
        # Invert the empirical CDF at evenly spaced levels: centroids follow the weight density.
        return _quantiles(rows, np.linspace(0.01, 0.99, k))
    if init == "kmeans++":
        return _plusplus(rows, k, rng)
    raise ValueError(f"unknown centroid init {init!r} (one of {', '.join(INITS)})")


def _quantiles(rows: _Rows, levels: np.ndarray) -> np.ndarray:
    """Weighted quantiles per row (levels [m] or [rows, m] in [0, 1]), by searching each
    row's normalised cumulative weights in the same per-row bands."""
    levels = np.broadcast_to(levels, (rows.rows, np.shape(levels)[-1]))
    starts = rows.cw[np.arange(rows.rows) * rows.n]
    cw = rows.cw[1:].reshape(rows.rows, rows.n) - starts[:, None]
    band = _BAND * np.arange(rows.rows)[:, None]
    keys = (cw / np.maximum(rows.total_w, 1e-300)[:, None] + band).ravel()
    idx = np.searchsorted(keys, (levels + band).ravel(), side="left").reshape(levels.shape)
    idx = np.clip(idx - (np.arange(rows.rows) * rows.n)[:, None], 0, rows.n - 1)
    return np.take_along_axis(rows.sorted, idx, 1)


def _plusplus(rows: _Rows, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ (D^2 sampling) on a weighted random sample of each row (inverse-CDF draws);
    Lloyd then refines on all the data, so the sample only has to place the seeds well."""
    m = min(rows.n, _PLUSPLUS_SAMPLE, max(256, _PLUSPLUS_BUDGET // rows.rows))
    if rows.weighted:
        pts = _quantiles(rows, rng.random((rows.rows, m)))
    else:
        pts = np.take_along_axis(rows.sorted, rng.integers(0, rows.n, (rows.rows, m)), 1)
    r = np.arange(rows.rows)
    cent = np.empty((rows.rows, k))
    cent[:, 0] = pts[r, rng.integers(0, m, rows.rows)]
    d2 = (pts - cent[:, :1]) ** 2
    for j in range(1, k):
        c = np.cumsum(d2, axis=1)
        u = rng.random(rows.rows) * c[:, -1]
        pick = np.minimum((c < u[:, None]).sum(axis=1), m - 1)
        cent[:, j] = pts[r, pick]
        d2 = np.minimum(d2, (pts - cent[:, j:j + 1]) ** 2)
    return np.sort(cent, axis=1)


def kmeans_rows(values: np.ndarray, k: int, *, init: str = "kmeans++", seed: int = 0, weights: np.ndarray | None = None,
                pin_zero: bool = False, max_iter: int = 100, tol: float = 1e-7) -> KMeansResult:
    """Cluster each row of a 2-D array into at most ``k`` values.

    ``weights`` (same shape, >= 0) say how much each value pulls its centroid; weight 0 keeps a
    value out of the fit (it is still assigned to its nearest centroid). ``pin_zero`` fixes one
    centroid at exactly 0 and initialises the other k-1 from the rest, as tfmot's
    sparsity-preserving clustering does, so zeros are assigned 0 exactly.
    """
    values = sortable(values)
    if values.ndim != 2:
        raise ValueError("kmeans_rows wants a 2-D array (rows x values)")
    if k < (3 if pin_zero else 2):
        raise ValueError(f"k must be > {2 if pin_zero else 1}")
    if values.shape[1] == 0:
        return KMeansResult(np.zeros((values.shape[0], k)), np.zeros(values.shape, np.int64), 0)
    rng = np.random.default_rng(seed)
    rows = _Rows(values, None if weights is None else np.asarray(weights, np.float64))
    free = k - 1 if pin_zero else k
    cent = _init_centroids(rows, free, init, rng)
    pinned = np.zeros(cent.shape, bool)
    if pin_zero:
        cent = np.concatenate([cent, np.zeros((rows.rows, 1))], axis=1)
        pinned = np.concatenate([pinned, np.ones((rows.rows, 1), bool)], axis=1)
        order = np.argsort(cent, axis=1, kind="stable")
        cent, pinned = np.take_along_axis(cent, order, 1), np.take_along_axis(pinned, order, 1)
    base = (np.arange(rows.rows) * rows.n)[:, None]
    span = np.maximum(rows.hi - rows.lo, 1e-30)[:, None]
    it = 0
    for it in range(1, max_iter + 1):
        mids = (cent[:, 1:] + cent[:, :-1]) / 2
        edges = np.concatenate([np.zeros((rows.rows, 1), np.int64), rows.search(mids),
                                np.full((rows.rows, 1), rows.n)], axis=1) + base
        cnt = rows.cw[edges[:, 1:]] - rows.cw[edges[:, :-1]]
        tot = rows.cwv[edges[:, 1:]] - rows.cwv[edges[:, :-1]]
        new = np.where(pinned | (cnt <= 0), cent, tot / np.where(cnt > 0, cnt, 1))
        order = np.argsort(new, axis=1, kind="stable")
        new, pinned = np.take_along_axis(new, order, 1), np.take_along_axis(pinned, order, 1)
        done = np.all(np.abs(new - cent) <= tol * span)
        cent = new
        if done:
            break
    labels = _assign(values, cent)
    return KMeansResult(cent, labels, it)


_ASSIGN_CHUNK = 1 << 20   # values per searchsorted call: its int64 result stays a few MB


def _assign(values: np.ndarray, cent: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (by midpoints) for every value, in the smallest unsigned
    type that holds k (uint8 for up to 256 clusters: 1 byte per weight instead of 8). A loop
    over rows and blocks: each search is over k-1 midpoints that stay in cache, cheaper than
    one banded search."""
    mids = (cent[:, 1:] + cent[:, :-1]) / 2
    k = cent.shape[1]
    labels = np.empty(values.shape, np.uint8 if k <= 256 else np.uint16 if k <= 65536 else np.int64)
    for r in range(values.shape[0]):
        for s in range(0, values.shape[1], _ASSIGN_CHUNK):
            labels[r, s:s + _ASSIGN_CHUNK] = np.searchsorted(mids[r], values[r, s:s + _ASSIGN_CHUNK], side="left")
    return labels


def kmeans_1d(values: np.ndarray, k: int, **kw) -> KMeansResult:
    """One tensor as one row; labels keep the input's shape."""
    values = np.asarray(values)
    weights = kw.pop("weights", None)
    res = kmeans_rows(values.reshape(1, -1), k, weights=None if weights is None else np.asarray(weights).reshape(1, -1),
                      **kw)
    return KMeansResult(res.centroids, res.labels.reshape(values.shape), res.iterations)
