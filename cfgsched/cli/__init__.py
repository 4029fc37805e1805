"""The ``cfgsched`` command line: a thin click group over ``cfgsched.commands``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from cfgsched import __version__

#: command name -> "module:attribute"; imported only when that command runs (fast start).
COMMANDS: dict[str, str] = {
    name: f"cfgsched.cli.{name}:{name}"
    for name in ("convert", "plot", "diff", "explain", "lint", "adjust")
}


class _LazyGroup(click.Group):
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run; a usage error is one line on stderr with exit code 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "cfgsched"
            msg = exc.format_message().replace("\n", " ")
            click.echo(f"{where}: error: {msg} (see: {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: Any = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cfgsched")
def main() -> None:
    """Translate, plot, diff, explain and lint darknet .cfg learning-rate schedules.

    \b
    Example:
      cfgsched convert yolov4.cfg -o lr_schedule.py
    """
