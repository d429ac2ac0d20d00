"""Rules trip on one-op models built with the IR (no tensorflow), and fixtures map as documented."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import tflopt
from tflopt.audit import audit
from tflopt.model import Buffer, Model
from tflopt.schema import TensorType, fb

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "fixtures" / "models"
Q = (0.05, 0)


def one_op(op, ins, outs, options=None, version=1):
    """ins/outs: (shape, type name, data or None, quant or None[, shape_signature])."""
    raw = fb.ModelT()
    raw.version = 3
    raw.subgraphs = [fb.SubGraphT()]
    m = Model(raw, [Buffer()])
    sg = m.main
    idx = []
    for k, spec in enumerate(list(ins) + list(outs)):
        shape, ty, data, quant = spec[:4]
        sig = spec[4] if len(spec) > 4 else None
        t = sg.add_tensor(f"t{k}", shape, getattr(TensorType, ty), data=data, quantization=quant,
                          shape_signature=sig)
        idx.append(t.index)
    i_idx, o_idx = idx[:len(ins)], idx[len(ins):]
    sg.insert_operator(0, op, i_idx, o_idx, options=options, version=version)
    sg.raw.inputs = [t for t, s in zip(i_idx, ins) if s[2] is None]
    sg.raw.outputs = o_idx
    return m


def act(shape, ty="INT8", quant=Q, sig=None):
    return (shape, ty, None, quant if ty in ("INT8", "UINT8") else None, sig)


def const(arr, ty, quant=None):
    return (list(np.shape(arr)), ty, np.asarray(arr), quant)


def conv_model(ty="INT8", **opts):
    o = fb.Conv2DOptionsT()
    o.strideW = o.strideH = 1
    o.dilationWFactor = o.dilationHFactor = 1
    for k, v in opts.items():
        setattr(o, k, v)
    wt = "INT8" if ty == "INT8" else "FLOAT32"
    w = np.ones((4, 3, 3, 2), np.int8 if wt == "INT8" else np.float32)
    b = np.zeros(4, np.int32 if ty == "INT8" else np.float32)
    return one_op("CONV_2D", [act([1, 8, 8, 2], ty), const(w, wt, Q if wt == "INT8" else None),
                              const(b, "INT32" if ty == "INT8" else "FLOAT32")],
                  [act([1, 8, 8, 4], ty)], options=(fb.BuiltinOptions.Conv2DOptions, o))


def verdict(model, target):
    op = audit(model, [target]).targets[target].ops[0]
    return op.supported, {r.rule for r in op.reasons}


def test_valid_int8_conv_is_supported_everywhere():
    m = conv_model()
    for target in ("edgetpu", "hexagon", "gpu", "xnnpack"):
        assert verdict(m, target) == (True, set()), target


@pytest.mark.parametrize("target,rule,model", [
    ("edgetpu", "edgetpu.dtype", lambda: conv_model("FLOAT32")),
    ("hexagon", "hexagon.dtype", lambda: conv_model("FLOAT32")),
    ("edgetpu", "edgetpu.conv.dilation", lambda: conv_model(dilationWFactor=2)),
    ("hexagon", "hexagon.conv.dilation", lambda: conv_model(dilationWFactor=2)),
    ("hexagon", "hexagon.stride", lambda: conv_model(strideW=4)),
    ("hexagon", "hexagon.act", lambda: conv_model(fusedActivationFunction=fb.ActivationFunctionType.TANH)),
    ("gpu", "gpu.act", lambda: conv_model(fusedActivationFunction=fb.ActivationFunctionType.SIGN_BIT)),
    ("xnnpack", "xnnpack.act", lambda: conv_model(fusedActivationFunction=fb.ActivationFunctionType.TANH)),
    ("edgetpu", "edgetpu.version", lambda: _tconv_v3()),
    ("hexagon", "hexagon.version", lambda: _with_version(conv_model(), 4)),
])
def test_rule_trips(target, rule, model):
    supported, rules = verdict(model(), target)
    assert not supported and rule in rules, rules


def _with_version(m, v):
    m.main.operators[0].opcode.version = v
    return m


def _tconv_v3():
    m = one_op("TRANSPOSE_CONV", [const(np.array([1, 8, 8, 4], np.int32), "INT32"),
                                  const(np.ones((4, 3, 3, 2), np.int8), "INT8", Q), act([1, 8, 8, 2])],
               [act([1, 8, 8, 4])], options=(fb.BuiltinOptions.TransposeConvOptions, fb.TransposeConvOptionsT()),
               version=3)
    return m


@pytest.mark.parametrize("target,rule,mutate", [
    ("edgetpu", "edgetpu.static_shape", lambda t: setattr(t.raw, "shapeSignature", [-1, 8, 8, 2])),
    ("hexagon", "hexagon.static_shape", lambda t: setattr(t.raw, "shapeSignature", [-1, 8, 8, 2])),
    ("edgetpu", "edgetpu.rank", lambda t: setattr(t.raw, "shape", [3, 8, 8, 2])),
    ("hexagon", "hexagon.rank", lambda t: setattr(t.raw, "shape", [1, 1, 8, 8, 2])),
    ("gpu", "gpu.rank", lambda t: setattr(t.raw, "shape", [1, 1, 1, 8, 8, 2])),
    ("gpu", "gpu.dtype", lambda t: setattr(t.raw, "type", TensorType.INT32)),
    ("xnnpack", "xnnpack.conv.rank", lambda t: setattr(t.raw, "shape", [8, 8, 2])),
])
def test_input_tensor_rules_trip(target, rule, mutate):
    m = conv_model()
    mutate(m.main.tensors[m.main.operators[0].inputs[0]])
    supported, rules = verdict(m, target)
    assert not supported and rule in rules, rules


@pytest.mark.parametrize("target", ["gpu", "litert-gpu"])
def test_gpu_takes_a_free_batch_dimension(target):
    # The runtime resolves a -1 batch when it allocates tensors (observed: the LiteRT GPU
    # accelerator takes such models whole); only data-dependent shapes are dynamic.
    m = conv_model("FLOAT32")
    for t in m.main.tensors:
        if not t.is_constant:
            t.raw.shapeSignature = [-1] + list(t.shape[1:])
    supported, rules = verdict(m, target)
    assert supported, rules


def test_edgetpu_cuts_after_first_unmapped_op():
    m = tflopt.load(MODELS / "convnet_int8.tflite", verify=False)
    ops = audit(m, ["edgetpu"]).targets["edgetpu"]
    first = m.main.operators[3]
    first.opcode.version = first.version  # unchanged op, but make MAX_POOL carry a fused activation
    first.options.fusedActivationFunction = fb.ActivationFunctionType.RELU
    ops = audit(m, ["edgetpu"]).targets["edgetpu"]
    assert [o.on_accelerator for o in ops.ops[:3]] == [True] * 3
    assert not ops.ops[3].supported and "edgetpu.pool.act" in {r.rule for r in ops.ops[3].reasons}
    later = ops.ops[4:10]
    assert all(o.supported and not o.on_accelerator and "first unmapped" in o.placement for o in later)
    assert ops.summary["partitions"] == 1


@pytest.mark.parametrize("name", ["convnet_fp32", "mlp_fp32", "gru_fp32", "attention_fp32", "convnet_dynamic"])
def test_float_models_are_not_mapped_for_data_type(name):
    m = tflopt.load(MODELS / f"{name}.tflite", verify=False)
    for target in ("edgetpu", "hexagon"):
        tr = audit(m, [target]).targets[target]
        assert tr.summary["accelerated_ops"] == 0
        cats = {r.category for o in tr.ops for r in o.reasons}
        assert "tensor type" in cats


@pytest.mark.parametrize("name", ["convnet_int8io", "mlp_int8io"])
def test_full_int8_fixtures_map_on_edgetpu(name):
    m = tflopt.load(MODELS / f"{name}.tflite", verify=False)
    s = audit(m, ["edgetpu"]).targets["edgetpu"].summary
    assert s["accelerated_ops"] == s["ops"] and s["parameters_fit_cache"]


def test_int8_fixture_with_float_io_keeps_only_trailing_dequantize_on_cpu():
    m = tflopt.load(MODELS / "convnet_int8.tflite", verify=False)
    tr = audit(m, ["edgetpu"]).targets["edgetpu"]
    off = [o for o in tr.ops if not o.on_accelerator]
    assert [o.op for o in off] == ["DEQUANTIZE"] and tr.ops[0].op == "QUANTIZE" and tr.ops[0].on_accelerator


def test_macs_of_conv():
    tr = audit(conv_model(), ["xnnpack"]).targets["xnnpack"]
    assert tr.ops[0].macs == 1 * 8 * 8 * 4 * 3 * 3 * 2


def test_deterministic_json():
    m = tflopt.load(MODELS / "gru_int8.tflite", verify=False)
    assert audit(m).as_dict() == audit(m).as_dict()


@pytest.mark.parametrize("name", ["convnet", "mlp", "attention", "gru", "lstm", "loop", "multisig"])
def test_gpu_takes_float16_weights_behind_dequantize_as_constants(name):
    # The GPU delegate checks each op with DEQUANTIZE-of-fp16-constant outputs remapped to the
    # fp16 constants, so the converter's float16 variant needs no extra runtime inputs.
    fp16 = audit(tflopt.load(MODELS / f"{name}_fp16.tflite", verify=False), ["gpu"]).targets["gpu"]
    fp32 = audit(tflopt.load(MODELS / f"{name}_fp32.tflite", verify=False), ["gpu"]).targets["gpu"]
    assert not any(r.rule == "gpu.conv.runtime" for o in fp16.ops for r in o.reasons)
    unsupported = lambda tr: sorted(o.op for o in tr.ops if not o.supported)
    assert unsupported(fp16) == unsupported(fp32)
    if name in ("convnet", "mlp"):
        assert fp16.summary["accelerated_ops"] == fp16.summary["ops"]
        assert fp16.summary["accelerated_macs_share"] == 100.0


def test_gpu_counts_int8_weights_behind_dequantize_as_runtime_inputs():
    # Only float16 DEQUANTIZEs are remapped: the same graph with int8 weights and bias behind
    # the DEQUANTIZEs gives the convolution three runtime inputs.
    m = tflopt.load(MODELS / "convnet_fp16.tflite", verify=False)
    sg = m.main
    conv = next(op for op in sg.operators if op.name == "CONV_2D")
    for k in (1, 2):  # weights and bias
        w = sg.tensors[sg.producer(conv.inputs[k]).inputs[0]]
        w.set_data(np.ones(w.shape, np.int8), TensorType.INT8)
        w.set_quantization([0.01], [0])
    tr = audit(m, ["gpu"]).targets["gpu"]
    verdict = tr.ops[sg.operators.index(conv)]
    assert not verdict.supported and {r.rule for r in verdict.reasons} == {"gpu.conv.runtime"}
