"""``cfgsched plot``: draw darknet learning-rate schedules (one or several overlaid)."""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cfgsched.cli import kit as clikit
from cfgsched.files import escape
from cfgsched.reader.parser import policies
from cfgsched.schedule import FORKS
from cfgsched.text import counted
from cfgsched.tools import plot_choices as choices

if TYPE_CHECKING:
    from cfgsched.tools import plot as lib

#: (option, help) for every [net] schedule key that has its own option.
_SCHEDULE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("policy", "learning_rate_policy: " + " ".join(policies("alexeyab"))),
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
#: ``--help`` sections (click has none built in: :class:`_SectionedCommand` lists them),
#: each from its first parameter on (the options are declared section by section).
_SECTIONS = {
    "sets": "What-ifs (edit the cfg as adjust does; repeat a value to overlay)",
    "forks": "Translation (as convert, diff and explain)",
    "first": "Axes",
    "output": "Output",
}
#: The ``--tensorboard`` event file and the outputs plot writes (and may replace).
_OURS_TB = clikit.made_by_cfgsched(b"cfgsched plot")
_ours = clikit.made_by_cfgsched(*choices.OUTPUT_MARKERS)


class _SectionedCommand(click.Command):
    """A command whose ``--help`` lists its options in :data:`_SECTIONS`."""

    def format_options(self, ctx: click.Context, out: click.HelpFormatter) -> None:
        rows: dict[str, list[tuple[str, str]]] = {}
        title = ""
        for param in self.get_params(ctx):
            title = _SECTIONS.get(param.name or "", title)
            record = param.get_help_record(ctx)
            if record is not None and isinstance(param, click.Option):
                rows.setdefault(title, []).append(record)
        for title, records in rows.items():
            with out.section(title):
                out.write_dl(records)


def _schedule_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for name, help_text in reversed(_SCHEDULE_OPTIONS):
        dest = "opt_" + name.replace("-", "_")
        func = click.option(f"--{name}", dest, multiple=True, metavar="X",
                            help=f"Set {help_text}.")(func)  # fmt: skip
    return func


def _target(
    output: str | None, fmt: str | None, others: bool
) -> tuple[str | None, str]:
    """The output path (None: no file, as ``others`` is the output) and its format."""
    if output is None:
        path = None if others and fmt is None else f"lr_schedule.{fmt or 'png'}"
        return path, fmt or "png"
    if fmt is None and output != "-":
        return output, choices.output_format(output)
    ext = Path(output).suffix.lower().lstrip(".")  # "-": none
    if ext in choices.FORMATS + choices.DATA_FORMATS and ext != fmt:
        raise clikit.fail(f"-o {output}: the extension says {ext}, --format says {fmt}")
    return output, fmt or "png"


def _check_display() -> None:
    """``--show`` needs a display and an interactive matplotlib backend."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise clikit.fail("--show: no display (DISPLAY and WAYLAND_DISPLAY are unset); "
                          "write a file with -o FILE")  # fmt: skip
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


def _tensorboard_path(folder: str, tag: str, target: str | None) -> str:
    """The event file ``--tensorboard`` writes, checked before anything is written."""
    try:
        for name in ("compat.proto.event_pb2", "summary.writer.record_writer"):
            importlib.import_module(f"tensorboard.{name}")
    except ImportError:
        raise clikit.fail("--tensorboard needs the tensorboard package: "
                          "pip install 'cfgsched[tensorboard]'") from None  # fmt: skip
    if not tag.strip():
        raise clikit.fail("--tensorboard-tag: must not be empty")
    if target is not None and os.path.abspath(folder) == os.path.abspath(target):
        raise clikit.fail(f"--tensorboard {folder}: the same path as -o")
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
    path = os.path.join(folder, f"{choices.TENSORBOARD_FILE}.{slug}")
    if os.path.isdir(folder):
        clikit.check_target(path, False, _OURS_TB)
    return path


def _wrote(path: str, what: str = "") -> None:
    """Say on stderr that ``path`` (not stdout) was written, and what it holds."""
    if path != "-":
        click.echo(escape(f"wrote {path}{what}"), err=True)


def _figure(variants: list[lib.Variant], rng: dict[str, Any], args: Any) -> Any:
    """The figure of ``variants`` (on pyplot with ``--show``); the fit reports to stderr."""
    from cfgsched.tools import plot as lib

    tr = args["translation"]  # --vs ultralytics-hyp's batch: --torch-batch × world
    batch = tr.torch_batch * (tr.world_size or 1) if tr.torch_batch else None
    data = lib.plot_data(variants, log=args["log"], vs=args["vs"], batch=batch,
                         title=args["title"], **rng)  # fmt: skip
    for line in (e.summary for e in data.errors if e.unit == "rel"):  # fit reports
        click.echo(escape(line), err=True)
    if not args["show"]:
        return lib.draw(data)
    import matplotlib.pyplot as plt

    return lib.draw(data, figure=plt.figure(layout="constrained"))


@click.command(
    "plot",
    cls=_SectionedCommand,
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
a first phase too short to see in the whole run (burn-in) gets a zoomed panel.
Shades NaN, infinite, zero and negative LR. Large ranges are drawn as a
min/max envelope per pixel column, so one-batch spikes stay visible.
The LR is what the run translated by the translation options trains with
(as convert's module); --x steps puts the curve on 0-based optimizer steps.
Without a CFG the curve is AlexeyAB's detector recipe (learning_rate 0.001,
burn_in 1000, steps at 80% and 90% of max_batches, scales .1,.1).
A file plot wrote before is replaced; any other file needs --force.""",
)
@click.argument("cfgs", nargs=-1, metavar="[CFG ...]")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Set a [net] schedule key (the keys adjust edits; repeat a key to "
              "overlay variants).")  # fmt: skip
