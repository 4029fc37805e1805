"""``cfgsched plot`` and ``adjust``: what a user sees (issue 15 items 1, 2, 12, 22; issue 13's
sectioned ``--help`` and what-ifs through adjust's editor)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cfgsched.boundaries import boundaries
from cfgsched.cli import main
from cfgsched.oracle import darknet_lr
from cfgsched.reader.parser import load, parse
from cfgsched.tools import plot
from tests.golden import DARKNET_CFGS, ROOT, needs_darknet_cfgs

SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = SAMPLES / "yolov4.cfg"
SGDR = SAMPLES / "sgdr.cfg"
POLY = SAMPLES / "classifier-poly.cfg"
MANY_STEPS = DARKNET_CFGS / "efficientnet-lite3.cfg"  # step=10000 up to 1,600,000


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def data_of(path: Path, **kw: Any) -> plot.PlotData:
    return plot.plot_data(plot.build_variants([(path.read_text(), str(path))]), **kw)


def drawn(data: plot.PlotData) -> tuple[Any, Any]:
    """The figure of ``data`` laid out, and its main LR axes (the one with the title)."""
    fig = plot.draw(data)
    plot.save(fig, __import__("io").BytesIO(), "png")  # runs the layout
    ax = next(a for a in fig.axes if a.get_title() == data.title)
    return fig, ax


# ----------------------------------------------------------------------------- item 1


def test_burn_in_gets_a_zoomed_panel_with_darknets_values() -> None:
    data = data_of(YOLOV4)
    assert data.zoom is not None and data.zoom.first == 1
    assert data.zoom.last >= 1000 and data.zoom.last < 0.02 * data.last
    curve = data.zoom.curves[0]
    assert curve.exact  # one point per batch: the ramp is drawn batch by batch
    b = curve.start
    want = darknet_lr(parse(YOLOV4.read_text()), b)
    np.testing.assert_array_equal(curve.hi, np.asarray(want, dtype=np.float32))
    fig, _ = drawn(data)
    assert any(a.get_title().startswith("zoom: b = 1–") for a in fig.axes)


def test_no_zoom_when_every_phase_is_visible_or_a_range_is_given() -> None:
    assert data_of(SGDR).zoom is None  # burn_in 200 of 7,000 batches: 2.9 %
    assert data_of(YOLOV4, first=1, last=500_500).zoom is None
    assert data_of(POLY).zoom is not None  # burn_in 1,000 of 800,000


# ----------------------------------------------------------------------------- item 2


@needs_darknet_cfgs
def test_many_drops_are_all_marked_up_to_max_batches() -> None:
    data = data_of(MANY_STEPS)
    steps = [m.batch for m in data.markers if m.kind == "step"]
    assert steps == [10_000 * k for k in range(1, 161)]  # 1,600,000 / 10,000 drops
    assert [m.batch for m in data.markers if m.kind == "max_batches"] == [1_600_000]
    assert not any("not marked" in n for n in data.notes)


def test_unmarked_boundaries_are_counted_exactly() -> None:
    text = (
        "[net]\nwidth=8\nheight=8\nchannels=3\npolicy=step\nstep=1000\nscale=0.99\n"
        "max_batches=2000000\n[maxpool]\n"
    )
    s = parse(text)
    # 2,000 step boundaries (1,000 .. 2,000,000) and max_batches: 2,001
    marks, cut = boundaries(s, 1, 2_000_000, limit=60)
    assert len(marks) == 60 and cut == 2_001 - 60
    data = plot.plot_data(plot.build_variants([(text, "s.cfg")]))
    assert len(data.markers) == plot.MAX_MARKS
    assert any(n.endswith(f"{2_001 - plot.MAX_MARKS:,} more boundaries not marked")
               for n in data.notes)  # fmt: skip


@pytest.mark.parametrize("path", [YOLOV4, POLY, SGDR])
def test_labels_stay_inside_the_frame_above_the_curve_and_level(path: Path) -> None:
    data = data_of(path)
    fig, ax = drawn(data)
    frame = ax.get_window_extent()
    renderer = fig.canvas.get_renderer()
    top = max(float(np.nanmax(ln.get_transform().transform(ln.get_xydata())[:, 1]))
              for ln in ax.get_lines() if ln.get_xydata().shape[0] > 2)  # fmt: skip
    labels = [t for t in ax.texts if t.get_position() != (0.005, 0.005)]  # not notes
    assert len(labels) >= 2  # burn-in end, max_batches (and the boundaries between)
    for t in labels:
        box = t.get_window_extent(renderer)
        assert t.get_rotation() == 0
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1, t.get_text()
        assert box.y0 >= top, t.get_text()  # never over the curve
        assert t.get_fontsize() >= 7.5


def test_the_legend_does_not_repeat_the_title() -> None:
    data = data_of(YOLOV4)
    fig, _ = drawn(data)
    texts = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert not any("yolov4.cfg" in t for t in texts), texts


# ----------------------------------------------------------------------------- item 22


def test_escape_sequences_in_names_are_escaped(tmp_path: Path) -> None:
    cfg = tmp_path / "a\x1b[31mb.cfg"
    cfg.write_text(YOLOV4.read_text())
    out = tmp_path / "o\x1b[0m.png"
    res = CliRunner().invoke(main, ["plot", str(cfg), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and "\x1b" not in res.output and "\\x1b" in res.output
    assert "\x1b" not in data_of(cfg).title


def test_resume_past_the_end_names_resume_from(tmp_path: Path) -> None:
    weights = tmp_path / "past.weights"  # seen = 600,000 batches of 64 images
    weights.write_bytes(struct.pack("<3iQ", 0, 2, 0, 600_000 * 64) + b"\0" * 4)
    for args in (["--x", "steps", "-o", "x.png"], ["-o", "x.csv"]):
        res = run("plot", str(YOLOV4), "--resume-from", str(weights),
                  *args[:-1], str(tmp_path / args[-1]))  # fmt: skip
        assert res.exit_code == 2, res.output
        assert "--resume-from" in res.output and "--from/--to" not in res.output
        assert len(res.output.strip().splitlines()) == 1
        assert not (tmp_path / args[-1]).exists()


def test_tensorboard_refusal_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    tb = tmp_path / "tb"
    tb.mkdir()
    theirs = tb / "events.out.tfevents.0000000000.cfgsched-lr.darknet_lr"
    theirs.write_bytes(b"someone else's events")
    png = tmp_path / "lr.png"
    res = run("plot", str(YOLOV4), "-o", str(png), "--tensorboard", str(tb))
    assert res.exit_code == 2 and "--force" in res.output
    assert not png.exists() and theirs.read_bytes() == b"someone else's events"


# ----------------------------------------------------------------------------- help texts


def test_plot_help_is_in_sections_each_on_one_screen() -> None:
    out = run("plot", "--help").output
    heads = ["What-ifs", "Translation", "Axes:", "Output:"]
    at = [next(i for i, ln in enumerate(out.splitlines()) if ln.startswith(h))
          for h in heads]  # fmt: skip
    assert at == sorted(at)
    lines = out.splitlines()
    ends = [*at[1:], next(i for i, ln in enumerate(lines) if ln.strip() == "Examples:")]
    blocks = ["\n".join(lines[a:e]) for a, e in zip(at, ends, strict=True)]
    for block, opts in zip(blocks, (
        ["--set", "--max-batches", "--rescale-steps"],
        ["--fork", "--gpus", "--torch-batch", "--resume-from"],
        ["--from", "--to", "--log", "--x", "--vs"],
        ["--output", "--format", "--tensorboard", "--force", "--show", "--help"],
    ), strict=True):  # fmt: skip
        assert all(f"  {o}" in block or f", {o}" in block for o in opts), block
        assert len(block.splitlines()) <= 45  # one screen
    assert "[CFG ...]\n" not in out.split("Usage:")[1].split("\n", 1)[1]


def test_adjust_help_names_its_output() -> None:
    out = run("adjust", "--help").output
    assert "in place" not in out and "stdout" in out


# ----------------------------------------------------------------------------- editor


def test_plot_and_adjust_rescale_steps_alike() -> None:
    res = run("adjust", str(YOLOV4), "--set", "max_batches=600000", "--rescale-steps")
    assert res.exit_code == 0, res.output
    (v,) = plot.build_variants([(YOLOV4.read_text(), str(YOLOV4))],
                               options={"max_batches": ["600000"]}, rescale=True)  # fmt: skip
    adjusted = parse(res.stdout)
    assert v.schedule.steps == adjusted.steps == (479_520, 539_461)
    assert load(str(YOLOV4)).steps == (400_000, 450_000)
