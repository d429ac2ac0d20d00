"""The ``quantize`` pass: one entry point, four modes.

float16 and dynamic-range rewrite weights only (``quantize_weights``); int8 and int16x8
quantize activations too, from calibration data (``quantize_static``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tflopt.pipeline import Pass, PassResult, register, searchable

IOType = Literal["float32", "int8", "uint8", "int16"]


@dataclass
class QuantizeOptions:
    mode: Literal["float16", "dynamic", "int8", "int16x8"] = searchable("int8", ["float16", "dynamic", "int8", "int16x8"])
    # Per output channel where the kernel accepts it (conv, depthwise, fully connected).
    per_channel: bool = True
    # Weights with fewer elements stay as they are; None means the mode's default
    # (1024 for dynamic, as the converter; 0 otherwise).
    min_elements: int | None = None
    # Selective quantization: op types to include / skip, tensor-name regexes, a JSON recipe.
    ops: list[str] = field(default_factory=list)
    skip_ops: list[str] = field(default_factory=list)
    include: str | None = None
    exclude: str | None = None
    recipe: str | None = None
    # Model boundary types for int8 / int16x8.
    input_type: IOType = "float32"
    output_type: IOType = "float32"
    # Activation range estimation from calibration data.
    calibration: Literal["minmax", "moving_average", "percentile", "mse"] = "minmax"
    percentile: float = 99.99
    samples: int = 0  # 0: every calibration sample
    # Weight rounding: round-to-nearest, or error-compensating (GPTQ, needs calibration).
    weights: Literal["rtn", "gptq"] = searchable("rtn", ["rtn", "gptq"])
    # Automatic mixed precision (passes/mixed_precision.py): from full int8, the fewest and
    # cheapest ops (by MACs) go back to ``fallback`` until the min output cosine / SNR on the
    # ``evaluation`` data (default: the calibration data) reaches the target, or top-1 accuracy
    # against ``labels`` (FILE.npz:KEY, or a KEY of the evaluation file) drops by at most
    # ``max_accuracy_drop``. fallback=int16: 16x8 islands (int16 activations, int8 weights)
    # where the op has a 16x8 kernel, float elsewhere. Searchable: the quantize level's
    # "fallback" dimension of a search (tflopt/search/space.py), not in the default space.
    target_cosine: float | None = None
    target_snr: float | None = None
    max_accuracy_drop: float | None = None
    labels: str | None = None
    fallback: Literal["float", "int16"] = "float"
    # target=edgetpu: prefer cuts that keep the int8 part the Edge TPU takes in one piece.
    target: Literal["any", "edgetpu"] = "any"
    evaluation: str | None = None

    def validate(self) -> None:
        if self.target_cosine is not None and not 0 < self.target_cosine <= 1:
            raise ValueError(f"target_cosine must be in (0, 1], got {self.target_cosine}")
        targets = (self.target_cosine, self.target_snr, self.max_accuracy_drop)
        if any(t is not None for t in targets) and self.mode not in ("int8", "int16x8"):
            raise ValueError("target_cosine / target_snr / max_accuracy_drop choose ops to keep at higher "
                             "precision in mode=int8 or int16x8")
        if self.max_accuracy_drop is not None and not 0 <= self.max_accuracy_drop < 1:
            raise ValueError(f"max_accuracy_drop must be in [0, 1), got {self.max_accuracy_drop}")
        if (self.max_accuracy_drop is None) != (self.labels is None):
            raise ValueError("max_accuracy_drop and labels= go together (labels: FILE.npz:KEY)")
        if self.fallback == "int16" and self.mode != "int8":
            raise ValueError("fallback=int16 puts 16x8 islands in an int8 model: it needs mode=int8")
        if self.target != "any" and all(t is None for t in targets):
            raise ValueError(f"target={self.target} steers the ops a target_cosine / target_snr / "
                             "max_accuracy_drop keeps out of int8; give one")
        if self.fallback != "float" and all(t is None for t in targets):
            raise ValueError(f"fallback={self.fallback} is the precision of the ops a target "
                             "(target_cosine / target_snr / max_accuracy_drop) keeps out of int8")
        if not 0 < self.percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.min_elements is not None and self.min_elements < 0:
            raise ValueError("min_elements must be >= 0")
        if self.samples < 0:
            raise ValueError("samples must be >= 0")
        if self.mode == "float16" and self.weights != "rtn":
            raise ValueError(f"weights={self.weights} rounds to int8 grids; mode=float16 has none "
                             "(use mode=dynamic, int8 or int16x8)")
        if self.mode in ("float16", "dynamic") and (self.input_type, self.output_type) != ("float32", "float32"):
            raise ValueError(f"mode={self.mode} keeps float32 model inputs and outputs")
        allowed = {"int8": {"float32", "int8", "uint8"}, "int16x8": {"float32", "int16"}}.get(self.mode)
        if allowed and not {self.input_type, self.output_type} <= allowed:
            raise ValueError(f"mode={self.mode} allows input/output types {', '.join(sorted(allowed))}")


@register
class Quantize(Pass):
    name = "quantize"
    summary = "Requantize weights (float16, dynamic int8) or the whole model (int8, int16x8) from any input."
    Options = QuantizeOptions

    def run(self, model, ctx) -> PassResult:
        if self.options.mode in ("float16", "dynamic"):
            from .quantize_weights import quantize_weights
            return quantize_weights(model, ctx, self.options)
        if any(t is not None for t in (self.options.target_cosine, self.options.target_snr,
                                        self.options.max_accuracy_drop)):
            from .mixed_precision import mixed_precision
            return mixed_precision(model, ctx, self.options)
        from .quantize_static import quantize_static
        return quantize_static(model, ctx, self.options)
