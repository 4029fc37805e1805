"""``cfgsched plot`` shades darknet's layer windows (issue 14 item 3) and says what random
draws are (issue 15 item 8).

Expected windows come from the darknet facts of issue 14 (alexeyab GPU ``stopbackward=N > 1``:
gradient from update N + 1; CPU: never; ``stopbackward=1``: earlier layers never updated;
``dont_update=N``: updates 1..N held), counted by hand from the cfg lines, not from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cfgsched.cli import main
from cfgsched.options import Options
from cfgsched.tools import plot
from tests.golden import ROOT

LAYER_RULES = ROOT / "sample_cfgs" / "layer-rules.cfg"  # stopbackward=30 on line 27
STOP = "layers 0-1 get no gradient"
MOVE = " (darknet's decay and momentum still move them) (stopbackward, line 27)"
HELD = "layer 2 skips updates 1-20 (the gradients land at update 21) (dont_update, line 33)"


def windows(
    path: Path | None = None, text: str = "", **kw: Any
) -> list[tuple[int, int, str]]:
    opts = kw.pop("options", Options())
    src = (path.read_text(), str(path)) if path else (text, "t.cfg")
    (v,) = plot.build_variants([src], translation=lambda s, n: opts)
    data = plot.plot_data([v], **kw)
    return [(r.first, r.last, r.label) for r in data.regions if r.kind == "layers"]


def test_steps_axis_shades_the_frozen_windows_of_a_gpu_build() -> None:
    # update k is step k - 1: no gradient in updates 1-30 -> steps 0-29
    assert windows(LAYER_RULES, x="steps") == [
        (0, 29, STOP + " in updates 1-30" + MOVE),
        (0, 19, HELD),
    ]


def test_cpu_build_never_passes_the_gradient_and_holds_nothing() -> None:
    got = windows(LAYER_RULES, x="steps", options=Options(build="cpu"))
    assert got == [(0, 199, STOP + MOVE)]


def test_batch_axis_where_a_step_is_one_batch_and_a_note_where_not() -> None:
    assert windows(LAYER_RULES)[0] == (1, 30, STOP + " in updates 1-30" + MOVE)
    (v,) = plot.build_variants(
        [(LAYER_RULES.read_text(), "l.cfg")],
        translation=lambda s, n: Options(images_per_step=2),  # two steps per batch
    )
    data = plot.plot_data([v])
    assert not [r for r in data.regions if r.kind == "layers"]
    assert "l.cfg (alexeyab): darknet's layer rules: see --x steps" in data.notes
    steps = plot.plot_data([v], x="steps")
    assert [(r.first, r.last) for r in steps.regions if r.kind == "layers"] == [
        (0, 29),
        (0, 19),
    ]


def test_a_resumed_run_counts_from_its_iteration() -> None:
    # resumed at iteration 10: darknet's counter reaches 30 at update 20 (step 10 + 19)
    got = windows(LAYER_RULES, x="steps", options=Options(resume_iteration=10))
    assert got[0] == (10, 29, STOP + " in updates 1-20" + MOVE)


STOP_AT_ONE = (
    "[net]\nbatch=2\nsubdivisions=1\nwidth=4\nheight=4\nchannels=1\n"
    "learning_rate=0.01\nmax_batches=50\npolicy=constant\n"
    "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"  # layer 0, lines 10-13
    "[convolutional]\nfilters=1\nsize=1\nactivation=linear\nstopbackward=1\n"  # layer 1
    "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"  # layer 2 trains
)


def test_stopbackward_one_freezes_the_layers_before_it_for_the_whole_run() -> None:
    got = windows(text=STOP_AT_ONE, x="steps")
    assert got == [
        (
            0,
            49,
            "layer 0 gets no gradient, is never updated, with batch-norm in inference"
            " mode (stopbackward, line 18)",
        ),
        (
            0,
            49,
            "layer 1 gets no gradient (darknet's decay and momentum still move them)"
            " (stopbackward, line 18)",
        ),
    ]
    fig = plot.draw(
        plot.plot_data(plot.build_variants([(STOP_AT_ONE, "s.cfg")]), x="steps")
    )
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [label for _, _, label in got]


def test_overlaid_curves_name_their_windows() -> None:
    vs = plot.build_variants(
        [(LAYER_RULES.read_text(), "l.cfg")], forks=("alexeyab", "pjreddie")
    )
    labels = [
        r.label for r in plot.plot_data(vs, x="steps").regions if r.kind == "layers"
    ]
    # pjreddie: any stopbackward stops the backward for good and has no dont_update
    assert labels == [
        "alexeyab: " + STOP + " in updates 1-30" + MOVE,
        "alexeyab: " + HELD,
        "pjreddie: " + STOP + MOVE,
    ]


def test_cli_draws_them(tmp_path: Path) -> None:
    out = tmp_path / "l.svg"
    res = CliRunner().invoke(
        main, ["plot", str(LAYER_RULES), "--x", "steps", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "no gradient in updates 1-30" in out.read_text()


def test_random_policy_says_whose_draws_these_are() -> None:
    (v,) = plot.build_variants(
        [], options={"policy": ["random"], "max_batches": ["100"]}
    )
    title = plot.plot_data([v]).title
    assert "random policy: cfgsched's seeded draws, not darknet's rand()" in title
    (s,) = plot.build_variants([], options={"policy": ["poly"]})
    assert "rand()" not in plot.plot_data([s]).title
