"""``cfgsched plot``: draw darknet learning-rate schedules (one or several overlaid)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cfgsched.cli import kit as clikit
from cfgsched.schedule import FORKS

#: (option, help) for every [net] schedule key that has its own option.
_SCHEDULE_OPTIONS: tuple[tuple[str, str], ...] = (
    (
        "policy",
        "learning_rate_policy: constant step steps exp poly sigmoid random sgdr",
    ),
    ("learning-rate", "learning_rate"),
    ("max-batches", "max_batches (last darknet update)"),
    ("burn-in", "burn_in (batches of lr·(b/burn_in)^power warm-up)"),
    ("power", "power (burn-in, poly and random)"),
    ("steps", "steps, comma separated (steps policy)"),
    ("scales", "scales, comma separated (steps policy)"),
    ("step", "step (step policy period, sigmoid midpoint)"),
    ("scale", "scale (step policy factor)"),
    ("gamma", "gamma (exp, sigmoid)"),
    ("sgdr-cycle", "sgdr_cycle (first cycle length)"),
    ("sgdr-mult", "sgdr_mult (cycle length multiplier, integer)"),
    ("learning-rate-min", "learning_rate_min (sgdr)"),
    ("batch", "batch (images per iteration, for --x images)"),
    ("subdivisions", "subdivisions"),
)


def _schedule_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for name, help_text in reversed(_SCHEDULE_OPTIONS):
        dest = "opt_" + name.replace("-", "_")
        func = click.option(
            f"--{name}",
            dest,
            multiple=True,
            metavar="X",
            help=f"Set {help_text}; repeat to overlay variants.",
        )(func)
    return func


@click.command(
    "plot",
    epilog="""\b
Examples:
  cfgsched plot sample_cfgs/yolov4.cfg -o yolov4-lr.png
  cfgsched plot yolov4.cfg yolov4-4gpu.cfg --log          # overlay two cfgs
  cfgsched plot --policy poly --power 4 --learning-rate 0.01 \\
      --max-batches 392480 --max-batches 700000            # two variants
  cfgsched plot sgdr.cfg --fork pjreddie --fork alexeyab -o forks.svg
  cfgsched plot yolov4.cfg --vs torch --from 1 --to 5000  # + PyTorch error panel

\b
Marks burn-in end, steps, sgdr cycle ends and max_batches with the LR there;
shades NaN, infinite, zero and negative LR. Large ranges are drawn as a
min/max envelope per pixel column, so one-batch spikes stay visible.""",
)
@click.argument("cfgs", nargs=-1, metavar="[CFG ...]")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set any [net] key (repeat a key to overlay variants).",
)
@_schedule_options
@click.option(
    "--fork",
    "forks",
    multiple=True,
    type=click.Choice(FORKS),
    help="darknet fork (default alexeyab); repeat to overlay forks.",
)
@click.option(
    "--gpus",
    "gpus",
    multiple=True,
    type=click.IntRange(min=1),
    help="darknet -gpus count (LR × N where the fork does it); repeat to overlay.",
)
@click.option(
    "--from", "first", type=click.IntRange(min=0), help="First batch [default: 1]."
)
@click.option(
    "--to",
    "last",
    type=click.IntRange(min=0),
    help="Last batch [default: max_batches].",
)
@click.option(
    "--log", is_flag=True, help="Logarithmic LR axis (LR ≤ 0 is shaded and noted)."
)
@click.option(
    "--x",
    "x_unit",
    type=click.Choice(["batches", "images", "epochs"]),
    default="batches",
    show_default=True,
    help="x axis unit (epochs needs --images).",
)
@click.option(
    "--images", type=click.IntRange(min=1), help="Images in the data set (epochs)."
)
@click.option(
    "--vs", "vs", type=click.Choice(["torch"]), help="Add DarknetLR and its error."
)
@click.option("--title", help="Figure title [default: cfg names and forks].")
@click.option(
    "-o",
    "--output",
    default=None,
    help="Image file: .png, .svg or .pdf [default: lr_schedule.png]; - is PNG on stdout.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--show", is_flag=True, help="Open a window (writes a file only with -o)."
)
@clikit.one_line_errors
def plot(
    cfgs: tuple[str, ...],
    sets: tuple[str, ...],
    forks: tuple[str, ...],
    gpus: tuple[int, ...],
    first: int | None,
    last: int | None,
    log: bool,
    x_unit: str,
    images: int | None,
    vs: str | None,
    title: str | None,
    output: str | None,
    force: bool,
    show: bool,
    **schedule_opts: tuple[str, ...],
) -> None:
    """Plot the learning rate darknet uses at every batch of a cfg's schedule.

    Without a CFG it starts from darknet's defaults. Several CFGs, or a repeated option,
    --fork or --gpus, overlay their curves with a legend naming what differs.

    \b
    Example:
      cfgsched plot sample_cfgs/yolov4.cfg -o yolov4-lr.png
    """
    from cfgsched.tools import plot as lib

    options: dict[str, list[str]] = {}
    for dest, values in schedule_opts.items():
        key = lib.OPTION_KEYS[dest.removeprefix("opt_")]
        options.setdefault(key, []).extend(values)
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise clikit.fail(f"--set {item!r}: expected KEY=VALUE")
        options.setdefault(key.strip(), []).append(value)
    if cfgs.count("-") > 1:
        raise clikit.fail("'-' (stdin) can be given only once")
    texts = [clikit.read_cfg_text(path) for path in cfgs]
    variants = lib.build_variants(
        texts, forks=forks or ("alexeyab",), gpus=gpus or (1,), options=options
    )
    for v in variants:
        for line in lib.warning_lines(v):
            click.echo(f"warning: {line}", err=True)
    target = output if output is not None else (None if show else "lr_schedule.png")
    fmt = "png" if target in (None, "-") else lib.output_format(target)
    data = lib.plot_data(
        variants,
        first=first,
        last=last,
        log=log,
        x=x_unit,
        images=images,
        vs_torch=vs == "torch",
        title=title,
    )
    if show:
        import matplotlib.pyplot as plt

        fig = lib.draw(data, figure=plt.figure(layout="constrained"))
    else:
        fig = lib.draw(data)
    if target is not None:
        with clikit.atomic_output(target, force=force, binary=True) as fh:
            lib.save(fig, fh, fmt)
        if target != "-":
            click.echo(f"wrote {target}", err=True)
    if show:
        plt.show()
