"""Weight-density plots of chosen kernels through a chain of passes (PNG; matplotlib extra).

Like the collaborative-optimization figure: one row per kernel, one column per stage
(original, pruned, clustered, quantized), each a histogram of the float weight values, so
the zero spike of pruning and the k spikes of clustering are visible and can be seen to
survive quantization.
"""
from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np

from .commands import MODEL_ARG
from .distinct import distinct_count, max_distinct_per_row
from .errors import TfloptError
from .model import Model
from .pipeline import PassContext, run_pipeline
from .weights import find_weights, float_values


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise TfloptError("plotting needs matplotlib: pip install 'tflopt[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    return plt


def stages(model: Model, pipelines: list[str], ctx: PassContext | None = None) -> list[tuple[str, Model]]:
    """[(label, model)] for the original and after each pipeline step, run cumulatively with
    one context, so later steps see earlier facts (pruned masks) as in one pipeline."""
    ctx = ctx or PassContext()
    out = [("original", model.clone())]
    current = model.clone()
    for text in pipelines:
        run_pipeline(current, text, ctx)
        out.append((text, current.clone()))
    return out


def _key(ref) -> tuple[int, str, int, int]:
    # Passes replace weight tensors, and int8 renames graph outputs (X -> X_int8); the
    # consumer's kind, its place among the ops of that kind and the operand stay.
    same = [op for op in ref.subgraph.operators if op.name == ref.op.name]
    return (ref.subgraph.model.subgraphs.index(ref.subgraph), ref.op.name,
            next(i for i, op in enumerate(same) if op is ref.op), ref.position)


def density_plot(staged: list[tuple[str, Model]], path, *, name_regex: str | None = None, max_tensors: int = 3,
                 bins: int = 201) -> Path:
    """Write the PNG; kernels are those matching ``name_regex`` (else the largest ones) in
    the first stage, followed through the later stages by their consumer op."""
    plt = _pyplot()
    first = find_weights(staged[0][1], name_regex=name_regex)
    chosen = sorted(first, key=lambda r: -r.tensor.num_elements)[:max_tensors]
    if not chosen:
        raise TfloptError("no weights to plot" + (f" match {name_regex!r}" if name_regex else ""))
    by_stage = [{_key(r): r for r in find_weights(m)} for _, m in staged]
    fig, axes = plt.subplots(len(chosen), len(staged), figsize=(3.2 * len(staged), 2.4 * len(chosen)),
                             squeeze=False)
    for row, ref in enumerate(chosen):
        lo, hi = float_values(ref.tensor).min(), float_values(ref.tensor).max()
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.linspace(lo - 1, hi + 1, bins + 1)
        for col, ((label, _), refs) in enumerate(zip(staged, by_stage)):
            ax = axes[row][col]
            found = refs.get(_key(ref))
            if found is None:
                ax.text(0.5, 0.5, "not found", ha="center", va="center", transform=ax.transAxes)
            else:
                v = float_values(found.tensor).ravel()
                ax.hist(np.clip(v, edges[0], edges[-1]), bins=edges, color="C0")
                ax.set_yscale("log")
                ax.set_title(f"{_short(label)}\n{_distinct(found)}, {np.mean(v == 0):.0%} zero", fontsize=8)
            if col == 0:
                ax.set_ylabel(_short(ref.name, 28), fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    path = Path(path)
    from .io import atomic_write
    atomic_write(path, lambda f: fig.savefig(f, format=image_format(path), dpi=100))
    plt.close(fig)
    return path


FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def image_format(path) -> str:
    """The file format a suffix asks for: a .pdf gets PDF bytes, not PNG under that name."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise TfloptError(f"{path}: write the plot as {', '.join(FORMATS)}")
    return FORMATS[suffix]


def check_output(output: Path, model: Path) -> None:
    """Before any work: OUT must not be the model, must be an image name, in a folder that exists."""
    if output.exists() and model.exists() and output.resolve() == model.resolve():
        raise TfloptError(f"{output}: is the input model; the plot would overwrite it")
    image_format(output)
    if str(output.parent) and not output.parent.is_dir():
        raise TfloptError(f"{output}: folder {output.parent} does not exist")
    if output.is_dir():
        raise TfloptError(f"{output}: is a directory")


def _distinct(ref) -> str:
    """Distinct values, and the per-channel maximum where channels have their own scales
    (per-tensor clustering then per-channel int8 gives <= k per channel, more per tensor)."""
    v = float_values(ref.tensor)
    text = f"{distinct_count(v)} values"
    q = ref.tensor.quantization
    if q is not None and q.scale.size > 1:
        rows = np.moveaxis(v, q.axis, 0).reshape(v.shape[q.axis], -1)
        text += f" (<= {max_distinct_per_row(rows)}/channel)"
    return text


def _short(text: str, n: int = 36) -> str:
    text = re.sub(r",sizes=false", "", text)
    return text if len(text) <= n else "..." + text[-(n - 3):]


@click.command("plot")
@MODEL_ARG
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The image to write (atomically): .png, .pdf or .svg.")
@click.option("-p", "--pipeline", required=True,
              help="Passes, one column each, e.g. 'prune(sparsity=0.5),cluster(clusters=16),quantize(mode=int8)'.")
@click.option("--calibration", type=click.Path(path_type=Path), default=None,
              help="Calibration samples for passes that need them (as for optimize).")
@click.option("--tensors", default=None, help="Regex of the kernels to plot (default: the largest).")
@click.option("--max-tensors", type=click.IntRange(1, 12), default=3, show_default=True)
def plot_cmd(model: Path, output: Path, pipeline: str, calibration, tensors, max_tensors: int):
    """Histogram MODEL's largest (or chosen) kernels after each pass of PIPELINE (needs matplotlib)."""
    from .io import load
    from .pipeline import parse_pipeline
    steps = [p.spec() for p in parse_pipeline(pipeline)]   # before any I/O, so a typo fails fast
    check_output(output, model)
    _pyplot()
    m = load(model)
    ctx = PassContext()
    if calibration is not None:
        from .calibration import load_calibration
        ctx.calibration = load_calibration(calibration, m)
    density_plot(stages(m, steps, ctx), output, name_regex=tensors, max_tensors=max_tensors)
    click.echo(f"wrote {output}")
