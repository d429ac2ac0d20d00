"""``optimize --check``: run what tflopt wrote in the interpreter before reporting success.

The flatbuffer verifier (tflopt/fbverify.py) runs on every write; ``--check`` goes further and
loads the file in a child process (a runtime abort, SIGABRT or SIGSEGV, must not take tflopt
with it), allocates its tensors and invokes it once on random data. If the written file fails
while the input gets further, nothing is written and the command fails with one line. An input
the stock interpreter cannot run either (custom ops it does not know) passes when the output
gets as far as the input does.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from .errors import WriteCheckError, quote

STAGES = ("load", "allocate", "invoke")
TIMEOUT = 600  # seconds for one child: a large model's first invoke on a slow machine


def probe(path, input_shapes=None) -> dict:
    """Run ``path`` in a child interpreter: {"ok": bool, "stage": the stage reached or failed
    at, "error": one line or None}. Never raises for what the model does to the runtime.
    ``input_shapes`` (as ``optimize --input-shape`` gives them) sizes dynamic inputs before
    allocation, as every other run of the model does: a placeholder shape may not prepare."""
    cmd = [sys.executable, "-m", "tflopt.check", str(path), json.dumps(input_shapes or {})]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "invoke", "error": f"no result within {TIMEOUT} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        stage = json.loads(lines[-1])["stage"] if lines else "load"
        return {"ok": False, "stage": stage, "error": f"the interpreter died with {name}"}
    tail = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
    return {"ok": False, "stage": "load", "error": quote(tail, 200)}


def _reached(result: dict) -> int:
    """How far a probe got: the index of the stage it failed at, or len(STAGES) if it ran."""
    return len(STAGES) if result["ok"] else STAGES.index(result["stage"])


def interpreter_check(input_path, output_name, input_shapes=None):
    """A ``check(temp_path)`` for ``io.save``: the written file must get as far in the
    interpreter as the input does. Returns the callable and a list it appends notes to."""
    notes: list[str] = []

    def check(tmp):
        out = probe(tmp, input_shapes)
        if out["ok"]:
            notes.append("check: the output loads, allocates and runs in the interpreter")
            return
        inp = probe(input_path, input_shapes) if input_path is not None else {"ok": True, "stage": "invoke"}
        if _reached(out) >= _reached(inp):
            notes.append(f"check: the output fails at {out['stage']} as the input does ({out['error']})")
            return
        raise WriteCheckError(f"{output_name}: not written: --check: the interpreter fails at "
                              f"{out['stage']} on the output ({out['error']}) but "
                              + ("runs the input" if inp["ok"] else f"gets to {inp['stage']} on the input"))
    return check, notes


def save_checked(model, path, *, layout: str = "auto", input_path=None, input_shapes=None) -> list[str]:
    """Write ``model`` to ``path`` atomically only if the interpreter runs it (see module
    doc); returns the check's notes for the report."""
    from .io import save
    check, notes = interpreter_check(input_path, path, input_shapes)
    save(model, path, layout=layout, check=check)
    return notes


def _child(path: str, shapes: dict) -> int:
    """The child side of ``probe``: print one JSON line per stage reached."""
    import numpy as np

    from .runtime import random_inputs
    stage = "load"
    try:
        from ai_edge_litert.interpreter import Interpreter
        print(json.dumps({"ok": False, "stage": stage, "error": None}), flush=True)
        interp = Interpreter(model_path=path, num_threads=1)
        stage = "allocate"
        for d in interp.get_input_details():
            if d["name"] in shapes and list(shapes[d["name"]]) != list(d["shape"]):
                interp.resize_tensor_input(d["index"], [int(x) for x in shapes[d["name"]]])
        print(json.dumps({"ok": False, "stage": stage, "error": None}), flush=True)
        interp.allocate_tensors()
        stage = "invoke"
        print(json.dumps({"ok": False, "stage": stage, "error": None}), flush=True)
        for d, x in zip(interp.get_input_details(), random_inputs(interp, seed=0)):
            interp.set_tensor(d["index"], np.asarray(x, d["dtype"]))
        interp.invoke()
    except Exception as e:  # the runtime's errors are RuntimeError / ValueError with its text
        msg = " ".join(str(e).split()) or type(e).__name__
        print(json.dumps({"ok": False, "stage": stage, "error": quote(msg, 200)}), flush=True)
        return 0
    print(json.dumps({"ok": True, "stage": stage, "error": None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
