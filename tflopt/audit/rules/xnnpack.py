"""XNNPACK delegate (CPU), as built into ai-edge-litert 2.3: signed int8 (QS8) and the
"latest operators" (dynamically quantized conv / fully connected) are on; unsigned int8
(QU8), dynamic-weight fully connected and variable ops are off.

Source: tensorflow/lite/delegates/xnnpack/README.md and, where the README is older than the build,
tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc (google-ai-edge/LiteRT
tflite/delegates/xnnpack/xnnpack_delegate.cc, VisitNode and PrepareOpsToDelegate).
Verified op by op against the interpreter (tests/test_audit_xnnpack.py).
"""
from ..spec import Partitioning, Rule, Target

SRC = "tensorflow/lite/delegates/xnnpack/README.md; LiteRT tflite/delegates/xnnpack/xnnpack_delegate.cc"
README = "tensorflow/lite/delegates/xnnpack/README.md (xnnpack README)"

F32 = ("FLOAT32",)
FLOAT = ("FLOAT32", "FLOAT16")
# CheckTensorFloat32OrQUInt8Type with QS8 on and QU8 off.
F32_Q8 = ("FLOAT32", "INT8")
Q8 = ("INT8",)
MAX_DIMS = 6  # XNN_MAX_TENSOR_DIMS
ACT_OK = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")

# The runtime the table was last checked against, op by op (tests/test_audit_observed.py and a
# one-op probe of every float unary and binary op).
CHECKED_AGAINST = "ai-edge-litert 2.3.0 (interpreter's default XNNPACK delegate)"
# LOG: delegated by the installed runtime (one-op probe), newer than the README's list.
UNARY_FLOAT = ("ABS", "CEIL", "COS", "EXP", "FLOOR", "GELU", "HARD_SWISH", "LOG", "NEG", "RELU_N1_TO_1",
               "RELU", "RELU6", "ROUND", "RSQRT", "SIN", "SQRT", "SQUARE")
UNARY = UNARY_FLOAT + ("DEQUANTIZE", "ELU", "LOGISTIC", "TANH", "LEAKY_RELU", "QUANTIZE")
BINARY_Q8 = ("ADD", "MUL", "SUB")
BINARY_F32 = ("DIV", "MAXIMUM", "MINIMUM", "PRELU", "SQUARED_DIFFERENCE")
REDUCE = ("REDUCE_MIN", "REDUCE_MAX", "SUM", "MEAN")
CUSTOM_OPS = ("CUSTOM:Convolution2DTransposeBias", "CUSTOM:MaxPoolingWithArgmax2D", "CUSTOM:MaxUnpooling2D")
SUPPORTED = UNARY + BINARY_Q8 + BINARY_F32 + REDUCE + (
    "AVERAGE_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE", "FULLY_CONNECTED", "MAX_POOL_2D", "PAD", "RESHAPE", "RESIZE_BILINEAR",
    "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "STRIDED_SLICE", "TRANSPOSE", "TRANSPOSE_CONV",
    "DENSIFY") + CUSTOM_OPS
CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
# A DEQUANTIZE of a constant fp16/int8 tensor (or a DENSIFY of a sparse constant) is folded
# into the weights of its consumers instead of being run.
UNPACKED_DEQUANTIZE = ("const", {"which": "in:0", "folded": True})
RUNTIME_DEQUANTIZE = ("not_const", {"which": "in:0", "folded": True})


def r(id, kind, reason, ops, source=SRC, when=None, **params):
    return Rule(id=f"xnnpack.{id}", kind=kind, reason=reason, ops=ops, params=params, when=when, source=source)


