"""Running from a source checkout: the pass modules live in ``passes/`` beside ``tflopt/``
(installed as ``tflopt.passes``). When Python picks up the checkout's ``tflopt/`` (the
repository root is the current directory) rather than the installed package, make
``tflopt.passes`` importable from ``passes/`` by extending the package path."""
from __future__ import annotations

import importlib.util
import os


def extend(package_path: list[str]) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    passes = os.path.join(root, "passes", "__init__.py")
    if not os.path.isfile(passes) or not os.path.isfile(os.path.join(root, "pyproject.toml")):
        return  # an installed package: tflopt.passes is where setuptools put it
    try:
        found = importlib.util.find_spec("tflopt.passes") is not None
    except (ImportError, ValueError):
        found = False
    if not found and root not in package_path:
        package_path.append(root)
