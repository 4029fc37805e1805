"""``cfgsched diff``: a torch scheduler (or a second schedule) against darknet's C formula."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from cfgsched.cli import kit as clikit
from cfgsched.errors import NotExactError
from cfgsched.module_record import read_record
from cfgsched.options import OptionError, Options
from cfgsched.reader.parser import parse
from cfgsched.schedule import FORKS, NetSchedule

if TYPE_CHECKING:
    from cfgsched.tools.diff import DiffReport, Tolerance

#: Options fields each translation option of the command line sets.
_FIELDS = {
    "gpus": "ngpus", "multigpu": "multigpu", "scratch": "scratch",
    "torch_batch": "images_per_step", "ideal": "ideal", "double": "exact",
    "flush": "flush", "resume_from": "resume_iteration",
}  # fmt: skip


class _DiffCommand(click.Command):
    """``diff`` refuses a repeated ``--gpus`` (it once meant "compare two GPU counts")."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        head = args[: args.index("--")] if "--" in args else args
        if sum(a == "--gpus" or a.startswith("--gpus=") for a in head) > 1:
            raise click.UsageError(
                "--gpus given twice; to compare two GPU counts use --gpus N --vs-gpus M",
                ctx=ctx,
            )
        return super().parse_args(ctx, args)


@click.command(
    "diff",
    cls=_DiffCommand,
    epilog="""\b
Examples:
  cfgsched diff yolov4.cfg                      # DarknetLR vs C, every step
  cfgsched diff yolov4.cfg --torch-batch 16 --accumulate 2
  cfgsched diff yolov4.cfg --style native       # torch built-ins (exit 1 if none is exact)
  cfgsched diff yolov4.cfg --module lr_schedule.py   # the module cfgsched convert wrote
  cfgsched diff yolov4.cfg yolov4-4gpu.cfg      # two schedules, batch by batch
  cfgsched diff sgdr.cfg --fork pjreddie --fork alexeyab
  cfgsched diff yolov4.cfg --gpus 1 --vs-gpus 4 --json

\b
--module FILE imports FILE, which runs its code: only use files you trust.
The module's CFGSCHED record (fork and translation options, written by
cfgsched convert) says what it was made for; diff checks exactly that, and
a translation option given here that contradicts the record is an error.

\b
Exit status: 0 equal within the tolerance, 1 different (or no exact
native scheduler for --style native), 2 bad cfg, module or option.""",
)
@click.argument("cfgs", nargs=-1, required=True, metavar="CFG [CFG2]")
@click.option(
    "--fork",
    "forks",
    multiple=True,
    type=click.Choice(FORKS),
    help="darknet fork (default alexeyab, or the module's); give two to compare the forks.",
)
@clikit.translation_options
@click.option(
    "--vs-gpus",
    type=clikit.Count(1, 1 << 20),
    metavar="M",
    help="Compare with the same cfg on M GPUs, batch by batch (LR x M where the fork "
    "does it).",
)
@click.option(
    "--style",
    type=click.Choice(["class", "native"]),
    default=None,
    help="cfgsched.DarknetLR (class, the default) or torch built-ins (native_scheduler).",
)
@click.option(
    "--module",
    "module",
    type=click.Path(dir_okay=False),
    help="A module written by cfgsched convert (build_scheduler and its CFGSCHED "
    "record) to test. It is imported: this runs its code.",
)
@click.option(
    "--tolerance",
    default=None,
    help="Allowed error: float32 ulps (0ulp, 1ulp) or relative (1e-6). "
    "[default: 0ulp; 1e-9 relative with --double]",
)
@click.option(
    "--exhaustive/--sampled",
    default=None,
    help="Every step, or every boundary plus a dense sample "
    "(default: every step up to 2,000,000 steps).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@clikit.one_line_errors
def diff(
    cfgs: tuple[str, ...],
    forks: tuple[str, ...],
    translation: clikit.TranslationArgs,
    vs_gpus: int | None,
    style: str | None,
    module: str | None,
    tolerance: str | None,
    exhaustive: bool | None,
    as_json: bool,
) -> None:
    """Compare a PyTorch scheduler with darknet's C formula, step by step.

    Optimizer step i of the torch scheduler is compared with darknet's LR at the batch b
    the translation gives it (b = i + 1 by default; the translation options below move it
    and set the base rate, as in convert). Every step of the run is compared (a progress
    bar goes to stderr), with a table of step i and batch b at every boundary (burn-in
    end, steps, sgdr cycle ends, max_batches±1). With two CFGs, two --fork values or
    --vs-gpus it compares the two schedules batch by batch instead.

    \b
    Example:
      cfgsched diff sample_cfgs/yolov4.cfg
    """
    from cfgsched.tools import diff as lib  # numpy: only when diff runs

    try:
        tol = None if tolerance is None else lib.Tolerance.parse(tolerance)
    except ValueError as exc:
        raise clikit.fail(f"--tolerance: {exc}") from None
    if len(cfgs) > 2 or len(forks) > 2:
        raise clikit.fail("compare at most two cfgs or two --fork values")
    if cfgs.count("-") > 1:
        raise clikit.fail("'-' (stdin) can be given only once")
    pair = len(cfgs) == 2 or len(forks) == 2 or vs_gpus is not None
    if pair and (module is not None or style is not None):
        raise clikit.fail("--style/--module test a torch scheduler: give one cfg")
    if module is not None and style is not None:
        raise clikit.fail("--style with --module: the module is the scheduler tested")
    try:
        if pair:
            report = _pair(lib, cfgs, forks, translation, vs_gpus, tol, exhaustive)
        else:
            schedule, options = _single(cfgs[0], forks, translation, module)
            with _progress() as progress:
                report = lib.diff_torch(
                    schedule, options, style=style or "class", module=module,
                    tolerance=tol, exhaustive=exhaustive, progress=progress,
                )  # fmt: skip
    except NotExactError as exc:  # --style native without an exact form: exit 1
        doc = {"schema": lib.SCHEMA, "equal": False, "exit_code": 1}
        if as_json:
            not_exact = {"batch": exc.batch, "reason": exc.reason}
            click.echo(json.dumps({**doc, "not_exact": not_exact}, indent=2))
        click.echo(f"cfgsched: {exc}", err=True)
        sys.exit(1)
    click.echo(
        json.dumps(report.to_dict(), indent=2) if as_json else report.format_text()
    )
    sys.exit(0 if report.equal else 1)


def _pair(
    lib: Any,
    cfgs: tuple[str, ...],
    forks: tuple[str, ...],
    tr: clikit.TranslationArgs,
    vs_gpus: int | None,
    tol: Tolerance | None,
    exhaustive: bool | None,
) -> DiffReport:
    """Two schedules (two cfgs, two forks or two GPU counts), batch by batch."""
    forks = forks or ("alexeyab",)
    text, source = clikit.read_cfg_text(cfgs[0])
    a = parse(text, fork=forks[0], source=source)
    if cfgs[-1] != cfgs[0]:
        text, source = clikit.read_cfg_text(cfgs[-1])
    b = parse(text, fork=forks[-1], source=source)
    oa, ob = tr.options(a), tr.options(b)
    ob = ob if vs_gpus is None else dataclasses.replace(ob, ngpus=vs_gpus)
    return lib.diff_schedules(  # type: ignore[no-any-return]
        a, b, (oa, ob), tolerance=tol, exhaustive=exhaustive
    )


def _single(
    cfg: str, forks: tuple[str, ...], tr: clikit.TranslationArgs, module: str | None
) -> tuple[NetSchedule, Options]:
    """One cfg and its translation; with a module, the record's options with those given
    here that change them (``tools.diff`` refuses them naming both values)."""
    record = None if module is None else read_record(module)
    fork = forks[0] if forks else record.fork if record else "alexeyab"
    text, source = clikit.read_cfg_text(cfg)
    schedule = parse(text, fork=fork, source=source)
    if record is None:
        return schedule, tr.options(schedule)
    unset = clikit.TranslationArgs()
    names = [f for arg, f in _FIELDS.items() if getattr(tr, arg) != getattr(unset, arg)]
    given = tr.options(schedule) if names else record.options
    if given.flushes(fork) == record.options.flushes(fork) and "flush" in names:
        names.remove("flush")
    try:
        changed = {f: getattr(given, f) for f in names}
        return schedule, dataclasses.replace(record.options, **changed)
    except OptionError as exc:  # the options given clash with the module's record
        raise clikit.fail(f"{module}: {exc.worded(clikit.FLAGS)}") from None


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (None otherwise)."""
    with contextlib.ExitStack() as stack:
        bar: list[Any] = []

        def update(n: int, total: int) -> None:
            if not bar:
                new = click.progressbar(length=total, label="diff", file=sys.stderr)
                bar.append(stack.enter_context(new))
            bar[0].update(n)

        yield update if sys.stderr.isatty() else None
