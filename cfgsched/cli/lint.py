"""``cfgsched lint``: schedule traps as ``path:line:col: CODE message`` lines."""

from __future__ import annotations

import click

from cfgsched.cli import kit as clikit
from cfgsched.errors import CfgError
from cfgsched.schedule import DEFAULT_FORK, FORKS


@click.command(
    "lint",
    epilog="""\b
Examples:
  cfgsched lint yolov4.cfg
  cfgsched lint cfg/*.cfg --ignore A3 --select W2,E --format json
  cfgsched lint my.cfg --images 12000 --gpus 4   # rule of thumb and -gpus advice
  cfgsched lint my.cfg --torch-batch 16 --build cpu   # the run your torch script trains
\b
  $ cfgsched lint tiny-yolo-voc.cfg
  tiny-yolo-voc.cfg:17:7: W203 step -1 <= 0: its scale applies from the first batch
\b
Codes: P0xx the reader's warnings, E1xx the fork crashes or stops (N1xx: a
fork not linted does, a note), W2xx schedule traps, A3xx advice;
docs/lint-rules.md lists them all. The LR and layer rules (W210-W213) check
the run the translation options describe, as convert translates it.
\b
Exit status: 0 clean (or notes only), 1 findings, 2 unreadable file or bad
option, 130 interrupted.""",
)
@click.argument("cfgs", nargs=-1, required=True, metavar="CFG...")
@click.option(
    "--fork",
    type=click.Choice([*FORKS, "all"]),
    default=DEFAULT_FORK,
    show_default=True,
    help="Fork whose schedule the rules check; another fork's stop is a note (N1xx)."
    " all: every fork's stop is an error (E1xx), the rules check the default fork.",
)
@click.option("--select", multiple=True, help="Only these codes or prefixes (E1,W210).")
@click.option("--ignore", multiple=True, help="Skip these codes or prefixes.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per finding, or a JSON document (schema cfgsched-lint/1).",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option(
    "--images", type=clikit.Count(1, 1 << 62), help="Training images (advice)."
)
@clikit.translation_options
@clikit.one_line_errors
def lint(
    cfgs: tuple[str, ...],
    fork: str,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    fmt: str,
    as_json: bool,
    images: int | None,
    translation: clikit.TranslationArgs,
) -> None:
    """Check darknet cfgs for schedule traps, crashes per fork and advice."""
    from cfgsched.tools.lint import lint_text, split_codes, to_json

    as_json = as_json or fmt == "json"
    sel, ign = (split_codes(select) if select else None), split_codes(ignore)
    reports, unreadable = [], False
    for path in cfgs:
        try:
            text, source = clikit.read_cfg_text(path)
        except (OSError, CfgError) as exc:
            unreadable = True
            why = exc if isinstance(exc, CfgError) else f"{path}: {exc.strerror or exc}"
            clikit.fail(str(why)).show()
            continue
        report = lint_text(
            text,
            source=source,
            fork=fork,
            images=images,
            select=sel,
            ignore=ign,
            options=translation.options,
        )
        reports.append(report)
        for w in () if as_json else report.findings:
            click.echo(w.format(report.path))
    if as_json:
        click.echo(to_json(reports))
    if unreadable or any(r.failed for r in reports):
        raise SystemExit(2 if unreadable else 1)
