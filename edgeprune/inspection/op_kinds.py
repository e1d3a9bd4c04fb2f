"""The op kinds of the neutral graph, defined once: the Keras and TFLite readers map onto them, the analysis reads them.

A kind is TFLite's builtin operator name (``CONV_2D``, ``MEAN``, ...), or ``CUSTOM:`` and the name of a custom
operator, so a Keras layer is described as what the converter will make of it and each rule is written once for
both sources. The TFLite reader takes the names from LiteRT's schema; these are the ones inspect's rules name.
"""

from __future__ import annotations

CUSTOM_PREFIX = "CUSTOM:"
# An operator code LiteRT's schema does not know: BUILTIN_<code>.
UNKNOWN_BUILTIN_PREFIX = "BUILTIN_"

CONV_2D = "CONV_2D"
DEPTHWISE_CONV_2D = "DEPTHWISE_CONV_2D"
CONV_3D = "CONV_3D"
TRANSPOSE_CONV = "TRANSPOSE_CONV"
CONV_3D_TRANSPOSE = "CONV_3D_TRANSPOSE"
# MediaPipe's transposed convolution with bias, a custom op (mediapipe/util/tflite/operations/transpose_conv_bias.cc).
TRANSPOSE_CONV_BIAS = CUSTOM_PREFIX + "Convolution2DTransposeBias"
FULLY_CONNECTED = "FULLY_CONNECTED"

PAD = "PAD"
PADV2 = "PADV2"
MEAN = "MEAN"
DEPTH_TO_SPACE = "DEPTH_TO_SPACE"
RESHAPE = "RESHAPE"
CONCATENATION = "CONCATENATION"
MAX_POOL_2D = "MAX_POOL_2D"
AVERAGE_POOL_2D = "AVERAGE_POOL_2D"
RESIZE_BILINEAR = "RESIZE_BILINEAR"
RESIZE_NEAREST_NEIGHBOR = "RESIZE_NEAREST_NEIGHBOR"
ADD = "ADD"
SUB = "SUB"
MUL = "MUL"

RELU = "RELU"
RELU6 = "RELU6"
LEAKY_RELU = "LEAKY_RELU"
PRELU = "PRELU"
ELU = "ELU"
LOGISTIC = "LOGISTIC"
TANH = "TANH"
HARD_SWISH = "HARD_SWISH"
GELU = "GELU"
SOFTMAX = "SOFTMAX"

# Every convolution kind.
CONVOLUTION_KINDS = frozenset(
    {CONV_2D, DEPTHWISE_CONV_2D, CONV_3D, TRANSPOSE_CONV, CONV_3D_TRANSPOSE, TRANSPOSE_CONV_BIAS}
)
# The 2-D convolutions whose window (kernel, stride, dilation, padding) the graph describes: the only convolutions
# XNNPACK's sparse subgraph takes.
CONV_2D_KINDS = frozenset({CONV_2D, DEPTHWISE_CONV_2D})

# Kinds that use each weight once per position, and whose MACs inspect counts: once per position of the output
# (a convolution's spatial positions, a fully connected layer's rows) ...
OUTPUT_POSITION_MAC_KINDS = frozenset({CONV_2D, DEPTHWISE_CONV_2D, CONV_3D, FULLY_CONNECTED})
# ... or of the input: transposed convolutions.
INPUT_POSITION_MAC_KINDS = frozenset({TRANSPOSE_CONV, CONV_3D_TRANSPOSE, TRANSPOSE_CONV_BIAS})
MAC_KINDS = OUTPUT_POSITION_MAC_KINDS | INPUT_POSITION_MAC_KINDS
# Kinds that multiply-accumulate but whose count inspect does not work out: named as left out.
UNCOUNTED_MAC_KINDS = frozenset(
    {
        "BATCH_MATMUL", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "RNN",
        "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN", "SVDF", "STABLEHLO_CONVOLUTION",
        "STABLEHLO_DOT_GENERAL",
    }
)

PAD_KINDS = frozenset({PAD, PADV2})
# Operators that unpack a stored constant for the one consuming it: DENSIFY expands a sparse-encoded constant,
# DEQUANTIZE widens a float16 one.
UNPACKING_KINDS = frozenset({"DENSIFY", "DEQUANTIZE"})

# Elementwise operators XNNPACK keeps inside a sparse subgraph (LiteRT xnnpack/README.md, "Sparse Inference").
SPARSE_UNARY_KINDS = frozenset(
    {
        "ABS", "CEIL", ELU, "FLOOR", HARD_SWISH, LEAKY_RELU, LOGISTIC, "NEG",
        RELU, RELU6, "RELU_N1_TO_1", "ROUND", "SQUARE",
    }
)
