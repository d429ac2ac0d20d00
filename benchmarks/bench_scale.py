"""Speed and memory at scale: tflopt against ai-edge-quantizer on float32 MLPs of 10 MB,
100 MB, 500 MB and >2 GB (the last converted by TensorFlow in the external-buffer layout,
``Buffer.offset`` / ``size``), each work run as a whole child process; the table gives wall
time and peak resident memory (``ru_maxrss`` of the child, imports included).

Works: the round trip (``optimize`` with no passes), float16, dynamic int8, and
``tflopt size``; with ``--resnet``, full int8 of ResNet50 with 8 / 32 / 128 calibration samples.

The models are built once with TensorFlow (``--tf-python``, default /work/tfvenv/bin/python or
``$TFLOPT_TF_PYTHON``) and cached under ~/.cache/tflopt/bench/. ai-edge-quantizer runs from its
own environment (``--aeq-python``, default /work/aeq-venv/bin/python: ``python3 -m venv
/work/aeq-venv && /work/aeq-venv/bin/pip install ai-edge-quantizer``); without it its column
shows "-". The >2 GB cases run one at a time (they need a few GB each).

    python benchmarks/bench_scale.py [--mb 10,100,500,2400] [--works roundtrip,float16,dynamic,size]
        [--repeat 1] [--resnet]
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


if __name__ == "__main__" and sys.argv[1:2] == ["--build-only"]:
    for mb in sys.argv[2].split(","):
        print(build_mlp(int(mb)))
    sys.exit(0)
