"""One candidate's figures, through the same evaluation API ``compare`` / ``bench`` / ``audit`` use.

The search computes nothing of its own here: sizes come from ``tflopt.size``, fidelity and
accuracy from ``compare_models``, latency from the evaluation's bench, shares from ``audit``.
This module only turns their results into the flat metric names goals use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..size import gzip_size, zstd_size


@dataclass(frozen=True)
class EvalSpec:
    """What to measure a candidate on (plain data: it travels to worker processes)."""
    data: str | None = None          # FILE.npz[:KEY], FILE.npy (None: seeded random inputs)
    labels: str | None = None        # FILE.npz:KEY or a KEY of the data file
    samples: int | None = None       # None: every sample of data
    latency: bool = False
    target: str | None = None        # audit target for the *_share metrics
    extra: tuple = field(default=())

    def key(self) -> tuple:
        return (self.data, self.labels, self.samples, self.latency, self.target, self.extra)


def sizes(data: bytes) -> dict:
    return {"raw_bytes": len(data), "gzip_bytes": gzip_size(data), "zstd_bytes": zstd_size(data)}


def compare(reference: bytes, candidate: bytes, ev: EvalSpec) -> dict:
    from ..evaluation import compare_models
    return compare_models(reference, candidate, ev.data, samples=ev.samples, labels=ev.labels)


def fidelity(comparison: dict) -> dict:
    outs = comparison["outputs"]
    out = {"min_cosine": min(o["cosine"] for o in outs), "min_snr": min(o["snr_db"] for o in outs)}
    acc = [o["accuracy"] for o in outs if "accuracy" in o]
    if acc:
        out["accuracy"] = acc[0]["candidate_top1"]
        out["accuracy_drop"] = acc[0]["top1_drop"]
        out["reference_accuracy"] = acc[0]["reference_top1"]
    agree = [o["top1_agreement"] for o in outs if "top1_agreement" in o]
    if agree:
        out["top1_agreement"] = min(agree)
    return out


def latency_ms(data: bytes, ev: EvalSpec) -> float:
    """Median latency (ms) from the evaluation's bench: XNNPACK, one thread, in a child process."""
    import tempfile
    from pathlib import Path

    from ..errors import TfloptError
    from ..evaluation import bench_model
    with tempfile.TemporaryDirectory(prefix="tflopt-search-") as tmp:
        path = Path(tmp) / "candidate.tflite"
        path.write_bytes(data)
        result = bench_model(path, data=ev.data)
    if "error" in result:
        raise TfloptError(f"latency: {result['error']}")
    return float(result["median_ms"])


def target_shares(data: bytes, target: str) -> dict:
    from ..audit import audit
    s = audit(data, [target]).targets[target].summary
    return {"target_ops_share": float(s.get("accelerated_share") or 0.0),
            "target_macs_share": float(s.get("accelerated_macs_share") or 0.0)}


def evaluate(reference: bytes, candidate: bytes, ev: EvalSpec) -> dict:
    """Flat metrics of ``candidate`` against ``reference`` (the search's input model)."""
    m = sizes(candidate)
    m.update(fidelity(compare(reference, candidate, ev)))
    if ev.latency:
        m["latency"] = latency_ms(candidate, ev)
    if ev.target:
        m.update(target_shares(candidate, ev.target))
    return m
