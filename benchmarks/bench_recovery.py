"""Recovery benchmark on the mediapipe corpus: plain vs calibrated (obs) pruning at 50%.

No real photos ship with the corpus, so calibration uses 16 *smooth random images* (uniform
noise at 1/16 resolution, bilinearly upsampled, values in [-1, 1]) from seed 0, and
evaluation uses different smooth random images from seed 1. The figure is the output SNR
(dB) of the pruned model against the float model on the evaluation images, over every
output the stock interpreter can compute (custom ops it cannot run are cut).

    python benchmarks/bench_recovery.py [--samples 16] [--eval 4] [--waves 8] [NAME ...]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def smooth_images(shape, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    out = []
    for _ in range(count):
        lo = rng.uniform(-1, 1, (max(h // 16, 2), max(w // 16, 2), c))
        ys = np.linspace(0, lo.shape[0] - 1, h)
        xs = np.linspace(0, lo.shape[1] - 1, w)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        y1, x1 = np.minimum(y0 + 1, lo.shape[0] - 1), np.minimum(x0 + 1, lo.shape[1] - 1)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        img = (lo[y0][:, x0] * (1 - fy) * (1 - fx) + lo[y1][:, x0] * fy * (1 - fx)
               + lo[y0][:, x1] * (1 - fy) * fx + lo[y1][:, x1] * fy * fx)
        out.append(img[None].astype(np.float32))
    return out


def samples_for(model, count: int, seed: int) -> list[list[np.ndarray]]:
    from tflopt.calibration import input_specs
    specs = input_specs(model)
    per_input = [smooth_images(s.shape, count, seed + 1000 * i) if len(s.shape) == 4 else
                 [np.random.default_rng(seed + i * 7 + k).uniform(-1, 1, s.shape).astype(np.float32)
                  for k in range(count)] for i, s in enumerate(specs)]
    return [list(x) for x in zip(*per_input)]


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


def compare(path, *, samples: int = 16, evals: int = 4, waves: int = 8, sparsity: float = 0.5) -> dict:
    from tflopt import io
    from tflopt.calibration import from_iterable
    from tflopt.pipeline import PassContext, run_pipeline
    from tflopt.recovery import RecoveryConfig, prune_obs
    base = io.load(path)
    evaluation = samples_for(base, evals, seed=1)
    ref = outputs(base, evaluation)
    plain = io.load(path)
    run_pipeline(plain, f"prune(sparsity={sparsity},sizes=false)", PassContext(), measure=False)
    obs = io.load(path)
    cal = from_iterable(samples_for(obs, samples, seed=0), obs)
    t0 = time.perf_counter()
    res = prune_obs(obs, cal, sparsity=sparsity, sizes=False, config=RecoveryConfig(waves=waves))
    seconds = time.perf_counter() - t0
    rec = res.stats["recovery"]
    return {"model": Path(path).name, "snr_plain": snr_db(ref, outputs(plain, evaluation)),
            "snr_obs": snr_db(ref, outputs(obs, evaluation)), "seconds": seconds,
            "layers": rec.get("layers_recovered", 0), "fallback": rec.get("layers_fallback", 0),
            "warnings": res.warnings}


def corpus() -> list[Path]:
    spec = importlib.util.spec_from_file_location("fetch_mediapipe", ROOT / "fixtures" / "fetch_mediapipe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [Path(p) for p in mod.mediapipe_models()]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--eval", type=int, default=4)
    ap.add_argument("--waves", type=int, default=8)
    ap.add_argument("--sparsity", type=float, default=0.5)
    a = ap.parse_args(argv)
    paths = [p for p in corpus() if not a.names or any(n in p.name for n in a.names)]
    print(f"{'model':42s} {'plain dB':>9s} {'obs dB':>8s} {'layers':>7s} {'fallback':>8s} {'seconds':>8s}")
    total = time.perf_counter()
    for p in paths:
        r = compare(p, samples=a.samples, evals=a.eval, waves=a.waves, sparsity=a.sparsity)
        print(f"{r['model']:42s} {r['snr_plain']:9.2f} {r['snr_obs']:8.2f} {r['layers']:7d} {r['fallback']:8d} "
              f"{r['seconds']:8.1f}", flush=True)
    print(f"total {time.perf_counter() - total:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
