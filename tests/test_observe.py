"""The fast observer (watched tensors as extra outputs, XNNPACK, every core) gives the same
activation ranges and layer statistics as the builtin-kernel path, within float rounding."""
from __future__ import annotations

import numpy as np
import pytest

import tflopt
from tflopt.calibration import collect_ranges, load_calibration
from tflopt.observe import Observer, fast_default

from conftest import DATA, MODELS

FIXTURES = ["convnet", "mlp", "gru", "lstm", "attention", "dynamic", "loop"]


def _read_tensors(model) -> set[int]:
    """Tensors some op reads, or graph outputs: what quantization uses. An output of a WHILE
    that nothing reads is never written; the builtin path reads whatever its arena held."""
    sg = model.main
    return {t for op in sg.operators for t in op.inputs} | set(sg.outputs)


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("method", ["minmax", "moving_average"])
def test_ranges_equal_builtin_path(name, method):
    m = tflopt.load(MODELS / f"{name}_fp32.tflite")
    data = load_calibration(DATA / f"{name}_calib.npz", m)
    before = m.to_bytes()
    slow = collect_ranges(m, data, method=method, fast=False)
    fast = collect_ranges(m, data, method=method, fast=True)
    assert m.to_bytes() == before  # the observer's extra outputs never reach the caller's model
    assert fast.samples == slow.samples > 0
    used = _read_tensors(m)
    a = {t: r for t, r in slow.ranges.items() if t in used}
    b = {t: r for t, r in fast.ranges.items() if t in used}
    assert a.keys() == b.keys() and len(a) >= 3
    for t in a:
        scale = max(abs(a[t][0]), abs(a[t][1]), 1e-6)
        assert np.allclose(a[t], b[t], rtol=0, atol=1e-5 * scale), (m.main.tensors[t].name, a[t], b[t])


def test_percentile_ranges_close():
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    data = load_calibration(DATA / "convnet_calib.npz", m)
    slow = collect_ranges(m, data, method="percentile", fast=False).ranges
    fast = collect_ranges(m, data, method="percentile", fast=True).ranges
    assert slow.keys() == fast.keys()
    for t in slow:
        scale = max(abs(slow[t][0]), abs(slow[t][1]), 1e-6)
        # One histogram bin of 2048 is the most a rounding difference can move a percentile.
        assert np.allclose(slow[t], fast[t], rtol=0, atol=2 * scale / 1024), (t, slow[t], fast[t])


def test_layer_statistics_equal_builtin_path():
    from tflopt.weights import weight_slots
    from tflopt.recovery.stats import gather, layer_spec
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    specs = [s for s in (layer_spec(slot)[0] for slot in weight_slots(m, ops=None, min_elements=0)) if s]
    assert len(specs) >= 3
    samples = list(load_calibration(DATA / "convnet_calib.npz", m))[:8]
    slow = gather(m, specs, samples, fast=False)
    fast = gather(m, specs, samples, fast=True)
    for i in range(len(specs)):
        assert slow[i].count == fast[i].count and slow[i].samples == fast[i].samples == 8
        assert np.allclose(slow[i].H, fast[i].H, rtol=1e-5, atol=1e-6 * np.abs(slow[i].H).max())
        assert np.allclose(slow[i].total, fast[i].total, rtol=1e-5, atol=1e-6 * np.abs(slow[i].total).max())


def test_env_selects_builtin_path(monkeypatch):
    monkeypatch.setenv("TFLOPT_OBSERVE", "builtin")
    assert fast_default() is False and fast_default(True) is True
    monkeypatch.delenv("TFLOPT_OBSERVE")
    assert fast_default() is True


def test_observer_views_only_live_inside_consume():
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    watched = [t.index for t in m.main.tensors if not t.is_constant and t.type == 0]
    obs = Observer(m, watched)
    x = np.load(DATA / "convnet_calib.npz")
    sample = [x[x.files[0]][:1]]
    seen = []
    for _ in range(3):  # a second run must not trip over views the first handed out
        obs.run(sample, lambda values: seen.append({t: float(v.max()) for t, v in values.items()}))
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == len(watched)


def test_xnnpack_failure_at_run_time_falls_back_to_builtin_kernels():
    m = tflopt.load(MODELS / "convnet_fp32.tflite")
    watched = [t.index for t in m.main.tensors if not t.is_constant and t.type == 0]
    x = np.load(DATA / "convnet_calib.npz")
    sample = [x[x.files[0]][:1]]
    expected = []
    Observer(m, watched, fast=False).run(sample, lambda v: expected.append({t: a.copy() for t, a in v.items()}))
    obs = Observer(m, watched)

    class Failing:  # XNNPACK refusing the copy at run time, as on two corpus models in CI
        def __init__(self, real):
            self.real = real

        def invoke(self):
            raise RuntimeError("failed to setup XNNPACK runtimeNode number 244 (TfLiteXNNPackDelegate) failed to invoke.")

        def __getattr__(self, name):
            return getattr(self.real, name)

    obs.interp = Failing(obs.interp)
    got = []
    obs.run(sample, lambda v: got.append({t: a.copy() for t, a in v.items()}))
    assert obs.fallback and "XNNPACK" in obs.fallback
    assert set(got[0]) == set(expected[0])
    for t in expected[0]:
        np.testing.assert_allclose(got[0][t], expected[0][t], rtol=1e-5, atol=1e-6)
