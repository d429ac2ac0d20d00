"""Rule verdicts against the installed runtimes, per model: the figures of ``audit --observe``.

    python benchmarks/audit_observed.py [--corpus] [--fixtures] [MODEL ...]

Per model and target (xnnpack, litert-gpu): ops, ops observed, agreements, disagreements
(documented), for the GPU whether the whole model is fully accelerated, the distinct one-op
submodels compiled, the worst GPU-vs-CPU cosine / SNR over the outputs, and how many tensors the
float16-overflow check flags. Needs the Vulkan driver (.ci/setup-vulkan) for litert-gpu.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import tflopt
from tflopt.audit import audit

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=pathlib.Path)
    ap.add_argument("--corpus", action="store_true", help="the 14 mediapipe models")
    ap.add_argument("--fixtures", action="store_true", help="fixtures/models and fixtures/audit")
    args = ap.parse_args(argv)
    paths = list(args.models)
    if args.corpus:
        sys.path.insert(0, str(ROOT / "fixtures"))
        from fetch_mediapipe import mediapipe_models
        paths += mediapipe_models()
    if args.fixtures:
        paths += sorted((ROOT / "fixtures" / "audit").glob("*.tflite")) + sorted((ROOT / "fixtures" / "models").glob("*.tflite"))
    print(f"{'model':34} {'target':10} {'ops':>4} {'obs':>4} {'agree':>5} {'dis':>3} {'doc':>3}  "
          f"{'whole':6} {'sub':>4} {'cos':>8} {'snr':>6} {'f16':>3} {'s':>5}")
    totals: dict[str, list[int]] = {}
    for p in paths:
        t0 = time.perf_counter()
        report = audit(tflopt.load(p, verify=False), ["xnnpack", "litert-gpu"], observe=True)
        dt = time.perf_counter() - t0
        for name, o in report.observed.items():
            if "unavailable" in o:
                print(f"{p.stem:34} {name:10} unavailable: {o['unavailable']}")
                continue
            s = o["summary"]
            tot = totals.setdefault(name, [0, 0, 0, 0, 0])
            for i, k in enumerate(("ops", "observed_ops", "agreements", "disagreements", "documented")):
                tot[i] += s[k]
            outs = (o.get("numerics") or {}).get("outputs") or []
            cos = f"{min(x['cosine'] for x in outs):.5f}" if outs else "-"
            snr = f"{min(x['snr_db'] for x in outs):.1f}" if outs else "-"
            whole = "error" if o.get("error") else str(o.get("fully_accelerated", "-"))
            f16 = o.get("float16_overflow", {}).get("tensors")
            print(f"{p.stem:34} {name:10} {s['ops']:4} {s['observed_ops']:4} {s['agreements']:5} "
                  f"{s['disagreements']:3} {s['documented']:3}  {whole:6} {o.get('distinct_submodels', '-')!s:>4} "
                  f"{cos:>8} {snr:>6} {'-' if f16 is None else len(f16):>3} {dt:5.1f}")
    for name, t in totals.items():
        print(f"total {name}: {t[0]} ops, {t[1]} observed, {t[2]} agree, {t[3]} disagree ({t[4]} documented)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
