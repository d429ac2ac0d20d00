"""TFLite sparse format: decode/encode round trips and agreement with the interpreter's DENSIFY."""
from __future__ import annotations

import numpy as np
import pytest

from tflopt import io, runtime, sparse
from tflopt.schema import fb


def _sparse_array(shape, density, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    a[rng.random(shape) >= density] = 0
    return a


@pytest.mark.parametrize("shape,block,order", [
    ((7, 13), None, None),
    ((8, 64), (4,), None),
    ((8, 64), (16,), None),
    ((6, 10), (4,), None),                 # block overhangs the last dim: padded, then cropped
    ((12, 8), (4,), [0, 1, 2]),
    ((5, 3, 3, 6), None, None),
    ((5, 3, 3, 6), None, [3, 0, 1, 2]),
    ((8, 4), (2, 2), None),                # a 2-D block
])
def test_round_trip(shape, block, order):
    a = _sparse_array(shape, 0.3)
    values, params = sparse.encode(a, block=block, traversal_order=order)
    assert values.dtype == a.dtype
    if block is None:
        assert values.size == np.count_nonzero(a)
    assert np.array_equal(sparse.decode(values, a.shape, params), a)


def test_all_zero_and_all_dense():
    z = np.zeros((4, 5), np.float32)
    values, params = sparse.encode(z)
    assert values.size == 0
    assert np.array_equal(sparse.decode(values, z.shape, params), z)
    d = np.arange(1, 21, dtype=np.int8).reshape(4, 5)
    values, params = sparse.encode(d, block=(16,))
    assert np.array_equal(sparse.decode(values, d.shape, params), d)


def test_csr_metadata_like_the_converter():
    # Observed converter output for a 1x16 int8 FC weight [32, 64]: DENSE(32), CSR(uint8), DENSE(16).
    a = _sparse_array((32, 64), 0.5, dtype=np.float32)
    a = np.where(np.kron(np.random.default_rng(1).random((32, 4)) < 0.5, np.ones((1, 16))) > 0, a, 0)
    values, params = sparse.encode(a.astype(np.int8), block=(16,))
    dims = params.dimMetadata
    assert [d.format for d in dims] == [sparse.DENSE, sparse.SPARSE_CSR, sparse.DENSE]
    assert dims[0].denseSize == 32 and dims[2].denseSize == 16
    assert dims[1].arraySegmentsType == fb.SparseIndexVector.Uint8Vector
    assert len(dims[1].arraySegments.values) == 33
    assert set(np.asarray(dims[1].arrayIndices.values).tolist()) <= {0, 1, 2, 3}
    assert list(params.blockMap) == [1] and list(params.traversalOrder) == [0, 1, 2]
    assert values.size % 16 == 0


def test_index_vector_widens_with_the_largest_value():
    a = np.zeros((2, 70000), np.float32)
    a[0, 69999] = 1.0
    a[1, 3] = 2.0
    _, params = sparse.encode(a)
    csr = params.dimMetadata[1]
    assert csr.arraySegmentsType == fb.SparseIndexVector.Uint8Vector
    assert csr.arrayIndicesType == fb.SparseIndexVector.Int32Vector


def test_block_density():
    a = np.zeros((4, 8), np.float32)
    a[0, 0] = a[3, 7] = 1
    assert sparse.block_density(a, (1, 4)) == 2 / 8
    assert sparse.block_density(a, (1, 1)) == 2 / 32


def test_decode_matches_densify_in_the_interpreter(mediapipe_models):
    # The converter's own sparse encodings (face_detection_full_range_sparse: fp16 + DENSIFY).
    path = next(p for p in mediapipe_models if "sparse" in p.name)
    model = io.load(path)
    interp = runtime.interpreter(model, xnnpack=False, preserve_all=True)
    runtime.invoke(interp, runtime.random_inputs(interp))
    checked = 0
    for op in model.main.operators:
        if op.name != "DENSIFY":
            continue
        t = op.input(0)
        dense = sparse.to_dense(t)
        assert dense.shape == t.shape and dense.dtype == t.dtype
        assert np.array_equal(dense, interp.get_tensor(op.outputs[0]))
        # Re-encoding with the same layout reproduces the converter's bytes.
        sp = t.sparsity
        n = len(t.shape)
        values, params = sparse.encode(dense, traversal_order=list(sp.traversalOrder),
                                       formats=[d.format for d in sp.dimMetadata],
                                       block=[sp.dimMetadata[i].denseSize for i in range(n, len(sp.traversalOrder))],
                                       block_dims=list(sp.blockMap) if sp.blockMap is not None else [])
        assert np.array_equal(values, t.data)
        for ours, theirs in zip(params.dimMetadata, sp.dimMetadata):
            for f in ("arraySegments", "arrayIndices"):
                if getattr(theirs, f) is None:
                    assert getattr(ours, f) is None
                else:
                    assert getattr(ours, f + "Type") == getattr(theirs, f + "Type")
                    assert np.array_equal(getattr(ours, f).values, getattr(theirs, f).values)
        checked += 1
    assert checked > 10
