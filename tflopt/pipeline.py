"""Passes, their registry, the textual pipeline and the pass manager that runs and verifies.

A pass is a small class: a name, a dataclass of typed options, and ``run(model, ctx)``
returning a ``PassResult`` (did it change the model, and its statistics). The manager runs a
list of passes, verifies the model after each, and records time and size per pass.
"""
from __future__ import annotations

import dataclasses
import re
import time
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from .errors import PipelineError, VerificationError
from .model import Model
from .verify import verify_model


@dataclass
class PassResult:
    changed: bool
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class PassContext:
    """What passes may need beyond the model: calibration samples, a seed, a progress hook."""

    calibration: Any = None  # a tflopt.calibration.CalibrationData, or None
    seed: int = 0
    progress: Callable[[str], None] | None = None
    # What earlier passes established, for later passes to preserve (e.g. pruned masks).
    facts: dict[str, Any] = field(default_factory=dict)
    # Settings of the calibrated methods (a tflopt.recovery.RecoveryConfig); None: defaults.
    recovery: Any = None
    # {input name: shape} for dynamic inputs where no data says it (--input-shape).
    input_shapes: dict = field(default_factory=dict)


@dataclass
class NoOptions:
    pass


class Pass:
    """Base class. Subclasses set ``name``, ``Options`` (a dataclass) and implement ``run``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, **options):
        self.options = build_options(self.name, self.Options, options)
        self._given = tuple(options)

    def run(self, model: Model, ctx: PassContext) -> PassResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def spec(self) -> str:
        """The pipeline text that recreates this pass: the options given, and any other option
        that differs from its default."""
        parts = []
        for f in dataclasses.fields(self.options):
            value = getattr(self.options, f.name)
            if f.name in self._given or value != option_default(f):
                parts.append(f"{f.name}={_format_value(value)}")
        return f"{self.name}({','.join(parts)})" if parts else self.name


REGISTRY: dict[str, type[Pass]] = {}


def register(cls: type[Pass]) -> type[Pass]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    REGISTRY[cls.name] = cls
    return cls


def _load_builtin_passes() -> None:
    import tflopt.passes  # noqa: F401  (modules register themselves on import)


def get_pass(name: str) -> type[Pass]:
    _load_builtin_passes()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise PipelineError(f"unknown pass {name!r}{did_you_mean(name, REGISTRY)} (known passes: {known})") from None


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'X'?)' for the closest choice, or ''."""
    import difflib
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(str(word).upper().replace("-", "_"), [str(c) for c in choices], n=1,
                                          cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


# Options that name operator types: checked against the schema's BuiltinOperator names, so a
# typo (ops=CONV2D) is an error, not a selection that matches nothing.
OP_LIST_OPTIONS = ("ops", "skip_ops")


def check_op_names(pass_name: str, key: str, names) -> None:
    from .schema import OP_NAMES
    known = set(OP_NAMES.values())
    for n in names or ():
        if n not in known and not str(n).startswith("CUSTOM"):
            raise PipelineError(f"{pass_name}: option {key!r}: no operator {n!r} in the TFLite schema"
                                f"{did_you_mean(n, sorted(known))}")


# -- options ---------------------------------------------------------------------------------
def searchable(default, values, *, monotone: bool = False):
    """An option field ``tflopt search`` explores: ``values`` are its default search space
    (``tflopt passes`` lists them). ``monotone`` says the values run from mild to strong
    compression, so once one breaks a quality goal the stronger ones are not tried."""
    return field(default=default, metadata={"search": list(values), "monotone": monotone})


def search_space_of(options_cls: type) -> dict[str, dict[str, Any]]:
    """{option: {"values": [...], "monotone": bool}} for the fields declared ``searchable``."""
    return {f.name: {"values": list(f.metadata["search"]), "monotone": bool(f.metadata.get("monotone"))}
            for f in dataclasses.fields(options_cls) if "search" in f.metadata}


def option_default(f: dataclasses.Field):
    """An options dataclass field's default (MISSING when it has none)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _format_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "|".join(_format_value(x) for x in v)
    s = str(v)
    return f"'{s}'" if re.search(r"[,()=\s'\"|]", s) else s


def _convert(pass_name: str, key: str, raw: Any, hint) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            if type(None) in args:
                return None
        last_err = None
        for a in non_none:
            try:
                return _convert(pass_name, key, raw, a)
            except PipelineError as e:
                last_err = e
        raise last_err or PipelineError(f"{pass_name}: bad value {raw!r} for option {key!r}")
    if origin in (list, tuple):
        item = args[0] if args else str
        items = raw if isinstance(raw, (list, tuple)) else [x for x in str(raw).split("|") if x != ""]
        return [_convert(pass_name, key, x, item) for x in items]
    if origin is typing.Literal:
        if raw in args:
            return raw
        raise PipelineError(f"{pass_name}: option {key!r} must be one of {', '.join(map(str, args))}, not {raw!r}")
    try:
        if hint is bool:
            if isinstance(raw, bool):
                return raw
            s = str(raw).lower()
            if s in ("true", "1", "yes", "on"):
                return True
            if s in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw) if not isinstance(raw, str) else int(raw, 0)
        if hint is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if hint is str:
            return str(raw)
    except (TypeError, ValueError):
        name = getattr(hint, "__name__", str(hint))
        raise PipelineError(f"{pass_name}: option {key!r} wants {name}, got {raw!r}") from None
    return raw


def build_options(pass_name: str, options_cls: type, given: dict[str, Any]):
    hints = typing.get_type_hints(options_cls)
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    values = {}
    for key, raw in given.items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise PipelineError(f"{pass_name}: unknown option {key!r}{did_you_mean(key, fields)} (options: {known})")
        values[key] = _convert(pass_name, key, raw, hints[key])
        if key in OP_LIST_OPTIONS:
            check_op_names(pass_name, key, values[key])
    try:
        opts = options_cls(**values)
    except TypeError as e:
        raise PipelineError(f"{pass_name}: {e}") from None
    check = getattr(opts, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as e:
            raise PipelineError(f"{pass_name}: {e}") from None
    return opts


# -- pipeline text ---------------------------------------------------------------------------
_TOKEN = re.compile(r"""\s*(?:(?P<q>'[^']*'|"[^"]*")|(?P<p>[(),=])|(?P<w>[^\s(),='"]+))""")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise PipelineError(f"pipeline: cannot read {text[pos:]!r}")
        pos = m.end()
        if m.group("q"):
            out.append(("word", m.group("q")[1:-1]))
        elif m.group("p"):
            out.append(("punct", m.group("p")))
        elif m.group("w"):
            out.append(("word", m.group("w")))
    return out


def parse_pipeline(text: str) -> list[Pass]:
    """``prune(sparsity=0.5),cluster(clusters=16)`` -> pass instances, with clear errors."""
    toks = _tokens(text or "")
    passes: list[Pass] = []
    i = 0

    def expect_word(what: str) -> str:
        nonlocal i
        if i >= len(toks) or toks[i][0] != "word":
            got = toks[i][1] if i < len(toks) else "end of text"
            raise PipelineError(f"pipeline: expected {what}, got {got!r}")
        i += 1
        return toks[i - 1][1]

    while i < len(toks):
        name = expect_word("a pass name")
        cls = get_pass(name)
        opts: dict[str, str] = {}
        if i < len(toks) and toks[i] == ("punct", "("):
            i += 1
            while i < len(toks) and toks[i] != ("punct", ")"):
                key = expect_word(f"an option name for {name}")
                if i >= len(toks) or toks[i] != ("punct", "="):
                    raise PipelineError(f"pipeline: option {key!r} of {name} needs '=value'")
                i += 1
                if key in opts:
                    raise PipelineError(f"pipeline: option {key!r} given twice to {name}")
                opts[key] = expect_word(f"a value for {name}.{key}")
                if i < len(toks) and toks[i] == ("punct", ","):
                    i += 1
            if i >= len(toks):
                raise PipelineError(f"pipeline: missing ')' after the options of {name}")
            i += 1
        passes.append(cls(**opts))
        if i < len(toks):
            if toks[i] != ("punct", ","):
                raise PipelineError(f"pipeline: expected ',' between passes, got {toks[i][1]!r}")
            i += 1
            if i == len(toks):
                raise PipelineError("pipeline: trailing ',' with no pass after it")
    return passes


# -- running ---------------------------------------------------------------------------------
@dataclass
class PassRecord:
    name: str
    spec: str
    changed: bool
    seconds: float
    bytes_before: int
    bytes_after: int
    stats: dict[str, Any]
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunReport:
    passes: list[PassRecord] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.passes)

    def as_dict(self) -> dict[str, Any]:
        return {"passes": [p.as_dict() for p in self.passes], "changed": self.changed}


class PassManager:
    def __init__(self, passes: list[Pass], *, verify: bool = True, measure: bool = True):
        self.passes = list(passes)
        self.verify = verify
        self.measure = measure

    def run(self, model: Model, ctx: PassContext | None = None) -> RunReport:
        ctx = ctx or PassContext()
        report = RunReport()
        # Sizes from the tables and buffer sizes: serialising a 2 GB model before and after
        # every pass only to count its bytes would double its time and memory.
        size = model.serialized_size() if self.measure and self.passes else 0
        for p in self.passes:
            t0 = time.perf_counter()
            result = p.run(model, ctx)
            seconds = time.perf_counter() - t0
            if self.verify:
                problems = verify_model(model)
                if problems:
                    raise VerificationError([f"after {p.name}: {x}" for x in problems])
            after = model.serialized_size() if self.measure and result.changed else size
            report.passes.append(PassRecord(p.name, p.spec(), bool(result.changed), seconds, size, after,
                                            dict(result.stats), list(result.warnings)))
            size = after
        return report


def run_pipeline(model: Model, pipeline: str | list[Pass], ctx: PassContext | None = None, **kw) -> RunReport:
    passes = parse_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    return PassManager(passes, **kw).run(model, ctx)
