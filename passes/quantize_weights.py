"""Weight-only quantization modes of the ``quantize`` pass: float16 and dynamic-range int8.

Both start from any input. Full-integer models are dequantized first; weights stored as
float16 / int8 behind DEQUANTIZE, sparse behind DENSIFY or int8 read by hybrid kernels are
turned back into float values where they are to be requantized.

* float16 (the converter's pattern, reference §2.2): every float32 constant operand, weights
  and biases, becomes a float16 constant feeding a DEQUANTIZE (FLOAT16 -> FLOAT32) whose
  output goes to the former consumers, where float16 holds it (``float16_loss``): a constant
  with a value float16 cannot hold (a 1e-10 epsilon, a 1e6 scale) stays float32 and is
  reported in ``kept_float32``. Sparse weights behind DENSIFY stay sparse with float16
  stored values (sparse fp16 -> DENSIFY -> DEQUANTIZE, the pattern mediapipe ships). Weights
  already in float16 are left as they are. Custom ops keep their constants: their kernels may
  need them constant at prepare time.
* dynamic (§2.3): weights of ops with hybrid kernels become symmetric int8 read directly by
  the op (per channel where the kernel takes it), with ``asymmetric_quantize_inputs`` set;
  weights of ops without a hybrid kernel become int8 -> DEQUANTIZE. Biases and activations
  stay float; weights under ``min_elements`` (default 1024) are left as they were.
"""
from __future__ import annotations

import numpy as np

from tflopt import deferred
from tflopt.model import Model, Operator, Subgraph, Tensor
from tflopt.pipeline import PassResult
from tflopt.quantization import float16_loss, quantize_symmetric, symmetric_scale, to_float16
from tflopt.recipe import Selector
from tflopt.schema import TensorType
from tflopt.versioning import update_versions
from tflopt.weights import BIAS_OPERANDS, CALLS, WEIGHT_OPERANDS, branch_readers, float_values, stored_constant

from .dequantize import (FP16_METADATA, _FloatBuffers, dequantize_hybrid_weights, dequantize_model,
                         drop_fp16_metadata_if_unused, has_quantized_activations, integer_variables,
                         materialize_constant_producers)

DYNAMIC_MIN_ELEMENTS = 1024
FP16_ACC = b"fp16accfp32"

# op -> (weight input positions, per-channel axis the hybrid kernel accepts or None)
HYBRID_WEIGHTS: dict[str, tuple[tuple[int, ...], int | None]] = {
    "CONV_2D": ((1,), 0),
    "DEPTHWISE_CONV_2D": ((1,), 3),
    "FULLY_CONNECTED": ((1,), 0),
    "BATCH_MATMUL": ((1,), None),
    "SVDF": ((1, 2), None),
    "RNN": ((1, 2), None),
    "UNIDIRECTIONAL_SEQUENCE_RNN": ((1, 2), None),
    "LSTM": (tuple(range(1, 12)) + (16,), None),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (tuple(range(1, 12)) + (16,), None),
}
# Recurrent kernels take all their weight matrices in one type: quantize all of them or none.
ALL_OR_NONE = {"SVDF", "RNN", "UNIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM"}
# Ops with a weight operand but no hybrid kernel: int8 constant -> DEQUANTIZE.
WEIGHT_ONLY: dict[str, tuple[int, ...]] = {"TRANSPOSE_CONV": (1,), "EMBEDDING_LOOKUP": (1,), "GATHER": (0,),
                                            "CONV_3D": (1,)}
# Depthwise hybrid insists on one scale per channel; per-tensor is a repeated scale there.
NEEDS_CHANNEL_SCALES = {"DEPTHWISE_CONV_2D"}
# Trained parameters outside the weighted ops: float16 judges them as weights (``float16_loss``).
LEARNED_OPERANDS = {("PRELU", 1)}
_SKIP_CONSUMERS = {"DEQUANTIZE", "DENSIFY", "QUANTIZE"}


