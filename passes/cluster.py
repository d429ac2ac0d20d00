"""The ``cluster`` pass: k-means weight clustering (weight sharing) without retraining.

Each chosen weight ends with at most ``clusters`` distinct values (per output channel with
``per_channel``), the centroids of a 1-D k-means on its float values, as tfmot's stripped
clustered kernels do. Storage is kept: float16 centroids are rounded to float16 and int8
weights are requantized with their own scale and zero point (per channel), which maps the
k centroids to at most k integers per channel.

Zeros are kept out of the clusters (one centroid pinned at 0, zeros stay zero) when asked
with ``preserve_sparsity=true``, and by default when ``prune`` ran earlier in the pipeline
(its masks are in ``ctx.facts``) or the weight is stored sparse. The cluster layout goes to
``ctx.facts["clustered"]`` for later passes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tflopt.distinct import max_distinct_per_row
from tflopt.kmeans import kmeans_rows
from tflopt.pipeline import Pass, PassResult, register, searchable
from tflopt.quantization import quantize_affine

from tflopt.size import pass_sizes, size_stats
from tflopt.weights import DEFAULT_OPS, pruned_masks, weight_slots


@dataclass
class ClusterOptions:
    clusters: int = searchable(16, [16, 8, 4], monotone=True)
    # k centroids per output channel (axis 0 of conv/FC, 3 of depthwise) instead of per tensor.
    per_channel: bool = False
    init: Literal["kmeans++", "linear", "density", "random"] = "kmeans++"
    # None: preserve when prune ran before (ctx.facts) or the weight is stored sparse.
    preserve_sparsity: bool | None = None
    ops: list[str] = field(default_factory=list)    # empty: the prune pass's DEFAULT_OPS
    include: str | None = None
    exclude: str | None = None
    min_elements: int = 1024
    max_iter: int = 100
    sizes: bool = True
    # obs: snap to the centroids with calibrated error compensation, then refit them
    # (tflopt.recovery); needs calibration data. Same at-most-k and zeros-stay-zero promises.
    method: Literal["kmeans", "obs"] = searchable("kmeans", ["kmeans", "obs"])

    def validate(self) -> None:
        if self.clusters < 2:
            raise ValueError(f"clusters must be >= 2, got {self.clusters}")
        if self.preserve_sparsity and self.clusters < 3:
            raise ValueError("preserve_sparsity needs clusters >= 3 (one centroid is pinned at 0)")
        if self.max_iter < 1:
            raise ValueError("max_iter must be >= 1")
        if self.min_elements < 0:
            raise ValueError("min_elements must be >= 0")
        for rx in (self.include, self.exclude):
            if rx:
                re.compile(rx)


def _rows(a: np.ndarray, axis: int | None) -> np.ndarray:
    return a.reshape(1, -1) if axis is None else np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)


def _unrows(rows: np.ndarray, shape: tuple[int, ...], axis: int | None) -> np.ndarray:
    if axis is None:
        return rows.reshape(shape)
    moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
    return np.moveaxis(rows.reshape(moved), 0, axis)


def _max_distinct(rows: np.ndarray) -> int:
    return max_distinct_per_row(rows)


def to_storage(slot, values: np.ndarray) -> np.ndarray:
    """Float values in the slot's stored dtype (float cast, or requantized per channel)."""
    dtype = slot.stored.dtype
    if dtype.kind == "f":
        return values.astype(dtype)
    q = slot.tensor.quantization
    axis = q.axis if q.scale.size > 1 else None
    return quantize_affine(values, q.scale, q.zero_point, dtype, axis)


def count_axis(slot, axis: int | None) -> int | None:
    """Where the at-most-k promise holds: per clustered channel, and per quantization channel
    for per-channel integer storage (each channel's scale maps the centroids differently)."""
    q = slot.tensor.quantization
    if axis is None and slot.stored.dtype.kind != "f" and q is not None and q.scale.size > 1:
        return q.axis
    return axis


