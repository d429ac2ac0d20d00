"""The search of one model, and of a zoo: inputs checked, baseline measured once, the tree
walked through an executor with the cache in front, the chosen model written.
"""
from __future__ import annotations

import glob
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import TfloptError
from .cache import Cache, digest
from .goals import Goal
from .measure import EvalSpec, evaluate
from .space import Level
from .strategy import Budget, Node, choose, objectives, pareto, walk
from .trial import TrialSpec, run_trial


@dataclass
class SearchConfig:
    goals: list[Goal]
    objective: str
    levels: list[Level]
    calibration: str | None = None
    normalize: str = "unit"
    eval: EvalSpec = field(default_factory=EvalSpec)
    cache_dir: Path = Path(".")
    cache_max_bytes: int = 4 << 30
    budget: Budget = field(default_factory=Budget)
    progress: Callable[[str], None] | None = None


def model_paths(spec: str) -> list[Path]:
    """MODEL, a folder of .tflite files, or a glob: the models to search, sorted."""
    p = Path(spec)
    if p.is_dir():
        found = sorted(p.glob("*.tflite"))
        if not found:
            raise TfloptError(f"{p}: folder holds no .tflite model")
        return found
    if p.exists():
        return [p]
    if any(ch in spec for ch in "*?["):
        found = sorted(Path(x) for x in glob.glob(spec) if x.endswith(".tflite"))
        if not found:
            raise TfloptError(f"{spec}: no .tflite model matches")
        return found
    raise TfloptError(f"{spec}: no such model file")


def _file_hash(spec: str | None) -> str:
    """Hash of a data spec's file (``FILE.npz:KEY`` -> FILE) and the spec text itself."""
    if spec is None:
        return "none"
    text = str(spec)
    path = Path(text)
    if not path.exists() and ":" in text:
        path = Path(text.rsplit(":", 1)[0])
    if path.is_dir():  # an image folder: every file's name and bytes
        files = sorted(f for f in path.rglob("*") if f.is_file())
        return digest(text, *(digest(f.relative_to(path), f.read_bytes()) for f in files))
    if not path.is_file():
        raise TfloptError(f"{text}: no such data file or folder")
    return digest(text, path.read_bytes())


def calibration_hash(calib) -> str:
    """Hash of the samples themselves (file, folder or function alike)."""
    if calib is None:
        return "none"
    h = []
    for sample in calib:
        for a in sample:
            a = np.ascontiguousarray(a)
            h.append(digest(a.dtype.str, a.shape, a.tobytes()))
    return digest("calibration", *h)


