"""The ``bias_correct`` pass: empirical bias correction after lossy passes.

Pruning, clustering and rounding shift the mean of each layer's output; with calibration
samples and the model as it was before those passes (``reference``), each weighted layer's
bias absorbs the mean error it now makes, layer after layer in graph order
(tflopt.recovery.bias_correction). The calibrated methods (``prune(method=obs)`` etc.)
already correct the biases of the layers they recover.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tflopt.errors import TfloptError
from tflopt.pipeline import Pass, PassResult, register


@dataclass
class BiasCorrectOptions:
    # The model before the lossy passes (path); without it, ctx.facts["reference_model"].
    reference: str | None = None
    # layer: the mean error of each layer's own weight change; empirical: also the error
    # arriving from earlier layers (matches the reference's mean outputs).
    mode: Literal["layer", "empirical"] = "layer"
    samples: int = 0
    waves: int = 16
    ops: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.samples < 0 or self.waves < 1:
            raise ValueError("samples must be >= 0 and waves >= 1")


@register
class BiasCorrect(Pass):
    name = "bias_correct"
    summary = "Shift biases by the mean output error against a reference model on calibration data."
    Options = BiasCorrectOptions

    def run(self, model, ctx) -> PassResult:
        from tflopt import io
        from tflopt.recovery.bias_correction import correct_biases
        o = self.options
        if ctx.calibration is None:
            raise TfloptError("bias_correct needs calibration data (--calibration)")
        reference = io.load(o.reference) if o.reference else ctx.facts.get("reference_model")
        if reference is None:
            raise TfloptError("bias_correct needs reference=PATH: the model before the lossy passes")
        rows, warnings = correct_biases(model, reference, ctx.calibration, samples=o.samples, waves=o.waves,
                                        ops=o.ops or None, mode=o.mode, progress=ctx.progress)
        return PassResult(bool(rows), {"corrected": len(rows), "layers": rows}, warnings)
