"""``cfgsched plot``: draw darknet learning-rate schedules (one or several overlaid)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from cfgsched.cli import kit as clikit
from cfgsched.schedule import FORKS

if TYPE_CHECKING:
    from cfgsched.schedule import NetSchedule
    from cfgsched.translation import Options

#: Largest --from/--to (batches or steps) and --images.
MAX_POSITION = 1 << 62

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


def _translation_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The shared translation options (``clikit.translation_options``), with ``--gpus``
    repeatable: the command gets ``gpu_counts`` (one curve per count) and a
    ``translation`` without ``gpus``."""
    inner: Any = clikit.translation_options(func)
    params = inner.__click_params__  # the click.Option objects of the shared options
    k = next(i for i, p in enumerate(params) if p.name == "gpus")
    shared = params[k]
    params[k] = click.Option(
        shared.opts,
        type=shared.type,
        metavar=shared.metavar,
        multiple=True,
        help=f"{shared.help} Repeat to overlay GPU counts.",
    )

    @functools.wraps(inner)
    def outer(*args: Any, gpus: tuple[int, ...], **kwargs: Any) -> Any:
        return inner(*args, gpus=None, gpu_counts=gpus, **kwargs)

    return outer


def _translation_for(
    translation: clikit.TranslationArgs, counts: tuple[int, ...]
) -> Callable[[NetSchedule, int], Options]:
    """Each curve's validated options: the shared ones with its ``--gpus`` count."""

    def options(schedule: NetSchedule, ngpus: int) -> Options:
        return replace(translation, gpus=ngpus if counts else None).options(schedule)

    return options


def _changes(
    schedule_opts: dict[str, tuple[str, ...]], sets: tuple[str, ...]
) -> dict[str, list[str]]:
    """``[net]`` key -> values from the schedule options and ``--set KEY=VALUE``."""
    from cfgsched.tools.plot import OPTION_KEYS

    out: dict[str, list[str]] = {}
    for dest, values in schedule_opts.items():
        out.setdefault(OPTION_KEYS[dest.removeprefix("opt_")], []).extend(values)
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise clikit.fail(f"--set {item!r}: expected KEY=VALUE")
        out.setdefault(key.strip(), []).append(value)
    return out


def _output(fig: Any, target: str | None, force: bool) -> None:
    """Write ``fig`` to ``target`` (``-``: PNG on stdout) atomically."""
    from cfgsched.tools import plot as lib

    if target is None:
        return
    fmt = "png" if target == "-" else lib.output_format(target)
    with clikit.atomic_output(target, force=force, binary=True) as fh:
        lib.save(fig, fh, fmt)
    if target != "-":
        click.echo(f"wrote {target}", err=True)


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
  cfgsched plot yolov4.cfg --x steps --torch-batch 16     # what the torch run sees

\b
Marks burn-in end, steps, sgdr cycle ends and max_batches with the LR there;
shades NaN, infinite, zero and negative LR. Large ranges are drawn as a
min/max envelope per pixel column, so one-batch spikes stay visible.
The LR is what the run translated by the translation options trains with
(as convert's module); --x steps puts the curve on 0-based optimizer steps.""",
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
@_translation_options
@click.option(
    "--from",
    "first",
    type=click.IntRange(0, MAX_POSITION),
    help="First batch (step with --x steps) [default: 1, or the first step].",
)
@click.option(
    "--to",
    "last",
    type=click.IntRange(0, MAX_POSITION),
    help="Last batch (step with --x steps) [default: the end of the run].",
)
@click.option(
    "--log", is_flag=True, help="Logarithmic LR axis (LR ≤ 0 is shaded and noted)."
)
@click.option(
    "--x",
    "x_unit",
    type=click.Choice(["batches", "images", "epochs", "steps"]),
    default="batches",
    show_default=True,
    help="x axis unit (epochs needs --images; steps: optimizer steps).",
)
@click.option(
    "--images",
    type=click.IntRange(1, MAX_POSITION),
    help="Images in the data set (epochs).",
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
    gpu_counts: tuple[int, ...],
    translation: clikit.TranslationArgs,
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

    changes = _changes(schedule_opts, sets)
    if cfgs.count("-") > 1:
        raise clikit.fail("'-' (stdin) can be given only once")
    texts = [clikit.read_cfg_text(path) for path in cfgs]
    variants = lib.build_variants(
        texts,
        forks=forks or ("alexeyab",),
        gpus=gpu_counts or (1,),
        options=changes,
        translation=_translation_for(translation, gpu_counts),
    )
    for v in variants:
        for line in lib.warning_lines(v):
            click.echo(f"warning: {line}", err=True)
    target = output if output is not None else (None if show else "lr_schedule.png")
    if target not in (None, "-"):
        lib.output_format(target)  # a bad extension fails before any work
    data = lib.plot_data(
        variants, first=first, last=last, log=log, x=x_unit, images=images,
        vs_torch=vs == "torch", title=title,
    )  # fmt: skip
    if show:
        import matplotlib.pyplot as plt

        fig = lib.draw(data, figure=plt.figure(layout="constrained"))
    else:
        fig = lib.draw(data)
    _output(fig, target, force)
    if show:
        plt.show()
