"""Shared CLI plumbing: one-line errors, reading cfgs (``-`` is stdin), atomic output."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from cfgsched.errors import CfgError, NotExactError, WeightsError

F = TypeVar("F", bound=Callable[..., Any])

#: Largest cfg file cfgsched reads (bytes); real cfgs are well under 100 KB.
MAX_CFG_BYTES = 4 * 1024 * 1024


class UsageFailure(click.ClickException):
    """A bad cfg or option: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"cfgsched: error: {self.format_message()}", err=True)


def fork_option(
    help: str = "darknet fork whose reading rules and formulas apply.",
) -> Callable[[F], F]:
    """``--fork alexeyab|pjreddie|hankai`` (one value; default alexeyab)."""
    from cfgsched.schedule import DEFAULT_FORK, FORKS

    return click.option(
        "--fork",
        type=click.Choice(FORKS),
        default=DEFAULT_FORK,
        show_default=True,
        help=help,
    )


def fail(message: str) -> UsageFailure:
    """Build the one-line, exit-2 error for ``message``."""
    return UsageFailure(message.replace("\n", " "))


def one_line_errors(func: F) -> F:
    """Turn library errors into one-line messages with exit code 2 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (CfgError, WeightsError, NotExactError) as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            name = exc.filename if exc.filename is not None else "?"
            raise fail(f"{name}: {exc.strerror or exc}") from None

    return wrapper  # type: ignore[return-value]


def read_cfg_text(path: str) -> tuple[str, str]:
    """Read a cfg (``-`` is stdin) as text; return ``(text, source name)``.

    Bytes that are not UTF-8 are kept as U+FFFD; NUL bytes or a file over
    :data:`MAX_CFG_BYTES` are refused with a :class:`CfgError`.
    """
    if path == "-":
        data = sys.stdin.buffer.read(MAX_CFG_BYTES + 1)
        source = "<stdin>"
    else:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CFG_BYTES + 1)
        source = path
    if len(data) > MAX_CFG_BYTES:
        raise CfgError(
            source, None, None, f"file larger than {MAX_CFG_BYTES} bytes: not a cfg"
        )
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise CfgError(source, line, None, "NUL byte: this is a binary file, not a cfg")
    return data.decode("utf-8", errors="replace"), source


def _mode_for(target: Path) -> int:
    """The mode a new file would get (umask applied), or the mode of the file it replaces."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: str, *, force: bool, binary: bool = False) -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file renamed into place on success.

    ``-`` writes to stdout. An existing file is refused unless ``force``; on any error the
    previous file is left untouched and the temporary file removed.
    """
    if path == "-":
        stream: IO[Any] = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    target = Path(path)
    if target.exists() and not force:
        raise fail(f"{path}: exists; use --force to overwrite")
    directory = target.parent if str(target.parent) else Path(".")
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, _mode_for(target))
        with os.fdopen(
            fd, "wb" if binary else "w", encoding=None if binary else "utf-8"
        ) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
