"""Running models in the LiteRT interpreter: for calibration, validation and tests."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _content(model) -> bytes:
    from .model import Model
    if isinstance(model, Model):
        return model.to_bytes()
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    return Path(model).read_bytes()


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


_BLAS = None


def one_blas_thread():
    """A context with numpy's BLAS / LAPACK on one thread. Threaded BLAS synchronises its
    threads at every panel or block; on cores shared with other processes each waits for a
    descheduled one: on two loaded cores (load average 11) potrf + trtri at n=512 took 2.7 s
    threaded, 0.05 s on one thread, a layer's X^T X products 0.5-0.66 s against 0.26-0.30 s.
    Idle, two threads would make large products up to 2x faster."""
    global _BLAS
    if _BLAS is None:  # inspecting the loaded libraries once, not per call
        from threadpoolctl import ThreadpoolController
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def interpreter(model, *, xnnpack: bool = True, preserve_all: bool = False, num_threads: int = 1,
                input_shapes=None):
    """An allocated LiteRT interpreter for a Model, bytes or a path.

    ``xnnpack=False`` uses the builtin kernels only, so results do not depend on which ops
    the default delegate takes; ``preserve_all`` keeps intermediates readable after invoke.
    ``input_shapes`` (by input name, or a list in input order) resizes inputs *before* the
    first allocation: a model whose stored shape is a placeholder (``[1, 1]`` for a
    ``[-1, -1]`` signature) may not even prepare at that shape.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=_content(model), num_threads=num_threads,
                         experimental_op_resolver_type=resolver,
                         experimental_preserve_all_tensors=preserve_all)
    if input_shapes:
        details = interp.get_input_details()
        if isinstance(input_shapes, dict):
            unknown = sorted(set(input_shapes) - {d["name"] for d in details})
            if unknown:
                raise ValueError(f"no input named {unknown[0]!r} (inputs: {', '.join(d['name'] for d in details)})")
            shapes = [input_shapes.get(d["name"]) for d in details]
        else:
            shapes = list(input_shapes) + [None] * (len(details) - len(input_shapes))
        for d, shape in zip(details, shapes):
            if shape is not None and list(shape) != list(d["shape"]):
                interp.resize_tensor_input(d["index"], [int(x) for x in shape])
    interp.allocate_tensors()
    return interp


def input_details(model) -> list[dict]:
    """The inputs' details (``name``, ``index``, ``dtype``, ``shape``, ``shape_signature``,
    ``quantization``) without allocating: a model with dynamic input sizes may not prepare
    at its stored placeholder shape, so callers size it from their data first."""
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_content=_content(model)).get_input_details()


def fit_sample(x, detail: dict):
    """``x`` as a sample for the input ``detail`` describes: as it is when its shape fits the
    signature (-1: any size), with the batch-1 axis added when it lacks one; else None."""
    x = np.asarray(x)
    sig = [int(d) for d in detail.get("shape_signature", detail["shape"])] or [int(d) for d in detail["shape"]]
    if x.ndim == len(sig) - 1 and sig and sig[0] in (1, -1):
        x = x[None]
    if x.ndim == len(sig) and all(s < 0 or s == d for s, d in zip(sig, x.shape)):
        return x
    return None


def parse_input_shapes(specs) -> dict[str, list[int]]:
    """``["NAME=1,1760", ...]`` (the ``--input-shape`` option) -> {name: [1, 1760]}."""
    out: dict[str, list[int]] = {}
    for spec in specs or ():
        name, sep, dims = str(spec).rpartition("=")
        try:
            shape = [int(x) for x in dims.split(",") if x.strip()]
        except ValueError:
            shape = []
        if not sep or not name or not shape or any(x <= 0 for x in shape):
            raise ValueError(f"--input-shape {str(spec)[:80]!r}: want NAME=D1,D2,... with positive sizes")
        out[name] = shape
    return out


