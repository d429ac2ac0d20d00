"""tflopt: graph-level post-processing of converted TensorFlow Lite models."""
from . import _checkout
from .errors import ModelFormatError, PipelineError, TfloptError, VerificationError
from .io import load, save
from .model import Buffer, Model, Operator, Subgraph, Tensor

__version__ = "0.1.0"
__all__ = ["load", "save", "Model", "Subgraph", "Tensor", "Operator", "Buffer", "TfloptError",
           "ModelFormatError", "VerificationError", "PipelineError", "__version__"]

_checkout.extend(__path__)  # a source checkout's passes/ as tflopt.passes (see _checkout)
