"""Quantization sensitivity: which groups of ops lose the most fidelity in int8, and why.

``islands`` groups the ops that share an encoding; ``analysis`` builds one calibrated
quantized model per trial from cached ranges and scores it against the float model."""
from .analysis import Trials, analyze  # noqa: F401
from .islands import Island, islands  # noqa: F401
