"""Seeded mutation fuzzer: corrupt real models and run every tflopt command on them.

Each mutant is one seed model (fixtures/models/*.tflite, and with --corpus-share > 0 the
mediapipe corpus) with one mutation, chosen from the mutant's number and --seed alone, so any
mutant can be rebuilt from its number:
  truncate        cut the file short
  bitflip         flip 1-8 bits in the table region (bytes outside buffer data)
  hostile_word    overwrite 1-4 aligned 32-bit words there with 0, 1, -1, 2^31, the file size...
  inflate_vector  raise a vector's or string's length (by one, doubled, to just fit, past the end)
  vector_element  set one element of an int32 vector (tensor / op indices, shapes) to another value
  zero_chunk      zero 1-64 bytes of the table region
  dup_chunk       copy 4-128 bytes of the table region over another place in it
Every mutant goes through inspect, size, optimize (empty pipeline) and audit, and one in ten
also through optimize with quantize(mode=float16) and with prune(sparsity=0.5). Each call runs
in a forked child (the parent has imported everything once) with a wall-clock timeout and
RLIMIT_AS. Counted: crashes (a traceback, a signal, an exit code not 0/1/2), hangs, calls
refused for memory, error lines over 500 characters or over one line, peak RSS per call, and,
for every model written with exit 0, whether the interpreter gets as far on it (load, allocate,
invoke) as on its input. Also counted: how often tflopt's flatbuffer verifier and the
runtime's own (the interpreter's constructor) disagree on a mutant.

    python benchmarks/fuzz.py --count 2000 --start 0 [--corpus-share 0.15] [--json out.json]
    python benchmarks/fuzz.py --merge chunk1.json chunk2.json ...
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS threads in a process that forks
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MUTATIONS = ("truncate", "bitflip", "hostile_word", "inflate_vector", "vector_element", "zero_chunk", "dup_chunk")
COMMANDS = {
    "inspect": ["inspect", "{m}", "--ops"],
    "size": ["size", "{m}", "--zstd-level", "1"],  # level 19 only costs time: the reader is under test
    "optimize": ["optimize", "{m}", "-o", "{o}"],
    "audit": ["audit", "{m}"],
    "float16": ["optimize", "{m}", "-o", "{o}", "-p", "quantize(mode=float16)"],
    "prune": ["optimize", "{m}", "-o", "{o}", "-p", "prune(sparsity=0.5)"],
}
EVERY_MUTANT = ("inspect", "size", "optimize", "audit")
ONE_IN_TEN = ("float16", "prune")
STAGES = ("load", "allocate", "invoke")
LINE_LIMIT = 500


# -- seeds and mutations ------------------------------------------------------------------------
@dataclass
class Seed:
    path: Path
    data: bytes
    table: list[int]                                   # byte offsets outside buffer data
    vectors: list[tuple[int, int, int]]                # (position, length, element width)


def load_seed(path: Path) -> Seed:
    from tflopt.fbverify import verify
    from tflopt.io import load
    data = path.read_bytes()
    model = load(data, name=str(path))
    inside = bytearray(len(data))
    for b in model.buffers:
        span = b.source_span()
        if span:
            inside[span[0]:span[0] + span[1]] = b"\1" * span[1]
    table = [i for i in range(len(data)) if not inside[i]]
    vectors: list = []
    verify(data, collect=vectors)
    return Seed(path, data, table, vectors)


def seeds(corpus: bool) -> tuple[list[Path], list[Path]]:
    fixtures = sorted((ROOT / "fixtures" / "models").glob("*.tflite"))
    mp = sorted((Path.home() / ".cache" / "tflopt" / "mediapipe").glob("*.tflite")) if corpus else []
    return fixtures, mp


def _hostile(rng: random.Random, n: int) -> int:
    return rng.choice([0, 1, 2, 3, 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, n, n - 4, n + 4,
                       0x10000, 0xFFFF, rng.randrange(0, 64), rng.randrange(0, n), rng.getrandbits(32)])


def mutate(seed: Seed, rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(seed.data)
    n = len(data)
    kind = rng.choice(MUTATIONS)
    table = seed.table
    if kind == "truncate":
        cut = rng.randrange(0, n) if rng.random() < 0.3 else rng.choice(table)
        return kind, bytes(data[:max(cut, 1)])
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            i = rng.choice(table)
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "hostile_word":
        for _ in range(rng.randint(1, 4)):
            i = rng.choice(table) & ~3
            data[i:i + 4] = _hostile(rng, n).to_bytes(4, "little")
    elif kind == "inflate_vector":
        pos, length, width = rng.choice(seed.vectors)
        fits = (n - pos - 4) // max(width, 1)
        new = rng.choice([length + 1, length + rng.randint(2, 16), 2 * length + 1, fits, fits + 1,
                          0x3FFFFFFF, 0xFFFFFFFF, max(length - 1, 0)])
        data[pos:pos + 4] = (new & 0xFFFFFFFF).to_bytes(4, "little")
    elif kind == "vector_element":
        ints = [v for v in seed.vectors if v[2] == 4 and v[1] > 0]
        pos, length, _ = rng.choice(ints or seed.vectors)
        i = pos + 4 + 4 * rng.randrange(max(length, 1))
        old = int.from_bytes(data[i:i + 4], "little", signed=True)
        new = rng.choice([-2, -1, 0, 1, old + 1, old - 1, rng.randrange(0, 256), length, 0x7FFFFFFF, -0x80000000])
        data[i:i + 4] = (new & 0xFFFFFFFF).to_bytes(4, "little")
    elif kind == "zero_chunk":
        i = rng.choice(table)
        data[i:i + rng.randint(1, 64)] = bytes(len(data[i:i + rng.randint(1, 64)]))
    else:  # dup_chunk
        span = rng.randint(4, 128)
        src, dst = rng.choice(table), rng.choice(table)
        chunk = bytes(data[src:src + span])
        data[dst:dst + len(chunk)] = chunk
        del data[n:]
    return kind, bytes(data)


# -- running calls in forked children -----------------------------------------------------------
def preload() -> None:
    """Import everything the commands use, once, so each forked call starts at once."""
    import zstandard  # noqa: F401
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401

    import tflopt.audit.cli  # noqa: F401
    import tflopt.cli  # noqa: F401
    import tflopt.commands  # noqa: F401
    import tflopt.size  # noqa: F401
    from tflopt.audit import engine  # noqa: F401
    from tflopt.pipeline import _load_builtin_passes
    _load_builtin_passes()
    try:
        from tflopt.audit.engine import load_rules
        load_rules()
    except Exception:
        pass


@dataclass
class Call:
    rc: int | None = None      # exit code, None if killed by a signal
    signal: str | None = None
    hang: bool = False
    seconds: float = 0.0
    maxrss: int = 0            # bytes
    stderr: str = ""


def _forked(fn, timeout: float, mem_limit: int, err_path: str) -> Call:
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        rc = 70
        try:
            import faulthandler
            faulthandler.disable()  # a runtime abort is the result here, not something to dump
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
            devnull = os.open(os.devnull, os.O_WRONLY)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(devnull, 1)
            os.dup2(err, 2)
            rc = fn()
        except BaseException:
            traceback.print_exc()
            rc = 70
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                pass
            os._exit(rc if isinstance(rc, int) else 70)
    call = Call()
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            call.hang = True
        _, status, usage = os.wait4(pid, 0)
    finally:
        os.close(fd)
    call.seconds = time.perf_counter() - t0
    call.maxrss = usage.ru_maxrss * 1024
    if os.WIFSIGNALED(status):
        call.signal = signal.Signals(os.WTERMSIG(status)).name
    else:
        call.rc = os.WEXITSTATUS(status)
    try:
        call.stderr = Path(err_path).read_text(errors="replace")
    except OSError:
        pass
    return call


def run_cli(argv: list[str], timeout: float, mem_limit: int, err_path: str) -> Call:
    def body():
        from tflopt.cli import main
        return main(argv)
    return _forked(body, timeout, mem_limit, err_path)


class _Hang(BaseException):
    pass


def run_inprocess(argv: list[str], timeout: float) -> Call:
    """The same call in this process (the test suite's short run: no fork per call). A
    crash is an exception escaping main(); a hang is main() still running after ``timeout``
    (SIGALRM). No memory limit here: the forked runs measure memory."""
    import contextlib
    import io

    from tflopt.cli import main

    def alarm(signum, frame):
        raise _Hang()
    call = Call()
    err = io.StringIO()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                call.rc = main(argv)
            except _Hang:
                call.hang = True
            except BaseException:
                traceback.print_exc()
                call.rc = 70
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    call.seconds = time.perf_counter() - t0
    call.stderr = err.getvalue()
    return call


def probe(path: str, timeout: float, mem_limit: int, err_path: str, stage_limit: int = 3) -> tuple[int, str]:
    """How far the interpreter gets on a file: 0 fails to load, 1 loads, 2 allocates, 3 runs;
    -1 if it dies (signal) or hangs; and what it said when it failed to load."""
    def body():
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        from tflopt.runtime import random_inputs
        try:
            interp = Interpreter(model_path=path, num_threads=1)
        except Exception as e:
            print(" ".join(str(e).split()), file=sys.stderr)
            return 10
        if stage_limit < 2:
            return 11
        try:
            interp.allocate_tensors()
        except Exception:
            return 11
        try:
            for d, x in zip(interp.get_input_details(), random_inputs(interp, seed=0)):
                interp.set_tensor(d["index"], np.asarray(x, d["dtype"]))
            interp.invoke()
        except Exception:
            return 12
        return 13
    call = _forked(body, timeout, mem_limit, err_path)
    if call.rc is None or call.hang or not 10 <= call.rc <= 13:
        return -1, call.stderr
    return call.rc - 10, call.stderr


# -- the run ------------------------------------------------------------------------------------
@dataclass
class Stats:
    calls: int = 0
    exit0: int = 0
    exit1: int = 0
    exit2: int = 0
    crashes: int = 0
    hangs: int = 0
    memory: int = 0
    long_lines: int = 0
    max_rss: int = 0
    max_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class Report:
    mutants: int = 0
    by_command: dict = field(default_factory=dict)
    by_mutation: dict = field(default_factory=dict)
    crashes: list = field(default_factory=list)
    written: int = 0
    outputs_checked: int = 0
    unloadable: list = field(default_factory=list)
    long_lines: list = field(default_factory=list)
    verifier_refused: int = 0
    verifier_stricter: int = 0      # tflopt's verifier refuses, the runtime loads it
    verifier_laxer: int = 0         # tflopt's verifier passes, the runtime's verifier refuses
    runtime_refused_accepted: int = 0  # tflopt's load accepts, the interpreter cannot build it
    seconds: float = 0.0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["by_command"] = {k: dict(v.__dict__) for k, v in self.by_command.items()}
        return d


def _classify(call: Call) -> str | None:
    if call.hang:
        return "hang"
    if call.signal:
        return f"signal {call.signal}"
    if call.rc not in (0, 1, 2):
        return f"exit {call.rc}"
    if "Traceback (most recent call last)" in call.stderr:
        return "traceback"
    return None


def fuzz(count: int, start: int = 0, seed: int = 0, corpus_share: float = 0.0, timeout: float = 60.0,
         mem_limit: int = 1 << 30, workdir: str | None = None, save_dir: str | None = None,
         compare_verifier: bool = True, progress: bool = False, inprocess: bool = False,
         seed_paths: list[Path] | None = None, numbers: list[int] | None = None) -> Report:
    from tflopt.fbverify import FlatbufferError, verify
    preload()
    fixtures, mp = seeds(corpus_share > 0)
    if seed_paths is not None:
        fixtures, mp = list(seed_paths), []
    cache: dict[Path, Seed] = {}
    rep = Report()
    t_start = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="tflopt-fuzz-", dir=workdir)
    wd = Path(tmp.name)
    mutant_path, out_path, err_path = str(wd / "mutant.tflite"), str(wd / "out.tflite"), str(wd / "stderr.txt")
    try:
        for k in (numbers if numbers is not None else range(start, start + count)):
            if _stop:
                break
            rng = random.Random(seed * 1_000_003 + k)
            pool = mp if mp and rng.random() < corpus_share else fixtures
            spath = rng.choice(pool)
            if spath not in cache:
                cache[spath] = load_seed(spath)
            kind, data = mutate(cache[spath], rng)
            Path(mutant_path).write_bytes(data)
            rep.mutants += 1
            rep.by_mutation[kind] = rep.by_mutation.get(kind, 0) + 1
            commands = EVERY_MUTANT + (ONE_IN_TEN if k % 10 == 0 else ())
            input_reach = None
            tflopt_loaded = False
            for name in commands:
                argv = [a.format(m=mutant_path, o=out_path) for a in COMMANDS[name]]
                if os.path.exists(out_path):
                    os.unlink(out_path)
                call = run_inprocess(argv, timeout) if inprocess else run_cli(argv, timeout, mem_limit, err_path)
                st = rep.by_command.setdefault(name, Stats())
                st.calls += 1
                st.seconds += call.seconds
                st.max_seconds = max(st.max_seconds, call.seconds)
                st.max_rss = max(st.max_rss, call.maxrss)
                if call.rc in (0, 1, 2):
                    setattr(st, f"exit{call.rc}", getattr(st, f"exit{call.rc}") + 1)
                err_lines = [ln for ln in call.stderr.splitlines() if ln.strip()]
                if call.rc == 2 and "out of memory" in call.stderr:
                    st.memory += 1
                if call.rc == 2 and (len(err_lines) != 1 or any(len(ln) > LINE_LIMIT for ln in err_lines)):
                    st.long_lines += 1
                    rep.long_lines.append({"mutant": k, "seed": spath.name, "mutation": kind, "command": name,
                                           "lines": len(err_lines), "first": (err_lines or [""])[0][:200]})
                tflopt_loaded |= name == "inspect" and call.rc == 0
                problem = _classify(call)
                if problem:
                    if problem == "hang":
                        st.hangs += 1
                    else:
                        st.crashes += 1
                    tail = (err_lines or [""])[-1][:300]
                    rep.crashes.append({"mutant": k, "seed": spath.name, "mutation": kind, "command": name,
                                        "problem": problem, "stderr": tail})
                    if save_dir:
                        Path(save_dir).mkdir(parents=True, exist_ok=True)
                        Path(save_dir, f"mutant{k}_{name}.tflite").write_bytes(data)
                if call.rc == 0 and name in ("optimize", "float16", "prune") and os.path.exists(out_path):
                    rep.written += 1
                    if input_reach is None:
                        input_reach = probe(mutant_path, timeout, mem_limit, err_path)[0]
                    if input_reach > 0:
                        rep.outputs_checked += 1
                        out_reach = probe(out_path, timeout, mem_limit, err_path)[0]
                        if out_reach < input_reach:
                            rep.unloadable.append({"mutant": k, "seed": spath.name, "mutation": kind,
                                                   "command": name, "input": input_reach, "output": out_reach})
                            if save_dir:
                                Path(save_dir).mkdir(parents=True, exist_ok=True)
                                Path(save_dir, f"mutant{k}_{name}_unloadable.tflite").write_bytes(data)
            if compare_verifier:
                try:
                    verify(data)
                    ours = True
                except FlatbufferError:
                    ours = False
                    rep.verifier_refused += 1
                reach, said = probe(mutant_path, timeout, mem_limit, err_path, stage_limit=1)
                # The interpreter's constructor runs the flatbuffer verifier, then builds the
                # graph; only the verifier's own refusal counts as a disagreement.
                theirs = reach >= 1 or (reach == 0 and "flatbuffer" not in said.lower())
                rep.verifier_stricter += (not ours and theirs)
                rep.verifier_laxer += (ours and not theirs)
                rep.runtime_refused_accepted += (reach < 1 and tflopt_loaded)
            if progress and (k - start + 1) % 100 == 0:
                print(f"  {k - start + 1}/{count} mutants, {len(rep.crashes)} crashes, "
                      f"{time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)
    finally:
        tmp.cleanup()
    rep.seconds = time.perf_counter() - t_start
    return rep


_stop = False


def _request_stop(signum, frame):
    """SIGTERM ends a long run after the current mutant, with the figures so far."""
    global _stop
    _stop = True


def merge(reports: list[dict]) -> dict:
    out = {"mutants": 0, "by_command": {}, "by_mutation": {}, "crashes": [], "written": 0, "outputs_checked": 0,
           "unloadable": [], "long_lines": [], "verifier_refused": 0, "verifier_stricter": 0, "verifier_laxer": 0,
           "runtime_refused_accepted": 0, "seconds": 0.0}
    for r in reports:
        for key in ("mutants", "written", "outputs_checked", "verifier_refused", "verifier_stricter",
                    "verifier_laxer", "runtime_refused_accepted", "seconds"):
            out[key] += r[key]
        out["crashes"] += r["crashes"]
        out["unloadable"] += r["unloadable"]
        out["long_lines"] += r.get("long_lines", [])
        for k, v in r["by_mutation"].items():
            out["by_mutation"][k] = out["by_mutation"].get(k, 0) + v
        for name, st in r["by_command"].items():
            acc = out["by_command"].setdefault(name, dict(Stats().__dict__))
            for k, v in st.items():
                acc[k] = max(acc[k], v) if k.startswith("max_") else acc[k] + v
    return out


def print_table(r: dict) -> None:
    print(f"{r['mutants']:,} mutants in {r['seconds']:.0f} s; mutations: "
          + ", ".join(f"{k} {v}" for k, v in sorted(r["by_mutation"].items())))
    head = f"{'command':10} {'calls':>7} {'exit0':>7} {'exit1':>6} {'exit2':>7} {'crash':>6} {'hang':>5} " \
           f"{'oom':>5} {'>1line':>6} {'maxRSS MB':>10} {'max s':>7} {'mean ms':>8}"
    print(head)
    print("-" * len(head))
    total = Stats().__dict__
    for name in list(EVERY_MUTANT) + list(ONE_IN_TEN):
        st = r["by_command"].get(name)
        if not st:
            continue
        print(f"{name:10} {st['calls']:>7,} {st['exit0']:>7,} {st['exit1']:>6,} {st['exit2']:>7,} {st['crashes']:>6} "
              f"{st['hangs']:>5} {st['memory']:>5} {st['long_lines']:>6} {st['max_rss'] / 2**20:>10.0f} "
              f"{st['max_seconds']:>7.2f} {1000 * st['seconds'] / max(st['calls'], 1):>8.0f}")
        for k, v in st.items():
            total[k] = max(total[k], v) if k.startswith("max_") else total[k] + v
    print(f"{'all':10} {total['calls']:>7,} {total['exit0']:>7,} {total['exit1']:>6,} {total['exit2']:>7,} "
          f"{total['crashes']:>6} {total['hangs']:>5} {total['memory']:>5} {total['long_lines']:>6} "
          f"{total['max_rss'] / 2**20:>10.0f} {total['max_seconds']:>7.2f}")
    print(f"models written with exit 0: {r['written']:,}; checked in the interpreter (input loads): "
          f"{r['outputs_checked']:,}; output gets less far than its input: {len(r['unloadable'])}")
    print(f"flatbuffer verifier: refused {r['verifier_refused']:,} mutants; refused but the runtime loads: "
          f"{r['verifier_stricter']}; passed but the runtime's verifier refuses: {r['verifier_laxer']}; "
          f"tflopt reads but the interpreter cannot build: {r['runtime_refused_accepted']}")
    for c in r["crashes"][:20]:
        print(f"  CRASH mutant {c['mutant']} ({c['seed']}, {c['mutation']}) {c['command']}: {c['problem']}: {c['stderr']}")
    for u in r.get("long_lines", [])[:20]:
        print(f"  ERROR NOT ONE LINE mutant {u['mutant']} ({u['seed']}, {u['mutation']}) {u['command']}: "
              f"{u['lines']} lines: {u['first']}")
    for u in r["unloadable"][:20]:
        print(f"  UNLOADABLE mutant {u['mutant']} ({u['seed']}, {u['mutation']}) {u['command']}: "
              f"input reaches {u['input']}, output {u['output']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--start", type=int, default=0, help="first mutant number (run a long fuzz in chunks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus-share", type=float, default=0.15,
                    help="share of mutants made from the mediapipe corpus (0: fixtures only)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per call before it counts as a hang")
    ap.add_argument("--mem-mb", type=int, default=1024, help="RLIMIT_AS of each call")
    ap.add_argument("--no-verifier-compare", action="store_true")
    ap.add_argument("--save", default=None, help="folder for mutants that crash or write unloadable models")
    ap.add_argument("--mutants", default=None, help="only these mutant numbers (comma-separated): rerun findings")
    ap.add_argument("--json", default=None, help="write the figures here (for --merge)")
    ap.add_argument("--merge", nargs="+", default=None, help="print the table of several --json chunks")
    args = ap.parse_args(argv)
    if args.merge:
        print_table(merge([json.loads(Path(p).read_text()) for p in args.merge]))
        return 0
    signal.signal(signal.SIGTERM, _request_stop)
    rep = fuzz(args.count, args.start, args.seed, args.corpus_share, args.timeout, args.mem_mb << 20,
               save_dir=args.save, compare_verifier=not args.no_verifier_compare, progress=True,
               numbers=[int(x) for x in args.mutants.split(",")] if args.mutants else None)
    d = rep.as_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(d, indent=1))
    print_table(d)
    return 1 if rep.crashes or rep.unloadable else 0


if __name__ == "__main__":
    sys.exit(main())
