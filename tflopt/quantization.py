"""Quantization arithmetic shared by the passes (numpy only, no graph knowledge)."""
from __future__ import annotations

import numpy as np

INT8_WEIGHT_MAX = 127  # the spec keeps weights in [-127, 127] so products never hit -128*-128


def reduce_axes(ndim: int, axis: int | None) -> tuple[int, ...]:
    return tuple(range(ndim)) if axis is None else tuple(i for i in range(ndim) if i != axis)


def symmetric_scale(w: np.ndarray, axis: int | None, qmax: int = INT8_WEIGHT_MAX) -> np.ndarray:
    """max|w| / qmax per channel along ``axis`` (per tensor when None); never zero."""
    amax = np.max(np.abs(w), axis=reduce_axes(w.ndim, axis)) if w.size else np.zeros(())
    scale = np.asarray(amax, np.float64) / qmax
    # An all-zero channel still needs a usable scale; any positive value encodes zeros exactly.
    return np.where(scale > 0, scale, 1.0).astype(np.float32).reshape(-1)


def _expand(v: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    if axis is None or v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def quantize_symmetric(w: np.ndarray, axis: int | None, bits: int = 8,
                       scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(q, scale): symmetric integer weights with zero point 0, rounded to nearest."""
    qmax = INT8_WEIGHT_MAX if bits == 8 else 2 ** (bits - 1) - 1
    w = np.asarray(w, np.float32)
    if scale is None:
        scale = symmetric_scale(w, axis, qmax)
    q = np.rint(w / _expand(scale, w.ndim, axis))
    dtype = np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32
    return np.clip(q, -qmax, qmax).astype(dtype), np.asarray(scale, np.float32).reshape(-1)


def affine_params(lo: float, hi: float, dtype=np.int8, symmetric: bool = False) -> tuple[float, int]:
    """(scale, zero_point) covering [lo, hi] (widened to include 0, as the spec requires)."""
    info = np.iinfo(dtype)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        amax = max(abs(lo), abs(hi))
        scale = amax / info.max if amax > 0 else 1.0
        return float(np.float32(scale)), 0
    if hi == lo:
        return 1.0, 0
    scale = (hi - lo) / (info.max - info.min)
    zp = int(np.clip(np.rint(info.min - lo / scale), info.min, info.max))
    return float(np.float32(scale)), zp


def quantize_affine(x: np.ndarray, scale, zero_point, dtype, axis: int | None = None) -> np.ndarray:
    info = np.iinfo(dtype)
    x = np.asarray(x, np.float32)
    s = _expand(np.asarray(scale, np.float32).reshape(-1), x.ndim, axis)
    z = _expand(np.asarray(zero_point, np.int64).reshape(-1), x.ndim, axis)
    return np.clip(np.rint(x / s) + z, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """Float32 values of integer data: scale * (q - zero_point), per channel along ``axis``."""
    q = np.asarray(q)
    scale = np.asarray(scale, np.float32).reshape(-1)
    zp = np.asarray(zero_point if zero_point is not None else 0, np.int64).reshape(-1)
    if scale.size <= 1:
        axis = None
    s = _expand(scale, q.ndim, axis)
    z = _expand(zp, q.ndim, axis) if zp.size > 1 else zp.reshape(())
    return ((q.astype(np.float64) - z) * s).astype(np.float32)


FLOAT16_MAX = float(np.finfo(np.float16).max)      # 65504
FLOAT16_TINY = float(np.finfo(np.float16).tiny)    # 2**-14, the smallest normal float16
FLOAT16_EPS = float(np.finfo(np.float16).eps)      # 2**-10: relative spacing of float16 values


def float16_loss(values, *, weight: bool = False) -> str | None:
    """Why casting these float32 values to float16 would change what they compute, or None
    when the cast is lossless enough.

    Lost: a finite value beyond float16's range (a ``1e6`` scale; the cast clamps it to
    65504), or a non-zero value float16 only holds as a subnormal or zero (a ``1e-10``
    epsilon: ``LOG(x + eps)`` becomes ``LOG(0)`` on silent input). Infinities and NaNs cast
    exactly (a ``+inf`` clip bound stays +inf). ``weight=True`` (the values are a weighted
    op's kernel or bias) only counts a flushed value when it is above the tensor's own float16
    rounding error (``max|x| * 2**-11``): trained kernels hold a few values below 2**-14 and
    flushing them changes the result less than rounding the largest weight does, which is why
    the converter casts weights as they come."""
    v = np.asarray(values, np.float32)
    a = np.abs(v[np.isfinite(v)])
    if not a.size:
        return None
    top = float(a.max())
    if top > FLOAT16_MAX:
        n = int(np.count_nonzero(a > FLOAT16_MAX))
        return f"{n} value(s) beyond float16's range (max |x| {top:.4g} > {FLOAT16_MAX:g})"
    floor = top * FLOAT16_EPS / 2 if weight else 0.0
    tiny = (a > floor) & (a < FLOAT16_TINY)
    if np.any(tiny):
        n, low = int(np.count_nonzero(tiny)), float(a[tiny].min())
        return (f"{n} non-zero value(s) below float16's smallest normal {FLOAT16_TINY:.3g} "
                f"(min |x| {low:.3g}) would flush to zero or subnormal")
    return None


def to_float16(w: np.ndarray) -> np.ndarray:
    """float16 with finite values clamped to the finite range first, as the converter does;
    infinities and NaNs stay what they are."""
    w = np.asarray(w, np.float32)
    return np.where(np.isfinite(w), np.clip(w, -FLOAT16_MAX, FLOAT16_MAX), w).astype(np.float16)


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scale: np.ndarray,
                  dtype=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """(q, scale) with scale = input_scale * weight_scale[c] and zero point 0."""
    scale = (np.float64(input_scale) * np.asarray(weight_scale, np.float64)).astype(np.float32)
    info = np.iinfo(dtype)
    s = scale if scale.size == bias.size else np.full(bias.shape, scale.reshape(-1)[0], np.float32)
    q = np.clip(np.rint(np.asarray(bias, np.float64) / s), info.min, info.max).astype(dtype)
    return q, scale.reshape(-1)
