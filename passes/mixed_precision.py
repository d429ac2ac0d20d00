"""Automatic mixed precision: ``quantize(mode=int8, target_cosine=0.99)`` / ``target_snr=DB`` /
``max_accuracy_drop=D, labels=FILE.npz:KEY`` (passes/mixed_goal.py).

Start from the whole model integer, then move islands (tflopt.sensitivity.islands) to the
``fallback`` precision until the goal holds on the evaluation samples: ``float`` behind
QUANTIZE / DEQUANTIZE, or ``int16`` (passes/mixed_int16.py: 16x8 kernels, weights stay int8;
float where the op has no 16x8 kernel). The islands, in this order:

1. output heads whose float values the integer encoding cannot carry (a sigmoid score on the
   fixed 1/256 grid, a regression whose range dwarfs its typical value): the head's own
   output, rounded to its encoding, already misses the target;
2. then the islands that help most per MAC: each island's damage is measured once (the
   model with only that island int8), and islands are added in order of damage over MAC
   share (plus a small floor, so a cheap op with a large damage goes first), re-scoring
   after each (with ``target=edgetpu``, islands at the tail of what is already off the Edge
   TPU first: passes/mixed_edgetpu.py);
3. last, each chosen island that costs MACs is tried back in int8, most MACs first, and
   stays int8 when the goal still holds.

Every trial is a rebuild from the ranges calibrated once (``Trials``), with ``weights=gptq``
the GPTQ weights computed once (passes/mixed_weights.py); the written model is one more plain
``quantize_static`` of the input with the chosen islands left out (so storage, float16 or
sparse, is restored as the plain pass does), then the same fallback rewrite, and it is scored
again for the report.

Why a model needs many islands (palm_detection_lite, 111 islands): its activations span
hundreds (a depthwise output [-1430, 1018] whose median channel reaches 67), so per-tensor
int8 loses everywhere a little, and floating the 40 worst islands still gives min cosine
0.976; int8 weights alone give 0.9897. int16 activations with GPTQ weights give 0.9991: such
a model reaches the target with ``fallback=int16,weights=gptq``, all MACs integer.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from tflopt.audit.macs import op_macs
from tflopt.errors import TfloptError
from tflopt.model import Model
from tflopt.pipeline import PassContext, PassResult
from tflopt.quantization import affine_params, dequantize, quantize_affine
from tflopt.schema import TensorType

from .mixed_edgetpu import Cuts
from .qkernels import FIXED_OUTPUT

# Gain per MAC share is divided by (share + this): a zero-MAC op is not free to float (it
# adds a QUANTIZE / DEQUANTIZE pair and breaks the integer run) but it is the cheapest.
MAC_FLOOR = 0.01


def only_floor(target_snr) -> float:
    """Loss an island alone must exceed to be a candidate (float noise: nothing)."""
    return -200.0 if target_snr is not None else 1e-7


def _evaluation(ctx: PassContext, options, model: Model, warnings: list[str]):
    if options.evaluation:
        from tflopt.calibration import load_calibration
        return list(load_calibration(options.evaluation, model))
    warnings.append("mixed precision checked its target on the calibration data; pass "
                    "evaluation=PATH to check it on held-out data")
    return list(ctx.calibration)


def _head_misses(trials, island, target_cosine, target_snr) -> str | None:
    """Why int8 cannot carry this head's output, or None: the float output rounded to the
    encoding the integer op would give it already misses the target."""
    from tflopt.evaluation import fidelity as metrics
    sg = trials.sg
    cache = trials.range_cache.get(0)
    names = [d["name"] for d in trials._details]
    for i in island.ops:
        op = sg.operators[i]
        for t in op.outputs:
            if t not in sg.outputs or sg.tensors[t].name not in names:
                continue
            k = names.index(sg.tensors[t].name)
            ref = np.stack([o[k] for o in trials.reference]).astype(np.float32)
            fixed = FIXED_OUTPUT[trials.bits].get(op.name)
            if fixed is not None:
                scale, zp = fixed
                why = f"{op.name} output on the fixed {trials.options.mode} grid"
            elif cache is not None and t in cache.ranges:
                scale, zp = affine_params(*cache.ranges[t], np.int8 if trials.bits == 8 else np.int16,
                                          symmetric=trials.bits == 16)
                why = f"range [{cache.ranges[t][0]:.3g}, {cache.ranges[t][1]:.3g}]"
            else:
                continue
            dtype = np.int8 if trials.bits == 8 else np.int16
            m = metrics(ref, dequantize(quantize_affine(ref, scale, zp, dtype), scale, zp))
            if (target_cosine is not None and m["cosine"] < target_cosine) or \
                    (target_snr is not None and m["snr_db"] < target_snr):
                return (f"output head: {why} alone gives cosine {m['cosine']:.4f}, "
                        f"SNR {m['snr_db']:.1f} dB")
    return None


def builder(trials, options, gptq: dict | None = None):
    """``build(float_keys) -> Model``: the int8 model with those ops at ``options.fallback``
    precision (float, or int16x8 where the op has a 16x8 kernel), and the ``gptq`` weights
    (mixed_weights.gptq_cache) written over the rounded ones."""
    from .mixed_int16 import int16_islands, ranges_by_name
    from .mixed_weights import apply_gptq
    named = None

    def build(keys=frozenset()):
        nonlocal named
        m = trials.build(keys)[0]
        if keys and options.fallback == "int16":
            named = named or ranges_by_name(trials.sg, trials.range_cache[0].ranges)
            int16_islands(m, keys, named, trials.options)
        if gptq:
            apply_gptq(m, gptq)
        return m
    return build


def choose_islands(trials, goal, build=None, edgetpu: bool = False) -> tuple[dict, object, object]:
    """({island name: reason}, score of full int8, score of the choice): the islands that go
    to the fallback precision ``build`` gives them (default float) until ``goal`` (mixed_goal.Goal)
    holds; ``edgetpu``: cuts that keep the int8 part in one piece first (mixed_edgetpu)."""
    build = build or builder(trials, trials.options)
    target_cosine, target_snr = goal.cosine, goal.snr
    islands = {i.name: i for i in trials.islands}
    total = sum(i.macs for i in islands.values()) or 1
    full = goal.measure(trials, build())
    chosen: dict[str, str] = {}
    if goal.meets(full):
        return chosen, full, full

    def keys(names):
        return frozenset(k for n in names for k in islands[n].keys)

    for island in islands.values():
        if island.head and (target_cosine is not None or target_snr is not None):
            why = _head_misses(trials, island, target_cosine, target_snr)
            if why:
                chosen[island.name] = why
    current = goal.measure(trials, build(keys(chosen))) if chosen else full
    if not goal.meets(current):
        # Each island alone in int8 (everything else float): its own damage, free of the
        # compounding that makes "float only this one" in a broken model a noisy signal.
        only = trials.only_quantized()
        order = sorted((n for n in islands if n not in chosen and only[n].loss(target_snr) > only_floor(target_snr)),
                       key=lambda n: (-only[n].loss(target_snr) / (islands[n].macs / total + MAC_FLOOR), n))
        cuts = Cuts(trials.sg, islands) if edgetpu else None
        step, i = 1, 0
        while i < len(order) and not goal.meets(current):
            # One island at a time first; past 16, add in growing batches to bound the builds.
            for k in range(i, min(i + step, len(order))):
                name = cuts.next(order, chosen) if cuts else order[k]
                chosen[name] = (f"alone in int8 it gives min cosine {only[name].min_cosine:.4f}, "
                                f"SNR {only[name].min_snr:.1f} dB")
            i += step
            current = goal.measure(trials, build(keys(chosen)))
            if i >= 16:
                step *= 2
    if goal.meets(current):
        # Give back what is not needed, most MACs first.
        cuts = Cuts(trials.sg, islands) if edgetpu else None
        for name in sorted((n for n in chosen if islands[n].macs > 0), key=lambda n: -islands[n].macs):
            if cuts and not cuts.at_front(name, chosen):
                continue
            rest = [n for n in chosen if n != name]
            s = goal.measure(trials, build(keys(rest)))
            if goal.meets(s):
                del chosen[name]
                current = s
    return chosen, full, current


def _choose(trials, goal, options, gptq) -> tuple[tuple, dict | None]:
    """``choose_islands`` with ``options``' fallback; with ``target=edgetpu`` both ways of
    ordering (by damage per MAC, tail first) and the one meeting the goal whose model puts
    more MACs on the Edge TPU (its audit), with both shares (ties: by damage)."""
    build = builder(trials, options, gptq)
    if options.target != "edgetpu":
        return choose_islands(trials, goal, build), None
    from .mixed_edgetpu import edgetpu_partitions
    islands = {i.name: i for i in trials.islands}
    tried = []
    for tail_first in (False, True):
        choice = choose_islands(trials, goal, build, edgetpu=tail_first)
        share = edgetpu_partitions(build(frozenset(k for n in choice[0] for k in islands[n].keys)))
        tried.append((goal.meets(choice[2]), share["accelerated_macs_share"], choice))
    best = max(tried, key=lambda t: t[:2])
    return best[2], {"by_damage": tried[0][1], "tail_first": tried[1][1],
                     "chosen": "tail_first" if best is tried[1] else "by_damage"}


def macs_shares(model: Model) -> dict:
    """MACs of subgraph 0 by the type its ops compute in: int8 (uint8 counts), integer (int8
    and int16x8) and all, with the two shares."""
    sg = model.main
    total = int8 = integer = 0
    for op in sg.operators:
        macs = op_macs(op)
        total += macs
        kind = sg.tensors[op.inputs[0]].type if macs and op.inputs and op.inputs[0] >= 0 else None
        int8 += macs if kind in (TensorType.INT8, TensorType.UINT8) else 0
        integer += macs if kind in (TensorType.INT8, TensorType.UINT8, TensorType.INT16) else 0
    return {"int8_macs_share": int8 / total if total else 1.0, "integer_macs_share": integer / total if total else 1.0,
            "int8_macs": int8, "integer_macs": integer, "macs": total}


def _precision(model: Model, island) -> str:
    """What an island's ops compute in, in the written model: float, int16 or a mix."""
    sg = model.main
    by_name = {t.name: t for t in sg.tensors}
    # A graph output computed in int16 hands its name to its float32 twin (NAME_int16 is it).
    kinds = {"int16" if TensorType.INT16 in (getattr(by_name.get(k), "type", None),
                                             getattr(by_name.get(k + "_int16"), "type", None)) else "float"
             for k in island.keys}
    return "+".join(sorted(kinds)) or "float"


