"""Distinct-value counts and sorting that never hand numpy a float16 array.

numpy 2.4's AVX-512 16-bit sort kernels misorder float16 arrays with many duplicates on some
CPUs (``np.unique`` of 40,000 values drawn from 8 gives 10), so every sort, unique or argsort
in tflopt goes through :func:`sortable`, which widens float16 to float32 (exact: every float16
is a float32) and leaves other dtypes alone.
"""
from __future__ import annotations

import numpy as np


def sortable(a: np.ndarray) -> np.ndarray:
    """``a`` in a dtype numpy sorts correctly everywhere, with the same values."""
    a = np.asarray(a)
    return a.astype(np.float32) if a.dtype == np.float16 else a


def unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` of the values of ``a``, returned in ``a``'s dtype."""
    a = np.asarray(a)
    return np.unique(sortable(a)).astype(a.dtype, copy=False)


def distinct_count(a: np.ndarray) -> int:
    """How many distinct values ``a`` holds (0.0 and -0.0 count once, NaNs once)."""
    a = np.asarray(a)
    return int(unique(a.reshape(-1)).size) if a.size else 0


def max_distinct_per_row(rows: np.ndarray) -> int:
    """The largest number of distinct values in any row of a 2-D array."""
    rows = np.asarray(rows)
    if rows.size == 0:
        return 0
    s = np.sort(sortable(rows), axis=1)
    return int((1 + (np.diff(s, axis=1) != 0).sum(axis=1)).max())


def max_distinct_along(a: np.ndarray, axis: int | None) -> int:
    """Distinct values of the whole array (``axis=None``) or the most in any slice along ``axis``."""
    a = np.asarray(a)
    if axis is None:
        return distinct_count(a)
    return max_distinct_per_row(np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1))
