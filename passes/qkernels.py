"""What the LiteRT integer kernels accept: which ops have int8 / int16x8 kernels, which need
their inputs and outputs on one encoding, which have a fixed output encoding, and where
the weights, biases and data inputs of weighted ops sit. (Reference §2.4, §2.5.)"""
from __future__ import annotations

# Ops whose output must carry the input's scale and zero point (restrict_same_input_output_scale).
SAME_SCALE = {
    "AVERAGE_POOL_2D", "MAX_POOL_2D", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "SPACE_TO_DEPTH",
    "DEPTH_TO_SPACE", "BROADCAST_TO", "EXPAND_DIMS", "TILE", "SPLIT", "SPLIT_V", "PACK", "UNPACK",
    "CONCATENATION", "GATHER", "GATHER_ND", "SELECT", "SELECT_V2", "MAXIMUM", "MINIMUM", "PAD", "PADV2",
    "MIRROR_PAD", "RESHAPE", "SQUEEZE", "SLICE", "STRIDED_SLICE", "TRANSPOSE", "REVERSE_V2",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "REDUCE_MAX", "REDUCE_MIN",
}

# (scale, zero point) of the output, per activation bit width.
FIXED_OUTPUT = {
    8: {"LOGISTIC": (1 / 256, -128), "SOFTMAX": (1 / 256, -128), "TANH": (1 / 128, 0),
        "LOG_SOFTMAX": (16 / 256, 127), "L2_NORMALIZATION": (1 / 128, 0)},
    16: {"LOGISTIC": (1 / 32768, 0), "SOFTMAX": (1 / 32768, 0), "TANH": (1 / 32768, 0)},
}

# Activations that only clamp: a tensor read by one of them alone needs no encoding beyond what
# it lets through (the fused activations' intervals, RELU [0, inf), RELU6 [0, 6], RELU_N1_TO_1
# [-1, 1]); Plan gives such a tensor the activation output's encoding.
CLIPPING = {"RELU", "RELU6", "RELU_N1_TO_1"}

# op -> (data input, weight input, bias input, weight output-channel axis)
WEIGHTED = {
    "CONV_2D": (0, 1, 2, 0),
    "DEPTHWISE_CONV_2D": (0, 1, 2, 3),
    "FULLY_CONNECTED": (0, 1, 2, 0),
    "TRANSPOSE_CONV": (2, 1, 3, 0),
}

INT8_OPS = SAME_SCALE | set(FIXED_OUTPUT[8]) | set(WEIGHTED) | {
    "ADD", "SUB", "MUL", "SQUARED_DIFFERENCE", "MEAN", "SUM", "RELU", "RELU6", "RELU_N1_TO_1",
    "LEAKY_RELU", "PRELU", "HARD_SWISH", "ABS", "RSQRT", "BATCH_MATMUL", "GELU",
}

INT16_OPS = (SAME_SCALE - {"SPACE_TO_DEPTH", "DEPTH_TO_SPACE"}) | set(FIXED_OUTPUT[16]) | set(WEIGHTED) | {
    "ADD", "SUB", "MUL", "MEAN", "SUM", "RELU", "RELU6", "LEAKY_RELU", "ABS", "GELU",
    "RSQRT", "BATCH_MATMUL",
}

# Options field that carries the bias type in 16x8 (the converter writes it; kernels check it).
BIAS_TYPE_OPTION = {"CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


def kernel_ops(bits: int) -> set[str]:
    return INT8_OPS if bits == 8 else INT16_OPS
