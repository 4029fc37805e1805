"""``cfgsched adjust``: write the cfg with -gpus advice or edits, every other byte kept."""

from __future__ import annotations

import click

from cfgsched.cli import kit as clikit
from cfgsched.errors import CfgError
from cfgsched.reader.parser import parse
from cfgsched.tools.editor import edit_schedule, gpu_edits, parse_set, resume_lines


@click.command(
    "adjust",
    epilog="""\b
Examples:
  cfgsched adjust yolov4.cfg --gpus 4 -o yolov4-4gpu.cfg
      learning_rate=0.0013 -> 0.000325, burn_in=1000 -> 4000 (AlexeyAB's advice)
  cfgsched adjust darknet53.cfg --set max_batches=1000000 --resume-from backup/last.weights
      prints darknet's LR at the resume point before and after (stderr)
  cat my.cfg | cfgsched adjust - --set steps=8000,9000 > new.cfg
  cfgsched adjust yolov4.cfg --set max_batches=6000 --rescale-steps
      steps keep their fractions of max_batches: 4795,5395
\b
Only the edited values change; comments, layer sections, indentation, key
spelling and line endings (CRLF/LF) stay byte for byte. A key that is absent
is added after the last [net] entry.
\b
Exit status: 0 written, 2 bad cfg, key or value (nothing written).""",
)
@click.argument("cfg", metavar="CFG")
@clikit.fork_option()
@click.option("--gpus", type=clikit.Count(1, 1 << 62),
              help="Apply AlexeyAB's advice: lr / N, burn_in × N.")  # fmt: skip
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set a [net] value."
)
@click.option("--rescale-steps", is_flag=True,
              help="With --set max_batches=N: move the steps to the same fractions "
              "of N.")  # fmt: skip
@click.option("--resume-from", "weights", type=click.Path(dir_okay=False),
              help="A .weights file: print the LR at its resume point before/after "
              "(stderr).")  # fmt: skip
@click.option(
    "-o", "--output", default="-", show_default=True, help="Output file, - = stdout."
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@clikit.one_line_errors
def adjust(
    cfg: str, fork: str, gpus: int | None, sets: tuple[str, ...], rescale_steps: bool,
    weights: str | None, output: str, force: bool,
) -> None:  # fmt: skip
    """Write CFG with the multi-GPU advice or --set edits applied (to stdout, or -o FILE);
    every other byte of CFG stays as it is."""
    if gpus is None and not sets:
        raise clikit.fail("nothing to adjust: give --gpus N and/or --set KEY=VALUE")
    text, source = clikit.read_cfg_text(cfg, exact=True)
    before = parse(text, fork=fork, source=source)
    edits = gpu_edits(before, gpus) if gpus is not None else []
    edits += [parse_set(item, fork) for item in sets]
    keys = {e.key for e in edits}
    if rescale_steps and ("max_batches" not in keys or "steps" in keys):
        why = "--rescale-steps needs --set max_batches=N and no --set steps"
        raise clikit.fail(why)
    try:
        new, after = edit_schedule(text, edits, fork=fork, source=source,
                                   rescale=rescale_steps)  # fmt: skip
    except CfgError as exc:
        if exc.source in ("--set", "--rescale-steps"):
            raise
        why = f"the adjusted cfg would not load: {exc.message}"
        raise CfgError(source, exc.line, exc.key, why) from None
    if weights is not None:
        for line in resume_lines(before, after, weights):
            click.echo(line, err=True)
    with clikit.atomic_output(output, force=force, binary=True) as fh:
        fh.write(new.encode("utf-8", "surrogateescape"))
