"""Driving a calibrated method over a model's layers, in graph order.

``run`` works on a copy of the model: wave by wave it gathers the stats of the next layers
with the copy as compressed so far, compresses them (the copy is updated, so later waves
compensate the error of earlier ones), and returns the new float weights (TFLite layout) per
slot key for the caller to store, plus per-layer figures. Bias corrections are applied to
the caller's model directly. Layers it cannot model are returned with the reason; the
caller uses its plain method there and reports a warning.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import bias_correction as bc
from tflopt.runtime import one_blas_thread
from .report import LayerError, summary
from .stats import LayerSpec, LayerStats, cut_custom_ops, gather, layer_spec

CHECK_TOLERANCE = 2e-2
WAVE_MEMORY = 512 << 20   # bytes of H gathered at once


@dataclass
class RecoveryConfig:
    samples: int = 0              # 0: every calibration sample
    damp: float = 0.01
    block: int = 128
    waves: int = 16               # most interpreter passes over the calibration set
    bias_correction: bool = True


@dataclass
class Outcome:
    values: dict = field(default_factory=dict)       # slot key -> new float weights (TFLite layout)
    fallback: dict = field(default_factory=dict)     # slot key -> reason
    rows: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)        # slot key -> solver extras (masks, labels...)

    def stats(self) -> dict:
        return {**summary(self.rows), "layers": self.rows}

    def warnings(self, what: str) -> list[str]:
        return [f"{k.split('/', 1)[1]}: {what} fell back to the plain method ({why})" for k, why in self.fallback.items()]


# solver(spec, W2d, stats_H, stats) -> (new W2d, plain W2d or None, extras dict)
Solver = Callable[[LayerSpec, np.ndarray, np.ndarray, LayerStats], tuple[np.ndarray, np.ndarray | None, dict]]


def _samples(calibration, limit: int):
    if calibration is None:
        from tflopt.errors import TfloptError
        raise TfloptError("method=obs / weights=gptq need calibration data: pass --calibration PATH "
                          "(.npz, .npy, image folder, module:function)")
    if getattr(calibration, "_one_shot", False) or not hasattr(calibration, "factory"):
        data = []
        for s in calibration:
            data.append(s)
            if limit and len(data) >= limit:
                break
        return lambda: iter(data)

    def fresh():
        for i, s in enumerate(calibration.factory()):
            if limit and i >= limit:
                break
            yield s
    return fresh


def _waves(specs: list[LayerSpec], waves: int) -> list[list[int]]:
    n = len(specs)
    if n == 0:
        return []
    per = max(1, -(-n // max(waves, 1)))
    out, cur, mem = [], [], 0
    for i, s in enumerate(specs):
        size = 8 * (s.cols ** 2 if not s.per_row_h else s.cols ** 2 * (s.rows // s.params["mult"]))
        if cur and (len(cur) >= per or mem + size > WAVE_MEMORY):
            out.append(cur)
            cur, mem = [], 0
        cur.append(i)
        mem += size
    out.append(cur)
    return out


def run(model, calibration, slots, solver: Solver, config: RecoveryConfig, *, to_storage=None,
        progress=None) -> Outcome:
    # numpy's BLAS on one thread (see runtime.one_blas_thread); the interpreter keeps its threads.
    with one_blas_thread():
        return _run(model, calibration, slots, solver, config, to_storage=to_storage, progress=progress)


def _run(model, calibration, slots, solver: Solver, config: RecoveryConfig, *, to_storage=None,
         progress=None) -> Outcome:
    from tflopt.weights import weight_slots
    out = Outcome()
    work = model.clone()
    index = {id(sg): i for i, sg in enumerate(model.subgraphs)}
    by_key = {s.key: s for s in weight_slots(work, ops=None, min_elements=0)}
    specs: list[LayerSpec] = []
    originals: list = []
    for slot in slots:
        wslot = by_key.get(slot.key)
        spec, why = layer_spec(wslot) if wslot is not None else (None, "not found in the working copy")
        if spec is None:
            out.fallback[slot.key] = why
            continue
        specs.append(spec)
        originals.append(slot)
    if not specs:
        return out
    get_samples = _samples(calibration, config.samples)
    _, cut = cut_custom_ops(work)
    for wave in _waves(specs, config.waves):
        wave_specs = [specs[i] for i in wave]
        weights = {j: s.to2d(s.slot.floats()).astype(np.float64) for j, s in enumerate(wave_specs)}
        biases = {j: bc.read_bias(s.op, s.bias_position) for j, s in enumerate(wave_specs)}
        gathered = gather(work, wave_specs, get_samples(), cut=cut, weights=weights, biases=biases)
        for j, spec in enumerate(wave_specs):
            slot = originals[wave[j]]
            st = gathered[j]
            if isinstance(st, str):
                out.fallback[slot.key] = st
                continue
            if st.check is not None and st.check > CHECK_TOLERANCE:
                out.fallback[slot.key] = f"its output is not reproduced from its input (relative error {st.check:.2g})"
                continue
            t0 = time.perf_counter()
            # Fewer calibration rows than inputs (pooled / squeeze-excite layers, dense heads):
            # H is rank-deficient and compensation would fit the samples, so damp harder.
            st.damp = config.damp * max(1.0, spec.cols / max(st.count, 1))
            W = weights[j]
            H = st.hessian_for_rows(spec)
            mean = st.mean_for_rows(spec)
            try:
                new, plain, extra = solver(spec, W, H, st)
            except np.linalg.LinAlgError as e:
                out.fallback[slot.key] = f"linear algebra failed: {e}"
                continue
            # Store in the working copy (its storage rounding included), read back what it holds.
            spec.slot.write(to_storage(spec.slot, spec.from2d(new)) if to_storage else spec.from2d(new))
            stored = spec.to2d(spec.slot.floats()).astype(np.float64)
            D = stored - W
            err = LayerError(H, W, st.count, mean)
            quad = err.quad(D)
            row = {"name": spec.name, "op": spec.op.name, "kind": spec.kind, "rows": spec.rows, "cols": spec.cols,
                   "samples": st.samples, "positions": st.count,
                   "error_plain": None if plain is None else err.relative(err.quad(plain - W)),
                   "error_compensated": err.relative(quad)}
            delta = None
            if config.bias_correction:
                b = biases[j]
                shift = bc.mean_shift(D, mean)
                if np.any(shift != 0):
                    new_b = (np.zeros(spec.rows) if b is None else b) - shift
                    why = bc.write_bias(spec.op, spec.bias_position, new_b, spec.rows)
                    if why is None:
                        delta = -shift
                        orig_op = slot.ref.subgraph.operators[spec.op.index]
                        bc.write_bias(orig_op, spec.bias_position, new_b, spec.rows)
                    row["bias_corrected"] = why is None
                    if why is not None:
                        row["bias_note"] = why
            row["error_recovered"] = err.relative(quad, D, delta)
            row["seconds"] = round(time.perf_counter() - t0, 4)
            row["recovered"] = True
            out.rows.append(row)
            out.values[slot.key] = spec.from2d(stored).astype(np.float32)
            out.extra[slot.key] = extra
            if progress is not None:
                progress(f"recovered {spec.name}")
    for key, why in out.fallback.items():
        out.rows.append({"name": key.split("/", 1)[1], "recovered": False, "reason": why})
    return out
