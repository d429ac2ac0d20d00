"""Float16 overflow from calibration ranges: what a GPU computing in float16 would turn into inf.

GPU runtimes (the GPU delegate, the LiteRT GPU accelerator) store activations in float16 by
default; float16's largest finite value is 65504. A tensor whose float32 values exceed it on
the evaluation data overflows there. This needs no GPU: the ranges come from running the float
model in the CPU interpreter (``tflopt.calibration.collect_ranges``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..quantization import FLOAT16_MAX as F16_MAX


def float16_overflow(model, data=None, samples: int = 8) -> dict[str, Any]:
    """{"source", "samples", "tensors": [{"index", "name", "kind", "lo", "hi"}]} for subgraph 0;
    {"skipped": why} when the model cannot be run for ranges. ``data``: a calibration source
    (``load_calibration``: .npz, .npy, image folder, ...) or None for seeded random samples."""
    from ..calibration import collect_ranges, load_calibration, random_calibration
    from ..errors import TfloptError
    cal = random_calibration(model, samples) if data is None else load_calibration(data, model)
    try:
        ranges = collect_ranges(model, cal, max_samples=samples, progress=False)
    except TfloptError as e:
        return {"skipped": str(e)}
    sg = model.subgraphs[0]
    # A tensor nothing reads (an unused WHILE output) holds whatever the arena had: no signal.
    used = {t for op in sg.operators for t in op.inputs} | set(sg.outputs)
    flagged = []
    for t, (lo, hi) in sorted(ranges.ranges.items()):
        if t in used and max(abs(lo), abs(hi)) > F16_MAX:
            flagged.append({"index": t, "name": sg.tensors[t].name, "kind": "activation",
                            "lo": float(lo), "hi": float(hi)})
    for tensor in sg.tensors:
        if tensor.is_constant and tensor.type_name == "FLOAT32" and tensor.num_elements:
            data_ = tensor.data
            lo, hi = float(np.min(data_)), float(np.max(data_))
            if max(abs(lo), abs(hi)) > F16_MAX:
                flagged.append({"index": tensor.index, "name": tensor.name, "kind": "constant", "lo": lo, "hi": hi})
    return {"source": cal.source, "samples": ranges.samples, "limit": F16_MAX, "tensors": flagged}
