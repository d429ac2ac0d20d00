"""TFLite GPU delegate (OpenCL/OpenGL/Metal), default options (quantized models allowed).
Source: ai.google.dev/edge/litert/performance/gpu (gpu_compatibility.cc CheckGpuDelegateCompatibility, model_builder.cc,
model_builder_helper.cc)."""
from ..spec import Partitioning, Rule, Target

CHECK = "ai.google.dev/edge/litert/performance/gpu (tools/versioning/gpu_compatibility.cc)"
DYNAMIC_SRC = ("ai.google.dev/edge/litert/performance/gpu (dynamic tensors); observed with ai-edge-litert 2.3 "
               "CompiledModel: a -1 batch dimension is resolved at allocation")
CUSTOM_CHECK = "tensorflow/lite/tools/versioning/gpu_compatibility.cc CheckCustomOpsGpuDelegateCompatibility"
RUNTIME = ("FLOAT32", "FLOAT16", "INT8", "UINT8")
# SIGMOID is kTfLiteActSigmoid of the C API: the flatbuffer enum cannot express it, so from a
# .tflite only the first five can occur; it stays listed as the source has it.
GPU_ACT = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGMOID")
UNARY = ("ABS", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGISTIC", "NEG", "RSQRT", "SIGN", "SIN", "SQRT",
         "SQUARE", "TANH", "HARD_SWISH")
BINARY = ("DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL", "LOGICAL_AND", "LESS", "LESS_EQUAL",
          "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW", "SQUARED_DIFFERENCE", "SUB")