@_schedule_options
@click.option("--rescale-steps", is_flag=True,
              help="With --max-batches: move the cfg's steps to the same fractions of "
              "the new max_batches (default: keep them).")  # fmt: skip
@click.option("--fork", "forks", multiple=True, type=click.Choice(FORKS),
              help="darknet fork (default alexeyab); repeat to overlay forks.")  # fmt: skip
@functools.partial(clikit.translation_options, gpu_counts=True)
@click.option("--from", "first", type=clikit.Count(0, choices.MAX_POSITION),
              help="First batch (step with --x steps) [default: 1, or the first "
              "step].")  # fmt: skip
@click.option("--to", "last", type=clikit.Count(0, choices.MAX_POSITION),
              help="Last batch (step with --x steps) [default: the end of the run].")  # fmt: skip
@click.option(
    "--log", is_flag=True, help="Logarithmic LR axis (LR ≤ 0 is shaded and noted)."
)
@click.option("--x", "x_unit", type=click.Choice(choices.X_UNITS), default="batches",
              show_default=True,
              help="x axis unit (epochs needs --images; steps: optimizer steps).")  # fmt: skip
@click.option("--images", type=clikit.Count(1, choices.MAX_POSITION),
              help="Images in the data set (--x epochs, the epoch column, "
              "--vs ultralytics-hyp).")  # fmt: skip
@click.option("--vs", "vs", type=click.Choice(["torch", *choices.APPROXIMATIONS]),
              help="Overlay with an error panel: torch (DarknetLR stepped for real, ulps), "
              "mmengine (MMEngine's built-in schedulers fitted to darknet's), "
              "ultralytics-hyp (Ultralytics' lr0/lrf/cos_lr/warmup fitted; needs --images "
              "and --torch-batch). The fits are approximations: their relative error is "
              "drawn and printed.")  # fmt: skip
@click.option("--title", help="Figure title [default: cfg names and forks].")
@click.option("-o", "--output", default=None,
              help="Output file: a figure (.png, .svg, .pdf) or the LR series (.csv, "
              ".json: step, batch, epoch, lr per optimizer step) [default: "
              "lr_schedule.png]; - is stdout (PNG unless --format).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice([*choices.FORMATS, *choices.DATA_FORMATS]),
              help="Output format [default: from the -o extension].")  # fmt: skip
@click.option("--tensorboard", "tb_dir", metavar="DIR",
              help="Write the LR series as TensorBoard scalars into DIR (global_step = "
              "0-based optimizer step; needs pip install 'cfgsched[tensorboard]').")  # fmt: skip
