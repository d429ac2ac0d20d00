"""Calibration samples and activation ranges for full-integer quantization.

``load_calibration`` reads samples from an .npz / .npy file, an image folder, a
``module:function`` representative dataset or ``random[:N]``; ``from_iterable`` wraps
samples given from Python. ``collect_ranges`` streams the samples through the LiteRT
interpreter and keeps, per float activation tensor, a few running numbers and a
fixed-size histogram, so memory does not grow with the number of samples.
"""
from __future__ import annotations

import importlib
import importlib.util
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import TfloptError
from .schema import TensorType

NORMALIZATIONS = {
    # name: (offset, scale) applied to 0..255 pixel values as (x / 255 - offset) / scale
    "unit": (0.0, 1.0),            # [0, 1]
    "signed": (0.5, 0.5),          # [-1, 1]
    "raw": (0.0, 1.0 / 255.0),     # 0..255 as float
    "imagenet": (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)),
}
IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".npy", ".jpg", ".jpeg", ".bmp")


@dataclass
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def input_specs(model, subgraph: int = 0) -> list[InputSpec]:
    sg = model.subgraphs[subgraph]
    out = []
    for t in sg.inputs:
        tensor = sg.tensors[t]
        sig = tensor.shape_signature or tensor.shape
        shape = tuple(d if d > 0 else 1 for d in (tensor.shape or sig))
        out.append(InputSpec(tensor.name, shape, tensor.dtype or np.dtype(np.float32)))
    return out


def signature_subgraphs(model) -> dict[str, int]:
    """signature key -> subgraph index."""
    out = {}
    for sig in model.signature_defs:
        key = sig.signatureKey.decode() if isinstance(sig.signatureKey, bytes) else sig.signatureKey
        out[key] = int(sig.subgraphIndex)
    return out


@dataclass
class CalibrationData:
    """Calibration samples: each is a list of arrays in model input order, batch included.

    ``factory`` returns a fresh iterator over samples each time, so the data can be read
    more than once without being held in memory; a one-shot iterator is read once only.
    Samples for subgraphs other than 0 (multi-signature models) come from ``for_subgraph``.
    """

    factory: Callable[[], Iterator[list[np.ndarray]]]
    count: int | None
    source: str
    warnings: list[str] = field(default_factory=list)
    views: Callable[[int], "CalibrationData"] | None = None
    _one_shot: bool = False
    _used: bool = False

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        if self._one_shot and self._used:
            raise TfloptError(f"{self.source}: calibration samples were a one-shot iterator and are already "
                              "used; pass a list or a function returning an iterator")
        self._used = True
        return self.factory()

    def __len__(self) -> int:
        if self.count is None:
            raise TypeError("calibration sample count is unknown")
        return self.count

    def for_subgraph(self, index: int) -> "CalibrationData":
        if index == 0:
            return self
        if self.views is None:
            raise TfloptError(f"{self.source}: has samples for subgraph 0 only, not for subgraph {index}")
        return self.views(index)


# -- fitting samples to the model's inputs ---------------------------------------------------
def _fit(source: str, specs: list[InputSpec], sample) -> list[np.ndarray]:
    """One sample as arrays in input order with the input's shape (batch-1 axis added)."""
    if isinstance(sample, dict):
        missing = [s.name for s in specs if s.name not in sample]
        if missing and len(sample) == len(specs):
            sample = list(sample.values())
        elif missing:
            raise TfloptError(f"{source}: sample lacks input {missing[0]!r} (has {', '.join(map(str, sample))})")
        else:
            sample = [sample[s.name] for s in specs]
    elif isinstance(sample, np.ndarray) or np.isscalar(sample):
        sample = [sample]
    sample = list(sample)
    if len(sample) != len(specs):
        raise TfloptError(f"{source}: sample has {len(sample)} arrays, the model has {len(specs)} inputs")
    out = []
    for spec, x in zip(specs, sample):
        x = np.asarray(x)
        if x.shape != spec.shape:
            if x.size == int(np.prod(spec.shape)) and x.ndim in (len(spec.shape), len(spec.shape) - 1):
                x = x.reshape(spec.shape)
            else:
                raise TfloptError(f"{source}: input {spec.name!r} wants shape {list(spec.shape)}, "
                                  f"sample has {list(x.shape)}")
        if x.dtype.kind not in "fiub":
            raise TfloptError(f"{source}: input {spec.name!r}: cannot use {x.dtype} data")
        # Real values for an integer (quantized) input stay float: the quantizer dequantizes
        # such models first, and the samples must mean the same thing afterwards.
        dtype = np.float32 if x.dtype.kind == "f" and spec.dtype.kind != "f" else spec.dtype
        out.append(np.ascontiguousarray(x, dtype=dtype))
    return out


