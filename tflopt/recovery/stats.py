"""Layer statistics from calibration data: each weighted layer's input Hessian H = X^T X.

A layer is a weighted op (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV,
BATCH_MATMUL with a constant right operand) seen as a matrix product ``Y = W2 @ X^T``:

* ``W2`` is the weight as [output channels, reduction] (``to2d`` / ``from2d`` convert from
  and to the TFLite layout), and
* ``X`` holds one row per output position: im2col patches for convolutions (gathered with
  index arrays, zero padding included), the flattened input for fully connected layers.

Depthwise convolutions have one small H per input channel ([C, kh*kw, kh*kw]); every other
kind shares one H over all output channels.

Layers are gathered in graph order in *waves*: the LiteRT interpreter runs the model as it
is now (earlier waves already compressed), each sample updates the H of every layer of the
wave and is dropped, so memory is one H per layer of the wave and never X.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from tflopt.schema import TensorType

ACTIVATIONS: dict[int, Callable[[np.ndarray], np.ndarray] | None] = {
    0: lambda y: y,
    1: lambda y: np.maximum(y, 0.0),
    2: lambda y: np.clip(y, -1.0, 1.0),
    3: lambda y: np.clip(y, 0.0, 6.0),
    4: np.tanh,
}
# Output positions per sample that enter H (more are subsampled at random, seeded).
MAX_POSITIONS = 4096
# Largest reduction size handled (H is reduction^2 float64: 4096 -> 128 MB).
MAX_COLUMNS = 4096


@dataclass
class LayerSpec:
    """How one weight slot maps to a matrix product, and where its input comes from."""

    slot: object                     # tflopt.weights.WeightSlot
    kind: str                        # conv | depthwise | fc | tconv | bmm
    input_index: int                 # activation tensor read by the op
    output_index: int
    weight_shape: tuple[int, ...]
    rows: int                        # output channels
    cols: int                        # reduction size
    bias_position: int | None
    activation: int = 0
    params: dict = field(default_factory=dict)
    _geometry: dict = field(default_factory=dict, repr=False)   # params_at cache

    @property
    def op(self):
        return self.slot.ref.op

    @property
    def name(self) -> str:
        return self.slot.name

    @property
    def per_row_h(self) -> bool:
        return self.kind == "depthwise"

    # -- weight layout -----------------------------------------------------------------------
    def to2d(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w).reshape(self.weight_shape)
        if self.kind == "depthwise":
            return w.reshape(-1, w.shape[-1]).T            # [C*m, kh*kw]
        if self.kind == "bmm":
            w2 = w.reshape(w.shape[-2], w.shape[-1])
            return w2 if self.params["adj_y"] else w2.T       # [N, K]
        return w.reshape(w.shape[0], -1)                      # [O, kh*kw*I] or [O, I]

    def from2d(self, w2: np.ndarray) -> np.ndarray:
        if self.kind == "depthwise":
            return np.ascontiguousarray(w2.T).reshape(self.weight_shape)
        if self.kind == "bmm":
            w = w2 if self.params["adj_y"] else w2.T
            return np.ascontiguousarray(w).reshape(self.weight_shape)
        return np.ascontiguousarray(w2).reshape(self.weight_shape)

    def h_index(self) -> np.ndarray | None:
        """For depthwise: which input channel's H each output channel (row) uses."""
        if self.kind != "depthwise":
            return None
        return np.arange(self.rows) // self.params["mult"]

    # -- inputs --------------------------------------------------------------------------------
    def patches(self, x: np.ndarray) -> np.ndarray:
        """X for one sample: [positions, cols] (depthwise: [positions, kh*kw, C])."""
        x = np.asarray(x, np.float32)
        if self.kind in ("fc", "bmm"):
            return x.reshape(-1, self.cols)
        n, h, w, c = x.shape
        p = self.params_at(h, w)
        xp = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))      # index h / w reads a zero
        iy, ix = _indices(p["oh"], p["kh"], h, p, "y"), _indices(p["ow"], p["kw"], w, p, "x")
        patch = xp[:, iy[:, None, :, None], ix[None, :, None, :], :]   # [n, oh, ow, kh, kw, c]
        if self.kind == "depthwise":
            return patch.reshape(-1, p["kh"] * p["kw"], c)
        return patch.reshape(-1, self.cols)

    def params_at(self, h: int, w: int) -> dict:
        """The convolution's geometry for an input of h x w: the stored shapes of a model with
        dynamic input sizes are placeholders, so output size and padding follow the data."""
        p = self.params
        if (h, w) == (p.get("h", h), p.get("w", w)) or self.kind == "tconv":
            return p
        key = (h, w)
        if key not in self._geometry:
            q = dict(p, h=h, w=w)
            for axis, size in (("y", h), ("x", w)):
                k, s, d = p["kh" if axis == "y" else "kw"], p["s" + axis], p["d" + axis]
                eff = (k - 1) * d + 1
                out = -(-size // s) if p["same"] else max(-(-(size - eff + 1) // s), 0)
                q["oh" if axis == "y" else "ow"] = out
                q["p" + axis] = _same_pad(size, out, k, s, d) if p["same"] else 0
            self._geometry[key] = q
        return self._geometry[key]

    def predict(self, x: np.ndarray, w2: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """The op's output for one sample from its input (activation applied), [positions, rows]."""
        X = self.patches(x).astype(np.float64)
        if self.kind == "depthwise":
            y = np.einsum("pkc,ck->pc", X[:, :, self.h_index()], w2)
        else:
            y = X @ w2.T.astype(np.float64)
        if bias is not None:
            y = y + bias
        return ACTIVATIONS[self.activation](y)


def _indices(out: int, k: int, size: int, p: dict, axis: str) -> np.ndarray:
    """[out, k] source positions along one spatial axis; ``size`` marks a padded zero."""
    o = np.arange(out)[:, None]
    kk = np.arange(k)[None, :]
    s, pad = p["s" + axis], p["p" + axis]
    if p.get("transpose"):
        src = o + pad - kk
        ok = (src % s == 0) & (src >= 0) & (src // s < size)
        return np.where(ok, src // s, size)
    src = o * s + kk * p["d" + axis] - pad
    return np.where((src >= 0) & (src < size), src, size)


def _same_pad(in_size: int, out_size: int, k: int, s: int, d: int) -> int:
    eff = (k - 1) * d + 1
    return max((out_size - 1) * s + eff - in_size, 0) // 2


def layer_spec(slot) -> tuple[LayerSpec | None, str | None]:
    """(spec, None), or (None, why the layer cannot be modelled)."""
    ref = slot.ref
    op = ref.op
    sg = ref.subgraph
    if sg is not sg.model.subgraphs[0]:
        return None, "not in the main subgraph"
    if op.inputs[ref.position] < 0:
        return None, "no weight input"
    users = sum(1 for o in sg.operators for i, t in enumerate(o.inputs)
                if t == op.inputs[ref.position])
    if users != 1:
        return None, "weight is shared by several ops"
    shape = tuple(slot.shape)
    opts = op.options
    act = int(getattr(opts, "fusedActivationFunction", 0) or 0)
    if act not in ACTIVATIONS:
        return None, f"fused activation {act} is not modelled"
    name = op.name
    if name == "TRANSPOSE_CONV":
        data_pos, bias_pos = 2, 3
    else:
        data_pos, bias_pos = 0, {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2}.get(name)
    if ref.position == data_pos or data_pos >= len(op.inputs) or op.inputs[data_pos] < 0:
        return None, "no activation input"
    xin, yout = sg.tensors[op.inputs[data_pos]], op.output(0)
    if xin.is_constant:
        return None, "both operands are constant"
    if xin.type != TensorType.FLOAT32 or yout.type != TensorType.FLOAT32:
        return None, "activations are not float32 (integer kernels are not modelled)"
    common = dict(slot=slot, input_index=xin.index, output_index=yout.index, weight_shape=shape,
                  bias_position=bias_pos, activation=act)
    if name == "FULLY_CONNECTED":
        if len(shape) != 2:
            return None, "weight is not 2-D"
        if int(getattr(opts, "weightsFormat", 0) or 0) != 0:
            return None, "shuffled weights format"
        spec = LayerSpec(kind="fc", rows=shape[0], cols=shape[1], **common)
    elif name == "BATCH_MATMUL":
        if ref.position != 1 or len(shape) < 2 or int(np.prod(shape[:-2])) != 1:
            return None, "batched or left constant operand"
        if getattr(opts, "adjX", False):
            return None, "adj_x is not modelled"
        adj_y = bool(getattr(opts, "adjY", False))
        rows, cols = (shape[-2], shape[-1]) if adj_y else (shape[-1], shape[-2])
        spec = LayerSpec(kind="bmm", rows=rows, cols=cols, params={"adj_y": adj_y}, **common)
        spec.bias_position = None
    elif name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        if len(shape) != 4 or len(xin.shape) != 4 or len(yout.shape) != 4:
            return None, "not a 4-D convolution"
        _, h, w, c = xin.shape
        _, oh, ow, oc = yout.shape
        same = int(opts.padding or 0) == 0
        p = {"oh": oh, "ow": ow, "h": h, "w": w, "same": same, "sy": int(opts.strideH or 1),
             "sx": int(opts.strideW or 1)}
        if name == "TRANSPOSE_CONV":
            if any(d < 0 for d in (yout.shape_signature or ())[1:3]):
                return None, "transposed convolution with dynamic spatial size is not modelled"
            o, kh, kw, i = shape
            if i != c or o != oc:
                return None, "channel counts do not match"
            p.update(kh=kh, kw=kw, dy=1, dx=1, transpose=True)
            p["py"] = _same_pad(oh, -(-oh // p["sy"]), kh, p["sy"], 1) if same else 0
            p["px"] = _same_pad(ow, -(-ow // p["sx"]), kw, p["sx"], 1) if same else 0
            spec = LayerSpec(kind="tconv", rows=o, cols=kh * kw * i, params=p, **common)
        else:
            p.update(dy=int(opts.dilationHFactor or 1), dx=int(opts.dilationWFactor or 1))
            if name == "CONV_2D":
                o, kh, kw, i = shape
                if i != c:
                    return None, "grouped convolution is not modelled"
                p.update(kh=kh, kw=kw)
                spec = LayerSpec(kind="conv", rows=o, cols=kh * kw * i, params=p, **common)
            else:
                _, kh, kw, cm = shape
                if cm % c or cm != oc:
                    return None, "depthwise channel counts do not match"
                p.update(kh=kh, kw=kw, mult=cm // c)
                spec = LayerSpec(kind="depthwise", rows=cm, cols=kh * kw, params=p, **common)
            p["py"] = _same_pad(h, oh, p["kh"], p["sy"], p["dy"]) if same else 0
            p["px"] = _same_pad(w, ow, p["kw"], p["sx"], p["dx"]) if same else 0
    else:
        return None, f"{name} is not modelled"
    if spec.cols > MAX_COLUMNS and not spec.per_row_h:
        return None, f"reduction size {spec.cols} > {MAX_COLUMNS}"
    return spec, None


@dataclass
class LayerStats:
    """Accumulated over the calibration samples for one layer."""

    H: np.ndarray            # [cols, cols] or [C, K, K] (depthwise), float64, sum over rows
    total: np.ndarray        # sum of X rows: [cols] or [K, C]
    count: int               # number of rows (positions x samples)
    samples: int
    check: float | None = None   # relative error of predicting the op's output from X
    damp: float = 0.01           # dampening the solvers use for this layer (set by the engine)

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.count, 1)

    def hessian_for_rows(self, spec: LayerSpec) -> np.ndarray:
        """H shared by all rows, or per row ([rows, K, K]) for depthwise."""
        if spec.per_row_h:
            return self.H[spec.h_index()]
        return self.H

    def mean_for_rows(self, spec: LayerSpec) -> np.ndarray:
        """[cols] or, per row, [rows, K]."""
        if spec.per_row_h:
            return self.mean.T[spec.h_index()]
        return self.mean


class _Accumulator:
    def __init__(self, spec: LayerSpec, hessian: bool = True):
        self.spec = spec
        self.hessian = hessian
        if spec.per_row_h:
            k, c = spec.cols, spec.rows // spec.params["mult"]
            self.H = np.zeros((c, k, k) if hessian else (0, 0, 0))
            self.total = np.zeros((k, c))
        else:
            self.H = np.zeros((spec.cols, spec.cols) if hessian else (0, 0))
            self.total = np.zeros(spec.cols)
        self.count = 0
        self.samples = 0
        self.check: float | None = None
        self.rng = np.random.default_rng(0)

    def add(self, x: np.ndarray, y: np.ndarray | None, w2: np.ndarray | None, bias) -> None:
        spec = self.spec
        X = spec.patches(x)
        if X.shape[0] > MAX_POSITIONS:
            # Large feature maps: a fixed random subset of output positions per sample.
            keep = np.sort(self.rng.choice(X.shape[0], MAX_POSITIONS, replace=False))
            X = X[keep]
        if not self.hessian:
            self.total += X.sum(axis=0, dtype=np.float64)
        elif spec.per_row_h:
            P = np.ascontiguousarray(X.transpose(2, 0, 1))                      # [C, rows, K]
            self.H += P.transpose(0, 2, 1) @ P
            self.total += X.sum(axis=0, dtype=np.float64)
        else:
            X = np.ascontiguousarray(X, dtype=np.float32)
            self.H += X.T @ X        # float32 product (sgemm), accumulated in float64
            self.total += X.sum(axis=0, dtype=np.float64)
        self.count += X.shape[0]
        self.samples += 1
        if self.check is None and y is not None and w2 is not None:
            pred = spec.predict(x, w2, bias)
            ref = np.asarray(y, np.float64).reshape(pred.shape)
            self.check = float(np.linalg.norm(pred - ref) / max(np.linalg.norm(ref), 1e-12))

    def result(self) -> LayerStats:
        return LayerStats(self.H, self.total, self.count, self.samples, self.check)


def cut_custom_ops(model):
    """(the model, or a copy with the custom ops the builtin kernels cannot run cut and every
    tensor index kept; the cut op names). Callers only read what it returns."""
    from tflopt.runtime import has_custom_ops, runnable
    if not has_custom_ops(model):
        return model, []  # nothing to cut: no trial run
    _, cut = runnable(model, xnnpack=False)
    return _cut_known(model, cut), cut


def gather(model, specs: list[LayerSpec], samples: Iterable[list[np.ndarray]], *, cut: list[str] | None = None,
           weights: dict | None = None, biases: dict | None = None, hessian: bool = True,
           fast: bool | None = None) -> dict[int, LayerStats | str]:
    """Run the samples through the model as it is now and accumulate each spec's stats.

    ``weights`` / ``biases`` (by spec position) are the current float values, used once per
    layer to check that X reproduces the op's output. Returns {position: stats or reason}.
    The layers' inputs (and outputs, for the check) are read through ``observe.Observer``:
    extra outputs of a copy run with XNNPACK on every core unless ``fast=False`` /
    TFLOPT_OBSERVE=builtin. The interpreter is sized from the first sample.
    """
    from tflopt.observe import Observer, peek
    m, cut_now = cut_custom_ops(model) if cut is None else (_cut_known(model, cut), cut)
    sg_inputs = m.main.inputs
    produced = {t for op in m.main.operators for t in op.outputs} | set(sg_inputs)
    accs: dict[int, _Accumulator] = {}
    out: dict[int, LayerStats | str] = {}
    for i, spec in enumerate(specs):
        if spec.input_index not in produced or spec.output_index not in produced:
            out[i] = "downstream of an op the interpreter cannot run"
        else:
            accs[i] = _Accumulator(spec, hessian)
    if not accs:
        return out
    first, samples = peek(samples)
    if first is not None:
        wanted = [t for acc in accs.values() for t in (acc.spec.input_index, acc.spec.output_index)]
        with _only_ops_feeding(m, wanted):
            observer = Observer(m, wanted, input_shapes=[np.shape(x) for x in first], fast=fast,
                                owned=m is not model)

        def consume(values: dict) -> None:
            for i, acc in accs.items():
                spec = acc.spec
                x = values.get(spec.input_index)
                if x is None:
                    continue
                y = values.get(spec.output_index) if acc.check is None else None
                acc.add(x, y, None if weights is None else weights.get(i), None if biases is None else biases.get(i))

        for sample in samples:
            observer.run(sample, consume)
    for i, acc in accs.items():
        out[i] = acc.result() if acc.count else "no calibration samples reached it"
    return out


# Ops whose effect is not carried by their output tensors (resource variables, run-once
# initialisers, control flow): a graph holding any of them is run whole. Custom ops are taken
# as functions of their inputs, as those of the mediapipe corpus are.
_STATEFUL = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE", "IF", "WHILE", "CALL",
             "HASHTABLE", "HASHTABLE_IMPORT", "HASHTABLE_FIND", "HASHTABLE_SIZE"}


@contextmanager
def _only_ops_feeding(model, tensors: list[int]):
    """While the observer serialises ``model``, subgraph 0 holds only the ops ``tensors`` depend
    on and none of its own outputs: a wave of early layers does not run the rest of the model
    for every sample. Each kept op computes exactly what it computes in the whole graph."""
    sg = model.main
    if any(op.name in _STATEFUL or not op.outputs for op in sg.operators):
        yield
        return
    need = set(tensors)
    keep = []
    for op in reversed(sg.operators):
        if any(t in need for t in op.outputs):
            keep.append(op.raw)
            need.update(t for t in op.inputs if t >= 0)
    raw = sg.raw
    saved = raw.operators, raw.outputs
    raw.operators, raw.outputs = keep[::-1], []
    try:
        yield
    finally:
        raw.operators, raw.outputs = saved


def _cut_known(model, cut: list[str]):
    """``model`` itself when nothing is cut (the caller only reads it), else a cut copy."""
    from tflopt.runtime import cut_ops
    return cut_ops(model.clone(), set(cut)) if cut else model
