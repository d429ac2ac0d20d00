"""Evaluation data and labels from files, in the one form every command takes: ``FILE.npz:KEY``.

``FILE.npz:KEY`` names one array of an .npz (``KEY1,KEY2`` one per model input, in input
order); ``FILE.npz`` alone picks arrays the same way everywhere (compare, bench, optimize's
gates and ``--calibration``):

1. arrays named like the model's inputs, if the file has one for every input;
2. for a one-input model, the first of ``x_test``, ``x_eval``, ``x_calib``, ``x`` the file
   holds, else its only array;
3. a file with exactly as many arrays as the model has inputs: in the order they were saved.

Anything else is a one-line error listing the file's arrays. ``FILE.npy`` is one array.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TfloptError

DEFAULT_INPUT_KEYS = ("x_test", "x_eval", "x_calib", "x")
# Labels beside the inputs: y_test with x_test, and so on.
LABEL_FOR = {"x_test": "y_test", "x_eval": "y_eval", "x_calib": "y_calib", "x": "y", "x_train": "y_train"}


def split_spec(spec) -> tuple[Path, list[str]]:
    """``"digits.npz:x_test"`` -> (Path("digits.npz"), ["x_test"]); no key -> []."""
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if sep and head.lower().endswith((".npz", ".npy")) and tail and "/" not in tail:
        return Path(head), [k for k in tail.split(",") if k]
    return Path(text), []


def _open(path: Path):
    if not path.is_file():
        raise TfloptError(f"{path}: no such data file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile / format errors come in many types
        raise TfloptError(f"{path}: not a readable .npz / .npy ({type(e).__name__})") from None
    return loaded


def pick_keys(path, keys: list[str], input_names: list[str], wanted: list[str] | None = None) -> list[str]:
    """Which arrays of an .npz feed the model's inputs (rules in the module docstring)."""
    n = len(input_names)
    if wanted:
        missing = [k for k in wanted if k not in keys]
        if missing:
            raise TfloptError(f"{path}: has no array {missing[0]!r} (arrays: {', '.join(keys)})")
        if len(wanted) != n:
            raise TfloptError(f"{path}: {len(wanted)} arrays named for a model with {n} inputs")
        return list(wanted)
    if all(name in keys for name in input_names):
        return list(input_names)
    if n == 1:
        for k in DEFAULT_INPUT_KEYS:
            if k in keys:
                return [k]
        if len(keys) == 1:
            return list(keys)
    elif len(keys) == n:
        return list(keys)
    raise TfloptError(f"{path}: cannot tell which arrays are the inputs ({', '.join(input_names)}) among "
                      f"{', '.join(keys)}; name them as {path}:KEY")


@dataclass
class EvalData:
    """Arrays of samples along axis 0, one per model input in input order."""
    arrays: list[np.ndarray]
    source: str
    keys: list[str]

    def __len__(self) -> int:
        return min(len(a) for a in self.arrays) if self.arrays else 0


def load_eval_data(spec, input_names: list[str]) -> EvalData:
    """Samples for a model with these inputs from ``FILE.npz[:KEY[,KEY...]]`` or ``FILE.npy``."""
    path, wanted = split_spec(spec)
    loaded = _open(path)
    if isinstance(loaded, np.ndarray):
        if len(input_names) != 1:
            raise TfloptError(f"{path}: a .npy holds one input, the model has {len(input_names)}; use an .npz")
        return EvalData([loaded], str(path), [path.stem])
    with loaded as z:
        keys = list(z.files)
        chosen = pick_keys(path, keys, input_names, wanted)
        try:
            arrays = [z[k] for k in chosen]
        except Exception as e:
            raise TfloptError(f"{path}: cannot read arrays ({type(e).__name__})") from None
    if not arrays or min(len(a) if a.ndim else 0 for a in arrays) == 0:
        raise TfloptError(f"{path}: no samples in {', '.join(chosen)}")
    return EvalData(arrays, str(path), chosen)


def load_labels(spec, data_spec=None, data_keys: list[str] | None = None) -> np.ndarray:
    """Labels from ``FILE.npz:KEY``, a bare ``KEY`` of the ``--data`` file, or a bare
    ``FILE.npz`` (its y_test / y_eval / ... beside the chosen inputs, else ``y``)."""
    text = str(spec)
    path, keys = split_spec(text)
    if not keys and not path.suffix and data_spec is not None:   # a key of the --data file
        path, keys = split_spec(data_spec)[0], [text]
    loaded = _open(path)
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded as z:
        files = list(z.files)
        if not keys:
            guesses = [LABEL_FOR[k] for k in (data_keys or []) if k in LABEL_FOR] + ["y_test", "y_eval", "y", "labels"]
            keys = [next((g for g in guesses if g in files), "")]
            if not keys[0]:
                raise TfloptError(f"{path}: which array holds the labels? name it as {path}:KEY "
                                  f"(arrays: {', '.join(files)})")
        if len(keys) != 1 or keys[0] not in files:
            raise TfloptError(f"{path}: has no array {keys[0]!r} (arrays: {', '.join(files)})")
        return z[keys[0]]


def same_file(a, b) -> bool:
    """Whether two data specs read the same file (keys aside)."""
    pa, pb = split_spec(a)[0], split_spec(b)[0]
    try:
        return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
    except OSError:
        return False