def search_one(path: Path, cfg: SearchConfig, executor) -> dict:
    from ..io import load
    data = path.read_bytes()
    model = load(data, name=str(path))  # a corrupt file is one line naming it
    calib = None
    if cfg.calibration is not None:
        from ..calibration import load_calibration
        calib = load_calibration(cfg.calibration, model, normalize=cfg.normalize)
    cal_hash = calibration_hash(calib)
    eval_hash = digest(repr(cfg.eval.key()), _file_hash(cfg.eval.data),
                       _file_hash(cfg.eval.labels) if cfg.eval.labels and (":" in cfg.eval.labels or
                                                                         Path(cfg.eval.labels).exists()) else "-")
    model_hash = digest(data)
    cache = Cache(cfg.cache_dir, cfg.cache_max_bytes)
    t0 = time.perf_counter()
    try:
        baseline = evaluate(data, data, cfg.eval)
    except (ValueError, RuntimeError) as e:
        raise TfloptError(f"{path}: cannot measure the input model: {' '.join(str(e).split())[:200]}") from None
    counts = {"trials": 0, "executed": 0, "from_cache": 0, "failed": 0, "passes_run": 0}
    from_cache: set[str] = set()

    def spec_for(passes: tuple[str, ...]) -> TrialSpec:
        return TrialSpec(str(path.resolve()), model_hash, passes, cfg.calibration, cfg.normalize, cal_hash,
                         cfg.eval, eval_hash, str(Path(cfg.cache_dir).resolve()))

    def run_batch(batch: list[tuple[str, ...]]) -> list[dict]:
        specs = [spec_for(p) for p in batch]
        records: list = [cache.get_trial(s.trial_key) for s in specs]
        futures = {i: executor.submit(run_trial, s) for i, s in enumerate(specs) if records[i] is None}
        for i, s in enumerate(specs):
            counts["trials"] += 1
            if i in futures:
                try:
                    records[i] = futures[i].result()
                except Exception as e:  # a worker died (killed, out of memory): this trial failed
                    records[i] = {"pipeline": s.pipeline, "status": "failed", "metrics": {}, "passes_run": 0,
                                  "warnings": [], "error": f"worker lost: {type(e).__name__}: {e}"[:300]}
                counts["executed"] += 1
                counts["passes_run"] += records[i].get("passes_run", 0)
            else:
                counts["from_cache"] += 1
                from_cache.add(s.pipeline)
            counts["failed"] += records[i]["status"] != "ok"
            if cfg.progress:
                cfg.progress(_progress_line(path, counts["trials"], records[i], cfg, i not in futures))
        return records

    root = {"pipeline": "", "status": "ok", "metrics": baseline, "passes_run": 0, "warnings": [], "error": None}
    nodes, info = walk(cfg.levels, cfg.goals, baseline, root, run_batch, cfg.budget)
    metrics = objectives(cfg.objective, cfg.goals, nodes)
    front = pareto(nodes, metrics)
    chosen = choose(nodes, cfg.objective)
    return {
        "model": str(path), "objective": cfg.objective, "goals": [g.text for g in cfg.goals],
        "resolved_goals": {g.text: g.bound(baseline) for g in cfg.goals},
        "baseline": baseline, "space": [lv.as_dict() for lv in cfg.levels],
        "trials": [_trial_json(n, n.pipeline in from_cache) for n in nodes[1:]],
        "counts": {**counts, "skipped_monotone": info["skipped_monotone"]},
        "stopped": info["stopped"], "pareto_metrics": metrics, "pareto": [n.pipeline for n in front],
        "chosen": None if chosen is None else {"pipeline": chosen.pipeline, "metrics": chosen.metrics},
        "seconds": round(time.perf_counter() - t0, 3),
        "_nodes": nodes, "_chosen": chosen, "_spec_for": spec_for, "_cache": cache,
    }


def _trial_json(n: Node, cached: bool) -> dict:
    r = n.record
    return {"pipeline": n.pipeline, "parent": ",".join(n.parent or ()), "level": n.level, "status": r.get("status"),
            "metrics": n.metrics, "meets_goals": n.meets, "violated": n.violated, "from_cache": cached,
            "passes_run": r.get("passes_run", 0), "seconds": r.get("seconds"), "error": r.get("error"),
            "warnings": len(r.get("warnings") or [])}


def _fmt_metrics(m: dict, cfg: SearchConfig) -> str:
    shown = [cfg.objective] + [g.metric for g in cfg.goals if g.metric != cfg.objective]
    parts = []
    for k in shown:
        v = m.get(k)
        if v is None:
            continue
        parts.append(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v:.4g}")
    return "  ".join(parts)


def _progress_line(path: Path, n: int, rec: dict, cfg: SearchConfig, cached: bool) -> str:
    state = "failed: " + (rec.get("error") or "")[:80] if rec["status"] != "ok" else _fmt_metrics(rec["metrics"], cfg)
    return f"[{path.stem} #{n}{' cache' if cached else ''}] {rec['pipeline']}  {state}"


def write_chosen(result: dict, out: Path) -> dict:
    """The chosen model's bytes (from the cache, rebuilt if evicted), written atomically with
    its pipeline text beside it (OUT.pipeline)."""
    from ..io import atomic_write, load
    chosen: Node = result["_chosen"]
    if chosen.passes:
        spec: TrialSpec = result["_spec_for"](chosen.passes)
        hit = result["_cache"].get_model(spec.model_key())
        if hit is None:
            from .trial import build
            data = build(spec, result["_cache"])[0]
        else:
            data = hit[0]
    else:  # the input itself meets the goals best: what `optimize` with an empty pipeline writes
        data = load(Path(result["model"])).to_bytes()
    atomic_write(out, lambda f: f.write(data))
    side = out.with_name(out.name + ".pipeline")
    atomic_write(side, lambda f: f.write((chosen.pipeline + "\n").encode()))
    return {"output": str(out), "pipeline_file": str(side), "bytes": len(data)}
