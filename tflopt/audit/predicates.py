"""The generic predicate kinds rules are written in, and the op view they read.

Each kind is ``fn(view, **params) -> list[str]``: an empty list when the op satisfies it,
otherwise one short detail per violation (the rule's own text says what the rule is).
Tensor selectors (``which``): ``in:0``, ``in:1|2``, ``out:0``, ``inputs``, ``outputs``,
``runtime_inputs`` (present, non-constant), ``const_inputs``, ``activations`` (runtime
inputs and outputs), ``all``.
"""
from __future__ import annotations

import operator
from typing import Callable

import numpy as np

from ..schema import fb
from .shapes import dynamic_shape

_CMP: dict[str, Callable] = {
    "eq": operator.eq, "ne": operator.ne, "le": operator.le, "lt": operator.lt,
    "ge": operator.ge, "gt": operator.gt,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
    "multiple_of": lambda a, b: a % b == 0,
}
_ENUMS = {
    "activation": fb.ActivationFunctionType,
    "padding": fb.Padding,
    "weights_format": fb.FullyConnectedOptionsWeightsFormat,
    "mirror_pad_mode": fb.MirrorPadMode,
}
# Ops whose output stays a compile-time constant when their input is one: delegates that
# unpack weights (XNNPACK) treat their outputs as static.
_FOLDING_OPS = ("DEQUANTIZE", "DENSIFY")


def _enum_name(enum, value) -> str:
    for k, v in vars(enum).items():
        if not k.startswith("_") and v == value:
            return k
    return str(value)


class OpView:
    """One operator as the rules see it, with the graph facts some rules need."""

    def __init__(self, op, producers: dict, consumers: dict, facts: dict | None = None):
        self.op = op
        # Per-subgraph facts computed once and shared by the subgraph's views.
        self.facts = {} if facts is None else facts
        self.sg = op.subgraph
        self.name = op.name
        self.version = op.version
        self._producers = producers
        self._consumers = consumers

    # -- tensors ----------------------------------------------------------------------------
    def tensor(self, index: int):
        return self.sg.tensors[index]

    def is_const(self, t: int, folded: bool | str = False) -> bool:
        """``folded=True``: outputs of DEQUANTIZE / DENSIFY of constants count as constant
        (XNNPACK unpacks them). ``folded="float16"``: only a DEQUANTIZE of a constant float16
        tensor does (the GPU delegate's partition helper points its consumers at the fp16
        constant before checking them)."""
        # A loop, not recursion: chains of folding ops can be long, and a corrupt graph can
        # feed an op its own output (the verifier refuses cycles, the walk must not hang on one).
        seen = set()
        while t not in seen:
            seen.add(t)
            if self.sg.tensors[t].is_constant:
                return True
            if not folded:
                return False
            p = self._producers.get(t)
            if p is None or p.name not in _FOLDING_OPS or not p.inputs or p.inputs[0] < 0:
                return False
            if folded == "float16":
                src = self.sg.tensors[p.inputs[0]]
                return p.name == "DEQUANTIZE" and src.is_constant and src.type_name == "FLOAT16"
            t = p.inputs[0]
        return False

    def select(self, which: str, folded: bool = False) -> list[tuple[str, int]]:
        """(label, tensor index) pairs for a selector, omitted operands skipped."""
        if "+" in which:
            return [x for part in which.split("+") for x in self.select(part, folded)]
        ins = [(f"input {i}", t) for i, t in enumerate(self.op.inputs) if t >= 0]
        outs = [(f"output {i}", t) for i, t in enumerate(self.op.outputs) if t >= 0]
        if which.startswith("in:") or which.startswith("out:"):
            side, pos = which.split(":")
            seq = self.op.inputs if side == "in" else self.op.outputs
            label = "input" if side == "in" else "output"
            picked = []
            for p in pos.split("|"):
                i = int(p)
                if i < 0:
                    i += len(seq)
                if 0 <= i < len(seq) and seq[i] >= 0:
                    picked.append((f"{label} {i}", seq[i]))
            return picked
        if which == "inputs":
            return ins
        if which == "outputs":
            return outs
        if which == "runtime_inputs":
            return [(l, t) for l, t in ins if not self.is_const(t, folded)]
        if which == "const_inputs":
            return [(l, t) for l, t in ins if self.is_const(t, folded)]
        if which == "activations":
            return [(l, t) for l, t in ins if not self.is_const(t, folded)] + outs
        if which == "all":
            return ins + outs
        raise ValueError(f"unknown tensor selector {which!r}")

    def option(self, name: str, default=None):
        opts = self.op.options
        return default if opts is None else getattr(opts, name, default)

    def consumers(self, t: int) -> list:
        return self._consumers.get(t, [])

    def producer(self, t: int):
        return self._producers.get(t)


