"""Per-island sensitivity to int8, from one calibration and one model per kind of question.

``Trials`` dequantizes the model once, calibrates once (the ranges are cached and reused by
every build), runs the float reference once on the evaluation samples, and answers three
questions per island: only this island integer, everything but this island integer, or only
this island's weights rounded (the blame test). Each kind is one switched model (switches.py)
built and allocated once, so a question is one run of the evaluation samples; the rebuild of
a variant per question (``build``) remains for the islands a switch cannot stand in for, for
sets of islands, and as the reference the switched models are checked against.
Custom ops the stock interpreter lacks are cut from every variant (``runtime.cut_ops``), so
fidelity is measured on the part that runs.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time

import numpy as np

from tflopt import runtime
from tflopt.evaluation import fidelity as metrics
from tflopt.io import load
from tflopt.model import Model
from tflopt.pipeline import PassContext, get_pass
from tflopt.quantization import dequantize, quantize_symmetric

from .islands import Island, islands, op_key

MAX_WORKERS = 2
# Islands per switched "only" model (see Trials._only_shard).
ONLY_SHARD = 16
_FORKED = None  # the Trials a forked worker answers for (set only around a Pool's life)


def _variant_outputs(job) -> list[dict]:
    return _FORKED.variant(job).outputs


# A switched model whose all-off run differs from the rebuild it stands for by more than this
# (max |difference| over the outputs' float range) is not used: its questions are rebuilt.
SWITCH_TOLERANCE = 1e-5


# Below this share of an island's own-quantization loss, rounding its weights is not the cause.
WEIGHT_BLAME_SHARE = 0.5


@dataclasses.dataclass
class Score:
    """Fidelity of a variant against the float model, over every output."""
    outputs: list[dict]
    # The variant's outputs per evaluation sample, kept by ``Trials.score`` (not by the pooled
    # questions, whose scores cross processes) for goals that read more than fidelity.
    runs: list | None = dataclasses.field(default=None, repr=False, compare=False)

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
                 workers: int | None = None, switched: bool = True):
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
        self.runnable = reference.to_bytes()
        # Ops the cut removed (downstream of a custom op) cannot change what is compared.
        self._alive = {op_key(reference.main, op) for op in reference.main.operators}
        self.samples = [list(s) for s in evaluation]
        if not self.samples:
            raise ValueError("no evaluation samples")
        self.reference = self._run(reference)
        self.islands = islands(self.sg, self.bits)
        self._by_name = {i.name: i for i in self.islands}
        self.builds = 0
        # Trial variants are independent: spread them over the cores (2 on the project's machines).
        self.workers = max(1, min(runtime.cores(), MAX_WORKERS)) if workers is None else workers
        self.seconds = 0.0
        # Single-island questions go to one switched model per kind (see switches.py) unless
        # ``switched`` is False; ``switch_models`` maps kind -> (bytes, slots) once built.
        self.switched = switched
        self.switch_models: dict[str, tuple[bytes, dict[str, int]] | None] = {}
        self.switch_notes: list[str] = []
        self._runners: dict = {}
        self._wanted: dict[str, set[str]] = {}

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
        score = self._scored(outs)
        score.runs = outs
        return score

    def _scored(self, outs) -> Score:
        scored = []
        for k, d in enumerate(self._details):
            ref = np.stack([o[k] for o in self.reference])
            test = np.stack([o[k] for o in outs])
            scored.append({"name": d["name"], **metrics(ref, test)})
        return Score(scored)

    def _run(self, model: Model) -> list[list[np.ndarray]]:
        from tflopt.evaluation.compare import from_float, to_float
        interp = runtime.interpreter(model)
        ins, outs = interp.get_input_details(), interp.get_output_details()
        self._details = outs
        result = []
        for sample in self.samples:
            r = runtime.invoke(interp, [from_float(np.asarray(x, np.float32), d) for x, d in zip(sample, ins)])
            result.append([to_float(x, d) for x, d in zip(r, outs)])
        return result

    # -- switched models ----------------------------------------------------------------------
    def prepare(self, kind: str, islands) -> None:
        """Switch only these islands in the ``kind`` model (default: every island): each copy
        costs every run of it, so a model asked about ten islands carries ten copies
        (hand_landmark_full, "float" model with all 63 switched: 3.2x the float model's run).
        No effect once that model is built."""
        self._wanted.setdefault(kind, set()).update(i.name for i in islands)

    def _switch_model(self, kind: str):
        """(bytes, {island name: slot}) of the switched model answering ``kind``, or None."""
        if kind not in self.switch_models:
            self.switch_models[kind] = self._make_switch_model(kind) if self.switched else None
        return self.switch_models[kind]

    def _make_switch_model(self, model_kind: str):
        from tflopt.passes.quantize_static import Plan, quantize_static
        from tflopt.recipe import Selector

        from .switches import add_switches, extended_ranges, switchable
        kind = model_kind.split(":")[0]  # "only:3": the fourth shard of the "only" islands
        if 0 not in self.range_cache:
            self.build()
        ranges = self.range_cache[0]
        plan = Plan(self.sg, ranges.ranges, self.bits, Selector.from_options(self.options))
        chosen = switchable(self.sg, self.islands, plan, kind)
        if kind == "weights":
            chosen = [i for i in chosen if i.weighted]
        if model_kind in self._wanted:
            chosen = [i for i in chosen if i.name in self._wanted[model_kind]]
        if not chosen:
            return None
        m = load(self.runnable)
        make_copy = self._round_weights if kind == "weights" else None
        slots, copies, added, source = add_switches(m, {i.name: i.keys for i in chosen}, make_copy)
        if kind != "weights":
            picked = (lambda op: id(op.raw) in copies) if kind == "only" else (lambda op: id(op.raw) not in added)
            quantize_static(m, PassContext(calibration=self.ctx.calibration), self.options, op_filter=picked,
                            range_cache={0: extended_ranges(ranges, source)})
        content = m.to_bytes()
        # All switches off is a model we can also rebuild: the float model for "only" and
        # "weights", the whole model integer for "float". If the switched one does not give
        # its outputs, none of its answers are trusted.
        expected = self.reference if kind != "float" else self._full_outputs()
        got = self._runner(model_kind, content, slots).run(())
        worst = max((float(np.max(np.abs(a - b))) / (float(np.ptp(a)) or 1.0)
                     for x, y in zip(expected, got) for a, b in zip(x, y) if a.size), default=0.0)
        if worst > SWITCH_TOLERANCE:
            self.switch_notes.append(f"switched {model_kind} model differs from its rebuild by {worst:.2g}: rebuilt instead")
            return None
        return content, slots

    def _full_outputs(self):
        if not hasattr(self, "_full"):
            m = self.build()[0]
            t0 = time.perf_counter()
            self._full = self._run(runtime.cut_ops(m, set(self.cut)) if self.cut else m)
            self.seconds += time.perf_counter() - t0
        return self._full

    def full_score(self) -> Score:
        """Score of the whole model integer (built once)."""
        return self._scored(self._full_outputs())

    def _runner(self, kind: str, content: bytes, slots):
        """This process's interpreter of a switched model (a forked worker makes its own)."""
        from .switches import SwitchRunner
        key = (kind, os.getpid())
        if key not in self._runners:
            self._runners[key] = SwitchRunner(content, slots, self.samples)
        return self._runners[key]

    def _round_weights(self, original, dup) -> None:
        """Give a weights-test copy its own weights, rounded as ``weights_rounded`` does."""
        from tflopt.passes.qkernels import WEIGHTED
        if dup.name in WEIGHTED:
            _, w, _, axis = WEIGHTED[dup.name]
            tensor = dup.subgraph.clone_tensor(dup.inputs[w], "_rounded")
            dup.set_input(w, tensor.index)
            self._set_rounded(tensor, axis)

    def _set_rounded(self, tensor, axis: int) -> None:
        """Round a float weight tensor to the int8 grid (per channel as the pass does)."""
        from tflopt.weights import float_values
        values = float_values(tensor)
        axis = axis if self.options.per_channel and values.ndim > axis else None
        q, scale = quantize_symmetric(values, axis)
        tensor.set_data(dequantize(q, scale, 0, axis), tensor.type)

    def _only_shard(self, island: Island) -> str:
        """The "only" model holding this island: every run carries all its integer copies,
        and integer kernels the CPU delegate lacks are slow (face_landmark's int8 PRELU: the
        whole model int8 runs 4x its float time), so the islands are split in graph order
        into models of ``ONLY_SHARD`` (a run costs about the float model plus a shard)."""
        position = self.islands.index(island) // ONLY_SHARD
        kind = f"only:{position}"
        if kind not in self._wanted:
            self._wanted[kind] = {i.name for i in self.islands[position * ONLY_SHARD:(position + 1) * ONLY_SHARD]}
        return kind

    def switched_counts(self) -> dict[str, int]:
        """Islands answered by switched models, per kind of question."""
        counts: dict[str, int] = {}
        for kind, built in self.switch_models.items():
            base = kind.split(":")[0]
            counts[base] = counts.get(base, 0) + (len(built[1]) if built else 0)
        return counts

    def switch_job(self, kind: str, island: Island) -> tuple:
        """The job answering ``kind`` for one island: switched when its model has the island;
        ("unseen", kind) when the cut removed all of it: then the answer is the variant with
        nothing changed (the float model, or for "float" the whole model integer), as its
        rebuild, cut, would give (face_landmark_with_attention: 226 of 316 islands)."""
        if self.switched and self.cut and not any(k in self._alive for k in island.keys):
            return ("unseen", kind)
        model_kind = self._only_shard(island) if kind == "only" else kind
        built = self._switch_model(model_kind)
        if built is not None and island.name in built[1]:
            return ("switch", (model_kind, island.name))
        if kind == "weights":
            return ("weights", self.islands.index(island))
        return (kind, frozenset(island.keys))

    def float_score(self, names) -> Score | None:
        """Score of the whole model integer but the islands ``names`` (any number), read from
        the switched "float" model when it switches every one of them; None when one is not
        switched there (then ``score(build(float_keys))`` answers). Several islands float
        together are still exact: a float island reads a float neighbour's copy directly,
        as in the rebuild, and integer readers see the encodings the single-island check
        vouched for."""
        built = self._switch_model("float")
        names = [n for n in names if self.switch_job("float", self._by_name[n])[0] != "unseen"]
        if built is None or any(n not in built[1] for n in names):
            return None
        return self.variant(("switch", ("float", tuple(names))))

    def variant(self, job: tuple) -> Score:
        """Score of one question: ("only", keys) only those ops integer, ("float", keys) all
        but those, ("weights", island position) only that island's weights rounded,
        ("switch", (kind, island name or names)) answered by the switched model."""
        kind, arg = job
        if kind == "unseen":
            return self._scored(self._full_outputs() if arg == "float" else self.reference)
        if kind == "switch":
            t0 = time.perf_counter()
            content, slots = self.switch_models[arg[0]]
            on = [arg[1]] if isinstance(arg[1], str) else list(arg[1])
            outs = self._runner(arg[0], content, slots).run(on)
            self.seconds += time.perf_counter() - t0
            return self._scored(outs)
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
        self.builds += sum(1 for kind, _ in jobs if kind in ("only", "float"))
        return [Score(o) for o in outputs]

    @property
    def only_measured(self) -> bool:
        """Whether ``only_quantized`` has run (a ranking then costs nothing more)."""
        return hasattr(self, "_only_q")

    def only_quantized(self) -> dict[str, Score]:
        """Per island name, the score of the model with only that island integer (cached)."""
        if not hasattr(self, "_only_q"):
            scores = self.map([self.switch_job("only", i) for i in self.islands])
            self._only_q = {i.name: s for i, s in zip(self.islands, scores)}
        return self._only_q

    def weights_rounded(self, island: Island) -> Model:
        """The float model with only ``island``'s weights rounded to the int8 grid (per
        channel as the pass does), everything else float: the weights' share of the loss."""
        from tflopt.passes.qkernels import WEIGHTED
        m = load(self.base)
        sg = m.main
        for i in island.ops:
            op = sg.operators[i]
            if op.name in WEIGHTED:
                _, w, _, axis = WEIGHTED[op.name]
                self._set_rounded(sg.private_input(op, w, "_rounded"), axis)
        return m


def ranking(trials: Trials) -> dict:
    """The islands ranked by the loss of quantizing each alone, in ``analyze``'s format but
    without the per-island float / weights questions: what ``trials.only_quantized()``
    measured (mixed precision asks it anyway), for a report's sensitivity plot."""
    full = trials.full_score()
    only = trials.only_quantized()
    total_macs = sum(i.macs for i in trials.islands) or 1
    ordered = sorted(trials.islands, key=lambda i: (only[i.name].loss(), i.ops[0]))
    ordered.reverse()
    rows = [{"rank": rank, "island": i.name, "ops": i.kinds, "op_indices": i.ops, "tensors": i.keys,
             "macs": i.macs, "macs_share": i.macs / total_macs, "head": i.head,
             "only_quantized": {"min_cosine": only[i.name].min_cosine, "min_snr_db": only[i.name].min_snr}}
            for rank, i in enumerate(ordered, 1)]
    return {
        "mode": trials.options.mode, "islands": len(rows), "evaluation_samples": len(trials.samples),
        "full_quantized": {"min_cosine": full.min_cosine, "min_snr_db": full.min_snr, "outputs": full.outputs},
        "cut_ops": sorted(set(trials.cut)), "builds": trials.builds, "workers": trials.workers,
        "switched": trials.switched_counts(),
        "notes": trials.switch_notes, "seconds": trials.seconds, "ranked": rows,
    }


def analyze(model: Model, calibration, evaluation, options, *, top: int = 0, progress=None,
            workers: int | None = None, switched: bool = True) -> dict:
    """Rank the islands of ``model`` by how much int8 costs them.

    Per island: the fidelity (min output cosine / SNR) when only it is integer, when only it
    stays float in an otherwise integer model, and whether its weights or its activations
    carry the loss. Ranked by the loss of quantizing it alone."""
    t0 = time.perf_counter()
    trials = Trials(model, calibration, evaluation, options, workers=workers, switched=switched)
    if progress:
        progress(f"{len(trials.islands)} islands: each alone in int8")
    result = ranking(trials)
    rows = result["ranked"]
    full = trials.full_score()
    only = trials.only_quantized()
    by_name = {i.name: i for i in trials.islands}
    # The two further questions (left float alone, weights alone) cost a run each (a build
    # where no switched model has the island), so they are asked of the islands that
    # matter: the top ``top`` (all when top is 0).
    asked = [by_name[r["island"]] for r in (rows[:top] if top else rows)]
    trials.prepare("float", asked)
    trials.prepare("weights", [i for i in asked if i.weighted and only[i.name].loss() > 0])
    jobs, where = [], {}
    for island in sorted(asked, key=lambda i: i.ops[0]):
        where[island.name] = len(jobs)
        jobs.append(trials.switch_job("float", island))
        if island.weighted and only[island.name].loss() > 0:
            jobs.append(trials.switch_job("weights", island))
    answers = trials.map(jobs)
    for row in rows:
        island = by_name[row["island"]]
        if island.name not in where:
            continue
        loss_q = only[island.name].loss()
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
    result.update({"builds": trials.builds, "seconds": time.perf_counter() - t0,
                   "switched": trials.switched_counts()})
    return result