def random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    """A random sample for one input: uniform in the float range a quantized input encodes,
    [-1, 1) for float inputs, small non-negative values for integer inputs."""
    shape = [d if d > 0 else 1 for d in detail["shape"]]
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        scale, zp = detail.get("quantization", (0.0, 0))
        if scale:  # quantized input: cover the whole encoded range
            return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        return rng.integers(0, min(int(info.max), 8), shape, endpoint=True).astype(dtype)
    raise ValueError(f"cannot make random data for input dtype {dtype}")


def random_inputs(interp, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [random_input(d, rng) for d in interp.get_input_details()]


def invoke(interp, inputs) -> list[np.ndarray]:
    """Feed inputs (a list in input order, or a dict by input name) and return every output
    (copied, in output order)."""
    details = interp.get_input_details()
    if isinstance(inputs, dict):
        inputs = [inputs[d["name"]] for d in details]
    if len(inputs) != len(details):
        raise ValueError(f"model has {len(details)} inputs, got {len(inputs)}")
    for d, x in zip(details, inputs):
        x = np.asarray(x, dtype=d["dtype"])
        if list(x.shape) != list(d["shape"]):
            interp.resize_tensor_input(d["index"], list(x.shape))
            interp.allocate_tensors()
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def run(model, inputs=None, *, seed: int = 0, xnnpack: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(inputs, outputs) of one inference; random inputs when none are given."""
    interp = interpreter(model, xnnpack=xnnpack)
    if inputs is None:
        inputs = random_inputs(interp, seed)
    return inputs, invoke(interp, inputs)


def quiet_tf_logging() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cut_ops(model, doomed_names: set[str]):
    """Remove ops named in ``doomed_names`` from subgraph 0 and everything downstream of them;
    what fed them becomes a graph output, so the rest can still be compared."""
    sg = model.main
    dead_tensors: set[int] = set()
    new_outputs: list[int] = []
    keep = []
    for op in sg.operators:
        if op.name in doomed_names:
            new_outputs.extend(t for t in op.inputs if t >= 0 and t not in dead_tensors
                               and not sg.tensors[t].is_constant)
        if op.name in doomed_names or any(t in dead_tensors for t in op.inputs if t >= 0):
            dead_tensors.update(op.outputs)
        else:
            keep.append(op)
    for op in [o for o in sg.operators if o not in keep]:
        sg.remove_operator(op)
    outputs = [t for t in sg.outputs if t not in dead_tensors]
    outputs += [t for t in dict.fromkeys(new_outputs) if t not in outputs]
    sg.raw.outputs = outputs
    # Signatures name the old outputs; a cut model is only ever run by index. Tensor indices
    # stay as they are, so calibration can map what it reads back to the full model.
    model.raw.signatureDefs = []
    return model


def has_custom_ops(model) -> bool:
    """Whether any operator is a custom op (the only kind ``runnable`` may have to cut)."""
    from . import schema
    return any(schema.builtin_code(oc) == schema.BuiltinOperator.CUSTOM for oc in model.operator_codes)


def runnable(model, *, xnnpack: bool = True, input_shapes=None):
    """A copy of the model the stock interpreter can run: custom ops it cannot resolve (and
    what depends on them) are cut, their inputs become outputs, every tensor keeps its index.
    Returns (model, cut op names).
    Used to compare models with mediapipe's custom ops numerically on everything else.
    ``input_shapes`` sizes dynamic inputs for the trial run (see ``interpreter``)."""
    import re

    from .io import load
    from .model import Model
    m = model.clone() if isinstance(model, Model) else load(_content(model))
    cut: list[str] = []
    for _ in range(64):
        try:
            it = interpreter(m, xnnpack=xnnpack, input_shapes=input_shapes)
            invoke(it, random_inputs(it))
            return m, cut
        except RuntimeError as e:
            # XNNPACK resolves some of mediapipe's custom ops (Convolution2DTransposeBias).
            found = re.search(r"unresolved custom op: ([^.\s]+)", str(e))
            if not found:
                raise
            cut.append("CUSTOM:" + found.group(1))
            m = cut_ops(m, {cut[-1]})
    raise RuntimeError("could not make the model runnable")
