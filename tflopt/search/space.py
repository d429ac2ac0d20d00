"""The space a search walks: the seed's deployment tree, level by level.

Levels run in the seed's order, prune -> cluster -> quantize (-> sparsify when raw bytes are
minimised: under gzip / zstd pruned zeros already compress, so sparse storage rarely pays).
Each level may be skipped, so the tree holds every single technique and every chain. The
values tried per option come from the passes' own option declarations (``searchable`` in
``tflopt.pipeline``, listed by ``tflopt passes``); ``method=obs`` / ``weights=gptq`` are
the training-free recovery switched on. Chained passes keep what earlier ones achieved
(cluster keeps pruned zeros, quantize keeps both), which is the seed's preserving behaviour.

``--space FILE.json|yaml`` narrows or widens it::

    {"levels": [{"pass": "prune", "options": {"sparsity": [0.5, 0.75, 0.9], "method": ["magnitude"]}},
                {"pass": "cluster", "options": {"clusters": [16, 8], "per_channel": [false, true]}},
                {"pass": "quantize", "options": {"mode": ["int8"]}},
                {"pass": "sparsify", "requires": ["prune"]}]}

Options a level does not name keep the pass's default search values; ``"monotone": [...]``
names options whose values run from mild to strong compression (default: as declared).

The quantize level's "fallback" dimension (``with_mixed_precision``): with a ``min_cosine`` /
``min_snr`` goal, each int8 / int16x8 choice also comes as a mixed-precision point whose target
is that goal (``quantize(mode=int8,target_cosine=0.99)``: the fewest ops kept out of int8 for
the goal to hold, passes/mixed_precision.py); float16 / dynamic have no such point.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PipelineError, TfloptError
from ..pipeline import get_pass, option_default, search_space_of

DEFAULT_LEVELS = ("prune", "cluster", "quantize")


@dataclass(frozen=True)
class Choice:
    """One pass with fixed options: its pipeline text, and where it sits on a monotone axis."""
    spec: str
    group: str   # the spec without the monotone option: choices of one group differ only there
    rank: tuple[int, ...]  # position on each monotone axis (0: mildest)


@dataclass
class Level:
    pass_name: str
    options: dict[str, list] = field(default_factory=dict)
    monotone: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    # Option sets added to every combination as one more choice where the pass takes them
    # (the mixed-precision point: a target, the data it is checked on, the target delegate).
    points: tuple[dict, ...] = ()

    def choices(self) -> list[Choice]:
        """Every valid combination of the level's values, in order; combinations the pass
        refuses (``weights=gptq`` with ``mode=float16``) are left out."""
        cls = get_pass(self.pass_name)
        defaults = {f.name: option_default(f) for f in dataclasses.fields(cls.Options)}
        names = list(self.options)
        out, seen = [], set()
        for combo, point in itertools.product(itertools.product(*(self.options[n] for n in names)),
                                              ({},) + tuple(self.points)):
            given = dict(zip(names, combo)) | point
            try:
                # The first option always shows (quantize(mode=int8)); others only when not default.
                shown = {k: v for i, (k, v) in enumerate(given.items()) if i == 0 or v != defaults[k]}
                p = cls(**shown)
            except PipelineError:
                continue
            if p.spec() in seen:
                continue
            seen.add(p.spec())
            mono = [n for n in names if n in self.monotone]  # a point's options are never monotone
            rank = tuple(self.options[n].index(given[n]) for n in mono)
            rest = cls(**{k: v for k, v in shown.items() if k not in mono})
            out.append(Choice(p.spec(), rest.spec() if mono else p.spec(), rank))
        return out

    def as_dict(self) -> dict:
        return {"pass": self.pass_name, "options": self.options, "monotone": list(self.monotone),
                "requires": list(self.requires), **({"points": list(self.points)} if self.points else {})}


def _level(pass_name: str, options: dict | None = None, monotone=None, requires=()) -> Level:
    declared = search_space_of(get_pass(pass_name).Options)
    opts = {k: list(v["values"]) for k, v in declared.items()}
    for k, v in (options or {}).items():
        opts[k] = list(v) if isinstance(v, (list, tuple)) else [v]
    mono = tuple(k for k, v in declared.items() if v["monotone"]) if monotone is None else tuple(monotone)
    return Level(pass_name, opts, tuple(m for m in mono if m in opts), tuple(requires))


def default_space(objective: str = "gzip_bytes") -> list[Level]:
    levels = [_level(n) for n in DEFAULT_LEVELS]
    if objective == "raw_bytes":
        levels.append(_level("sparsify", requires=("prune",)))
    return levels


def with_mixed_precision(levels: list[Level], goals, *, evaluation: str | None = None,
                         target: str | None = None) -> list[Level]:
    """The quantize levels with the mixed-precision point of the first ``min_cosine`` (else
    ``min_snr``) goal; a level that names a target itself, or no such goal, stays as it is.
    ``evaluation``: the data the point checks its target on (the search's --data);
    ``target="edgetpu"``: its cuts keep the Edge TPU part in one piece."""
    bound = next(((("target_cosine" if g.metric == "min_cosine" else "target_snr"), g.value) for g in goals
                  if g.metric in ("min_cosine", "min_snr") and not g.relative), None)
    if bound is None:
        return levels
    point = {bound[0]: bound[1]} | ({"evaluation": str(evaluation)} if evaluation else {}) | \
        ({"target": target} if target == "edgetpu" else {})
    out = []
    for level in levels:
        if level.pass_name == "quantize" and not {"target_cosine", "target_snr"} & set(level.options):
            level = Level(level.pass_name, level.options, level.monotone, level.requires, level.points + (point,))
        out.append(level)
    return out


def load_space(path: Path) -> list[Level]:
    """Levels from a JSON or YAML file; every mistake is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise TfloptError(f"{path}: no such space file")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise TfloptError(f"{path}: YAML spaces need PyYAML (pip install pyyaml), or write JSON") from None
            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except (ValueError, Exception) as e:  # json / yaml syntax errors
        if isinstance(e, TfloptError):
            raise
        raise TfloptError(f"{path}: cannot read the space: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("levels"), list) or not doc["levels"]:
        raise TfloptError(f"{path}: want {{\"levels\": [{{\"pass\": NAME, \"options\": {{OPTION: [VALUES]}}}}, ...]}}")
    levels = []
    for i, item in enumerate(doc["levels"]):
        if not isinstance(item, dict) or "pass" not in item:
            raise TfloptError(f"{path}: level {i + 1} has no 'pass'")
        opts = item.get("options") or {}
        if not isinstance(opts, dict):
            raise TfloptError(f"{path}: level {i + 1} ({item['pass']}): 'options' must map option names to value lists")
        try:
            level = _level(str(item["pass"]), opts, item.get("monotone"), item.get("requires") or ())
            for k, values in level.options.items():  # each value must be one the pass takes
                for v in values:
                    get_pass(level.pass_name)(**{k: v})
            if not level.choices():
                raise TfloptError(f"no valid combination of {level.options}")
        except PipelineError as e:
            raise TfloptError(f"{path}: level {i + 1}: {e}") from None
        except TfloptError as e:
            raise TfloptError(f"{path}: level {i + 1} ({item['pass']}): {e}") from None
        levels.append(level)
    return levels