@click.option("--tensorboard-tag", "tb_tag", default="darknet/lr", show_default=True,
              metavar="TAG",
              help="Scalar tag of --tensorboard (use your run's LR tag to share its "
              "chart).")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--show", is_flag=True, help="Open a window (writes a file only with -o)."
)
@clikit.one_line_errors
def plot(cfgs: tuple[str, ...], **args: Any) -> None:
    """Plot the learning rate darknet uses at every batch of a cfg's schedule, or write
    it as a series (CSV, JSON, TensorBoard). Several CFGs, or a repeated option, --fork
    or --gpus, overlay their curves with a legend naming what differs."""
    from cfgsched.tools import export
    from cfgsched.tools import plot as lib

    show, force = args["show"], args["force"]
    tb_dir, tb_tag = args["tb_dir"], args["tb_tag"]
    if show:
        _check_display()
    target, kind = _target(args["output"], args["fmt"], show or tb_dir is not None)
    tb_path = None if tb_dir is None else _tensorboard_path(tb_dir, tb_tag, target)
    image = target if kind in choices.FORMATS else None
    series = target if kind in choices.DATA_FORMATS else None
    if args["vs"] is not None and not (show or image):
        where = f"-o {target}" if target is not None else "--tensorboard"
        raise clikit.fail(f"--vs overlays a figure: not with {where} alone")
    variants, changed = _variants(cfgs, args)
    rng: dict[str, Any] = {"first": args["first"], "last": args["last"],
                           "x": args["x_unit"], "images": args["images"]}  # fmt: skip
    if target not in (None, "-"):  # everything is checked and computed first
        clikit.check_target(target, force, _ours)
    lrs = None
    if series is not None or tb_path is not None:
        if len(variants) != 1:
            what = "--tensorboard" if series is None else f"-o {series}"
            why = f"the cfgs and options give {len(variants)}; drop the overlaid values"
            raise clikit.fail(f"{what} holds one curve: {why}")
        lrs = export.export_series(variants[0], **rng)
    fig = _figure(variants, rng, args) if show or image else None
    if series is not None and lrs is not None:
        write = export.write_csv if kind == "csv" else export.write_json
        with clikit.atomic_output(series, force=force, ours=_ours) as fh:
            write(fh, lrs)
        _wrote(series, f" ({counted(lrs.rows, 'row')}, {lrs.resolution} resolution)")
    if image is not None:
        with clikit.atomic_output(image, force=force, binary=True, ours=_ours) as fh:
            lib.save(fig, fh, kind)
        _wrote(image)
    if tb_path is not None and lrs is not None:
        os.makedirs(os.path.dirname(tb_path), exist_ok=True)
        with clikit.atomic_output(
            tb_path, force=False, binary=True, ours=_OURS_TB
        ) as fh:
            n = export.write_tensorboard(fh, lrs, tb_tag)
        tags = tb_tag if lrs.resolution == "full" else f"{tb_tag}_min and {tb_tag}_max"
        _wrote(tb_path, f" ({counted(n, 'scalar')}, {tags})")
    if not cfgs:
        click.echo(escape(lib.recipe_note(variants, changed)), err=True)
    if show:
        import matplotlib.pyplot as plt

        plt.show()


def _variants(cfgs: tuple[str, ...], args: dict[str, Any]) -> tuple[list[Any], bool]:
    """The curves (warnings to stderr) and whether options changed the cfgs: ``[net]``
    key -> values from the schedule options and ``--set KEY=VALUE``."""
    from cfgsched.tools import plot as lib

    changes: dict[str, list[str]] = {}
    for dest, values in args.items():
        if dest.startswith("opt_") and values:
            changes.setdefault(dest.removeprefix("opt_"), []).extend(values)
    for item in args["sets"]:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise clikit.fail(f"--set {item!r}: expected KEY=VALUE")
        changes.setdefault(key.strip(), []).append(value)
    if args["rescale_steps"] and not changes.get("max_batches"):
        raise clikit.fail("--rescale-steps needs --max-batches N (the new run length)")
    if cfgs.count("-") > 1:
        raise clikit.fail("'-' (stdin) can be given only once")
    counts: tuple[int, ...] = args["gpu_counts"]
    tr: clikit.TranslationArgs = args["translation"]
    variants = lib.build_variants(
        [clikit.read_cfg_text(path) for path in cfgs], forks=args["forks"], gpus=counts,
        options=changes, recipe=True, rescale=args["rescale_steps"],
        translation=lambda s, n: replace(tr, gpus=n if counts else None).options(s),
    )  # fmt: skip
    for line in lib.warning_lines(variants):
        clikit.warn(line)
    return variants, bool(changes)
