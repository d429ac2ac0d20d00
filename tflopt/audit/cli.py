"""``tflopt audit``: per-op delegate compatibility, as a table, Markdown or JSON, and a CI gate."""
from __future__ import annotations

from pathlib import Path

import click

from ..cli import emit_json, fail


@click.command("audit")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-t", "--target", "targets", multiple=True,
              help="edgetpu, hexagon, gpu, xnnpack or all; repeat or give a comma list (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Per target: every op (subgraph, index, op, supported, "
              "on_accelerator, reasons) and a summary.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a Markdown report.")
@click.option("--all-ops", is_flag=True, help="Text table: list accelerated ops too.")
@click.option("--suggest", is_flag=True, help="Try each target's candidate passes on a copy and report the effect.")
@click.option("--observe", is_flag=True, help="Run the installed runtimes (xnnpack; litert-gpu when a Vulkan "
              "adapter is present) and report per op what they took beside the rules' verdict, the disagreements, "
              "GPU-vs-CPU numerics and the float16-overflow check.")
@click.option("--data", type=click.Path(dir_okay=True, path_type=Path), default=None,
              help="With --observe: evaluation samples (.npz / .npy / image folder) for the GPU numerics and the "
                   "float16 ranges (default: seeded random samples).")
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None, metavar="PCT",
              help="Exit 1 when any target supports less than PCT percent of the ops (a CI gate).")
@click.option("--gate", type=click.Choice(["supported", "accelerated"]), default="supported", show_default=True,
              help="What --fail-under measures: ops the target supports, or ops that end up on the "
                   "accelerator after partitioning (stricter on Edge TPU, which stops at the first "
                   "unsupported op).")
def audit_cmd(model: Path, targets, as_json, as_markdown, all_ops, suggest, observe, data, fail_under, gate):
    """Which ops of MODEL each delegate takes, and why the others stay on the CPU."""
    from . import audit, parse_targets
    from .report import markdown, text
    if as_json and as_markdown:
        fail("--json and --markdown are exclusive")
    names = parse_targets(list(targets) or None)
    if data is not None and not observe:
        fail("--data needs --observe")
    if data is not None and not data.exists():
        fail(f"{data}: no such file or folder")
    report = audit(model, names, suggest=suggest, observe=observe, data=data)
    report.model = str(model)
    if as_json:
        emit_json(report.as_dict())
    elif as_markdown:
        click.echo(markdown(report), nl=False)
    else:
        click.echo(text(report, all_ops=all_ops))
    if fail_under is not None:
        key = f"{gate}_share"
        low = [(n, t.summary[key]) for n, t in report.targets.items() if t.summary[key] < fail_under]
        if low:
            click.echo(f"tflopt: {gate} ops below --fail-under {fail_under:g}%: " +
                       ", ".join(f"{n} {s:.1f}%" for n, s in low), err=True)
            return 1
    return 0
