"""One trial: run a pipeline on the input model and measure the result.

The pipeline runs through the same ``parse_pipeline`` / ``PassManager`` / ``PassContext``
that ``tflopt optimize`` uses, one pass at a time from the longest prefix already in the
cache (with the facts earlier passes left in the context), so the bytes are those
``tflopt optimize --pipeline`` writes. Figures come from ``measure.evaluate``.

``run_trial`` is a plain top-level function of plain data: it runs the same in this process,
in a ``ProcessPoolExecutor`` worker or on a Dask worker.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

from .cache import Cache, digest, model_key
from .measure import EvalSpec, evaluate


@dataclass(frozen=True)
class TrialSpec:
    model_path: str
    model_hash: str
    passes: tuple[str, ...]          # pass specs, in order
    calibration: str | None
    normalize: str
    calibration_hash: str
    eval: EvalSpec
    eval_hash: str
    cache_dir: str

    @property
    def pipeline(self) -> str:
        return ",".join(self.passes)

    def model_key(self, n: int | None = None) -> str:
        n = len(self.passes) if n is None else n
        return model_key(self.model_hash, ",".join(self.passes[:n]), self.calibration_hash)

    @property
    def trial_key(self) -> str:
        return digest("trial", self.model_key(), self.eval_hash)


# Per worker process: the input model, calibration and nothing else, loaded once.
_INPUTS: dict = {}


def _input(spec: TrialSpec):
    key = (spec.model_hash, spec.calibration_hash, spec.calibration, spec.normalize)
    if key not in _INPUTS:
        from pathlib import Path

        from ..io import load
        data = Path(spec.model_path).read_bytes()
        calib = None
        if spec.calibration is not None:
            from ..calibration import load_calibration
            calib = load_calibration(spec.calibration, load(data), normalize=spec.normalize)
        _INPUTS.clear()
        _INPUTS[key] = (data, calib)
    return _INPUTS[key]


def build(spec: TrialSpec, cache: Cache) -> tuple[bytes, int, list[str]]:
    """The pipeline's model bytes: (bytes, passes run here, warnings). Every intermediate
    model goes to the cache, so siblings and reruns start from it."""
    from ..io import load
    from ..pipeline import PassContext, PassManager, parse_pipeline
    data, calib = _input(spec)
    start, facts = 0, {}
    for n in range(len(spec.passes), 0, -1):
        hit = cache.get_model(spec.model_key(n))
        if hit is not None:
            data, facts = hit
            start = n
            break
    warnings: list[str] = []
    if start == len(spec.passes):
        return data, 0, warnings
    model = load(data)
    ctx = PassContext(calibration=calib, facts=facts)
    for n in range(start, len(spec.passes)):
        report = PassManager(parse_pipeline(spec.passes[n])).run(model, ctx)
        warnings += [w for rec in report.passes for w in rec.warnings]
        data = model.to_bytes()
        cache.put_model(spec.model_key(n + 1), data, ctx.facts)
    return data, len(spec.passes) - start, warnings


def run_trial(spec: TrialSpec) -> dict:
    """Build and measure; the record (also stored in the cache) has stable keys."""
    cache = Cache(spec.cache_dir)
    t0 = time.perf_counter()
    record = {"pipeline": spec.pipeline, "key": spec.trial_key, "status": "ok", "metrics": {},
              "passes_run": 0, "warnings": [], "error": None}
    try:
        data, ran, warnings = build(spec, cache)
        record["passes_run"], record["warnings"] = ran, warnings[:20]
        record["build_seconds"] = round(time.perf_counter() - t0, 4)
        reference, _ = _input(spec)
        record["metrics"] = evaluate(reference, data, spec.eval)
    except Exception as e:  # a pass or the runtime refusing this candidate fails the trial, not the search
        record["status"] = "failed"
        record["error"] = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        record["traceback_tail"] = traceback.format_exc().strip().splitlines()[-1][:300]
    record["seconds"] = round(time.perf_counter() - t0, 4)
    cache.put_trial(spec.trial_key, record)
    return record
