"""Calibrated pruning on the mediapipe corpus (real): output SNR beats magnitude pruning.

Calibration: 16 real photos; evaluation: 4 views of two other photos (fixtures/fetch_photos.py).
See benchmarks/bench_recovery.py, which prints the whole table with timings.
"""
from __future__ import annotations

from conftest import ROOT, load_module


def _bench():
    return load_module(ROOT / "benchmarks" / "bench_recovery.py")


def test_obs_pruning_beats_magnitude_pruning_on_output_snr(mediapipe_model):
    row = _bench().compare(mediapipe_model, samples=16, waves=8, sparsity=0.5)
    assert row["layers"] > 0
    assert row["snr_obs"] > row["snr_plain"], row
