"""``cfgsched explain``: the phases of a schedule, the LRs of the translated run, -gpus."""

from __future__ import annotations

import click

from cfgsched.cli import kit as clikit
from cfgsched.errors import CfgError
from cfgsched.reader.parser import parse
from cfgsched.run import MAX_BATCH, translate


def _indices(value: str | None, option: str, what: str) -> list[int]:
    """``1,1000,400000`` as integers (one-line error otherwise; the range: PointError)."""
    if value is None:
        return []
    parts = [v for v in value.replace(" ", "").split(",") if v]
    if not parts or not all(v.isascii() and v.isdigit() for v in parts):
        raise clikit.fail(f"{option} {value!r}: expected {what} like 1,1000,400000")
    return [int(v) for v in parts]


@click.command(
    "explain",
    epilog="""\b
Examples:
  cfgsched explain yolov4.cfg
  cfgsched explain yolov4.cfg --at 1,999,1000,400000 --images 117266
  cfgsched explain yolov4.cfg --gpus 4 --at 1000   # LR x 4 where the fork does it
  cfgsched explain yolov4.cfg --torch-batch 16 --at-step 0,3999,4000
  cfgsched explain sgdr.cfg --fork hankai --json
\b
Batches are darknet's b (update k uses b = k). Steps are 0-based optimizer
steps under the translation options (default: step i at b = i + 1). Every LR
is what the translated torch run trains with (what convert's module gives).
--at B: the LR at batch b and the first step evaluated at b (- if none);
--at-step I: the LR of step i and its batch. Each phase shows the first
step whose batch is >= its first batch.
--json writes a document with "schema": "cfgsched-explain/2"
(docs/commands.md describes it).
\b
Exit status: 0 explained, 2 bad cfg (the fork would stop) or option.""",
)
@click.argument("cfg", metavar="CFG")
@clikit.fork_option()
@click.option(
    "--at", metavar="B,...", help="Also print the LR at these darknet batches."
)
@click.option(
    "--at-step",
    metavar="I,...",
    help="Also print the LR at these 0-based optimizer steps.",
)
@click.option(
    "--images",
    type=clikit.Count(1, MAX_BATCH),
    metavar="N",
    help="Dataset size: adds epochs.",
)
@clikit.translation_options
@click.option(
    "--json", "as_json", is_flag=True, help="JSON (schema cfgsched-explain/2)."
)
@clikit.one_line_errors
def explain(
    cfg: str,
    fork: str,
    at: str | None,
    at_step: str | None,
    images: int | None,
    translation: clikit.TranslationArgs,
    as_json: bool,
) -> None:
    """Explain a cfg's learning-rate schedule: phases, LRs, steps, images, -gpus."""
    from cfgsched.tools.explain import PointError, render
    from cfgsched.tools.explain import explain as explain_schedule
    from cfgsched.tools.lint import lint_text

    batches = _indices(at, "--at", "batches")
    steps = _indices(at_step, "--at-step", "steps")
    text, source = clikit.read_cfg_text(cfg)
    schedule = parse(text, fork=fork, source=source)
    run = translate(schedule, translation.options(schedule))
    report = lint_text(text, source=source, fork=fork, images=images, run=run)
    try:
        e = explain_schedule(
            run, at=batches, at_steps=steps, images=images, warnings=report.findings
        )
    except PointError as exc:
        raise clikit.fail(f"{'--at-step' if steps else '--at'}: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, CfgError):
            raise
        raise clikit.fail(f"{source}: {exc}") from None
    click.echo(e.to_json() if as_json else render(e), nl=as_json)