def quantize_weights(model: Model, ctx, options) -> PassResult:
    selector = Selector.from_options(options)
    stats: dict = {"mode": options.mode}
    warnings: list[str] = []
    full_integer = has_quantized_activations(model)
    if full_integer:
        size_before, state = len(model.to_bytes()), integer_variables(model)
        dequantize_model(model, "all")
        stats["dequantized_full_integer"] = True
    if options.mode == "float16":
        _float16(model, selector, options, stats, warnings)
    else:
        rounded = _gptq(model, ctx, options, stats, warnings) if options.weights == "gptq" else {}
        _dynamic(model, selector, options, stats, warnings, rounded)
    remove_dead_producers(model)
    drop_fp16_metadata_if_unused(model)
    stats["versions"] = update_versions(model)
    model.remove_unused()
    if full_integer:
        size_after = len(model.to_bytes())
        stats["bytes"] = {"before": size_before, "after": size_after}
        warnings.insert(0, _full_integer_warning(options.mode, size_before, size_after, state))
    changed = bool(stats.get("quantized") or stats.get("dequantized_full_integer") or stats["versions"])
    return PassResult(changed=changed, stats=stats, warnings=warnings)


def _full_integer_warning(mode: str, before: int, after: int, state: dict[str, str]) -> str:
    """Plain words for what a weight-only mode does to a full-integer model: it gets larger."""
    size = f"grows from {before:,} to {after:,} bytes ({(after - before) / before:+.1%})" if after > before \
        else f"goes from {before:,} to {after:,} bytes"
    weights = "stored as float16, 2 bytes where they took 1" if mode == "float16" else "requantized to int8"
    held = (f" and {len(state)} resource variable(s) of {'/'.join(sorted(set(state.values())))} state "
            f"({', '.join(sorted(state)[:3])})") if state else ""
    return (f"the input is a full-integer model and mode={mode} computes in float: every integer activation{held} "
            f"becomes float32 (4x the memory, float kernels) and its integer weights are {weights}; the file {size}. "
            f"quantize(mode=int8) keeps it integer")


def is_weight_use(model: Model, op: Operator, pos: int) -> bool:
    """Whether input ``pos`` of ``op`` is a weight or bias slot: of a weighted op directly, or
    an IF / WHILE operand that only such slots read in the subgraphs it calls."""
    if op.name in CALLS:
        readers = branch_readers(model, op, pos)
        return bool(readers) and all(r is not None and is_weight_use(model, r, p) for _, r, p in readers)
    return (pos in HYBRID_WEIGHTS.get(op.name, ((),))[0] or pos in WEIGHT_ONLY.get(op.name, ())
            or WEIGHT_OPERANDS.get(op.name, (None,))[0] == pos or BIAS_OPERANDS.get(op.name) == pos
            or (op.name, pos) in LEARNED_OPERANDS)


def _names(op: Operator, t: Tensor) -> list[str]:
    return [t.name] + [op.subgraph.tensors[o].name for o in op.outputs if o >= 0]


def _uses_by_root(sg: Subgraph, positions) -> dict[int, list[tuple[Operator, int, list[Operator]]]]:
    """{stored constant index: [(consumer, position, DEQUANTIZE/DENSIFY chain)]} in graph order.
    ``positions(op)`` lists the input positions to consider for an op."""
    producers = sg.producer_map()
    uses: dict[int, list] = {}
    for op in sg.operators:
        for pos in positions(op):
            if pos >= len(op.inputs) or op.inputs[pos] < 0:
                continue
            root, via = stored_constant(sg, op.inputs[pos], producers)
            if root is not None and not root.is_variable:
                uses.setdefault(root.index, []).append((op, pos, via))
    return uses


