"""``cfgsched plot --vs mmengine|ultralytics-hyp``: a framework's fitted built-in schedule
overlaid on darknet's curve, with its relative error; always called an approximation.

The overlay's values come from ``cfgsched.adapters.approx`` (tested against the real
frameworks in test_approx); the relative error is recomputed here from the fit's two LR
series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cfgsched.adapters.approx import fit_mmengine, fit_ultralytics
from cfgsched.cli import main
from cfgsched.options import Options
from cfgsched.oracle import darknet_lr
from cfgsched.reader.parser import load
from cfgsched.tools import plot
from tests.golden import ROOT

SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = SAMPLES / "yolov4.cfg"
SGDR = SAMPLES / "sgdr.cfg"


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["plot", *args])


def variants(path: Path, **kw: Any) -> list[plot.Variant]:
    return plot.build_variants([(path.read_text(), str(path))], **kw)


def signed_rel(f: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(f - d) / |d|, NaN where darknet's LR is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d != 0, (f - d) / np.abs(d), np.nan)


def test_mmengine_overlay_every_batch_and_its_relative_error() -> None:
    (v,) = variants(SGDR)
    data = plot.plot_data([v], vs="mmengine")
    dark, fw = data.curves
    fit = fit_mmengine(load(str(SGDR)))
    assert fw.kind == "approx" and "approximation" in fw.label
    assert "approximation" in data.title
    # one point per step, at its darknet batch b = i + 1
    assert np.array_equal(fw.start, np.arange(1, 7001))
    assert np.array_equal(fw.hi, fit.framework_lr.astype(np.float32))
    assert np.array_equal(dark.hi, darknet_lr(load(str(SGDR)), np.arange(1, 7001)))
    (err,) = data.errors
    assert err.unit == "rel" and err.curve == 1
    want = signed_rel(fit.framework_lr, fit.darknet_lr)
    assert np.array_equal(err.hi, want, equal_nan=True)
    assert err.max_rel == np.nanmax(np.abs(want)) == fit.report.max_rel
    assert err.summary == f"MMEngine {fit.comment()[0]}"
    assert "approximation, not exact" in err.summary
    fig = plot.draw(data)
    assert "(approx − C) / C" in fig.axes[1].get_ylabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "MMEngine built-in schedulers (approximation)" in legend


def test_mmengine_envelope_and_steps_axis() -> None:
    """A long run: the overlay and the error are per column min/max of every step."""
    (v,) = variants(YOLOV4)
    fit = fit_mmengine(load(str(YOLOV4)))
    data = plot.plot_data([v], vs="mmengine")
    dark, fw = data.curves
    assert not fw.exact and np.array_equal(fw.start, dark.start)
    offs = dark.start - 1  # step i is at b = i + 1
    f32 = fit.framework_lr.astype(np.float32)
    assert np.array_equal(fw.lo, np.minimum.reduceat(f32, offs))
    assert np.array_equal(fw.hi, np.maximum.reduceat(f32, offs))
    (err,) = data.errors
    rel = signed_rel(fit.framework_lr, fit.darknet_lr)
    assert np.array_equal(err.hi, np.fmax.reduceat(rel, offs), equal_nan=True)
    steps = plot.plot_data([v], vs="mmengine", x="steps", last=2000)
    assert np.array_equal(steps.curves[1].start, np.arange(0, 2001))
    assert np.array_equal(steps.curves[1].hi, f32[:2001])


def test_ultralytics_overlay_at_the_batches_its_steps_reach() -> None:
    (v,) = variants(SGDR, translation=lambda s, n: Options(images_per_step=16))
    data = plot.plot_data([v], vs="ultralytics-hyp", images=1000, batch=16)
    fit = fit_ultralytics(
        load(str(SGDR)), Options(images_per_step=16), images=1000, batch=16
    )
    _, fw = data.curves
    keep = (fit.batches >= 1) & (fit.batches <= 7000)
    assert np.array_equal(fw.start, fit.batches[keep])
    assert np.array_equal(fw.hi, fit.framework_lr[keep].astype(np.float32))
    (err,) = data.errors
    want = signed_rel(fit.framework_lr, fit.darknet_lr)[keep]
    assert np.array_equal(err.hi, want, equal_nan=True)
    assert fw.label.startswith(f"Ultralytics lr0={fit.hyp['lr0']:g}")
    assert fw.label.endswith("(approximation)")


def test_cli_reports_the_fit_on_stderr_and_draws_the_panel(tmp_path: Path) -> None:
    out = tmp_path / "u.png"
    res = run(str(SGDR), "--vs", "ultralytics-hyp", "--images", "1000",
              "--torch-batch", "16", "-o", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    fit = fit_ultralytics(
        load(str(SGDR)), Options(images_per_step=16), images=1000, batch=16
    )
    assert f"Ultralytics {fit.comment()[0]}" in res.stderr.splitlines()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = run(str(SGDR), "--vs", "mmengine", "-o", str(tmp_path / "m.svg"))
    assert res.exit_code == 0, res.output
    svg = (tmp_path / "m.svg").read_text()
    assert "MMEngine built-in schedulers (approximation)" in svg


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--vs", "ultralytics-hyp", "--torch-batch", "16"], "needs --images N"),
        (["--vs", "ultralytics-hyp", "--images", "100"], "--torch-batch T"),
        (
            [
                "--vs",
                "ultralytics-hyp",
                "--images",
                "100",
                "--torch-batch",
                "16",
                "--x",
                "steps",
            ],
            "use --x batches",
        ),
        (["--vs", "mmengine", "--policy", "sigmoid"], "no MMEngine built-in"),
        (["--vs", "mmengine", "--gpus", "2", "--multigpu", "trace"], "trace"),
    ],
)
def test_requests_the_fit_cannot_serve(
    args: list[str], text: str, tmp_path: Path
) -> None:
    res = run(str(SGDR), *args, "-o", str(tmp_path / "x.png"))
    assert res.exit_code == 2, res.output
    assert text in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "x.png").exists()
