"""Operator versions and ``min_runtime_version``, recomputed from op signatures.

A port of the converter's ``op_version.cc`` (``GetBuiltinOperatorVersion``) and
``runtime_version.cc`` for the ops quantization rewrites touch. Each op has an ordered list
of ``(version, condition)`` rules: the first that holds wins, otherwise version 1. An op code
gets the max over the operators that share it, capped at the highest version the runtime
table knows (the interpreter refuses versions above its registered max).

Unlike the converter, which only ever raises a version, ops with rules here are *set* to the
computed version, so a dequantized model goes back to float versions. Ops without rules
(custom ops, control flow, ...) keep their stored version.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .model import Model, Operator
from .schema import TensorType as T
from .schema import op_name

NOTYPE = -1
KEEP = 0  # rule result: leave the stored version as it is


@dataclass
class Spec:
    type: int
    dims: tuple[int, ...] = ()
    scales: int = 0          # number of quantization scales (0: not quantized)
    axis: int = 0
    sparse: bool = False


@dataclass
class Signature:
    op: str
    inputs: list[Spec]
    outputs: list[Spec]
    options: Any = None
    ext: dict = field(default_factory=dict)

    def i(self, n: int) -> int:
        return self.inputs[n].type if n < len(self.inputs) else NOTYPE

    def o(self, n: int) -> int:
        return self.outputs[n].type if n < len(self.outputs) else NOTYPE

    def opt(self, name: str, default=0):
        return getattr(self.options, name, default) if self.options is not None else default


class _Specs(list):
    """An op's operand specs; an operand the op lacks (a corrupt or partial op with fewer
    inputs or outputs than its rules read) reads as absent instead of raising IndexError."""

    def __getitem__(self, n):
        if isinstance(n, int) and not -len(self) <= n < len(self):
            return Spec(NOTYPE)
        return super().__getitem__(n)


def _spec(sg, index: int) -> Spec:
    if index < 0:
        return Spec(NOTYPE)
    t = sg.tensors[index]
    q = t.quantization
    return Spec(t.type, t.shape, int(q.scale.size) if q is not None else 0, q.axis if q is not None else 0,
                t.sparsity is not None)


def _per_channel(spec: Spec, dim: int | None = None, more_than_one: bool = False) -> bool:
    """op_signature.cc's per-channel test: the scale count equals a dimension of the tensor."""
    d = spec.axis if dim is None else dim
    if not spec.scales or d >= len(spec.dims) or (more_than_one and spec.scales <= 1):
        return False
    return spec.scales == spec.dims[d]


def signature(op: Operator) -> Signature:
    sg = op.subgraph
    ins = _Specs(_spec(sg, t) for t in op.inputs)
    outs = _Specs(_spec(sg, t) for t in op.outputs)
    sig = Signature(op.name, ins, outs, op.options)
    name = op.name
    if name == "CONV_2D" and len(ins) > 1:
        sig.ext["per_channel"] = _per_channel(ins[1], 0)
        sig.ext["grouped"] = (len(ins[0].dims) == 4 and len(ins[1].dims) == 4 and ins[0].dims[3] != ins[1].dims[3])
    elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1:
        sig.ext["per_channel"] = _per_channel(ins[1], 3)
    elif name == "FULLY_CONNECTED" and len(ins) > 1:
        sig.ext["per_channel"] = _per_channel(ins[1], 0)
        sig.ext["sparse"] = ins[1].sparse
    elif name == "DEQUANTIZE":
        sig.ext["per_channel"] = _per_channel(ins[0], more_than_one=True)
    elif name == "QUANTIZE":
        sig.ext["per_channel"] = _per_channel(outs[0], more_than_one=True)
    elif name == "EMBEDDING_LOOKUP" and len(ins) > 1:
        sig.ext["per_channel"] = _per_channel(ins[1], 0, more_than_one=True)
    elif name in ("ADD", "ABS", "MUL"):
        sig.ext["input_quantized"] = any(s.scales for s in ins[:2])
        if name == "MUL" and len(ins) > 1 and all(s.scales for s in (ins[0], ins[1], outs[0])):
            s = [sg.tensors[t].quantization.scale[0] for t in (op.inputs[0], op.inputs[1], op.outputs[0])]
            sig.ext["rescale"] = float(s[0]) * float(s[1]) / float(s[2]) if s[2] else 0.0
    return sig