def _describe(v: OpView, label: str, t: int) -> str:
    tensor = v.tensor(t)
    return f"{label} {tensor.type_name}{list(tensor.shape)}"


# -- predicate kinds ------------------------------------------------------------------------
def op_in(v: OpView, names) -> list[str]:
    return [] if v.name in names else [f"{v.name} is not in the supported list"]


def op_not_in(v: OpView, names) -> list[str]:
    return [f"{v.name} is not supported"] if v.name in names else []


def max_version(v: OpView, versions: dict | None = None, default: int | None = None) -> list[str]:
    limit = (versions or {}).get(v.name, default)
    if limit is not None and v.version > limit:
        return [f"{v.name} v{v.version} (at most v{limit})"]
    return []


def version_in(v: OpView, versions: dict) -> list[str]:
    allowed = versions.get(v.name)
    if allowed is not None and v.version not in allowed:
        return [f"{v.name} v{v.version} (only v{'/'.join(map(str, allowed))})"]
    return []


def version_not_in(v: OpView, versions: dict) -> list[str]:
    if v.version in versions.get(v.name, ()):
        return [f"{v.name} v{v.version}"]
    return []


def types(v: OpView, which: str, allowed, folded: bool = False) -> list[str]:
    return [f"{_describe(v, l, t)} not {'/'.join(allowed)}" for l, t in v.select(which, folded)
            if v.tensor(t).type_name not in allowed]


def same_types(v: OpView, which: str) -> list[str]:
    got = [(l, v.tensor(t).type_name) for l, t in v.select(which)]
    if len({ty for _, ty in got}) > 1:
        return ["mixed types " + ", ".join(f"{l} {ty}" for l, ty in got)]
    return []


def rank(v: OpView, which: str, min: int | None = None, max: int | None = None) -> list[str]:
    out = []
    for l, t in v.select(which):
        r = len(v.tensor(t).shape)
        if (min is not None and r < min) or (max is not None and r > max):
            bounds = f"{min}" if min == max else f"{min if min is not None else 0}..{max if max is not None else 'any'}"
            out.append(f"{_describe(v, l, t)} has rank {r} (needs {bounds})")
    return out


def static_shape(v: OpView, which: str = "all") -> list[str]:
    out = []
    for l, t in v.select(which):
        sig = v.tensor(t).shape_signature
        if sig is not None and any(d < 0 for d in sig):
            out.append(f"{l} has dynamic shape {list(sig)}")
    return out


def innermost_dims(v: OpView, which: str = "activations", n: int = 3,
                   batch_from_rank: int | None = None) -> list[str]:
    """Only the ``n`` innermost dimensions may exceed 1; with ``batch_from_rank``, the first
    (batch) dimension may too once the tensor has at least that rank."""
    out = []
    for l, t in v.select(which):
        shape = v.tensor(t).shape
        outer = list(shape[:-n]) if len(shape) > n else []
        free = batch_from_rank is not None and len(shape) >= batch_from_rank
        if free:
            outer = outer[1:]
        if any(d > 1 for d in outer):
            also = " and the batch" if free else ""
            out.append(f"{_describe(v, l, t)}: only the {n} innermost dimensions{also} may exceed 1")
    return out


def leading_ones_removed(v: OpView, a: str = "in:0", b: str = "out:0") -> list[str]:
    """``b``'s shape is ``a``'s with some of its leading 1s dropped (a squeeze that needs no
    relayout): both shapes agree once their leading 1s are stripped."""
    sa, sb = v.select(a), v.select(b)
    if not sa or not sb:
        return []
    x, y = list(v.tensor(sa[0][1]).shape), list(v.tensor(sb[0][1]).shape)

    def strip(s):
        k = 0
        while k < len(s) and s[k] == 1:
            k += 1
        return s[k:]
    if strip(x) == strip(y) and len(y) <= len(x):
        return []
    return [f"{sa[0][0]} {x} -> {sb[0][0]} {y} removes more than leading 1s"]


