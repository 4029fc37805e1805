"""``cfgsched diff``: a torch scheduler (or a second schedule) against darknet's C formula."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cfgsched.cli import kit as clikit
from cfgsched.errors import NotExactError
from cfgsched.schedule import FORKS

if TYPE_CHECKING:
    from cfgsched.options import Options
    from cfgsched.schedule import NetSchedule
    from cfgsched.tools.diff import DiffReport, ModuleRecord, Tolerance


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


def _parse(path: str, fork: str) -> NetSchedule:
    from cfgsched.reader.parser import parse

    text, source = clikit.read_cfg_text(path)
    return parse(text, fork=fork, source=source)


def _label(path: str, fork: str, options: Options) -> str:
    from cfgsched.tools.diff import describe

    name = "<stdin>" if path == "-" else Path(path).name
    how = describe(options)
    return f"{name} ({fork}{', ' + how if how else ''})"


def _given_fields(tr: clikit.TranslationArgs) -> list[str]:
    """The :class:`~cfgsched.options.Options` fields the command line sets."""
    given = {
        "ngpus": tr.gpus is not None,
        "multigpu": tr.multigpu is not None,
        "scratch": tr.scratch,
        "images_per_step": tr.torch_batch is not None,
        "ideal": tr.ideal,
        "exact": tr.double,
        "flush": tr.flush is not None,
        "resume_iteration": tr.resume_from is not None,
    }
    return [name for name, on in given.items() if on]


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
    type=click.IntRange(1, 1 << 20),
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
    help="Every step, or boundaries plus a dense sample "
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
    from cfgsched.tools import diff as lib

    tol = None
    if tolerance is not None:
        try:
            tol = lib.Tolerance.parse(tolerance)
        except ValueError as exc:
            raise clikit.fail(f"--tolerance: {exc}") from None
    if len(cfgs) > 2 or len(forks) > 2:
        raise clikit.fail("compare at most two cfgs or two --fork values")
    if cfgs.count("-") > 1:
        raise clikit.fail("'-' (stdin) can be given only once")
    if len(cfgs) == 2 or len(forks) == 2 or vs_gpus is not None:
        if module is not None or style is not None:
            raise clikit.fail("--style/--module test a torch scheduler: give one cfg")
        report = _pair(cfgs, forks, translation, vs_gpus, tol, exhaustive)
    else:
        report = _single(
            cfgs[0], forks, translation, style, module, tol, exhaustive, as_json
        )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.format_text())
    sys.exit(report.exit_code)


def _pair(
    cfgs: tuple[str, ...],
    forks: tuple[str, ...],
    tr: clikit.TranslationArgs,
    vs_gpus: int | None,
    tol: Tolerance | None,
    exhaustive: bool | None,
) -> DiffReport:
    """Two schedules (two cfgs, two forks or two GPU counts), batch by batch."""
    from cfgsched.reader.parser import parse
    from cfgsched.tools import diff as lib

    steps_only = [
        name
        for name, on in (
            ("--torch-batch", tr.torch_batch is not None),
            ("--multigpu trace", tr.multigpu == "trace"),
            ("--resume-from", tr.resume_from is not None),
        )
        if on
    ]
    if steps_only:
        raise clikit.fail(
            f"two schedules are compared batch by batch: {steps_only[0]} applies to "
            "one torch run (give one cfg)"
        )
    fork_a = forks[0] if forks else "alexeyab"
    fork_b = forks[-1] if forks else "alexeyab"
    path_a, path_b = cfgs[0], cfgs[-1]
    text_a, src_a = clikit.read_cfg_text(path_a)
    a = parse(text_a, fork=fork_a, source=src_a)
    b = parse(text_a, fork=fork_b, source=src_a) if path_b == path_a else None
    b = b if b is not None else _parse(path_b, fork_b)
    oa, ob = tr.options(a), tr.options(b)
    if vs_gpus is not None:
        try:
            ob = dataclasses.replace(ob, ngpus=vs_gpus)
        except ValueError as exc:
            raise clikit.fail(f"--vs-gpus {vs_gpus}: {exc}") from None
    return lib.diff_schedules(
        a,
        b,
        (oa, ob),
        labels=(_label(path_a, fork_a, oa), _label(path_b, fork_b, ob)),
        tolerance=tol,
        exhaustive=exhaustive,
    )


def _module_options(
    module: str,
    record: ModuleRecord,
    schedule: NetSchedule,
    tr: clikit.TranslationArgs,
) -> Options:
    """The record's options; given options must not contradict them (exit 2)."""
    from cfgsched.tools import diff as lib

    names = _given_fields(tr)
    if names:
        given = tr.options(schedule)
        bad = lib.record_conflicts(record.options, given, names, schedule.fork)
        if bad:
            raise clikit.fail(
                f"{module}: options contradict the module's CFGSCHED record "
                f"(record vs command line): {'; '.join(bad)}"
            )
    return record.options


def _single(
    cfg: str,
    forks: tuple[str, ...],
    tr: clikit.TranslationArgs,
    style: str | None,
    module: str | None,
    tol: Tolerance | None,
    exhaustive: bool | None,
    as_json: bool,
) -> DiffReport:
    """One cfg: the torch scheduler (class, native or a module) against the C formula."""
    from cfgsched.tools import diff as lib

    if module is not None:
        if style is not None:
            raise clikit.fail(
                "--style with --module: the module is the scheduler tested"
            )
        record = lib.read_module_record(module)
        if forks and forks[0] != record.fork:
            raise clikit.fail(
                f"{module}: --fork {forks[0]} contradicts the module's CFGSCHED record "
                f"(fork {record.fork})"
            )
        schedule = _parse(cfg, record.fork)
        options = _module_options(module, record, schedule, tr)
    else:
        schedule = _parse(cfg, forks[0] if forks else "alexeyab")
        options = tr.options(schedule)
    bar: Any = None
    show_bar = sys.stderr.isatty()

    def progress(n: int, total: int) -> None:
        nonlocal bar
        if not show_bar:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="diff", file=sys.stderr)
            bar.__enter__()
        bar.update(n)

    try:
        return lib.diff_torch(
            schedule,
            options,
            style=style or "class",
            module=module,
            tolerance=tol,
            exhaustive=exhaustive,
            progress=progress,
        )
    except NotExactError as exc:
        _not_exact(exc, as_json)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _not_exact(exc: NotExactError, as_json: bool) -> NoReturn:
    """``--style native`` without an exact form: the reason, exit 1."""
    from cfgsched.tools.diff import SCHEMA

    if as_json:
        doc = {
            "schema": SCHEMA,
            "equal": False,
            "exit_code": 1,
            "not_exact": {"batch": exc.batch, "reason": exc.reason},
        }
        click.echo(json.dumps(doc, indent=2))
    click.echo(f"cfgsched: {exc}", err=True)
    sys.exit(1)
