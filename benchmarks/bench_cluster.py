"""How long k=16 clustering takes on 25M weights: one tensor, per channel, and a whole model.

    python benchmarks/bench_cluster.py [--weights 25000000] [--k 16]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tflopt.build import mlp
from tflopt.kmeans import kmeans_1d, kmeans_rows
from tflopt.pipeline import PassContext, run_pipeline


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=int, default=25_000_000)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--channels", type=int, default=4096)
    args = ap.parse_args()
    x = np.random.default_rng(0).standard_normal(args.weights).astype(np.float32)

    for init in ("kmeans++", "density", "linear"):
        res, s = _timed(lambda: kmeans_1d(x, args.k, init=init))
        mse = float(np.mean((res.values() - x) ** 2))
        print(f"tensor      {args.weights:>12,} weights  k={args.k}  init={init:<8}  {s:6.2f} s  "
              f"{res.iterations:3d} iterations  mse={mse:.5f}")

    rows = x[: args.weights // args.channels * args.channels].reshape(args.channels, -1)
    res, s = _timed(lambda: kmeans_rows(rows, args.k))
    print(f"per-channel {rows.size:>12,} weights  k={args.k}  {args.channels} channels  {s:6.2f} s  "
          f"{res.iterations:3d} iterations")

    # A whole model: FC 4096->4096->2048->16 (25.2M weights), through the pass manager.
    for spec in (f"cluster(clusters={args.k},sizes=false)", f"cluster(clusters={args.k},per_channel=true,sizes=false)"):
        model = mlp([4096, 4096, 2048, 16])
        n = sum(t.num_elements for t in model.main.tensors if t.is_constant and len(t.shape) == 2)
        report, s = _timed(lambda: run_pipeline(model, spec, PassContext(), measure=False))
        print(f"model       {n:>12,} weights  {spec:<48} {s:6.2f} s (pass {report.passes[0].seconds:.2f} s)")


if __name__ == "__main__":
    main()
