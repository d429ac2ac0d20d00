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
    normalize: str = "unit"          # pixels of an image-folder ``data``, as --calibration-normalize
    extra: tuple = field(default=())

    def key(self) -> tuple:
        return (self.data, self.labels, self.samples, self.latency, self.target, self.normalize, self.extra)


def sizes(data: bytes) -> dict:
    return {"raw_bytes": len(data), "gzip_bytes": gzip_size(data), "zstd_bytes": zstd_size(data)}


_FOLDER_SAMPLES: dict = {}


def eval_samples(reference: bytes, ev: EvalSpec):
    """What compare_models reads: the data spec itself, or for an image folder (photos, which
    fit every model once resized) its samples decoded for this model by the calibration loader."""
    from pathlib import Path
    if ev.data is None or not Path(ev.data).is_dir():
        return ev.data
    key = (hash(reference), ev.data, ev.normalize)
    if key not in _FOLDER_SAMPLES:
        from ..calibration import load_calibration
        from ..io import load
        _FOLDER_SAMPLES.clear()
        _FOLDER_SAMPLES[key] = list(load_calibration(ev.data, load(reference), normalize=ev.normalize))
    return _FOLDER_SAMPLES[key]


def compare(reference: bytes, candidate: bytes, ev: EvalSpec) -> dict:
    from ..evaluation import compare_models
    return compare_models(reference, candidate, eval_samples(reference, ev), samples=ev.samples, labels=ev.labels)


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


_RUNNABLE: dict = {}


def runnable_pair(reference: bytes, candidate: bytes) -> tuple[bytes, bytes, list[str]]:
    """Both models with the custom ops the stock interpreter cannot resolve cut away (and what
    depends on them; their inputs become outputs), the same ops from each: mediapipe models
    are measured on everything up to their custom ops, as the corpus tests do."""
    from .. import runtime
    from ..io import load
    key = hash(reference)
    if key not in _RUNNABLE:
        ref, cut = runtime.runnable(reference)
        _RUNNABLE.clear()
        _RUNNABLE[key] = (ref.to_bytes(), cut)
    ref, cut = _RUNNABLE[key]
    if not cut:
        return reference, candidate, []
    return ref, runtime.cut_ops(load(candidate), set(cut)).to_bytes(), cut


def evaluate(reference: bytes, candidate: bytes, ev: EvalSpec) -> dict:
    """Flat metrics of ``candidate`` against ``reference`` (the search's input model)."""
    m = sizes(candidate)
    ref, cand, cut = runnable_pair(reference, candidate)
    if cut:
        m["cut_ops"] = cut
    m.update(fidelity(compare(ref, cand, ev)))
    if ev.latency:
        m["latency"] = latency_ms(candidate, ev)
    if ev.target:
        m.update(target_shares(candidate, ev.target))
    return m
