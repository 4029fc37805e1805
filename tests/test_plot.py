"""``cfgsched plot``: the figure's data equals darknet's LR; markers, regions, overlays, files.

Expected values come from the scalar kernel (``cfgsched.kernel.formulas.rate``) or from a
reduction of the oracle, never from the code under test.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cfgsched import policies as _policies
from cfgsched.cli import main
from cfgsched.errors import CfgError
from cfgsched.kernel import formulas as _kernel
from cfgsched.options import Options
from cfgsched.oracle import darknet_lr
from cfgsched.reader.parser import load, parse
from cfgsched.tools import plot
from cfgsched.tools.editor import Edit, edit_schedule
from tests.docs import section
from tests.golden import DARKNET_CFGS, ROOT, needs_darknet_cfgs

CFGSCHED = str(Path(sys.executable).with_name("cfgsched"))
SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = SAMPLES / "yolov4.cfg"
f32 = _kernel.f32


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["plot", *args], input=input)


def variants(*cfgs: Path, **kw: Any) -> list[plot.Variant]:
    texts = [(p.read_text(), str(p)) for p in cfgs]
    return plot.build_variants(texts, **kw)


def kernel(sched: Any, b: int) -> float:
    return _policies.rate(sched.kernel_params(), b)


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

    def values(b: Any) -> Any:
        return darknet_lr(sched, b)

    a = plot.envelope(values, 1, 200_000, columns=777)
    monkeypatch.setattr(plot, "CHUNK", 1000)
    b = plot.envelope(values, 1, 200_000, columns=777)
    for f in ("start", "stop", "lo", "hi"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    # the columns hold the min/max of every batch in them
    full = darknet_lr(sched, np.arange(1, 200_001, dtype=np.int64))
    assert np.array_equal(b.lo, np.minimum.reduceat(full, b.start - 1))
    assert np.array_equal(b.hi, np.maximum.reduceat(full, b.start - 1))


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
    data = plot.plot_data(vs)
    fig = plot.draw(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
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
        "width=416\nheight=416\nchannels=3\n"
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
    data = plot.plot_data([v], vs="torch")
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
    assert data.curves[0].x_per_unit == 64 and data.x_label.startswith("images seen")
    data = plot.plot_data([v], x="epochs", images=118_287)
    assert data.curves[0].x_per_unit == pytest.approx(64 / 118_287)
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
    # the cfg is read as every command reads it before any override: its own error
    bad = tmp_path / "bad.cfg"
    bad.write_text(
        "[net]\nlearning_rate=0.01\npolicy=steps\nsteps=10,20\nscales=.1\n"
        "width=416\nheight=416\nchannels=3\n"
    )
    with pytest.raises(CfgError, match=r"bad\.cfg:5: scales: .*fewer scales"):
        variants(bad, options={"scales": [".1,.1"]})
    # an error the overrides cause on a cfg line names that line (inserted keys do not
    # shift it); one on an override's own line names the option
    cfg = tmp_path / "c.cfg"
    cfg.write_text(
        "[net]\nlearning_rate=0.01\nscales=.1\npolicy=poly\nwidth=416\nheight=416\nchannels=3\n"
        "\n[maxpool]\nsize=2\n"
    )
    with pytest.raises(CfgError, match=r"c\.cfg:3: scales: .*fewer scales"):
        variants(cfg, options={"policy": ["steps"], "steps": ["10,20"]})
    cfg.write_text(
        "[net]\nlearning_rate=0.01\nsteps=10,20\npolicy=poly\nwidth=416\nheight=416\nchannels=3\n"
        "\n[maxpool]\nsize=2\n"
    )
    with pytest.raises(CfgError, match=r"^--set scales=\.1: scales: .*fewer scales"):
        variants(cfg, options={"policy": ["steps"], "scales": [".1"]})
    # CRLF kept, an absent key inserted after the last [net] entry
    crlf = tmp_path / "crlf.cfg"
    crlf.write_bytes(
        b"[net]\r\nbatch=64\r\nlearning_rate=0.1\r\nwidth=416\r\nheight=416\r\nchannels=3\r\n"
        b"[maxpool]\r\nsize=2\r\n"
    )
    (v,) = variants(crlf, options={"learning_rate": ["0.2"], "max_batches": ["9"]})
    assert v.schedule.learning_rate == f32(0.2) and v.schedule.max_batches == 9
    assert v.schedule.lines["learning_rate"] == 3  # the file's own line number


@pytest.mark.parametrize("sep", ["\x0c", "\u2028", "\x0b", "\x1c", "\x85"])
def test_overrides_split_lines_at_newline_only(sep: str) -> None:
    """darknet splits lines at \\n only: a form feed or U+2028 inside a line is part of
    it, so `policy=steps` after one is not a key of its own and an override adds one."""
    text = (
        f"[net]\nmomentum=0.9{sep}policy=steps\nlearning_rate=0.1\nmax_batches=100\n"
        "width=416\nheight=416\nchannels=3\n"
    )
    base = parse(text)
    assert base.policy.cfg_name == "constant"  # darknet never sees policy=steps
    s = edit_schedule(text, [Edit("policy", "poly")], fork="alexeyab", source="t.cfg")[
        1
    ]
    assert s.policy.cfg_name == "poly" and s.learning_rate == f32(0.1)
    assert s.momentum == base.momentum
    # a key spelled with a character the C forks keep is not the key darknet reads
    text = f"[net]\n{sep}learning_rate=0.5\nmax_batches=100\nwidth=416\nheight=416\nchannels=3\n"
    assert parse(text).learning_rate == f32(0.001)
    s = edit_schedule(
        text, [Edit("learning_rate", "0.2")], fork="alexeyab", source="t.cfg"
    )[1]
    assert s.learning_rate == f32(0.2)


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
    # re-running replaces plot's own output (marked as cfgsched's in its metadata)
    res = run(str(SAMPLES / "yolov4.cfg"), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != data and magic in out.read_bytes()[:400]
    # the same kind of file made by someone else needs --force
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    theirs = tmp_path / f"theirs.{ext}"
    fig = Figure()
    FigureCanvasAgg(fig)
    fig.subplots().plot([1, 2, 3])
    fig.savefig(theirs, format=ext)
    before = theirs.read_bytes()
    res = run(str(SAMPLES / "sgdr.cfg"), "-o", str(theirs))
    assert res.exit_code == 2 and "--force" in res.output
    assert theirs.read_bytes() == before
    assert run(str(SAMPLES / "sgdr.cfg"), "-o", str(theirs), "--force").exit_code == 0
    assert theirs.read_bytes() != before


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
    text = (
        "[net]\npolicy=steps #x\nmax_batches=100\nwidth=416\nheight=416\nchannels=3\n"
    )
    res = run("-", "-o", str(out), input=text)
    assert res.exit_code == 0, res.output
    assert "warning: <stdin>:2:" in res.stderr and "P00" in res.stderr
    assert out.exists()


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    cases = [
        (["--set", "max_batches"], "expected KEY=VALUE"),
        (["--x", "epochs"], "--images"),
        ([str(YOLOV4), "-o", str(tmp_path / "x.gif")], "unknown output format"),
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

    # the README shows the image; the plot section of the docs shows it with its command
    readme = (ROOT / "README.md").read_text()
    assert "](sample_cfgs/yolov4-lr.png)" in readme
    documented = section("commands-view")
    cmd = "cfgsched plot sample_cfgs/yolov4.cfg -o sample_cfgs/yolov4-lr.png"
    assert cmd in documented and "](sample_cfgs/yolov4-lr.png)" in documented
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


# ----------------------------------------------------------------------------- translation


def rate_at(sched: Any, b: int, lr: float | None = None) -> float:
    """darknet's formula at batch b with base rate ``lr`` (the scalar kernel)."""
    p = sched.kernel_params()
    if lr is not None:
        p = p._replace(lr=lr)
    return _policies.rate(p, b)