def _split_samples(source: str, spec: InputSpec, arr: np.ndarray) -> tuple[int, Callable[[int], np.ndarray]]:
    """(N, getter) for an array of samples along axis 0, full shape or without the batch-1 axis."""
    if arr.ndim == len(spec.shape) + 1 and arr.shape[1:] == spec.shape:
        return arr.shape[0], lambda i: arr[i]
    if spec.shape and spec.shape[0] == 1 and arr.ndim == len(spec.shape) and arr.shape[1:] == spec.shape[1:]:
        return arr.shape[0], lambda i: arr[i:i + 1]
    raise TfloptError(f"{source}: array for input {spec.name!r} has shape {list(arr.shape)}; expected "
                      f"(N, {', '.join(map(str, spec.shape))}) or (N, {', '.join(map(str, spec.shape[1:]))})")


def _from_arrays(source: str, specs: list[InputSpec], arrays: list[np.ndarray]) -> CalibrationData:
    splits = [_split_samples(source, s, a) for s, a in zip(specs, arrays)]
    counts = {n for n, _ in splits}
    if len(counts) != 1:
        raise TfloptError(f"{source}: inputs have different sample counts {sorted(counts)}")
    n = counts.pop()
    if n == 0:
        raise TfloptError(f"{source}: no samples")

    def gen():
        for i in range(n):
            yield [np.ascontiguousarray(get(i), dtype=s.dtype) for s, (_, get) in zip(specs, splits)]
    return CalibrationData(gen, n, source)


