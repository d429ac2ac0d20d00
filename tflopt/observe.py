"""Reading intermediate tensors at the runtime's speed, for calibration and layer statistics.

The interpreter only keeps intermediates readable with the builtin kernels and
``preserve_all_tensors`` on one thread, which is 3-6x slower than the runtime a model ships
with. An ``Observer`` instead runs a copy of the model in which the tensors to observe are
extra graph outputs: graph outputs are always materialised and readable, so XNNPACK and every
core can run the graph. Callers get one sample's tensors at a time and fold them into running
statistics, so nothing grows with the number of samples.

``TFLOPT_OBSERVE=builtin`` (or ``fast=False``) selects the old path: builtin kernels, one
thread, every tensor preserved. Both give the same values within the kernels' float rounding.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator

import numpy as np

from . import runtime


def fast_default(fast: bool | None = None) -> bool:
    """``fast`` if given, else what TFLOPT_OBSERVE says (``builtin`` selects the old path)."""
    if fast is not None:
        return bool(fast)
    return os.environ.get("TFLOPT_OBSERVE", "fast").strip().lower() not in ("builtin", "slow", "0")


def peek(samples: Iterable) -> tuple[object | None, Iterator]:
    """(first sample or None, an iterator over all samples, the first included): the
    interpreter is sized from the first sample before its first allocation."""
    it = iter(samples)
    for first in it:
        def chained():
            yield first
            yield from it
        return first, chained()
    return None, iter(())


class Observer:
    """Runs subgraph 0 of ``model`` on samples and hands back the tensors asked for.

    The fast path serialises ``model`` once with the extra outputs; unless ``owned`` (the
    caller's private copy, which keeps them) its outputs are restored right after. ``input_shapes`` (a list in input order) sizes the
    inputs before the first allocation. ``run(sample, consume)`` calls ``consume`` with
    {tensor index: array} for the tensors it could read; on the fast path the arrays are views
    into the interpreter's memory, valid only inside ``consume`` (the interpreter refuses to
    run again while a view is alive, so ``consume`` must not keep them).
    """

    def __init__(self, model, tensors: Iterable[int], *, input_shapes=None, fast: bool | None = None,
                 owned: bool = False):
        self.fast = fast_default(fast)
        self.tensors = list(dict.fromkeys(int(t) for t in tensors))
        sg = model.main
        self.inputs = list(sg.inputs)
        if self.fast:
            outputs = list(sg.outputs)
            known = set(outputs) | set(self.inputs)
            saved = (sg.raw.outputs, model.raw.signatureDefs)
            # Inputs are read from the sample itself; everything else becomes a graph output.
            sg.raw.outputs = outputs + [t for t in self.tensors if t not in known]
            # Signatures name the original outputs only; the copy is run by tensor index.
            model.raw.signatureDefs = []
            try:
                content = model.to_bytes()
            finally:
                if not owned:  # serialised with the extra outputs, then given back unchanged
                    sg.raw.outputs, model.raw.signatureDefs = saved
            self.interp = runtime.interpreter(content, xnnpack=True, num_threads=runtime.cores(), input_shapes=input_shapes)
            self._content = content
        else:
            self.interp = runtime.interpreter(model, xnnpack=False, preserve_all=True, input_shapes=input_shapes)
        self.details = {d["index"]: d for d in self.interp.get_input_details()}
        if sorted(self.details) != sorted(self.inputs):
            raise ValueError("cannot match the interpreter's inputs to the model's")
        self.unreadable: set[int] = set()
        # Why the XNNPACK copy gave way to the builtin kernels, if it did (see ``_invoke``).
        self.fallback: str | None = None

    def _invoke(self, interp, fed: dict):
        """Invoke; where XNNPACK fails at run time on the copy with extra outputs (seen on
        two corpus models: "failed to setup XNNPACK runtime"), the same copy runs on the
        builtin kernels from then on: slower, the same values."""
        try:
            interp.invoke()
            return interp
        except RuntimeError as e:
            if not self.fast or self.fallback is not None:
                raise
            self.fallback = " ".join(str(e).split())[:200]
            shapes = [list(np.shape(fed[t])) if t in fed else None for t in self.inputs]
            interp = self.interp = runtime.interpreter(self._content, xnnpack=False, input_shapes=shapes)
            self.details = {d["index"]: d for d in interp.get_input_details()}
            for t, x in fed.items():
                interp.set_tensor(t, x)
            interp.invoke()
            return interp

    def run(self, sample, consume) -> None:
        interp = self.interp
        fed = {}
        for t, x in zip(self.inputs, sample):
            d = self.details[t]
            x = np.asarray(x, d["dtype"])
            if list(x.shape) != list(d["shape"]):
                # Samples of another size (dynamic inputs): resize, then allocate again.
                interp.resize_tensor_input(t, list(x.shape))
                interp.allocate_tensors()
                self.details = {d["index"]: d for d in interp.get_input_details()}
            interp.set_tensor(t, x)
            fed[t] = x
        interp = self._invoke(interp, fed)
        out = {}
        for t in self.tensors:
            if t in fed:
                out[t] = fed[t]
                continue
            if t in self.unreadable:
                continue
            try:
                # A view into the interpreter's arena (no copy); the builtin path copies as before.
                out[t] = interp.tensor(t)() if self.fast else interp.get_tensor(t)
            except ValueError:
                # Never materialised (e.g. a control-flow output nothing reads).
                self.unreadable.add(t)
        try:
            consume(out)
        finally:
            out.clear()
