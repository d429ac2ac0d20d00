"""Measuring what users deploy for: fidelity and accuracy (compare), latency (bench),
thresholds to fail a build on (gates), and the data files they read (data).

Stable API (search and mixed precision build on it):
    compare_models(reference, candidate, data=None, *, labels=None, top_k=5, signature=None,
                   samples=8, input_shapes=None, per_layer=False) -> dict
    bench_model(model, *, threads=1, xnnpack=True, runs=50, warmup=5, data=None,
                input_shapes=None, accelerator="cpu") -> dict
    bench_models(models, *, threads=None, xnnpack=True, gpu=False, **kw) -> dict
    load_eval_data(spec, input_names) -> EvalData;  load_labels(spec, data_spec=None) -> ndarray
    fidelity(ref, test), topk_accuracy(scores, labels, k), accuracy_entry(...), json_safe(obj)
    gates.evaluate(thresholds, comparison, latency_ratio) -> [Gate]; Gate.message()
"""
from .bench import bench_model, bench_models
from .compare import compare_models
from .data import EvalData, load_eval_data, load_labels, split_spec
from .gates import Gate, evaluate as evaluate_gates
from .metrics import accuracy_entry, fidelity, json_safe, metrics, topk_accuracy

__all__ = ["compare_models", "bench_model", "bench_models", "load_eval_data", "load_labels", "split_spec",
           "EvalData", "Gate", "evaluate_gates", "fidelity", "metrics", "topk_accuracy", "accuracy_entry",
           "json_safe"]