def same_shape(v: OpView, which: str, like: str = "out:0", or_const_scalar: bool = False,
               folded: bool | str = False) -> list[str]:
    """Each operand has ``like``'s shape (or, with ``or_const_scalar``, is a constant scalar;
    ``folded`` as in ``OpView.is_const``)."""
    ref = v.select(like)
    if not ref:
        return []
    want = list(v.tensor(ref[0][1]).shape)
    out = []
    for l, t in v.select(which):
        shape = list(v.tensor(t).shape)
        if shape == want or (or_const_scalar and not shape and v.is_const(t, folded)):
            continue
        alt = " nor a constant scalar" if or_const_scalar else ""
        out.append(f"{_describe(v, l, t)} is not {ref[0][0]}'s shape {want}{alt}")
    return out


def option(v: OpView, field: str, cmp: str, value, enum: str | None = None, missing=None) -> list[str]:
    got = v.option(field, missing)
    if got is None:
        return []
    if enum is not None:
        e = _ENUMS[enum]
        name = _enum_name(e, got)
        if not _CMP[cmp](name, value):
            return [f"{field}={name}"]
        return []
    if isinstance(got, bool) or isinstance(value, bool):
        got = bool(got)
    if not _CMP[cmp](got, value):
        return [f"{field}={got!r}"]
    return []


def options_equal(v: OpView, a: str, b: str) -> list[str]:
    x, y = v.option(a), v.option(b)
    return [] if x == y else [f"{a}={x} but {b}={y}"]


def const(v: OpView, which: str, folded: bool = False) -> list[str]:
    return [f"{l} is not constant" for l, t in v.select(which) if not v.is_const(t, folded)]


def not_const(v: OpView, which: str, folded: bool = False) -> list[str]:
    return [f"{l} is constant" for l, t in v.select(which) if v.is_const(t, folded)]


def count(v: OpView, which: str, min: int | None = None, max: int | None = None,
          folded: bool = False) -> list[str]:
    n = len(v.select(which, folded))
    if (min is not None and n < min) or (max is not None and n > max):
        want = f"{min}" if min == max else f"{min if min is not None else 0}..{max if max is not None else 'any'}"
        return [f"{n} {which.replace('_', ' ')} (needs {want})"]
    return []


def arity(v: OpView, inputs: tuple | None = None, outputs: tuple | None = None) -> list[str]:
    """Operand counts as the kernel sees them (omitted optional operands included)."""
    out = []
    for label, seq, bounds in (("inputs", v.op.inputs, inputs), ("outputs", v.op.outputs, outputs)):
        if bounds is None:
            continue
        lo, hi = bounds
        if not lo <= len(seq) <= hi:
            out.append(f"{len(seq)} {label} (needs {lo if lo == hi else f'{lo}..{hi}'})")
    return out


def per_tensor_quant(v: OpView, which: str, types=("INT8", "UINT8")) -> list[str]:
    out = []
    for l, t in v.select(which):
        tensor = v.tensor(t)
        if tensor.type_name not in types:
            continue
        q = tensor.quantization
        if q is None or q.scale.size != 1 or q.axis != 0:
            n = 0 if q is None else q.scale.size
            out.append(f"{l} is not per-tensor quantized ({n} scales)")
    return out


def quantized(v: OpView, which: str, types=("INT8", "UINT8", "INT16")) -> list[str]:
    return [f"{l} has no quantization parameters" for l, t in v.select(which)
            if v.tensor(t).type_name in types and not v.tensor(t).is_quantized]


def zero_point(v: OpView, which: str, value: int = 0, types=("INT8", "UINT8", "INT16")) -> list[str]:
    out = []
    for l, t in v.select(which):
        tensor = v.tensor(t)
        q = tensor.quantization
        if tensor.type_name in types and q is not None and q.zero_point.size and np.any(q.zero_point != value):
            out.append(f"{l} zero point {int(q.zero_point[q.zero_point != value][0])} (needs {value})")
    return out


