"""Shared CLI plumbing: one-line errors, reading cfgs (``-`` is stdin), atomic output."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from cfgsched.errors import escape
from cfgsched.files import MAX_CFG_BYTES, cfg_text, read_regular
from cfgsched.options import BOUNDS, BUILDS, MULTIGPU_MODES, OptionError, Options
from cfgsched.schedule import DEFAULT_FORK, FORKS, NetSchedule
from cfgsched.weights import read_weights_header

F = TypeVar("F", bound=Callable[..., Any])


class UsageFailure(click.ClickException):
    """A bad cfg or option: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"cfgsched: error: {escape(self.format_message())}", err=True)


def fork_option() -> Callable[[F], F]:
    """``--fork alexeyab|pjreddie|hankai`` (one value; default alexeyab)."""
    help = "darknet fork whose reading rules and formulas apply."
    choice = click.Choice(FORKS)
    return click.option(
        "--fork", type=choice, default=DEFAULT_FORK, show_default=True, help=help
    )


def fail(message: str) -> UsageFailure:
    """Build the one-line, exit-2 error for ``message`` (control characters escaped)."""
    return UsageFailure(escape(message.replace("\n", " ")))


def warn(message: str) -> None:
    """One warning line on stderr, control characters escaped (cfg text is untrusted)."""
    click.echo(f"warning: {escape(message)}", err=True)


def one_line_errors(func: F) -> F:
    """Turn library errors (ValueError: CfgError, a bad value, ...) and OSError into
    one-line messages with exit code 2 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            name = f"{exc.filename}: " if exc.filename is not None else ""
            raise fail(f"{name}{exc.strerror or exc}") from None

    return wrapper  # type: ignore[return-value]


def read_cfg_text(path: str, *, exact: bool = False) -> tuple[str, str]:
    """``(text, source name)`` of a cfg (``-`` is stdin), checked as by
    :func:`~cfgsched.files.read_cfg`; ``exact``: undecodable bytes kept, so that encoding
    the text back gives the same bytes."""
    if path != "-":  # a closed stdin raises when read (cli._guard_streams): one line
        data, source = read_regular(path, MAX_CFG_BYTES), path
    else:
        data, source = sys.stdin.buffer.read(MAX_CFG_BYTES + 1), "<stdin>"
    text = cfg_text(data, source)
    return (data.decode("utf-8", "surrogateescape") if exact else text), source


def check_target(path: str, force: bool, ours: Callable[[Path], bool] | None) -> Path:
    """The output path; a directory, missing folder, non-regular file or existing file
    (unless ``force`` or ``ours(path)``: cfgsched's own output) is refused."""
    target = Path(path)
    if path.endswith(("/", os.sep)) or target.is_dir():
        raise fail(f"{path}: is a directory; name the output file")
    parent = target.parent
    if not parent.is_dir():
        raise fail(f"{path}: folder {str(parent)!r} does not exist")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(st.st_mode):
        raise fail(f"{path}: exists and is not a regular file; refusing to replace it")
    if not force and not (ours is not None and ours(target)):
        raise fail(f"{path}: exists; use --force to overwrite")
    return target


@contextlib.contextmanager
def _signals_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP end the program through Python (so cleanup runs) while active,
    with exit code 128 + the signal's number, as shells report it."""
    try:
        signals = (signal.SIGTERM, signal.SIGHUP)
        saved = {s: signal.signal(s, lambda n, _: sys.exit(128 + n)) for s in signals}
    except ValueError:  # not the main thread: leave the handlers alone
        saved = {}
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def atomic_output(
    path: str,
    *,
    force: bool,
    binary: bool = False,
    ours: Callable[[Path], bool] | None = None,
) -> Iterator[IO[Any]]:
    """Write ``path`` (``-``: stdout) through a temporary file moved into place on success
    (an error, SIGTERM or SIGHUP leaves the previous file)."""
    if path == "-":
        stream: Any = sys.stdout  # closed: raises when used (cli._guard_streams)
        if binary and stream.isatty():
            raise fail("-: refusing to write binary output to a terminal; use -o FILE")
        out: IO[Any] = stream.buffer if binary else stream
        yield out
        out.flush()
        return
    target = check_target(path, force, ours)
    replace = target.exists()
    umask = os.umask(0)  # a new file's mode, or the mode of the file it replaces
    os.umask(umask)
    keep = target.stat().st_mode & 0o7777 if replace else 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=".cfgsched-", suffix=".tmp", dir=target.parent)
    try:
        with _signals_exit():
            os.fchmod(fd, keep)
            mode = "wb" if binary else "w"
            with os.fdopen(fd, mode, encoding=None if binary else "utf-8") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            _move_into_place(tmp, target, path, replace)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _move_into_place(tmp: str, target: Path, path: str, replace: bool) -> None:
    """Rename over an existing file, or link a new one exclusively (no check-then-rename)."""
    try:
        if replace:
            return os.replace(tmp, target)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except OSError:  # no hard links here: claim the name exclusively, then rename
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return os.replace(tmp, target)
    except FileExistsError:
        why = "was created by another program meanwhile; use --force"
        raise fail(f"{path}: {why}") from None
    os.unlink(tmp)


