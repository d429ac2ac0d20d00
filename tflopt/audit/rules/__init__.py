"""One rule table per target. A new delegate is a new module here plus a line in TARGETS."""
from __future__ import annotations

from importlib import import_module

from ...errors import TfloptError

# name -> module holding TARGET
TARGETS = {
    "edgetpu": "edgetpu",
    "hexagon": "hexagon",
    "gpu": "gpu",
    "xnnpack": "xnnpack",
    "litert-gpu": "litert_gpu",
}


def get_target(name: str):
    key = name.strip().lower()
    if key not in TARGETS:
        raise TfloptError(f"unknown audit target {name!r} (known: {', '.join(TARGETS)})")
    return import_module(f"{__name__}.{TARGETS[key]}").TARGET
