"""``tflopt sensitivity MODEL --calibration CAL --data EVAL``: rank the islands by int8 damage."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("sensitivity")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--calibration", type=click.Path(path_type=Path), required=True,
              help="Calibration data (.npz, .npy, image folder, module:function).")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None,
              help="Evaluation data, in the same forms (default: the calibration data).")
@click.option("--calibration-normalize", type=click.Choice(["unit", "signed", "raw", "imagenet"]), default="unit",
              show_default=True, help="Pixel scaling for image folders.")
@click.option("--mode", type=click.Choice(["int8", "int16x8"]), default="int8", show_default=True)
@click.option("--top", type=click.IntRange(min=0), default=20, show_default=True,
              help="Islands also tested left float alone and weights alone, and shown (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the ranking as a report: .html (with a ranked bar plot) or .md.")
def sensitivity_cmd(model, calibration, data, calibration_normalize, mode, top, as_json, report):
    """Per island (ops sharing an encoding): fidelity with only it quantized, with only it
    left float, and whether its weights or activations carry the loss; ranked."""
    from tflopt.calibration import load_calibration
    from tflopt.cli import emit_json
    from tflopt.errors import TfloptError
    from tflopt.evaluation.cli import check_report_path
    from tflopt.io import load
    from tflopt.passes.quantize import QuantizeOptions

    from .analysis import analyze
    check_report_path(report)
    m = load(model)
    cal = load_calibration(calibration, m, normalize=calibration_normalize)
    ev = load_calibration(data, m, normalize=calibration_normalize) if data is not None else cal
    try:
        result = analyze(m, cal, list(ev), QuantizeOptions(mode=mode), top=top)
    except (RuntimeError, ValueError) as e:
        raise TfloptError(f"{model}: cannot run the model: {' '.join(str(e).split())[:200]}") from None
    result["model"] = str(model)
    if top:
        result["ranked"] = result["ranked"][:top]
    if report is not None:
        from tflopt.reports import sensitivity_report, write_report
        write_report(report, sensitivity_report(result))
    if as_json:
        emit_json(result)
        return
    full = result["full_quantized"]
    click.echo(f"{model}: {result['islands']} islands, whole model {mode}: min cosine {full['min_cosine']:.4f}, "
               f"min SNR {full['min_snr_db']:.1f} dB ({result['evaluation_samples']} samples, "
               f"{result['builds']} builds, {result['seconds']:.1f} s)")
    for note in result["notes"]:
        click.echo(f"note: {note}")
    click.echo(f"{'rank':>4s}  {'only q cos':>10s}  {'only f cos':>10s}  {'blame':11s}  {'MACs %':>6s}  island")
    for r in result["ranked"]:
        of = r.get("only_float")
        click.echo(f"{r['rank']:4d}  {r['only_quantized']['min_cosine']:10.4f}  "
                   f"{of['min_cosine'] if of else float('nan'):10.4f}  {r.get('blame', '-'):11s}  "
                   f"{100 * r['macs_share']:6.2f}  {'+'.join(dict.fromkeys(r['ops']))} {r['island'][:70]}")
