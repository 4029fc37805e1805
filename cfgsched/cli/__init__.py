"""The ``cfgsched`` command line: a click group over the commands in ``cfgsched.cli``."""

from __future__ import annotations

import errno
import importlib
import io
import sys
from typing import Any

import click

from cfgsched import __version__

#: The commands: ``cfgsched.cli.NAME.NAME``, imported only when that command runs.
COMMANDS = ("adjust", "convert", "diff", "explain", "lint", "plot")


class _ClosedStream(io.TextIOBase):
    """A standard stream closed at start: any use is an OSError (one line, exit 2)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _closed(self, *args: object) -> Any:
        raise OSError(errno.EBADF, f"standard {self.name} is closed")

    write = read = _closed
    buffer = property(_closed)


def _guard_streams() -> None:
    """Closed stdin/stdout raise when used; a non-UTF-8 stdout/stderr escapes what it cannot
    encode."""
    if sys.stdin is None:
        sys.stdin = _ClosedStream("input")
    if sys.stdout is None:
        sys.stdout = _ClosedStream("output")
    for stream in (sys.stdout, sys.stderr):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if isinstance(stream, io.TextIOWrapper) and enc != "utf8":
            stream.reconfigure(errors="backslashreplace")


class _LazyGroup(click.Group):
    def main(self, *args: Any, **extra: Any) -> Any:
        """Run; a usage error is one line on stderr with exit code 2, Ctrl-C exits 130
        (128 + SIGINT, as shells report it)."""
        _guard_streams()
        run: Any = super().main  # click's overloads: typed per standalone_mode
        if not extra.pop("standalone_mode", True):
            return run(*args, standalone_mode=False, **extra)
        try:
            rv = run(*args, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "cfgsched"
            msg = exc.format_message().replace("\n", " ")
            click.echo(f"{where}: error: {msg} (see: {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            click.echo("Aborted!", err=True)
            sys.exit(130 if isinstance(exc.__cause__, KeyboardInterrupt) else 1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"cfgsched.cli.{cmd_name}")
        command: Any = getattr(module, cmd_name)
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
