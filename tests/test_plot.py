"""``cfgsched plot``: the figure's data equals darknet's LR; markers, regions, overlays, files.

Expected values come from the scalar kernel (``cfgsched.kernel.formulas.rate``) or from a
reduction of the oracle, never from the code under test.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cfgsched.cli import main
from cfgsched.kernel import formulas as _kernel
from cfgsched.oracle import darknet_lr
from cfgsched.reader.parser import load, parse
from cfgsched.tools import plot
from tests.golden import DARKNET_CFGS, ROOT, needs_darknet_cfgs

CFGSCHED = str(ROOT / ".venv" / "bin" / "cfgsched")
SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = SAMPLES / "yolov4.cfg"
f32 = _kernel.f32


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["plot", *args], input=input)


def variants(*cfgs: Path, **kw: Any) -> list[plot.Variant]:
    texts = [(p.read_text(), str(p)) for p in cfgs]
    return plot.build_variants(texts, **kw)


def kernel(sched: Any, b: int) -> float:
    return _kernel.rate(sched.kernel_params(), b)


# ----------------------------------------------------------------------------- data


def test_small_range_is_every_batch_and_equals_kernel() -> None:
    (v,) = variants(YOLOV4)
    data = plot.plot_data([v], last=3000)
    (c,) = data.curves
    assert c.exact and not c.sampled
    assert np.array_equal(c.start, np.arange(1, 3001))
    want = np.array([kernel(v.schedule, b) for b in range(1, 3001)], dtype=np.float32)
    assert np.array_equal(c.lo, want) and np.array_equal(c.hi, want)
    assert [(m.batch, m.kind) for m in data.markers] == [(1000, "burn_in")]
    assert data.markers[0].lr == kernel(v.schedule, 1000) == f32(0.0013)


def test_envelope_of_yolov4_matches_brute_force_and_markers() -> None:
    (v,) = variants(YOLOV4)
    data = plot.plot_data([v])
    (c,) = data.curves
    assert not c.exact and c.start[0] == 1 and c.stop[-1] == 500_501
    assert len(c.start) <= plot.COLUMNS
    assert np.array_equal(c.start[1:], c.stop[:-1])  # columns tile the range
    full = darknet_lr(v.schedule, np.arange(1, 500_501, dtype=np.int64))
    offs = c.start - 1
    assert np.array_equal(c.lo, np.minimum.reduceat(full, offs))
    assert np.array_equal(c.hi, np.maximum.reduceat(full, offs))
    # the column holding the first step spans both LR levels
    k = int(np.searchsorted(c.start, 400_000, side="right") - 1)
    assert c.hi[k] == f32(0.0013) and c.lo[k] == kernel(v.schedule, 400_000)
    assert [(m.batch, m.kind) for m in data.markers] == [
        (1000, "burn_in"),
        (400_000, "step"),
        (450_000, "step"),
        (500_500, "max_batches"),
    ]
    for m in data.markers:
        assert m.lr == kernel(v.schedule, m.batch)
    assert data.x_label == "darknet batch (iteration)"
    assert (
        data.title == "yolov4.cfg: darknet learning rate (steps policy; alexeyab fork)"
    )


def test_chunking_does_not_change_the_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    sched = load(str(SAMPLES / "sgdr.cfg"))
    a = plot.envelope(sched, 1, 200_000, columns=777)
    monkeypatch.setattr(plot, "CHUNK", 1000)
    b = plot.envelope(sched, 1, 200_000, columns=777)
    for x, y in zip(a[:4], b[:4], strict=True):
        assert np.array_equal(x, y)


def test_sgdr_markers_at_cycle_ends() -> None:
    (v,) = variants(SAMPLES / "sgdr.cfg")
    data = plot.plot_data([v])
    ends = [m for m in data.markers if m.kind == "sgdr"]
    assert [m.batch for m in ends] == [1000, 1000 + 2000, 1000 + 2000 + 4000]
    assert all(m.lr == v.schedule.learning_rate_min == f32(0.0001) for m in ends)


def test_ten_million_batches_keep_a_one_batch_spike() -> None:
    opts = {
        "policy": ["steps", "poly"],
        "learning_rate": ["0.01"],
        "max_batches": ["10000000"],
        "steps": ["5000000,5000001"],
        "scales": ["10,.1"],
    }
    vs = plot.build_variants([], options=opts)
    assert [v.label for v in vs] == ["policy=steps", "policy=poly"]
    tracemalloc.start()
    t0 = time.perf_counter()
    data = plot.plot_data(vs)
    fig = plot.draw(data)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 60, elapsed
    assert peak < 300e6, peak
    steps_curve, poly_curve = data.curves
    assert steps_curve.stop[-1] == 10_000_001 and len(steps_curve.start) <= plot.COLUMNS
    k = int(np.searchsorted(steps_curve.start, 5_000_000, side="right") - 1)
    spike = f32(f32(0.01) * f32(10))
    assert kernel(vs[0].schedule, 5_000_000) == spike  # one batch at 0.1 ...
    assert kernel(vs[0].schedule, 5_000_001) == f32(spike * f32(0.1))  # ... then back
    assert steps_curve.hi[k] == spike
    assert np.count_nonzero(steps_curve.hi == spike) == 1
    # the drawn upper line holds the spike too
    line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "policy=steps")
    assert np.float32(np.nanmax(line.get_ydata())) == spike
    # poly: first column starts at the kernel's b=1 value, LR 0 exactly at max_batches
    assert poly_curve.hi[0] == kernel(vs[1].schedule, 1)
    zero = [r for r in data.regions if r.kind == "zero" and r.curve == 1]
    assert [(r.first, r.last) for r in zero] == [(10_000_000, 10_000_000)]


def test_zero_region_from_trailing_comma_and_log_note(tmp_path: Path) -> None:
    cfg = tmp_path / "tc.cfg"
    cfg.write_text(
        "[net]\nlearning_rate=0.01\npolicy=steps\nsteps=100,200,\nscales=.1,.1,\nmax_batches=300\n"
    )
    sched = load(str(cfg))
    first_zero = next(b for b in range(1, 301) if kernel(sched, b) == 0)
    data = plot.plot_data(variants(cfg), log=True)
    zero = [(r.first, r.last) for r in data.regions if r.kind == "zero"]
    assert zero == [(first_zero, 300)]
    assert any(n.startswith("log scale: LR ≤ 0 at 101 batches") for n in data.notes)


def test_negative_nan_and_inf_regions() -> None:
    neg = plot.build_variants(
        [], options={"policy": ["poly"], "power": ["1"], "max_batches": ["1000"]}
    )
    data = plot.plot_data(neg, last=1500)
    assert [(r.kind, r.first, r.last) for r in data.regions] == [
        ("zero", 1000, 1000),
        ("negative", 1001, 1500),
        ("after", 1001, 1500),  # past max_batches: shaded as never used by darknet
    ]
    assert kernel(neg[0].schedule, 1001) < 0
    nan = plot.build_variants([], options={"policy": ["poly"], "max_batches": ["0"]})
    data = plot.plot_data(nan, first=0, last=50)
    assert [(r.kind, r.first, r.last) for r in data.regions] == [
        ("nan", 0, 0),
        ("inf", 1, 50),
    ]
    assert np.isnan(
        data.curves[0].hi
    ).all()  # nothing finite to draw, only shaded regions


def test_vs_torch_curve_and_error_panel() -> None:
    (v,) = variants(SAMPLES / "sgdr.cfg")
    data = plot.plot_data([v], vs_torch=True)
    _, torch_curve = data.curves
    assert torch_curve.kind == "torch" and torch_curve.label == "PyTorch DarknetLR"
    assert np.array_equal(torch_curve.start, np.arange(1, 7001))
    want = np.array([kernel(v.schedule, b) for b in range(1, 7001)], dtype=np.float32)
    assert np.array_equal(torch_curve.hi, want)
    (err,) = data.errors
    assert err.steps == 7000 and err.max_ulp == 0 and not err.hi.any()
    fig = plot.draw(data)
    assert len(fig.axes) == 2 and "ulps" in fig.axes[1].get_ylabel()


def test_x_units_images_and_epochs() -> None:
    (v,) = variants(YOLOV4)
    assert v.schedule.images_per_iteration == 64
    data = plot.plot_data([v], x="images")
    assert data.curves[0].x_per_batch == 64 and data.x_label.startswith("images seen")
    data = plot.plot_data([v], x="epochs", images=118_287)
    assert data.curves[0].x_per_batch == pytest.approx(64 / 118_287)
    assert data.x_label == "epoch (118,287 images)"


# ----------------------------------------------------------------------------- variants


def test_overlay_labels_name_what_differs() -> None:
    two = variants(YOLOV4, SAMPLES / "yolov4-4gpu.cfg")
    assert [v.label for v in two] == ["yolov4.cfg", "yolov4-4gpu.cfg"]
    forks = variants(SAMPLES / "sgdr.cfg", forks=("pjreddie", "alexeyab"))
    assert [v.label for v in forks] == ["pjreddie", "alexeyab"]
    assert [v.schedule.fork for v in forks] == ["pjreddie", "alexeyab"]
    mb = plot.build_variants(
        [], options={"policy": ["poly"], "max_batches": ["392480", "700000"]}
    )
    assert [v.label for v in mb] == ["max_batches=392480", "max_batches=700000"]
    assert [v.schedule.max_batches for v in mb] == [392_480, 700_000]
    gp = variants(YOLOV4, gpus=(1, 4))
    assert [v.label for v in gp] == ["1 GPU", "4 GPUs"]
    assert variants(YOLOV4, gpus=(4,))[0].label == "yolov4.cfg (alexeyab, 4 GPUs)"
    data = plot.plot_data(gp, last=2000)
    assert data.curves[1].hi[-1] == f32(f32(0.0013) * 4)  # alexeyab: lr × GPUs
    fig = plot.draw(plot.plot_data(mb))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["max_batches=392480", "max_batches=700000"]


def test_overrides_use_the_forks_number_rules_and_keep_lines(tmp_path: Path) -> None:
    (v,) = plot.build_variants([], options={"max_batches": ["2e3"]})
    assert v.schedule.max_batches == 2  # atoi, as darknet reads it
    cfg = tmp_path / "c.cfg"
    cfg.write_text("[net]\nlearning_rate=0.01\npolicy=steps\nsteps=10,20\nscales=.1\n")
    # an inserted key must not shift the line the error names
    with pytest.raises(Exception, match=r"c\.cfg:5: scales"):
        variants(cfg, options={"max_batches": ["100"]})
    # an override that breaks the cfg names the option
    with pytest.raises(Exception, match=r"--set scales=\.1"):
        variants(cfg, options={"scales": [".1"], "steps": ["10,20"]})
    text, where, inserted = plot.apply_overrides(
        "[net]\r\nbatch=64\r\nlearning_rate=0.1\r\n[conv]\r\nx=1\r\n",
        {"learning_rate": "0.2", "max_batches": "9"},
    )
    assert (
        text
        == "[net]\r\nbatch=64\r\nlearning_rate=0.2\r\nmax_batches=9\r\n[conv]\r\nx=1\r\n"
    )
    assert where == {3: "learning_rate", 4: "max_batches"} and inserted == [4]


def test_too_many_curves_is_an_error() -> None:
    with pytest.raises(Exception, match="at most 12"):
        plot.build_variants([], options={"power": [str(p) for p in range(13)]})


# ----------------------------------------------------------------------------- CLI and files


@pytest.mark.parametrize(
    ("ext", "magic"),
    [("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<svg"), ("pdf", b"%PDF")],
)
def test_formats_written_atomically(tmp_path: Path, ext: str, magic: bytes) -> None:
    out = tmp_path / f"lr.{ext}"
    res = run(str(SAMPLES / "sgdr.cfg"), "-o", str(out))
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    assert magic in data[:400] and len(data) > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    res = run(str(SAMPLES / "sgdr.cfg"), "-o", str(out))
    assert res.exit_code == 2 and "--force" in res.output
    assert out.read_bytes() == data
    assert run(str(SAMPLES / "sgdr.cfg"), "-o", str(out), "--force").exit_code == 0


def test_default_output_name_and_issue_example(tmp_path: Path) -> None:
    res = subprocess.run(
        [CFGSCHED, "plot", "--policy", "poly", "--power", "4", "--learning-rate", "0.01",
         "--max-batches", "392480", "--max-batches", "700000"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "lr_schedule.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in res.stderr


def test_png_to_stdout() -> None:
    res = run(str(SAMPLES / "sgdr.cfg"), "-o", "-")
    assert res.exit_code == 0
    assert res.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n" and len(res.stdout_bytes) > 5000


@needs_darknet_cfgs
@pytest.mark.parametrize("name", sorted(p.name for p in DARKNET_CFGS.glob("*.cfg")))
def test_every_real_cfg_plots_with_markers_at_kernel_values(name: str) -> None:
    (v,) = variants(DARKNET_CFGS / name)
    data = plot.plot_data([v])
    (c,) = data.curves
    assert c.start[0] == 1 and c.stop[-1] == data.last + 1
    for m in data.markers:
        assert m.lr == kernel(v.schedule, m.batch) or (
            np.isnan(m.lr) and np.isnan(kernel(v.schedule, m.batch))
        )
    sched = v.schedule
    for b in (1, data.last // 2, data.last):
        k = int(np.searchsorted(c.start, b, side="right") - 1)
        want = kernel(sched, b)
        assert c.lo[k] <= want <= c.hi[k]


def test_stdin_and_warnings_to_stderr(tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    text = "[net]\npolicy=steps #x\nmax_batches=100\n"
    res = run("-", "-o", str(out), input=text)
    assert res.exit_code == 0, res.output
    assert "warning: <stdin>:2:" in res.stderr and "P00" in res.stderr
    assert out.exists()


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    cases = [
        (["--set", "max_batches"], "expected KEY=VALUE"),
        (["--x", "epochs"], "--images"),
        ([str(YOLOV4), "-o", str(tmp_path / "x.gif")], "unknown image format"),
        ([str(tmp_path / "missing.cfg")], "missing.cfg"),
        (["--policy", "steps", "--steps", "1,2", "--scales", ".1"], "fewer scales"),
        (["--from", "10", "--to", "5"], "empty or negative range"),
    ]
    for args, text in cases:
        extra = [] if "-o" in args else ["-o", str(tmp_path / "o.png")]
        res = run(*args, *extra)
        assert res.exit_code == 2, (args, res.output)
        assert text in res.output and len(res.output.strip().splitlines()) == 1, (
            res.output
        )
        assert "Traceback" not in res.output
    assert not (tmp_path / "o.png").exists()


def test_plot_does_not_import_torch_unless_vs_torch(tmp_path: Path) -> None:
    def modules(*args: str) -> str:
        code = (
            "import sys\n"
            "from cfgsched.cli import main\n"
            f"sys.argv = ['cfgsched', 'plot', *{list(args)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print('EXIT', code, 'torch' in sys.modules)\n"
        )
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        return res.stdout + res.stderr

    cfg = str(SAMPLES / "sgdr.cfg")
    assert "EXIT 0 False" in modules(cfg, "-o", str(tmp_path / "a.png"))
    assert "EXIT 0 True" in modules(cfg, "--vs", "torch", "-o", str(tmp_path / "b.png"))


def test_help_has_worked_example() -> None:
    res = run("--help")
    assert res.exit_code == 0
    assert "cfgsched plot sample_cfgs/yolov4.cfg -o yolov4-lr.png" in res.output
    for opt in (
        "--sgdr-cycle",
        "--learning-rate-min",
        "--set",
        "--vs",
        "--log",
        "--force",
    ):
        assert opt in res.output


def test_readme_image_is_produced_by_the_documented_command(tmp_path: Path) -> None:
    import matplotlib.image

    readme = (ROOT / "README.md").read_text()
    cmd = "cfgsched plot sample_cfgs/yolov4.cfg -o sample_cfgs/yolov4-lr.png"
    assert cmd in readme and "](sample_cfgs/yolov4-lr.png)" in readme
    fresh = tmp_path / "yolov4-lr.png"
    res = CliRunner().invoke(
        main,
        ["plot", str(SAMPLES / "yolov4.cfg"), "-o", str(fresh)],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    committed = matplotlib.image.imread(SAMPLES / "yolov4-lr.png")
    regenerated = matplotlib.image.imread(fresh)
    assert committed.shape == regenerated.shape
    # the image in the README is what the command draws now (a few anti-aliased pixels
    # may differ across font/freetype builds)
    assert np.mean(np.abs(committed - regenerated) > 0.1) < 0.001


def test_parse_of_default_cfg_is_darknet_defaults() -> None:
    (v,) = plot.build_variants([])
    d = parse(plot.DEFAULTS_CFG)
    assert v.schedule.learning_rate == d.learning_rate == f32(0.001)
    assert v.schedule.policy == d.policy and v.label == "darknet defaults (alexeyab)"
