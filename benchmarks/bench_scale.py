"""Speed and memory at scale: tflopt against ai-edge-quantizer on float32 MLPs of 10 MB,
100 MB, 500 MB and >2 GB (the last converted by TensorFlow in the external-buffer layout,
``Buffer.offset`` / ``size``), each work run as a whole child process; the table gives wall
time and peak resident memory (``ru_maxrss`` of the child, imports included).

Works: the round trip (``optimize`` with no passes), float16, dynamic int8, ``tflopt size``,
prune (``prune(sparsity=0.5)``) and cluster (``cluster(clusters=16)``), both without the
per-tensor gzip / zstd figures (``sizes=false``: reporting, not the rewrite; ``--sizes`` keeps
them); with ``--resnet``, full int8 of ResNet50 with 8 / 32 / 128 calibration samples
(``--samples``; the inputs of benchmarks/bench_calibration.py).

The models are built once with TensorFlow (``--tf-python``, default /work/tfvenv/bin/python or
``$TFLOPT_TF_PYTHON``) and cached under ~/.cache/tflopt/bench/. ai-edge-quantizer runs from its
own environment (``--aeq-python``, default /work/aeq-venv/bin/python: ``python3 -m venv
/work/aeq-venv && /work/aeq-venv/bin/pip install ai-edge-quantizer``); without it its column
shows "-" (it has no float16, prune or cluster recipe). Every run is one process at a time,
the tools interleaved within each repeat: the >2 GB cases need GBs (TensorFlow needs ~20 GB
once, to convert the 2.4 GB model). ``--tflopt-python`` runs tflopt from another environment
(e.g. one with an older commit installed, for before / after figures).

    python benchmarks/bench_scale.py [--mb 10,100,500,2400]
        [--works roundtrip,float16,dynamic,size,prune,cluster] [--repeat 1] [--resnet]
        [--samples 8,32,128] [--sizes] [--tflopt-python PY]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_calibration import AEQ_WORKER, RESNET, calibration_file  # noqa: E402  (its model, data, aeq driver)

CACHE = Path(os.environ.get("TFLOPT_BENCH_CACHE", Path.home() / ".cache" / "tflopt" / "bench"))
TF_PYTHON = os.environ.get("TFLOPT_TF_PYTHON", "/work/tfvenv/bin/python")
AEQ_PYTHON = os.environ.get("TFLOPT_AEQ_PYTHON", "/work/aeq-venv/bin/python")
FLATBUFFER_MAX = 2**31

# Built by TensorFlow in a child: a chain of Dense layers of one width (float32).
_BUILD = r"""
import sys, numpy as np, tensorflow as tf
width, layers, out, external = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
tf.keras.utils.set_random_seed(0)
inp = tf.keras.Input((width,), batch_size=1, name="x")
x = inp
for i in range(layers):
    x = tf.keras.layers.Dense(width, activation="relu" if i < layers - 1 else None, name=f"dense_{i}")(x)
model = tf.keras.Model(inp, x)
conv = tf.lite.TFLiteConverter.from_keras_model(model)
conv._experimental_use_buffer_offset = external   # the converter's layout above 2 GB
data = conv.convert()
del model, conv
with open(out + ".tmp", "wb") as f:
    f.write(data)
