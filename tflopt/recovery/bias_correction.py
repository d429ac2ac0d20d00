"""Bias correction: shift each output channel's bias by the mean output error a weight
change causes on calibration data (the layer's mean input is accumulated with H).

For ``W -> W'`` and mean input patch ``mu`` the output mean moves by ``(W' - W) mu`` per
channel; subtracting that from the bias removes it, which never increases the layer's
squared error on the calibration data (it removes the mean part of the error).
"""
from __future__ import annotations

import numpy as np

from tflopt.schema import TensorType
from tflopt.weights import float_values, stored_constant


def mean_shift(D: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per row: D_r . mu_r (mean [cols] shared or [rows, cols])."""
    return D @ mean if mean.ndim == 1 else np.einsum("rk,rk->r", D, mean)


def read_bias(op, position: int | None) -> np.ndarray | None:
    if position is None or position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    sg = op.subgraph
    root, _ = stored_constant(sg, op.inputs[position])
    return None if root is None else float_values(root).astype(np.float64).reshape(-1)


def write_bias(op, position: int | None, values: np.ndarray, rows: int) -> str | None:
    """Store a new bias for ``op`` (float32 or float16 behind DEQUANTIZE; a float32 bias is
    added where the op has none). Returns why it could not, or None."""
    sg = op.subgraph
    values = np.asarray(values, np.float32).reshape(-1)
    if position is None:
        return "the op has no bias operand"
    if position >= len(op.inputs) or op.inputs[position] < 0:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            return "the op has no bias operand"
        t = sg.add_tensor(f"{op.output(0).name}_bias_corrected", [rows], TensorType.FLOAT32, data=values)
        while len(op.inputs) <= position:
            op.inputs.append(-1)
        op.set_input(position, t.index)
        return None
    root, via = stored_constant(sg, op.inputs[position])
    if root is None or root.sparsity is not None or root.num_elements != rows:
        return "bias is not a dense constant of one value per channel"
    if not via:
        if root.type != TensorType.FLOAT32:
            return f"{root.type_name} bias is not rewritten"
        t = sg.private_input(op, position, "_bias_corrected")
        t.set_data(values.reshape(t.shape) if t.shape else values, TensorType.FLOAT32, keep_shape=True)
        return None
    if len(via) == 1 and via[0].name == "DEQUANTIZE" and root.type == TensorType.FLOAT16:
        deq = via[0]
        if len(sg.consumers(root.index)) != 1 or len(sg.consumers(deq.outputs[0])) != 1:
            return "float16 bias is shared"
        root.set_data(values.astype(np.float16).reshape(root.shape), TensorType.FLOAT16, keep_shape=True)
        return None
    return "bias storage is not rewritten"


def correct_biases(model, reference, calibration, *, samples: int = 0, waves: int = 16, ops=None,
                   mode: str = "layer", progress=None) -> tuple[list[dict], list[str]]:
    """Bias correction of ``model`` (edited in place) against ``reference``, the model
    before the lossy passes, per weighted layer (matched by weight name) with mu the mean
    input on the calibration samples as the model is now:

    * ``mode="layer"``: ``b += (W_ref - W) mu``, the mean error of the layer's own weight
      change (never raises the layer's squared error on the calibration data);
    * ``mode="empirical"``: ``b += (W_ref mu_ref + b_ref) - (W mu + b)``, also absorbing the
      mean error that reaches the layer from before (mu_ref from the reference model).
 Layers go in graph order in waves, so each
    correction sees the corrections before it. Returns (per-layer rows, warnings)."""
    import time

    from tflopt.weights import DEFAULT_OPS, weight_slots

    from .engine import _samples, _waves
    from .stats import cut_custom_ops, gather, layer_spec
    rows: list[dict] = []
    warnings: list[str] = []
    slots = [s for s in weight_slots(model, ops=ops or DEFAULT_OPS, min_elements=0) if not s.skip]
    ref_slots = {s.key: s for s in weight_slots(reference, ops=ops or DEFAULT_OPS, min_elements=0) if not s.skip}
    specs, ref_specs = [], []
    for slot in slots:
        ref = ref_slots.get(slot.key)
        spec, why = layer_spec(slot)
        rspec, rwhy = layer_spec(ref) if ref is not None else (None, "no layer of that name in the reference")
        if spec is None or rspec is None or spec.weight_shape != rspec.weight_shape or spec.kind != rspec.kind:
            warnings.append(f"{slot.name}: bias not corrected ({why or rwhy or 'layer differs from the reference'})")
            continue
        if spec.bias_position is None:
            warnings.append(f"{slot.name}: bias not corrected (the op has no bias operand)")
            continue
        specs.append(spec)
        ref_specs.append(rspec)
    if not specs:
        return rows, warnings
    get = _samples(calibration, samples)
    ref_stats = gather(reference, ref_specs, get(), hessian=False) if mode == "empirical" else {}
    _, cut = cut_custom_ops(model)
    for wave in _waves(specs, waves):
        wave_specs = [specs[i] for i in wave]
        cur = gather(model, wave_specs, get(), cut=cut, hessian=False)
        for j, i in enumerate(wave):
            t0 = time.perf_counter()
            spec, rspec, st = specs[i], ref_specs[i], cur[j]
            rst = ref_stats.get(i, st)
            if isinstance(st, str) or isinstance(rst, str):
                warnings.append(f"{spec.name}: bias not corrected ({st if isinstance(st, str) else rst})")
                continue
            W = spec.to2d(spec.slot.floats()).astype(np.float64)
            Wr = rspec.to2d(rspec.slot.floats()).astype(np.float64)
            b = read_bias(spec.op, spec.bias_position)
            br = read_bias(rspec.op, rspec.bias_position)
            b = np.zeros(spec.rows) if b is None else b
            br = np.zeros(spec.rows) if br is None else br
            if mode == "empirical":
                target = mean_shift(Wr, st_mean(rst, rspec)) + br
            else:
                target = mean_shift(Wr, st_mean(st, spec)) + b
            now = mean_shift(W, st_mean(st, spec)) + b
            shift = target - now
            why = write_bias(spec.op, spec.bias_position, b + shift, spec.rows)
            if why is not None:
                warnings.append(f"{spec.name}: bias not corrected ({why})")
                continue
            scale = float(np.sqrt(np.mean(target ** 2))) or 1.0
            rows.append({"name": spec.name, "op": spec.op.name, "mean_error_before": float(np.sqrt(np.mean(shift ** 2))) / scale,
                         "mean_error_after": 0.0, "seconds": round(time.perf_counter() - t0, 4)})
            if progress is not None:
                progress(f"bias corrected {spec.name}")
    return rows, warnings


def st_mean(stats, spec) -> np.ndarray:
    return stats.mean_for_rows(spec)
