"""Recovery benchmark on the mediapipe corpus: plain vs calibrated (obs) pruning at 50%.

Calibration uses the 16 real photos of ``fixtures/fetch_photos.py``'s calibration folder (8
scikit-image sample photos, whole and cropped) and evaluation the 4 of its evaluation folder
(two other photos), each loaded as a ``--calibration`` image folder is: resized to the model's
input, scaled to [-1, 1] for the detectors and [0, 1] for the landmark / segmentation
models (our assumption of MediaPipe's ranges; both halves see the same). The figure is the
output SNR (dB) of the pruned model against the float model on the evaluation photos, over
every output the stock interpreter can compute (custom ops it cannot run are cut).

    python benchmarks/bench_recovery.py [--samples 16] [--waves 8] [NAME ...]
    python benchmarks/bench_recovery.py --digits   # top-1 of the digits fixtures instead
    python benchmarks/bench_recovery.py --resnet [--methods obs,sparsegpt,gptq] [--json F]
    python benchmarks/bench_recovery.py --compare BEFORE.json AFTER.json
    python benchmarks/bench_recovery.py --resnet --solver-check [--every 4]

``--resnet`` times the calibrated methods on ResNet50 (~/.cache/tflopt/bench, or --model)
with the 16 calibration photos (``--random``: seeded normal inputs instead): wall time of
the whole pipeline, the time of the pass, and the per-layer reconstruction errors the
recovery report holds (``--json`` writes them all; ``--compare`` prints, per method, the
largest relative difference of each per-layer error between two such files).
Whole runs drift apart after a few layers whenever rounding differs anywhere (a near-tied mask
choice flips and the next layers see other inputs), so ``--solver-check`` compares like with
like: every ``--every``-th layer's statistics gathered once from the float model, then each
layer solved with the library's factor and with the textbook one (invert, then factorise).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

import fetch_mediapipe  # noqa: E402
import fetch_photos  # noqa: E402


def photos(model, path, *, split: str, limit: int = 0) -> list[list[np.ndarray]]:
    """The calibration or evaluation photos as the model's input samples."""
    return fetch_photos.photo_samples(model, path, split=split, limit=limit)


def snr_db(ref: list[np.ndarray], out: list[np.ndarray]) -> float:
    sig = sum(float(np.sum(np.square(r.astype(np.float64)))) for r in ref)
    err = sum(float(np.sum(np.square(r.astype(np.float64) - o))) for r, o in zip(ref, out))
    return float("inf") if err == 0 else 10 * np.log10(max(sig, 1e-30) / err)


def outputs(model, inputs) -> list[np.ndarray]:
    from tflopt import runtime
    m, _ = runtime.runnable(model, xnnpack=False)
    interp = runtime.interpreter(m, xnnpack=False)
    res = []
    for x in inputs:
        res.extend(runtime.invoke(interp, x))
    return res


def compare(path, *, samples: int = 16, waves: int = 8, sparsity: float = 0.5) -> dict:
    from tflopt import io
    from tflopt.calibration import from_iterable
    from tflopt.pipeline import PassContext, run_pipeline
    from tflopt.recovery import RecoveryConfig, prune_obs
    base = io.load(path)
    evaluation = photos(base, path, split="evaluation")
    ref = outputs(base, evaluation)
    plain = io.load(path)
    run_pipeline(plain, f"prune(sparsity={sparsity},sizes=false)", PassContext(), measure=False)
    obs = io.load(path)
    cal = from_iterable(photos(obs, path, split="calibration", limit=samples), obs)
    t0 = time.perf_counter()
    res = prune_obs(obs, cal, sparsity=sparsity, sizes=False, config=RecoveryConfig(waves=waves))
    seconds = time.perf_counter() - t0
    rec = res.stats["recovery"]
    return {"model": Path(path).name, "snr_plain": snr_db(ref, outputs(plain, evaluation)),
            "snr_obs": snr_db(ref, outputs(obs, evaluation)), "seconds": seconds,
            "layers": rec.get("layers_recovered", 0), "fallback": rec.get("layers_fallback", 0),
            "warnings": res.warnings}


def corpus() -> list[Path]:
    return [Path(p) for p in fetch_mediapipe.mediapipe_models()]


DIGITS_PIPELINES = {
    "prune 50%": ("prune(sparsity=0.5,min_elements=0,sizes=false)",
                  "prune(sparsity=0.5,min_elements=0,sizes=false,method=obs)"),
    "prune 50% + cluster 16 + int8": (
        "prune(sparsity=0.5,min_elements=0,sizes=false),cluster(clusters=16,min_elements=0,sizes=false),"
        "quantize(mode=int8)",
        "prune(sparsity=0.5,min_elements=0,sizes=false,method=obs),"
        "cluster(clusters=16,min_elements=0,sizes=false,method=obs),quantize(mode=int8,weights=gptq)"),
    "int8": ("quantize(mode=int8)", "quantize(mode=int8,weights=gptq)"),
}