def test_steps_axis_follows_torch_batch() -> None:
    """--x steps --torch-batch 16: step i is at b = (i + 1)·16 // 64 (yolov4: batch 64)."""
    (v,) = variants(YOLOV4, translation=lambda s, n: Options(images_per_step=16))
    data = plot.plot_data([v], x="steps", last=5000)
    (c,) = data.curves
    assert data.domain == "steps" and data.first == 0 and c.exact
    assert np.array_equal(c.start, np.arange(0, 5001))
    want = [rate_at(v.schedule, (i + 1) * 16 // 64) for i in range(5001)]
    assert np.array_equal(c.hi, np.array(want, dtype=np.float32))
    # the burn-in end (b = 1000) is first reached by step 3999: (3999 + 1)·16 // 64 = 1000
    assert [(m.at, m.batch, m.kind) for m in data.markers] == [(3999, 1000, "burn_in")]
    assert data.markers[0].lr == f32(0.0013)
    assert (
        data.x_label
        == "optimizer step i (0-based; b = (i + 1)*16 // 64 (16 images per step))"
    )
    # the default range is the whole run: every step that starts before darknet's
    # max_batches × batch = 500,500 × 64 images are used up; the last one ends batch 500,500
    full = plot.plot_data([v], x="steps")
    assert full.last == -(-500_500 * 64 // 16) - 1 == 2_001_999
    assert full.last * 16 < 500_500 * 64 <= (full.last + 1) * 16
    assert (full.last + 1) * 16 // 64 == 500_500


def test_gpus_scale_the_curve_and_steps_are_n_batches_apart() -> None:
    """alexeyab -gpus 4: LR x 4 at every batch; step i is at b = 4(i + 1)."""
    one, four = variants(YOLOV4, gpus=(1, 4))
    data = plot.plot_data([four], x="steps", last=300)
    lr4 = f32(f32(0.0013) * 4)
    want = [rate_at(four.schedule, 4 * (i + 1), lr4) for i in range(301)]
    assert np.array_equal(data.curves[0].hi, np.array(want, dtype=np.float32))
    assert data.markers[0].at == 249 and data.markers[0].lr == lr4
    batches = plot.plot_data([one, four], last=1200)
    assert batches.curves[1].hi[-1] == lr4 and batches.curves[0].hi[-1] == f32(0.0013)
    hk = variants(YOLOV4, forks=("hankai",), gpus=(4,))[0]
    assert plot.plot_data([hk], last=1200).curves[0].hi[-1] == f32(0.0013)


def test_ideal_and_double_apply_to_the_curve() -> None:
    (v,) = variants(YOLOV4, translation=lambda s, n: Options(ngpus=4, ideal=True))
    data = plot.plot_data([v], last=5000)
    adv = v.schedule.with_values(
        learning_rate=v.schedule.learning_rate / 4, burn_in=4000
    )
    lr = f32(adv.learning_rate * 4)  # alexeyab still multiplies by 4
    want = [
        _policies.rate(adv.kernel_params()._replace(lr=lr), b) for b in range(1, 5001)
    ]
    assert np.array_equal(data.curves[0].hi, np.array(want, dtype=np.float32))
    assert [(m.batch, m.kind) for m in data.markers] == [(4000, "burn_in")]
    (d,) = variants(YOLOV4, translation=lambda s, n: Options(exact=False))
    dbl = plot.plot_data([d], last=999).curves[0].hi
    want = [
        f32(_policies.rate(d.schedule.kernel_params(), b, False))
        for b in range(1, 1000)
    ]
    assert np.array_equal(dbl, np.array(want, dtype=np.float32))


def test_vs_torch_under_a_translation_is_exact() -> None:
    """The stepped DarknetScheduler equals the plotted curve (trace of 2 GPUs, batches)."""
    (v,) = variants(
        SAMPLES / "sgdr.cfg",
        translation=lambda s, n: Options(ngpus=2, multigpu="trace"),
    )
    data = plot.plot_data([v], vs="torch", last=3000)
    dark, torch_curve = data.curves
    (err,) = data.errors
    assert err.max_ulp == 0 and err.steps > 1400
    # every torch point lies on the darknet curve at its batch
    k = torch_curve.start - dark.start[0]
    assert np.array_equal(torch_curve.hi, dark.hi[k])
    steps = plot.plot_data([v], vs="torch", x="steps", last=999)
    assert steps.errors[0].steps == 1000 and steps.errors[0].max_ulp == 0


def test_resume_marks_the_start_and_steps_begin_there(tmp_path: Path) -> None:
    import struct

    weights = tmp_path / "w.weights"
    sched = load(str(YOLOV4))
    weights.write_bytes(struct.pack("<iiiQ", 0, 2, 5, 1234 * 64) + b"\0" * 16)
    res = run(str(YOLOV4), "--resume-from", str(weights), "--x", "steps", "--to", "2000",
              "-o", str(tmp_path / "r.png"))  # fmt: skip
    assert res.exit_code == 0, res.output
    (v,) = variants(YOLOV4, translation=lambda s, n: Options(resume_iteration=1234))
    data = plot.plot_data([v], x="steps", last=2000)
    assert data.first == 1234  # the resumed run's first step
    assert [(m.at, m.kind) for m in data.markers] == [(1234, "resume")]
    assert data.markers[0].lr == rate_at(sched, 1235)


def test_numbers_and_cfgs_are_checked_like_every_command(tmp_path: Path) -> None:
    empty = tmp_path / "empty.cfg"
    empty.write_text("")
    nosec = tmp_path / "nosec.cfg"
    nosec.write_text("batch=64\nmax_batches=100\n")
    rnd = tmp_path / "rnd.cfg"
    rnd.write_bytes(bytes(range(1, 256)) * 3)
    out = str(tmp_path / "o.png")
    cases = [
        ([str(empty)], "no sections"),
        (["/dev/null"], "not a regular file"),
        ([str(nosec)], "nosec.cfg:1"),
        ([str(rnd)], "rnd.cfg:1"),
        (["--to", "100000000000000000000"], "--to"),
        (["--to", "9223372036854775807"], "--to"),
        (["--from", "-1"], "--from"),
        (["--images", "100000000000000000000", "--x", "epochs"], "--images"),
        (["--gpus", "0"], "--gpus"),
        (["--torch-batch", "0"], "--torch-batch"),
        (["--multigpu", "trace"], "--multigpu"),
        (["--accumulate", "2"], "--torch-batch"),
        ([str(YOLOV4), "--x", "steps", "--torch-batch", "1073741824", "--accumulate",
          "1048576", "--to", "4611686018427387904"], "beyond int64"),
    ]  # fmt: skip
    for args, text in cases:
        res = subprocess.run(
            [sys.executable, "-m", "cfgsched", "plot", *args, "-o", out],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert res.returncode == 2, (args, res.stderr)
        assert text in res.stderr and len(res.stderr.strip().splitlines()) == 1, (
            args,
            res.stderr,
        )
    assert not Path(out).exists()


def test_translation_options_help_is_the_shared_text() -> None:
    from cfgsched.cli import kit

    text = " ".join(run("--help").output.split())
    for decls, _, _, help_text in kit._TRANSLATION_OPTIONS:
        assert decls[0].split("/")[0] in text
        assert " ".join(help_text.split())[:40] in text


def test_library_refuses_unknown_x_and_approximation() -> None:
    (v,) = variants(YOLOV4)
    with pytest.raises(ValueError, match="x must be one of batches, images"):
        plot.plot_data([v], x="seconds")
    with pytest.raises(ValueError, match="unknown --vs overlay 'keras'"):
        plot.plot_data([v], vs="keras")