def _insert_dequantize(sg: Subgraph, source: Tensor, consumers: list[tuple[Operator, int]], name: str) -> Tensor:
    """A DEQUANTIZE of ``source`` feeding the given (op, position) uses, placed before the
    first of them so the operator list stays in execution order."""
    out = sg.add_tensor(name, source.shape, TensorType.FLOAT32, shape_signature=source.shape_signature)
    first = min(consumers, key=lambda use: use[0].index)[0]
    sg.insert_before(first, "DEQUANTIZE", [source.index], [out.index])
    for op, pos in consumers:
        op.set_input(pos, out.index)
    return out


# -- float16 ------------------------------------------------------------------------------------
def _float16(model: Model, selector: Selector, options, stats: dict, warnings: list[str]) -> None:
    min_elements = options.min_elements or 0
    counts = {"quantized": 0, "already_float16": 0, "sparse_float16": 0, "kept_sparse_float32": 0, "skipped": 0}
    kept: dict[str, str] = {}   # constant name -> why float16 cannot hold it
    buffers = _FloatBuffers(model)

    def wanted(op: Operator, root: Tensor) -> bool:
        if op.name.startswith("CUSTOM") and not (selector.ops and op.name in selector.ops):
            return False
        return root.num_elements >= min_elements and selector.decide(op.name, _names(op, root)).quantize

    def positions(op: Operator):
        return range(len(op.inputs)) if op.name not in _SKIP_CONSUMERS else ()

    for sg in model.subgraphs:
        uses = _uses_by_root(sg, positions)
        # Integer weights (hybrid or behind DEQUANTIZE) are widened to float32 first, then
        # take the float32 path below; float16 ones are already what this mode produces.
        int_roots = {ri for ri, us in uses.items()
                     if sg.tensors[ri].type != TensorType.FLOAT16 and sg.tensors[ri].is_quantized
                     and any(wanted(op, sg.tensors[ri]) for op, _, _ in us)}
        materialize_constant_producers(sg, buffers, keep=lambda op, root: root.index not in int_roots)
        dequantize_hybrid_weights(sg, buffers, select=lambda op, pos, t: t.index in int_roots)
        uses = _uses_by_root(sg, positions)
        for ri, us in uses.items():
            root = sg.tensors[ri]
            chosen = [(op, pos, via) for op, pos, via in us if wanted(op, root)]
            if not chosen:
                counts["skipped"] += 1 if root.type == TensorType.FLOAT32 else 0
                continue
            if root.type == TensorType.FLOAT16:
                counts["already_float16"] += 1
                continue
            if root.type != TensorType.FLOAT32:
                continue
            loss = float16_loss(root.data, weight=all(is_weight_use(model, op, pos) for op, pos, _ in chosen))
            root.buffer.release_source()   # read whole for the check: its pages would stay resident
            if loss is not None:
                kept[root.name] = loss
            elif root.sparsity is not None:
                _sparse_to_float16(sg, root, chosen, counts)
            else:
                float16_behind_dequantize(sg, root, [(op, pos) for op, pos, via in chosen])
                counts["quantized"] += 1
    if counts["already_float16"]:
        warnings.append(f"{counts['already_float16']} weight(s) were already float16 and were left as they are")
    if counts["kept_sparse_float32"]:
        warnings.append(f"{counts['kept_sparse_float32']} sparse weight(s) read directly by FULLY_CONNECTED stay "
                        "float32 (the sparse kernel needs float32)")
    if kept:
        listed = "; ".join(f"{name}: {why}" for name, why in list(kept.items())[:5])
        more = f"; and {len(kept) - 5} more" if len(kept) > 5 else ""
        warnings.append(f"{len(kept)} constant(s) kept float32, float16 cannot hold them: {listed}{more}")
    if counts["quantized"] or counts["sparse_float16"] or counts["already_float16"]:
        model.set_metadata(FP16_METADATA, FP16_ACC)
    stats.update(counts)
    stats["kept_float32"] = kept
    stats["quantized"] = counts["quantized"] + counts["sparse_float16"]


