"""``cfgsched plot``: draw darknet learning-rate schedules (one or several overlaid)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cfgsched.cli import kit as clikit
from cfgsched.files import escape
from cfgsched.schedule import FORKS

if TYPE_CHECKING:
    from cfgsched.options import Options
    from cfgsched.schedule import NetSchedule

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
        if values:
            out.setdefault(OPTION_KEYS[dest.removeprefix("opt_")], []).extend(values)
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise clikit.fail(f"--set {item!r}: expected KEY=VALUE")
        out.setdefault(key.strip(), []).append(value)
    return out


def _ours(path: Path) -> bool:
    """Whether ``path`` is an output of ``cfgsched plot`` (it may be replaced)."""
    from cfgsched.tools.plot import OUTPUT_MARKERS

    return any(clikit.made_by_cfgsched(m)(path) for m in OUTPUT_MARKERS)


def _target(
    output: str | None, fmt: str | None, others: bool
) -> tuple[str | None, str]:
    """The output path (None: no file) and its format: ``--format``, else the extension
    of ``-o`` (``-`` is PNG); without ``-o`` lr_schedule.FORMAT unless ``others`` (``--show``
    or ``--tensorboard``) is the output."""
    from cfgsched.tools import plot as lib

    if output is None:
        return (None if others and fmt is None else f"lr_schedule.{fmt or 'png'}"), (
            fmt or "png"
        )
    if output == "-":
        return output, fmt or "png"
    ext = Path(output).suffix.lower().lstrip(".")
    if fmt is None:
        return output, lib.output_format(output)
    if ext in lib.FORMATS + lib.DATA_FORMATS and ext != fmt:
        raise clikit.fail(f"-o {output}: the extension says {ext}, --format says {fmt}")
    return output, fmt


def _check_display() -> None:
    """``--show`` needs a display and an interactive matplotlib backend (checked before
    any work: never exit 0 without a window)."""
    import os
    import sys

    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise clikit.fail(
            "--show: no display (DISPLAY and WAYLAND_DISPLAY are unset); "
            "write a file with -o FILE"
        )
    import matplotlib
    import matplotlib.pyplot
    from matplotlib.backends.registry import BackendFilter, backend_registry

    backend = matplotlib.get_backend()
    builtin: Any = backend_registry.list_builtin
    if backend.lower() in builtin(BackendFilter.NON_INTERACTIVE):
        raise clikit.fail(
            f"--show: matplotlib's backend {backend!r} cannot open a window (no usable "
            "display, or MPLBACKEND); write a file with -o FILE"
        )


def _check_tensorboard() -> None:
    """``--tensorboard`` needs the optional ``tensorboard`` package."""
    import importlib

    try:
        for name in ("compat.proto.event_pb2", "summary.writer.record_writer"):
            importlib.import_module(f"tensorboard.{name}")
    except ImportError:
        raise clikit.fail(
            "--tensorboard needs the tensorboard package: "
            "pip install 'cfgsched[tensorboard]'"
        ) from None


def _one_curve(variants: list[Any], what: str) -> Any:
    if len(variants) != 1:
        raise clikit.fail(
            f"{what} holds one curve: the cfgs and options give {len(variants)}; "
            "drop the overlaid values"
        )
    return variants[0]


def _write_series(lrs: Any, target: str, fmt: str, force: bool) -> None:
    """Write the LR series ``lrs`` as CSV or JSON to ``target`` atomically."""
    from cfgsched.tools import series

    write = series.write_csv if fmt == "csv" else series.write_json
    with clikit.atomic_output(target, force=force, ours=_ours) as fh:
        write(fh, lrs)
    if target != "-":
        what = series.counted(lrs.rows, "row")
        click.echo(f"wrote {target} ({what}, {lrs.resolution} resolution)", err=True)


def _write_tensorboard(lrs: Any, folder: str, tag: str) -> None:
    """Write the LR series ``lrs`` as TensorBoard scalars ``tag`` into ``folder``."""
    import os
    import re

    from cfgsched.tools import series

    os.makedirs(folder, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
    path = os.path.join(folder, f"{series.TENSORBOARD_FILE}.{slug}")
    ours = clikit.made_by_cfgsched(b"cfgsched plot")
    with clikit.atomic_output(path, force=False, binary=True, ours=ours) as fh:
        n = series.write_tensorboard(fh, lrs, tag)
    tags = tag if lrs.resolution == "full" else f"{tag}_min and {tag}_max"
    click.echo(f"wrote {path} ({series.counted(n, 'scalar')}, {tags})", err=True)


def _draw(data: Any, show: bool) -> Any:
    """The figure of ``data`` (a pyplot figure for ``--show``)."""
    from cfgsched.tools import plot as lib

    if not show:
        return lib.draw(data)
    import matplotlib.pyplot as plt

    return lib.draw(data, figure=plt.figure(layout="constrained"))


def _write_figure(fig: Any, target: str, fmt: str, force: bool) -> None:
    """Write ``fig`` as ``fmt`` to ``target`` (``-``: stdout) atomically."""
    from cfgsched.tools import plot as lib

    with clikit.atomic_output(target, force=force, binary=True, ours=_ours) as fh:
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
  cfgsched plot yolov4.cfg --torch-batch 16 -o lr.csv     # the LR of every step
  cfgsched plot yolov4.cfg --tensorboard runs/darknet     # TensorBoard scalars
  cfgsched plot yolov4.cfg --vs mmengine                  # + MMEngine approximation
  cfgsched plot yolov4.cfg --vs ultralytics-hyp --images 118287 --torch-batch 16

\b
Marks burn-in end, steps, sgdr cycle ends and max_batches with the LR there;
shades NaN, infinite, zero and negative LR. Large ranges are drawn as a
min/max envelope per pixel column, so one-batch spikes stay visible.
The LR is what the run translated by the translation options trains with
(as convert's module); --x steps puts the curve on 0-based optimizer steps.
Without a CFG the curve is AlexeyAB's detector recipe (learning_rate 0.001,
burn_in 1000, steps at 80% and 90% of max_batches, scales .1,.1).
A file plot wrote before is replaced; any other file needs --force.""",
)
@click.argument("cfgs", nargs=-1, metavar="[CFG ...]")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a [net] schedule key (the keys adjust edits; repeat a key to overlay "
    "variants).",
)
@_schedule_options
@click.option(
    "--rescale-steps",
    is_flag=True,
    help="With --max-batches: move the cfg's steps to the same fractions of the new "
    "max_batches (default: keep them).",
)
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
    help="Images in the data set (--x epochs, the epoch column, --vs ultralytics-hyp).",
)
@click.option(
    "--vs",
    "vs",
    type=click.Choice(["torch", "mmengine", "ultralytics-hyp"]),
    help="Overlay with an error panel: torch (DarknetLR stepped for real, ulps), "
    "mmengine (MMEngine's built-in schedulers fitted to darknet's), ultralytics-hyp "
    "(Ultralytics' lr0/lrf/cos_lr/warmup fitted; needs --images and --torch-batch). "
    "The fits are approximations: their relative error is drawn and printed.",
)
@click.option("--title", help="Figure title [default: cfg names and forks].")
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output file: a figure (.png, .svg, .pdf) or the LR series (.csv, .json: "
    "step, batch, epoch, lr per optimizer step) [default: lr_schedule.png]; - is "
    "stdout (PNG unless --format).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "svg", "pdf", "csv", "json"]),
    help="Output format [default: from the -o extension].",
)
@click.option(
    "--tensorboard",
    "tb_dir",
    metavar="DIR",
    help="Write the LR series as TensorBoard scalars into DIR (global_step = 0-based "
    "optimizer step; needs pip install 'cfgsched[tensorboard]').",
)
@click.option(
    "--tensorboard-tag",
    "tb_tag",
    default="darknet/lr",
    show_default=True,
    metavar="TAG",
    help="Scalar tag of --tensorboard (use your run's LR tag to share its chart).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--show", is_flag=True, help="Open a window (writes a file only with -o)."
)
@clikit.one_line_errors
def plot(
    cfgs: tuple[str, ...],
    sets: tuple[str, ...],
    rescale_steps: bool,
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
    fmt: str | None,
    tb_dir: str | None,
    tb_tag: str,
    force: bool,
    show: bool,
    **schedule_opts: tuple[str, ...],
) -> None:
    """Plot the learning rate darknet uses at every batch of a cfg's schedule, or write
    it as a series (CSV, JSON, TensorBoard).

    Without a CFG it draws AlexeyAB's detector recipe. Several CFGs, or a repeated
    option, --fork or --gpus, overlay their curves with a legend naming what differs.

    \b
    Example:
      cfgsched plot sample_cfgs/yolov4.cfg -o yolov4-lr.png
    """
    from cfgsched.tools import plot as lib

    if show:
        _check_display()
    if tb_dir is not None:
        _check_tensorboard()
        if not tb_tag.strip():
            raise clikit.fail("--tensorboard-tag: must not be empty")
    target, kind = _target(output, fmt, show or tb_dir is not None)
    figure = show or (target is not None and kind in lib.FORMATS)
    if vs is not None and not figure:
        where = f"-o {target}" if target is not None else "--tensorboard"
        raise clikit.fail(f"--vs overlays a figure: not with {where} alone")
    variants, changed = _variants(cfgs, sets, rescale_steps, forks, gpu_counts,
                                  translation, schedule_opts)  # fmt: skip
    rng: dict[str, Any] = dict(first=first, last=last, x=x_unit, images=images)
    data_file = target if kind in lib.DATA_FORMATS else None
    if tb_dir is not None and target is not None and _same_path(tb_dir, target):
        raise clikit.fail(f"--tensorboard {tb_dir}: the same path as -o")
    # everything that can fail is computed before anything is written
    lrs = None
    if data_file is not None or tb_dir is not None:
        what = "--tensorboard" if data_file is None else f"-o {data_file}"
        lrs = lib.export_series(_one_curve(variants, what), **rng)
    data = None
    if figure:
        data = lib.plot_data(variants, log=log, vs_torch=vs == "torch", title=title,
                             approx=_approx(vs, images, translation), **rng)  # fmt: skip
        for line in data.reports:
            click.echo(escape(line), err=True)
    if data_file is not None:
        _write_series(lrs, data_file, kind, force)
    if data is not None:
        fig = _draw(data, show)
        if target is not None and kind in lib.FORMATS:
            _write_figure(fig, target, kind, force)
    if tb_dir is not None:
        _write_tensorboard(lrs, tb_dir, tb_tag)
    if not cfgs:
        click.echo(escape(lib.recipe_note(variants, changed)), err=True)
    if show:
        import matplotlib.pyplot as plt

        plt.show()