I8, I16, F32, F16 = T.INT8, T.INT16, T.FLOAT32, T.FLOAT16
Rule = tuple[int, Callable[[Signature], bool]]


def _hybrid(s: Signature, w: int = 1) -> bool:
    return s.i(0) == F32 and s.i(w) == I8 and s.o(0) == F32


def _int16x8(s: Signature) -> bool:
    # op_version.cc gives int16-activation x int8-weight conv/depthwise (without
    # quantized_bias_type) version 1 because of the quirk above; the legacy quantizer writes 3.
    # Rather than lower a quantized op to its float version, keep what is stored.
    return s.i(0) == I16 and s.i(1) == I8 and s.o(0) == I16


def _broadcast_gt4(s: Signature) -> bool:
    return (len(s.inputs) >= 2 and s.inputs[0].dims != s.inputs[1].dims
            and max(len(x.dims) for x in s.inputs) > 4)


def _ladder(i16: int | None = 3, i8: int = 2, fp16: int | None = None) -> list[Rule]:
    """The common pattern: float16 input -> fp16, int16 -> i16, int8 -> i8."""
    rules: list[Rule] = []
    if fp16:
        rules.append((fp16, lambda s: s.i(0) == F16))
    if i16:
        rules.append((i16, lambda s: s.i(0) == I16))
    rules.append((i8, lambda s: s.i(0) == I8))
    return rules


_POOL = [(3, lambda s: s.i(0) == I16 and s.o(0) == I16), (2, lambda s: s.i(0) == I8)]
_RECURRENT_HYBRID = [(3, lambda s: s.i(1) == I8 and s.o(0) == F32 and s.opt("asymmetricQuantizeInputs")),
                     (2, lambda s: s.i(1) == I8 and s.o(0) == F32)]

