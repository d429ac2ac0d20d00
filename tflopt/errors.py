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


class WriteCheckError(TfloptError):
    """What tflopt was about to write fails the check the runtime will make; nothing is written."""


MESSAGE_LIMIT = 500  # characters of one error line; corrupt inputs can hold 100,000-long shapes


def quote(value, limit: int = 60) -> str:
    """``value`` as a message quotes it, shortened to about ``limit`` characters: a list or
    shape keeps its head and says how many items it has, anything else is cut with '...'."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        items = [str(v) for v in list(value)[:limit // 2]]
        text = "[" + ", ".join(items) + "]"
        n = len(value)
        if len(text) <= limit and len(items) == n:
            return text
        shown = []
        used = 1
        for s in items:
            if used + len(s) + 2 > limit - 20:
                break
            shown.append(s)
            used += len(s) + 2
        return "[" + ", ".join(shown) + f", ... ({n:,} items)]"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def cap_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One message line no longer than ``limit``: the last guard if a quoted value slipped by."""
    return text if len(text) <= limit else text[:limit - 25] + f"... ({len(text):,} chars)"
