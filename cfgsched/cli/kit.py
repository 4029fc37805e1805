"""Shared CLI plumbing: one-line errors, reading cfgs (``-`` is stdin), atomic output."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from cfgsched.errors import CfgError, NotExactError, WeightsError

if TYPE_CHECKING:
    from cfgsched.schedule import NetSchedule
    from cfgsched.translation import Options

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


@dataclass(frozen=True)
class TranslationArgs:
    """The translation options as given on the command line (before a cfg is read)."""

    gpus: int | None = None
    multigpu: str | None = None
    scratch: bool = False
    torch_batch: int | None = None
    accumulate: int | None = None
    world_size: int | None = None
    ideal: bool = False
    double: bool = False
    flush: bool | None = None
    resume_from: str | None = None

    @property
    def given(self) -> list[str]:
        """The options given on the command line, as ``--name`` (for conflict messages)."""
        return [
            f"--{f.name.replace('_', '-')}"
            for f in fields(self)
            if getattr(self, f.name) not in (None, False)
        ]

    def options(self, schedule: NetSchedule) -> Options:
        """The validated :class:`~cfgsched.translation.Options` for ``schedule``.

        Meaningless combinations fail with one line (exit 2); ``--resume-from`` reads the
        weights header as ``schedule``'s fork does.
        """
        from cfgsched.translation import Options

        gpus = self.gpus or 1
        if self.torch_batch is None and (self.accumulate or self.world_size):
            raise fail("--accumulate and --world-size need --torch-batch")
        if self.multigpu == "trace" and gpus < 2:
            raise fail("--multigpu trace needs --gpus N with N > 1")
        if self.multigpu is not None and gpus < 2:
            raise fail("--multigpu needs --gpus N with N > 1")
        if self.scratch and self.multigpu != "trace":
            raise fail("--scratch needs --multigpu trace")
        if self.multigpu == "trace" and self.torch_batch is not None:
            raise fail(
                "--multigpu trace follows darknet's iterations: no --torch-batch"
            )
        if self.ideal and gpus < 2:
            raise fail(
                "--ideal needs --gpus N with N > 1 (it is the advice for N GPUs)"
            )
        if self.double and self.flush:
            raise fail("--flush-subnormals is float32 arithmetic: not with --double")
        if self.resume_from is not None and self.multigpu == "trace":
            raise fail("--multigpu trace covers runs from scratch: no --resume-from")
        images_per_step = None
        if self.torch_batch is not None:
            images_per_step = (
                self.torch_batch * (self.accumulate or 1) * (self.world_size or 1)
            )
        resume = None
        if self.resume_from is not None:
            from cfgsched.weights import read_weights_header

            header = read_weights_header(self.resume_from, fork=schedule.fork)
            resume = header.iteration(schedule)
        try:
            return Options(
                exact=not self.double,
                flush=self.flush,
                ngpus=gpus,
                multigpu=self.multigpu or "images",
                scratch=self.scratch,
                images_per_step=images_per_step,
                ideal=self.ideal,
                resume_iteration=resume,
            )
        except ValueError as exc:
            raise fail(str(exc)) from None


#: The shared translation options: (param decls, click keyword arguments), in --help order.
_TRANSLATION_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--gpus",),
        dict(
            type=click.IntRange(1, 1 << 20),
            metavar="N",
            help="A darknet -gpus N run: LR x N where the fork does it "
            "(alexeyab, pjreddie), step i at b = (i+1)*N.",
        ),
    ),
    (
        ("--multigpu",),
        dict(
            type=click.Choice(["images", "trace"]),
            help="With --gpus: b = (i+1)*N for DDP (images, the default) "
            "or GPU 0's exact batch sequence (trace).",
        ),
    ),
    (
        ("--scratch",),
        dict(
            is_flag=True,
            help="With --multigpu trace: no weights file (hankai trains "
            "burn-in on one GPU first).",
        ),
    ),
    (
        ("--torch-batch",),
        dict(
            type=click.IntRange(1, 1 << 30),
            metavar="T",
            help="Images per torch mini-batch: step i is at "
            "b = (i+1)*T*A*W // (cfg batch).",
        ),
    ),
    (
        ("--accumulate",),
        dict(
            type=click.IntRange(1, 1 << 20),
            metavar="A",
            help="Gradient accumulation steps (with --torch-batch).",
        ),
    ),
    (
        ("--world-size",),
        dict(
            type=click.IntRange(1, 1 << 20),
            metavar="W",
            help="Data-parallel processes (with --torch-batch).",
        ),
    ),
    (
        ("--ideal",),
        dict(
            is_flag=True,
            help="With --gpus N: AlexeyAB's advice first (learning_rate / N, "
            "burn_in x N).",
        ),
    ),
    (
        ("--double",),
        dict(
            is_flag=True,
            help="The formulas in double instead of darknet's float32 (not bit-exact).",
        ),
    ),
    (
        ("--flush-subnormals/--keep-subnormals", "flush"),
        dict(
            default=None,
            help="LRs below float32's normal range become 0, as in -Ofast release builds "
            "[default: the fork's release build: alexeyab, pjreddie flush; hankai keeps].",
        ),
    ),
    (
        ("--resume-from",),
        dict(
            type=click.Path(dir_okay=False),
            metavar="WEIGHTS",
            help="Start where darknet resumes this .weights file (seen // batch).",
        ),
    ),
)


def translation_options(func: F) -> F:
    """Add the shared translation options; the command receives ``translation:
    TranslationArgs`` instead of the individual values."""
    names = [f.name for f in fields(TranslationArgs)]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {n: kwargs.pop(n) for n in names}
        return func(*args, translation=TranslationArgs(**given), **kwargs)

    out: Any = wrapper
    for decls, kw in reversed(_TRANSLATION_OPTIONS):
        out = click.option(*decls, **kw)(out)
    return out  # type: ignore[no-any-return]
