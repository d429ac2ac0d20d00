"""Every Edge TPU, Hexagon and GPU rule trips on a model built to break it, and only because of it.

Each case is ``build(bad) -> model``: with ``bad`` the op at index 0 breaks the property the rule
names (other rules may fire too), without it the same op is fully supported by that target. So a
rule that stops firing, or any rule that fires on the corrected op, fails its case. ``test_every_rule_is_tripped``
keeps the table complete as rules are added.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_audit_rules import one_op
from tflopt.audit import audit
from tflopt.audit.rules import get_target
from tflopt.schema import TensorType, fb

F, I8, U8, I32 = "FLOAT32", "INT8", "UINT8", "INT32"
Q = (0.05, 0)
ACT = fb.ActivationFunctionType
TARGETS = ("edgetpu", "hexagon", "gpu")

# op -> its builtin options table (ops not listed take none)
OPTIONS = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions", "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions", "FULLY_CONNECTED": "FullyConnectedOptions", "SOFTMAX": "SoftmaxOptions",
    "CONCATENATION": "ConcatenationOptions", "ADD": "AddOptions", "MUL": "MulOptions", "SUB": "SubOptions",
    "LSTM": "LSTMOptions", "RESIZE_BILINEAR": "ResizeBilinearOptions", "RESHAPE": "ReshapeOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions", "STRIDED_SLICE": "StridedSliceOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions", "PACK": "PackOptions", "ONE_HOT": "OneHotOptions",
    "MIRROR_PAD": "MirrorPadOptions", "CUMSUM": "CumsumOptions", "SQUEEZE": "SqueezeOptions",
    "GATHER": "GatherOptions",
}


def act(shape, ty=F, quant=None, sig=None):
    if quant is None and ty in (I8, U8):
        quant = Q
    return (list(shape), ty, None, quant, sig)


def const(arr, ty, quant=None):
    dt = {F: np.float32, I8: np.int8, U8: np.uint8, I32: np.int32, "INT64": np.int64, "INT16": np.int16,
          "BOOL": np.bool_}[ty]
    if quant is None and ty in (I8, U8):
        quant = Q
    a = np.asarray(arr, dt)
    return (list(a.shape), ty, a, quant)


def op(name, ins, outs, version=1, **opts):
    options = None
    if name in OPTIONS:
        o = getattr(fb, OPTIONS[name] + "T")()
        for k, v in opts.items():
            setattr(o, k, v)
        options = (getattr(fb.BuiltinOptions, OPTIONS[name]), o)
    return one_op(name, ins, outs, options=options, version=version)


def ints(*v):
    return const(list(v), I32)


# -- op builders: valid by default, each keyword a knob a case turns ------------------------------
def conv(ty=I8, x=(1, 8, 8, 2), w_ty=None, b_ty=None, w_const=True, b_const=True, version=1, **o):
    w_ty = w_ty or ty
    b_ty = b_ty or (I32 if ty in (I8, U8) else F)
    w = const(np.ones((4, 3, 3, x[3])), w_ty) if w_const else act((4, 3, 3, x[3]), w_ty)
    b = const(np.zeros(4), b_ty) if b_const else act((4,), b_ty)
    opts = dict(padding=fb.Padding.SAME, strideW=1, strideH=1, dilationWFactor=1, dilationHFactor=1)
    opts.update(o)
    return op("CONV_2D", [act(x, ty), w, b], [act((x[0], 8, 8, 4), ty)], version, **opts)


def dwconv(ty=I8, x=(1, 8, 8, 4), out=(1, 8, 8, 4), w=(1, 3, 3, 4), bias=4, mult=1, **o):
    b_ty = I32 if ty in (I8, U8) else F
    opts = dict(padding=fb.Padding.SAME, strideW=1, strideH=1, dilationWFactor=1, dilationHFactor=1,
                depthMultiplier=mult)
    opts.update(o)
    return op("DEPTHWISE_CONV_2D", [act(x, ty), const(np.ones(w), ty), const(np.zeros(bias), b_ty)],
              [act(out, ty)], **opts)


def tconv(ty=I8, n_inputs=3, shape_ty=I32, bias_ty=None, version=1, w_const=True, **o):
    """n_inputs: 3 (output_shape, filter, input), 4 (+ bias) or 2 (no output_shape)."""
    w = const(np.ones((4, 3, 3, 2)), ty) if w_const else act((4, 3, 3, 2), ty)
    ins = [const([1, 8, 8, 4], shape_ty), w, act((1, 8, 8, 2), ty)]
    if n_inputs == 4:
        ins.append(const(np.zeros(4), bias_ty or (I32 if ty in (I8, U8) else F)))
    elif n_inputs == 2:
        ins = ins[1:]
    opts = dict(padding=fb.Padding.SAME, strideW=1, strideH=1)
    opts.update(o)
    return op("TRANSPOSE_CONV", ins, [act((1, 8, 8, 4), ty)], version, **opts)


def fc(ty=I8, x=(1, 16), out=(1, 4), w_ty=None, b_ty=None, x_const=False, b_const=True, sparse=False, **o):
    w_ty = w_ty or ty
    b_ty = b_ty or (I32 if ty in (I8, U8) else F)
    x_spec = const(np.ones(x), ty) if x_const else act(x, ty)
    b = const(np.zeros(4), b_ty) if b_const else act((4,), b_ty)
    m = op("FULLY_CONNECTED", [x_spec, const(np.ones((4, x[-1])), w_ty), b], [act(out, ty)], **o)
    if sparse:
        m.main.tensors[m.main.operators[0].inputs[1]].raw.sparsity = fb.SparsityParametersT()
    return m


def pool(name="MAX_POOL_2D", ty=I8, x=(1, 8, 8, 2), k=2, extra_inputs=0, **o):
    opts = dict(padding=fb.Padding.VALID, strideW=k, strideH=k, filterWidth=k, filterHeight=k)
    opts.update(o)
    side = 8 // max(opts["strideW"], 1)
    ins = [act(x, ty)] + [act(x, ty)] * extra_inputs
    return op(name, ins, [act((x[0], side, side, x[3]), ty)], **opts)


def unary(name, ty=I8, shape=(1, 8, 8, 2), out_ty=None, version=1, n_inputs=1, sig=None, const_input=False):
    x = const(np.ones(shape), ty) if const_input else act(shape, ty, sig=sig)
    return op(name, [x] * n_inputs, [act(shape, out_ty or ty)], version)


def binary(name, ty=I8, a=(1, 8, 8, 2), b=(1, 8, 8, 2), out=None, n_inputs=2, b_const=None, version=1, **o):
    bb = act(b, ty) if b_const is None else const(np.full(b, b_const), ty)
    ins = ([act(a, ty), bb] + [act(a, ty)] * n_inputs)[:n_inputs]
    return op(name, ins, [act(out or a, ty)], version, **o)


def reduce(name="MEAN", ty=I8, axes=(1, 2), axes_ty=I32, axes_const=True, x=(1, 8, 8, 2), keep=False):
    out = tuple(1 if (i in axes or i - len(x) in axes) else d for i, d in enumerate(x))
    if not keep:
        out = tuple(d for i, d in enumerate(x) if not (i in axes or i - len(x) in axes))
    ax = const(list(axes), axes_ty) if axes_const else act((len(axes),), axes_ty)
    return op(name, [act(x, ty), ax], [act(out, ty)])


def pad(name="PAD", ty=I8, paddings=((0, 0), (1, 1), (1, 1), (0, 0)), x=(1, 8, 8, 2), pad_ty=I32,
        pad_const=True, n_inputs=2, **o):
    p = np.asarray(paddings)
    out = tuple(d + int(p[i].sum()) if i < len(p) else d for i, d in enumerate(x))
    pp = const(p, pad_ty) if pad_const else act(p.shape, pad_ty)
    ins = [act(x, ty), pp, const(np.zeros(()), ty)][:n_inputs]
    return op(name, ins, [act(out, ty)], **o)


def strided_slice(ty=I8, strides=(1, 1, 1, 1), idx_ty=I32, idx_const=True, n_inputs=4, x=(1, 8, 8, 2), **o):
    def idx(v):
        return const(v, idx_ty) if idx_const else act((len(v),), idx_ty)
    ins = [act(x, ty), idx([0, 0, 0, 0]), idx([1, 4, 4, 2]), idx(list(strides))][:n_inputs]
    out = (1, 4 // strides[1] if strides[1] else 4, 4, 2)
    return op("STRIDED_SLICE", ins, [act(out, ty)], **o)


def slice_(ty=I8, x=(1, 8, 8, 2), idx_ty=I32, idx_const=True, n_inputs=3):
    r = len(x)
    def idx(v):
        return const(v, idx_ty) if idx_const else act((r,), idx_ty)
    ins = [act(x, ty), idx([0] * r), idx([1] + [2] * (r - 1))][:n_inputs]
    return op("SLICE", ins, [act([1] + [2] * (r - 1), ty)])


def concat(ty=I8, consts=(), n_runtime=2, **o):
    ins = [act((1, 4, 4, 2), ty)] * n_runtime + [const(np.full((1, 4, 4, 2), v), ty) for v in consts]
    n = len(ins)
    return op("CONCATENATION", ins, [act((1, 4, 4, 2 * n), ty)], axis=3, **o)


def resize(ty=I8, size=(16, 16), size_ty=I32, size_const=True, **o):
    s = const(list(size), size_ty) if size_const else act((len(size),), size_ty)
    return op("RESIZE_BILINEAR", [act((1, 8, 8, 2), ty), s], [act((1, 16, 16, 2), ty)], **o)


def split(ty=I8, axis_ty=I32, axis_const=True):
    ax = const(np.array(3), axis_ty) if axis_const else act((), axis_ty)
    return op("SPLIT", [ax, act((1, 8, 8, 2), ty)], [act((1, 8, 8, 1), ty)] * 2)


def one_hot(idx_ty=I32, axis=-1, on_const=True, on_ty=F, on_shape=(), idx_shape=(4,)):
    on = const(np.ones(on_shape), on_ty) if on_const else act(on_shape, on_ty)
    return op("ONE_HOT", [act(idx_shape, idx_ty), const(np.array(5), I32), on, const(np.zeros(()), F)],
              [act(tuple(idx_shape) + (5,), F)], axis=axis)


def gather(data_ty=F, idx_ty=I32, idx_shape=(2,), consts=False):
    """consts: data and indices both constant (no runtime operand)."""
    if consts:
        ins = [const(np.ones((4, 3)), data_ty), const(np.zeros(idx_shape), idx_ty)]
    else:
        ins = [act((4, 3), data_ty), act(idx_shape, idx_ty)]
    return op("GATHER", ins, [act(tuple(idx_shape) + (3,), data_ty)])


def select(cond_ty="BOOL", ty=F, name="SELECT_V2", out=(1, 4), if_=None, else_=None):
    """if_/else_: an operand spec (default: a runtime tensor of the output's shape)."""
    if_ = if_ or act(out, ty)
    else_ = else_ or act(out, ty)
    return op(name, [act(out, cond_ty), if_, else_], [act(out, ty)])


def custom(code, ins, outs):
    m = op("CUSTOM", ins, outs)
    m.main.operators[0].opcode.customCode = code
    return m


def more_outputs(m, n=1):
    """The op at index 0 gets ``n`` more outputs like its first."""
    sg = m.main
    o = sg.operators[0]
    first = sg.tensors[o.outputs[0]]
    for k in range(n):
        t = sg.add_tensor(f"extra{k}", first.shape, getattr(TensorType, first.type_name))
        o.outputs.append(t.index)
        sg.raw.outputs.append(t.index)
    return m


def chain(names, ty=I8, shape=(1, 8)):
    """A straight line of one-input ops, each reading the one before."""
    m = op(names[0], [act(shape, ty)], [act(shape, ty)])
    sg = m.main
    prev = sg.operators[0].outputs[0]
    for k, name in enumerate(names[1:], 1):
        t = sg.add_tensor(f"c{k}", list(shape), getattr(TensorType, ty), quantization=Q if ty in (I8, U8) else None)
        sg.insert_operator(k, name, [prev], [t.index])
        prev = t.index
    sg.raw.outputs = [prev]
    return m


def runs(*sizes, op_name="TANH", between="LEAKY_RELU", ty=I8):
    """Runs of ``op_name`` of the given lengths, each separated by one ``between`` op."""
    names = []
    for i, n in enumerate(sizes):
        names += ([between] if i else []) + [op_name] * n
    return chain(names, ty)


def squeeze(x, out, dims):
    return op("SQUEEZE", [act(x, I8)], [act(out, I8)], squeezeDims=list(dims))


def cumsum(ty=F, axis_const=True, axis_ty=I32):
    ax = const(np.array(1), axis_ty) if axis_const else act((), axis_ty)
    return op("CUMSUM", [act((1, 8), ty), ax], [act((1, 8), ty)])


def with_version(m, v):
    m.main.operators[0].opcode.version = v
    return m


FULL, BASIC = fb.LSTMKernelType.FULL, fb.LSTMKernelType.BASIC


def lstm(n_inputs=5, n_outputs=4, kernel=BASIC, runtime_weights=False, **o):
    w = act((16, 12)) if runtime_weights else const(np.ones((16, 12)), F)
    ins = [act((1, 8)), act((1, 4)), w, const(np.zeros(16), F), act((1, 4))]
    ins = (ins + [const(np.ones((4, 4)), F)] * 24)[:n_inputs]
    outs = [act((1, 4)), act((1, 4)), act((1, 4)), act((1, 16))][:n_outputs]
    opts = dict(fusedActivationFunction=ACT.TANH, kernelType=kernel)
    opts.update(o)
    return op("LSTM", ins, outs, **opts)


CASES = {
    # -- Edge TPU (coral.ai/docs/edgetpu/models-intro) -----------------------------------------------------------------
    "edgetpu.op": lambda bad: unary("LEAKY_RELU" if bad else "RELU"),
    "edgetpu.dtype": lambda bad: conv(F if bad else I8),
    "edgetpu.quantize.output": lambda bad: op("QUANTIZE", [act((1, 8), F)], [act((1, 8), "INT16" if bad else I8, Q)]),
    "edgetpu.weights.dtype": lambda bad: conv(w_ty=F if bad else I8),
    "edgetpu.static_shape": lambda bad: unary("RELU", sig=[-1, 8, 8, 2] if bad else None),
    "edgetpu.const_params": lambda bad: conv(w_const=not bad),
    "edgetpu.tconv.const_params": lambda bad: tconv(w_const=not bad),
    "edgetpu.rank": lambda bad: unary("RELU", shape=(2, 8, 8, 2) if bad else (1, 8, 8, 2)),
    "edgetpu.version": lambda bad: tconv(version=3 if bad else 2),
    "edgetpu.pool.act": lambda bad: pool(fusedActivationFunction=ACT.RELU if bad else ACT.NONE),
    "edgetpu.concat.const_zero": lambda bad: concat(consts=[1 if bad else 0], n_runtime=1),
    "edgetpu.conv.dilation": lambda bad: conv(dilationWFactor=2 if bad else 1),
    "edgetpu.fc.format": lambda bad: fc(weightsFormat=int(bad)),
    "edgetpu.reduce.batch": lambda bad: reduce(axes=(0, 1) if bad else (1, 2), keep=True),
    "edgetpu.mean.channels": lambda bad: reduce(axes=(3,), x=(1, 4, 4, 6 if bad else 8)),
    "edgetpu.pad.batch": lambda bad: pad(paddings=((1 if bad else 0, 0), (1, 1), (1, 1), (0, 0))),
    "edgetpu.softmax.rank": lambda bad: op("SOFTMAX", [act((4 if bad else 1, 10), I8)],
                                           [act((4 if bad else 1, 10), I8, (1 / 256, -128))], beta=1.0),
    "edgetpu.softmax.size": lambda bad: op("SOFTMAX", [act((1, 16001 if bad else 16000), I8)],
                                           [act((1, 16001 if bad else 16000), I8, (1 / 256, -128))], beta=1.0),
    "edgetpu.squeeze.leading": lambda bad: squeeze((5, 1, 10), (5, 10), [1]) if bad else
    squeeze((1, 5, 10), (5, 10), [0]),
    "edgetpu.strided_slice.strides": lambda bad: strided_slice(strides=(1, 2 if bad else 1, 1, 1)),
    "edgetpu.strided_slice.ellipsis": lambda bad: strided_slice(ellipsisMask=int(bad)),
    "edgetpu.strided_slice.new_axis": lambda bad: strided_slice(newAxisMask=int(bad)),
    "edgetpu.pack.batch": lambda bad: op("PACK", [act((1, 4, 2), I8)] * 2,
                                         [act((2, 1, 4, 2) if bad else (1, 2, 4, 2), I8)],
                                         valuesCount=2, axis=0 if bad else 1),
    "edgetpu.prelu.alpha": lambda bad: op("PRELU", [act((1, 4, 4, 2), I8), const(np.ones((4, 2) if bad else (1, 1, 2)), I8)],
                                          [act((1, 4, 4, 2), I8)]),
    "edgetpu.concat.const_inputs": lambda bad: concat(consts=[0], n_runtime=2 if bad else 1),
    "edgetpu.sparse": lambda bad: fc(sparse=bad),
    # -- Hexagon (tensorflow.org/lite/android/delegates/hexagon) ----------------------------------------------------------------
    "hexagon.op": lambda bad: unary("LEAKY_RELU" if bad else "TANH"),
    "hexagon.dtype": lambda bad: conv(F if bad else I8),
    "hexagon.dtype.output": lambda bad: unary("TANH", out_ty=F if bad else I8),
    "hexagon.rank": lambda bad: unary("TANH", shape=(1, 1, 8, 8, 2) if bad else (1, 8, 8, 2)),
    "hexagon.static_shape": lambda bad: unary("TANH", sig=[-1, 8, 8, 2] if bad else None),
    "hexagon.version": lambda bad: conv(version=4 if bad else 3),
    "hexagon.version.exact2": lambda bad: unary("RELU", version=1 if bad else 2),
    "hexagon.binary.arity": lambda bad: binary("ADD", n_inputs=3 if bad else 2),
    "hexagon.binary.types": lambda bad: op("ADD", [act((1, 8, 8, 2), I8), const(np.ones(2), F if bad else I8)],
                                           [act((1, 8, 8, 2), I8)]),
    "hexagon.act": lambda bad: binary("ADD", fusedActivationFunction=ACT.TANH if bad else ACT.RELU),
    "hexagon.no_act": lambda bad: pool(fusedActivationFunction=ACT.RELU if bad else ACT.NONE),
    "hexagon.axis_const": lambda bad: reduce(axes_const=not bad),
    "hexagon.axis_int32": lambda bad: reduce(axes_ty="INT64" if bad else I32),
    "hexagon.mirror_pad.mode": lambda bad: pad("MIRROR_PAD", mode=2 if bad else fb.MirrorPadMode.SYMMETRIC),
    "hexagon.pad.arity": lambda bad: pad(n_inputs=3 if bad else 2),
    "hexagon.fc.bias": lambda bad: fc(b_ty=F if bad else I32),
    "hexagon.fc.bias_const": lambda bad: fc(b_const=not bad),
    "hexagon.fc.weights": lambda bad: fc(w_ty=F if bad else I8),
    "hexagon.fc.keep_num_dims": lambda bad: fc(keepNumDims=bad),
    "hexagon.fc.format": lambda bad: fc(weightsFormat=int(bad)),
    "hexagon.maxpool.same_large": lambda bad: pool(x=(1, 16, 16, 2), k=13 if bad else 12, strideW=1, strideH=1,
                                                   padding=fb.Padding.SAME),
    "hexagon.avgpool.arity": lambda bad: pool("AVERAGE_POOL_2D", extra_inputs=int(bad)),
    "hexagon.tconv.arity": lambda bad: tconv(n_inputs=2 if bad else 3),
    "hexagon.tconv.output_shape": lambda bad: tconv(shape_ty="INT64" if bad else I32),
    "hexagon.tconv.bias": lambda bad: tconv(n_inputs=4, bias_ty=F if bad else I32),
    "hexagon.stride": lambda bad: conv(strideW=4 if bad else 3),
    "hexagon.stride_h": lambda bad: conv(strideH=4 if bad else 3),
    "hexagon.tconv.padding": lambda bad: tconv(padding=2 if bad else fb.Padding.VALID),
    "hexagon.conv.dilation": lambda bad: conv(dilationWFactor=2 if bad else 1),
    "hexagon.conv.dilation_h": lambda bad: conv(dilationHFactor=2 if bad else 1),
    "hexagon.dwconv.dilation_stride": lambda bad: dwconv(dilationWFactor=2, strideW=2 if bad else 1,
                                                         out=(1, 4 if bad else 8, 8, 4)),
    "hexagon.dwconv.multiplier": lambda bad: dwconv(x=(1, 8, 8, 2 if bad else 1), mult=2 if bad else 4),
    "hexagon.dwconv.filter_height": lambda bad: dwconv(w=(1, 1 if bad else 2, 3, 4)),
    "hexagon.reshape.arity": lambda bad: op("RESHAPE", [act((1, 8, 8, 2), I8), ints(1, 128)] + [ints(1, 128)] * bad,
                                            [act((1, 128), I8)]),
    "hexagon.resize.size": lambda bad: resize(size=(16, 16, 1) if bad else (16, 16)),
    "hexagon.split.axis": lambda bad: split(axis_const=not bad),
    "hexagon.split.axis_type": lambda bad: split(axis_ty="INT64" if bad else I32),
    "hexagon.slice.const": lambda bad: slice_(idx_const=not bad),
    "hexagon.slice.index_type": lambda bad: slice_(idx_ty="INT16" if bad else "INT64"),
    "hexagon.strided_slice.const": lambda bad: strided_slice(idx_const=not bad),
    "hexagon.strided_slice.index_type": lambda bad: strided_slice(idx_ty="INT64" if bad else I32),
    "hexagon.strided_slice.ellipsis": lambda bad: strided_slice(ellipsisMask=int(bad)),
    "hexagon.strided_slice.new_axis": lambda bad: strided_slice(newAxisMask=int(bad)),
    "hexagon.int8_only": lambda bad: binary("SQUARED_DIFFERENCE", U8 if bad else I8, version=2),
    # -- GPU (ai.google.dev/edge/litert/performance/gpu) --------------------------------------------------------------------
    "gpu.op": lambda bad: unary("ROUND" if bad else "FLOOR", F),
    "gpu.dtype": lambda bad: binary("ADD", I32 if bad else F),
    "gpu.per_tensor": lambda bad: binary("ADD") if not bad else
    op("ADD", [act((1, 8, 8, 2), I8, ([0.1, 0.2], [0, 0], 3)), act((1, 8, 8, 2), I8)], [act((1, 8, 8, 2), I8)]),
    "gpu.rank": lambda bad: unary("ABS", F, shape=(1, 1, 1, 8, 8, 2) if bad else (1, 1, 8, 8, 2)),
    # A shape computed from a runtime value (the reshape target is a graph input) is dynamic;
    # the good case keeps a -1 batch, which the runtime resolves at allocation.
    "gpu.dynamic_shape": lambda bad: op("RESHAPE", [act((1, 8, 8, 2), F, sig=[-1, 8, 8, 2]),
                                                   act((2,), I32) if bad else ints(-1, 128)],
                                        [act((1, 128), F, sig=[-1, 128])]),
    "gpu.version": lambda bad: binary("MUL", F, version=4 if bad else 3),
    "gpu.outputs": lambda bad: more_outputs(pool(ty=F)) if bad else pool(ty=F),
    "gpu.add.arity": lambda bad: binary("ADD", F, n_inputs=3 if bad else 2),
    "gpu.pool.arity": lambda bad: pool(ty=F, extra_inputs=int(bad)),
    "gpu.pool.kernel": lambda bad: pool(ty=F, filterWidth=0 if bad else 2),
    "gpu.pool.kernel_h": lambda bad: pool(ty=F, filterHeight=0 if bad else 2),
    "gpu.pool.stride": lambda bad: pool(ty=F, strideW=0 if bad else 2),
    "gpu.pool.stride_h": lambda bad: pool(ty=F, strideH=0 if bad else 2),
    "gpu.act": lambda bad: conv(F, fusedActivationFunction=ACT.SIGN_BIT if bad else ACT.TANH),
    "gpu.bmm.arity": lambda bad: op("BATCH_MATMUL", [act((1, 4, 8)), act((1, 8, 4))] + [act((1, 8, 4))] * bad,
                                    [act((1, 4, 4))]),
    "gpu.cast.types": lambda bad: op("CAST", [act((1, 8), I32)], [act((1, 8), "BOOL" if bad else F)]),
    "gpu.conv.runtime": lambda bad: conv(F, w_const=False, b_const=not bad),
    "gpu.conv.stride": lambda bad: conv(F, strideW=0 if bad else 1),
    "gpu.conv.stride_h": lambda bad: conv(F, strideH=0 if bad else 1),
    "gpu.conv.dilation": lambda bad: conv(F, dilationWFactor=0 if bad else 2),
    "gpu.conv.dilation_h": lambda bad: conv(F, dilationHFactor=0 if bad else 2),
    "gpu.cumsum.types": lambda bad: cumsum(I32 if bad else F),
    "gpu.cumsum.axis": lambda bad: cumsum(axis_const=not bad),
    "gpu.cumsum.axis_type": lambda bad: cumsum(axis_ty="INT64" if bad else I32),
    "gpu.densify.const": lambda bad: op("DENSIFY", [act((4, 4)) if bad else const(np.ones((4, 4)), F)],
                                        [act((4, 4))]),
    "gpu.dwconv.rank": lambda bad: dwconv(F, w=(3, 3, 4) if bad else (1, 3, 3, 4)),
    "gpu.dwconv.multiplier": lambda bad: dwconv(F, x=(1, 8, 8, 2 if bad else 1), w=(1, 3, 3, 2), bias=2,
                                                out=(1, 8, 8, 2), mult=2),
    "gpu.dwconv.out_channels": lambda bad: dwconv(F, x=(1, 8, 8, 4), mult=1, out=(1, 8, 8, 8 if bad else 4),
                                                  w=(1, 3, 3, 8 if bad else 4), bias=8 if bad else 4),
    "gpu.dwconv.channels": lambda bad: dwconv(F, w=(1, 3, 3, 2 if bad else 4)),
    "gpu.dwconv.bias": lambda bad: dwconv(F, bias=2 if bad else 4),
    "gpu.dwconv.batch": lambda bad: dwconv(F, x=(2 if bad else 1, 8, 8, 4)),
    "gpu.block": lambda bad: op("SPACE_TO_DEPTH", [act((1, 8, 8, 2))],
                                [act((1, 8, 8, 2) if bad else (1, 4, 4, 8))], blockSize=1 if bad else 2),
    "gpu.one_runtime": lambda bad: unary("ABS", F, n_inputs=2 if bad else 1),
    "gpu.dequantize.arity": lambda bad: op("DEQUANTIZE", [act((1, 8), I8, Q)] * (2 if bad else 1), [act((1, 8))]),
    "gpu.dequantize.int16": lambda bad: op("DEQUANTIZE", [act((1, 8), "INT16" if bad else I8, Q)], [act((1, 8))]),
    "gpu.fc.format": lambda bad: fc(F, weightsFormat=int(bad)),
    "gpu.fc.input": lambda bad: fc(F, x_const=bad),
    "gpu.fc.keep_dims": lambda bad: fc(F, x=(1, 3, 16), out=(3, 4) if bad else (1, 3, 4), keepNumDims=True),
    "gpu.gather.data": lambda bad: gather(I32 if bad else F),
    "gpu.gather.indices": lambda bad: gather(idx_ty="INT64" if bad else I32),
    "gpu.gather.indices_rank": lambda bad: gather(idx_shape=(1, 2) if bad else (2,)),
    "gpu.gather.operands": lambda bad: gather(consts=bad),
    "gpu.lstm.full.arity": lambda bad: lstm(19 if bad else 24, 1, FULL),
    "gpu.lstm.full.act": lambda bad: lstm(20, 1, FULL, fusedActivationFunction=ACT.RELU if bad else ACT.TANH),
    "gpu.lstm.basic.arity": lambda bad: lstm(n_outputs=3 if bad else 4),
    "gpu.lstm.basic.runtime": lambda bad: lstm(runtime_weights=bad),
    "gpu.lstm.basic.act": lambda bad: lstm(fusedActivationFunction=ACT.RELU if bad else ACT.TANH),
    "gpu.lstm.basic.cell_clip": lambda bad: lstm(cellClip=1.0 if bad else 0.0),
    "gpu.lstm.basic.proj_clip": lambda bad: lstm(projClip=1.0 if bad else 0.0),
    "gpu.reduce.axes": lambda bad: reduce(ty=F, axes_const=not bad),
    "gpu.reduce.axes_type": lambda bad: reduce(ty=F, axes_ty="INT64" if bad else I32),
    "gpu.mul.arity": lambda bad: binary("MUL", F, n_inputs=3 if bad else 2),
    "gpu.mul.broadcast": lambda bad: binary("MUL", F, a=(1, 4, 1, 2) if bad else (1, 4, 4, 2), b=(1, 1, 4, 2),
                                            out=(1, 4, 4, 2)),
    "gpu.one_hot.axis": lambda bad: one_hot(axis=0 if bad else -1),
    "gpu.one_hot.indices": lambda bad: one_hot(idx_ty="INT64" if bad else I32),
    "gpu.one_hot.values": lambda bad: one_hot(on_const=not bad),
    "gpu.one_hot.values_type": lambda bad: one_hot(on_ty=I32 if bad else F),
    "gpu.one_hot.values_scalar": lambda bad: one_hot(on_shape=(1,) if bad else ()),
    "gpu.one_hot.shape": lambda bad: one_hot(idx_shape=(2, 4) if bad else (1, 4)),
    "gpu.pad.paddings": lambda bad: pad(ty=F, x=(1, 8, 8, 2, 1) if bad else (1, 8, 8, 2),
                                        paddings=((0, 0), (1, 1), (1, 1), (0, 0)) + (((0, 0),) if bad else ())),
    "gpu.pad.paddings_cols": lambda bad: pad(ty=F, paddings=np.zeros((4, 3 if bad else 2), int)),
    "gpu.mirror_pad.mode": lambda bad: pad("MIRROR_PAD", F, mode=fb.MirrorPadMode.SYMMETRIC if bad else
                                           fb.MirrorPadMode.REFLECT),
    "gpu.resize.corners": lambda bad: resize(F, alignCorners=True, halfPixelCenters=bad),
    "gpu.select.cond": lambda bad: select(cond_ty=I32 if bad else "BOOL"),
    "gpu.select.values": lambda bad: select(ty=I32 if bad else F),
    "gpu.select.shape": lambda bad: select(else_=act((4,)) if bad else const(np.zeros(()), F)),
    "gpu.slice.arity": lambda bad: slice_(F, n_inputs=2 if bad else 3),
    "gpu.slice.rank": lambda bad: slice_(F, x=(8, 8) if bad else (1, 8, 8, 2)),
    "gpu.softmax.beta": lambda bad: op("SOFTMAX", [act((1, 10))], [act((1, 10))], beta=2.0 if bad else 1.0),
    "gpu.strided_slice.arity": lambda bad: strided_slice(F, n_inputs=3 if bad else 4),
    "gpu.strided_slice.masks": lambda bad: strided_slice(F, shrinkAxisMask=int(bad)),
    "gpu.strided_slice.ellipsis": lambda bad: strided_slice(F, ellipsisMask=int(bad)),
    "gpu.strided_slice.new_axis": lambda bad: strided_slice(F, newAxisMask=int(bad)),
    "gpu.custom.two_runtime": lambda bad: custom(
        "Resampler", [act((1, 8, 8, 2)), const(np.zeros((1, 8, 8, 2)), F) if bad else act((1, 8, 8, 2))],
        [act((1, 8, 8, 2))]),
    "gpu.custom.argmax.runtime": lambda bad: custom("MaxPoolingWithArgmax2D", [act((1, 8, 8, 2))] * (2 if bad else 1),
                                                    [act((1, 4, 4, 2))] * 2),
    "gpu.custom.argmax.outputs": lambda bad: custom("MaxPoolingWithArgmax2D", [act((1, 8, 8, 2))],
                                                    [act((1, 4, 4, 2))] * (1 if bad else 2)),
    "gpu.custom.tconv.weights": lambda bad: custom(
        "Convolution2DTransposeBias",
        [act((1, 8, 8, 2))] + ([] if bad else [const(np.ones((4, 3, 3, 2)), F), const(np.zeros(4), F)]),
        [act((1, 16, 16, 4))]),
    "gpu.unary.const": lambda bad: op("ABS", [act((1, 8)), const(np.ones((1, 8)), F)] if bad else [act((1, 8))],
                                      [act((1, 8))]),
    "gpu.binary.arity": lambda bad: binary("SUB", F, b_const=True) if not bad else
    op("SUB", [const(np.ones((1, 8)), F), const(np.ones((1, 8)), F)], [act((1, 8))]),
}


def _verdict(model, target):
    o = audit(model, [target]).targets[target].ops[0]
    return o.supported, {r.rule: r for r in o.reasons}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_trips_and_only_it(rule):
    target = rule.split(".")[0]
    supported, reasons = _verdict(CASES[rule](True), target)
    assert not supported and rule in reasons, sorted(reasons)
    reason = reasons[rule]
    assert reason.source and reason.message.startswith(
        next(r.reason for r in get_target(target).rules if r.id == rule))
    supported, reasons = _verdict(CASES[rule](False), target)
    assert supported, {k: r.message for k, r in reasons.items()}


def test_every_rule_is_tripped():
    defined = {r.id for t in TARGETS for r in get_target(t).rules}
    assert defined == set(CASES)


# -- what tf.lite.experimental.Analyzer(gpu_compatibility=True) let through -----------------------
# In TF 2.21 / ai-edge-litert 2.3 the analyzer called these models GPU-compatible; its own
# gpu_compatibility.cc rejects them, and so must the audit.
def _topk():
    return op("TOPK_V2", [act((1, 8)), const(np.array(3), I32)], [act((1, 3)), act((1, 3), I32)])


def _arg_max():
    return op("ARG_MAX", [act((1, 8)), const(np.array(1), I32)], [act((1,), I32)])


@pytest.mark.parametrize("build,rules", [
    (_topk, {"gpu.op", "gpu.dtype"}),
    (_arg_max, {"gpu.op", "gpu.dtype"}),
    (lambda: binary("ADD", I32), {"gpu.dtype"}),
    (lambda: binary("MUL", I32), {"gpu.dtype"}),
], ids=["TOPK_V2", "ARG_MAX", "ADD_int32", "MUL_int32"])
def test_gpu_rejects_what_the_tf_analyzer_passed(build, rules):
    tr = audit(build(), ["gpu"]).targets["gpu"]
    o = tr.ops[0]
    assert not o.supported and not o.on_accelerator and tr.summary["accelerated_ops"] == 0
    assert {r.rule for r in o.reasons} == rules
    if "gpu.op" in rules:
        assert any(r.category == "op" and o.op in r.message for r in o.reasons)
    assert any(r.category == "tensor type" and "INT32" in r.message for r in o.reasons)


@pytest.mark.parametrize("name", ["ADD", "MUL"])
def test_gpu_takes_float_arithmetic(name):
    assert audit(binary(name, F), ["gpu"]).targets["gpu"].ops[0].on_accelerator


# -- rules that hold per op, beyond the one case above --------------------------------------------
@pytest.mark.parametrize("build,ceiling", [
    (lambda v: binary("ADD", F, version=v), 2),
    (lambda v: binary("MUL", F, version=v), 3),
    (lambda v: binary("SUB", F, version=v), 2),
    (lambda v: unary("TANH", F, version=v), 2),
    (lambda v: conv(F, version=v), 6),
    (lambda v: with_version(fc(F), v), 9),
    (lambda v: with_version(op("RESHAPE", [act((1, 8, 8, 2)), ints(1, 128)], [act((1, 128))]), v), 1),
    (lambda v: with_version(resize(F), v), 3),
    (lambda v: with_version(strided_slice(F), v), 4),
    (lambda v: with_version(concat(F), v), 2),
    (lambda v: with_version(one_hot(), v), 1),
    (lambda v: with_version(select(), v), 1),
], ids=["ADD", "MUL", "SUB", "TANH", "CONV_2D", "FULLY_CONNECTED", "RESHAPE", "RESIZE_BILINEAR", "STRIDED_SLICE",
        "CONCATENATION", "ONE_HOT", "SELECT_V2"])
def test_gpu_op_version_ceilings(build, ceiling):
    assert _verdict(build(ceiling), "gpu") == (True, {})
    supported, reasons = _verdict(build(ceiling + 1), "gpu")
    assert not supported and set(reasons) == {"gpu.version"}
    assert reasons["gpu.version"].category == "op version"
    assert f"at most v{ceiling}" in reasons["gpu.version"].message


def test_gpu_ops_without_a_version_ceiling():
    # BATCH_MATMUL's and HARD_SWISH's parsers check no version.
    bmm = with_version(op("BATCH_MATMUL", [act((1, 4, 8)), act((1, 8, 4))], [act((1, 4, 4))]), 4)
    assert _verdict(bmm, "gpu") == (True, {})
    assert _verdict(unary("HARD_SWISH", F, version=3), "gpu") == (True, {})


@pytest.mark.parametrize("shape,ok", [
    ((4,), True), ((1, 4), True), ((1, 1, 4), True), ((3, 1, 1, 4), True),   # batch free from rank 4
    ((2, 4), False), ((1, 2, 4), False), ((3, 2, 1, 4), False),
])
def test_gpu_one_hot_indices_shape(shape, ok):
    supported, reasons = _verdict(one_hot(idx_shape=shape), "gpu")
    assert supported == ok and (ok or set(reasons) == {"gpu.one_hot.shape"}), sorted(reasons)


@pytest.mark.parametrize("name", ["SELECT", "SELECT_V2"])
@pytest.mark.parametrize("which", ["if_", "else_"])
@pytest.mark.parametrize("spec,ok", [
    (lambda: act((1, 2, 4)), True),                  # the output's shape
    (lambda: const(np.ones((1, 2, 4)), F), True),    # a constant of the output's shape
    (lambda: const(np.zeros(()), F), True),          # a constant scalar
    (lambda: act(()), False),                        # a runtime scalar
    (lambda: act((4,)), False),                      # broadcast
    (lambda: const(np.ones((1, 1, 4)), F), False),   # broadcast constant
], ids=["out-shape", "const-out-shape", "const-scalar", "runtime-scalar", "broadcast", "const-broadcast"])
def test_gpu_select_operand_shapes(name, which, spec, ok):
    supported, reasons = _verdict(select(name=name, out=(1, 2, 4), **{which: spec()}), "gpu")
    assert supported == ok and (ok or set(reasons) == {"gpu.select.shape"}), sorted(reasons)


def test_edgetpu_lstm_is_the_unidirectional_sequence_op():
    def lstm_op(name, cell_ty=I8):
        ins = [act((1, 5, 8), I8), const(np.ones((4, 8)), I8), const(np.ones((4, 4)), I8), const(np.zeros(4), I32),
               act((1, 4), I8), act((1, 4), cell_ty, (2 ** -11, 0))]
        return op(name, ins, [act((1, 5, 4), I8)])
    assert _verdict(lstm_op("UNIDIRECTIONAL_SEQUENCE_LSTM"), "edgetpu") == (True, {})
    for name in ("BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM"):
        supported, reasons = _verdict(lstm_op(name), "edgetpu")
        assert not supported and set(reasons) == {"edgetpu.op"}, name
    # The converter's full-integer LSTM keeps its cell state in int16, which the data-type rule rejects.
    supported, reasons = _verdict(lstm_op("UNIDIRECTIONAL_SEQUENCE_LSTM", "INT16"), "edgetpu")
    assert not supported and set(reasons) == {"edgetpu.dtype"} and "INT16" in reasons["edgetpu.dtype"].message


@pytest.mark.parametrize("x,out,dims,ok", [
    ((1, 1, 10), (10,), [0, 1], True), ((1, 1, 10), (1, 10), [1], True), ((1, 5, 10), (5, 10), [0], True),
    ((1, 5, 10), (5, 10), [], True), ((5, 1, 10), (5, 10), [1], False), ((1, 5, 1), (1, 5), [2], False),
    ((1, 5, 1, 8), (5, 8), [], False),
])
def test_edgetpu_squeeze_of_leading_ones_only(x, out, dims, ok):
    # delegates.md's examples: [1,1,10] or [1,5,10] map, [5,1,10] does not.
    supported, reasons = _verdict(squeeze(x, out, dims), "edgetpu")
    assert supported == ok and (ok or set(reasons) == {"edgetpu.squeeze.leading"}), sorted(reasons)


# -- partitioning: what a target takes of the supported ops ---------------------------------------
def _placement(model, target):
    tr = audit(model, [target]).targets[target]
    return tr, [o.on_accelerator for o in tr.ops]


def test_hexagon_delegates_at_most_4_partitions():
    # Five runs of supported ops (2..6 long) between unsupported LEAKY_RELUs: the delegate keeps the
    # 4 largest (max_delegated_partitions = 4), so the 2-op run stays on the CPU.
    tr, placed = _placement(runs(2, 3, 4, 5, 6), "hexagon")
    assert tr.summary["partitions"] == 4 and tr.summary["supported_ops"] == 20
    dropped, sep = [False] * 2, [False]
    assert placed == dropped + sep + [True] * 3 + sep + [True] * 4 + sep + [True] * 5 + sep + [True] * 6
    assert all(o.supported and "only the largest 4 partition(s)" in o.placement for o in tr.ops[:2])
    # Exactly 4 partitions: all delegated.
    tr, placed = _placement(runs(2, 3, 4, 5), "hexagon")
    assert tr.summary["partitions"] == 4 and tr.summary["accelerated_ops"] == tr.summary["supported_ops"] == 14


def test_hexagon_keeps_graph_order_among_equal_partitions():
    # Sizes 3,2,2,2,2: the 3 and the first three 2-op runs are kept, the last 2-op run is dropped.
    tr, placed = _placement(runs(3, 2, 2, 2, 2), "hexagon")
    assert tr.summary["partitions"] == 4
    assert placed[-2:] == [False, False] and all(placed[:3]) and tr.summary["accelerated_ops"] == 9


def test_hexagon_needs_2_nodes_per_partition():
    tr, placed = _placement(runs(1, 3), "hexagon")
    assert tr.summary["partitions"] == 1 and placed == [False, False, True, True, True]
    assert "below the delegate's minimum of 2" in tr.ops[0].placement
    tr, placed = _placement(runs(2, 3), "hexagon")
    assert tr.summary["partitions"] == 2 and placed == [True, True, False, True, True, True]


def test_gpu_delegates_only_the_largest_partition():
    tr, placed = _placement(runs(2, 3, op_name="ABS", between="ROUND", ty=F), "gpu")
    assert tr.summary["partitions"] == 1 and placed == [False, False, False, True, True, True]
    assert "only the largest 1 partition(s)" in tr.ops[0].placement
    tr, placed = _placement(runs(3, op_name="ABS", ty=F), "gpu")
    assert tr.summary["partitions"] == 1 and all(placed)


def test_edgetpu_parameter_cache():
    # ~8 MB of on-chip parameter cache (delegates.md §1.1.11): 8.4 MB of int8 weights overflow it and
    # the rest is streamed; the op itself still maps.
    big = audit(fc(x=(1, 2_100_000)), ["edgetpu"]).targets["edgetpu"].summary
    assert big["accelerated_ops"] == 1 and not big["parameters_fit_cache"]
    assert big["streamed_parameter_bytes"] == big["accelerated_parameter_bytes"] - 8 * 1024 * 1024 > 0
    small = audit(fc(), ["edgetpu"]).targets["edgetpu"].summary
    assert small["parameters_fit_cache"] and small["streamed_parameter_bytes"] == 0