def float16_behind_dequantize(sg: Subgraph, root: Tensor, uses: list[tuple[Operator, int]], *,
                              name: str | None = None, out_name: str | None = None) -> Tensor:
    """A float16 copy of the float32 constant ``root`` feeding the given uses through a
    DEQUANTIZE; returns the DEQUANTIZE output."""
    fp16 = sg.add_tensor(name or root.name, root.shape, TensorType.FLOAT16,
                         data=_float16_data(root), shape_signature=root.shape_signature)
    return _insert_dequantize(sg, fp16, uses, out_name or f"{root.name}_dequantize")


def _float16_data(root: Tensor):
    """``to_float16(root.data)``, computed by row blocks when the model is written (bounded
    memory: the converted weights are never all held at once)."""
    if deferred.deferrable(root) and root.type == TensorType.FLOAT32:
        return deferred.map_rows(root, lambda rows, lo, hi: to_float16(rows), np.float16)
    return to_float16(root.data)


def _sparse_to_float16(sg: Subgraph, root: Tensor, chosen, counts: dict) -> None:
    densify = [via[0] for _, _, via in chosen if via and via[0].name == "DENSIFY"]
    if len(densify) != len(chosen):
        counts["kept_sparse_float32"] += 1
        return
    # The stored values are converted in place: shape and sparsity stay, DENSIFY then works
    # on float16 and a DEQUANTIZE after it widens the dense result.
    root.set_data(to_float16(root.data), TensorType.FLOAT16)
    for op in {id(d): d for d in densify}.values():
        dense = op.output(0)
        dense.raw.type = TensorType.FLOAT16
        readers = [(c, p) for c, p in sg.consumers(dense.index)]
        if readers:
            _insert_dequantize(sg, dense, readers, f"{dense.name}_dequantize")
    counts["sparse_float16"] += 1


# -- dynamic range ------------------------------------------------------------------------------
def _weight_positions(op: Operator, selector: Selector) -> tuple[int, ...]:
    if op.name in HYBRID_WEIGHTS:
        return HYBRID_WEIGHTS[op.name][0]
    if op.name in WEIGHT_ONLY:
        return WEIGHT_ONLY[op.name]
    if selector.ops and op.name in selector.ops and op.name not in _SKIP_CONSUMERS:
        return tuple(range(len(op.inputs)))  # explicitly asked for: weight-only on every float constant
    return ()


def _hybrid_axis(op: Operator, pos: int, per_channel: bool) -> tuple[bool, int | None]:
    """(can the op read int8 at this position directly, the per-channel axis to use)."""
    spec = HYBRID_WEIGHTS.get(op.name)
    if spec is None or op.input(0) is None or op.input(0).type != TensorType.FLOAT32 \
            or op.output(0).type != TensorType.FLOAT32:
        return False, None
    if op.name == "CONV_2D":
        x, w = op.input(0), op.input(1)
        if len(x.shape) == 4 and len(w.shape) == 4 and x.shape[3] != w.shape[3]:
            return False, None  # grouped convolution has no hybrid kernel
    axis = spec[1] if (per_channel or op.name in NEEDS_CHANNEL_SCALES) else None
    return True, axis