RULES: dict[str, list[Rule]] = {
    "CONV_2D": [
        (8, lambda s: s.i(0) == I16 and s.i(1) == I8 and s.o(0) == I16 and s.opt("quantizedBiasType")),
        (6, lambda s: s.ext.get("grouped")),
        # op_version.cc tests output 1 here (a quirk kept as written; it never matches).
        (4, lambda s: s.i(0) == I16 and s.i(1) == I16 and s.o(1) == I16),
        (KEEP, _int16x8),
        (3, lambda s: s.i(0) == I8 and s.i(1) == I8 and s.o(0) == I8),
        (7, lambda s: s.i(0) == I8 and s.i(1) == T.INT4 and s.o(0) == I8),
        (5, lambda s: _hybrid(s) and s.ext.get("per_channel")),
        (2, _hybrid),
    ],
    "DEPTHWISE_CONV_2D": [
        (5, lambda s: s.i(0) == I16 and s.i(1) == I16 and s.o(1) == I16),
        (KEEP, _int16x8),
        (6, lambda s: _hybrid(s) and s.ext.get("per_channel")),
        (4, _hybrid),
        (3, lambda s: s.i(0) == I8 and s.i(1) == I8 and s.o(0) == I8),
        (7, lambda s: s.i(0) == I8 and s.i(1) == T.INT4 and s.o(0) == I8),
        (2, lambda s: s.opt("dilationWFactor", 1) != 1 or s.opt("dilationHFactor", 1) != 1),
    ],
    "FULLY_CONNECTED": [
        (14, lambda s: s.i(1) == T.INT2),
        (13, lambda s: s.i(0) == I16 and s.i(1) == T.INT4 and s.o(0) == I16),
        (12, lambda s: _hybrid(s) and s.ext.get("per_channel")),
        (11, lambda s: s.i(0) == I16 and s.i(1) == I8 and s.o(0) == I16 and s.opt("quantizedBiasType")),
        (8, lambda s: s.ext.get("sparse")),
        (7, lambda s: s.i(0) == I16 and s.i(1) == I16 and s.o(0) == I16),
        (6, lambda s: len(s.inputs) == 2),
        (5, lambda s: s.opt("keepNumDims")),
        (4, lambda s: s.i(0) == I8 and s.i(1) == I8 and s.o(0) == I8),
        (10, lambda s: s.i(0) == I8 and s.i(1) == T.INT4 and s.o(0) == I8),
        (9, lambda s: _hybrid(s) and s.opt("asymmetricQuantizeInputs")),
        (3, _hybrid),
        (2, lambda s: s.opt("weightsFormat") == 1),
    ],
    "TRANSPOSE_CONV": [
        (5, lambda s: s.i(0) == I16 and s.i(1) == I8 and s.o(0) == I16 and s.opt("quantizedBiasType")),
        (4, lambda s: s.opt("fusedActivationFunction")),
        (3, lambda s: len(s.inputs) == 4 and s.i(3) != NOTYPE),
        (2, lambda s: s.i(1) == I8),
    ],
    "DEQUANTIZE": [
        (8, lambda s: s.i(0) == T.UINT4),
        (7, lambda s: s.i(0) == T.INT2),
        (6, lambda s: s.i(0) == T.INT4),
        (3, lambda s: s.i(0) in (I16, F16)),
        (5, lambda s: s.i(0) == I8 and s.ext.get("per_channel")),
        (2, lambda s: s.i(0) == I8),
    ],
    "QUANTIZE": [
        (5, lambda s: T.UINT4 in (s.i(0), s.o(0))),
        (4, lambda s: T.INT4 in (s.i(0), s.o(0))),
        (3, lambda s: s.ext.get("per_channel")),
        (2, lambda s: s.o(0) == I16),
    ],
    "EMBEDDING_LOOKUP": [(4, lambda s: s.i(1) == T.INT4 or s.ext.get("per_channel")),
                         (5, lambda s: s.i(1) == T.INT2)],
    "GATHER": [
        (7, lambda s: s.i(0) == T.INT4), (6, lambda s: s.i(1) == I16), (5, lambda s: s.opt("batchDims")),
        (4, lambda s: s.i(0) == I16), (3, lambda s: s.i(0) == T.BOOL), (2, lambda s: s.i(0) == I8),
    ],
    "SVDF": [(3, lambda s: s.i(0) == I8), (4, lambda s: _hybrid(s) and s.opt("asymmetricQuantizeInputs")),
             (2, _hybrid)],
    "LSTM": [
        (5, lambda s: s.opt("kernelType") == 0 and s.i(0) == I16 and s.i(2) == I8 and s.o(0) == I16),
        (4, lambda s: s.opt("kernelType") == 0 and _hybrid(s, 2) and s.opt("asymmetricQuantizeInputs")),
        (3, lambda s: s.opt("kernelType") == 0 and _hybrid(s, 2)),
        (2, lambda s: s.opt("kernelType") == 1),
    ],
    "UNIDIRECTIONAL_SEQUENCE_LSTM": [
        (5, lambda s: s.i(0) == I16 and s.i(2) == I8 and s.o(0) == I16),
        (4, lambda s: s.opt("diagonalRecurrentTensors")),
        (3, lambda s: _hybrid(s, 2) and s.opt("asymmetricQuantizeInputs")),
        (2, lambda s: _hybrid(s, 2)),
    ],
    "RNN": _RECURRENT_HYBRID,
    "UNIDIRECTIONAL_SEQUENCE_RNN": _RECURRENT_HYBRID,
    "BIDIRECTIONAL_SEQUENCE_RNN": _RECURRENT_HYBRID,
    "BIDIRECTIONAL_SEQUENCE_LSTM": _RECURRENT_HYBRID,
    "BATCH_MATMUL": [(3, lambda s: s.i(0) == I16), (2, lambda s: s.i(0) == I8),
                     (4, lambda s: _hybrid(s) and s.opt("asymmetricQuantizeInputs"))],
    "ADD": [
        (6, lambda s: s.i(0) == F16),
        (5, lambda s: s.i(0) == I16 and not s.ext.get("input_quantized")),
        (4, lambda s: s.i(0) == T.INT64),
        (3, lambda s: s.i(0) == I16 and s.o(0) == I16 and not s.opt("potScaleInt16", True)),
        (2, lambda s: s.i(0) == I8),
    ],
    "SUB": [
        (5, lambda s: s.i(0) == I16 and s.o(0) == I16 and not s.opt("potScaleInt16", True)),
        (4, lambda s: s.i(0) == T.INT64),
        (3, _broadcast_gt4),
        (2, lambda s: s.i(0) == I8),
    ],
    "MUL": [
        (8, lambda s: s.i(0) == F16),
        (7, lambda s: (s.i(0) == I16 and not s.ext.get("input_quantized")) or s.i(0) == T.UINT32),
        (6, lambda s: s.i(0) == T.COMPLEX64),
        (5, lambda s: s.i(0) == T.INT64),
        (4, lambda s: s.i(0) == I16),
        (3, lambda s: s.ext.get("rescale", 0.0) >= 1.0),
        (2, lambda s: s.i(0) == I8),
    ],
    "MAX_POOL_2D": _POOL,
    "AVERAGE_POOL_2D": _POOL,
    "LOGISTIC": _POOL,
    "TANH": _POOL,
    "SOFTMAX": _ladder(fp16=4),
    "CONCATENATION": [(6, lambda s: s.i(0) == F16), (5, lambda s: s.i(0) == T.INT4),
                      (4, lambda s: s.i(0) == T.UINT32)] + _ladder(),
    "MEAN": _ladder(), "MIRROR_PAD": _ladder(), "REDUCE_MAX": _ladder(), "REDUCE_MIN": _ladder(),
    "RELU6": _ladder(), "RSQRT": _ladder(),
    "RELU": [(3, lambda s: s.i(0) == I16), (2, lambda s: s.i(0) in (I8, T.UINT8))],
    "PAD": [(5, lambda s: s.i(0) == T.BOOL), (4, lambda s: len(s.inputs[0].dims) > 4)] + _ladder(),
    "PADV2": [(5, lambda s: s.i(0) == T.BOOL), (4, lambda s: len(s.inputs[0].dims) > 4)] + _ladder(),
    "MAXIMUM": [(4, lambda s: s.i(0) == I16 and s.o(0) == I16), (3, _broadcast_gt4), (2, lambda s: s.i(0) == I8)],
    "MINIMUM": [(4, lambda s: s.i(0) == I16 and s.o(0) == I16), (3, _broadcast_gt4), (2, lambda s: s.i(0) == I8)],
    "RESIZE_BILINEAR": [(4, lambda s: s.i(0) == I16), (3, lambda s: s.opt("halfPixelCenters")),
                        (2, lambda s: s.i(0) == I8)],
    "RESIZE_NEAREST_NEIGHBOR": [(4, lambda s: s.i(0) == I16),
                                (3, lambda s: s.opt("halfPixelCenters") or s.opt("alignCorners")),
                                (2, lambda s: s.i(0) == I8)],
    "STRIDED_SLICE": [
        (8, lambda s: s.opt("offset")), (7, lambda s: s.i(0) == T.UINT32),
        (6, lambda s: s.opt("ellipsisMask") or s.opt("newAxisMask")), (5, lambda s: s.i(0) == T.STRING),
        (4, lambda s: len(s.inputs[0].dims) > 4), (3, lambda s: s.i(0) == T.BOOL), (2, lambda s: s.i(0) == I8),
    ],
    "SPLIT": [(4, lambda s: s.i(1) == I16), (3, lambda s: s.i(1) == T.INT32), (2, lambda s: s.i(1) == I8)],
    "SLICE": [(8, lambda s: s.i(0) == F16), (7, lambda s: s.i(0) == T.INT4), (6, lambda s: s.i(0) == T.UINT32),
              (5, lambda s: len(s.inputs[0].dims) > 4), (4, lambda s: s.i(0) == I16),
              (3, lambda s: s.i(0) == T.STRING), (2, lambda s: s.i(0) == I8)],
    "LESS": _ladder(), "GREATER_EQUAL": _ladder(),
    "SPACE_TO_DEPTH": _ladder(None), "SPLIT_V": _ladder(None), "SUM": _ladder(None),
    "LOG_SOFTMAX": _ladder(None), "GREATER": _ladder(None), "LESS_EQUAL": _ladder(None),
    "SQUARED_DIFFERENCE": _ladder(None), "DEPTH_TO_SPACE": _ladder(None),
    "L2_NORMALIZATION": [(2, lambda s: s.o(0) == I8)],
    "LEAKY_RELU": [(2, lambda s: s.i(0) == I16)],
    "ARG_MAX": [(3, lambda s: s.i(0) == T.BOOL), (2, lambda s: s.i(0) == I8)],
    "ARG_MIN": [(3, lambda s: s.i(0) == T.BOOL), (2, lambda s: s.i(0) == I8)],
    "GELU": [(2, lambda s: s.i(0) in (I8, T.UINT8))],
    "UNPACK": [(2, lambda s: s.i(0) in (I8, T.UINT8)), (3, lambda s: s.i(0) == T.BOOL),
               (4, lambda s: s.i(0) == I16 and s.o(0) == I16), (5, lambda s: s.i(0) in (F16, T.BFLOAT16))],
    "PACK": [(2, lambda s: s.i(0) == I8), (3, lambda s: s.i(0) == I16 and s.o(0) == I16),
             (4, lambda s: s.i(0) == T.UINT32)],
    "TILE": [(3, lambda s: s.i(0) == I8), (2, lambda s: s.i(0) == T.STRING)],
    "SQUEEZE": [(2, lambda s: s.i(0) == T.STRING)],
    "SPACE_TO_BATCH_ND": [(4, lambda s: s.i(0) == I16), (3, lambda s: len(s.inputs[0].dims) != 4),
                          (2, lambda s: s.i(0) == I8)],
    "BATCH_TO_SPACE_ND": [(4, lambda s: s.i(0) == I16), (3, lambda s: len(s.inputs[0].dims) != 4),
                          (2, lambda s: s.i(0) == I8)],
    "GATHER_ND": [(5, lambda s: s.i(0) == T.BOOL), (4, lambda s: s.i(1) == I16), (3, lambda s: s.i(0) == I16),
                  (2, lambda s: s.i(0) == T.STRING)],
    "DIV": [(2, _broadcast_gt4)],
    "TRANSPOSE": [(9, lambda s: s.i(0) == F16), (8, lambda s: len(s.inputs[0].dims) > 6 or s.i(0) == T.BFLOAT16),
                  (7, lambda s: s.i(0) == T.INT4), (6, lambda s: len(s.inputs[0].dims) > 5),
                  (5, lambda s: s.i(0) == I16), (4, lambda s: len(s.inputs[0].dims) > 4),
                  (3, lambda s: s.i(0) == T.BOOL), (2, lambda s: s.i(0) == I8)],
    "EXP": [(2, lambda s: s.i(0) in (I8, I16))], "LOG": [(2, lambda s: s.i(0) in (I8, I16))],
    "REDUCE_PROD": [(2, lambda s: s.i(0) in (I8, I16))], "SQRT": [(2, lambda s: s.i(0) in (I8, I16))],
    "SELECT_V2": [(2, lambda s: s.i(0) == T.UINT32)],
    "WHERE": [(1, lambda s: s.i(0) == T.BOOL), (2, lambda s: True)],
    "RESHAPE": [],
    "DENSIFY": [],
    "HARD_SWISH": [],
    "PRELU": [],
}