def quant_axis(v: OpView, which: str, axis: int) -> list[str]:
    out = []
    for l, t in v.select(which):
        tensor = v.tensor(t)
        q = tensor.quantization
        if q is not None and q.scale.size > 1:
            if q.axis != axis:
                out.append(f"{l} quantized along axis {q.axis} (needs {axis})")
            elif q.axis < len(tensor.shape) and q.scale.size != tensor.shape[q.axis]:
                out.append(f"{l} has {q.scale.size} scales for {tensor.shape[q.axis]} channels")
    return out


def _scale(v: OpView, which: str) -> float | None:
    sel = v.select(which)
    if not sel:
        return None
    q = v.tensor(sel[0][1]).quantization
    return float(q.scale[0]) if q is not None and q.scale.size else None


def scale_ratio(v: OpView, num, den: str, min: float, max: float, closed: bool = False) -> list[str]:
    """scale(num...) / scale(den) in [min, max) (or [min, max] with ``closed``); only when
    every named tensor is quantized with the same type."""
    nums = [num] if isinstance(num, str) else list(num)
    names = {v.tensor(t).type_name for w in nums + [den] for _, t in v.select(w)}
    if len(names) != 1 or names.pop() not in ("INT8", "UINT8"):
        return []
    scales = [_scale(v, w) for w in nums]
    d = _scale(v, den)
    if d is None or any(s is None for s in scales) or d == 0:
        return []
    r = float(np.prod(scales)) / d
    ok = min <= r <= max if closed else min <= r < max
    return [] if ok else [f"scale ratio {r:.6g} outside [{min:g}, {max:g}{']' if closed else ')'}"]


def values(v: OpView, which: str, cmp: str, value, require_const: bool = True,
           rows: list[int] | None = None) -> list[str]:
    """Every element of a constant operand (or of the given rows of it) satisfies ``cmp``."""
    out = []
    for l, t in v.select(which):
        data = v.tensor(t).data
        if data is None:
            if require_const:
                out.append(f"{l} is not constant")
            continue
        arr = np.asarray(data)
        if rows is not None and arr.ndim >= 1:
            arr = arr[[i for i in rows if i < arr.shape[0]]]
        arr = arr.reshape(-1)
        if cmp in ("in", "not_in"):
            ok = np.isin(arr, value) == (cmp == "in")
        else:
            ok = _CMP[cmp](arr, value)
        bad = arr[~ok]
        if bad.size:
            out.append(f"{l} holds {bad[:4].tolist()} ({cmp} {value} required)")
    return out


def values_any(v: OpView, which: str, value) -> list[str]:
    """Some element of a constant operand is in ``value`` (a ``when`` condition: "reduces over
    the channels")."""
    out = []
    for l, t in v.select(which):
        data = v.tensor(t).data
        if data is None or not np.isin(np.asarray(data), value).any():
            out.append(f"{l} holds none of {value}")
    return out


def values_one_of(v: OpView, which: str, allowed: list) -> list[str]:
    out = []
    for l, t in v.select(which):
        data = v.tensor(t).data
        if data is None:
            out.append(f"{l} is not constant")
            continue
        got = np.asarray(data).reshape(-1).tolist()
        if got not in [list(a) for a in allowed]:
            out.append(f"{l} is {got} (allowed: {', '.join(map(str, allowed))})")
    return out


def dim(v: OpView, which: str, axis: int, cmp: str, value) -> list[str]:
    out = []
    for l, t in v.select(which):
        shape = v.tensor(t).shape
        if -len(shape) <= axis < len(shape) and not _CMP[cmp](shape[axis], value):
            out.append(f"{_describe(v, l, t)} dimension {axis} is {shape[axis]} ({cmp} {value} required)")
    return out


def dims_equal(v: OpView, a: str, axis_a: int, b: str, axis_b: int, times: str | None = None) -> list[str]:
    """dim a == dim b (times the integer option ``times``, e.g. a depth multiplier)."""
    sa, sb = v.select(a), v.select(b)
    if not sa or not sb:
        return []
    x, y = v.tensor(sa[0][1]).shape, v.tensor(sb[0][1]).shape
    if not (-len(x) <= axis_a < len(x) and -len(y) <= axis_b < len(y)):
        return []
    k = v.option(times, 1) if times else 1
    if x[axis_a] == y[axis_b] * k:
        return []
    by = f" x {times} {k}" if times else ""
    return [f"{sa[0][0]} dim {axis_a} = {x[axis_a]} but {sb[0][0]} dim {axis_b} = {y[axis_b]}{by}"]