def digits_table() -> None:
    """Top-1 on the digits test split (360 images) of the fixtures trained on digits, plain
    vs recovered, calibrated on the disjoint 64-image calibration split."""
    from tflopt import io, runtime
    from tflopt.calibration import from_iterable
    from tflopt.pipeline import PassContext, run_pipeline
    d = np.load(ROOT / "fixtures" / "data" / "digits.npz")
    views = {"convnet": lambda x: x, "mlp": lambda x: x[:, ::2, ::2, 0].reshape(-1, 64)}

    def accuracy(model, x, y):
        interp = runtime.interpreter(model, xnnpack=False)
        return float(np.mean([runtime.invoke(interp, [s[None]])[0].argmax() for s in x] == y))

    print(f"{'model':8s} {'pipeline':32s} {'float':>6s} {'plain':>6s} {'recovered':>9s} {'seconds':>8s}")
    for name, view in views.items():
        path = ROOT / "fixtures" / "models" / f"{name}_fp32.tflite"
        x_test, x_cal = view(d["x_test"]), view(d["x_calib"])
        base = accuracy(io.load(path), x_test, d["y_test"])
        for label, (plain_spec, rec_spec) in DIGITS_PIPELINES.items():
            got = []
            for spec in (plain_spec, rec_spec):
                m = io.load(path)
                t0 = time.perf_counter()
                run_pipeline(m, spec, PassContext(calibration=from_iterable(list(x_cal[:, None]), m)), measure=False)
                got.append((accuracy(m, x_test, d["y_test"]), time.perf_counter() - t0))
            print(f"{name:8s} {label:32s} {base:6.3f} {got[0][0]:6.3f} {got[1][0]:9.3f} {got[1][1]:8.1f}", flush=True)


RESNET = Path.home() / ".cache" / "tflopt" / "bench" / "resnet50_fp32.tflite"
RESNET_PIPELINES = {
    "obs": "prune(sparsity=0.5,method=obs)",                         # OBC where affordable, else SparseGPT
    "sparsegpt": "prune(sparsity=0.5,pattern=nm,nm=2:4,method=obs)",   # the blocked SparseGPT sweep
    "gptq": "quantize(mode=dynamic,weights=gptq)",
}


def resnet_table(path: Path, methods: list[str], *, samples: int, random: bool, json_path: str | None) -> None:
    """Wall time and per-layer errors of each calibrated method on one model."""
    import json
    import os
    from tflopt import io
    from tflopt.calibration import from_iterable
    from tflopt.pipeline import PassContext, run_pipeline
    data = _inputs(io.load(path), path, samples, random)
    print(f"# {path.name}, {len(data)} {'random normal' if random else 'photo'} samples, load {os.getloadavg()[0]:.2f}")
    print(f"{'method':10s} {'wall s':>7s} {'pass s':>7s} {'layers':>6s} {'fallback':>8s} {'mean plain':>10s} "
          f"{'mean comp':>10s} {'mean recov':>10s}")
    dump = {}
    for name in methods:
        m = io.load(path)
        t0 = time.perf_counter()
        report = run_pipeline(m, RESNET_PIPELINES[name], PassContext(calibration=from_iterable(data, m)))
        wall = time.perf_counter() - t0
        step = report.passes[0]
        rec = step.stats.get("recovery") or {}
        layers = [r for r in rec.get("layers", []) if r.get("recovered")]
        mean = lambda k: float(np.mean([r[k] for r in layers])) if layers else float("nan")  # noqa: E731
        print(f"{name:10s} {wall:7.1f} {step.seconds:7.1f} {len(layers):6d} {rec.get('layers_fallback', 0):8d} "
              f"{mean('error_plain'):10.4e} {mean('error_compensated'):10.4e} {mean('error_recovered'):10.4e}",
              flush=True)
        dump[name] = {"wall": wall, "layers": rec.get("layers", [])}
    if json_path:
        Path(json_path).write_text(json.dumps(dump, indent=1, default=float))