def compute_version(op: Operator) -> int | None:
    """The op_version.cc version of one operator, or None for ops this module has no rules for."""
    rules = RULES.get(op.name)
    if rules is None:
        return None
    sig = signature(op)
    for version, cond in rules:
        if cond(sig):
            return version if version != KEEP else op.version
    return 1


# -- runtime_version.cc: the release that introduced each (op, version) ---------------------------
# "OP v1 v2 ..." for consecutive versions from 1; "-" where the table has no entry.
_RUNTIME_TABLE = """
AVERAGE_POOL_2D 1.5.0 1.14.0 2.3.0
BATCH_MATMUL 2.3.0 2.3.0 2.4.0 2.5.0
BROADCAST_TO - 2.5.0 2.5.0
CONV_2D 1.5.0 1.14.0 1.14.0 2.3.0 2.4.0 2.9.0 2.11.0 2.15.0
DEPTHWISE_CONV_2D 1.5.0 1.12.0 1.14.0 2.2.0 2.3.0 2.3.0 2.11.0
ADD 1.5.0 1.14.0 2.4.0 2.6.0 2.13.0 2.23.0
ADD_N 1.14.0
SPACE_TO_BATCH_ND 1.6.0 1.14.0 2.3.0 2.12.0
SUB 1.6.0 1.14.0 2.3.0 2.4.0 2.4.0
DENSIFY 2.2.0
DIV 1.6.0 2.3.0
BATCH_TO_SPACE_ND 1.6.0 1.14.0 2.3.0 2.12.0
CAST 1.5.0 2.7.0 2.8.0 2.9.0 2.12.0 2.15.0 2.17.0 2.21.0
CONCATENATION 1.5.0 1.14.0 2.3.0 2.14.0 2.21.0 2.23.0
DEPTH_TO_SPACE 2.1.0 2.5.0
EMBEDDING_LOOKUP 1.13.0 1.14.0 1.14.0 2.18.0 2.21.0
EMBEDDING_LOOKUP_SPARSE 1.5.0
FAKE_QUANT 1.5.0 1.10.0
FULLY_CONNECTED 1.5.0 1.10.0 1.14.0 1.14.0 2.0.0 2.1.0 2.3.0 2.3.0 2.3.0 2.11.0 2.15.0 2.17.0 2.18.0 2.21.0
GATHER 1.6.0 1.14.0 1.15.0 2.4.0 2.5.0 2.13.0 2.15.0
GATHER_ND 1.14.0 2.3.0 2.5.0 2.13.0 2.16.0
HASHTABLE_LOOKUP 1.5.0
SVDF 1.5.0 1.14.0 2.2.0 2.3.0
L2_NORMALIZATION 1.5.0 1.14.0
L2_POOL_2D 1.5.0
LOCAL_RESPONSE_NORMALIZATION 1.5.0
MAX_POOL_2D 1.5.0 1.14.0 2.3.0
MAXIMUM 1.14.0 1.14.0 2.3.0 2.3.0
MINIMUM 1.14.0 1.14.0 2.3.0 2.3.0
MUL 1.5.0 1.14.0 1.15.0 2.3.0 2.6.0 2.11.0 2.13.0 2.23.0
NON_MAX_SUPPRESSION_V4 2.1.0
NON_MAX_SUPPRESSION_V5 2.1.0
PAD 1.5.0 1.14.0 2.4.0 2.6.0 2.20.0
TILE 1.10.1 2.2.0 2.8.0
PADV2 1.9.0 1.14.0 2.4.0 2.6.0 2.20.0
RESHAPE 1.5.0
SOFTMAX 1.5.0 1.14.0 2.3.0 2.23.0
SPACE_TO_DEPTH 1.5.0 1.14.0
TRANSPOSE 1.6.0 1.14.0 1.15.0 2.3.0 2.4.0 2.12.0 2.14.4 2.22.0 2.23.0
LSTM 1.7.0 1.10.0 1.14.0 2.3.0
UNIDIRECTIONAL_SEQUENCE_LSTM 1.13.1 1.14.0 2.3.0 2.12.0
BIDIRECTIONAL_SEQUENCE_LSTM 1.14.0 1.14.0 1.14.0
BIDIRECTIONAL_SEQUENCE_RNN 1.14.0 1.14.0 2.3.0
MEAN 1.6.0 1.14.0 2.4.0
SUM 1.10.0 1.15.0
REDUCE_MAX 1.11.0 1.14.0 2.5.0
REDUCE_MIN 1.11.0 1.14.0 2.5.0
REDUCE_PROD 1.11.0 2.6.0
REDUCE_ANY 1.11.0
RELU6 1.5.0 1.14.0 2.5.0
RESIZE_BILINEAR 1.7.0 1.14.0 2.2.0 2.5.0
RESIZE_NEAREST_NEIGHBOR 1.13.1 1.14.0 2.3.0 2.4.0
RNN 1.5.0 1.14.0 2.3.0
SKIP_GRAM 1.5.0
SQUEEZE 1.6.0 2.5.0
SPLIT 1.5.0 1.14.0 1.14.0 2.3.0
SPLIT_V 1.13.1 2.3.0
STRIDED_SLICE 1.6.0 1.14.0 2.1.0 2.2.0 2.5.0 2.6.0 2.14.0 2.14.0
TOPK_V2 1.7.0 1.14.0 2.13.0
ARG_MAX 1.9.0 1.14.0 2.9.0
ARG_MIN 1.9.0 1.14.0 2.9.0
TRANSPOSE_CONV 1.9.0 2.2.0 2.3.0 2.13.0 2.15.0
SPARSE_TO_DENSE 1.9.0 1.14.0 1.15.0
EXPAND_DIMS 1.10.0
PACK 1.11.0 1.14.0 2.3.0 2.13.0
SHAPE 1.10.0
SLICE 1.14.0 1.14.0 1.14.0 2.4.0 2.5.0 2.14.0 2.21.0 2.23.0
TANH 1.14.0 1.14.0 2.3.0
ONE_HOT 1.11.0
UNPACK 1.11.0 1.14.0 2.2.0 2.3.0 2.22.0
LEAKY_RELU 1.13.1 2.3.0
LOGISTIC 1.14.0 1.14.0 2.3.0
LOG_SOFTMAX 1.14.0 1.14.0
LSH_PROJECTION 1.5.0
SQUARED_DIFFERENCE 1.13.1 2.5.0
MIRROR_PAD 1.13.1 2.3.0 2.12.0
UNIQUE 1.14.0
UNIDIRECTIONAL_SEQUENCE_RNN 1.14.0 1.14.0 2.3.0
WHERE 1.14.0 2.8.0
DEQUANTIZE 1.13.1 1.14.0 1.15.0 2.2.0 2.7.0 2.18.0 2.21.0 2.22.0
REVERSE_SEQUENCE 1.14.0
EQUAL 1.14.0 1.14.0 2.3.0 2.13.0 2.21.0
NOT_EQUAL 1.14.0 1.14.0 2.3.0 2.21.0
GREATER 1.14.0 1.14.0
GREATER_EQUAL 1.14.0 1.14.0 2.13.0
LESS 1.14.0 1.14.0 2.13.0
LESS_EQUAL 1.14.0 1.14.0
SCATTER_ND 2.1.0
SEGMENT_SUM 2.2.0
SELECT 1.14.0 1.14.0 2.12.0 2.12.0
SELECT_V2 2.2.0 2.12.0
IF 1.15.0
FLOOR_DIV 1.14.0 1.14.0 2.13.0
FLOOR 1.9.0
CEIL 1.14.0
MATRIX_DIAG 1.14.0
MATRIX_SET_DIAG 1.14.0
ELU 1.14.0
QUANTIZE 1.14.0 1.15.0 2.7.0 2.21.0 2.21.0 2.21.0
ROUND 1.14.0
RELU 1.5.0 2.1.0 2.5.0
RELU_N1_TO_1 1.5.0
RELU_0_TO_1 2.10.0
PRELU 1.8.0
EXP 1.7.0 2.12.0
COS 1.14.0 2.23.0
NEG 1.9.0
POW 1.10.0
LOGICAL_OR 1.11.0
LOGICAL_AND 1.11.0
LOGICAL_NOT 1.11.0
FLOOR_MOD 1.13.0 2.13.0
RANGE 1.13.0 2.14.0
SIN 1.9.0 2.23.0
LOG 1.14.0 2.15.0
SQRT 1.10.0 2.21.0
RSQRT 1.10.0 2.5.0 2.15.0
SQUARE 1.12.0
ZEROS_LIKE 1.12.0
ABS 1.13.0 2.4.0 2.5.0 2.6.0 2.12.0
HARD_SWISH 1.15.0
FILL 1.13.0 2.3.0 2.5.0 2.12.0
REVERSE_V2 1.14.0 2.2.0 2.5.0
RANK 1.14.0
WHILE 1.15.0
CUMSUM 2.4.0
CALL_ONCE 2.5.0
RFFT2D 2.5.0
CONV_3D 2.5.0
IMAG 2.5.0
REAL 2.5.0
COMPLEX_ABS 2.5.0
HASHTABLE 2.5.0
HASHTABLE_FIND 2.5.0
HASHTABLE_IMPORT 2.5.0
HASHTABLE_SIZE 2.5.0
REDUCE_ALL 2.6.0
CONV_3D_TRANSPOSE 2.6.0
VAR_HANDLE 2.6.0
READ_VARIABLE 2.6.0
ASSIGN_VARIABLE 2.6.0
BROADCAST_ARGS 2.6.0
RANDOM_STANDARD_NORMAL 2.8.0
BUCKETIZE 2.8.0
RANDOM_UNIFORM 2.8.0
MULTINOMIAL 2.8.0
GELU 2.9.0 2.9.0
DYNAMIC_UPDATE_SLICE 2.9.0 2.17.0 2.19.0 2.20.0 2.21.0 2.22.0
UNSORTED_SEGMENT_PROD 2.10.0
UNSORTED_SEGMENT_MAX 2.10.0
UNSORTED_SEGMENT_MIN 2.11.0
UNSORTED_SEGMENT_SUM 2.10.0
ATAN2 2.10.0
SIGN 2.11.0 2.12.0
BITCAST 2.13.0
BITWISE_XOR 2.13.0
RIGHT_SHIFT 2.13.0
"""


