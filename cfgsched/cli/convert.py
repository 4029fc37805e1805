"""``cfgsched convert``: a cfg's schedule as a standalone PyTorch module (or Lightning, JSON)."""

from __future__ import annotations

import click

from cfgsched.cli import kit as clikit


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

\b
Then, in your training script:
  import lr_schedule
  optimizer = torch.optim.SGD(
      model.parameters(),
      lr=lr_schedule.LEARNING_RATE,
      momentum=lr_schedule.MOMENTUM,
  )
  scheduler = lr_schedule.build_scheduler(optimizer)
  # each step: optimizer.step(); scheduler.step()

\b
Optimizer step i (0-based) gets darknet's LR for batch b = i + 1 (the
first update darknet makes uses b = 1); the translation options change
that mapping and the base rate. The module records them in CFGSCHED, so
cfgsched diff CFG --module FILE checks it without repeating them.

\b
Exit status: 0 written, 1 no exact native form (--style native),
2 bad cfg, weights file or option (one line on stderr).""",
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
    help="Closed-form class, or torch built-ins (only when proven exact).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["python", "lightning", "json"]),
    default="python",
    show_default=True,
    help="A standalone Python module, the same with configure_optimizers for "
    "Lightning, or the schedule and translation as JSON.",
)
@click.option(
    "--with-optimizer",
    is_flag=True,
    help="Also define build_optimizer(model): darknet's SGD (or Adam) and decay rule.",
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
    force: bool,
) -> None:
    """Translate CFG's learning-rate schedule into an exactly equivalent PyTorch scheduler.

    Writes a standalone Python module (imports only torch and the standard library)
    defining build_scheduler(optimizer, last_epoch=-1), lr_at(step), the cfg's
    LEARNING_RATE and MOMENTUM and, with --with-optimizer, build_optimizer(model).
    """
    from cfgsched.codegen import CodegenError, generate
    from cfgsched.errors import NotExactError
    from cfgsched.reader.parser import parse

    text, source = clikit.read_cfg_text(cfg)
    schedule = parse(text, fork=fork, source=source)
    for w in schedule.warnings:
        click.echo(f"warning: {w.format(source)}", err=True)
    options = translation.options(schedule)
    if options.ideal and fork == "hankai":
        click.echo(
            "warning: hankai does not multiply learning_rate by the GPU count: "
            "--ideal lowers the LR there",
            err=True,
        )
    if options.resume_iteration is not None:
        click.echo(
            f"resume: {translation.resume_from}: darknet iteration "
            f"{options.resume_iteration} (seen // {schedule.images_per_iteration} images "
            "per iteration)",
            err=True,
        )
    try:
        out = generate(
            schedule, options, style=style, fmt=fmt, with_optimizer=with_optimizer
        )
    except NotExactError as exc:
        click.echo(
            f"cfgsched: {exc}; use --style class (the default) instead", err=True
        )
        raise SystemExit(1) from None
    except CodegenError as exc:
        raise clikit.fail(f"{source}: {exc}") from None
    with clikit.atomic_output(output, force=force) as fh:
        fh.write(out)
