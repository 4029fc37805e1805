"""``cfgsched explain``: the phases of a schedule, boundary LRs and the -gpus effect."""

from __future__ import annotations

import click

from cfgsched.cli import kit as clikit

#: Largest batch number ``--at`` accepts (int64).
MAX_BATCH = 2**63 - 1


def _batches(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        out = [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise clikit.fail(
            f"--at {value!r}: expected batches like 1,1000,400000"
        ) from None
    if not out or any(not 0 <= b <= MAX_BATCH for b in out):
        raise clikit.fail(f"--at {value!r}: expected batches from 0 to {MAX_BATCH}")
    return out


@click.command(
    "explain",
    epilog="""\b
Examples:
  cfgsched explain yolov4.cfg
  cfgsched explain yolov4.cfg --at 1,999,1000,400000 --images 117266
  cfgsched explain yolov4.cfg --gpus 4          # what -gpus 4 does on this fork
  cfgsched explain sgdr.cfg --fork hankai --json
\b
Batches are darknet's b (update k uses b = k); torch step i = b - 1.
--json writes a document with "schema": "cfgsched-explain/1" (see README).
\b
Exit status: 0 explained, 2 bad cfg (the fork would stop) or option.""",
)
@click.argument("cfg", metavar="CFG")
@clikit.fork_option()
@click.option(
    "--at", "at", metavar="B,...", help="Also print darknet's LR at these batches."
)
@click.option("--images", type=click.IntRange(min=1), help="Dataset size: adds epochs.")
@click.option("--gpus", type=click.IntRange(min=1), help="Explain darknet -gpus N.")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON (schema cfgsched-explain/1)."
)
@clikit.one_line_errors
def explain(
    cfg: str,
    fork: str,
    at: str | None,
    images: int | None,
    gpus: int | None,
    as_json: bool,
) -> None:
    """Explain a cfg's learning-rate schedule: phases, LRs, images, -gpus."""
    from cfgsched.tools.explain import explain_text, render

    batches = _batches(at)
    text, source = clikit.read_cfg_text(cfg)
    e = explain_text(
        text, source=source, fork=fork, at=batches, images=images, gpus=gpus
    )
    click.echo(e.to_json() if as_json else render(e), nl=as_json)