def same_rank(v: OpView, a: str, b: str) -> list[str]:
    sa, sb = v.select(a), v.select(b)
    if not sa or not sb:
        return []
    x, y = len(v.tensor(sa[0][1]).shape), len(v.tensor(sb[0][1]).shape)
    return [] if x == y else [f"{sa[0][0]} rank {x} but {sb[0][0]} rank {y}"]


def same_quant(v: OpView, which: str) -> list[str]:
    seen = set()
    for _, t in v.select(which):
        q = v.tensor(t).quantization
        if q is None or q.scale.size != 1:
            return []
        seen.add((float(q.scale[0]), int(q.zero_point[0]) if q.zero_point.size else 0))
    return [f"scales/zero points differ: {sorted(seen)}"] if len(seen) > 1 else []


def sparse(v: OpView, which: str) -> list[str]:
    return [f"{l} is stored sparse" for l, t in v.select(which) if v.tensor(t).sparsity is not None]


def densified(v: OpView, which: str = "inputs") -> list[str]:
    """Operands produced by a DENSIFY, directly or through DEQUANTIZE (sparse stored weights)."""
    out = []
    for l, t in v.select(which):
        seen = set()
        p = v.producer(t)
        while p is not None and id(p) not in seen:  # iterative walk up the folding chain
            seen.add(id(p))
            if p.name == "DENSIFY":
                out.append(f"{l} is sparse weights expanded by DENSIFY")
                break
            if p.name != "DEQUANTIZE" or not p.inputs or p.inputs[0] < 0:
                break
            p = v.producer(p.inputs[0])
    return out


def no_mutual_broadcast(v: OpView, a: str = "in:0", b: str = "in:1") -> list[str]:
    sa, sb = v.select(a), v.select(b)
    if not sa or not sb:
        return []
    x, y = v.tensor(sa[0][1]).shape, v.tensor(sb[0][1]).shape
    if len(x) != len(y):
        return []
    if all(p >= q for p, q in zip(x, y)) or all(q >= p for p, q in zip(x, y)):
        return []
    return [f"shapes {list(x)} and {list(y)} broadcast both ways"]


def custom_code_in(v: OpView, names) -> list[str]:
    code = v.op.custom_code
    return [] if code in names else [f"custom op {code!r} is not one the delegate implements"]


def option_le_option(v: OpView, a: str, b: str) -> list[str]:
    x, y = v.option(a), v.option(b)
    return [] if x is None or y is None or x <= y else [f"{a}={x} > {b}={y}"]


def pool_1x1_stride(v: OpView) -> list[str]:
    if v.option("filterWidth") == 1 and v.option("filterHeight") == 1 and \
            max(v.option("strideW", 1), v.option("strideH", 1)) > 1:
        return [f"1x1 filter with stride {v.option('strideH')}x{v.option('strideW')}"]
    return []


def conv_types(v: OpView, dynamic_quant: bool = True) -> list[str]:
    """Input and output share a type, and the filter has it too, except float input with an
    int8 filter (dynamically quantized) where the delegate allows that."""
    i, f, o = (v.select(w) for w in ("in:0", "in:1", "out:0"))
    if not (i and f and o):
        return []
    ti, tf, to = (v.tensor(x[0][1]).type_name for x in (i, f, o))
    dyn = dynamic_quant and ti == "FLOAT32" and tf == "INT8"
    if ti != to or (ti != tf and not dyn):
        return [f"input {ti}, filter {tf}, output {to}"]
    return []


def fc_types(v: OpView) -> list[str]:
    i, f, o = (v.select(w) for w in ("in:0", "in:1", "out:0"))
    if not (i and f and o):
        return []
    ti, tf, to = (v.tensor(x[0][1]).type_name for x in (i, f, o))
    dyn = ti == "FLOAT32" and tf in ("INT8", "INT4")
    srq = ti == "INT8" and tf in ("INT8", "INT4")
    if ti != to or (ti != tf and not (dyn or srq)):
        return [f"input {ti}, filter {tf}, output {to}"]
    return []