def made_by_cfgsched(*markers: bytes) -> Callable[[Path], bool]:
    """A check that a file's first or last 4 KiB hold one of ``markers``."""

    def check(path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4096))
                ends = (head, fh.read(4096))
        except OSError:
            return False
        return any(m in end for m in markers for end in ends)

    return check


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
    build: str | None = None

    def options(self, schedule: NetSchedule) -> Options:
        """The :class:`~cfgsched.options.Options` for ``schedule`` (a bad value is one line
        naming the flags, exit 2); ``--resume-from`` is read as ``schedule``'s fork does."""
        if self.torch_batch is None and (self.accumulate or self.world_size):
            raise fail("--accumulate and --world-size need --torch-batch")
        if self.multigpu is not None and (self.gpus or 1) < 2:
            raise fail("--multigpu needs --gpus N with N > 1")
        tb, acc, world = self.torch_batch, self.accumulate or 1, self.world_size or 1
        ips = None if tb is None else tb * acc * world
        resume = None if self.resume_from is None else 0
        try:  # a meaningless combination fails before the weights file is read
            o = Options(
                exact=not self.double,
                flush=self.flush,
                ngpus=self.gpus or 1,
                multigpu=self.multigpu or "images",
                scratch=self.scratch,
                images_per_step=ips,
                ideal=self.ideal,
                resume_iteration=resume,
                build=self.build or "gpu",
            )
            if self.resume_from is None:
                return o
            header = read_weights_header(self.resume_from, fork=schedule.fork)
            return replace(o, resume_iteration=header.iteration(schedule))
        except OptionError as exc:
            raise fail(exc.worded(FLAGS)) from None


#: How :class:`~cfgsched.options.OptionError` messages name the options on the command line.
FLAGS = {k: "--" + k for k in ("double", "multigpu", "scratch", "ideal", "build")} | {
    "flush": "--flush-subnormals",
    "ngpus": "--gpus N",
    "trace": "--multigpu trace",
    "images_per_step": "--torch-batch",
    "resume_iteration": "--resume-from",
}


class Count(click.ParamType):  # type: ignore[type-arg]
    """A whole number in ``lo..hi`` in ASCII digits (click's int() also takes '٣', '５')."""

    name = "integer"

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        """``value`` as an int, or click's usage error."""
        digits = isinstance(value, str) and value.isascii() and value.isdigit()
        n = int(value) if digits else value
        if not isinstance(n, int) or isinstance(n, bool):
            self.fail(f"{value!r} is not a whole number in ASCII digits", param, ctx)
        if not self.lo <= n <= self.hi:
            self.fail(f"{n} is not in the range {self.lo}<=x<={self.hi}", param, ctx)
        return n


#: The shared translation options in --help order: (declarations, type, metavar, help);
#: type None is an on/off flag, "flush" the --flush/--keep pair (default: the fork's build).
_TRANSLATION_OPTIONS: tuple[tuple[tuple[str, ...], Any, str | None, str], ...] = (
    (("--gpus",), Count(*BOUNDS["ngpus"]), "N", "A darknet -gpus N run: LR x N where the "
     "fork does it (alexeyab, pjreddie), step i at b = (i+1)*N."),
    (("--multigpu",), click.Choice(MULTIGPU_MODES), None, "With --gpus: b = "
     "(i+1)*N for DDP (images, the default) or GPU 0's exact batch sequence (trace)."),
    (("--scratch",), None, None, "With --multigpu trace: no weights file (hankai "
     "trains burn-in on one GPU first)."),
    (("--torch-batch",), Count(1, 1 << 30), "T", "Images per torch mini-batch: step i "
     "is at b = (i+1)*T*A*W // (cfg batch)."),
    (("--accumulate",), Count(1, 1 << 20), "A", "Gradient accumulation steps (with "
     "--torch-batch)."),
    (("--world-size",), Count(1, 1 << 20), "W", "Data-parallel processes (with "
     "--torch-batch)."),
    (("--ideal",), None, None, "With --gpus N: AlexeyAB's advice first "
     "(learning_rate / N, burn_in x N)."),
    (("--double",), None, None, "The formulas in double instead of darknet's float32 "
     "(not bit-exact)."),
    (("--flush-subnormals/--keep-subnormals", "flush"), "flush", None, "LRs below "
     "float32's normal range become 0, as in -Ofast release builds [default: the "
     "fork's release build: alexeyab, pjreddie flush; hankai keeps]."),
    (("--resume-from",), click.Path(dir_okay=False), "WEIGHTS", "Start where darknet "
     "resumes this .weights file (seen // batch)."),
    (("--build",), click.Choice(BUILDS), None, "The darknet build whose layer "
     "rules (stopbackward, ...) apply [default: gpu]."),
)  # fmt: skip


def translation_options(func: F, gpu_counts: bool = False) -> F:
    """Add the shared translation options, passed as ``translation: TranslationArgs``
    (``gpu_counts``: ``--gpus`` repeats, passed as ``gpu_counts``, a tuple)."""
    names = [f.name for f in fields(TranslationArgs)]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {n: kwargs.pop(n) for n in names}
        if gpu_counts:
            kwargs["gpu_counts"], given["gpus"] = given["gpus"], None
        return func(*args, translation=TranslationArgs(**given), **kwargs)

    out: Any = wrapper
    for decls, kind, metavar, text in reversed(_TRANSLATION_OPTIONS):
        kw: dict[str, Any] = {"help": text}
        if kind is None:
            kw["is_flag"] = True
        elif kind == "flush":
            kw["default"] = None
        else:
            kw.update(type=kind, metavar=metavar)
        if gpu_counts and decls == ("--gpus",):
            kw.update(multiple=True, help=f"{text} Repeat to overlay GPU counts.")
        out = click.option(*decls, **kw)(out)
    return out  # type: ignore[no-any-return]