"""


def mlp_shape(mb: int) -> tuple[int, int]:
    """(width, layers) of an MLP of about ``mb`` MB of float32 weights."""
    width = 1024 if mb <= 16 else 2048 if mb <= 160 else 4096 if mb <= 1200 else 8192
    return width, max(1, round(mb * 1e6 / (width * width * 4)))


def build_mlp(mb: int) -> Path:
    """The cached MLP of about ``mb`` MB (built by TensorFlow's converter the first time)."""
    width, layers = mlp_shape(mb)
    external = width * width * 4 * layers > FLATBUFFER_MAX - 2**28
    path = CACHE / f"mlp_{width}x{layers}{'_ext' if external else ''}.tflite"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"building {path.name} with TensorFlow ({width} x {layers} layers) ...", file=sys.stderr, flush=True)
        subprocess.run([TF_PYTHON, "-c", _BUILD, str(width), str(layers), str(path), "1" if external else "0"],
                       check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
        os.replace(str(path) + ".tmp", path)
    return path


_AEQ = r"""
import sys
from ai_edge_quantizer import quantizer, recipe
model, out, work = sys.argv[1:4]
q = quantizer.Quantizer(model)
q.load_quantization_recipe({"dynamic": recipe.dynamic_wi8_afp32}[work]())
q.quantize().export_model(out, overwrite=True)
"""
TFLOPT_SPECS = {"float16": "quantize(mode=float16)", "dynamic": "quantize(mode=dynamic)",
                "prune": "prune(sparsity=0.5{})", "cluster": "cluster(clusters=16{})",
                "int8": "quantize(mode=int8)"}
TFLOPT_PYTHON = [sys.executable]   # --tflopt-python


def child(cmd: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS bytes) of one command run as a fresh process (os.wait4 rusage)."""
    t0 = time.perf_counter()
    # Run outside the checkout: ``-m`` puts the working directory first on the path, which would
    # hand --tflopt-python this checkout's tflopt rather than its own.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tempfile.gettempdir(),
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))[:200]} failed: {proc.stderr.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss * 1024


def commands(work: str, model: Path, out: Path, sizes: bool = False,
             calibration: Path | None = None) -> dict[str, list[str] | None]:
    """The command of each tool for one work (None: the tool has no such work)."""
    tflopt = TFLOPT_PYTHON + ["-m", "tflopt"]
    has_aeq = Path(AEQ_PYTHON).exists()
    if work == "roundtrip":
        return {"tflopt": tflopt + ["optimize", str(model), "-o", str(out)], "cp": ["cp", str(model), str(out)]}
    if work == "size":
        return {"tflopt": tflopt + ["size", str(model), "--json"]}
    if work == "int8":   # ai-edge-quantizer calibrates through its Python API, as its docs show
        return {"tflopt": tflopt + ["optimize", str(model), "-o", str(out), "-p", TFLOPT_SPECS[work],
                                    "--calibration", str(calibration)],
                "ai-edge-quantizer": [AEQ_PYTHON, "-c", AEQ_WORKER, str(model), str(calibration), str(out)]
                if has_aeq else None}
    spec = TFLOPT_SPECS[work].format("" if sizes else ",sizes=false")
    return {"tflopt": tflopt + ["optimize", str(model), "-o", str(out), "-p", spec],
            "ai-edge-quantizer": [AEQ_PYTHON, "-c", _AEQ, str(model), str(out), work]
            if has_aeq and work == "dynamic" else None}


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def measure(model: Path, work: str, label: str, repeat: int, tmp: Path, **kw) -> dict:
    """One table row: each tool's median time and largest peak over ``repeat`` interleaved runs."""
    out = tmp / f"out_{work}.tflite"
    runs: dict[str, list[tuple[float, int]]] = {}
    for _ in range(repeat):  # interleaved, one process at a time (the 2 GB ones need GBs)
        for tool, cmd in commands(work, model, out, **kw).items():
            if cmd is None:
                continue
            runs.setdefault(tool, []).append(child(cmd))
            out.unlink(missing_ok=True)
    row = {"model": model.name, "file_mb": model.stat().st_size / 1e6, "work": label}
    for tool, rs in runs.items():
        row[tool] = (median([r[0] for r in rs]), max(r[1] for r in rs))
    print(format_row(row), flush=True)
    return row


def run(works: list[str], mbs: list[int], repeat: int, tmp: Path, sizes: bool = False) -> list[dict]:
    return [measure(build_mlp(mb), work, work, repeat, tmp, sizes=sizes) for mb in mbs for work in works]


def run_resnet(samples: list[int], repeat: int, tmp: Path) -> list[dict]:
    """Full int8 of ResNet50 with each calibration set size (bench_calibration's model and data)."""
    if not RESNET.exists():
        raise SystemExit(f"{RESNET} missing: /work/tfvenv/bin/python benchmarks/bench_calibration.py --build")
    return [measure(RESNET, "int8", f"full int8, {n} samples", repeat, tmp, calibration=calibration_file(tmp, n))
            for n in samples]


def _cell(row: dict, tool: str) -> str:
    if tool not in row:
        return "- | -"
    sec, peak = row[tool]
    return f"{sec:.2f} s | {peak / 2**20:,.0f} MB ({peak / (row['file_mb'] * 1e6):.2f}x)"


HEADER = ("| model | MB | work | tflopt | peak (x file) | ai-edge-quantizer | peak (x file) | cp | peak |\n"
          "|---|---|---|---|---|---|---|---|---|")


def format_row(row: dict) -> str:
    return (f"| {row['model']} | {row['file_mb']:,.0f} | {row['work']} | {_cell(row, 'tflopt')} | "
            f"{_cell(row, 'ai-edge-quantizer')} | {_cell(row, 'cp')} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", default="10,100,500,2400", help="model sizes in MB (comma-separated)")
    ap.add_argument("--works", default="roundtrip,float16,dynamic,size")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (median time, max peak)")
    ap.add_argument("--resnet", action="store_true", help="also full int8 of ResNet50 (calibration sizes: --samples)")
    ap.add_argument("--samples", default="8,32,128", help="calibration set sizes for --resnet")
    ap.add_argument("--sizes", action="store_true", help="prune / cluster with their gzip / zstd figures")
    ap.add_argument("--tflopt-python", help="python of another environment with tflopt installed (before / after)")
    ap.add_argument("--build-only", action="store_true", help="build (cache) the models and stop")
    args = ap.parse_args(argv)
    if args.tflopt_python:
        TFLOPT_PYTHON[:] = [args.tflopt_python]
    mbs = [int(x) for x in args.mb.split(",") if x]
    if args.build_only:
        for mb in mbs:
            print(build_mlp(mb))
        return
    print(f"tflopt: {TFLOPT_PYTHON[0]}; ai-edge-quantizer: {AEQ_PYTHON if Path(AEQ_PYTHON).exists() else 'not found'}")
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        run([w for w in args.works.split(",") if w], mbs, args.repeat, Path(tmp), args.sizes)
        if args.resnet:
            run_resnet([int(n) for n in args.samples.split(",")], args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
