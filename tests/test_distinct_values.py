"""numpy 2.4's float16 sort kernels misorder arrays with many duplicates on some AVX-512 CPUs.

These tests fail on any CPU if tflopt hands numpy a float16 array to sort: the numpy sort
family is replaced by versions that refuse float16 while the passes and reports run.
"""
from __future__ import annotations

import numpy as np
import pytest

from tflopt import io, runtime
from tflopt.calibration import random_calibration
from tflopt.distinct import distinct_count, max_distinct_along, max_distinct_per_row, unique
from tflopt.pipeline import PassContext, run_pipeline
from tflopt.plot import _distinct
from tflopt.size import tensor_table
from tflopt.weights import find_weights

from conftest import MODELS

def test_distinct_helpers_count_float16_exactly():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(8).astype(np.float16)
    x = values[rng.integers(0, 8, 40_000)]
    assert distinct_count(x) == 8
    assert unique(x).dtype == np.float16 and np.array_equal(unique(x), np.sort(values.astype(np.float32)).astype(np.float16))
    rows = x.reshape(40, -1)
    assert max_distinct_per_row(rows) == 8 and max_distinct_along(rows, 0) == 8 and max_distinct_along(rows, None) == 8
    assert distinct_count(np.array([0.0, -0.0, np.nan, np.nan], np.float16)) == 2
    assert distinct_count(np.zeros(0, np.float16)) == 0


def test_guard_catches_a_float16_sort(no_float16_sort):
    with pytest.raises(AssertionError, match="float16"):
        np.unique(np.zeros(4, np.float16))


@pytest.mark.parametrize("pipeline", [
    "cluster(clusters=8,min_elements=0)",
    "cluster(clusters=4,per_channel=true,min_elements=0)",
    "prune(sparsity=0.5,min_elements=0)",
    "prune(sparsity=0.5,pattern=block,min_elements=0)",
    "prune(sparsity=0.5,pattern=nm,min_elements=0)",
    "prune(sparsity=0.5,min_elements=0),cluster(clusters=8,min_elements=0)",
    "prune(sparsity=0.5,min_elements=0),sparsify(min_elements=0)",
    "cluster(clusters=8,min_elements=0),quantize(mode=int8)",
])
def test_float16_models_never_sorted_as_float16(no_float16_sort, pipeline):
    model = io.load(MODELS / "convnet_fp16.tflite")
    assert any(r.dtype == "FLOAT16" and r.unique_values > 1 for r in tensor_table(model))
    ctx = PassContext(calibration=random_calibration(model, 4, seed=0))
    run_pipeline(model, pipeline, ctx)
    tensor_table(model)
    for w in find_weights(model, min_elements=0):
        _distinct(w)
    if "cluster" in pipeline and "quantize" not in pipeline:
        for w in find_weights(model, min_elements=0):
            axis = w.axis if "per_channel" in pipeline else None
            assert max_distinct_along(w.tensor.data, axis) <= (4 if axis is not None else 8)
    runtime.run(model)