def _parse_runtime_table(text: str) -> dict[str, dict[int, tuple[int, ...]]]:
    table: dict[str, dict[int, tuple[int, ...]]] = {}
    for line in text.strip().splitlines():
        op, *releases = line.split()
        table[op] = {v: tuple(int(x) for x in r.split(".")) for v, r in enumerate(releases, 1) if r != "-"}
    return table


RUNTIME_VERSIONS = _parse_runtime_table(_RUNTIME_TABLE)
# The interpreter registers a version range per op; the runtime table's highest version stands
# in for it (e.g. LSTM: op_version.cc can say 5, the runtime registers 1-4).
MAX_VERSION = {op: max(vs) for op, vs in RUNTIME_VERSIONS.items()}


def runtime_version(op_name: str, version: int) -> tuple[int, ...] | None:
    return RUNTIME_VERSIONS.get(op_name, {}).get(version)


def update_versions(model: Model) -> dict[str, tuple[int, int]]:
    """Recompute op-code versions (max over the operators sharing a code) and refresh
    ``min_runtime_version`` when the model carries one. Returns {op: (old, new)} for changes."""
    computed: dict[int, int] = {}
    for op in model.operators():
        v = compute_version(op)
        if v is not None:
            computed[op.opcode_index] = max(computed.get(op.opcode_index, 1), v)
    changes: dict[str, tuple[int, int]] = {}
    for index, v in computed.items():
        oc = model.operator_codes[index]
        name = op_name(oc)
        v = min(v, MAX_VERSION.get(name, v))
        old = int(oc.version or 1)
        if v != old:
            oc.version = v
            changes[name] = (old, v)
    if model.min_runtime_version is not None:
        mrv = min_runtime_version(model)
        if mrv is not None:
            model.min_runtime_version = mrv
    return changes


def min_runtime_version(model: Model) -> str | None:
    """The highest release any (op, version) pair of the model needs; None if none is known."""
    best: tuple[int, ...] | None = None
    for op in model.operators():
        r = runtime_version(op.name, op.version)
        if r is not None and (best is None or r > best):
            best = r
    return None if best is None else ".".join(map(str, best))
