"""The ``prune`` pass: magnitude pruning of weights in a converted model, no retraining.

As tfmot does during training, the smallest-magnitude weights (or blocks, or the smaller
entries of every N:M group) become exactly zero. Magnitudes are compared in float (weights
are dequantized first), so per-channel int8 scales and float16 storage rank like the float
model. Weights keep their storage: float32, float16 behind DEQUANTIZE, int8 (a pruned
weight is its zero point, i.e. exactly 0.0), and sparse behind DENSIFY, which is re-encoded
sparse in its own layout, so DENSIFY keeps working and the extra zeros save bytes.

Pruned masks go to ``ctx.facts["pruned_masks"]`` so later passes (cluster, quantize checks,
sparsify) keep the zeros.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tflopt.pipeline import Pass, PassResult, register, searchable
from tflopt.size import pass_sizes, size_stats
from tflopt.weights import DEFAULT_OPS, pruned_masks, weight_slots

# -- pruning ---------------------------------------------------------------------------------


def _parse_pair(text: str, sep: str, what: str) -> tuple[int, int]:
    m = re.fullmatch(rf"\s*(\d+)\s*{sep}\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ValueError(f"{what} must look like 'A{sep}B' with positive integers, got {text!r}")
    return int(m.group(1)), int(m.group(2))


@dataclass
class PruneOptions:
    sparsity: float = searchable(0.5, [0.5, 0.75, 0.9], monotone=True)
    pattern: Literal["unstructured", "block", "nm"] = "unstructured"
    # Block shape over the 2-D view [rows, in] of the TFLite layout (in = the last axis):
    # 1x4 is four consecutive input channels, as the float sparse FC kernel reads them.
    block: str = "1x4"
    # N:M keeps the N largest of every M consecutive weights along the last axis; the
    # pattern fixes the sparsity (1 - N/M), so ``sparsity`` is not used with it.
    nm: str = "2:4"
    # One threshold per tensor, or one over all chosen tensors (so layers end up unequal).
    threshold: Literal["tensor", "global"] = "tensor"
    ops: list[str] = field(default_factory=list)    # empty: DEFAULT_OPS
    include: str | None = None
    exclude: str | None = None
    # Tiny weights (depthwise kernels, heads) hold little of the size and much of the accuracy.
    min_elements: int = 1024
    # gzip/zstd figures per tensor and for the whole file (compressions before and after).
    sizes: bool = True
    # obs: calibrated (SparseGPT / OBC) mask and compensation of the kept weights, from the
    # calibration data (tflopt.recovery); the same pattern and per-layer counts as magnitude.
    method: Literal["magnitude", "obs"] = searchable("magnitude", ["magnitude", "obs"])

    def validate(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        self.block_shape()
        n, m = self.nm_pair()
        if n > m:
            raise ValueError(f"nm={self.nm}: N must be <= M")
        if self.pattern == "nm" and self.threshold == "global":
            raise ValueError("threshold=global does not apply to the N:M pattern (it is per group)")
        if self.min_elements < 0:
            raise ValueError("min_elements must be >= 0")
        for rx in (self.include, self.exclude):
            if rx:
                re.compile(rx)

    def block_shape(self) -> tuple[int, int]:
        return _parse_pair(self.block, "x", "block")

    def nm_pair(self) -> tuple[int, int]:
        return _parse_pair(self.nm, ":", "nm")


def _view2d(a: np.ndarray) -> np.ndarray:
    """[rows, in]: the TFLite weight layouts keep the input (reduction) axis last."""
    return a.reshape(1, -1) if a.ndim < 2 else a.reshape(-1, a.shape[-1])


def block_scores(mag: np.ndarray, block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(mean |w| per block, elements per block) over the 2-D view; edge blocks are partial."""
    v = _view2d(mag)
    r, c = block
    pad = ((0, -v.shape[0] % r), (0, -v.shape[1] % c))
    blocks = lambda a: a.reshape(a.shape[0] // r, r, a.shape[1] // c, c).sum(axis=(1, 3))  # noqa: E731
    total = blocks(np.pad(v.astype(np.float64), pad))
    count = blocks(np.pad(np.ones(v.shape), pad))
    return total / count, count


def block_mask(shape: tuple[int, ...], pruned_blocks: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    r, c = block
    rows, cols = _view2d(np.empty(shape, np.bool_)).shape
    full = np.kron(pruned_blocks, np.ones((r, c), bool)).astype(bool)[:rows, :cols]
    return full.reshape(shape)


def nm_mask(mag: np.ndarray, n: int, m: int) -> np.ndarray:
    """True where pruned: all but the n largest of each m consecutive values on the last axis."""
    v = _view2d(mag)
    pad = -v.shape[1] % m
    groups = np.pad(v, ((0, 0), (0, pad))).reshape(v.shape[0], -1, m)
    # Rank within the group by descending magnitude (stable: ties keep the earlier weight).
    rank = np.argsort(np.argsort(-groups, axis=2, kind="stable"), axis=2, kind="stable")
    pruned = (rank >= n).reshape(v.shape[0], -1)[:, :v.shape[1]]
    return pruned.reshape(mag.shape)


def smallest(scores: list[np.ndarray], weights: list[np.ndarray], fraction: float) -> list[np.ndarray]:
    """Masks of the lowest-scoring entries over all arrays together, until their weight
    (elements) reaches ``fraction`` of the total; stable, so ties fall to the earlier entry."""
    flat = np.concatenate([s.ravel() for s in scores])
    wflat = np.concatenate([w.ravel() for w in weights]).astype(np.float64)
    order = np.argsort(flat, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(wflat[order])])
    # The count whose cumulative weight lands nearest the target.
    k = int(np.argmin(np.abs(cum - fraction * wflat.sum())))
    chosen = np.zeros(flat.size, bool)
    chosen[order[:k]] = True
    out, at = [], 0
    for s in scores:
        out.append(chosen[at:at + s.size].reshape(s.shape))
        at += s.size
    return out


def smallest_k(values: np.ndarray, k: int) -> np.ndarray:
    """True at the ``k`` smallest values, ties (and NaNs, which rank last) falling to the
    earlier element: what a stable argsort's first ``k`` pick, found by selection (linear
    time) instead of a sort."""
    flat = values.ravel()
    mask = np.zeros(flat.size, bool)
    if k >= flat.size:
        mask[:] = True
    elif k > 0:
        kth = np.partition(flat, k - 1)[k - 1]
        if np.isnan(kth):
            mask = ~np.isnan(flat)
            ties = np.flatnonzero(~mask)
        else:
            mask = flat < kth
            ties = np.flatnonzero(flat == kth)
        mask[ties[:k - int(np.count_nonzero(mask))]] = True
    return mask.reshape(values.shape)


@register
class Prune(Pass):
    name = "prune"
    summary = "Magnitude pruning (unstructured, blocks, N:M; per tensor or global) of weights in any storage."
    Options = PruneOptions

    def run(self, model, ctx) -> PassResult:
        o = self.options
        before_sizes = pass_sizes(model, compress=o.sizes)
        slots = weight_slots(model, ops=o.ops or DEFAULT_OPS, include=o.include, exclude=o.exclude,
                             min_elements=o.min_elements)
        warnings = [f"{s.name}: {s.skip}" for s in slots if s.skip]
        slots = [s for s in slots if not s.skip]
        masks = self._masks(slots)
        recovered, recovery = {}, None
        if o.method == "obs":
            masks = list(masks)
            from tflopt.recovery import obs_prune_slots
            from .cluster import to_storage
            out = obs_prune_slots(model, ctx.calibration, slots, masks, o, ctx.recovery, progress=ctx.progress)
            warnings += out.warnings("calibrated pruning")
            masks = [out.extra[s.key]["mask"] | s.zero_mask() if s.key in out.values else m for s, m in zip(slots, masks)]
            recovered = {s.key: to_storage(s, out.values[s.key]) for s in slots if s.key in out.values}
            recovery = out.stats()
        facts = pruned_masks(ctx.facts)
        rows, changed = [], False
        zeros = elements = 0
        for slot, mask in zip(slots, masks):
            before = slot.figures(o.sizes)
            already = slot.zero_mask()
            if not (mask & ~already).any():
                facts[slot.key] = already
                rows.append({"pruned": False, "reason": "already at or above the target sparsity",
                             **size_stats(before, before)})
                slot.release()
                continue
            slot.write(np.where(mask, slot.zero_stored(), recovered.get(slot.key, slot.stored)))
            changed = True
            facts[slot.key] = mask | already
            after = slot.figures(o.sizes)
            zeros += after["zeros"]
            elements += after["elements"]
            rows.append({"pruned": True, **size_stats(before, after)})
            slot.release()
        stats = {"pattern": o.pattern, "threshold": o.threshold, "pruned_tensors": sum(r["pruned"] for r in rows),
                 "sparsity": round(zeros / elements, 6) if elements else 0.0, "tensors": rows}
        if recovery is not None:
            stats["recovery"] = recovery
        stats.update(pass_sizes(model, before_sizes, compress=o.sizes) if changed else {"size": before_sizes})
        return PassResult(changed=changed, stats=stats, warnings=warnings)

    def _masks(self, slots):
        """The pruning mask of each slot, in order: computed one at a time as the caller goes
        (one weight's temporaries at a time) unless one threshold spans every weight."""
        o = self.options
        if o.threshold == "global" and o.pattern != "nm" and slots:
            return iter(self._global_masks(slots))
        return (self._mask(s) | s.zero_mask() for s in slots)

    def _mask(self, slot) -> np.ndarray:
        o = self.options
        mag = np.abs(slot.floats())
        if o.pattern == "nm":
            return nm_mask(mag, *o.nm_pair())
        if o.pattern == "block":
            block = o.block_shape()
            scores, counts = block_scores(mag, block)
            return block_mask(slot.shape, smallest([scores], [counts], o.sparsity)[0], block)
        return smallest_k(mag, int(round(mag.size * o.sparsity)))

    def _global_masks(self, slots) -> list[np.ndarray]:
        o = self.options
        mags = [np.abs(s.floats()) for s in slots]
        if o.pattern == "block":
            block = o.block_shape()
            scored = [block_scores(mag, block) for mag in mags]
            chosen = smallest([sc[0] for sc in scored], [sc[1] for sc in scored], o.sparsity)
            return [block_mask(s.shape, c, block) | s.zero_mask() for s, c in zip(slots, chosen)]
        ones = [np.ones(mag.shape, np.int8) for mag in mags]
        return [c | s.zero_mask() for s, c in zip(slots, smallest(mags, ones, o.sparsity))]
