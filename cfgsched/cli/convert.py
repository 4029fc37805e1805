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
  cfgsched convert yolov4.cfg --format lightning --with-optimizer
  cfgsched convert steps.cfg --style native   # torch built-ins, only when exact
  cfgsched convert yolov4.cfg --format json

\b
Then, in your training script:
  import lr_schedule
  optimizer = torch.optim.SGD(model.parameters(), lr=lr_schedule.LEARNING_RATE)
  scheduler = lr_schedule.build_scheduler(optimizer)
  # each step: optimizer.step(); scheduler.step()

\b
Optimizer step i (0-based) gets darknet's LR for batch b = i + 1 (the
first update darknet makes uses b = 1). --gpus N: darknet -gpus N, LR x N
where the fork does it (alexeyab, pjreddie), step i at b = (i+1)*N
(--multigpu images, for DDP averaging over N*batch images) or GPU 0's
exact batch sequence (--multigpu trace). --ideal (needs --gpus N > 1)
first applies AlexeyAB's advice for N GPUs: learning_rate / N and
burn_in x N, so the N-GPU run follows the 1-GPU schedule.
--torch-batch T [--accumulate A] [--world-size W]: your run's images per
optimizer step are T*A*W, and step i is at b = (i+1)*T*A*W // (batch).
--resume-from: build_scheduler() starts where darknet resumes the file
(seen // batch); --fork decides how the header is read.

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
@click.option(
    "--gpus", type=click.IntRange(min=1), default=1, show_default=True, metavar="N"
)
@click.option(
    "--multigpu",
    type=click.Choice(["images", "trace"]),
    default="images",
    show_default=True,
    help="With --gpus: b = (i+1)·N (images) or GPU 0's real sequence (trace).",
)
@click.option(
    "--scratch",
    is_flag=True,
    help="With --multigpu trace: no weights file (hankai trains burn-in on 1 GPU).",
)
@click.option(
    "--torch-batch", type=click.IntRange(min=1), metavar="T", help="Torch batch size."
)
@click.option(
    "--accumulate",
    type=click.IntRange(min=1),
    metavar="A",
    help="Gradient accumulation steps (with --torch-batch).",
)
@click.option(
    "--world-size",
    type=click.IntRange(min=1),
    metavar="W",
    help="Data-parallel processes (with --torch-batch).",
)
@click.option(
    "--ideal", is_flag=True, help="With --gpus N: learning_rate / N, burn_in × N."
)
@click.option(
    "--double",
    is_flag=True,
    help="Evaluate in double instead of darknet's float32 (not bit-exact).",
)
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
)
@click.option(
    "--with-optimizer", is_flag=True, help="Also define build_optimizer(model)."
)
@click.option(
    "--resume-from",
    type=click.Path(dir_okay=False),
    metavar="WEIGHTS",
    help="Start where darknet resumes this .weights file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@clikit.one_line_errors
def convert(
    cfg: str,
    output: str,
    fork: str,
    gpus: int,
    multigpu: str,
    scratch: bool,
    torch_batch: int | None,
    accumulate: int | None,
    world_size: int | None,
    ideal: bool,
    double: bool,
    style: str,
    fmt: str,
    with_optimizer: bool,
    resume_from: str | None,
    force: bool,
) -> None:
    """Translate CFG's learning-rate schedule into an exactly equivalent PyTorch scheduler.

    Writes a standalone Python module (imports only torch and the standard library)
    defining build_scheduler(optimizer, last_epoch=-1), lr_at(step) and, with
    --with-optimizer, build_optimizer(model).
    """
    from cfgsched.codegen import CodegenError, generate
    from cfgsched.reader.parser import parse

    if torch_batch is None and (accumulate is not None or world_size is not None):
        raise clikit.fail("--accumulate and --world-size need --torch-batch")
    if ideal and gpus < 2:
        raise clikit.fail(
            "--ideal needs --gpus N with N > 1 (it is the advice for N GPUs)"
        )
    if scratch and multigpu != "trace":
        raise clikit.fail("--scratch needs --multigpu trace")
    if multigpu == "trace" and torch_batch is not None:
        raise clikit.fail(
            "--multigpu trace follows darknet's iterations: no --torch-batch"
        )
    images_per_step = None
    if torch_batch is not None:
        images_per_step = torch_batch * (accumulate or 1) * (world_size or 1)

    text, source = clikit.read_cfg_text(cfg)
    schedule = parse(text, fork=fork, source=source)
    for w in schedule.warnings:
        click.echo(f"warning: {w.format(source)}", err=True)
    if ideal and fork == "hankai":
        click.echo(
            "warning: hankai does not multiply learning_rate by the GPU count: "
            "--ideal lowers the LR there",
            err=True,
        )

    resume_batch = None
    if resume_from is not None:
        from cfgsched.weights import read_weights_header

        header = read_weights_header(resume_from, fork=fork)
        resume_batch = header.iteration(schedule)
        click.echo(
            f"resume: {resume_from}: seen {header.seen} images = darknet iteration "
            f"{resume_batch} (batch x subdivisions = {schedule.images_per_iteration})",
            err=True,
        )

    from cfgsched.errors import NotExactError

    try:
        out = generate(
            schedule,
            style=style,
            fmt=fmt,
            with_optimizer=with_optimizer,
            exact=not double,
            ngpus=gpus,
            multigpu=multigpu,
            images_per_step=images_per_step,
            scratch=scratch,
            ideal=ideal,
            resume_batch=resume_batch,
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
