"""Qualcomm Hexagon DSP delegate. Source: tensorflow.org/lite/android/delegates/hexagon (IsNodeSupportedByHexagon and
CheckOpVersion in tensorflow/lite/delegates/hexagon/utils.cc, hexagon_delegate.cc)."""
from ..spec import Partitioning, Rule, Target

Q8 = ("INT8", "UINT8")
UTILS = "tensorflow.org/lite/android/delegates/hexagon (hexagon/utils.cc IsNodeSupportedByHexagon)"
RELU_ACT = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
SUPPORTED = (
    "ADD", "SUB", "MUL", "MEAN", "MIRROR_PAD", "PAD", "FULLY_CONNECTED", "CONCATENATION", "MAX_POOL_2D",
    "AVERAGE_POOL_2D", "TRANSPOSE_CONV", "CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "SOFTMAX", "HARD_SWISH",
    "RELU", "RELU6", "TANH", "LOGISTIC", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "L2_NORMALIZATION",
    "ARG_MAX", "ARG_MIN", "SPLIT", "NEG", "TRANSPOSE", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "QUANTIZE",
    "MINIMUM", "MAXIMUM", "SLICE", "PACK", "STRIDED_SLICE", "SQUARED_DIFFERENCE", "RSQRT",
)
V2 = ("ADD", "ARG_MAX", "ARG_MIN", "AVERAGE_POOL_2D", "CONCATENATION", "L2_NORMALIZATION", "LOGISTIC", "MAXIMUM",
      "MAX_POOL_2D", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "PACK", "PAD", "QUANTIZE", "RELU6", "SLICE", "SOFTMAX",
      "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "SPLIT", "STRIDED_SLICE", "SUB", "TANH", "TRANSPOSE")
V3 = ("CONV_2D", "DEPTHWISE_CONV_2D", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "TRANSPOSE_CONV")
EXACTLY_V2 = ("RELU", "SQUARED_DIFFERENCE", "RSQRT")
# The exactly-v2 ops need their ceiling here too, or the default of 1 would reject their only version.
MAX_VERSION = {**{k: 2 for k in V2 + EXACTLY_V2}, **{k: 3 for k in V3}, "FULLY_CONNECTED": 4}
CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def r(id, kind, reason, ops="*", source=UTILS, when=None, except_ops=(), **params):
    return Rule(id=f"hexagon.{id}", kind=kind, reason=reason, ops=ops, params=params, when=when,
                source=source, except_ops=except_ops)


RULES = (
    r("op", "op_in", "Not supported op", names=SUPPORTED),
    r("dtype", "types", "inputs must be 8-bit quantized (uint8/int8)", which="runtime_inputs", allowed=Q8,
      source="tensorflow.org/lite/android/delegates/hexagon (hexagon delegate guide)"),
    r("dtype.output", "types", "outputs must be 8-bit quantized", which="outputs", allowed=Q8,
      except_ops=("ARG_MAX", "ARG_MIN"), source="tensorflow.org/lite/android/delegates/hexagon"),
    r("rank", "rank", "every input and output must have rank <= 4", which="all", max=4,
      source="tensorflow.org/lite/android/delegates/hexagon"),
    r("static_shape", "static_shape", "static shapes only (dynamic batch needs enable_dynamic_batch_size)",
      which="all", source="tensorflow.org/lite/android/delegates/hexagon"),
    r("version", "max_version", "op version not in CheckOpVersion's allowlist", versions=MAX_VERSION, default=1,
      source="tensorflow.org/lite/android/delegates/hexagon (hexagon/utils.cc CheckOpVersion)"),
    r("version.exact2", "version_in", "op supported at version 2 only",
      EXACTLY_V2, versions={k: [2] for k in EXACTLY_V2},
      source="tensorflow.org/lite/android/delegates/hexagon"),
    r("binary.arity", "count", "exactly 2 inputs", ("ADD", "SUB", "MUL", "MINIMUM", "MAXIMUM"), which="inputs", min=2, max=2),
    # The dtype rule sees runtime inputs only; these ops also need 8-bit constant operands.
    r("binary.types", "types", "every input must be 8-bit quantized",
      ("ADD", "SUB", "MUL", "MINIMUM", "MAXIMUM", "CONCATENATION", "PACK"), which="inputs", allowed=Q8),
    r("act", "option", "fused activation must be NONE/RELU/RELU6/RELU_N1_TO_1",
      ("ADD", "SUB", "MUL", "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"),
      field="fusedActivationFunction", cmp="in", value=RELU_ACT, enum="activation"),
    r("no_act", "option", "no fused activation", ("MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_NORMALIZATION"),
      field="fusedActivationFunction", cmp="eq", value="NONE", enum="activation"),
    r("axis_const", "const", "axis/size/paddings operand must be constant",
      ("MEAN", "MIRROR_PAD", "PAD", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"), which="in:1"),
    r("axis_int32", "types", "axis/size/paddings operand must be int32",
      ("MEAN", "MIRROR_PAD", "PAD", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "ARG_MAX", "ARG_MIN", "TRANSPOSE"),
      which="in:1", allowed=("INT32",)),
    r("mirror_pad.mode", "option", "MIRROR_PAD mode must be REFLECT or SYMMETRIC", ("MIRROR_PAD",),
      field="mode", cmp="in", value=("REFLECT", "SYMMETRIC"), enum="mirror_pad_mode"),
    r("pad.arity", "count", "PAD with an explicit constant value is not supported", ("PAD",), which="inputs", min=2, max=2),
    r("fc.bias", "types", "bias must be int32", ("FULLY_CONNECTED",) + CONVS, which="in:2", allowed=("INT32",)),
    r("fc.bias_const", "const", "bias must be constant", ("FULLY_CONNECTED",), which="in:2"),
    r("fc.weights", "types", "weights must be 8-bit", ("FULLY_CONNECTED", "TRANSPOSE_CONV") + CONVS,
      which="in:1", allowed=Q8),
    r("fc.keep_num_dims", "option", "keep_num_dims must be false", ("FULLY_CONNECTED",),
      field="keepNumDims", cmp="eq", value=False),
    r("fc.format", "option", "weights format must be DEFAULT", ("FULLY_CONNECTED",),
      field="weightsFormat", cmp="eq", value="DEFAULT", enum="weights_format"),
    r("maxpool.same_large", "maxpool_same_filter", "SAME padding with a filter of 13 or more is rejected",
      ("MAX_POOL_2D",), limit=13),
    r("avgpool.arity", "count", "exactly 1 input", ("AVERAGE_POOL_2D",), which="inputs", min=1, max=1),
    r("tconv.arity", "count", "3 or 4 inputs", ("TRANSPOSE_CONV",), which="inputs", min=3, max=4),
    r("tconv.output_shape", "types", "output_shape must be int32", ("TRANSPOSE_CONV",), which="in:0",
      allowed=("INT32",)),
    r("tconv.bias", "types", "bias must be int32", ("TRANSPOSE_CONV",), which="in:3", allowed=("INT32",)),
    r("stride", "option", "stride_w must be <= 3", ("TRANSPOSE_CONV",) + CONVS, field="strideW", cmp="le", value=3),
    r("stride_h", "option", "stride_h must be <= 3", ("TRANSPOSE_CONV",) + CONVS, field="strideH", cmp="le", value=3),
    r("tconv.padding", "option", "padding must be SAME or VALID", ("TRANSPOSE_CONV",),
      field="padding", cmp="in", value=("SAME", "VALID"), enum="padding"),
    r("conv.dilation", "option", "dilation must be 1x1", ("CONV_2D",), field="dilationWFactor", cmp="eq", value=1),
    r("conv.dilation_h", "option", "dilation must be 1x1", ("CONV_2D",), field="dilationHFactor", cmp="eq", value=1),
    r("dwconv.dilation_stride", "dw_dilation_stride", "depthwise dilation only with stride 1x1", ("DEPTHWISE_CONV_2D",)),
    r("dwconv.multiplier", "dw_multiplier", "depth_multiplier must be 1 unless undilated with a 1-channel 4-D input",
      ("DEPTHWISE_CONV_2D",)),
    r("dwconv.filter_height", "dim", "filter height must be >= 2", ("DEPTHWISE_CONV_2D",),
      which="in:1", axis=1, cmp="ge", value=2),
    r("reshape.arity", "count", "at most 2 inputs", ("RESHAPE",), which="inputs", max=2),
    r("resize.size", "dim", "size must hold 2 elements", ("RESIZE_BILINEAR",), which="in:1", axis=0, cmp="eq", value=2),
    r("split.axis", "const", "split axis must be constant", ("SPLIT",), which="in:0"),
    r("split.axis_type", "types", "split axis must be int32", ("SPLIT",), which="in:0", allowed=("INT32",)),
    r("slice.const", "const", "begin and size must be constant", ("SLICE",), which="in:1|2"),
    r("slice.index_type", "types", "begin and size must be int32 or int64", ("SLICE",), which="in:1|2",
      allowed=("INT32", "INT64")),
    r("strided_slice.const", "const", "begin/end/strides must be constant", ("STRIDED_SLICE",), which="in:1|2|3"),
    r("strided_slice.index_type", "types", "begin/end/strides must be int32", ("STRIDED_SLICE",),
      which="in:1|2|3", allowed=("INT32",)),
    r("strided_slice.ellipsis", "option", "ellipsis_mask must be 0", ("STRIDED_SLICE",),
      field="ellipsisMask", cmp="eq", value=0),
    r("strided_slice.new_axis", "option", "new_axis_mask must be 0", ("STRIDED_SLICE",),
      field="newAxisMask", cmp="eq", value=0),
    r("int8_only", "types", "int8 operands only", ("SQUARED_DIFFERENCE", "RSQRT"), which="inputs", allowed=("INT8",)),
)

TARGET = Target(
    name="hexagon",
    title="Qualcomm Hexagon DSP delegate",
    rules=RULES,
    partitioning=Partitioning(max_partitions=4, min_ops=2,
                              note="at most 4 delegated partitions of at least 2 nodes (delegate defaults)"),
    sources=("tensorflow.org/lite/android/delegates/hexagon", "tensorflow/lite/delegates/hexagon/utils.cc", "hexagon_delegate.cc"),
    suggestions=("quantize(mode=int8)",),
)
