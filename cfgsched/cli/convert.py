"""``cfgsched convert``: a cfg's schedule as a standalone PyTorch module (or Lightning,
JSON, Ultralytics, MMEngine), or a framework's own schedule fitted to it."""

from __future__ import annotations

import click

from cfgsched.cli import kit as clikit
from cfgsched.errors import NotExactError
from cfgsched.kernel.formulas import HANKAI_GPUS
from cfgsched.options import Options
from cfgsched.reader.parser import parse
from cfgsched.schedule import NetSchedule

#: --format choices (cfgsched.codegen.FORMATS, kept here so --help imports no codegen).
FORMATS = ("python", "lightning", "json", "ultralytics", "ultralytics-hyp", "mmengine")


@click.command(
    "convert",
    epilog="""\b
Examples:
  cfgsched convert yolov4.cfg -o lr_schedule.py
  cfgsched convert yolov4.cfg --with-optimizer -o lr_schedule.py --force
  cfgsched convert yolov4.cfg --gpus 4 -o lr4.py         # darknet -gpus 4, DDP
  cfgsched convert yolov4.cfg --gpus 4 --ideal           # AlexeyAB's advice for 4 GPUs
  cfgsched convert yolov4.cfg --torch-batch 16 --accumulate 2 --world-size 2
  cfgsched convert yolov4.cfg --resume-from backup/yolov4_last.weights
  cfgsched convert yolov4.cfg --format lightning
  cfgsched convert steps.cfg --style native   # torch built-ins, only when exact
  cfgsched convert yolov4.cfg --format json
  cfgsched convert yolov4.cfg -o m.py && cfgsched diff yolov4.cfg --module m.py
  cfgsched convert yolov4.cfg --with-optimizer --loss-reduction sum -o m.py
  cfgsched convert yolov4.cfg --format ultralytics -o darknet_lr.py
  cfgsched convert yolov4.cfg --format mmengine -o darknet_lr.py
  cfgsched convert yolov4.cfg --format mmengine --style native     # fitted
  cfgsched convert yolov4.cfg --format ultralytics-hyp --images 5000 \\
      --torch-batch 16 --accumulate 4 -o hyp.yaml                   # fitted

\b
Then, in your training script:
  import lr_schedule
  optimizer = torch.optim.SGD(
      model.parameters(),
      lr=lr_schedule.LEARNING_RATE,
      momentum=lr_schedule.MOMENTUM,
      weight_decay=lr_schedule.DECAY,
  )
  scheduler = lr_schedule.build_scheduler(optimizer)
  # each step: optimizer.step(); scheduler.step()

\b
The translation options are recorded in CFGSCHED: cfgsched diff CFG
--module FILE checks the module without repeating them.

\b
--format ultralytics-hyp and --format mmengine --style native are
approximations: their measured error (max and mean relative LR error,
worst step) goes to stderr and into the output.

\b
Exit status: 0 written, 1 no exact native form (--style native),
2 bad cfg, weights file or option, or no approximation (one line).""",
)
@click.argument("cfg", metavar="CFG")
@click.option(
    "-o",
    "--output",
    default="-",
    show_default=True,
    metavar="FILE",
    help="Output file; - is stdout. Written atomically.",
)
@clikit.fork_option()
@clikit.translation_options
@click.option(
    "--style",
    type=click.Choice(["class", "native"]),
    default="class",
    show_default=True,
    help="Closed-form class, or torch built-ins (only when proven exact); with "
    "--format mmengine: MMEngine's built-ins fitted (an approximation).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="python",
    show_default=True,
    help="A standalone Python module, the same with configure_optimizers for "
    "Lightning, the schedule and translation as JSON, a module with attach(model) and "
    "TRAIN_ARGS for Ultralytics, Ultralytics hyperparameters fitted to the schedule "
    "(YAML), or a module registering DarknetParamScheduler for MMEngine.",
)
@click.option(
    "--with-optimizer",
    is_flag=True,
    help="Also define build_optimizer(model): darknet's SGD (or Adam) and decay rule.",
)
@click.option(
    "--loss-reduction",
    type=click.Choice(["mean", "sum"]),
    default="mean",
    show_default=True,
    help="How your loss reduces over a step's images. sum: SGD's LR / N and weight "
    "decay x N (build_optimizer; Ultralytics' LOSS_SCALE), darknet's update.",
)
@click.option(
    "--summed-images",
    type=clikit.Count(1, 1 << 30),
    metavar="N",
    help="With --loss-reduction sum: the images the loss sums over [default: "
    "--torch-batch x --accumulate, else the cfg's batch; Ultralytics: its nbs].",
)
@click.option(
    "--images",
    type=clikit.Count(1, 1 << 40),
    metavar="N",
    help="With --format ultralytics-hyp: images in your training set.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@clikit.one_line_errors
def convert(
    cfg: str,
    output: str,
    fork: str,
    translation: clikit.TranslationArgs,
    style: str,
    fmt: str,
    with_optimizer: bool,
    loss_reduction: str,
    summed_images: int | None,
    images: int | None,
    force: bool,
) -> None:
    """Translate CFG's learning-rate schedule into an exactly equivalent PyTorch scheduler.

    Writes a standalone module (torch and the standard library only): build_scheduler,
    lr_at(step), LEARNING_RATE, MOMENTUM, DECAY, the layer rules (LAYERS, attach_layers)
    and, with --with-optimizer, build_optimizer(model).
    """
    # codegen is imported by the command only, so --help stays free of it
    from cfgsched.codegen import CodegenError, render, written_by_convert

    text, source = clikit.read_cfg_text(cfg)
    schedule = parse(text, fork=fork, source=source)
    for w in schedule.warnings:
        click.echo(f"warning: {w.format(source)}", err=True)
    options = translation.options(schedule)
    if summed_images is None and loss_reduction == "sum" and fmt != "ultralytics":
        if translation.torch_batch is not None:  # the images of one rank's step
            summed_images = translation.torch_batch * (translation.accumulate or 1)
    batch = None  # Ultralytics' batch: the images of all ranks' torch batches
    if fmt == "ultralytics-hyp" and translation.torch_batch is not None:
        batch = translation.torch_batch * (translation.world_size or 1)
    try:
        out = render(
            schedule,
            options,
            style=style,
            fmt=fmt,
            with_optimizer=with_optimizer,
            loss_reduction=loss_reduction,
            summed_images=summed_images,
            images=images,
            batch=batch,
            output=output,
        )
    except NotExactError as exc:
        click.echo(
            f"cfgsched: {exc}; use --style class (the default) instead", err=True
        )
        raise SystemExit(1) from None
    except CodegenError as exc:
        raise clikit.fail(f"{source}: {exc}") from None
    _notes(schedule, options, translation)
    for line in out.report:
        click.echo(line, err=True)
    with clikit.atomic_output(output, force=force, ours=written_by_convert) as fh:
        fh.write(out.text)


def _notes(
    schedule: NetSchedule, options: Options, translation: clikit.TranslationArgs
) -> None:
    """What the options do that the output cannot say by itself (stderr)."""
    if options.ideal and schedule.fork == "hankai":
        click.echo(
            f"warning: {HANKAI_GPUS}: --ideal lowers the LR there",
            err=True,
        )
    if options.resume_iteration is not None:
        click.echo(
            f"resume: {translation.resume_from}: darknet iteration "
            f"{options.resume_iteration} (seen // {schedule.images_per_iteration}, the "
            "images per iteration)",
            err=True,
        )
