"""Fidelity of one model against another: per output cosine, SNR, max error, top-1 agreement.

Both models see the same float samples. A quantized (int8 / uint8 / int16) input gets the
sample quantized with that input's scale and zero point, and quantized outputs are
dequantized, so a float model and its integer-I/O variant compare directly. ``per_layer``
also compares the intermediate tensors both models share by name, to show where error enters.
"""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from . import runtime
from .errors import TfloptError


def _to_float(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zp = detail.get("quantization", (0.0, 0))
    if scale and np.asarray(x).dtype.kind in "iu":
        return ((x.astype(np.float64) - zp) * scale).astype(np.float32)
    return np.asarray(x, np.float32) if np.asarray(x).dtype.kind in "fiu" else x


def _from_float(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zp = detail.get("quantization", (0.0, 0))
    x = np.asarray(x)
    if dtype.kind in "iu" and scale and x.dtype.kind == "f":
        info = np.iinfo(dtype)
        return np.clip(np.rint(x / scale) + zp, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def metrics(ref: np.ndarray, test: np.ndarray) -> dict:
    """Cosine similarity, SNR in dB (reference power over error power), max |error|."""
    a = np.asarray(ref, np.float64).ravel()
    b = np.asarray(test, np.float64).ravel()
    err = a - b
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cosine = float(a @ b / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    noise = float(err @ err)
    signal = float(a @ a)
    snr = float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else float("-inf"))
    return {"cosine": cosine, "snr_db": snr, "max_abs_error": float(np.max(np.abs(err))) if err.size else 0.0}


def _random_input(details: list[dict], rng) -> np.ndarray:
    """Uniform floats over the range a quantized input encodes (either model's), else what
    ``runtime.random_input`` gives."""
    for d in details:
        scale, zp = d.get("quantization", (0.0, 0))
        if scale and np.dtype(d["dtype"]).kind in "iu":
            info = np.iinfo(np.dtype(d["dtype"]))
            shape = [x if x > 0 else 1 for x in d["shape"]]
            return rng.uniform(scale * (info.min - zp), scale * (info.max - zp), shape).astype(np.float32)
    return runtime.random_input(details[0], rng)


def load_samples(data, details: list[dict], samples: int, seed: int = 0,
                 other: list[dict] | None = None) -> list[list[np.ndarray]]:
    """Samples as lists of arrays in input order, from a list of input lists, an .npz / .npy
    path, or None (seeded random samples; ``other`` is the second model's input details)."""
    if data is None:
        rng = np.random.default_rng(seed)
        pairs = list(zip(details, other or details))
        return [[_random_input(list(p), rng) for p in pairs] for _ in range(samples)]
    if isinstance(data, (str, Path)):
        return _samples_from_file(Path(data), details, samples)
    out = [list(s) if isinstance(s, (list, tuple)) else [s] for s in data]
    return out[:samples] if samples else out


def _samples_from_file(path: Path, details: list[dict], samples: int) -> list[list[np.ndarray]]:
    if not path.is_file():
        raise TfloptError(f"data file {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise TfloptError(f"{path}: cannot read samples: {e}") from None
    if isinstance(loaded, np.ndarray):
        arrays = [loaded]
    else:
        names = [d["name"] for d in details]
        keys = list(loaded.keys())
        # Keyed by input name, else the conventional x_test / x_calib, else file order.
        picked = [k for k in names if k in keys]
        if len(picked) != len(names):
            picked = [k for k in ("x_test", "x_calib", "x") if k in keys][:1] if len(names) == 1 else []
        if len(picked) != len(names):
            picked = keys[:len(names)]
        if len(picked) != len(names):
            raise TfloptError(f"{path}: model has {len(names)} inputs, file holds {len(keys)} arrays")
        arrays = [loaded[k] for k in picked]
    n = min(len(a) for a in arrays)
    n = min(n, samples) if samples else n
    out = []
    for i in range(n):
        sample = []
        for a, d in zip(arrays, details):
            x = a[i]
            fitted = runtime.fit_sample(x, d)  # dynamic sizes (-1) take the data's
            if fitted is None:
                if x.size != int(np.prod(d["shape"])):
                    raise TfloptError(f"{path}: samples of shape {list(x.shape)} do not fit input "
                                      f"{d['name']!r} of shape {list(d.get('shape_signature', d['shape']))}")
                fitted = x.reshape(d["shape"])
            sample.append(fitted)
        out.append(sample)
    return out


def _activation_names(model) -> set[str]:
    """Names of the main subgraph's non-constant tensors (weights are not 'layers')."""
    from .io import load
    from .model import Model
    m = model if isinstance(model, Model) else load(runtime._content(model))
    return {t.name for t in m.main.tensors if not t.is_constant}


def _intermediates(interp, names: set[str]) -> dict[str, np.ndarray]:
    out = {}
    for d in interp.get_tensor_details():
        if d["name"] not in names:
            continue
        try:
            x = interp.get_tensor(d["index"])
        except ValueError:
            continue
        if x is None or x.dtype.kind not in "fiu" or not d["name"]:
            continue
        out[d["name"]] = _to_float(x, d)
    return out


def compare_models(a, b, data=None, per_layer: bool = False, *, samples: int = 8, seed: int = 0) -> dict:
    """Compare model ``b`` against reference ``a`` (Models, bytes or paths) on the same data.

    Returns {"samples", "outputs": [{name, cosine, snr_db, max_abs_error, top1_agreement?}],
    "layers": [...] when per_layer}. Metrics are computed over all samples together."""
    da, db = runtime.input_details(a), runtime.input_details(b)
    if len(da) != len(db):
        raise TfloptError(f"models differ in input count ({len(da)} vs {len(db)})")
    sample_list = load_samples(data, da, samples, seed, db)
    if not sample_list:
        raise TfloptError("no samples to compare on")
    # Sized from the data before the first allocation (dynamic input shapes).
    # Tensors inside a delegated partition are not readable: per-layer runs builtin kernels.
    shapes = [np.shape(x) for x in sample_list[0]]
    ia = runtime.interpreter(a, preserve_all=per_layer, xnnpack=not per_layer, input_shapes=shapes)
    ib = runtime.interpreter(b, preserve_all=per_layer, xnnpack=not per_layer, input_shapes=shapes)
    shared = (_activation_names(a) & _activation_names(b)) if per_layer else set()
    da, db = ia.get_input_details(), ib.get_input_details()
    outs_a, outs_b, layers = [], [], {}
    for sample in sample_list:
        if len(sample) != len(da):
            raise TfloptError(f"a sample has {len(sample)} inputs, the models take {len(da)}")
        floats = [_to_float(np.asarray(x), d) for x, d in zip(sample, da)]
        ra = runtime.invoke(ia, [_from_float(x, d) for x, d in zip(floats, da)])
        rb = runtime.invoke(ib, [_from_float(x, d) for x, d in zip(floats, db)])
        outs_a.append([_to_float(x, d) for x, d in zip(ra, ia.get_output_details())])
        outs_b.append([_to_float(x, d) for x, d in zip(rb, ib.get_output_details())])
        if per_layer:
            ta, tb = _intermediates(ia, shared), _intermediates(ib, shared)
            for name in ta.keys() & tb.keys():
                if ta[name].shape == tb[name].shape:
                    layers.setdefault(name, ([], []))
                    layers[name][0].append(ta[name])
                    layers[name][1].append(tb[name])
    details = ia.get_output_details()
    if len(details) != len(ib.get_output_details()):
        raise TfloptError("models differ in output count")
    outputs = []
    for k, d in enumerate(details):
        ref = np.stack([o[k] for o in outs_a])
        test = np.stack([o[k] for o in outs_b])
        entry = {"name": d["name"], "shape": [int(x) for x in d["shape"]], **metrics(ref, test)}
        if len(d["shape"]) == 2 and d["shape"][-1] > 1:  # (batch, classes): classifier-like
            entry["top1_agreement"] = float(np.mean(ref.argmax(-1) == test.argmax(-1)))
        outputs.append(entry)
    result = {"samples": len(sample_list), "outputs": outputs}
    if per_layer:
        order = {d["name"]: d["index"] for d in ia.get_tensor_details()}
        result["layers"] = [{"name": n, **metrics(np.stack(layers[n][0]), np.stack(layers[n][1]))}
                            for n in sorted(layers, key=lambda n: order.get(n, 0))]
    return result


@click.command("compare")
@click.argument("reference", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("candidate", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=".npz (one array per input, by name or order) or .npy; random samples if omitted.")
@click.option("--samples", type=click.IntRange(min=1), default=8, show_default=True,
              help="Samples to use (the first N of --data).")
@click.option("--per-layer", is_flag=True, help="Also compare intermediate tensors the models share.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compare_cmd(reference, candidate, data, samples, per_layer, as_json):
    """Compare CANDIDATE's outputs against REFERENCE's on the same inputs."""
    from .cli import emit_json
    from .io import load
    for p in (reference, candidate):
        load(p)  # a missing or corrupt file is "FILE: problem", before any interpreter starts
    try:
        result = compare_models(reference, candidate, data, per_layer, samples=samples)
    except (ValueError, RuntimeError) as e:
        raise TfloptError(f"cannot run the models: {' '.join(str(e).split())}") from None
    if as_json:
        emit_json(result)
        return
    click.echo(f"{result['samples']} samples")
    for o in result["outputs"]:
        top1 = f"  top-1 {o['top1_agreement']:.3f}" if "top1_agreement" in o else ""
        click.echo(f"{o['name']}: cosine {o['cosine']:.6f}  SNR {o['snr_db']:.1f} dB  "
                   f"max |err| {o['max_abs_error']:.4g}{top1}")
    for layer in result.get("layers", []):
        click.echo(f"  {layer['name']}: cosine {layer['cosine']:.6f}  SNR {layer['snr_db']:.1f} dB")
