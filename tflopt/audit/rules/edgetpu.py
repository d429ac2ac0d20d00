"""Google Edge TPU (edgetpu_compiler defaults, runtime 13/14). Source: coral.ai/docs/edgetpu/models-intro."""
from ..spec import Partitioning, Rule, Target

Q8 = ("INT8", "UINT8")
SUPPORTED = (
    "ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1",
    "AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
    "L2_NORMALIZATION", "MEAN", "PAD", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SLICE",
    "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "EXPAND_DIMS", "PACK", "QUANTIZE",
    "SUM", "TRANSPOSE_CONV", "PRELU", "UNIDIRECTIONAL_SEQUENCE_LSTM", "REDUCE_MAX", "REDUCE_MIN",
)
# The table's "LSTM ... unidirectional only" row is the sequence op the converter emits for a Keras
# LSTM, UNIDIRECTIONAL_SEQUENCE_LSTM: a Coral maintainer answered the request for Keras LSTM/GRU support
# with "the latest compiler release supports LSTM (Unidirectional only)" (google-coral/edgetpu #156), and
# the Edge TPU LSTM models in #323 (UNIDIRECTIONAL_SEQUENCE_LSTM in the log) and #598 (a Keras LSTM) are
# that op. BIDIRECTIONAL_SEQUENCE_LSTM and the single-step LSTM builtin are not listed: CPU.
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def r(id, kind, reason, source, ops="*", when=None, except_ops=(), **params):
    return Rule(id=f"edgetpu.{id}", kind=kind, reason=reason, ops=ops, params=params, when=when,
                source=source, except_ops=except_ops)


