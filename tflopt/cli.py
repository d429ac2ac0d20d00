"""The ``tflopt`` command. Every failure a user can cause is one line on stderr and exit 2.

Subcommands load lazily (``_COMMANDS``) so ``tflopt --help`` does not pay for numpy-heavy
modules, and nothing here imports tensorflow.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import click

from .errors import MESSAGE_LIMIT, TfloptError, cap_line

# name -> "module:attribute"; each command lives beside the code it drives.
_COMMANDS = {
    "inspect": "tflopt.commands:inspect_cmd",
    "size": "tflopt.commands:size_cmd",
    "optimize": "tflopt.commands:optimize_cmd",
    "passes": "tflopt.commands:passes_cmd",
    "compare": "tflopt.evaluation.cli:compare_cmd",
    "bench": "tflopt.evaluation.cli:bench_cmd",
    "audit": "tflopt.audit.cli:audit_cmd",
    "plot": "tflopt.plot:plot_cmd",
    "search": "tflopt.search.command:search_cmd",
    "sensitivity": "tflopt.sensitivity.cli:sensitivity_cmd",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_COMMANDS)

    def get_command(self, ctx, name):
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tflopt", prog_name="tflopt")
def cli():
    """Post-process converted TensorFlow Lite models: prune, cluster, requantize, audit, measure."""


def fail(message: str) -> "typing.NoReturn":  # noqa: F821
    raise TfloptError(message)


def emit_json(obj) -> None:
    """Strict JSON: non-finite numbers are the strings "nan" / "inf" / "-inf", never bare NaN."""
    from .evaluation.metrics import json_safe
    click.echo(json.dumps(json_safe(obj), indent=2, sort_keys=True, default=_json_default, allow_nan=False))


def _json_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _one_line(text: str) -> str:
    # The whole line, "tflopt: error: " included, stays within MESSAGE_LIMIT.
    return cap_line(" ".join(str(text).split()), MESSAGE_LIMIT - len("tflopt: error: "))


def main(argv=None) -> int:
    """Entry point: maps every expected failure to one line and exit code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        args = ["--help"]
    try:
        rv = cli.main(args=args, prog_name="tflopt", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("tflopt: aborted", err=True)
        return 130
    except click.ClickException as e:  # usage errors, bad option values
        click.echo(f"tflopt: error: {_one_line(e.format_message())}", err=True)
        return 2
    except TfloptError as e:
        click.echo(f"tflopt: error: {_one_line(str(e))}", err=True)
        return 2
    except MemoryError:
        click.echo("tflopt: error: out of memory", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("tflopt: interrupted", err=True)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
