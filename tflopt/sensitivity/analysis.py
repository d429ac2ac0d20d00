"""Per-island sensitivity to int8, from one calibration and cheap rebuilds.

``Trials`` dequantizes the model once, calibrates once (the ranges are cached and reused by
every build), runs the float reference once on the evaluation samples, and then builds a
quantized variant per question: only this island integer, everything but this island
integer, or only this island's weights rounded (the blame test). A build from cached ranges
is a graph rewrite of a tenth of a second on the corpus, so no per-op recalibration happens.
Custom ops the stock interpreter lacks are cut from every variant (``runtime.cut_ops``), so
fidelity is measured on the part that runs.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import time

import numpy as np

from tflopt import runtime
from tflopt.evaluation import fidelity as metrics
from tflopt.io import load
from tflopt.model import Model
from tflopt.pipeline import PassContext, get_pass
from tflopt.quantization import dequantize, quantize_symmetric

from .islands import Island, islands

MAX_WORKERS = 2
_FORKED = None  # the Trials a forked worker answers for (set only around a Pool's life)


def _variant_outputs(job) -> list[dict]:
    return _FORKED.variant(job).outputs


# Below this share of an island's own-quantization loss, rounding its weights is not the cause.
WEIGHT_BLAME_SHARE = 0.5


@dataclasses.dataclass
class Score:
    """Fidelity of a variant against the float model, over every output."""
    outputs: list[dict]

    @property
    def min_cosine(self) -> float:
        return min(o["cosine"] for o in self.outputs) if self.outputs else 1.0

    @property
    def min_snr(self) -> float:
        return min(o["snr_db"] for o in self.outputs) if self.outputs else float("inf")

    def meets(self, target_cosine: float | None, target_snr: float | None) -> bool:
        return (target_cosine is None or self.min_cosine >= target_cosine) and \
            (target_snr is None or self.min_snr >= target_snr)

    def loss(self, target_snr: float | None = None) -> float:
        """What improving means: 1 - min cosine, or the SNR shortfall when SNR is the goal."""
        if target_snr is not None:
            return -min(self.min_snr, 200.0)
        return 1.0 - self.min_cosine


class Trials:
    """One model prepared for many quantized variants (see the module docstring)."""

    def __init__(self, model: Model, calibration, evaluation, options, *, ctx: PassContext | None = None,
                 workers: int | None = None):
        from tflopt.passes.quantize_static import _decode_sparse, _needs_dequantize
        m = model.clone()
        if _needs_dequantize(m):
            get_pass("dequantize")().run(m, PassContext())
            _decode_sparse(m)
        self.base = m.to_bytes()
        self.float_model = load(self.base)
        self.sg = self.float_model.main
        # Trial builds quantize the whole model the plain way; the caller's targets are not theirs.
        self.options = dataclasses.replace(options, target_cosine=None, target_snr=None, weights="rtn")
        self.bits = 8 if options.mode == "int8" else 16
        self.ctx = PassContext(calibration=calibration, progress=getattr(ctx, "progress", None))
        self.range_cache: dict = {}
        # Scored as users run it: the default resolver (XNNPACK on), whose int8 kernels round
        # differently from the builtin ones (face_detection_full_range_sparse: 0.990 vs 0.988).
        reference, self.cut = runtime.runnable(load(self.base))
        self.samples = [list(s) for s in evaluation]
        if not self.samples:
            raise ValueError("no evaluation samples")
        self.reference = self._run(reference)
        self.islands = islands(self.sg, self.bits)
        self.builds = 0
        # Trial variants are independent: spread them over the cores (2 on the project's machines).
        self.workers = max(1, min(runtime.cores(), MAX_WORKERS)) if workers is None else workers
        self.seconds = 0.0

    # -- building and scoring ---------------------------------------------------------------
    def build(self, float_keys=frozenset(), only_keys=None):
        """(model, pass result): int8 except the ops keyed in ``float_keys``; with
        ``only_keys``, only those ops are integer."""
        from tflopt.passes.quantize_static import quantize_static
        m = load(self.base)
        sg = m.main

        def quantize_it(op) -> bool:
            key = sg.tensors[op.outputs[0]].name if op.outputs else ""
            return key not in float_keys and (only_keys is None or key in only_keys)

        result = quantize_static(m, self.ctx, self.options, op_filter=quantize_it, range_cache=self.range_cache)
        self.builds += 1
        return m, result

    def score(self, model: Model, *, keep: bool = False) -> Score:
        """Score a variant; it is cut in place unless ``keep`` (then a copy is cut)."""
        t0 = time.perf_counter()
        m = runtime.cut_ops(model.clone() if keep else model, set(self.cut)) if self.cut else model
        outs = self._run(m)
        self.seconds += time.perf_counter() - t0
        scored = []
        for k, d in enumerate(self._details):
            ref = np.stack([o[k] for o in self.reference])
            test = np.stack([o[k] for o in outs])
            scored.append({"name": d["name"], **metrics(ref, test)})
        return Score(scored)

    def _run(self, model: Model) -> list[list[np.ndarray]]:
        from tflopt.evaluation.compare import _from_float, _to_float
        interp = runtime.interpreter(model)
        ins, outs = interp.get_input_details(), interp.get_output_details()
        self._details = outs
        result = []
        for sample in self.samples:
            r = runtime.invoke(interp, [_from_float(np.asarray(x, np.float32), d) for x, d in zip(sample, ins)])
            result.append([_to_float(x, d) for x, d in zip(r, outs)])
        return result

    def variant(self, job: tuple) -> Score:
        """Score of one question: ("only", keys) only those ops integer, ("float", keys) all
        but those, ("weights", island position) only that island's weights rounded."""
        kind, arg = job
        if kind == "weights":
            return self.score(self.weights_rounded(self.islands[arg]))
        if kind == "only":
            return self.score(self.build(only_keys=arg)[0])
        return self.score(self.build(float_keys=arg)[0])

    def map(self, jobs: list[tuple]) -> list[Score]:
        """``variant`` of every job, on ``workers`` forked processes when there are several
        jobs and cores: each variant is independent, so the answers are the same either way."""
        workers = min(self.workers, len(jobs))
        if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return [self.variant(j) for j in jobs]
        global _FORKED
        _FORKED = self
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                outputs = pool.map(_variant_outputs, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
        finally:
            _FORKED = None
        self.builds += sum(1 for kind, _ in jobs if kind != "weights")
        return [Score(o) for o in outputs]

    def only_quantized(self) -> dict[str, Score]:
        """Per island name, the score of the model with only that island integer (cached)."""
        if not hasattr(self, "_only_q"):
            scores = self.map([("only", frozenset(i.keys)) for i in self.islands])
            self._only_q = {i.name: s for i, s in zip(self.islands, scores)}
        return self._only_q

    def weights_rounded(self, island: Island) -> Model:
        """The float model with only ``island``'s weights rounded to the int8 grid (per
        channel as the pass does), everything else float: the weights' share of the loss."""
        from tflopt.passes.qkernels import WEIGHTED
        from tflopt.weights import float_values
        m = load(self.base)
        sg = m.main
        for i in island.ops:
            op = sg.operators[i]
            if op.name not in WEIGHTED:
                continue
            _, w, _, axis = WEIGHTED[op.name]
            tensor = sg.private_input(op, w, "_rounded")
            values = float_values(tensor)
            axis = axis if self.options.per_channel and values.ndim > axis else None
            q, scale = quantize_symmetric(values, axis)
            tensor.set_data(dequantize(q, scale, 0, axis), tensor.type)
        return m


def analyze(model: Model, calibration, evaluation, options, *, top: int = 0, progress=None,
            workers: int | None = None) -> dict:
    """Rank the islands of ``model`` by how much int8 costs them.

    Per island: the fidelity (min output cosine / SNR) when only it is integer, when only it
    stays float in an otherwise integer model, and whether its weights or its activations
    carry the loss. Ranked by the loss of quantizing it alone."""
    t0 = time.perf_counter()
    trials = Trials(model, calibration, evaluation, options, workers=workers)
    full = trials.score(trials.build()[0])
    total_macs = sum(i.macs for i in trials.islands) or 1
    if progress:
        progress(f"{len(trials.islands)} islands: each alone in int8")
    only = trials.only_quantized()
    ordered = sorted(trials.islands, key=lambda i: (only[i.name].loss(), i.ops[0]))
    ordered.reverse()
    # The two further questions (left float alone, weights alone) cost one build each, so
    # they are asked of the islands that matter: the top ``top`` (all when top is 0).
    asked = {i.name for i in (ordered[:top] if top else ordered)}
    jobs, where = [], {}
    for pos, island in enumerate(trials.islands):
        if island.name in asked:
            where[island.name] = len(jobs)
            jobs.append(("float", frozenset(island.keys)))
            if island.weighted and only[island.name].loss() > 0:
                jobs.append(("weights", pos))
    answers = trials.map(jobs)
    rows = []
    for island in ordered:
        only_q = only[island.name]
        loss_q = only_q.loss()
        row = {"island": island.name, "ops": island.kinds, "op_indices": island.ops, "tensors": island.keys,
               "macs": island.macs, "macs_share": island.macs / total_macs, "head": island.head,
               "only_quantized": {"min_cosine": only_q.min_cosine, "min_snr_db": only_q.min_snr}}
        if island.name in asked:
            k = where[island.name]
            only_f = answers[k]
            if island.weighted and loss_q > 0:
                w_loss = answers[k + 1].loss()
                blame = "weights" if w_loss >= WEIGHT_BLAME_SHARE * loss_q else "activations"
            else:
                w_loss, blame = 0.0, "activations"
            row.update({"only_float": {"min_cosine": only_f.min_cosine, "min_snr_db": only_f.min_snr},
                        "weights_only_loss": w_loss, "blame": blame,
                        "gain_if_float": full.loss() - only_f.loss()})
        rows.append(row)
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    return {
        "mode": options.mode, "islands": len(rows), "evaluation_samples": len(trials.samples),
        "full_quantized": {"min_cosine": full.min_cosine, "min_snr_db": full.min_snr, "outputs": full.outputs},
        "cut_ops": sorted(set(trials.cut)), "builds": trials.builds, "workers": trials.workers,
        "seconds": time.perf_counter() - t0, "ranked": rows,
    }