def _load_npz(path: Path, model, subgraph: int = 0, keys: list[str] | None = None) -> CalibrationData:
    """Arrays picked as every command picks them (``tflopt.evaluation.data.pick_keys``:
    by input name, ``FILE.npz:KEY``, x_test / x_eval / x_calib / x, or in order); other
    subgraphs (signatures) by input tensor name."""
    from .evaluation.data import pick_keys
    try:
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
    except Exception as e:  # zipfile / format errors come in many types
        raise TfloptError(f"{path}: not a readable .npz ({type(e).__name__})") from None
    specs = input_specs(model, subgraph)
    names = [s.name for s in specs]
    if subgraph == 0:
        chosen = pick_keys(path, files, names, keys)
    elif all(n in files for n in names):
        chosen = names
    else:
        raise TfloptError(f"{path}: has arrays {', '.join(files)}, the inputs of subgraph {subgraph} are "
                          f"{', '.join(names)}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = [z[k] for k in chosen]
    except Exception as e:
        raise TfloptError(f"{path}: cannot read arrays ({type(e).__name__}: {e})") from None
    data = _from_arrays(str(path), specs, arrays)
    data.views = lambda i: _load_npz(path, model, i)
    return data


def _load_npy(path: Path, specs: list[InputSpec]) -> CalibrationData:
    if len(specs) != 1:
        raise TfloptError(f"{path}: a .npy holds one input, the model has {len(specs)}; use an .npz")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise TfloptError(f"{path}: not a readable .npy ({type(e).__name__}: {e})") from None
    return _from_arrays(str(path), specs, [arr])


# -- images ----------------------------------------------------------------------------------
def _read_png(data: bytes, path: Path) -> np.ndarray:
    """8-bit non-interlaced PNG (gray, gray+alpha, RGB, RGBA) without Pillow."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise TfloptError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise TfloptError(f"{path}: PNG without header")
    w, h, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise TfloptError(f"{path}: only 8-bit non-interlaced gray/RGB(A) PNGs are read without Pillow")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * channels)
    filters, rows = raw[:, 0], raw[:, 1:].astype(np.int32)
    out = np.zeros((h, w * channels), np.int32)
    bpp = channels
    for y in range(h):  # PNG filters depend on the previous row: one step per row, not per pixel
        f, line = filters[y], rows[y]
        prev = out[y - 1] if y else np.zeros(w * channels, np.int32)
        if f == 0:
            out[y] = line
        elif f == 2:
            out[y] = (line + prev) & 255
        elif f in (1, 3, 4):
            # Sub / Average / Paeth reference the pixel to the left: resolve in bpp-wide strides.
            cur = np.zeros(w * channels, np.int32)
            for x0 in range(0, w * channels, bpp):
                sl = slice(x0, x0 + bpp)
                left = cur[x0 - bpp:x0] if x0 else np.zeros(bpp, np.int32)
                up_left = prev[x0 - bpp:x0] if x0 else np.zeros(bpp, np.int32)
                if f == 1:
                    pred = left
                elif f == 3:
                    pred = (left + prev[sl]) // 2
                else:
                    p = left + prev[sl] - up_left
                    pa, pb, pc = np.abs(p - left), np.abs(p - prev[sl]), np.abs(p - up_left)
                    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev[sl], up_left))
                cur[sl] = (line[sl] + pred) & 255
            out[y] = cur
        else:
            raise TfloptError(f"{path}: bad PNG filter {f}")
    return out.astype(np.uint8).reshape(h, w, channels)


def _read_pnm(data: bytes, path: Path) -> np.ndarray:
    parts = data.split(maxsplit=4)
    if len(parts) < 5 or parts[0] not in (b"P5", b"P6") or int(parts[3]) != 255:
        raise TfloptError(f"{path}: only binary 8-bit PGM/PPM are supported")
    w, h = int(parts[1]), int(parts[2])
    c = 3 if parts[0] == b"P6" else 1
    return np.frombuffer(parts[4][:w * h * c], np.uint8).reshape(h, w, c)


def read_image(path: Path) -> np.ndarray:
    """H x W x C uint8 (or a float array from .npy). Pillow, when installed, reads the rest."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if importlib.util.find_spec("PIL") is not None:
        from PIL import Image
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    data = path.read_bytes()
    if suffix == ".png":
        return _read_png(data, path)
    if suffix in (".ppm", ".pgm"):
        return _read_pnm(data, path)
    raise TfloptError(f"{path}: reading {suffix} images needs Pillow (pip install pillow); "
                      "PNG, PPM/PGM and .npy work without it")


def resize_bilinear(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Half-pixel-centred bilinear resize of H x W x C, as separable numpy gathers."""
    img = img.astype(np.float32)

    def axis_weights(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, fy = axis_weights(img.shape[0], h)
    x0, x1, fx = axis_weights(img.shape[1], w)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def _load_images(folder: Path, specs: list[InputSpec], normalize: str) -> CalibrationData:
    if len(specs) != 1 or len(specs[0].shape) != 4:
        raise TfloptError(f"{folder}: an image folder needs a model with one NHWC image input")
    if normalize not in NORMALIZATIONS:
        raise TfloptError(f"unknown image normalization {normalize!r} (choose {', '.join(NORMALIZATIONS)})")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise TfloptError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    spec = specs[0]
    _, h, w, c = spec.shape
    offset, scale = NORMALIZATIONS[normalize]

    def gen():
        for p in files:
            img = read_image(p)
            pixels = img.dtype.kind in "iu"  # 8-bit pixels get normalized; float .npy images are used as they are
            if img.ndim == 2:
                img = img[..., None]
            if img.shape[-1] == 4:
                img = img[..., :3]
            if img.shape[-1] != c:
                img = np.repeat(img.mean(-1, keepdims=True), c, -1) if c in (1, 3) and img.shape[-1] in (1, 3) else None
                if img is None:
                    raise TfloptError(f"{p}: image channels do not match the input's {c}")
            if img.shape[:2] != (h, w):
                img = resize_bilinear(img, h, w)
            x = (img.astype(np.float32) / 255.0 - offset) / scale if pixels else img.astype(np.float32)
            yield [x[None].astype(spec.dtype)]
    return CalibrationData(gen, len(files), str(folder))


# -- representative datasets ----------------------------------------------------------------
def _load_callable(ref: str, model) -> CalibrationData:
    mod_name, _, func_name = ref.rpartition(":")
    try:
        if mod_name.endswith(".py") or "/" in mod_name:
            spec = importlib.util.spec_from_file_location(Path(mod_name).stem, mod_name)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {mod_name}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
        func = getattr(module, func_name)
    except (ImportError, AttributeError, OSError, SyntaxError) as e:
        raise TfloptError(f"{ref}: cannot load the calibration function ({e})") from None
    if not callable(func):
        raise TfloptError(f"{ref}: is not callable")
    return from_iterable(func, model, source=ref)


def _route(sample, keys: dict[str, int], source: str):
    """(subgraph or None, payload): TensorFlow's multi-signature datasets yield (key, dict)."""
    if isinstance(sample, tuple) and len(sample) == 2 and isinstance(sample[0], str):
        if sample[0] not in keys:
            raise TfloptError(f"{source}: sample names signature {sample[0]!r}; the model has {sorted(keys) or 'none'}")
        return keys[sample[0]], sample[1]
    return None, sample


def from_iterable(samples, model, *, subgraph: int = 0, source: str = "calibration samples") -> CalibrationData:
    """Samples from Python: a list, a function returning an iterable (TensorFlow's
    representative_dataset), or a one-shot iterator. Each sample is a list of arrays in input
    order, a dict by input name, one array for single-input models, or (signature key, dict)."""
    specs = input_specs(model, subgraph)
    keys = signature_subgraphs(model)
    fresh = samples if callable(samples) else (lambda: samples)

    def gen():
        for raw in fresh():
            target, payload = _route(raw, keys, source)
            if target is None and subgraph != 0:
                continue  # untagged samples are for the main subgraph
            if target is not None and target != subgraph:
                continue
            yield _fit(source, specs, payload)
    count = len(samples) if hasattr(samples, "__len__") and len(keys) <= 1 else None
    one_shot = not callable(samples) and iter(samples) is samples
    data = CalibrationData(gen, count, source, _one_shot=one_shot)
    if not one_shot:
        data.views = lambda i: from_iterable(samples, model, subgraph=i, source=source)
    return data


def random_calibration(model, count: int = 16, seed: int = 0, subgraph: int = 0) -> CalibrationData:
    """Uniform [-1, 1) samples: only for checking a model runs, never for a model to ship."""
    specs = input_specs(model, subgraph)

    def gen():
        rng = np.random.default_rng(seed)
        for _ in range(count):
            yield [(rng.uniform(-1, 1, s.shape) if s.dtype.kind == "f" else np.zeros(s.shape)).astype(s.dtype)
                   for s in specs]
    return CalibrationData(gen, count, f"random:{count}",
                           [f"calibrated on {count} random samples: activation ranges will not match real data"],
                           views=lambda i: random_calibration(model, count, seed, i))


def load_calibration(path, model, *, normalize: str = "unit") -> CalibrationData:
    """Calibration samples for ``model`` from PATH: .npz (``FILE.npz:KEY`` names the array),
    .npy, an image folder,
    ``module:function`` / ``file.py:function``, or ``random[:N]``."""
    text = str(path)
    from .evaluation.data import split_spec
    p, keys = split_spec(text)
    if keys and p.suffix == ".npz" and p.is_file():
        return _load_npz(p, model, keys=keys)
    if text == "random" or text.startswith("random:"):
        try:
            n = int(text.partition(":")[2] or 16)
        except ValueError:
            raise TfloptError(f"{text}: random calibration takes a sample count, e.g. random:16") from None
        return random_calibration(model, n)
    p = Path(text)
    if p.is_dir():
        return _load_images(p, input_specs(model), normalize)
    if p.suffix == ".npz" and p.is_file():
        return _load_npz(p, model)
    if p.suffix == ".npy" and p.is_file():
        return _load_npy(p, input_specs(model))
    if ":" in text and not p.exists():
        return _load_callable(text, model)
    if not p.exists():
        raise TfloptError(f"{text}: no such calibration file or folder")
    raise TfloptError(f"{text}: calibration data must be .npz, .npy, an image folder, or module:function")


# -- range statistics -------------------------------------------------------------------------
HIST_BINS = 2048


class RangeObserver:
    """Running min/max, an EMA of per-sample min/max, and a histogram over [-R, R) whose
    R doubles (merging bin pairs) when data falls outside: fixed memory per tensor."""

    __slots__ = ("lo", "hi", "ema_lo", "ema_hi", "radius", "hist", "n")

    def __init__(self):
        self.lo = np.inf
        self.hi = -np.inf
        self.ema_lo = self.ema_hi = 0.0
        self.radius = 0.0
        self.hist = np.zeros(HIST_BINS, np.int64)
        self.n = 0

    def update(self, x: np.ndarray, momentum: float, with_hist: bool) -> None:
        x = x.reshape(-1)
        finite = x[np.isfinite(x)] if not np.isfinite(x).all() else x
        if finite.size == 0:
            return
        lo, hi = float(finite.min()), float(finite.max())
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        if self.n == 0:
            self.ema_lo, self.ema_hi = lo, hi
        else:
            self.ema_lo = momentum * self.ema_lo + (1 - momentum) * lo
            self.ema_hi = momentum * self.ema_hi + (1 - momentum) * hi
        self.n += 1
        if with_hist:
            amax = max(abs(lo), abs(hi))
            if self.radius == 0.0:
                self.radius = 2.0 ** np.ceil(np.log2(amax)) if amax > 0 else 1.0
            while amax >= self.radius:
                # Doubling the radius: old bin i lands in new bin HIST_BINS/4 + i//2.
                merged = self.hist.reshape(-1, 2).sum(1)
                self.hist = np.zeros(HIST_BINS, np.int64)
                self.hist[HIST_BINS // 4:HIST_BINS // 4 + merged.size] = merged
                self.radius *= 2
            idx = ((finite.astype(np.float64) + self.radius) * (HIST_BINS / (2 * self.radius))).astype(np.int64)
            self.hist += np.bincount(np.clip(idx, 0, HIST_BINS - 1), minlength=HIST_BINS)

    def edges(self) -> np.ndarray:
        return np.linspace(-self.radius, self.radius, HIST_BINS + 1)

    def percentile_range(self, pct: float) -> tuple[float, float]:
        cdf = np.cumsum(self.hist) / max(self.hist.sum(), 1)
        e = self.edges()
        tail = (100.0 - pct) / 100.0
        lo = e[np.searchsorted(cdf, tail, side="left")]
        hi = e[min(np.searchsorted(cdf, 1.0 - tail, side="left") + 1, HIST_BINS)]
        return max(float(lo), self.lo), min(float(hi), self.hi)

    def mse_range(self, levels: int) -> tuple[float, float]:
        """The clipping of [min, max] that minimises expected squared error: clipping error of
        the histogram mass outside, plus uniform rounding noise step^2/12 inside."""
        e = self.edges()
        centres = (e[:-1] + e[1:]) / 2
        w = self.hist.astype(np.float64)
        total = max(w.sum(), 1.0)
        fracs = np.linspace(0.2, 1.0, 81)[:, None]
        los = np.minimum(self.lo * fracs, 0.0)
        his = np.maximum(self.hi * fracs, 0.0)
        step = np.maximum(his - los, 1e-12) / (levels - 1)
        clipped = np.clip(centres[None, :], los, his)
        err = ((centres[None, :] - clipped) ** 2 * w[None, :]).sum(1) / total + (step[:, 0] ** 2) / 12
        best = int(np.argmin(err))
        return float(los[best, 0]), float(his[best, 0])

    def range(self, method: str, percentile: float, levels: int) -> tuple[float, float]:
        if method == "minmax":
            return self.lo, self.hi
        if method == "moving_average":
            return self.ema_lo, self.ema_hi
        if method == "percentile":
            return self.percentile_range(percentile)
        if method == "mse":
            return self.mse_range(levels)
        raise ValueError(f"unknown calibration method {method!r}")


def calibration_model(model):
    """(model, cut op names): a copy that keeps every tensor index but drops the custom ops
    the stock interpreter cannot run and what depends on them; their inputs become outputs.
    Tensors downstream of a cut op get no range, so the ops that read them stay float."""
    from .runtime import runnable
    return runnable(model, xnnpack=False)


class _Progress:
    def __init__(self, total: int | None, enabled: bool, hook=None):
        self.total, self.enabled, self.hook, self.n = total, enabled, hook, 0

    def step(self) -> None:
        self.n += 1
        msg = f"calibrating {self.n}" + (f"/{self.total}" if self.total else "")
        if self.hook is not None:
            self.hook(msg)
        elif self.enabled:
            bar = ""
            if self.total:
                filled = int(30 * self.n / self.total)
                bar = "[" + "#" * filled + "." * (30 - filled) + "] "
            sys.stderr.write(f"\r{bar}{msg}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.hook is None and self.n:
            sys.stderr.write("\n")


@dataclass
class Ranges:
    """Per-tensor (lo, hi) of subgraph 0, by tensor index, plus what was observed."""

    ranges: dict[int, tuple[float, float]]
    samples: int
    cut_ops: list[str]


def _signature_runner(interp, model, subgraph: int):
    for key, index in signature_subgraphs(model).items():
        if index == subgraph:
            sig = next(sd for sd in model.signature_defs if int(sd.subgraphIndex) == subgraph)
            names = {tm.tensorIndex: (tm.name.decode() if isinstance(tm.name, bytes) else tm.name) for tm in sig.inputs}
            return interp.get_signature_runner(key), names
    raise TfloptError(f"subgraph {subgraph} has no signature, so it cannot be run on its own for calibration")


def collect_ranges(model, data: CalibrationData, *, subgraph: int = 0, method: str = "minmax",
                   percentile: float = 99.99, max_samples: int = 0, levels: int = 256, progress: bool | None = None,
                   progress_hook=None, momentum: float = 0.9) -> Ranges:
    """Run the samples through the float model and return the range of each float activation
    of ``subgraph`` (subgraphs other than 0 are run through their signature)."""
    from .runtime import interpreter
    cal, cut = calibration_model(model) if subgraph == 0 else (model, [])
    sg = cal.subgraphs[subgraph]
    produced = {t for op in sg.operators for t in op.outputs}
    watched = [t.index for t in sg.tensors
               if t.type == TensorType.FLOAT32 and not t.is_constant and (t.index in produced or t.index in sg.inputs)]
    try:
        interp = interpreter(cal, xnnpack=False, preserve_all=True)
    except (RuntimeError, ValueError) as e:
        raise TfloptError(f"cannot run the model for calibration: {str(e).splitlines()[0]}") from None
    runner = names = None
    if subgraph == 0:
        details = {d["index"]: d for d in interp.get_input_details()}
        if sorted(details) != sorted(sg.inputs):
            raise TfloptError("cannot match the interpreter's inputs to the model's")
    else:
        runner, names = _signature_runner(interp, cal, subgraph)
    data = data.for_subgraph(subgraph)
    observers = {t: RangeObserver() for t in watched}
    with_hist = method in ("percentile", "mse")
    if progress is None:
        progress = sys.stderr.isatty()
    total = data.count if not max_samples else min(max_samples, data.count or max_samples)
    bar = _Progress(total, progress, progress_hook)
    n = 0
    try:
        for sample in data:
            if max_samples and n >= max_samples:
                break
            if runner is not None:
                runner(**{names[t]: np.asarray(x, sg.tensors[t].dtype) for t, x in zip(sg.inputs, sample)})
            else:
                for t, x in zip(sg.inputs, sample):
                    d = details[t]
                    if list(x.shape) != list(d["shape"]):
                        raise TfloptError(f"{data.source}: input {d['name']!r} wants shape {list(d['shape'])}, "
                                          f"sample has {list(x.shape)}")
                    interp.set_tensor(t, np.asarray(x, d["dtype"]))
                interp.invoke()
            for t, obs in list(observers.items()):
                try:
                    value = interp.get_tensor(t, subgraph)
                except ValueError:
                    # Never materialised (e.g. a control-flow output nothing reads): no range,
                    # so the ops touching it stay float.
                    del observers[t]
                    continue
                obs.update(value, momentum, with_hist)
            n += 1
            bar.step()
    finally:
        bar.close()
    if n == 0:
        raise TfloptError(f"{data.source}: no calibration samples for subgraph {subgraph}")
    ranges = {t: obs.range(method, percentile, levels) for t, obs in observers.items() if obs.n}
    return Ranges(ranges, n, cut)
