"""Training-free accuracy recovery: calibrated pruning, clustering, weight rounding and bias
correction from a layer's input statistics on calibration data (SparseGPT / OBC / GPTQ).

Entry points work on the slots the ``prune`` / ``cluster`` passes select, so the passes can
call them with ``method=obs``; ``prune_obs`` / ``cluster_obs`` / ``gptq_weights`` are also
usable directly from Python.
"""
from __future__ import annotations

import numpy as np

from .engine import Outcome, RecoveryConfig, run

__all__ = ["RecoveryConfig", "Outcome", "obs_prune_slots", "obs_cluster_slots", "prune_obs", "cluster_obs",
           "gptq_weights"]


def _config(config: RecoveryConfig | None, **kw) -> RecoveryConfig:
    config = config or RecoveryConfig()
    for k, v in kw.items():
        if v is not None:
            setattr(config, k, v)
    return config


# -- pruning ------------------------------------------------------------------------------------
def obs_prune_slots(model, calibration, slots, plain_masks, options, config: RecoveryConfig | None = None,
                    progress=None) -> Outcome:
    """Calibrated pruning of ``slots`` (prune-pass WeightSlots) with the prune options'
    pattern; each layer prunes as many weights as its plain mask (``plain_masks``). The
    outcome's ``extra[key]["mask"]`` is the final mask (TFLite layout)."""
    from tflopt.passes.cluster import to_storage
    from .sparsegpt import group_ids, prune_layer
    config = _config(config)
    plain = {s.key: m for s, m in zip(slots, plain_masks)}
    forced_by_key = {s.key: s.zero_mask() for s in slots}
    pattern = options.pattern
    nm = options.nm_pair() if pattern == "nm" else (2, 4)
    blk = options.block_shape() if pattern == "block" else (1, 4)

    def solver(spec, W, H, st):
        key = spec.slot.key
        pm = plain[key]
        gid = group_ids(spec.weight_shape, pattern, blk, nm)
        Q, mask = prune_layer(W, H, pattern=pattern, target=int(pm.sum()), forced=spec.to2d(forced_by_key[key]),
                              gid=None if gid is None else spec.to2d(gid), nm=nm, damp=st.damp,
                              block=config.block)
        return Q, np.where(spec.to2d(pm), 0.0, W), {"mask": spec.from2d(mask)}

    return run(model, calibration, slots, solver, config, to_storage=to_storage, progress=progress)


def prune_obs(model, calibration, *, config: RecoveryConfig | None = None, facts: dict | None = None,
              **prune_options):
    """Prune ``model`` in place like ``prune(..., method=obs)``; returns the PassResult."""
    from tflopt.passes.prune import Prune
    return Prune(**prune_options, method="obs").run(model, _context(calibration, config, facts))


def _context(calibration, config, facts):
    from tflopt.pipeline import PassContext
    return PassContext(calibration=calibration, recovery=config, facts={} if facts is None else facts)


# -- clustering ---------------------------------------------------------------------------------
def obs_cluster_slots(model, calibration, slots, plans: dict, config: RecoveryConfig | None = None,
                      progress=None) -> Outcome:
    """Calibrated clustering. ``plans[key]`` = dict(kmeans=KMeansResult, axis=None|int,
    zero=bool mask (kept zero), preserve=bool, plain=values): the plain k-means the cluster
    pass made."""
    from tflopt.passes.cluster import to_storage
    from .obc_cluster import cluster_layer
    config = _config(config)

    def solver(spec, W, H, st):
        plan = plans[spec.slot.key]
        res = plan["kmeans"]
        cent = np.asarray(res.centroids, np.float64)
        if plan["axis"] is None:
            cent = cent[0]
        elif cent.shape[0] != spec.rows:
            raise np.linalg.LinAlgError("per-channel centroids do not match the output channels")
        zero = spec.to2d(plan["zero"]) if plan["preserve"] else None
        pinned = (cent == 0.0) if plan["preserve"] else None
        Q, labels, _ = cluster_layer(W, H, cent, forced=zero, pinned=pinned, damp=st.damp, block=config.block)
        plain = spec.to2d(plan["plain"])
        return Q, plain, {}

    return run(model, calibration, [s for s in slots if s.key in plans], solver, config, to_storage=to_storage,
               progress=progress)


def cluster_obs(model, calibration, *, config: RecoveryConfig | None = None, facts: dict | None = None,
                **cluster_options):
    """Cluster ``model`` in place like ``cluster(..., method=obs)``; returns the PassResult."""
    from tflopt.passes.cluster import Cluster
    return Cluster(**cluster_options, method="obs").run(model, _context(calibration, config, facts))


# -- GPTQ ---------------------------------------------------------------------------------------
def gptq_weights(model, calibration, ops, *, per_channel: bool = True, axes: dict | None = None,
                 skip: set | None = None, config: RecoveryConfig | None = None,
                 progress=None) -> tuple[dict, Outcome]:
    """GPTQ int8 weights for the weighted float ops ``ops`` of ``model`` (not modified):
    {id(op): (int8 array in the TFLite layout, scale [channels or 1], axis or None)}.
    ``skip``: slot keys to leave to round-to-nearest (e.g. clustered weights)."""
    from tflopt.weights import weight_slots
    from tflopt.quantization import symmetric_scale
    from .gptq import gptq_layer
    config = _config(config, bias_correction=False)
    wanted = {id(op) for op in ops}
    slots = [s for s in weight_slots(model, ops=None, min_elements=0)
             if id(s.ref.op) in wanted and not s.skip and s.stored.dtype.kind == "f"]
    skip = skip or set()
    scales: dict = {}

    def axis_of(slot):
        a = (axes or {}).get(slot.ref.op.name, slot.axis)
        return a if per_channel and a is not None and a < len(slot.shape) else None

    def solver(spec, W, H, st):
        slot = spec.slot
        axis = axis_of(slot)
        values = slot.floats()
        scale = symmetric_scale(values, axis)
        if axis is not None and spec.kind not in ("conv", "fc", "depthwise", "tconv"):
            raise np.linalg.LinAlgError("per-channel axis is not the output-channel axis")
        if axis is not None and scale.size != spec.rows:
            raise np.linalg.LinAlgError("per-channel scales do not match the output channels")
        scales[slot.key] = (scale, axis)
        forced = W == 0.0
        from .gptq import rtn
        Q = gptq_layer(W, H, scale, forced=forced, damp=st.damp, block=config.block)
        return Q, rtn(W, scale), {}

    todo = [s for s in slots if s.key not in skip]
    out = run(model, calibration, todo, solver, config, progress=progress)
    for s in slots:
        if s.key in skip:   # by design, not a failure: rounding a clustered weight keeps <= k values
            out.rows.append({"name": s.name, "recovered": False, "reason": "clustered: round-to-nearest"})
    result = {}
    for s in todo:
        if s.key in out.values:
            scale, axis = scales[s.key]
            shape = [1] * len(s.shape)
            if axis is not None:
                shape[axis] = -1
            q = np.clip(np.rint(out.values[s.key] / scale.reshape(shape)), -127, 127).astype(np.int8)
            result[id(s.ref.op)] = (q, scale, axis)
    return result, out
