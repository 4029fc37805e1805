"""``cfgsched plot``: what a new user and an adversary hit (issue 10) stays fixed.

--show without a display, mathtext in titles and file names, the no-cfg recipe,
--rescale-steps, unknown --set keys, warnings that name their fork, plural forms.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgsched.cli import main
from cfgsched.kernel.formulas import f32
from cfgsched.options import Options
from cfgsched.oracle import darknet_lr
from cfgsched.reader.parser import load, parse
from cfgsched.text import counted
from cfgsched.tools import plot
from cfgsched.tools.editor import rescale_steps
from tests.golden import ROOT

SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = SAMPLES / "yolov4.cfg"
SGDR = SAMPLES / "sgdr.cfg"


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["plot", *args], input=input)


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfgsched", "plot", *args],
        env=env, cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip


# ----------------------------------------------------------------------------- --show


def test_show_without_a_display_exits_2_before_any_work(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}  # fmt: skip
    env["PYTHONPATH"] = str(ROOT)
    res = cli(str(YOLOV4), "--show", env=env, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == (
        "cfgsched: error: --show: no display (DISPLAY and WAYLAND_DISPLAY are unset); "
        "write a file with -o FILE"
    )
    # a display variable but a backend that cannot open windows
    res = cli(str(YOLOV4), "--show", "-o", "x.png",
              env={**env, "DISPLAY": ":0", "MPLBACKEND": "agg"}, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2
    assert "backend 'agg' cannot open a window" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


# ----------------------------------------------------------------------------- mathtext


def test_dollar_signs_in_titles_and_file_names_are_plain_text(tmp_path: Path) -> None:
    from matplotlib.mathtext import MathTextParser

    with pytest.raises(ValueError):  # what matplotlib makes of it as mathtext
        MathTextParser("agg").parse("$x^{$")
    res = run(str(YOLOV4), "--title", "$x^{$", "-o", str(tmp_path / "t.png"))
    assert res.exit_code == 0, res.output
    odd = tmp_path / "a$x^{$b$.cfg"
    odd.write_text(SGDR.read_text())
    res = run(str(odd), str(SGDR), "-o", str(tmp_path / "f.png"))
    assert res.exit_code == 0, res.output
    data = plot.plot_data(
        plot.build_variants([(odd.read_text(), str(odd)), (SGDR.read_text(), "s.cfg")])
    )
    fig = plot.draw(data)
    plot.save(fig, io.BytesIO(), "png")
    assert (
        fig.axes[0].get_title()
        == "a$x^{$b$.cfg vs s.cfg: " + data.title.split(": ", 1)[1]
    )
    assert "a$x^{$b$.cfg" in [t.get_text() for t in fig.legends[0].get_texts()]


# ----------------------------------------------------------------------------- no cfg


RECIPE_700K = (
    "[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nchannels=3\n"
    "learning_rate=0.001\nburn_in=1000\nmax_batches=700000\npolicy=steps\n"
    "steps=560000,630000\nscales=.1,.1\n\n[maxpool]\n"
)


def test_no_cfg_draws_alexeyabs_recipe_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    res = run("--max-batches", "700000", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert (
        "no cfg: AlexeyAB's detector recipe (policy=steps, learning_rate=0.001, "
        "burn_in=1000, steps at 80% and 90% of max_batches 700,000, scales=.1,.1), "
        "with your options applied; pass a cfg to plot yours"
    ) in res.stderr.splitlines()
    rows = [ln.split(",") for ln in out.read_text().splitlines()[5:]]
    want = darknet_lr(parse(RECIPE_700K), np.arange(1, 700_001))
    assert [float(r[3]) for r in rows] == want.tolist()
    (v,) = plot.build_variants([], options={"max_batches": ["700000"]}, recipe=True)
    assert v.schedule.steps == (560_000, 630_000) and v.schedule.scales == (
        f32(0.1),
        f32(0.1),
    )
    assert plot.plot_data([v]).title.startswith("AlexeyAB's detector recipe: ")
    (d,) = plot.build_variants([], recipe=True)  # the guide's own max_batches 6000
    assert (d.schedule.max_batches, d.schedule.steps) == (6000, (4800, 5400))
    assert d.schedule.burn_in == 1000 and d.schedule.policy.cfg_name == "steps"
    (own,) = plot.build_variants(
        [], options={"max_batches": ["700000"], "steps": ["100,200"]}, recipe=True
    )
    assert own.schedule.steps == (100, 200)  # given steps are kept
    # another policy: the recipe's learning_rate, burn_in and max_batches, without its
    # steps (they belong to policy=steps; no warning about unused steps)
    poly, steps = plot.build_variants(
        [], options={"policy": ["poly", "steps"], "max_batches": ["10000"]}, recipe=True
    )
    assert (poly.schedule.policy.cfg_name, poly.schedule.steps) == ("poly", ())
    assert poly.schedule.burn_in == 1000 and poly.schedule.warnings == ()
    assert steps.schedule.steps == (8000, 9000)
    for fork in ("pjreddie", "hankai"):
        (f,) = plot.build_variants([], forks=(fork,), recipe=True)
        assert f.schedule.steps == (4800, 5400)


def test_default_png_title_names_the_recipe(tmp_path: Path) -> None:
    res = run("-o", str(tmp_path / "r.svg"))
    assert res.exit_code == 0, res.output
    assert "max_batches 6,000, scales=.1,.1); pass a cfg" in res.stderr
    assert "with your options" not in res.stderr
    assert (
        "AlexeyAB's detector recipe: darknet learning rate"
        in (tmp_path / "r.svg").read_text()
    )


# ----------------------------------------------------------------------------- --rescale-steps


def test_max_batches_keeps_the_cfgs_steps_unless_rescaled(tmp_path: Path) -> None:
    text = [(YOLOV4.read_text(), str(YOLOV4))]
    (keep,) = plot.build_variants(text, options={"max_batches": ["600000"]})
    assert keep.schedule.steps == (400_000, 450_000)
    (moved,) = plot.build_variants(
        text, options={"max_batches": ["600000"]}, rescale=True
    )
    # 400,000 / 500,500 × 600,000 = 479,520.48; 450,000 / 500,500 × 600,000 = 539,460.54
    assert moved.schedule.steps == (479_520, 539_461)
    assert moved.schedule.max_batches == 600_000
    out = tmp_path / "m.csv"
    res = run(str(YOLOV4), "--max-batches", "600000", "--rescale-steps", "-o", str(out))
    assert res.exit_code == 0, res.output
    lr = [float(ln.split(",")[3]) for ln in out.read_text().splitlines()[5:]]
    assert lr[479_518] != lr[479_519] and lr[539_459] != lr[539_460]  # b = step + 1
    nomax = tmp_path / "nomax.cfg"
    nomax.write_text(YOLOV4.read_text().replace("max_batches=500500", "max_batches=0"))
    assert load(str(nomax)).max_batches == 0
    cases = [
        ([str(YOLOV4), "--rescale-steps"], "--rescale-steps needs --max-batches"),
        ([str(YOLOV4), "--rescale-steps", "--max-batches", "9", "--steps", "1,2"],
         "not with --steps"),
        ([str(nomax), "--rescale-steps", "--max-batches", "9"],
         "max_batches is 0: the steps have no fractions to keep"),
    ]  # fmt: skip
    for args, msg in cases:
        res = run(*args, "-o", str(tmp_path / "x.png"))
        assert res.exit_code == 2 and msg in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1


@settings(derandomize=True, max_examples=300)
@given(
    st.lists(st.integers(-(10**6), 10**7), max_size=6),
    st.integers(1, 10**7),
    st.integers(0, 10**7),
)
def test_rescale_steps_keeps_fractions(steps: list[int], old: int, new: int) -> None:
    try:
        out = rescale_steps(steps, old, new)
    except ValueError as exc:
        assert "C int range" in str(exc)
        assert any(abs(s * new / old) > 2**31 - 2 for s in steps)
        return
    assert len(out) == len(steps)
    for s, r in zip(steps, out, strict=True):
        # the nearest integer to s·new/old (halves up): |r·old - s·new| ≤ old/2
        assert -old <= 2 * (r * old - s * new) <= old
        assert 2 * (r * old - s * new) != -old
    assert list(out) == sorted(out) or steps != sorted(steps)
    if new == old:
        assert list(out) == steps


def test_rescale_steps_examples() -> None:
    assert rescale_steps((4800, 5400), 6000, 700_000) == (560_000, 630_000)
    assert rescale_steps((), 6000, 5) == ()
    assert rescale_steps((1, 3), 2, 1) == (1, 2)  # 0.5 -> 1, 1.5 -> 2: halves up
    with pytest.raises(ValueError, match="max_batches is 0"):
        rescale_steps((10,), 0, 100)
    with pytest.raises(ValueError, match="C int range"):
        rescale_steps((2**30,), 1, 4)


# ----------------------------------------------------------------------------- --set, warnings


def test_set_refuses_keys_adjust_refuses(tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    res = run(str(YOLOV4), "--set", "max_batch=1000", "-o", out)
    assert res.exit_code == 2
    assert res.output.startswith(
        "cfgsched: error: --set: max_batch: not a [net] schedule key alexeyab reads "
        "(did you mean max_batches? one of learning_rate, "
    )
    res = run(str(SGDR), "--fork", "pjreddie", "--set", "sgdr_cycle=10", "-o", out)
    assert (
        res.exit_code == 2 and "not a [net] schedule key pjreddie reads" in res.output
    )
    assert len(res.output.strip().splitlines()) == 1
    assert not Path(out).exists()
    assert run(str(YOLOV4), "--set", "learning_rate=0.01", "-o", out).exit_code == 0


def test_overlay_warnings_name_their_fork_once() -> None:
    text = "[net]\nwidth=8\nheight=8\nchannels=3\npolicy=steps #x\nmax_batches=100\n"
    res = run("-", "--fork", "alexeyab", "--fork", "pjreddie", "--gpus", "1",
              "--gpus", "2", "-o", "-", "--format", "json", input=text + "[maxpool]\n")  # fmt: skip
    assert res.exit_code == 2  # four curves: a series holds one
    vs = plot.build_variants([(text + "[maxpool]\n", "<stdin>")],
                             forks=("alexeyab", "pjreddie"), gpus=(1, 2))  # fmt: skip
    lines = plot.warning_lines(vs)
    assert len(lines) == len(set(lines)) == 4  # two warnings × two forks, not × GPUs
    assert all(ln.startswith("<stdin>:5:") for ln in lines)
    assert (
        sorted(ln.rsplit(" ", 1)[1] for ln in lines)
        == ["[alexeyab]"] * 2 + ["[pjreddie]"] * 2
    )
    (one,) = plot.build_variants([(text + "[maxpool]\n", "<stdin>")])
    assert not any(ln.endswith("]") for ln in plot.warning_lines([one]))


# ----------------------------------------------------------------------------- texts


def test_plural_forms() -> None:
    assert counted(1, "image") == "1 image"
    assert counted(2, "image") == "2 images"
    assert counted(1000, "batch", "batches") == "1,000 batches"
    (v,) = plot.build_variants(
        [(YOLOV4.read_text(), "y.cfg")],
        translation=lambda s, n: Options(images_per_step=1),
    )
    data = plot.plot_data([v], x="steps", last=10)
    assert data.x_label.endswith("(1 image per step))")
    assert plot.plot_data([v], x="epochs", images=1, last=10).x_label == (
        "epoch (1 image)"
    )
    poly = plot.build_variants(
        [], options={"policy": ["poly"], "power": ["1"], "max_batches": ["1000"]}
    )
    data = plot.plot_data(poly, log=True, last=1000)
    assert "log scale: LR ≤ 0 at 1 batch cannot be drawn; shaded instead" in data.notes
    torch = plot.plot_data(variants_of(SGDR), vs="torch", last=1)
    assert torch.errors[0].summary.endswith("over 1 step (every step)")


def variants_of(path: Path) -> list[plot.Variant]:
    return plot.build_variants([(path.read_text(), str(path))])


def test_stdin_is_named_stdin_everywhere(tmp_path: Path) -> None:
    out = tmp_path / "s.svg"
    text = (
        "[net]\npolicy=steps #x\nmax_batches=100\nwidth=416\nheight=416\nchannels=3\n"
    )
    res = run("-", "-o", str(out), input=text)
    assert res.exit_code == 0, res.output
    assert "warning: <stdin>:2:" in res.stderr
    assert "&lt;stdin&gt;: darknet learning rate" in out.read_text()
