"""Quantization sensitivity: which groups of ops lose the most fidelity in int8, and why.

``islands`` groups the ops that share an encoding; ``analysis`` calibrates once and scores
quantized variants against the float model; ``switches`` builds the one model per kind of
question whose switch input picks the island, so a question is a run, not a rebuild."""
from .analysis import Trials, analyze, ranking  # noqa: F401
from .islands import Island, islands  # noqa: F401