def space_to_depth_divisible(v: OpView) -> list[str]:
    b = v.option("blockSize") or 0
    shape = v.tensor(v.op.inputs[0]).shape if v.op.inputs and v.op.inputs[0] >= 0 else ()
    if b > 1 and len(shape) >= 3 and (shape[1] % b or shape[2] % b):
        return [f"input {list(shape)} not divisible by block {b}"]
    return []


def maxpool_same_filter(v: OpView, limit: int = 13) -> list[str]:
    pad = v.option("padding")
    if pad is not None and _enum_name(fb.Padding, pad) == "SAME" and \
            max(v.option("filterWidth", 0), v.option("filterHeight", 0)) >= limit:
        return [f"SAME padding with a {v.option('filterHeight')}x{v.option('filterWidth')} filter"]
    return []


def dw_dilation_stride(v: OpView) -> list[str]:
    dilated = max(v.option("dilationWFactor", 1), v.option("dilationHFactor", 1)) > 1
    strided = max(v.option("strideW", 1), v.option("strideH", 1)) > 1
    return ["dilation with a stride above 1"] if dilated and strided else []


def dw_multiplier(v: OpView, dilated_ok: bool = False) -> list[str]:
    """depth_multiplier != 1 only on a 4-D 1-channel input (and, unless ``dilated_ok``, undilated)."""
    m = v.option("depthMultiplier", 1) or 1
    if m == 1:
        return []
    dilated = max(v.option("dilationWFactor", 1), v.option("dilationHFactor", 1)) > 1
    shape = v.tensor(v.op.inputs[0]).shape
    if (dilated_ok or not dilated) and len(shape) == 4 and shape[3] == 1:
        return []
    return [f"depth_multiplier={m} with input {list(shape)}" + (" and dilation" if dilated else "")]


def rank_in(v: OpView, which: str, ranks) -> list[str]:
    return [f"{_describe(v, l, t)} has rank {len(v.tensor(t).shape)} (needs {'/'.join(map(str, ranks))})"
            for l, t in v.select(which) if len(v.tensor(t).shape) not in ranks]


def cast_types(v: OpView, allowed) -> list[str]:
    i, o = v.select("in:0"), v.select("out:0")
    if not (i and o):
        return []
    pair = [v.tensor(i[0][1]).type_name, v.tensor(o[0][1]).type_name]
    return [] if pair in [list(a) for a in allowed] else [f"{pair[0]} -> {pair[1]}"]


def options_not_both(v: OpView, a: str, b: str) -> list[str]:
    return [f"{a} and {b} both set"] if v.option(a) and v.option(b) else []


KINDS: dict[str, Callable[..., list[str]]] = {
    f.__name__: f for f in (
        op_in, op_not_in, max_version, version_in, version_not_in, types, same_types, rank, static_shape,
        innermost_dims, leading_ones_removed, same_shape, option, options_equal, const, not_const, count, arity,
        per_tensor_quant, quantized, zero_point, quant_axis, scale_ratio, values, values_any, values_one_of, dim,
        dims_equal, same_rank, same_quant, sparse, no_mutual_broadcast, custom_code_in, option_le_option,
        pool_1x1_stride, conv_types, fc_types, space_to_depth_divisible, maxpool_same_filter,
        dw_dilation_stride, dw_multiplier, rank_in, cast_types, options_not_both, dynamic_shape, densified,
    )
}
# Graph-phase kinds, evaluated by the engine once every op has its local verdict.
GRAPH_KINDS = ("unpacked_weights_consumers",)

# The category each kind reports its failures under (JSON ``reasons[].category``).
CATEGORY = {
    "op_in": "op", "op_not_in": "op", "custom_code_in": "op", "max_version": "op version",
    "version_in": "op version", "version_not_in": "op version", "types": "tensor type", "same_types": "tensor type",
    "rank": "rank", "rank_in": "rank", "innermost_dims": "rank", "cast_types": "tensor type", "same_rank": "rank", "static_shape": "dynamic shape",
    "dynamic_shape": "dynamic shape",
    "per_tensor_quant": "quantization", "quantized": "quantization", "zero_point": "quantization",
    "quant_axis": "quantization", "scale_ratio": "quantization", "same_quant": "quantization",
    "unpacked_weights_consumers": "graph",
}


def category(kind: str) -> str:
    return CATEGORY.get(kind, "parameter")