def write_mixed(model: Model, ctx: PassContext, options, trials, float_keys, gptq: dict | None) -> PassResult:
    """The written model: one plain ``quantize_static`` of the input with the chosen islands
    left out (so float16 / sparse storage of what stays float is restored as the plain pass
    does); with ``fallback=int16`` the islands then go to 16x8, and the GPTQ weights the
    choice was made with are written, both before that storage is restored."""
    from .quantize_static import quantize_static
    plain = dataclasses.replace(options, target_cosine=None, target_snr=None, max_accuracy_drop=None,
                                labels=None, weights="rtn")
    int16 = options.fallback == "int16" and bool(float_keys)

    def after_rewrite(m: Model) -> dict:
        out = {}
        if int16:
            from .mixed_int16 import int16_islands, ranges_by_name
            out["int16_ops"] = len(int16_islands(m, float_keys, ranges_by_name(trials.sg, trials.range_cache[0].ranges),
                                                 plain))
        if gptq:
            from .mixed_weights import apply_gptq
            out["gptq_weights"] = apply_gptq(m, gptq)
        return out
    return quantize_static(model, ctx, plain, op_filter=lambda op: not op.outputs or
                           op.subgraph.tensors[op.outputs[0]].name not in float_keys,
                           after_rewrite=after_rewrite if int16 or gptq else None)