def solver_check(path: Path, *, samples: int, every: int, random: bool) -> None:
    """Per-layer errors of 50% calibrated pruning from the same statistics, fast vs textbook factor."""
    import os
    from tflopt import io
    from tflopt.recovery import obs
    from tflopt.recovery.bias_correction import read_bias
    from tflopt.recovery.report import LayerError
    from tflopt.recovery.sparsegpt import prune_layer
    from tflopt.recovery.stats import gather, layer_spec
    from tflopt.weights import weight_slots
    model = io.load(path)
    data = _inputs(model, path, samples, random)
    specs = [sp for sp, _ in (layer_spec(s) for s in weight_slots(model, ops=None, min_elements=0)) if sp][::every]
    stats = gather(model, specs, data, biases={i: read_bias(s.op, s.bias_position) for i, s in enumerate(specs)})
    textbook = lambda A: np.swapaxes(np.linalg.cholesky(np.linalg.inv(A)), -1, -2)  # noqa: E731
    fast_factor = obs._upper_factor_of_inverse
    print(f"# {path.name}: {len(specs)} layers, {len(data)} samples, load {os.getloadavg()[0]:.2f}")
    print(f"{'layer':48s} {'rows':>5s} {'cols':>5s} {'error fast':>12s} {'textbook':>12s} {'rel diff':>9s} {'mask diff':>9s}")
    worst = 0.0
    for i, spec in enumerate(specs):
        st = stats[i]
        W = spec.to2d(spec.slot.floats()).astype(np.float64)
        H = st.hessian_for_rows(spec)
        got = []
        for factor in (fast_factor, textbook):
            obs._upper_factor_of_inverse = factor
            try:
                Q, mask = prune_layer(W, H, pattern="unstructured", target=W.size // 2, forced=W == 0,
                                      damp=0.01 * max(1.0, spec.cols / max(st.count, 1)), obc=False)
            finally:
                obs._upper_factor_of_inverse = fast_factor
            err = LayerError(H, W, st.count, st.mean_for_rows(spec))
            got.append((err.relative(err.quad(Q - W)), mask))
        rel = abs(got[0][0] - got[1][0]) / max(got[1][0], 1e-30)
        worst = max(worst, rel)
        print(f"{spec.name[-48:]:48s} {spec.rows:5d} {spec.cols:5d} {got[0][0]:12.6e} {got[1][0]:12.6e} {rel:9.1e} "
              f"{int(np.sum(got[0][1] != got[1][1])):9d}", flush=True)
    print(f"largest relative difference {worst:.1e}")


def _inputs(model, path: Path, samples: int, random: bool) -> list:
    if not random:
        return photos(model, path, split="calibration", limit=samples)
    rng = np.random.default_rng(0)
    shape = [d if d > 0 else 1 for d in model.main.tensors[model.main.inputs[0]].shape]
    return [[rng.standard_normal(shape).astype(np.float32)] for _ in range(samples)]


def compare_dumps(before: str, after: str) -> None:
    import json
    a, b = json.loads(Path(before).read_text()), json.loads(Path(after).read_text())
    keys = ("error_plain", "error_compensated", "error_recovered")
    print(f"{'method':10s} {'wall before':>11s} {'wall after':>10s} {'speed-up':>8s} {'layers':>6s} "
          + " ".join(f"{'max rel diff ' + k[6:]:>22s}" for k in keys))
    for name in a.keys() & b.keys():
        ra = {r["name"]: r for r in a[name]["layers"] if r.get("recovered")}
        rb = {r["name"]: r for r in b[name]["layers"] if r.get("recovered")}
        same = ra.keys() & rb.keys()
        diff = [max((abs(ra[n][k] - rb[n][k]) / max(abs(ra[n][k]), 1e-30) for n in same), default=float("nan"))
                for k in keys]
        layers = f"{len(same)}" if len(same) == len(ra) == len(rb) else f"{len(same)}/{len(ra)}/{len(rb)}"
        print(f"{name:10s} {a[name]['wall']:11.1f} {b[name]['wall']:10.1f} {a[name]['wall'] / b[name]['wall']:8.2f} "
              f"{layers:>6s} " + " ".join(f"{d:22.2e}" for d in diff))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--waves", type=int, default=8)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--digits", action="store_true", help="top-1 table of the digits fixtures instead")
    ap.add_argument("--resnet", action="store_true", help="time obs / sparsegpt / gptq on ResNet50 instead")
    ap.add_argument("--model", type=Path, default=RESNET, help="the model --resnet runs on")
    ap.add_argument("--methods", default="obs,sparsegpt,gptq")
    ap.add_argument("--random", action="store_true", help="--resnet: seeded normal inputs, not photos")
    ap.add_argument("--json", help="--resnet: write every per-layer figure here")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two --json files")
    ap.add_argument("--solver-check", action="store_true",
                    help="--resnet: per-layer errors from the same statistics, library vs textbook factor")
    ap.add_argument("--every", type=int, default=4, help="--solver-check: every n-th layer")
    a = ap.parse_args(argv)
    if a.resnet and a.solver_check:
        solver_check(a.model, samples=a.samples, every=a.every, random=a.random)
        return 0
    if a.compare:
        compare_dumps(*a.compare)
        return 0
    if a.resnet:
        resnet_table(a.model, a.methods.split(","), samples=a.samples, random=a.random, json_path=a.json)
        return 0
    if a.digits:
        digits_table()
        return 0
    paths = [p for p in corpus() if not a.names or any(n in p.name for n in a.names)]
    print(f"{'model':42s} {'plain dB':>9s} {'obs dB':>8s} {'layers':>7s} {'fallback':>8s} {'seconds':>8s}")
    total = time.perf_counter()
    for p in paths:
        r = compare(p, samples=a.samples, waves=a.waves, sparsity=a.sparsity)
        print(f"{r['model']:42s} {r['snr_plain']:9.2f} {r['snr_obs']:8.2f} {r['layers']:7d} {r['fallback']:8d} "
              f"{r['seconds']:8.1f}", flush=True)
    print(f"total {time.perf_counter() - total:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