def _same_path(a: str, b: str) -> bool:
    """Whether two output paths name the same place."""
    import os

    return os.path.abspath(a) == os.path.abspath(b)


def _approx(
    vs: str | None, images: int | None, translation: clikit.TranslationArgs
) -> Any:
    """The ``--vs`` approximation request (Ultralytics' batch: --torch-batch × world)."""
    from cfgsched.tools import plot as lib

    if vs not in lib.APPROXIMATIONS:
        return None
    batch = translation.torch_batch
    return lib.Approx(
        vs, images, batch * (translation.world_size or 1) if batch else None
    )


def _variants(
    cfgs: tuple[str, ...],
    sets: tuple[str, ...],
    rescale: bool,
    forks: tuple[str, ...],
    gpu_counts: tuple[int, ...],
    translation: clikit.TranslationArgs,
    schedule_opts: dict[str, tuple[str, ...]],
) -> tuple[list[Any], bool]:
    """Read the cfgs and build the curves (warnings to stderr); whether options changed
    the cfgs."""
    from cfgsched.tools import plot as lib

    changes = _changes(schedule_opts, sets)
    if rescale and not changes.get("max_batches"):
        raise clikit.fail("--rescale-steps needs --max-batches N (the new run length)")
    if cfgs.count("-") > 1:
        raise clikit.fail("'-' (stdin) can be given only once")
    texts = [clikit.read_cfg_text(path) for path in cfgs]
    variants = lib.build_variants(
        texts,
        forks=forks or ("alexeyab",),
        gpus=gpu_counts or (1,),
        options=changes,
        translation=_translation_for(translation, gpu_counts),
        recipe=True,
        rescale=rescale,
    )
    for line in lib.warning_lines(variants):
        clikit.warn(line)
    return variants, bool(changes)