def mixed_precision(model: Model, ctx: PassContext, options) -> PassResult:
    from tflopt.sensitivity.analysis import Trials
    if ctx.calibration is None:
        raise TfloptError(f"quantize(mode={options.mode}, target_...) needs calibration data: pass --calibration PATH")
    t0 = time.perf_counter()
    warnings: list[str] = []
    evaluation = _evaluation(ctx, options, model, warnings)
    try:
        trials = Trials(model, ctx.calibration, evaluation, options, ctx=ctx)
    except (RuntimeError, ValueError) as e:
        raise TfloptError(f"mixed precision cannot run the model: {' '.join(str(e).split())[:200]}") from None
    from .mixed_goal import Goal
    goal = Goal.of(options, trials)
    gptq = None
    if options.weights == "gptq":
        from .mixed_weights import gptq_cache
        gptq, outcome = gptq_cache(trials.float_model, ctx.calibration, options.per_channel)
        warnings.extend(outcome.warnings("GPTQ rounding"))
        # GPTQ fits each layer to the calibration inputs; where plain int8 already meets the
        # goal it can only cost (selfie_segmentation_landscape: 0.9928 rounded to nearest, 12
        # islands needed with GPTQ), but where it does not, GPTQ islands do better even when
        # full int8 alone does worse (selfie_segmentation: 98% of MACs integer against 62%).
        rounded = goal.measure(trials, builder(trials, options, None)())
        if goal.meets(rounded):
            warnings.append(f"weights=gptq: int8 rounded to nearest already meets the goal (min cosine "
                            f"{rounded.min_cosine:.4f}): kept")
            gptq = None
    (chosen, before, predicted), tpu_tried = _choose(trials, goal, options, gptq)
    if options.fallback == "int16" and not goal.meets(predicted):
        # 16x8 keeps int8 weights: where their rounding is the loss (hand_landmark_full with
        # round-to-nearest weights: 0.914 with every island int16) only float reaches the goal.
        options = dataclasses.replace(options, fallback="float")
        again, tried = _choose(trials, goal, options, gptq)
        if goal.meets(again[2]):
            warnings.append(f"fallback=int16 missed the goal (min cosine {predicted.min_cosine:.4f} with "
                            f"{len(chosen)} island(s) int16): islands kept float instead")
            (chosen, _, predicted), tpu_tried = again, tried
        else:
            options = dataclasses.replace(options, fallback="int16")
    islands = {i.name: i for i in trials.islands}
    float_keys = frozenset(k for n in chosen for k in islands[n].keys)
    result = write_mixed(model, ctx, options, trials, float_keys, gptq)
    after = goal.measure(trials, model, keep=True)
    shares = macs_shares(model)
    target = goal.describe()
    met = goal.meets(after)
    kept = [{"island": n, "ops": islands[n].kinds, "macs": islands[n].macs,
             "precision": _precision(model, islands[n]), "reason": r} for n, r in chosen.items()]
    result.stats["mixed_precision"] = {
        "target": target, "met": met, "fallback": options.fallback, "weights": "gptq" if gptq else "rtn",
        "evaluation": options.evaluation or "calibration data", "evaluation_samples": len(trials.samples),
        "before": {"min_cosine": before.min_cosine, "min_snr_db": before.min_snr, "accuracy": before.accuracy},
        "after": {"min_cosine": after.min_cosine, "min_snr_db": after.min_snr, "outputs": after.outputs,
                  "accuracy": after.accuracy},
        "kept": kept, "kept_float": [k for k in kept if k["precision"] != "int16"],
        **shares, "builds": trials.builds, "seconds": time.perf_counter() - t0,
    }
    if trials.only_measured:  # the ranking mixed precision chose from, for the report's plot
        from tflopt.sensitivity.analysis import ranking
        result.stats["mixed_precision"]["sensitivity"] = ranking(trials)
    if options.target == "edgetpu":
        from .mixed_edgetpu import edgetpu_partitions
        result.stats["mixed_precision"]["edgetpu"] = edgetpu_partitions(model) | {"tried": tpu_tried}
    if not met:
        warnings.append(f"mixed precision missed the target ({target}): min cosine {after.min_cosine:.4f}, "
                        f"min SNR {after.min_snr:.1f} dB with {len(chosen)} island(s) at higher precision")
    if chosen:
        warnings.append(f"mixed precision: {len(chosen)} island(s) kept at higher precision, "
                        f"{shares['int8_macs_share']:.1%} of MACs int8, {shares['integer_macs_share']:.1%} integer, "
                        f"min cosine {before.min_cosine:.4f} -> {after.min_cosine:.4f}")
        warnings.extend(f"kept {k['precision']}: {'+'.join(dict.fromkeys(k['ops']))} {k['island'][:80]}: {k['reason']}"
                        for k in kept)
    result.warnings[:0] = warnings
    return result
