"""Full-integer quantization (``quantize(mode=int8)`` and ``mode=int16x8``).

Ranges come from calibration samples run through the float model. The rewrite then
retypes, in place, every activation a quantized op produces, so tensor names and indices
stay where they were; float-domain tensors read by quantized ops get a QUANTIZE'd twin and
quantized tensors read by float ops (or leaving the graph as float) a DEQUANTIZE'd twin.
Only subgraph 0 is quantized: control-flow bodies and ops without an integer kernel stay
float behind those boundary ops, and are reported.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from tflopt.calibration import collect_ranges
from tflopt.errors import TfloptError
from tflopt.model import Model, Operator, Subgraph, Tensor
from tflopt.pipeline import PassContext, PassResult, get_pass
from tflopt.quantization import affine_params, quantize_affine, quantize_bias, quantize_symmetric
from tflopt.recipe import Selector
from tflopt.schema import TYPE_NAMES, BuiltinOptions, TensorType, fb
from tflopt.sparse import to_dense
from tflopt.versioning import update_versions
from tflopt.weights import LOOK_THROUGH, float_values, stored_constant

from .dequantize import FP16_METADATA, integer_variables
from tflopt.weights import weight_slots
from .qkernels import BIAS_TYPE_OPTION, CLIPPING, FIXED_OUTPUT, SAME_SCALE, WEIGHTED, kernel_ops
from .quantize_weights import float16_behind_dequantize
from .sparsify import DENSIFY_OVERHEAD, sparsify_slot

# Calibration sets miss the extremes of unseen data, and clipping costs far more than
# rounding. int16 has 256x int8's resolution, so widening measured ranges by half (0.6 bit)
# is nearly free and removes most clipping (gru fixture: 34.0 -> 46.3 dB output SNR); int8
# cannot spare the resolution and keeps the measured range, as the converter does.
INT16_HEADROOM = 1.5
# Below this a scale is (nearly) subnormal and kernels' multiplier maths breaks down.
MIN_SCALE = 1e-8
NON_FLOAT = (TensorType.FLOAT16, TensorType.INT8, TensorType.UINT8, TensorType.INT16)


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int

    def shifted(self, by: int) -> "QParams":
        return QParams(self.scale, self.zero_point + by)


class Plan:
    """Which ops go integer and the encoding of every tensor they touch (no graph edits)."""

    def __init__(self, sg: Subgraph, ranges: dict, bits: int, selector: Selector, op_filter=None):
        self.sg, self.ranges, self.bits = sg, ranges, bits
        self.act: dict[int, QParams] = {}        # activation -> encoding of its integer version
        self.const: dict[tuple[int, int], QParams] = {}   # (op id, position) -> constant encoding
        self.requant: list[tuple[Operator, int, QParams]] = []
        self.quantized: list[Operator] = []
        self.left_float: Counter = Counter()
        table = kernel_ops(bits)
        for op in sg.operators:
            if self._eligible(op, table, selector) and (op_filter is None or op_filter(op)):
                self.quantized.append(op)
            elif any(self._is_float(t) for t in list(op.inputs) + list(op.outputs)):
                self.left_float[op.name] += 1
        self.quantized_ids = {id(op) for op in self.quantized}
        self._consumers = sg.consumer_map()
        for op in self.quantized:
            self._assign(op)

    # -- helpers ------------------------------------------------------------------------------
    def _is_float(self, t: int) -> bool:
        return t >= 0 and self.sg.tensors[t].type == TensorType.FLOAT32

    def encoding(self, lo: float, hi: float, measured: bool = True) -> QParams:
        if self.bits == 16 and measured:
            lo, hi = lo * INT16_HEADROOM, hi * INT16_HEADROOM
        if self.bits == 8:
            scale, zp = affine_params(lo, hi, np.int8)
        else:
            scale, zp = affine_params(lo, hi, np.int16, symmetric=True)
        if scale < MIN_SCALE:
            scale = MIN_SCALE
        return QParams(scale, zp)

    def _range(self, t: int) -> tuple[float, float]:
        tensor = self.sg.tensors[t]
        if tensor.is_constant:
            v = float_values(tensor)
            return (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
        return self.ranges[t]

    def params(self, t: int) -> QParams:
        if t not in self.act:
            self.act[t] = self.encoding(*self._range(t))
        return self.act[t]

    # -- decisions ----------------------------------------------------------------------------
    def _eligible(self, op: Operator, table: set[str], selector: Selector) -> bool:
        if op.name not in table:
            return False
        names = [self.sg.tensors[t].name for t in op.outputs] + \
                [self.sg.tensors[t].name for t in op.inputs if t >= 0 and self.sg.tensors[t].is_constant]
        if not selector.decide(op.name, names).quantize:
            return False
        touched = False
        for t in list(op.inputs) + list(op.outputs):
            if t < 0:
                continue
            tensor = self.sg.tensors[t]
            if tensor.type in NON_FLOAT or tensor.is_variable:
                return False
            if tensor.type == TensorType.FLOAT32:
                touched = True
                if not tensor.is_constant and t not in self.ranges:
                    return False  # no calibration range (e.g. downstream of an op that cannot run)
        if op.name in WEIGHTED:
            d, w, b, _ = WEIGHTED[op.name]
            ins = op.inputs
            if w >= len(ins) or not self.sg.tensors[ins[w]].is_constant or self.sg.tensors[ins[d]].is_constant:
                return False
            if b < len(ins) and ins[b] >= 0 and not self.sg.tensors[ins[b]].is_constant:
                return False
        return touched

    def _clipped_by(self, t: int) -> int | None:
        """The output of the one quantized RELU / RELU6 / RELU_N1_TO_1 that is ``t``'s only
        reader, when ``t`` is not a graph output; else None.

        Only what the activation lets through matters, so ``t`` takes the activation output's
        encoding, as the converter's fused activation gives it: selfie_segmentation's
        conv2d_32 spans [-66.6, 35.7] and its RELU [0, 35.7], so the full range spent two
        thirds of int8's levels on values the RELU discards (22 such RELUs there; int8 mask
        cosine of selfie_segmentation_landscape 0.83 -> 0.99, face_detection_short_range min
        0.964 -> 0.979). The producer's kernel saturates at the narrowed range's ends and the
        activation, now the identity with a clamp (one encoding in and out), clamps to its
        interval: what a fused activation computes (the output's quantized range intersected
        with the activation's interval), for any producer and both int8 and int16x8, with no
        graph edit; fusing would only save the activation op's pass over the tensor."""
        users = self._consumers.get(t, [])
        if t in self.sg.outputs or len(users) != 1:
            return None
        user, _ = users[0]
        if user.name not in CLIPPING or id(user) not in self.quantized_ids or len(user.outputs) != 1:
            return None
        out = user.outputs[0]
        return out if self._is_float(out) and out in self.ranges else None

    def _gated_bound(self, op: Operator, acts, outs) -> tuple[float, float] | None:
        """The range a sigmoid-gated product can take, when the gate is elementwise.

        ``MUL(LOGISTIC(..), x)`` of one shape (a recurrent cell's ``z * h``) lies between 0
        and x, so its output encoding covers the hull of 0 and x's encoded range: a gate
        near 1 on unseen data then passes x on unclipped (the calibration set rarely pairs a
        saturated gate with an extreme x; gru fixture int8: 26.41 -> 26.72 dB). A broadcast
        channel gate (squeeze-and-excite, ``x * sigmoid(pool(x))``) keeps its measured
        range: there the product is sampled at every position and the wider range only costs
        resolution (selfie_segmentation_landscape int8 mask cosine 0.83 -> 0.77)."""
        if len(acts) != 2 or len(outs) != 1:
            return None
        (_, a), (_, b) = acts
        shapes = {tuple(self.sg.tensors[t].shape) for t in (a, b, outs[0])}
        if len(shapes) != 1:
            return None
        for gate, x in ((a, b), (b, a)):
            producer = self.sg.producer(gate)
            if producer is not None and producer.name == "LOGISTIC":
                p = self.params(x)
                info = np.iinfo(np.int8 if self.bits == 8 else np.int16)
                return min(0.0, (info.min - p.zero_point) * p.scale), max(0.0, (info.max - p.zero_point) * p.scale)
        return None

    def _assign(self, op: Operator) -> None:
        sg = self.sg
        skip = set()
        if op.name in WEIGHTED:
            _, w, b, _ = WEIGHTED[op.name]
            skip = {w, b}
        acts = [(i, t) for i, t in enumerate(op.inputs)
                if i not in skip and self._is_float(t) and not sg.tensors[t].is_constant]
        consts = [(i, t) for i, t in enumerate(op.inputs)
                  if i not in skip and self._is_float(t) and sg.tensors[t].is_constant]
        outs = [t for t in op.outputs if self._is_float(t)]
        for _, t in acts:
            self.params(t)
        fixed = FIXED_OUTPUT[self.bits].get(op.name)
        if fixed is not None:
            for t in outs:
                self.act[t] = QParams(*fixed)
        elif op.name in SAME_SCALE and len(acts) == 1 and not consts:
            for t in outs:
                self.act[t] = self.act[acts[0][1]]
        elif op.name in SAME_SCALE:
            # One encoding for everything: the union of the operands' and results' ranges.
            spans = [self._range(t) for _, t in acts + consts] + [self.ranges[t] for t in outs]
            shared = self.encoding(min(s[0] for s in spans), max(s[1] for s in spans))
            for t in outs:
                self.act[t] = shared
            for i, t in acts:
                if self.act[t] != shared:
                    self.requant.append((op, i, shared))
            for i, _ in consts:
                self.const[(id(op), i)] = shared
            return
        else:
            bound = self._gated_bound(op, acts, outs) if op.name == "MUL" else None
            for t in outs:
                clip = self._clipped_by(t) if bound is None else None
                if clip is not None and t not in self.act:
                    self.act[t] = self.params(clip)
                elif bound is None:
                    self.params(t)
                else:
                    lo, hi = self.ranges[t]
                    if self.bits == 16:
                        lo, hi = lo * INT16_HEADROOM, hi * INT16_HEADROOM
                    self.act[t] = self.encoding(min(lo, bound[0]), max(hi, bound[1]), measured=False)
        for i, t in consts:
            self.const[(id(op), i)] = self.encoding(*self._range(t), measured=False)


class Rewriter:
    def __init__(self, model: Model, plan: Plan, options, bits: int):
        self.model, self.plan, self.options, self.bits = model, plan, options, bits
        self.sg = plan.sg
        self.qtype = TensorType.INT8 if bits == 8 else TensorType.INT16
        self.qdtype = np.int8 if bits == 8 else np.int16
        self.precomputed: dict = {}   # id(op) -> (int8 weight, scale, axis) from GPTQ

    def _set_q(self, tensor, p: QParams, tensor_type: int | None = None) -> None:
        tensor.raw.type = int(tensor_type if tensor_type is not None else self.qtype)
        tensor.set_quantization(p.scale, p.zero_point)

    def _twin(self, t: int, suffix: str, tensor_type: int, p: QParams | None):
        src = self.sg.tensors[t]
        return self.sg.add_tensor(src.name + suffix, src.shape, tensor_type,
                                  quantization=None if p is None else (p.scale, p.zero_point),
                                  shape_signature=src.shape_signature)

    def _after_producer(self, t: int) -> int:
        producer = self.sg.producer(t)
        return 0 if producer is None else producer.index + 1

    # -- constants ------------------------------------------------------------------------
    def constants(self) -> int:
        sg, plan = self.sg, self.plan
        n = 0
        shared: dict[tuple[int, int | None], Tensor] = {}   # (float weight, axis) -> its int8 tensor
        for op in plan.quantized:
            if op.name in WEIGHTED:
                d, w, b, axis = WEIGHTED[op.name]
                source = op.inputs[w]
                axis = axis if self.options.per_channel and len(sg.tensors[source].shape) > axis else None
                if (source, axis) in shared and id(op) not in self.precomputed:
                    # A weight several ops read (a recurrent cell's unrolled steps) is one int8
                    # tensor for all of them, as it was one float tensor.
                    weight = shared[(source, axis)]
                    op.set_input(w, weight.index)
                else:
                    weight = sg.private_input(op, w, "_quantized")
                    q, wscale = (self.precomputed.get(id(op)) or quantize_symmetric(float_values(weight), axis))[:2]
                    weight.set_data(q, TensorType.INT8)
                    weight.set_quantization(wscale, 0, axis or 0)
                    if id(op) not in self.precomputed:
                        shared[(source, axis)] = weight
                wscale = weight.quantization.scale
                n += 1
                if b < len(op.inputs) and op.inputs[b] >= 0:
                    bias = sg.private_input(op, b, "_quantized")
                    bdtype, btype = (np.int32, TensorType.INT32) if self.bits == 8 else (np.int64, TensorType.INT64)
                    qb, bscale = quantize_bias(float_values(bias), plan.act[op.inputs[d]].scale, wscale, bdtype)
                    bias.set_data(qb, btype)
                    bias.set_quantization(bscale, 0, 0)
                if self.bits == 16 and op.name in BIAS_TYPE_OPTION and op.options is not None:
                    op.options.quantizedBiasType = TensorType.INT64
            for i, t in enumerate(op.inputs):
                p = plan.const.get((id(op), i))
                if p is None:
                    continue
                c = sg.private_input(op, i, "_quantized")
                c.set_data(quantize_affine(float_values(c), p.scale, p.zero_point, self.qdtype), self.qtype)
                c.set_quantization(p.scale, p.zero_point)
            if self.bits == 16 and op.name in ("ADD", "SUB"):
                # The default power-of-two int16 kernels need POT scales; calibrated ones are not.
                if op.options is None:
                    cls, kind = (fb.AddOptionsT, BuiltinOptions.AddOptions) if op.name == "ADD" else \
                        (fb.SubOptionsT, BuiltinOptions.SubOptions)
                    op.raw.builtinOptionsType, op.raw.builtinOptions = kind, cls()
                op.options.potScaleInt16 = False
        return n

    # -- activations ----------------------------------------------------------------------
    def activations(self) -> None:
        sg, plan, opts = self.sg, self.plan, self.options
        qids = plan.quantized_ids
        producers = sg.producer_map()
        uses = sg.consumer_map()
        for t, p in plan.act.items():
            tensor = sg.tensors[t]
            users = uses.get(t, [])
            q_users = [op for op, _ in users if id(op) in qids]
            f_users = [op for op, _ in users if id(op) not in qids]
            producer = producers.get(t)
            is_output = t in sg.outputs
            if producer is not None and id(producer) in qids:
                self._set_q(tensor, p)
                if f_users or (is_output and opts.output_type == "float32"):
                    f = self._twin(t, "_dequantized", TensorType.FLOAT32, None)
                    sg.insert_operator(producer.index + 1, "DEQUANTIZE", [t], [f.index])
                    sg.replace_uses(t, f.index, ops=f_users, graph_outputs=False)
                    if is_output and opts.output_type == "float32":
                        sg.replace_uses(t, f.index, ops=[], graph_outputs=True)
                        f.name, tensor.name = tensor.name, f.name.replace("_dequantized", "_" + self.qtype_name)
                if is_output and opts.output_type == "uint8":
                    u = self._twin(t, "_uint8", TensorType.UINT8, p.shifted(128))
                    sg.insert_operator(producer.index + 1, "QUANTIZE", [t], [u.index])
                    sg.replace_uses(t, u.index, ops=[], graph_outputs=True)
                    u.name, tensor.name = tensor.name, tensor.name + "_" + self.qtype_name
                continue
            if t in sg.inputs and opts.input_type != "float32":
                # The model takes integers here: the input itself changes type.
                if opts.input_type == "uint8":
                    self._set_q(tensor, p.shifted(128), TensorType.UINT8)
                    q = self._twin(t, "_int8", self.qtype, p)
                    sg.insert_operator(0, "QUANTIZE", [t], [q.index])
                    sg.replace_uses(t, q.index, ops=q_users, graph_outputs=False)
                else:
                    self._set_q(tensor, p)
                if f_users:
                    f = self._twin(t, "_dequantized", TensorType.FLOAT32, None)
                    sg.insert_operator(0, "DEQUANTIZE", [t], [f.index])
                    sg.replace_uses(t, f.index, ops=f_users, graph_outputs=False)
                continue
            q = self._twin(t, "_" + self.qtype_name, self.qtype, p)
            sg.insert_operator(self._after_producer(t), "QUANTIZE", [t], [q.index])
            sg.replace_uses(t, q.index, ops=q_users, graph_outputs=False)

    @property
    def qtype_name(self) -> str:
        return "int8" if self.bits == 8 else "int16"

    def requantize(self) -> int:
        sg = self.sg
        made: dict[tuple[int, QParams], int] = {}
        for op, pos, p in self.plan.requant:
            src = op.inputs[pos]
            key = (src, p)
            if key not in made:
                r = self._twin(src, "_requantized", self.qtype, p)
                sg.insert_before(op, "QUANTIZE", [src], [r.index])
                made[key] = r.index
            op.set_input(pos, made[key])
        return len(made)


def _needs_dequantize(model: Model) -> bool:
    for sg in model.subgraphs:
        if any(op.name in ("DEQUANTIZE", "DENSIFY", "QUANTIZE") for op in sg.operators):
            return True
        if any(t.type in NON_FLOAT or t.sparsity is not None for t in sg.tensors):
            return True
    return False


# -- storage the input came with --------------------------------------------------------------
# Quantizing starts from a dequantized (dense float32) model; without these, weights that stay
# float would come out float32 and weights that were sparse would come out dense, so the file
# could grow past the input's (face_landmark_with_attention +29%, pose_detection +22%).
def stored_forms(model: Model) -> dict[tuple[int, int], tuple[Operator, str | None, bool]]:
    """(id(op), position) -> (op, name of the float16 constant read through DEQUANTIZE or
    None, whether the constant is stored sparse). The op is kept so its id stays unique."""
    forms = {}
    for sg in model.subgraphs:
        producers = sg.producer_map()
        for op in sg.operators:
            if op.name in LOOK_THROUGH:
                continue
            for pos, t in enumerate(op.inputs):
                if t < 0:
                    continue
                root, via = stored_constant(sg, t, producers)
                if root is None:
                    continue
                fp16 = root.type == TensorType.FLOAT16 and any(v.name == "DEQUANTIZE" for v in via)
                if fp16 or root.sparsity is not None:
                    forms[(id(op), pos)] = (op, root.name if fp16 else None, root.sparsity is not None)
    return forms


def _decode_sparse(model: Model) -> None:
    """Sparse weights read directly (the float FC kernel's form) survive ``dequantize``, and
    the rewrite would put dense integers under their sparsity parameters (a model the FC
    kernel rejects): decode them; ``restore_storage`` re-encodes them for the new kernel."""
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.sparsity is not None and t.is_constant:
                dense = to_dense(t)
                t.raw.sparsity = None
                t.set_data(dense, t.type)


def restore_storage(model: Model, forms: dict, fp16_metadata: bytes | None, warnings: list[str]) -> dict:
    """Float32 constants that were float16 and still feed float ops go back to float16 +
    DEQUANTIZE; weights that were sparse are stored sparse again (int8 or float) where a
    kernel path takes it and it saves bytes."""
    counts = {"float16": 0, "sparse": 0}
    sparse_roots: set[tuple[int, int]] = set()
    for sg in model.subgraphs:
        here = {id(op) for op in sg.operators}
        mine = [(op, pos, name16, sparse) for (oid, pos), (op, name16, sparse) in forms.items() if oid in here]
        fp16: dict[int, str] = {}
        for op, pos, name16, _ in mine:
            t = op.inputs[pos]
            tensor = sg.tensors[t]
            # Quantized ops read private integer copies, so a float32 constant left here is
            # read by float ops only; a DEQUANTIZE costs about what a DENSIFY does, so tiny
            # constants stay float32.
            if name16 is not None and tensor.type == TensorType.FLOAT32 and tensor.is_constant \
                    and t not in sg.outputs and 2 * tensor.num_elements > DENSIFY_OVERHEAD + len(name16):
                fp16.setdefault(t, name16)
        for t, name16 in fp16.items():
            float16_behind_dequantize(sg, sg.tensors[t], sg.consumers(t), name=name16, out_name=sg.tensors[t].name)
            counts["float16"] += 1
        producers = sg.producer_map()
        for op, pos, _, sparse in mine:
            root = stored_constant(sg, op.inputs[pos], producers)[0] if sparse else None
            if root is not None:
                sparse_roots.add((id(sg), root.index))
    if counts["float16"] and fp16_metadata is not None:
        model.set_metadata(FP16_METADATA, fp16_metadata)
    for slot in weight_slots(model, ops=None):
        if not slot.skip and (id(slot.ref.subgraph), slot.tensor.index) in sparse_roots:
            # Sparse in the input means worth it there: keep it whenever it still saves bytes.
            if sparsify_slot(slot, min_sparsity=0.0, warnings=warnings) is not None:
                counts["sparse"] += 1
    return counts


def _boundary_warnings(sg: Subgraph, options, plan: Plan) -> list[str]:
    out = []
    if options.input_type != "float32":
        stay = [sg.tensors[t].name for t in sg.inputs if sg.tensors[t].type == TensorType.FLOAT32]
        if stay:
            out.append(f"input_type={options.input_type}: inputs {', '.join(stay)} feed no quantized op and stay float32")
    if options.output_type != "float32":
        stay = [sg.tensors[t].name for t in sg.outputs if sg.tensors[t].type == TensorType.FLOAT32]
        if stay:
            out.append(f"output_type={options.output_type}: outputs {', '.join(stay)} come from float ops and stay float32")
    return out


def entry_subgraphs(model: Model) -> tuple[list[int], set[int]]:
    """(subgraphs a caller runs: signature targets or 0; subgraphs control-flow ops call)."""
    called: set[int] = set()
    for op in model.operators():
        opts = op.options
        if opts is not None:
            called.update(int(v) for k, v in vars(opts).items() if k.endswith("SubgraphIndex") and v is not None)
    entries = sorted({int(s.subgraphIndex) for s in model.signature_defs} or {0})
    return [i for i in entries if i not in called], called


_IO_TYPES = {"float32": TensorType.FLOAT32, "int8": TensorType.INT8, "uint8": TensorType.UINT8,
             "int16": TensorType.INT16}


def _boundary_changes(model: Model, options) -> list[tuple[Subgraph, str, int, int]] | None:
    """How the entry subgraphs' inputs and outputs of a full-integer model reach the requested
    types without touching the integer graph: ``(subgraph, kind, position, tensor)`` with kind
    ``quantize_in`` (an integer input becomes float32 read by a QUANTIZE), ``drop_quantize``
    (a float32 input read only by one QUANTIZE to the requested type: the input takes its
    place), ``dequantize_out`` / ``drop_dequantize`` the same for outputs. None when a
    boundary needs more than that (e.g. uint8)."""
    changes = []
    for index in entry_subgraphs(model)[0]:
        sg = model.subgraphs[index]
        for kind, tensors, want in (("in", sg.inputs, _IO_TYPES[options.input_type]),
                                    ("out", sg.outputs, _IO_TYPES[options.output_type])):
            for pos, t in enumerate(tensors):
                tensor = sg.tensors[t]
                if tensor.type == want or not (tensor.type == TensorType.FLOAT32 or tensor.is_quantized):
                    continue
                if want == TensorType.FLOAT32 and tensor.is_quantized \
                        and tensor.type in (TensorType.INT8, TensorType.UINT8, TensorType.INT16):
                    changes.append((sg, "quantize_in" if kind == "in" else "dequantize_out", pos, t))
                    continue
                if tensor.type != TensorType.FLOAT32:
                    return None
                if kind == "in":
                    users = sg.consumers(t)
                    if len(users) != 1 or users[0][0].name != "QUANTIZE" or t in sg.outputs \
                            or users[0][0].output(0).type != want:
                        return None
                    changes.append((sg, "drop_quantize", pos, t))
                else:
                    producer = sg.producer(t)
                    if producer is None or producer.name != "DEQUANTIZE" or producer.input(0).type != want \
                            or len(sg.consumers(t)) or producer.inputs[0] in sg.outputs:
                        return None
                    changes.append((sg, "drop_dequantize", pos, t))
    return changes


def _apply_boundary_changes(model: Model, changes) -> None:
    """Carry out ``_boundary_changes``; the boundary tensor keeps its name and signature entry."""
    for sg, kind, pos, t in changes:
        tensor = sg.tensors[t]
        if kind in ("quantize_in", "dequantize_out"):
            f = sg.add_tensor(tensor.name, tensor.shape, TensorType.FLOAT32, shape_signature=tensor.shape_signature)
            tensor.name = f"{tensor.name}_{tensor.type_name.lower()}"
            if kind == "quantize_in":
                sg.insert_operator(0, "QUANTIZE", [f.index], [t])
                sg.raw.inputs = [f.index if i == pos else x for i, x in enumerate(sg.inputs)]
            else:
                producer = sg.producer(t)
                sg.insert_operator(0 if producer is None else producer.index + 1, "DEQUANTIZE", [t], [f.index])
                sg.raw.outputs = [f.index if i == pos else x for i, x in enumerate(sg.outputs)]
            model._rename_signature_tensor(sg, t, f.index, outputs=kind == "dequantize_out")
            continue
        if kind == "drop_quantize":
            (op, _), = sg.consumers(t)
            q = op.outputs[0]
            sg.raw.inputs = [q if i == pos else x for i, x in enumerate(sg.inputs)]
        else:
            op = sg.producer(t)
            q = op.inputs[0]
            sg.raw.outputs = [q if i == pos else x for i, x in enumerate(sg.outputs)]
        sg.remove_operator(op)
        sg.tensors[q].name, tensor.name = tensor.name, f"{tensor.name}_float32"
        model._rename_signature_tensor(sg, t, q, outputs=kind == "drop_dequantize")


def already_quantized(model: Model, options, bits: int) -> tuple[str, list] | None:
    """(what the model already is, the boundary changes it needs) when the model is already
    what ``quantize(mode=...)`` would make of it, so requantizing can only lose (fresh ranges,
    float32 state, QUANTIZE / DEQUANTIZE pairs); None otherwise. Already: every quantized
    activation inside has the mode's type, no op with a kernel at this precision still
    computes in float, the inputs and outputs reach the requested types with a QUANTIZE /
    DEQUANTIZE at most, and no selection or GPTQ option asks for something else."""
    if options.weights != "rtn" or options.ops or options.skip_ops or options.include or options.exclude \
            or options.recipe:
        return None
    qtype = TensorType.INT8 if bits == 8 else TensorType.INT16
    table = kernel_ops(bits)
    changes = _boundary_changes(model, options)
    if changes is None:
        return None
    boundary = {(index, t) for index in entry_subgraphs(model)[0]
                for t in list(model.subgraphs[index].inputs) + list(model.subgraphs[index].outputs)}
    n = 0
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.name in table and any(t >= 0 and sg.tensors[t].type == TensorType.FLOAT32
                                        and not sg.tensors[t].is_constant for t in list(op.inputs) + list(op.outputs)):
                return None
        for t in sg.tensors:
            if t.is_constant or not t.is_quantized or (sg.index, t.index) in boundary:
                continue
            if t.type != qtype:
                return None
            n += 1
    if not n:
        return None
    return f"full {'int8' if bits == 8 else 'int16x8'} ({n} {TYPE_NAMES[qtype]} activations)", changes


def quantize_static(model: Model, ctx: PassContext, options, *, op_filter=None, range_cache: dict | None = None,
                    after_rewrite=None) -> PassResult:
    """``op_filter(op) -> bool`` (ops of the entry subgraphs as they are after any
    dequantize) narrows the ops quantized: mixed precision leaves the ones it returns False
    for in float. ``range_cache`` (a dict kept between calls on copies of one model) holds
    the calibration ranges per subgraph, so trying many selections calibrates once.
    ``after_rewrite(model) -> dict`` edits the rewritten (and pruned) model while its weights are still
    dense float32 / int8 (mixed precision's int16 islands and GPTQ weights), before the
    input's storage (float16, sparse) is restored; what it returns joins the stats."""
    mode = options.mode
    bits = 8 if mode == "int8" else 16
    already = already_quantized(model, options, bits)
    if already is not None:
        # Requantizing would throw away the ranges it was calibrated with and turn its
        # integer state variables float32 (the stream fixture grew 8,752 -> 9,248 bytes).
        what, changes = already
        _apply_boundary_changes(model, changes)
        if changes:
            model.remove_unused()
            update_versions(model)
        done = f"only its inputs / outputs changed type ({len(changes)})" if changes else "left as it is"
        return PassResult(bool(changes), {"mode": mode, "already": what, "boundary_changes": len(changes),
                                          "subgraphs": {}, "quantized_ops": 0, "float_ops": {}},
                          [f"the model is already {what}: {done} (dequantize first to requantize it from "
                           "float with new calibration)"])
    if ctx.calibration is None:
        raise TfloptError(f"quantize(mode={mode}) needs calibration data: pass --calibration PATH "
                          "(.npz, .npy, image folder, module:function, or random:N to only test that it runs)")
    warnings: list[str] = list(getattr(ctx.calibration, "warnings", []))
    stats: dict = {"mode": mode, "subgraphs": {}}
    forms, fp16_metadata = stored_forms(model), model.get_metadata(FP16_METADATA)
    state = integer_variables(model)
    if _needs_dequantize(model):
        result = get_pass("dequantize")().run(model, ctx)
        stats["dequantized"] = result.stats
        warnings.extend(result.warnings)
        _decode_sparse(model)
    entries, called = entry_subgraphs(model)
    if called:
        warnings.append(f"control-flow subgraph(s) {sorted(called)} stay float; their callers are wrapped")
    selector = Selector.from_options(options)
    changed = False
    left_float: Counter = Counter()
    for index in entries:
        sg = model.subgraphs[index]
        ranges = range_cache.get(index) if range_cache is not None else None
        if ranges is None:
            ranges = collect_ranges(model, ctx.calibration, subgraph=index, method=options.calibration,
                                    percentile=options.percentile, max_samples=options.samples, levels=2 ** bits,
                                    progress_hook=ctx.progress)
            if range_cache is not None:
                range_cache[index] = ranges
        if ranges.cut_ops:
            warnings.append(f"calibration cannot run {', '.join(sorted(set(ranges.cut_ops)))}: ops after them stay float")
        plan = Plan(sg, ranges.ranges, bits, selector, op_filter if index == 0 else None)
        left_float.update(plan.left_float)
        if not plan.quantized:
            continue
        rw = Rewriter(model, plan, options, bits)
        if options.weights == "gptq" and index == 0:
            # Calibrated rounding (tflopt.recovery): int8 weights precomputed per op, same scales.
            from tflopt.recovery import gptq_weights
            rw.precomputed, rec = gptq_weights(model, ctx.calibration, [op for op in plan.quantized if op.name in WEIGHTED],
                                               per_channel=options.per_channel,
                                               axes={k: v[3] for k, v in WEIGHTED.items()},
                                               skip=set(ctx.facts.get("clustered", {})))
            stats["recovery"] = rec.stats()
            warnings.extend(rec.warnings("GPTQ rounding"))
        sub = {"weights_quantized": rw.constants()}
        rw.activations()
        sub["requantize_ops"] = rw.requantize()
        sub["quantized_ops"] = len(plan.quantized)
        sub["float_ops"] = dict(sorted(plan.left_float.items()))
        sub["calibration_samples"] = ranges.samples
        stats["subgraphs"][index] = sub
        warnings.extend(_boundary_warnings(sg, options, plan))
        changed = True
    if after_rewrite is not None:
        model.remove_unused()   # the rewrite's dead ops still read the weights it replaced
        stats.update(after_rewrite(model))
    if forms:
        stats["restored_storage"] = restore_storage(model, forms, fp16_metadata, warnings)
    stats["quantized_ops"] = sum(s["quantized_ops"] for s in stats["subgraphs"].values())
    stats["float_ops"] = dict(sorted(left_float.items()))
    if left_float:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(left_float.items()))
        warnings.append(f"{sum(left_float.values())} op(s) stay float (no {mode} kernel, not selected, or no "
                        f"calibration range): {listed}")
    if changed or forms:
        model.remove_unused()
        update_versions(model)
    if not changed:
        warnings.append(f"no op could be quantized to {mode}")
    lost = sorted(set(state) - set(integer_variables(model)))
    if lost:
        warnings.append(f"{len(lost)} resource variable(s) held {'/'.join(sorted(set(state.values())))} state and now "
                        f"hold float32 ({', '.join(lost[:3])}): READ_VARIABLE / ASSIGN_VARIABLE get no {mode} "
                        "rewrite, so the state takes 4x the memory behind QUANTIZE / DEQUANTIZE ops")
    return PassResult(changed, stats, warnings)
