"""What mixed precision aims at, measured on the evaluation samples: the min output cosine /
SNR against the float model (``target_cosine`` / ``target_snr``), and / or at most
``max_accuracy_drop`` of top-1 accuracy against ``labels`` on the first (batch, classes) output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflopt.errors import TfloptError
from tflopt.evaluation.metrics import accuracy_entry, class_labels, is_classifier_output


@dataclass
class Goal:
    cosine: float | None = None
    snr: float | None = None
    max_drop: float | None = None
    labels: np.ndarray | None = None
    output: int = 0   # which output the labels score

    @classmethod
    def of(cls, options, trials) -> "Goal":
        goal = cls(options.target_cosine, options.target_snr, options.max_accuracy_drop)
        if options.max_accuracy_drop is None:
            return goal
        from tflopt.evaluation.data import load_labels
        try:
            goal.labels = class_labels(load_labels(options.labels, options.evaluation))
        except (OSError, ValueError) as e:
            raise TfloptError(f"{options.labels}: cannot read the labels: {e}") from None
        shapes = [np.concatenate([o[k] for o in trials.reference]).shape for k in range(len(trials.reference[0]))]
        goal.output = next((k for k, s in enumerate(shapes) if is_classifier_output(s)), -1)
        if goal.output < 0:
            raise TfloptError(f"{options.labels}: max_accuracy_drop needs a (batch, classes) output; "
                              f"the outputs are {', '.join(map(str, shapes))}")
        if len(goal.labels) != shapes[goal.output][0]:
            raise TfloptError(f"{options.labels}: {len(goal.labels)} labels for {shapes[goal.output][0]} "
                              "evaluation samples")
        return goal

    def measure(self, trials, model, *, keep: bool = False):
        """``trials.score`` of the model, with ``.accuracy`` (accuracy_entry) when labels count."""
        score = trials.score(model, keep=keep)
        score.accuracy = None
        if self.labels is not None:
            ref = np.concatenate([o[self.output] for o in trials.reference])
            test = np.concatenate([o[self.output] for o in score.runs])
            score.accuracy = accuracy_entry(ref, test, self.labels)
        return score

    def meets(self, score) -> bool:
        return score.meets(self.cosine, self.snr) and \
            (self.max_drop is None or score.accuracy["top1_drop"] <= self.max_drop + 1e-12)

    def loss(self, score) -> float:
        """What improving means (the fidelity proxy when only accuracy is the goal)."""
        return score.loss(self.snr)

    def describe(self) -> dict:
        return {"cosine": self.cosine, "snr_db": self.snr, "max_accuracy_drop": self.max_drop}
