"""Calibration data loading (every accepted source, and one-line errors for bad ones) and the
range statistics (min/max, moving average, percentile, MSE) with bounded memory."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

import tflopt
from tflopt.calibration import (HIST_BINS, RangeObserver, collect_ranges, from_iterable, load_calibration,
                                random_calibration, read_image, resize_bilinear)
from tflopt.errors import TfloptError

from conftest import DATA, MODELS

CONVNET = MODELS / "convnet_fp32.tflite"
MLP = MODELS / "mlp_fp32.tflite"
INPUT = "serving_default_image:0"


@pytest.fixture(scope="module")
def convnet():
    return tflopt.load(CONVNET)


@pytest.fixture(scope="module")
def digits():
    return np.load(DATA / "digits.npz")


def _first(data):
    return next(iter(data))


# -- sources -----------------------------------------------------------------------------------
def test_npz_keyed_by_name_without_batch_axis(convnet, digits, tmp_path):
    p = tmp_path / "c.npz"
    np.savez(p, **{INPUT: digits["x_calib"][:5]})
    data = load_calibration(p, convnet)
    samples = list(data)
    assert len(data) == 5 and len(samples) == 5
    assert samples[2][0].shape == (1, 16, 16, 1) and samples[2][0].dtype == np.float32
    np.testing.assert_array_equal(samples[2][0][0], digits["x_calib"][2])


def test_npz_in_input_order_with_full_shape(convnet, digits, tmp_path):
    p = tmp_path / "c.npz"
    np.savez(p, whatever=digits["x_calib"][:3, None])  # (N, 1, 16, 16, 1)
    samples = list(load_calibration(p, convnet))
    assert len(samples) == 3
    np.testing.assert_array_equal(samples[1][0], digits["x_calib"][1:2])


def test_npy_for_single_input_model(convnet, digits, tmp_path):
    p = tmp_path / "c.npy"
    np.save(p, digits["x_calib"][:4])
    assert len(list(load_calibration(p, convnet))) == 4


@pytest.mark.parametrize("content, message", [
    (b"not a zip", "not a readable .npz"),
    (None, "expected (N, 1, 16, 16, 1) or (N, 16, 16, 1)"),
    ("two", "cannot tell which arrays are the inputs"),
])
def test_bad_npz_is_one_line_error_naming_the_file(convnet, tmp_path, content, message):
    p = tmp_path / "bad.npz"
    if content is None:
        np.savez(p, x=np.zeros((3, 8, 8), np.float32))
    elif content == "two":
        np.savez(p, a=np.zeros((3, 16, 16, 1)), b=np.zeros((3, 16, 16, 1)))
    else:
        p.write_bytes(content)
    with pytest.raises(TfloptError) as e:
        list(load_calibration(p, convnet))
    assert str(p) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_missing_path_and_unknown_kind(convnet, tmp_path):
    with pytest.raises(TfloptError, match="no such calibration file"):
        load_calibration(tmp_path / "nope.npz", convnet)
    txt = tmp_path / "samples.txt"
    txt.write_text("1 2 3")
    with pytest.raises(TfloptError, match="must be .npz, .npy"):
        load_calibration(txt, convnet)


def test_callable_from_file_and_multi_signature_tags(tmp_path):
    mod = tmp_path / "rep.py"
    mod.write_text(
        "import numpy as np\n"
        "def dataset():\n"
        "    rng = np.random.default_rng(0)\n"
        "    for _ in range(3):\n"
        "        yield [rng.random((1, 64), dtype=np.float32)]\n"
        "def broken():\n"
        "    yield [np.zeros((1, 3))]\n")
    mlp = tflopt.load(MLP)
    data = load_calibration(f"{mod}:dataset", mlp)
    assert [s[0].shape for s in data] == [(1, 64)] * 3
    assert len(list(data)) == 3  # a function can be read again
    with pytest.raises(TfloptError, match="wants shape"):
        list(load_calibration(f"{mod}:broken", mlp))
    with pytest.raises(TfloptError, match="cannot load the calibration function"):
        load_calibration(f"{mod}:missing", mlp)


def test_iterables_dicts_and_one_shot_iterators(convnet, digits):
    x = digits["x_calib"][:4]
    data = from_iterable([{INPUT: a} for a in x], convnet)
    np.testing.assert_array_equal(_first(data)[0][0], x[0])
    one_shot = from_iterable(iter(list(x)), convnet)
    assert len(list(one_shot)) == 4
    with pytest.raises(TfloptError, match="one-shot"):
        list(one_shot)
    with pytest.raises(TfloptError, match="lacks input"):
        list(from_iterable([{"other": x[0]}, {"a": x[1], "b": x[2]}][1:] + [{"zz": x[0]}], convnet))


def test_random_is_explicit_and_warns(convnet):
    data = load_calibration("random:5", convnet)
    assert len(list(data)) == 5 and "random" in data.warnings[0]
    with pytest.raises(TfloptError, match="sample count"):
        load_calibration("random:x", convnet)


# -- images ------------------------------------------------------------------------------------
def _png(img: np.ndarray, filters: list[int]) -> bytes:
    """A PNG using the given filter per row (so the decoder's filter paths are exercised)."""
    h, w, c = img.shape
    bpp = c
    rows = []
    prev = np.zeros(w * c, np.int32)
    for y in range(h):
        line = img[y].reshape(-1).astype(np.int32)
        left = np.concatenate([np.zeros(bpp, np.int32), line[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        f = filters[y % len(filters)]
        if f == 0:
            enc = line
        elif f == 1:
            enc = line - left
        elif f == 2:
            enc = line - prev
        elif f == 3:
            enc = line - (left + prev) // 2
        else:
            p = left + prev - up_left
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - up_left)
            enc = line - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, up_left))
        rows.append(bytes([f]) + (enc & 255).astype(np.uint8).tobytes())
        prev = line

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    color = {1: 0, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def test_png_decoder_handles_every_filter(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (7, 9, 3)).astype(np.uint8)
    p = tmp_path / "a.png"
    p.write_bytes(_png(img, [0, 1, 2, 3, 4]))
    np.testing.assert_array_equal(read_image(p), img)


def test_image_folder_resized_and_normalized(convnet, tmp_path):
    rng = np.random.default_rng(2)
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(rng.integers(0, 256, (32, 32, 1)).astype(np.uint8), [1, 4]))
    (tmp_path / "3.pgm").write_bytes(b"P5 32 32 255\n" + bytes(range(256)) * 4)
    unit = list(load_calibration(tmp_path, convnet))
    signed = list(load_calibration(tmp_path, convnet, normalize="signed"))
    assert len(unit) == 4 and unit[0][0].shape == (1, 16, 16, 1)
    assert 0 <= min(s[0].min() for s in unit) and max(s[0].max() for s in unit) <= 1
    np.testing.assert_allclose(signed[0][0], unit[0][0] * 2 - 1, atol=1e-6)
    with pytest.raises(TfloptError, match="unknown image normalization"):
        list(load_calibration(tmp_path, convnet, normalize="zscore"))


def test_resize_bilinear_keeps_constant_and_mean():
    img = np.full((10, 20, 3), 7.0, np.float32)
    assert np.allclose(resize_bilinear(img, 5, 8), 7.0)
    ramp = np.tile(np.arange(8, dtype=np.float32), (8, 1))[..., None]
    assert resize_bilinear(ramp, 4, 4).mean() == pytest.approx(ramp.mean())


# -- statistics --------------------------------------------------------------------------------
def test_observer_methods_and_bounded_histogram():
    rng = np.random.default_rng(0)
    obs = RangeObserver()
    for i in range(50):
        x = rng.standard_normal(2000).astype(np.float32)
        if i == 10:
            x[0] = 40.0  # a single outlier, well outside the rest
        obs.update(x, 0.9, True)
    assert obs.hist.size == HIST_BINS and obs.hist.sum() == 50 * 2000
    lo, hi = obs.range("minmax", 99.99, 256)
    assert hi == pytest.approx(40.0)
    plo, phi = obs.range("percentile", 99.9, 256)
    assert 2.5 < phi < 5 and -5 < plo < -2.5
    mlo, mhi = obs.range("mse", 99.99, 256)
    assert mhi < hi and mlo >= lo
    elo, ehi = obs.range("moving_average", 99.99, 256)
    assert ehi < hi and elo > lo


def test_histogram_doubling_keeps_mass_in_place():
    obs = RangeObserver()
    obs.update(np.array([0.5, -0.25], np.float32), 0.9, True)
    obs.update(np.array([3.0], np.float32), 0.9, True)
    e = obs.edges()
    centres = (e[:-1] + e[1:]) / 2
    filled = centres[obs.hist > 0]
    assert len(filled) == 3 and np.allclose(np.sort(filled), [-0.25, 0.5, 3.0], atol=2 * obs.radius / HIST_BINS)


def test_collect_ranges_cover_activations_and_report_progress(convnet, digits):
    seen = []
    data = from_iterable(list(digits["x_calib"][:6]), convnet)
    r = collect_ranges(convnet, data, progress_hook=seen.append)
    assert r.samples == 6 and seen[-1] == "calibrating 6/6" and not r.cut_ops
    sg = convnet.main
    inp = sg.inputs[0]
    assert r.ranges[inp] == (pytest.approx(float(digits["x_calib"][:6].min())),
                             pytest.approx(float(digits["x_calib"][:6].max())))
    produced = {t for op in sg.operators for t in op.outputs}
    assert produced <= set(r.ranges)
    r2 = collect_ranges(convnet, data, max_samples=2)
    assert r2.samples == 2


def test_random_calibration_reproducible(convnet):
    a = [s[0] for s in random_calibration(convnet, 3, seed=4)]
    b = [s[0] for s in random_calibration(convnet, 3, seed=4)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