def _int8_weight(values: np.ndarray, axis: int | None, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    if axis is not None and not per_channel:
        scale = np.full(values.shape[axis], symmetric_scale(values, None)[0], np.float32)
        return quantize_symmetric(values, axis, scale=scale)
    return quantize_symmetric(values, axis)


def _reusable_int8(root: Tensor, axis: int | None) -> bool:
    """An int8 symmetric weight already encoded the way it would be requantized."""
    q = root.quantization
    if root.type != TensorType.INT8 or q is None or root.sparsity is not None or np.any(q.zero_point != 0):
        return False
    want = 1 if axis is None else root.shape[axis]
    return q.scale.size == want and (axis is None or q.axis == axis)


def _gptq(model: Model, ctx, options, stats: dict, warnings: list[str]) -> dict:
    """GPTQ-rounded int8 weights of the hybrid conv / FC ops (tflopt.recovery), by id(op)."""
    from tflopt.recovery import gptq_weights
    min_elements = DYNAMIC_MIN_ELEMENTS if options.min_elements is None else options.min_elements
    ops = [op for op in model.main.operators if op.name in HYBRID_WEIGHTS and HYBRID_WEIGHTS[op.name][1] is not None
           and op.input(1) is not None and op.input(1).num_elements >= min_elements]
    rounded, outcome = gptq_weights(model, ctx.calibration, ops, per_channel=options.per_channel,
                                    axes={k: v[1] for k, v in HYBRID_WEIGHTS.items()},
                                    skip=set(ctx.facts.get("clustered", {})), progress=ctx.progress)
    stats["recovery"] = outcome.stats()
    warnings.extend(outcome.warnings("GPTQ rounding"))
    return rounded


def _dynamic(model: Model, selector: Selector, options, stats: dict, warnings: list[str],
             rounded: dict | None = None) -> None:
    min_elements = DYNAMIC_MIN_ELEMENTS if options.min_elements is None else options.min_elements
    counts = {"hybrid": 0, "weight_only": 0, "reused_int8": 0, "skipped_small": 0, "skipped_by_selection": 0,
              "control_flow": 0}
    buffers = _FloatBuffers(model)
    for sg in model.subgraphs:
        made: dict[tuple[int, int | None], Tensor] = {}   # (root, axis) -> its int8 tensor
        uses = _uses_by_root(sg, lambda op: _weight_positions(op, selector))
        all_or_none = _recurrent_groups(uses, sg, min_elements)
        for ri, us in uses.items():
            root = sg.tensors[ri]
            if root.type not in (TensorType.FLOAT32, TensorType.FLOAT16, TensorType.INT8):
                continue
            chosen = []
            for op, pos, via in us:
                d = selector.decide(op.name, _names(op, root))
                if not d.quantize:
                    counts["skipped_by_selection"] += 1
                elif op.name in ALL_OR_NONE and id(op) in all_or_none:
                    chosen.append((op, pos, d))
                elif op.name not in ALL_OR_NONE and root.num_elements >= min_elements:
                    chosen.append((op, pos, d))
                else:
                    counts["skipped_small"] += 1
            if chosen:
                _quantize_root(sg, root, chosen, options, counts, buffers, rounded or {}, made)
        _control_flow_weights(model, sg, selector, options, min_elements, counts, warnings, made)
        counts["float32_biases"] = counts.get("float32_biases", 0) + _float_operands_of_hybrids(sg, buffers)
    if counts["control_flow"]:
        warnings.append(f"{counts['control_flow']} weight operand(s) of IF / WHILE ops are int8 behind a DEQUANTIZE "
                        "before the call: the called subgraphs compute in float32 on the dequantized values")
    stats.update(counts)
    stats["quantized"] = counts["hybrid"] + counts["weight_only"] + counts["control_flow"]


def _float_operands_of_hybrids(sg: Subgraph, buffers) -> int:
    """Hybrid ops get their other constant operands (biases) as float32 constants, as the
    converter writes them: XNNPACK refuses a hybrid conv / FC whose bias is computed."""
    producers = sg.producer_map()
    n = 0
    for op in sg.operators:
        spec = HYBRID_WEIGHTS.get(op.name)
        if spec is None or op.output(0).type != TensorType.FLOAT32 or not any(
                op.input(p) is not None and op.input(p).type == TensorType.INT8 for p in spec[0]):
            continue
        for pos, ti in enumerate(op.inputs):
            if pos in spec[0] or ti < 0 or sg.tensors[ti].is_constant:
                continue
            root, via = stored_constant(sg, ti, producers)
            if root is None or not via:
                continue
            fresh = sg.add_tensor(sg.tensors[ti].name, root.shape, TensorType.FLOAT32)
            buffers.assign(fresh, root)
            op.set_input(pos, fresh.index)
            n += 1
    return n


def _recurrent_groups(uses, sg: Subgraph, min_elements: int) -> set[int]:
    """Recurrent ops whose largest weight reaches ``min_elements``: all their weights go."""
    biggest: dict[int, int] = {}
    for ri, us in uses.items():
        for op, _, _ in us:
            if op.name in ALL_OR_NONE:
                biggest[id(op)] = max(biggest.get(id(op), 0), sg.tensors[ri].num_elements)
    return {k for k, n in biggest.items() if n >= min_elements}


def _control_flow_weights(model: Model, sg: Subgraph, selector: Selector, options, min_elements: int,
                          counts: dict, warnings: list[str], made: dict) -> None:
    """Weights an IF / WHILE op passes to the subgraphs it calls as operands: inside those
    subgraphs they are plain inputs, which ``_uses_by_root`` cannot see as constants. Where
    only weight slots read them (``branch_readers``), they become int8 -> DEQUANTIZE before
    the call (the operand stays float32, so the called subgraphs are unchanged)."""
    producers = sg.producer_map()
    uses: dict[int, list[tuple[Operator, int]]] = {}
    readers_of: dict[int, list[Operator]] = {}
    for op in sg.operators:
        if op.name not in CALLS:
            continue
        for pos, ti in enumerate(op.inputs):
            if ti < 0:
                continue
            root, via = stored_constant(sg, ti, producers)
            if root is None or root.is_variable or root.sparsity is not None \
                    or root.type not in (TensorType.FLOAT32, TensorType.FLOAT16):
                continue
            readers = branch_readers(model, op, pos)
            weights = [(r, p) for _, r, p in readers if r is not None and is_weight_use(model, r, p)]
            if not weights:
                continue  # not a weight where it is used: left as it is, as in the main graph
            if len(weights) != len(readers):
                others = sorted({f"{r.name} in subgraph {g.index}" if r is not None else f"output of subgraph {g.index}"
                                 for g, r, p in readers if r is None or not is_weight_use(model, r, p)})
                warnings.append(f"{op.name} operand {root.name!r} is a weight in the called subgraphs but also "
                                f"read as a value ({', '.join(others)}): it stays {root.type_name}")
                continue
            if not all(selector.decide(r.name, [root.name]).quantize for r, _ in weights):
                counts["skipped_by_selection"] += 1
                continue
            if root.num_elements < min_elements:
                counts["skipped_small"] += 1
                continue
            uses.setdefault(root.index, []).append((op, pos))
            readers_of.setdefault(root.index, []).extend(r for r, _ in weights)
    for ri, calls in uses.items():
        root = sg.tensors[ri]
        axes = {WEIGHT_OPERANDS.get(r.name, (None, None))[1] for r in readers_of[ri]}
        axis = axes.pop() if len(axes) == 1 and options.per_channel else None
        if axis is not None and axis >= len(root.shape):
            axis = None
        q = made.get((ri, axis))
        if q is None:
            data, scale = _int8_weight(float_values(root), axis, True)
            q = made[(ri, axis)] = sg.add_tensor(root.name, root.shape, TensorType.INT8, data=data,
                                                 quantization=(scale, np.zeros(scale.size, np.int64), axis or 0))
        _insert_dequantize(sg, q, calls, f"{root.name}_dequantize")
        counts["control_flow"] += len(calls)


def _quantize_root(sg: Subgraph, root: Tensor, chosen, options, counts: dict, buffers, rounded: dict,
                   made: dict | None = None) -> None:
    groups: dict[tuple, list[tuple[Operator, int]]] = {}
    for op, pos, d in chosen:
        per_channel = options.per_channel if d.per_channel is None else d.per_channel
        hybrid, axis = _hybrid_axis(op, pos, per_channel)
        if not hybrid:  # DEQUANTIZE handles per-channel int8 too (v5), so keep the op's axis
            axis = WEIGHT_OPERANDS.get(op.name, (None, None))[1] if per_channel else None
            if axis is not None and axis >= len(root.shape):
                axis = None
        groups.setdefault((hybrid, axis, per_channel), []).append((op, pos))
    values = None
    for (hybrid, axis, per_channel), uses in groups.items():
        if _reusable_int8(root, axis if per_channel else None) and (per_channel or axis is None):
            q = root
            counts["reused_int8"] += 1
        else:
            pre = rounded.get(id(uses[0][0])) if len(uses) == 1 and len(chosen) == 1 else None
            if pre is None and deferred.deferrable(root):
                data, scale = _deferred_int8_weight(root, axis, per_channel)
                q = sg.add_tensor(root.name, root.shape, TensorType.INT8, data=data,
                                  quantization=(scale, np.zeros(scale.size, np.int64), axis or 0))
                if made is not None and (per_channel or axis is None):
                    made[(root.index, axis)] = q
                _rewire(sg, q, uses, hybrid, counts, root)
                continue
            if values is None:
                values = float_values(root)
            data, scale = _int8_weight(values, axis, per_channel)
            if pre is not None and pre[2] == (axis if per_channel else None) and pre[1].size == scale.size:
                data, scale = pre[0], np.asarray(pre[1], np.float32)   # GPTQ: same grid, other rounding
            else:
                pre = None
            q = sg.add_tensor(root.name, values.shape, TensorType.INT8, data=data,
                              quantization=(scale, np.zeros(scale.size, np.int64), axis or 0))
            if made is not None and pre is None and (per_channel or axis is None):
                made[(root.index, axis)] = q   # an IF / WHILE passing this weight on shares it
        _rewire(sg, q, uses, hybrid, counts, root)


def _rewire(sg: Subgraph, q: Tensor, uses, hybrid: bool, counts: dict, root: Tensor) -> None:
    if hybrid:
        for op, pos in uses:
            op.set_input(pos, q.index)
            if hasattr(op.options, "asymmetricQuantizeInputs"):
                op.options.asymmetricQuantizeInputs = True
        counts["hybrid"] += len(uses)
    else:
        _insert_dequantize(sg, q, uses, f"{root.name}_dequantize")
        counts["weight_only"] += len(uses)


def _deferred_int8_weight(root: Tensor, axis: int | None, per_channel: bool):
    """``_int8_weight(float_values(root), ...)`` with the scales from one pass over row blocks
    and the int8 bytes computed by row blocks when the model is written: the same bytes,
    without holding the float copy and the int8 weights of the whole model at once."""
    if axis is not None and not per_channel:
        whole = symmetric_scale(deferred.abs_max(root, None), None)[0]
        scale = np.full(root.shape[axis], whole, np.float32)
    else:
        scale = symmetric_scale(deferred.abs_max(root, axis), axis)

    def rows(block: np.ndarray, lo: int, hi: int) -> np.ndarray:
        s = scale[lo:hi] if axis == 0 and scale.size > 1 else scale
        return quantize_symmetric(block, axis, scale=s)[0]

    return deferred.map_rows(root, rows, np.int8), np.asarray(scale, np.float32).reshape(-1)


def remove_dead_producers(model: Model) -> int:
    """Drop DEQUANTIZE / DENSIFY ops whose outputs nothing reads any more (rewired consumers
    leave them behind; the interpreter would still run them)."""
    removed = 0
    for sg in model.subgraphs:
        while True:
            read = {t for op in sg.operators for t in op.inputs} | set(sg.outputs)
            dead = [op for op in sg.operators if op.name in ("DEQUANTIZE", "DENSIFY")
                    and not any(t in read for t in op.outputs)]
            if not dead:
                break
            for op in dead:
                sg.remove_operator(op)
            removed += len(dead)
    return removed
