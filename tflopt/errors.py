"""Errors tflopt reports to users as one line (the CLI turns them into exit code 2)."""
from __future__ import annotations


class TfloptError(Exception):
    """A problem with the user's input or options, worded for a one-line message."""


class ModelFormatError(TfloptError):
    """The file is not a TFLite model tflopt can read: missing, truncated, corrupt, unsupported."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class VerificationError(TfloptError):
    """A model breaks an invariant the interpreter relies on (raised by the verifier)."""

    def __init__(self, problems: list[str]):
        shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
        super().__init__(shown)
        self.problems = problems


class PipelineError(TfloptError):
    """A pipeline text names an unknown pass or option, or gives a bad value."""
