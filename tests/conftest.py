"""Shared test fixtures: the committed fixture models and the cached mediapipe corpus."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MODELS = FIXTURES / "models"
DATA = FIXTURES / "data"
MEDIAPIPE_COUNT = 14


def fixture_paths(pattern: str = "*.tflite") -> list[Path]:
    return sorted(MODELS.glob(pattern))


def load_module(path: Path):
    """A script beside the package (fixtures/, benchmarks/) imported by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fetch_module():
    return load_module(FIXTURES / "fetch_mediapipe.py")


_corpus: list[Path] | None = None


def corpus() -> list[Path]:
    """The 14 mediapipe models, downloaded once and cached (see fixtures/fetch_mediapipe.py)."""
    global _corpus
    if _corpus is None:
        _corpus = [Path(p) for p in _fetch_module().mediapipe_models()]
        assert len(_corpus) == MEDIAPIPE_COUNT, f"expected {MEDIAPIPE_COUNT} mediapipe models, got {len(_corpus)}"
    return _corpus


@pytest.fixture(scope="session")
def mediapipe_models() -> list[Path]:
    return corpus()


@pytest.fixture(params=range(MEDIAPIPE_COUNT), ids=lambda i: f"mp{i:02d}")
def mediapipe_model(request) -> Path:
    """One corpus model per test instance; resolved lazily so collection never downloads."""
    return corpus()[request.param]


@pytest.fixture(params=[p.name for p in fixture_paths()])
def fixture_model(request) -> Path:
    return MODELS / request.param


def pytest_collection_modifyitems(config, items):
    # Tests using the corpus are slow by nature: mark them `real` even if the author forgot.
    for item in items:
        if "mediapipe_model" in getattr(item, "fixturenames", ()) or "mediapipe_models" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real)


def plain(obj):
    """Schema objects as nested plain data, so two models' tables compare with ==."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, (list, tuple)):
        return [plain(x) for x in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {k: plain(v) for k, v in sorted(vars(obj).items())}
    return obj


def model_digest(model, *, ignore_metadata=("buffer_location",)) -> dict:
    """Everything a faithful rewrite must keep, independent of byte layout."""
    subgraphs = []
    for sg in model.subgraphs:
        tensors = []
        for t in sg.tensors:
            d = plain(t.raw)
            d.pop("buffer")
            d["data"] = None if not t.is_constant else bytes(t.buffer.memoryview()).hex()
            tensors.append(d)
        ops = []
        for op in sg.operators:
            d = plain(op.raw)
            d["opcodeIndex"] = (op.name, op.version)
            ops.append(d)
        subgraphs.append({"name": sg.name, "inputs": list(sg.inputs), "outputs": list(sg.outputs),
                          "tensors": tensors, "ops": ops})
    metadata = {n: model.get_metadata(n) for n in model.metadata_names() if n not in ignore_metadata}
    return {"version": model.version, "description": model.description, "subgraphs": subgraphs,
            "signatures": plain(model.signature_defs), "metadata": metadata,
            "opcodes": sorted((plain(oc)["builtinCode"], plain(oc)["version"], plain(oc)["customCode"] or "")
                              for oc in model.operator_codes)}


SORTERS = ("sort", "unique", "argsort", "partition", "argpartition", "lexsort")


@pytest.fixture
def no_float16_sort(monkeypatch):
    """numpy's sort family refuses float16 arrays (numpy 2.4 misorders them on some CPUs)."""
    def guard(name, real):
        def wrapped(a, *args, **kw):
            arrays = a if name == "lexsort" else [a]
            if any(np.asarray(x).dtype == np.float16 for x in arrays):
                raise AssertionError(f"np.{name} called on a float16 array")
            return real(a, *args, **kw)
        return wrapped
    for name in SORTERS:
        monkeypatch.setattr(np, name, guard(name, getattr(np, name)))
