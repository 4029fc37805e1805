"""``cfgsched diff``: a torch scheduler (or a second schedule) against darknet's C formula."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from cfgsched.cli import kit as clikit
from cfgsched.errors import NotExactError
from cfgsched.schedule import FORKS


def _parse(path: str, fork: str) -> Any:
    from cfgsched.reader.parser import parse

    text, source = clikit.read_cfg_text(path)
    return parse(text, fork=fork, source=source)


def _label(path: str, fork: str, gpus: int) -> str:
    name = "<stdin>" if path == "-" else Path(path).name
    return f"{name} ({fork}{f', {gpus} GPUs' if gpus > 1 else ''})"


@click.command(
    "diff",
    epilog="""\b
Examples:
  cfgsched diff yolov4.cfg                      # DarknetLR vs C, every step
  cfgsched diff yolov4.cfg --style native       # torch built-ins (exit 1 if none is exact)
  cfgsched diff yolov4.cfg --module lr_schedule.py --tolerance 1ulp
  cfgsched diff yolov4.cfg yolov4-4gpu.cfg      # two schedules, batch by batch
  cfgsched diff sgdr.cfg --fork pjreddie --fork alexeyab
  cfgsched diff yolov4.cfg --gpus 1 --gpus 4 --json

\b
Exit status: 0 equal within the tolerance, 1 different (or no exact
native scheduler for --style native), 2 bad cfg or option.""",
)
@click.argument("cfgs", nargs=-1, required=True, metavar="CFG [CFG2]")
@click.option(
    "--fork",
    "forks",
    multiple=True,
    type=click.Choice(FORKS),
    help="darknet fork (default alexeyab); give two to compare the forks.",
)
@click.option(
    "--gpus",
    "gpus",
    multiple=True,
    type=click.IntRange(min=1),
    help="darknet -gpus count (step i is b = (i+1)·N); give two to compare them.",
)
@click.option(
    "--style",
    type=click.Choice(["class", "native"]),
    default="class",
    show_default=True,
    help="cfgsched.DarknetLR (class) or torch built-ins (native_scheduler).",
)
@click.option(
    "--module",
    "module",
    type=click.Path(dir_okay=False),
    help="Python file defining build_scheduler(optimizer, last_epoch=-1) to test.",
)
@click.option(
    "--tolerance",
    default="0ulp",
    show_default=True,
    help="Allowed error: float32 ulps (0ulp, 1ulp) or relative (1e-6).",
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
    gpus: tuple[int, ...],
    style: str,
    module: str | None,
    tolerance: str,
    exhaustive: bool | None,
    as_json: bool,
) -> None:
    """Compare a PyTorch scheduler with darknet's C formula, step by step.

    Step i of the torch scheduler is compared with darknet's LR at b = i + 1, every step up to
    max_batches (a progress bar goes to stderr), with a table at every boundary (burn-in end,
    steps, sgdr cycle ends, max_batches±1). With two CFGs, two --fork or two --gpus values it
    compares the two schedules batch by batch instead and lists where they differ.

    \b
    Example:
      cfgsched diff sample_cfgs/yolov4.cfg
    """
    from cfgsched.tools import diff as lib

    try:
        tol = lib.Tolerance.parse(tolerance)
    except ValueError as exc:
        raise clikit.fail(f"--tolerance: {exc}") from None
    if len(cfgs) > 2 or len(forks) > 2 or len(gpus) > 2:
        raise clikit.fail("compare at most two cfgs, two --fork or two --gpus values")
    if cfgs.count("-") > 1:
        raise clikit.fail("'-' (stdin) can be given only once")
    pair = len(cfgs) == 2 or len(forks) == 2 or len(gpus) == 2
    fork_a = forks[0] if forks else "alexeyab"
    fork_b = forks[-1] if forks else "alexeyab"
    g_a = gpus[0] if gpus else 1
    g_b = gpus[-1] if gpus else 1
    if pair:
        if module is not None or style != "class":
            raise clikit.fail("--style/--module test a torch scheduler: give one cfg")
        path_a, path_b = cfgs[0], cfgs[-1]
        text_a, src_a = clikit.read_cfg_text(path_a)
        from cfgsched.reader.parser import parse

        a = parse(text_a, fork=fork_a, source=src_a)
        if path_b == path_a:
            b = parse(text_a, fork=fork_b, source=src_a)
        else:
            b = _parse(path_b, fork_b)
        report = lib.diff_schedules(
            a,
            b,
            labels=(_label(path_a, fork_a, g_a), _label(path_b, fork_b, g_b)),
            gpus=(g_a, g_b),
            tolerance=tol,
            exhaustive=exhaustive,
        )
    else:
        schedule = _parse(cfgs[0], fork_a)
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
            report = lib.diff_torch(
                schedule,
                style=style,
                module=module,
                ngpus=g_a,
                tolerance=tol,
                exhaustive=exhaustive,
                progress=progress,
            )
        except NotExactError as exc:
            if bar is not None:
                bar.__exit__(None, None, None)
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "schema": lib.SCHEMA,
                            "equal": False,
                            "exit_code": 1,
                            "not_exact": {"batch": exc.batch, "reason": exc.reason},
                        },
                        indent=2,
                    )
                )
            click.echo(f"cfgsched: {exc}", err=True)
            sys.exit(1)
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.format_text())
    sys.exit(report.exit_code)
