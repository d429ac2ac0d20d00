"""Building models from nothing with the IR: for tests, benchmarks and synthetic examples."""
from __future__ import annotations

import numpy as np

from .model import Buffer, Model
from .schema import BuiltinOptions, TensorType, fb


def new_model(description: str = "tflopt") -> Model:
    """An empty model: one subgraph, the empty sentinel buffer 0, schema version 3."""
    raw = fb.ModelT()
    raw.version = 3
    raw.description = description
    raw.subgraphs = [fb.SubGraphT()]
    raw.subgraphs[0].name = "main"
    return Model(raw, [Buffer()], source_name="<new>")


def mlp(widths: list[int], *, seed: int = 0, relu: bool = True) -> Model:
    """A chain of FULLY_CONNECTED layers widths[0] -> widths[1] -> ...; float32 weights drawn
    from a seeded normal distribution (scaled like He init), so outputs stay finite."""
    rng = np.random.default_rng(seed)
    m = new_model()
    sg = m.main
    x = sg.add_tensor("input", [1, widths[0]], TensorType.FLOAT32)
    sg.raw.inputs = [x.index]
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        w = (rng.standard_normal((n_out, n_in), dtype=np.float32) * np.float32(np.sqrt(2.0 / n_in)))
        b = rng.standard_normal(n_out, dtype=np.float32) * np.float32(0.01)
        wt = sg.add_tensor(f"dense_{i}/kernel", w.shape, TensorType.FLOAT32, data=w)
        bt = sg.add_tensor(f"dense_{i}/bias", b.shape, TensorType.FLOAT32, data=b)
        y = sg.add_tensor(f"dense_{i}/out", [1, n_out], TensorType.FLOAT32)
        opts = fb.FullyConnectedOptionsT()
        last = i == len(widths) - 2
        opts.fusedActivationFunction = fb.ActivationFunctionType.RELU if relu and not last else 0
        sg.insert_operator(len(sg.operators), "FULLY_CONNECTED", [x.index, wt.index, bt.index], [y.index],
                           options=(BuiltinOptions.FullyConnectedOptions, opts))
        x = y
    sg.raw.outputs = [x.index]
    return m


def sigmoid_head_mlp(widths: list[int], *, seed: int = 0, logit_shift: float = -9.0) -> Model:
    """``mlp`` with a LOGISTIC on top whose logits are shifted to about ``logit_shift``:
    scores near 0, which int8's fixed 1/256 sigmoid grid cannot carry (a presence score
    like hand_landmark_full's). The one fragile layer of the sensitivity tests."""
    m = mlp(widths, seed=seed)
    sg = m.main
    last = sg.operators[-1]
    bias = sg.tensors[last.inputs[2]]
    bias.set_data(_values(bias) + np.float32(logit_shift), TensorType.FLOAT32)
    y = sg.add_tensor("score", [1, widths[-1]], TensorType.FLOAT32)
    sg.insert_operator(len(sg.operators), "LOGISTIC", [last.outputs[0]], [y.index])
    sg.raw.outputs = [y.index]
    return m


def _values(t) -> np.ndarray:
    from .weights import float_values
    return float_values(t)