def _finish(p: dict, new: np.ndarray, o: ClusterOptions, facts: dict) -> None:
    """Write one clustered weight (zeros kept), record it for later passes and fill its row."""
    slot, axis, zero = p["slot"], p["axis"], p["zero"]
    new[zero] = 0.0
    slot.write(to_storage(slot, new))
    after_floats = slot.floats()
    facts["clustered"][slot.key] = {"clusters": o.clusters, "per_channel": axis is not None, "axis": axis}
    if p["preserve"]:
        facts["pruned_masks"][slot.key] = slot.zero_mask()
    after = slot.figures(o.sizes)
    p["row"].update({"clustered": True, "per_channel": axis is not None, "preserve_sparsity": p["preserve"],
                     "iterations": int(p["kmeans"].iterations),
                     "mse": float(np.mean((after_floats.astype(np.float64) - p["floats"]) ** 2)),
                     "distinct_clustered": _max_distinct(_rows(slot.stored, count_axis(slot, axis))),
                     **size_stats(p["before"], after)})
    slot.release()
    p["plain"] = p["floats"] = p["zero"] = None


@register
class Cluster(Pass):
    name = "cluster"
    summary = "k-means weight clustering per tensor or per channel; keeps pruned zeros."
    Options = ClusterOptions

    def run(self, model, ctx) -> PassResult:
        o = self.options
        before_sizes = pass_sizes(model, compress=o.sizes)
        slots = weight_slots(model, ops=o.ops or DEFAULT_OPS, include=o.include, exclude=o.exclude,
                             min_elements=o.min_elements)
        warnings = [f"{s.name}: {s.skip}" for s in slots if s.skip]
        pruned = pruned_masks(ctx.facts)
        clustered = ctx.facts.setdefault("clustered", {})
        rows_out, plans, changed = [], [], False
        for i, slot in enumerate(s for s in slots if not s.skip):
            axis = slot.axis if o.per_channel else None
            if o.per_channel and slot.axis is None:
                warnings.append(f"{slot.name}: no output-channel axis ({slot.ref.op.name}); clustered per tensor")
            preserve = o.preserve_sparsity
            if preserve is None:
                preserve = slot.key in pruned or slot.tensor.sparsity is not None
            floats = slot.floats()
            zero = slot.zero_mask() if preserve else np.zeros(slot.shape, bool)
            if preserve and slot.key in pruned:
                zero |= pruned[slot.key]
            before = slot.figures(o.sizes)
            x = _rows(floats, axis)
            if _max_distinct(x) <= o.clusters:
                rows_out.append({"clustered": False, "reason": f"already <= {o.clusters} distinct values",
                                 **size_stats(before, before)})
                clustered[slot.key] = {"clusters": o.clusters, "per_channel": axis is not None, "axis": axis}
                slot.release()
                continue
            res = kmeans_rows(x, o.clusters, init=o.init, seed=(ctx.seed, i),
                              weights=None if not preserve else (~_rows(zero, axis)).astype(np.float64),
                              pin_zero=bool(preserve), max_iter=o.max_iter)
            new = _unrows(res.values(), slot.shape, axis)
            new[zero] = 0.0
            rows_out.append({})   # filled below, so the rows keep the slots' order
            plan = {"slot": slot, "kmeans": res, "axis": axis, "zero": zero, "preserve": bool(preserve),
                    "plain": new, "floats": floats, "before": before, "row": rows_out[-1]}
            changed = True
            if o.method == "obs":
                plans.append(plan)   # the calibrated refit sees every weight at once
            else:
                _finish(plan, new, o, ctx.facts)   # one weight held at a time
        recovery = None
        if o.method == "obs" and plans:
            from tflopt.recovery import obs_cluster_slots
            out = obs_cluster_slots(model, ctx.calibration, [p["slot"] for p in plans],
                                    {p["slot"].key: p for p in plans}, ctx.recovery, progress=ctx.progress)
            warnings += out.warnings("calibrated clustering")
            recovery = out.stats()
            for p in plans:
                _finish(p, out.values.get(p["slot"].key, p["plain"]).copy(), o, ctx.facts)
        stats = {"clusters": o.clusters, "per_channel": o.per_channel, "init": o.init,
                 "clustered_tensors": sum(r["clustered"] for r in rows_out), "tensors": rows_out}
        if recovery is not None:
            stats["recovery"] = recovery
        stats.update(pass_sizes(model, before_sizes, compress=o.sizes) if changed else {"size": before_sizes})
        return PassResult(changed=changed, stats=stats, warnings=warnings)
