"""The search cache: every intermediate model, and every trial's figures, on disk.

A model is keyed by the input model's hash, the pipeline prefix that made it and the
calibration data's hash, so branches sharing a prefix run it once, a rerun does no pass
work and an interrupted search resumes. Beside each model sits what later passes read from
earlier ones (``PassContext.facts``: pruned masks, cluster layouts), so resuming from a
cached prefix writes the same bytes as running the whole pipeline. Figures are keyed by the
model key and the evaluation's hash. Files are written atomically (temporary name, rename),
so workers sharing the folder (local processes, or Dask workers on a shared path) never read
half a file; two workers writing the same key write the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tflopt" / "search"
DEFAULT_MAX_BYTES = 4 << 30


def digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, (bytes, bytearray, memoryview)) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def model_key(input_hash: str, prefix: str, calibration_hash: str) -> str:
    return digest("model", input_hash, prefix, calibration_hash)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Cache:
    """``root/models/KEY.tflite`` (+ ``KEY.facts``) and ``root/trials/KEY.json``."""

    def __init__(self, root: Path | str, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)

    def _model(self, key: str) -> Path:
        return self.root / "models" / f"{key}.tflite"

    def _trial(self, key: str) -> Path:
        return self.root / "trials" / f"{key}.json"

    def get_model(self, key: str) -> tuple[bytes, dict] | None:
        path = self._model(key)
        facts = path.with_suffix(".facts")
        try:
            data, fact_bytes = path.read_bytes(), facts.read_bytes()
        except FileNotFoundError:
            return None
        os.utime(path)  # recently used: kept longest when the size bound evicts
        return data, pickle.loads(fact_bytes)

    def put_model(self, key: str, data: bytes, facts: dict) -> None:
        # Facts first: a model file present means its facts are too.
        _atomic_write(self._model(key).with_suffix(".facts"), pickle.dumps(facts, protocol=4))
        _atomic_write(self._model(key), data)

    def get_trial(self, key: str) -> dict | None:
        try:
            return json.loads(self._trial(key).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def put_trial(self, key: str, record: dict) -> None:
        _atomic_write(self._trial(key), json.dumps(record, sort_keys=True).encode())

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def trim(self) -> int:
        """Evict least recently used models (and their facts) until under the bound; trial
        figures are tiny and kept. Returns bytes freed."""
        models = sorted(self.root.glob("models/*.tflite"), key=lambda p: p.stat().st_mtime)
        total, freed = self.size(), 0
        for p in models:
            if total - freed <= self.max_bytes:
                break
            for q in (p, p.with_suffix(".facts")):
                if q.exists():
                    freed += q.stat().st_size
                    q.unlink()
        return freed

    def clean(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
