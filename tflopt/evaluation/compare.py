"""Fidelity of one model against another: per output cosine, SNR, max error, top-1 agreement,
and with labels the top-1 / top-k accuracy of both models and the drop.

Both models see the same float samples. A quantized (int8 / uint8 / int16) input gets the
sample quantized with that input's scale and zero point, and quantized outputs are
dequantized, so a float model and its integer-I/O variant compare directly. Every signature
of a multi-signature model is compared (or the one named). ``per_layer`` compares the
intermediate tensors both models share by name, to show where error enters: in a separate
run on the builtin kernels (XNNPACK's fused intermediates are not readable), so the final
outputs' figures are those of the runtime an app uses either way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import runtime
from ..errors import TfloptError
from .data import load_eval_data, load_labels
from .metrics import accuracy_entry, agreement, fidelity, is_classifier_output

# Tensors the interpreter hands out as handles, not values: reading them crashes the runtime.
_UNREADABLE = {"RESOURCE", "VARIANT", "STRING"}


def to_float(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zp = detail.get("quantization", (0.0, 0))
    if scale and np.asarray(x).dtype.kind in "iu":
        return ((x.astype(np.float64) - zp) * scale).astype(np.float32)
    return np.asarray(x, np.float32) if np.asarray(x).dtype.kind in "fiu" else x


def from_float(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zp = detail.get("quantization", (0.0, 0))
    x = np.asarray(x)
    if dtype.kind in "iu" and scale and x.dtype.kind == "f":
        info = np.iinfo(dtype)
        return np.clip(np.rint(x / scale) + zp, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _shape(s) -> list[int]:
    return [int(x) for x in s]


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


def load_samples(data, details: list[dict], samples: int | None, seed: int = 0,
                 other: list[dict] | None = None) -> list[list[np.ndarray]]:
    """Samples as lists of arrays in input order, from a list of input lists, a data spec
    (``FILE.npz[:KEY]``, ``FILE.npy``; see ``tflopt.evaluation.data``), or None (seeded random
    samples; ``other`` is the second model's input details). ``samples`` None: all of them."""
    if data is None:
        rng = np.random.default_rng(seed)
        pairs = list(zip(details, other or details))
        return [[_random_input(list(p), rng) for p in pairs] for _ in range(samples or 8)]
    if isinstance(data, (str, Path)):
        return _samples_from_file(data, details, samples)
    out = [list(s) if isinstance(s, (list, tuple)) else [s] for s in data]
    return out[:samples] if samples else out


def _samples_from_file(spec, details: list[dict], samples: int | None) -> list[list[np.ndarray]]:
    ev = load_eval_data(spec, [d["name"] for d in details])
    n = min(len(ev), samples) if samples else len(ev)
    out = []
    for i in range(n):
        sample = []
        for a, d in zip(ev.arrays, details):
            x = a[i]
            want = _shape(d["shape"])
            fitted = runtime.fit_sample(x, d)  # dynamic sizes (-1) take the data's
            if fitted is None:
                if x.size != int(np.prod(want)):
                    raise TfloptError(f"{ev.source}: samples of shape {_shape(x.shape)} do not fit input "
                                      f"{d['name']!r} of shape {_shape(d.get('shape_signature', d['shape']))}")
                fitted = x.reshape(want)  # batch-1 inputs stored without the batch axis
            sample.append(fitted)
        out.append(sample)
    return out


class _Runner:
    """One model (or one signature of it) as lists of arrays in, lists of arrays out."""

    def __init__(self, model, signature: str | None = None, *, xnnpack: bool = True, preserve_all: bool = False,
                 input_shapes=None):
        self.interp = runtime.interpreter(model, xnnpack=xnnpack, preserve_all=preserve_all,
                                          input_shapes=None if signature else input_shapes)
        self.signature = signature
        if signature is None:
            self.inputs = self.interp.get_input_details()
            self.outputs = self.interp.get_output_details()
            self.keys_in = self.keys_out = None
        else:
            self.runner = self.interp.get_signature_runner(signature)
            ins, outs = self.runner.get_input_details(), self.runner.get_output_details()
            self.keys_in, self.keys_out = list(ins), list(outs)
            self.inputs, self.outputs = [ins[k] for k in self.keys_in], [outs[k] for k in self.keys_out]

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self.signature is None:
            return runtime.invoke(self.interp, arrays)
        got = self.runner(**dict(zip(self.keys_in, arrays)))
        return [np.array(got[k]) for k in self.keys_out]


def signature_keys(model) -> list[str]:
    """The model's signature keys in stored order."""
    from ..io import load
    from ..model import Model
    m = model if isinstance(model, Model) else load(runtime._content(model))
    return [s.signatureKey.decode() if isinstance(s.signatureKey, bytes) else s.signatureKey
            for s in m.signature_defs]


def _activation_names(model) -> set[str]:
    """Names of the main subgraph's non-constant tensors that hold values (weights are not
    'layers'; resource / variant handles cannot be read)."""
    from ..io import load
    from ..model import Model
    m = model if isinstance(model, Model) else load(runtime._content(model))
    return {t.name for t in m.main.tensors if not t.is_constant and t.type_name not in _UNREADABLE}


def _intermediates(interp, names: set[str]) -> dict[str, np.ndarray]:
    out = {}
    for d in interp.get_tensor_details():
        if d["name"] not in names or not d["name"] or np.dtype(d["dtype"]).kind not in "fiu":
            continue
        try:
            x = interp.get_tensor(d["index"])
        except ValueError:
            continue
        if x is None or x.dtype.kind not in "fiu":
            continue
        out[d["name"]] = to_float(x, d)
    return out


def _run_pair(ra: _Runner, rb: _Runner, sample_list) -> tuple[list, list, list]:
    da, db = ra.inputs, rb.inputs
    outs_a, outs_b, floats_all = [], [], []
    for sample in sample_list:
        if len(sample) != len(da):
            raise TfloptError(f"a sample has {len(sample)} inputs, the models take {len(da)}")
        floats = [to_float(np.asarray(x), d) for x, d in zip(sample, da)]
        xa = ra.run([from_float(x, d) for x, d in zip(floats, da)])
        xb = rb.run([from_float(x, d) for x, d in zip(floats, db)])
        outs_a.append([to_float(x, d) for x, d in zip(xa, ra.outputs)])
        outs_b.append([to_float(x, d) for x, d in zip(xb, rb.outputs)])
        floats_all.append(floats)
    return outs_a, outs_b, floats_all


def _per_layer(a, b, floats_all, input_shapes) -> list[dict]:
    ia = _Runner(a, xnnpack=False, preserve_all=True, input_shapes=input_shapes)
    ib = _Runner(b, xnnpack=False, preserve_all=True, input_shapes=input_shapes)
    shared = _activation_names(a) & _activation_names(b)
    layers: dict[str, tuple[list, list]] = {}
    for floats in floats_all:
        ia.run([from_float(x, d) for x, d in zip(floats, ia.inputs)])
        ib.run([from_float(x, d) for x, d in zip(floats, ib.inputs)])
        ta, tb = _intermediates(ia.interp, shared), _intermediates(ib.interp, shared)
        for name in ta.keys() & tb.keys():
            if ta[name].shape == tb[name].shape:
                layers.setdefault(name, ([], []))
                layers[name][0].append(ta[name])
                layers[name][1].append(tb[name])
    order = {d["name"]: d["index"] for d in ia.interp.get_tensor_details()}
    return [{"name": n, **fidelity(np.stack(layers[n][0]), np.stack(layers[n][1]))}
            for n in sorted(layers, key=lambda n: order.get(n, 0))]


def compare_models(a, b, data=None, per_layer: bool = False, *, samples: int | None = 8, seed: int = 0,
                   labels=None, top_k: int = 5, signature: str | None = None, input_shapes=None) -> dict:
    """Compare model ``b`` against reference ``a`` (Models, bytes or paths) on the same data.

    ``data``: a data spec (``FILE.npz[:KEY]``, see ``tflopt.evaluation.data``), a list of
    samples, or None for seeded random inputs. ``labels``: an array, a spec (``FILE.npz:KEY``)
    or a key of the data file; top-1 / top-k accuracy of both models is reported for
    classifier-shaped outputs. ``samples``: how many (None: all of ``data``).

    Returns {"samples", "random_inputs", "signatures", "outputs": [{name, signature, shape,
    cosine, snr_db, max_abs_error, top1_agreement?, accuracy?}], "layers"? (with per_layer)}.
    Metrics are computed over all samples together.
    """
    a_bytes, b_bytes = runtime._content(a), runtime._content(b)
    keys_a, keys_b = signature_keys(a_bytes), signature_keys(b_bytes)
    if signature is not None and signature not in keys_a:
        raise TfloptError(f"no signature {signature!r} (signatures: {', '.join(keys_a) or 'none'})")
    chosen = [signature] if signature else (keys_a if len(keys_a) > 1 else [None])
    missing = [k for k in chosen if k is not None and k not in keys_b]
    if missing:
        raise TfloptError(f"the candidate has no signature {missing[0]!r} (it has {', '.join(keys_b) or 'none'})")
    if labels is not None and data is None:
        raise TfloptError("labels need --data: accuracy on random inputs means nothing")
    label_array = None
    if labels is not None:
        label_array = np.asarray(labels) if not isinstance(labels, (str, Path)) else load_labels(
            labels, data if isinstance(data, (str, Path)) else None)
    outputs, total = [], None
    first_floats = None
    for key in chosen:
        if key is None and input_shapes is None and data is not None:
            # Sized from the data before the first allocation: a model with dynamic input
            # sizes may not prepare at its stored placeholder shape.
            first = load_samples(data, runtime.input_details(a_bytes), 1, seed)
            if first:
                input_shapes = [np.shape(x) for x in first[0]]
        ra = _Runner(a_bytes, key, input_shapes=input_shapes)
        rb = _Runner(b_bytes, key, input_shapes=input_shapes)
        if len(ra.inputs) != len(rb.inputs):
            raise TfloptError(f"models differ in input count ({len(ra.inputs)} vs {len(rb.inputs)})")
        if len(ra.outputs) != len(rb.outputs):
            raise TfloptError(f"models differ in output count ({len(ra.outputs)} vs {len(rb.outputs)})")
        sample_list = load_samples(data, ra.inputs, samples, seed, rb.inputs)
        if not sample_list:
            raise TfloptError("no samples to compare on")
        outs_a, outs_b, floats_all = _run_pair(ra, rb, sample_list)
        if first_floats is None:
            first_floats = floats_all
        total = len(sample_list) if total is None else total
        for k, d in enumerate(ra.outputs):
            ref = np.stack([o[k] for o in outs_a])
            test = np.stack([o[k] for o in outs_b])
            entry = {"name": d["name"], "signature": key, "shape": _shape(d["shape"]), **fidelity(ref, test)}
            if is_classifier_output(d["shape"]):
                entry["top1_agreement"] = agreement(ref, test)
                if label_array is not None:
                    if len(label_array) < len(sample_list):
                        raise TfloptError(f"{len(label_array)} labels for {len(sample_list)} samples")
                    try:
                        entry["accuracy"] = accuracy_entry(ref.reshape(len(ref), -1), test.reshape(len(test), -1),
                                                           label_array[:len(sample_list)], top_k)
                    except ValueError as e:
                        raise TfloptError(f"labels: {e}") from None
            outputs.append(entry)
    if label_array is not None and not any("accuracy" in o for o in outputs):
        raise TfloptError("labels given, but no output is a (batch, classes) score to take a top-k of")
    result = {"samples": total, "random_inputs": data is None, "signatures": [k for k in chosen if k],
              "outputs": outputs}
    if per_layer:
        if chosen != [None]:
            raise TfloptError("per-layer compares the main subgraph; pick it with --signature or drop --per-layer")
        result["layers"] = _per_layer(a_bytes, b_bytes, first_floats, input_shapes)
    return result


RANDOM_NOTE = ("inputs are random (no --data): the figures say how closely the candidate follows the "
               "reference on noise, not how it does on real inputs; pass --data FILE.npz:KEY for that")