RULES = (
    r("op", "op_in", "op not implemented by the XNNPACK delegate", "*", source=README, names=SUPPORTED),
    r("fc.version", "version_not_in", "FULLY_CONNECTED v8 (sparse weights) is not delegated",
      ("FULLY_CONNECTED",), versions={"FULLY_CONNECTED": [8]}),
    # -- unary --------------------------------------------------------------------------------
    r("unary.arity", "arity", "needs 1 input and 1 output", UNARY, inputs=(1, 1), outputs=(1, 1)),
    r("unary.rank", "rank", "input rank above XNN_MAX_TENSOR_DIMS", UNARY, which="in:0", max=MAX_DIMS),
    r("unary.float", "types", "float32/float16 input and output only", UNARY_FLOAT, which="all", allowed=FLOAT),
    r("dequantize.input", "types", "runtime DEQUANTIZE needs a per-tensor int8 input",
      ("DEQUANTIZE",), when=RUNTIME_DEQUANTIZE, which="in:0", allowed=Q8),
    r("dequantize.per_tensor", "per_tensor_quant", "runtime DEQUANTIZE needs a per-tensor int8 input",
      ("DEQUANTIZE",), when=RUNTIME_DEQUANTIZE, which="in:0"),
    r("dequantize.output", "types", "DEQUANTIZE must produce float32", ("DEQUANTIZE",), which="out:0", allowed=F32),
    r("dequantize.unpack_type", "types", "a constant DEQUANTIZE is folded only from float16 or int8",
      ("DEQUANTIZE",), when=UNPACKED_DEQUANTIZE, which="in:0", allowed=("FLOAT16", "INT8")),
    r("dequantize.unpack_dense", "sparse", "a constant DEQUANTIZE input must be dense",
      ("DEQUANTIZE",), when=UNPACKED_DEQUANTIZE, which="in:0"),
    r("unpack.consumers", "unpacked_weights_consumers",
      "constant weights are unpacked only when every op reading them is delegated",
      ("DEQUANTIZE", "DENSIFY"), when=UNPACKED_DEQUANTIZE),
    r("densify.input", "types", "DENSIFY of a constant sparse float32/float16/int8 tensor only",
      ("DENSIFY",), which="all", allowed=("FLOAT32", "FLOAT16", "INT8")),
    r("densify.const", "const", "DENSIFY input must be constant", ("DENSIFY",), which="in:0"),
    r("densify.same_type", "same_types", "DENSIFY output type must equal its input type", ("DENSIFY",), which="all"),
    r("elu.types", "types", "ELU: float32 or signed int8", ("ELU",), which="all", allowed=F32_Q8),
    r("logistic.types", "types", "float32 or int8 only", ("LOGISTIC", "TANH", "LEAKY_RELU"),
      which="all", allowed=F32_Q8),
    r("unary.per_tensor", "per_tensor_quant", "quantized activations must be per-tensor",
      ("ELU", "LOGISTIC", "TANH", "LEAKY_RELU", "QUANTIZE"), which="all"),
    r("leaky_relu.alpha", "option", "LEAKY_RELU alpha must be a normal non-zero number", ("LEAKY_RELU",),
      field="alpha", cmp="ne", value=0.0),
    r("leaky_relu.scale", "scale_ratio", "LEAKY_RELU input/output scale ratio outside [1/256, 128]",
      ("LEAKY_RELU",), num="in:0", den="out:0", min=1 / 256, max=128.0, closed=True),
    r("quantize.input", "types", "QUANTIZE input: float32 or int8", ("QUANTIZE",), which="in:0", allowed=F32_Q8),
    r("quantize.output", "types", "QUANTIZE output: per-tensor int8", ("QUANTIZE",), which="out:0", allowed=Q8),
    r("quantize.requant_type", "same_types", "8-bit to 8-bit QUANTIZE must keep the type",
      ("QUANTIZE",), when=("types", {"which": "in:0", "allowed": Q8}), which="all"),
    r("quantize.requant_scale", "scale_ratio", "8-bit QUANTIZE input/output scale ratio outside [1/256, 128]",
      ("QUANTIZE",), num="in:0", den="out:0", min=1 / 256, max=128.0, closed=True),
    # -- binary -------------------------------------------------------------------------------
    r("binary.arity", "arity", "needs 2 inputs and 1 output", BINARY_Q8 + BINARY_F32, inputs=(2, 2), outputs=(1, 1)),
    r("binary.rank", "rank", "input rank above XNN_MAX_TENSOR_DIMS", BINARY_Q8 + BINARY_F32,
      which="inputs", max=MAX_DIMS),
    r("binary.types", "types", "float32 or per-tensor int8 only", BINARY_Q8, which="all", allowed=F32_Q8),
    r("binary.per_tensor", "per_tensor_quant", "quantized operands must be per-tensor", BINARY_Q8, which="all"),
    r("binary.same_types", "same_types", "inputs and output must share one type", BINARY_Q8, which="all"),
    r("binary.f32", "types", "float32 only", BINARY_F32, which="all", allowed=F32),
    r("add.scale0", "scale_ratio", "input/output scale ratio outside [1/1024, 256)", ("ADD", "SUB"),
      num="in:0", den="out:0", min=1 / 1024, max=256.0),
    r("add.scale1", "scale_ratio", "input/output scale ratio outside [1/1024, 256)", ("ADD", "SUB"),
      num="in:1", den="out:0", min=1 / 1024, max=256.0),
    r("mul.scale", "scale_ratio", "input-product/output scale ratio outside [1/65536, 256)", ("MUL",),
      num=("in:0", "in:1"), den="out:0", min=1 / 65536, max=256.0),
    r("prelu.slope", "const", "PRELU slope must be static", ("PRELU",), which="in:1", folded=True),
    r("act", "option", "fused activation must be NONE/RELU/RELU_N1_TO_1/RELU6",
      ("ADD", "SUB", "MUL", "DIV", "AVERAGE_POOL_2D", "MAX_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
       "FULLY_CONNECTED", "TRANSPOSE_CONV"),
      field="fusedActivationFunction", cmp="in", value=ACT_OK, enum="activation"),
    # -- pooling ------------------------------------------------------------------------------
    r("pool.arity", "arity", "needs 1 input and 1 output", POOLS, inputs=(1, 1), outputs=(1, 1)),
    r("avgpool.f32", "types", "AVERAGE_POOL_2D: float32 only", ("AVERAGE_POOL_2D",), which="all", allowed=F32),
    r("maxpool.types", "types", "float32 or per-tensor int8", ("MAX_POOL_2D",), which="all", allowed=F32_Q8),
    r("maxpool.per_tensor", "per_tensor_quant", "quantized activations must be per-tensor", ("MAX_POOL_2D",), which="all"),
    r("pool.stride_le_filter_w", "option_le_option", "pool stride wider than the filter", POOLS,
      a="strideW", b="filterWidth"),
    r("pool.stride_le_filter_h", "option_le_option", "pool stride taller than the filter", POOLS,
      a="strideH", b="filterHeight"),
    r("pool.1x1_stride", "pool_1x1_stride", "1x1 pooling with a stride above 1 is not supported", POOLS, source=README),
    r("pool.positive", "option", "pool stride must be positive", POOLS, field="strideW", cmp="gt", value=0),
    r("padding", "option", "padding must be SAME or VALID",
      POOLS + CONVS + ("TRANSPOSE_CONV",), field="padding", cmp="in", value=("SAME", "VALID"), enum="padding"),
    # -- convolutions -------------------------------------------------------------------------
    r("conv.arity", "arity", "needs input, filter and bias", CONVS, inputs=(3, 3), outputs=(1, 1)),
    r("conv.bias", "count", "bias is mandatory", CONVS, source=README, which="in:2", min=1),
    r("conv.input", "types", "input/output float32 or per-tensor int8", CONVS, which="activations",
      allowed=F32_Q8),
    r("conv.per_tensor", "per_tensor_quant", "quantized activations must be per-tensor", CONVS, which="activations"),
    r("conv.rank", "rank", "input, filter and output must be 4-D", CONVS, which="in:0|1+out:0", min=4, max=4),
    r("conv.bias_rank", "rank", "bias must be 1-D", CONVS + ("TRANSPOSE_CONV",), which="in:2" , min=1, max=1),
    r("conv.filter_type", "types", "filter float32 or int8", CONVS, which="in:1", allowed=F32_Q8),
    r("conv.filter_static", "const", "filter and bias must be static", CONVS, which="in:1|2", folded=True),
    r("conv.filter_axis", "quant_axis", "per-channel filter quantized along the wrong axis", ("CONV_2D",),
      which="in:1", axis=0),
    r("dwconv.filter_axis", "quant_axis", "per-channel filter quantized along the wrong axis",
      ("DEPTHWISE_CONV_2D",), which="in:1", axis=3),
    r("conv.bias_type", "types", "bias float32, float16 or int32", CONVS, which="in:2",
      allowed=("FLOAT32", "FLOAT16", "INT32")),
    r("conv.mixed", "conv_types", "input/output types must match the filter (or float input with int8 filter)",
      ("CONV_2D",), dynamic_quant=True),
    r("dwconv.mixed", "conv_types", "input, filter and output must share one type", ("DEPTHWISE_CONV_2D",),
      dynamic_quant=False),
    r("conv.stride", "option", "stride must be positive", CONVS, field="strideW", cmp="gt", value=0),
    r("conv.dilation", "option", "dilation must be positive", CONVS, field="dilationWFactor", cmp="gt", value=0),
    r("dwconv.multiplier", "option", "depth multiplier must be positive", ("DEPTHWISE_CONV_2D",),
      field="depthMultiplier", cmp="gt", value=0),
    r("depth_to_space.types", "types", "float32 or per-tensor int8", ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"),
      which="all", allowed=F32_Q8),
    r("depth_to_space.block", "option", "block size must be above 1", ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"),
      source=README, field="blockSize", cmp="gt", value=1),
    # -- fully connected / matmul ---------------------------------------------------------------
    r("fc.format", "option", "only the default weights format", ("FULLY_CONNECTED",),
      field="weightsFormat", cmp="eq", value="DEFAULT", enum="weights_format"),
    r("fc.arity", "arity", "needs 2 or 3 inputs and 1 output", ("FULLY_CONNECTED",), inputs=(2, 3), outputs=(1, 1)),
    r("fc.types", "types", "input/output float32 or per-tensor int8", ("FULLY_CONNECTED",), which="activations",
      allowed=F32_Q8),
    r("fc.per_tensor", "per_tensor_quant", "quantized activations must be per-tensor", ("FULLY_CONNECTED",),
      which="activations"),
    r("fc.filter_rank", "rank", "filter must be 2-D", ("FULLY_CONNECTED",), which="in:1", min=2, max=2),
    r("fc.filter_type", "types", "filter float32, float16, int8 or int4", ("FULLY_CONNECTED",), which="in:1",
      allowed=("FLOAT32", "FLOAT16", "INT8", "INT4")),
    r("fc.static", "const", "filter and bias must be static", ("FULLY_CONNECTED",), which="in:1|2", folded=True),
    r("fc.filter_axis", "quant_axis", "per-channel filter quantized along the wrong axis", ("FULLY_CONNECTED",),
      which="in:1", axis=0),
    r("fc.bias_type", "types", "bias float32, float16 or int32", ("FULLY_CONNECTED",), which="in:2",
      allowed=("FLOAT32", "FLOAT16", "INT32")),
    r("fc.bias_size", "dims_equal", "bias size must equal the output channels", ("FULLY_CONNECTED",),
      a="in:2", axis_a=0, b="in:1", axis_b=0),
    r("fc.mixed", "fc_types", "unsupported mix of input, filter and output types", ("FULLY_CONNECTED",)),
    r("bmm.a", "types", "BATCH_MATMUL: float32 A and output", ("BATCH_MATMUL",), which="in:0+out:0", allowed=F32),
    r("bmm.b", "types", "BATCH_MATMUL: float32 or int8 B", ("BATCH_MATMUL",), which="in:1", allowed=F32_Q8),
    r("bmm.rank", "rank", "BATCH_MATMUL operands need rank >= 2", ("BATCH_MATMUL",), which="in:0|1", min=2),
    # -- shape ops ------------------------------------------------------------------------------
    r("concat.arity", "arity", "2 to 5 inputs", ("CONCATENATION",), inputs=(2, 5), outputs=(1, 1)),
    r("shape_ops.types", "types", "float32 or per-tensor int8",
      ("CONCATENATION", "PAD", "RESHAPE", "RESIZE_BILINEAR", "SLICE", "SPLIT", "STRIDED_SLICE") + REDUCE,
      which="activations", allowed=F32_Q8),
    r("shape_ops.per_tensor", "per_tensor_quant", "quantized activations must be per-tensor",
      ("CONCATENATION", "PAD", "RESHAPE", "RESIZE_BILINEAR", "SLICE", "SPLIT", "STRIDED_SLICE", "TRANSPOSE",
       "DEPTH_TO_SPACE", "SPACE_TO_DEPTH") + REDUCE, which="activations"),
    r("transpose.input", "types", "float32 or per-tensor int8", ("TRANSPOSE",), which="in:0", allowed=F32_Q8),
    r("transpose.perm", "const", "perm must be static", ("TRANSPOSE",), source=README, which="in:1"),
    r("transpose.arity", "arity", "needs 2 inputs and 1 output", ("TRANSPOSE",), inputs=(2, 2), outputs=(1, 1)),
    r("reduce.arity", "arity", "needs 2 inputs and 1 output", REDUCE, inputs=(2, 2), outputs=(1, 1)),
    r("reduce.axes", "const", "axes must be static", REDUCE, source=README, which="in:1"),
    r("reduce.axes_type", "types", "axes must be int32", REDUCE, which="in:1", allowed=("INT32",)),
    r("reduce.axes_rank", "rank", "axes must be 0-D or 1-D", REDUCE, which="in:1", max=1),
    r("pad.arity", "arity", "PAD with an explicit constant value (PADV2) is not handled", ("PAD",),
      inputs=(2, 2), outputs=(1, 1)),
    r("pad.rank", "rank", "input rank 1..6", ("PAD",), which="in:0+out:0", min=1, max=MAX_DIMS),
    r("pad.paddings", "const", "paddings must be static int32", ("PAD",), source=README, which="in:1"),
    r("pad.paddings_type", "types", "paddings must be int32", ("PAD",), which="in:1", allowed=("INT32",)),
    r("pad.non_negative", "values", "paddings must be non-negative", ("PAD",), source=README,
      which="in:1", cmp="ge", value=0),
    r("reshape.arity", "arity", "1 or 2 inputs", ("RESHAPE",), inputs=(1, 2), outputs=(1, 1)),
    r("reshape.rank", "rank", "rank above XNN_MAX_TENSOR_DIMS", ("RESHAPE",), which="in:0+out:0", max=MAX_DIMS),
    r("reshape.shape", "const", "new shape must be static", ("RESHAPE",), source=README, which="in:1"),
    r("reshape.shape_type", "types", "new shape must be int32", ("RESHAPE",), which="in:1", allowed=("INT32",)),
    r("reshape.same_quant", "same_quant", "8-bit RESHAPE must keep scale and zero point", ("RESHAPE",),
      which="in:0+out:0"),
    r("resize.rank", "rank", "RESIZE_BILINEAR input/output must be 4-D", ("RESIZE_BILINEAR",), source=README,
      which="in:0+out:0", min=4, max=4),
    r("resize.size", "const", "size must be static", ("RESIZE_BILINEAR",), source=README, which="in:1"),
    r("resize.size_type", "types", "size must be int32", ("RESIZE_BILINEAR",), which="in:1", allowed=("INT32",)),
    r("resize.arity", "arity", "needs 2 inputs and 1 output", ("RESIZE_BILINEAR",), inputs=(2, 2), outputs=(1, 1)),
    r("slice.static", "const", "begin and size must be static", ("SLICE",), source=README, which="in:1|2"),
    r("slice.index_type", "types", "begin/size int32 or int64", ("SLICE",), which="in:1|2", allowed=("INT32", "INT64")),
    r("slice.size", "values", "slice sizes must be positive", ("SLICE",), which="in:2", cmp="gt", value=0),
    r("softmax.beta", "option", "SOFTMAX beta must be 1", ("SOFTMAX",), source=README, field="beta", cmp="eq", value=1.0),
    r("softmax.arity", "arity", "needs 1 input and 1 output", ("SOFTMAX",), inputs=(1, 1), outputs=(1, 1)),
    r("softmax.f32", "types", "SOFTMAX: float32 only", ("SOFTMAX",), which="all", allowed=F32),
    r("space_to_depth.divisible", "space_to_depth_divisible", "height and width must be divisible by the block",
      ("SPACE_TO_DEPTH",)),
    r("split.outputs", "arity", "2 to 4 outputs", ("SPLIT",), source=README, inputs=(2, 2), outputs=(2, 4)),
    r("split.axis", "const", "split axis must be static", ("SPLIT",), which="in:0"),
    r("split.axis_type", "types", "split axis must be int32", ("SPLIT",), which="in:0", allowed=("INT32",)),
    r("split.types", "types", "float32 or per-tensor int8", ("SPLIT",), which="outputs",
      allowed=F32_Q8),
    r("strided_slice.masks", "option", "shrink_axis mask must be 0", ("STRIDED_SLICE",),
      source=README, field="shrinkAxisMask", cmp="eq", value=0),
    r("strided_slice.ellipsis", "option", "ellipsis mask must be 0", ("STRIDED_SLICE",), source=README,
      field="ellipsisMask", cmp="eq", value=0),
    r("strided_slice.new_axis", "option", "new_axis mask must be 0", ("STRIDED_SLICE",), source=README,
      field="newAxisMask", cmp="eq", value=0),
    r("strided_slice.static", "const", "begin, end and strides must be static", ("STRIDED_SLICE",), source=README,
      which="in:1|2|3"),
    r("strided_slice.index_type", "types", "begin, end and strides must be int32", ("STRIDED_SLICE",),
      which="in:1|2|3", allowed=("INT32",)),
    r("strided_slice.strides", "values", "strides must all be 1", ("STRIDED_SLICE",), source=README,
      which="in:3", cmp="eq", value=1),
    r("strided_slice.lengths", "dims_equal", "begin/end/strides must have one entry per input dimension",
      ("STRIDED_SLICE",), a="in:1", axis_a=0, b="in:3", axis_b=0),
    # -- transpose conv ---------------------------------------------------------------------------
    r("tconv.arity", "arity", "3 or 4 inputs", ("TRANSPOSE_CONV",), inputs=(3, 4), outputs=(1, 1)),
    r("tconv.output_shape", "const", "output shape, filter and bias must be static", ("TRANSPOSE_CONV",),
      source=README, which="in:0"),
    r("tconv.filter", "const", "output shape, filter and bias must be static", ("TRANSPOSE_CONV",),
      source=README, which="in:1|3", folded=True),
    r("tconv.types", "types", "input/output float32 or per-tensor int8", ("TRANSPOSE_CONV",),
      which="in:2+out:0", allowed=F32_Q8),
    r("tconv.filter_type", "types", "filter float32 or int8", ("TRANSPOSE_CONV",), which="in:1", allowed=F32_Q8),
    r("tconv.rank", "rank", "input, filter and output must be 4-D", ("TRANSPOSE_CONV",), which="in:1|2",
      min=4, max=4),
    r("tconv.output_rank", "rank", "output must be 4-D", ("TRANSPOSE_CONV",), which="out:0", min=4, max=4),
    r("tconv.bias_type", "types", "bias float32, float16 or int32", ("TRANSPOSE_CONV",), which="in:3",
      allowed=("FLOAT32", "FLOAT16", "INT32")),
    # -- MediaPipe custom ops ----------------------------------------------------------------------
    r("mp.types", "types", "MediaPipe custom ops: float32 only", ("CUSTOM:Convolution2DTransposeBias",),
      which="all", allowed=F32),
    r("mp.static", "const", "filter and bias must be static", ("CUSTOM:Convolution2DTransposeBias",),
      which="in:1|2", folded=True),
    r("mp.rank", "rank", "4-D input, filter and output", ("CUSTOM:Convolution2DTransposeBias",),
      which="in:0|1", min=4, max=4),
    r("mp.pool_types", "types", "float32 values only", ("CUSTOM:MaxPoolingWithArgmax2D", "CUSTOM:MaxUnpooling2D"),
      which="in:0+out:0", allowed=F32),
)

TARGET = Target(
    name="xnnpack",
    title="XNNPACK (CPU delegate)",
    rules=RULES,
    partitioning=Partitioning(note="every supported op is delegated; TFLite groups them into partitions"),
    sources=("tensorflow/lite/delegates/xnnpack/README.md",
             "LiteRT tflite/delegates/xnnpack/xnnpack_delegate.cc"),
    suggestions=("quantize(mode=float16)", "quantize(mode=int8)"),
    checked_against=CHECKED_AGAINST,
    notes=("Ground truth: the LiteRT interpreter's DELEGATE nodes (tflopt.audit.observed; `audit --observe`).",),
)