REDUCE = ("REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "SUM", "MEAN")
ONE_RUNTIME = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "QUANTIZE", "RESHAPE",
               "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "TILE", "TRANSPOSE", "PAD", "PADV2", "MIRROR_PAD")
SUPPORTED = UNARY + BINARY + REDUCE + ONE_RUNTIME + (
    "ADD", "ADD_N", "BATCH_MATMUL", "CAST", "CONCATENATION", "CONV_2D", "CUMSUM", "DENSIFY", "DEPTHWISE_CONV_2D",
    "DEQUANTIZE", "FULLY_CONNECTED", "GATHER", "LSTM", "MUL", "ONE_HOT", "PACK", "SPLIT", "SPLIT_V", "PRELU", "RELU",
    "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "SELECT", "SELECT_V2", "SLICE", "SOFTMAX", "STRIDED_SLICE",
    "TRANSPOSE_CONV", "CUSTOM:Convolution2DTransposeBias", "CUSTOM:MaxPoolingWithArgmax2D",
    "CUSTOM:MaxUnpooling2D", "CUSTOM:Resampler",
)
POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
# The delegate's partition helper (FP16GraphPartitionHelper / GraphWithDequantPartitionHelper,
# delegates/utils.cc and gpu/common/model_builder_helper.cc) checks each op with the outputs of
# DEQUANTIZE-of-constant-float16 ops remapped to the fp16 constants: the converter's float16
# weights count as constant operands, not runtime inputs.
FP16 = "float16"
# Op-version ceilings (ai.google.dev/edge/litert/performance/gpu: default options admit the quantized versions too).
# the GPU guide gives the doc list only (DEPTHWISE_CONV_2D v1-2, LSTM v2, RESIZE_BILINEAR v1-3, "v1
# otherwise"); the per-op numbers are the CheckMaxSupportedOpVersion calls in each parser's
# IsSupported (gpu/common/model_builder.cc, newest stored copy, google-ai-edge/LiteRT). Ops whose
# parser has no such call (BATCH_MATMUL, CAST, DEPTH_TO_SPACE, HARD_SWISH, MEAN, PACK, SPLIT, SPLIT_V,
# TILE, the reductions, the custom ops) have no ceiling.
ELEMENTWISE = tuple(x for x in UNARY if x != "HARD_SWISH") + BINARY + ("ADD", "ADD_N")
MAX_VERSION = {
    **{k: 2 for k in ELEMENTWISE}, "MUL": 3,
    "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "CONCATENATION": 2, "CONV_2D": 6, "DEPTHWISE_CONV_2D": 6,
    "CUMSUM": 1, "DENSIFY": 1, "DEQUANTIZE": 3, "FULLY_CONNECTED": 9, "GATHER": 1, "LSTM": 4, "ONE_HOT": 1,
    "PRELU": 1, "PAD": 2, "PADV2": 2, "MIRROR_PAD": 2, "QUANTIZE": 2, "RELU": 2, "RELU6": 2, "RELU_N1_TO_1": 2,
    "LEAKY_RELU": 2, "RESHAPE": 1, "RESIZE_BILINEAR": 3, "RESIZE_NEAREST_NEIGHBOR": 3, "SELECT": 1,
    "SELECT_V2": 1, "SLICE": 2, "SOFTMAX": 2, "SPACE_TO_DEPTH": 2, "STRIDED_SLICE": 4, "TRANSPOSE": 4,
    "TRANSPOSE_CONV": 3,
}
# CheckInputsOutputs / CheckConvoultionInputOutput: these ops produce exactly one output.
ONE_OUTPUT = POOLS + ("CONV_2D", "TRANSPOSE_CONV", "DENSIFY", "QUANTIZE", "CUSTOM:MaxUnpooling2D",
                      "CUSTOM:Resampler")
LSTM_FULL = ("option", {"field": "kernelType", "cmp": "eq", "value": 0})  # LSTMKernelType.FULL
LSTM_BASIC = ("option", {"field": "kernelType", "cmp": "eq", "value": 1})  # LSTMKernelType.BASIC


def r(id, kind, reason, ops="*", source=CHECK, when=None, except_ops=(), **params):
    return Rule(id=f"gpu.{id}", kind=kind, reason=reason, ops=ops, params=params, when=when, source=source,
                except_ops=except_ops)


RULES = (
    r("op", "op_in", "op is not supported by the GPU delegate", names=SUPPORTED),
    r("dtype", "types", "OP is supported, but tensor type isn't matched! (runtime tensors float32/float16, "
      "or int8/uint8 with quantized-model support)", which="activations", allowed=RUNTIME,
      except_ops=("CAST", "GATHER", "ONE_HOT", "SELECT", "SELECT_V2", "DEQUANTIZE", "DENSIFY"),
      source="ai.google.dev/edge/litert/performance/gpu (model_builder.cc IsAllAllowedTensors)"),
    r("per_tensor", "per_tensor_quant", "quantized non-constant tensors must be per-tensor", which="activations",
      source="ai.google.dev/edge/litert/performance/gpu (model_builder_helper.cc)"),
    r("rank", "rank", "bad input dims size (rank 0..5)", which="activations", max=5,
      source="ai.google.dev/edge/litert/performance/gpu (model_builder_helper.cc)"),
    # A -1 batch in shape_signature is resolved when tensors are allocated, before the delegate
    # sees the graph (the LiteRT GPU accelerator takes such models whole, observed); only
    # shapes computed from tensor values stay dynamic (tflopt/audit/shapes.py).
    r("dynamic_shape", "dynamic_shape", "dynamic (data-dependent) tensor shapes are not supported", which="all",
      source=DYNAMIC_SRC),
    r("version", "max_version", "op version newer than the delegate's parser takes", versions=MAX_VERSION,
      source="ai.google.dev/edge/litert/performance/gpu (ceilings: CheckMaxSupportedOpVersion in gpu/common/model_builder.cc)"),
    r("outputs", "arity", "exactly 1 output", ONE_OUTPUT, outputs=(1, 1)),
    r("add.arity", "count", "exactly 2 inputs", ("ADD", "ADD_N"), which="inputs", min=2, max=2),
    r("pool.arity", "count", "1 runtime input", POOLS, which="runtime_inputs", min=1, max=1, folded=FP16),
    r("pool.kernel", "option", "kernel size must be positive", POOLS, field="filterWidth", cmp="gt", value=0),
    r("pool.kernel_h", "option", "kernel size must be positive", POOLS, field="filterHeight", cmp="gt", value=0),
    r("pool.stride", "option", "strides must be positive", POOLS, field="strideW", cmp="gt", value=0),
    r("pool.stride_h", "option", "strides must be positive", POOLS, field="strideH", cmp="gt", value=0),
    r("act", "option", "fused activation must be GPU-ok (not SIGN_BIT)",
      POOLS + ("CONV_2D", "DEPTHWISE_CONV_2D", "MUL", "DIV", "SUB", "ADD", "FULLY_CONNECTED"),
      field="fusedActivationFunction", cmp="in", value=GPU_ACT, enum="activation"),
    r("bmm.arity", "arity", "2 inputs and 1 output", ("BATCH_MATMUL",), inputs=(2, 2), outputs=(1, 1)),
    r("cast.types", "cast_types", "only bool<->float and float32/int32 casts", ("CAST",),
      allowed=[("BOOL", "FLOAT32"), ("BOOL", "FLOAT16"), ("FLOAT32", "BOOL"), ("FLOAT16", "BOOL"),
               ("FLOAT32", "FLOAT32"), ("FLOAT32", "INT32"), ("INT32", "FLOAT32"), ("INT32", "INT32")]),
    r("conv.runtime", "count", "at most 2 runtime inputs", ("CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"),
      which="runtime_inputs", max=2, folded=FP16),
    r("conv.stride", "option", "stride must be positive", ("CONV_2D", "TRANSPOSE_CONV"), field="strideW", cmp="gt", value=0),
    r("conv.stride_h", "option", "stride must be positive", ("CONV_2D", "TRANSPOSE_CONV"), field="strideH", cmp="gt",
      value=0),
    r("conv.dilation", "option", "dilation must be positive", ("CONV_2D",), field="dilationWFactor", cmp="gt", value=0),
    r("conv.dilation_h", "option", "dilation must be positive", ("CONV_2D",), field="dilationHFactor", cmp="gt",
      value=0),
    r("cumsum.types", "types", "CUMSUM: float input and output", ("CUMSUM",), which="in:0+out:0",
      allowed=("FLOAT32", "FLOAT16")),
    r("cumsum.axis", "const", "CUMSUM axis must be constant", ("CUMSUM",), which="in:1"),
    r("cumsum.axis_type", "types", "CUMSUM axis must be int32", ("CUMSUM",), which="in:1", allowed=("INT32",)),
    r("densify.const", "count", "DENSIFY takes no runtime input", ("DENSIFY",), which="runtime_inputs", max=0),
    r("dwconv.rank", "rank", "input, filter and output must be 4-D", ("DEPTHWISE_CONV_2D",), which="in:0|1+out:0",
      min=4, max=4),
    r("dwconv.multiplier", "dw_multiplier", "depth_multiplier != 1 needs a 1-channel input", ("DEPTHWISE_CONV_2D",),
      dilated_ok=True),
    r("dwconv.channels", "dims_equal", "filter dim 3 must equal output channels", ("DEPTHWISE_CONV_2D",),
      a="in:1", axis_a=3, b="out:0", axis_b=3),
    r("dwconv.out_channels", "dims_equal", "output channels must equal input channels x depth_multiplier",
      ("DEPTHWISE_CONV_2D",), a="out:0", axis_a=3, b="in:0", axis_b=3, times="depthMultiplier"),
    r("dwconv.bias", "dims_equal", "bias size must equal output channels", ("DEPTHWISE_CONV_2D",),
      a="in:2", axis_a=0, b="out:0", axis_b=3),
    r("dwconv.batch", "dims_equal", "input and output batch must match", ("DEPTHWISE_CONV_2D",),
      a="in:0", axis_a=0, b="out:0", axis_b=0),
    r("block", "option", "block_size must be > 1", ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"),
      field="blockSize", cmp="gt", value=1),
    r("one_runtime", "count", "exactly 1 runtime input", ONE_RUNTIME + ("HARD_SWISH",) + REDUCE + UNARY,
      which="runtime_inputs", min=1, max=1, folded=FP16),
    r("dequantize.arity", "arity", "DEQUANTIZE: 1 input and 1 output", ("DEQUANTIZE",), inputs=(1, 1),
      outputs=(1, 1)),
    r("dequantize.int16", "types", "DEQUANTIZE of int16 is rejected", ("DEQUANTIZE",), which="in:0",
      allowed=("INT8", "UINT8", "FLOAT16")),
    r("fc.format", "option", "default weights format only", ("FULLY_CONNECTED",), field="weightsFormat",
      cmp="eq", value="DEFAULT", enum="weights_format"),
    r("fc.input", "not_const", "input 0 must not be constant", ("FULLY_CONNECTED",), which="in:0"),
    r("fc.keep_dims", "same_rank", "with keep_num_dims input and output ranks must match", ("FULLY_CONNECTED",),
      when=("option", {"field": "keepNumDims", "cmp": "eq", "value": True}), a="in:0", b="out:0"),
    r("gather.data", "types", "GATHER data must not be int32", ("GATHER",), which="in:0",
      allowed=("FLOAT32", "FLOAT16", "INT8", "UINT8")),
    r("gather.indices", "types", "GATHER indices must be int32", ("GATHER",), which="in:1", allowed=("INT32",)),
    r("gather.indices_rank", "rank", "GATHER indices must be 1-D", ("GATHER",), which="in:1", min=1, max=1),
    r("gather.operands", "count", "GATHER handles 1 or 2 runtime operands (2 runtime, or 1 runtime + 1 constant)",
      ("GATHER",), which="runtime_inputs", min=1, max=2, folded=FP16),
    # A full-kernel LSTM has 20 or 24 inputs by schema, so the 20..24 range is exact in practice.
    r("lstm.full.arity", "arity", "LSTM full kernel: 20 or 24 inputs and 1 output", ("LSTM",), when=LSTM_FULL,
      inputs=(20, 24), outputs=(1, 1)),
    r("lstm.full.act", "option", "LSTM full kernel: activation must be sigmoid or tanh", ("LSTM",), when=LSTM_FULL,
      field="fusedActivationFunction", cmp="in", value=("SIGMOID", "TANH"), enum="activation"),
    r("lstm.basic.arity", "arity", "LSTM basic kernel: 5 inputs and 4 outputs", ("LSTM",), when=LSTM_BASIC,
      inputs=(5, 5), outputs=(4, 4)),
    r("lstm.basic.runtime", "count", "LSTM basic kernel: 3 runtime inputs", ("LSTM",), when=LSTM_BASIC,
      which="runtime_inputs", min=3, max=3, folded=FP16),
    r("lstm.basic.act", "option", "LSTM basic kernel: activation must be tanh", ("LSTM",), when=LSTM_BASIC,
      field="fusedActivationFunction", cmp="eq", value="TANH", enum="activation"),
    r("lstm.basic.cell_clip", "option", "LSTM basic kernel: cell_clip must be 0", ("LSTM",), when=LSTM_BASIC,
      field="cellClip", cmp="eq", value=0.0),
    r("lstm.basic.proj_clip", "option", "LSTM basic kernel: proj_clip must be 0", ("LSTM",), when=LSTM_BASIC,
      field="projClip", cmp="eq", value=0.0),
    r("reduce.axes", "const", "axes must be constant", REDUCE, which="in:1"),
    r("reduce.axes_type", "types", "axes must be int32", REDUCE, which="in:1", allowed=("INT32",)),
    r("mul.arity", "count", "exactly 2 inputs", ("MUL",), which="inputs", min=2, max=2),
    r("mul.broadcast", "no_mutual_broadcast", "one input must be >= the other in every dimension", ("MUL",)),
    r("one_hot.axis", "option", "ONE_HOT axis must be -1", ("ONE_HOT",), field="axis", cmp="eq", value=-1),
    r("one_hot.indices", "types", "ONE_HOT indices must be int32", ("ONE_HOT",), which="in:0", allowed=("INT32",)),
    r("one_hot.values", "const", "on/off values must be constant scalars", ("ONE_HOT",), which="in:2|3"),
    r("one_hot.values_type", "types", "on/off values must be float32", ("ONE_HOT",), which="in:2|3",
      allowed=("FLOAT32",)),
    r("one_hot.values_scalar", "rank", "on/off values must be scalars", ("ONE_HOT",), which="in:2|3", max=0),
    # "only batch/channel non-singleton": the checker lets the last (channel) dimension of the
    # indices exceed 1, and the first (batch) one too when the indices have rank 4 or more.
    r("one_hot.shape", "innermost_dims", "ONE_HOT indices: only the batch and channel dimensions may exceed 1",
      ("ONE_HOT",), which="in:0", n=1, batch_from_rank=4),
    r("pad.paddings", "dim", "paddings must be 3x2 or 4x2", ("PAD", "PADV2", "MIRROR_PAD"), which="in:1",
      axis=0, cmp="in", value=(3, 4)),
    r("pad.paddings_cols", "dim", "paddings must be 3x2 or 4x2", ("PAD", "PADV2", "MIRROR_PAD"), which="in:1",
      axis=1, cmp="eq", value=2),
    r("mirror_pad.mode", "option", "MIRROR_PAD: only REFLECT", ("MIRROR_PAD",), field="mode", cmp="eq",
      value="REFLECT", enum="mirror_pad_mode"),
    r("resize.corners", "options_not_both", "align_corners and half_pixel_centers together are not supported",
      ("RESIZE_BILINEAR",), a="alignCorners", b="halfPixelCenters"),
    r("select.cond", "types", "condition must be bool or float", ("SELECT", "SELECT_V2"), which="in:0",
      allowed=("BOOL", "FLOAT32", "FLOAT16")),
    r("select.values", "types", "if/else values must be float", ("SELECT", "SELECT_V2"), which="in:1|2",
      allowed=("FLOAT32", "FLOAT16")),
    r("select.shape", "same_shape", "if/else values must have the output's shape or be constant scalars",
      ("SELECT", "SELECT_V2"), which="in:1|2", like="out:0", or_const_scalar=True, folded=FP16),
    r("slice.arity", "count", "SLICE needs 3 inputs", ("SLICE",), which="inputs", min=3, max=3),
    r("slice.rank", "rank_in", "SLICE/STRIDED_SLICE input rank 3 or 4", ("SLICE", "STRIDED_SLICE"),
      which="in:0", ranks=(3, 4)),
    r("softmax.beta", "option", "SOFTMAX beta must be 1", ("SOFTMAX",), field="beta", cmp="eq", value=1.0),
    r("strided_slice.arity", "count", "STRIDED_SLICE needs 4 inputs", ("STRIDED_SLICE",), which="inputs", min=4, max=4),
    r("strided_slice.masks", "option", "shrink_axis_mask must be 0", ("STRIDED_SLICE",),
      field="shrinkAxisMask", cmp="eq", value=0),
    r("strided_slice.ellipsis", "option", "ellipsis_mask must be 0", ("STRIDED_SLICE",),
      field="ellipsisMask", cmp="eq", value=0),
    r("strided_slice.new_axis", "option", "new_axis_mask must be 0", ("STRIDED_SLICE",),
      field="newAxisMask", cmp="eq", value=0),
    # The custom ops' "per-op input/stride checks" (§3.3 CUSTOM row), as CheckCustomOpsGpuDelegateCompatibility
    # counts them. Their kernel/stride checks read the op's custom options (a raw C struct) and are not
    # enforced here.
    r("custom.two_runtime", "count", "2 runtime inputs", ("CUSTOM:MaxUnpooling2D", "CUSTOM:Resampler"),
      which="runtime_inputs", min=2, max=2, folded=FP16, source=CUSTOM_CHECK),
    r("custom.argmax.runtime", "count", "MaxPoolingWithArgmax2D: 1 runtime input", ("CUSTOM:MaxPoolingWithArgmax2D",),
      which="runtime_inputs", min=1, max=1, folded=FP16, source=CUSTOM_CHECK),
    r("custom.argmax.outputs", "arity", "MaxPoolingWithArgmax2D: 2 outputs (values and indices)",
      ("CUSTOM:MaxPoolingWithArgmax2D",), outputs=(2, 2), source=CUSTOM_CHECK),
    r("custom.tconv.weights", "count", "Convolution2DTransposeBias needs its weights operand",
      ("CUSTOM:Convolution2DTransposeBias",), which="inputs", min=2, source=CUSTOM_CHECK),
    r("unary.const", "count", "no constant input", UNARY, which="const_inputs", max=0, folded=FP16),
    r("binary.arity", "count", "2 runtime inputs, or 1 runtime + 1 constant", BINARY, which="runtime_inputs",
      min=1, max=2, folded=FP16),
)

TARGET = Target(
    name="gpu",
    title="TFLite GPU delegate",
    rules=RULES,
    partitioning=Partitioning(max_partitions=1, note="only the largest supported partition is delegated"),
    sources=("ai.google.dev/edge/litert/performance/gpu", "tensorflow/lite/tools/versioning/gpu_compatibility.cc",
             "tensorflow/lite/delegates/gpu/common/model_builder.cc"),
    suggestions=("quantize(mode=float16)",),
    notes=("tf.lite.experimental.Analyzer(gpu_compatibility=True) in TF 2.21 / ai-edge-litert 2.3 reports every "
           "model compatible (even TOPK_V2, ARG_MAX and int32 arithmetic); these rules follow the delegate's source (model_builder.cc).",),
)
