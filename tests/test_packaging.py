"""The wheel must ship every package: pyproject lists them by hand (passes/ is mapped to
tflopt.passes), so a new subpackage that is not listed would vanish from `pip install .`."""
from __future__ import annotations

import tomllib

from conftest import ROOT


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tflopt").rglob("__init__.py")}
    found |= {"tflopt.passes"} if (ROOT / "passes" / "__init__.py").exists() else set()
    assert config["package-dir"] == {"tflopt.passes": "passes"}
    assert listed == found


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- ci:test -->" in readme and "<!-- ci:test -->" in ci
    block = readme.split("<!-- ci:test -->", 1)[1].split("```")[1]
    assert "pip install" in block and "pytest" in block
