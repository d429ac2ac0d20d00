"""Numbers that say how close a candidate's outputs are to a reference's, and how often a
classifier is right against labels. numpy only; every function takes arrays of any shape.
"""
from __future__ import annotations

import math

import numpy as np


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    # numpy's pairwise sum, not BLAS: a threaded BLAS dot splits the sum by thread count, so the
    # same outputs scored in a one-thread worker and in the main process differed in the last
    # bits (a search's trials must score alike wherever they run), and its threads stall on
    # loaded cores.
    return float(np.sum(x * y))


def fidelity(ref, test) -> dict:
    """Cosine similarity, SNR in dB (reference power over error power), max |error|."""
    a = np.asarray(ref, np.float64).ravel()
    b = np.asarray(test, np.float64).ravel()
    err = a - b
    signal, other = _dot(a, a), _dot(b, b)
    na, nb = math.sqrt(signal), math.sqrt(other)
    cosine = _dot(a, b) / (na * nb) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    noise = _dot(err, err)
    snr = float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else float("-inf"))
    return {"cosine": cosine, "snr_db": snr, "max_abs_error": float(np.max(np.abs(err))) if err.size else 0.0}


# The name the code before the evaluation package used; tests and benchmarks import it.
metrics = fidelity


def is_classifier_output(shape) -> bool:
    """(batch, classes) with more than one class: scores a top-k can be taken of."""
    return len(shape) == 2 and int(shape[-1]) > 1


def class_labels(labels) -> np.ndarray:
    """Integer class per sample from class indices (N,) / (N, 1) or one-hot / scores (N, C)."""
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(-1)
    y = y.reshape(len(y)) if y.ndim else y.reshape(1)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.rint(y))):
        raise ValueError("labels are not whole class numbers")
    return y.astype(np.int64)


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Share of samples whose label is among the k highest scores (ties count for the label:
    a sample is right when fewer than k classes score strictly higher than its label)."""
    s = np.asarray(scores, np.float64).reshape(len(scores), -1)
    y = class_labels(labels)
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels for {len(s)} samples")
    if y.size and (y.min() < 0 or y.max() >= s.shape[1]):
        raise ValueError(f"labels run from {int(y.min())} to {int(y.max())}, the output has {s.shape[1]} classes")
    own = s[np.arange(len(y)), y]
    higher = np.count_nonzero(s > own[:, None], axis=1)
    return float(np.mean(higher < k)) if len(y) else float("nan")


def agreement(ref_scores, test_scores) -> float:
    """Share of samples where both models pick the same top class."""
    a = np.asarray(ref_scores).reshape(len(ref_scores), -1).argmax(-1)
    b = np.asarray(test_scores).reshape(len(test_scores), -1).argmax(-1)
    return float(np.mean(a == b))


def accuracy_entry(ref_scores, test_scores, labels, top_k: int = 5) -> dict:
    """Top-1 and top-k accuracy of both models against labels and the drop (reference minus
    candidate; positive is worse)."""
    k = max(1, min(int(top_k), int(np.asarray(ref_scores).reshape(len(ref_scores), -1).shape[1])))
    r1, c1 = topk_accuracy(ref_scores, labels, 1), topk_accuracy(test_scores, labels, 1)
    rk, ck = topk_accuracy(ref_scores, labels, k), topk_accuracy(test_scores, labels, k)
    return {"top_k": k, "reference_top1": r1, "candidate_top1": c1, "top1_drop": r1 - c1,
            "reference_topk": rk, "candidate_topk": ck, "topk_drop": rk - ck}


def json_safe(obj):
    """A copy of obj that ``json.dumps(allow_nan=False)`` accepts: non-finite floats become
    the strings "nan", "inf", "-inf" (JSON has no NaN; bare NaN breaks strict readers)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj
