"""``equalize``: cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction"), and bias absorption when calibration data is given.

For a pair of weighted ops where the first's output channel c is the second's input channel c
and only positively homogeneous ops sit between them (tflopt/equalization/pairs.py: nothing,
RELU, PRELU, zero PAD, MAX_POOL_2D), dividing the first's channel c (weights and bias) by s_c
and multiplying the second's input channel c by s_c leaves the float function unchanged. With
s_c = sqrt(r1_c * r2_c) / r2_c (r = max |w| of the channel) both channels end with the same
range sqrt(r1_c r2_c), so per-tensor and per-channel grids waste less of their levels. Chains
are swept until the scales settle.

Weights stored float16 behind DEQUANTIZE are rescaled in float64 and stored back float16 (same
layout). ``rounding=auto`` rounds the scales of such pairs to powers of two that keep every
rescaled float16 value normal and finite, so it is exact and the float outputs stay the same;
``pow2`` drops that bound (values pushed into float16's subnormals lose low bits); ``exact``
uses the exact scales (outputs then differ by float16 rounding of the rescaled weights). ``relu6=clamp`` also takes
pairs behind a fused RELU6 / RELU_N1_TO_1, which then becomes a per-channel MINIMUM
(tflopt/equalization/clamp.py): one more op per pair. ``absorb`` (with --calibration) moves a
per-channel shift from the first op's bias to the second's (tflopt/equalization/absorb.py):
``linear`` centres the channels of pairs with no activation between (exact on any data),
``relu`` also moves the calibration minimum above 0 of RELU / PRELU channels (exact on the
calibration data only: a channel may dip lower on other data).

Left alone and counted in the report: pairs through anything else (ADD, HARD_SWISH, LOGISTIC,
fan-out...), integer or sparse weights, shared weights, depth multipliers.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tflopt.equalization.absorb import absorb
from tflopt.equalization.clamp import add_clamps
from tflopt.equalization.pairs import IN_AXIS, OUT_AXIS, Pair, find_pairs
from tflopt.pipeline import Pass, PassResult, register, searchable
from tflopt.quantization import float16_loss


@dataclass
class EqualizeOptions:
    sweeps: int = 8           # passes over the chains (stops early once scales are ~1)
    min_range: float = 1e-8   # channels below this range in either op keep scale 1
    # auto: where weights are float16, powers of two that keep them exact (normal, finite);
    # else exact scales | pow2: powers of two everywhere (float16 subnormals may round)
    rounding: Literal["auto", "exact", "pow2"] = "auto"
    # keep: leave pairs behind a fused RELU6 | clamp: rescale them, RELU6 -> per-channel MINIMUM
    relu6: Literal["keep", "clamp"] = searchable("keep", ["keep", "clamp"])
    # bias absorption (needs --calibration): off (the default: on the corpus neither kind raised
    # int8 fidelity, benchmarks/equalize_corpus.py) | linear: pairs with no activation between,
    # centred per channel (exact on all data) | relu: also RELU / PRELU pairs, the channels'
    # calibration minimum above 0 (exact on the calibration data only)
    absorb: Literal["off", "linear", "relu"] = searchable("off", ["off", "linear", "relu"])

    def validate(self) -> None:
        if self.sweeps < 1:
            raise ValueError("sweeps must be >= 1")


def _channel_max(w: np.ndarray, axis: int) -> np.ndarray:
    return np.max(np.abs(w), axis=tuple(i for i in range(w.ndim) if i != axis))


def _bshape(ndim: int, axis: int) -> list[int]:
    shape = [1] * ndim
    shape[axis] = -1
    return shape


def _spread(w: np.ndarray, axis: int) -> float:
    r = _channel_max(w, axis)
    return float(np.max(r) / max(float(np.min(r)), 1e-12))


# float16's smallest normal and largest finite value: a power-of-two scale is exact on a float16
# only while the result stays between them (subnormals drop low bits).
F16_NORMAL, F16_MAX = 2.0 ** -14, 65504.0


def _channel_min_nonzero(v: np.ndarray, axis: int) -> np.ndarray:
    a = np.abs(v)
    return np.min(np.where(a > 0, a, np.inf), axis=tuple(i for i in range(v.ndim) if i != axis))


def _exact_float16(s: np.ndarray, p: Pair, values: dict) -> np.ndarray:
    """The power-of-two scales nearest ``s`` that keep every float16 value of the pair exact:
    the first op's channel (divided by s) and the second's (multiplied) stay normal and finite;
    a channel already subnormal may only grow. s = 1 always qualifies."""
    lo, hi = np.zeros_like(s), np.full_like(s, np.inf)
    divided = [(p.w1, OUT_AXIS[p.first.name])] + ([(p.b1, 0)] if p.b1 is not None else [])
    for slot, axis in divided:
        if slot.half:
            v = values[slot.tensor.index]
            small = _channel_min_nonzero(v, axis)
            hi = np.minimum(hi, np.where(small >= F16_NORMAL, small / F16_NORMAL, 1.0))
            lo = np.maximum(lo, _channel_max(v, axis) / F16_MAX)
    if p.w2.half:
        v = values[p.w2.tensor.index]
        small = _channel_min_nonzero(v, IN_AXIS[p.second.name])
        lo = np.maximum(lo, np.where(small >= F16_NORMAL, F16_NORMAL / small, 1.0))
        hi = np.minimum(hi, F16_MAX / np.maximum(_channel_max(v, IN_AXIS[p.second.name]), 1e-300))
    e = np.round(np.log2(s))
    e = np.clip(e, np.ceil(np.log2(np.maximum(lo, 1e-300))), np.floor(np.log2(hi)))
    return np.exp2(e)


def rescale(pairs: list[Pair], options: EqualizeOptions) -> tuple[dict[int, np.ndarray], int]:
    """Sweep the pairs until the scales settle; returns ({tensor index: new values}, sweeps)
    and leaves each pair's total scale in ``pair.scale``."""
    slots = {s.tensor.index: s for p in pairs for s in (p.w1, p.b1, p.w2) if s is not None}
    values = {i: s.values() for i, s in slots.items()}
    for p in pairs:
        p.scale = np.ones(p.w1.tensor.shape[OUT_AXIS[p.first.name]])
    sweeps = 0
    for sweeps in range(1, options.sweeps + 1):
        worst = 0.0
        for p in pairs:
            a1, a2 = OUT_AXIS[p.first.name], IN_AXIS[p.second.name]
            w1, w2 = values[p.w1.tensor.index], values[p.w2.tensor.index]
            r1, r2 = _channel_max(w1, a1), _channel_max(w2, a2)
            ok = (r1 > options.min_range) & (r2 > options.min_range)
            s = np.where(ok, np.sqrt(np.where(ok, r1 * r2, 1.0)) / np.where(ok, r2, 1.0), 1.0)
            if p.half and options.rounding == "auto":
                s = _exact_float16(s, p, values)
            elif options.rounding == "pow2":
                s = np.exp2(np.round(np.log2(s)))
            values[p.w1.tensor.index] = w1 / s.reshape(_bshape(w1.ndim, a1))
            if p.b1 is not None:
                values[p.b1.tensor.index] = values[p.b1.tensor.index] / s
            values[p.w2.tensor.index] = w2 * s.reshape(_bshape(w2.ndim, a2))
            p.scale = p.scale * s
            worst = max(worst, float(np.max(np.abs(np.log(s)))))
        if worst < 1e-3:
            break
    return values, sweeps