RULES = (
    r("op", "op_in", "Operation not supported",
      "coral.ai/docs/edgetpu/models-intro (Coral supported-ops table; its LSTM row is UNIDIRECTIONAL_SEQUENCE_LSTM, "
      "google-coral/edgetpu #156)", names=SUPPORTED),
    r("dtype", "types", "Operation is working on an unsupported data type (needs full 8-bit quantization)",
      "coral.ai/docs/edgetpu/models-intro (google-coral/edgetpu CHANGES.md; models-intro)", which="activations",
      allowed=Q8, except_ops=("QUANTIZE",)),
    r("quantize.output", "types", "QUANTIZE must produce 8-bit", "coral.ai/docs/edgetpu/models-intro (issue #490)",
      ("QUANTIZE",), which="out:0", allowed=Q8),
    r("weights.dtype", "types", "weights must be 8-bit", "coral.ai/docs/edgetpu/models-intro", WEIGHTED + ("TRANSPOSE_CONV",),
      which="in:1", allowed=Q8),
    r("static_shape", "static_shape", "tensor sizes must be fixed at compile time",
      "coral.ai/docs/edgetpu/models-intro (issues #829/#831)", which="all"),
    r("const_params", "const", "parameters (weights, bias) must be constant", "coral.ai/docs/edgetpu/models-intro",
      WEIGHTED, which="in:1|2"),
    r("tconv.const_params", "const", "parameters (weights, bias) must be constant", "coral.ai/docs/edgetpu/models-intro",
      ("TRANSPOSE_CONV",), which="in:1|3"),
    r("rank", "innermost_dims", "Tensor has unsupported rank (up to 3 innermost dimensions mapped)",
      "coral.ai/docs/edgetpu/models-intro (issues #30, #75)", which="activations", n=3),
    r("version", "max_version", "Operation version not supported", "coral.ai/docs/edgetpu/models-intro (issues #147, #358, #384)",
      versions={"TRANSPOSE_CONV": 2, "RSQRT": 1}),
    r("pool.act", "option", "no fused activation", "coral.ai/docs/edgetpu/models-intro", ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"),
      field="fusedActivationFunction", cmp="eq", value="NONE", enum="activation"),
    r("concat.const_zero", "values", "a constant CONCATENATION input must be all zeros (zero padding)",
      "coral.ai/docs/edgetpu/models-intro", ("CONCATENATION",), which="const_inputs", cmp="eq", value=0),
    r("conv.dilation", "options_equal", "same dilation factor in x and y", "coral.ai/docs/edgetpu/models-intro (newer table)",
      ("CONV_2D", "DEPTHWISE_CONV_2D"), a="dilationWFactor", b="dilationHFactor"),
    r("fc.format", "option", "only the default weights format", "coral.ai/docs/edgetpu/models-intro", ("FULLY_CONNECTED",),
      field="weightsFormat", cmp="eq", value="DEFAULT", enum="weights_format"),
    r("reduce.batch", "values", "no reduction over the batch dimension", "coral.ai/docs/edgetpu/models-intro",
      ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"), which="in:1", cmp="not_in", value=[0, -4]),
    r("mean.channels", "dim", "MEAN over the channels needs a channel count that is a multiple of 4",
      "coral.ai/docs/edgetpu/models-intro (newer table)", ("MEAN",), when=("values_any", {"which": "in:1", "value": [3, -1]}),
      which="in:0", axis=-1, cmp="multiple_of", value=4),
    r("pad.batch", "values", "no padding of the batch dimension", "coral.ai/docs/edgetpu/models-intro", ("PAD",),
      which="in:1", cmp="eq", value=0, rows=[0]),
    r("softmax.rank", "innermost_dims", "SOFTMAX: 1-D input only", "coral.ai/docs/edgetpu/models-intro (older table; unverified for rt 14)",
      ("SOFTMAX",), which="in:0", n=1),
    r("softmax.size", "dim", "SOFTMAX: at most 16,000 elements", "coral.ai/docs/edgetpu/models-intro (older table; unverified for rt 14)",
      ("SOFTMAX",), which="in:0", axis=-1, cmp="le", value=16000),
    r("squeeze.leading", "leading_ones_removed",
      "SQUEEZE only of leading 1s (no relayout: [1,1,10] or [1,5,10] OK, [5,1,10] not)",
      "coral.ai/docs/edgetpu/models-intro (older table; newer-runtime limits unverified)", ("SQUEEZE",), a="in:0", b="out:0"),
    r("strided_slice.strides", "values", "all strides must be 1", "coral.ai/docs/edgetpu/models-intro", ("STRIDED_SLICE",),
      which="in:3", cmp="eq", value=1),
    r("strided_slice.ellipsis", "option", "ellipsis_mask must be 0", "coral.ai/docs/edgetpu/models-intro", ("STRIDED_SLICE",),
      field="ellipsisMask", cmp="eq", value=0),
    r("strided_slice.new_axis", "option", "new_axis_mask must be 0", "coral.ai/docs/edgetpu/models-intro", ("STRIDED_SLICE",),
      field="newAxisMask", cmp="eq", value=0),
    r("pack.batch", "option", "no packing along the batch dimension", "coral.ai/docs/edgetpu/models-intro", ("PACK",),
      field="axis", cmp="ne", value=0),
    r("prelu.alpha", "innermost_dims", "PRELU alpha must be effectively 1-D", "coral.ai/docs/edgetpu/models-intro (newer table)",
      ("PRELU",), which="in:1", n=1),
    r("concat.const_inputs", "arity", "a constant CONCATENATION input requires exactly 2 inputs",
      "coral.ai/docs/edgetpu/models-intro", ("CONCATENATION",), when=("count", {"which": "const_inputs", "min": 1}),
      inputs=(2, 2)),
    r("sparse", "sparse", "sparse weights are not supported (no evidence of support)",
      "coral.ai/docs/edgetpu/models-intro notes (unverified)", which="inputs"),
)
TARGET = Target(
    name="edgetpu",
    title="Google Edge TPU (edgetpu_compiler defaults)",
    rules=RULES,
    partitioning=Partitioning(first_cut=True, note="the first unmapped op and everything after it run on the CPU"),
    sources=("coral.ai/docs/edgetpu/models-intro", "google-coral/edgetpu CHANGES.md and issues"),
    param_cache_bytes=8 * 1024 * 1024,
    # static_shapes: the compiler rejects any -1 in shape_signature (its "dynamic-sized
    # tensors" error); fixing the batch to 1 is what users do by hand.
    suggestions=("quantize(mode=int8)", "quantize(mode=int8,input_type=int8,output_type=int8)",
                 "static_shapes(batch=1)", "static_shapes(batch=1),quantize(mode=int8,input_type=int8,output_type=int8)"),
    notes=("Rows not verifiable from public sources (TRANSPOSE, RSQRT, SQUARED_DIFFERENCE, GATHER, the newer SPLIT "
           "limit, FULLY_CONNECTED output rank) are not enforced; TRANSPOSE, RSQRT and SQUARED_DIFFERENCE count as "
           "unsupported. The SOFTMAX and SQUEEZE limits (older table, newer runtimes unverified) and the "
           "sparse-weights rule are enforced but unverified; their sources say so.",
           "LSTM means UNIDIRECTIONAL_SEQUENCE_LSTM (unidirectional only); its tensors must be 8-bit like any "
           "other op's, so a full-integer LSTM's int16 cell state is reported as an unsupported data type.",
           "Parameter cache: ~8 MB of on-chip SRAM; usable space shrinks with large activations."),
)