def equalize(model, options: EqualizeOptions, calibration=None) -> PassResult:
    sg = model.main
    pairs, skipped = find_pairs(sg, clamp=options.relu6 == "clamp")
    before = [_spread(p.w1.values(), OUT_AXIS[p.first.name]) for p in pairs]
    values, sweeps = rescale(pairs, options)
    slots = {s.tensor.index: s for p in pairs for s in (p.w1, p.b1, p.w2) if s is not None}
    warnings = []
    lossy = [slots[i].tensor.name for i, v in values.items()
             if slots[i].half and float16_loss(v, weight=True) is not None]
    if lossy:
        warnings.append(f"equalize: {len(lossy)} rescaled float16 tensor(s) reach float16's range limits "
                        f"(clamped / subnormal): {', '.join(lossy[:3])}")
    for i, v in values.items():
        slots[i].store(v)
    clamp_ops = add_clamps(sg, pairs)
    after = [_spread(p.w1.values(), OUT_AXIS[p.first.name]) for p in pairs]
    warnings += [f"equalize left {n} conv / depthwise op(s): {why}" for why, n in sorted(skipped.items())]
    stats = {"pairs": len(pairs), "sweeps": sweeps, "skipped": dict(skipped),
             "float16_pairs": sum(p.half for p in pairs), "clamp_ops_added": clamp_ops,
             "median_channel_range_ratio": {"before": float(np.median(before)) if before else None,
                                            "after": float(np.median(after)) if after else None}}
    if options.absorb == "off":
        stats["bias_absorption"] = "off"
    elif calibration is None:
        stats["bias_absorption"] = "skipped: no calibration data (it needs the channels' ranges)"
        warnings.append(f"equalize: bias absorption (absorb={options.absorb}) skipped: no --calibration given")
    else:
        channels, widened, left = absorb(model, pairs, calibration, relu=options.absorb == "relu")
        stats["bias_absorption"] = {"channels": channels, "float16_biases_widened": widened, "pairs_left": dict(left)}
        if widened:
            model.remove_unused()  # the float16 constants the widened biases no longer read
    changed = bool(pairs) and (any(np.any(p.scale != 1) for p in pairs) or clamp_ops > 0) or \
        isinstance(stats["bias_absorption"], dict) and stats["bias_absorption"]["channels"] > 0
    return PassResult(changed, stats, warnings)


@register
class Equalize(Pass):
    name = "equalize"
    summary = ("Cross-layer equalization: even out channel ranges of conv/depthwise pairs through "
               "ReLU / PReLU / PAD / max-pool (float32 or float16 weights), bias absorption with calibration.")
    Options = EqualizeOptions

    def run(self, model, ctx) -> PassResult:
        return equalize(model, self.options, ctx.calibration)
