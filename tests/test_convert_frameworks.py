"""The framework formats of ``cfgsched convert`` without the frameworks: what the files
hold, their source quality, the approximations' reports, ``--loss-reduction sum``.

The real frameworks run in ``test_ultralytics.py`` and ``test_mmengine.py``. Here: every
variant of ``test_codegen`` as an Ultralytics and an MMEngine module (``lr_at`` bit-exact
against the translation, every top-level name used, ruff-format stable and ruff-clean,
hostile cfgs reduced to our own names and strings), the hyp YAML, and the optimizer for a
summed loss (one SGD step equals the library's step on the mean).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner, Result

import cfgsched
from cfgsched.adapters.approx import fit_ultralytics
from cfgsched.adapters.optim import build_optimizer
from cfgsched.cli import convert as convert_cli
from cfgsched.cli import main
from cfgsched.codegen import FORMATS, CodegenError, generate, render
from cfgsched.codegen.source import safe_name
from cfgsched.options import Options
from cfgsched.run import translate
from tests import modules
from tests.golden import float_to_bits
from tests.test_codegen import (
    HOSTILE,
    ODD_NAMES,
    VARIANTS,
    module_shape,
    top_level_names,
    variant_schedule,
)

ROOT = Path(__file__).resolve().parents[1]
YOLOV4 = ROOT / "sample_cfgs" / "yolov4.cfg"
RUFF = Path(sys.executable).parent / "ruff"
FRAMEWORKS = ("ultralytics", "mmengine")
#: Names each format offers its user (every other top-level name must be used).
PUBLIC = {
    "ultralytics": {"CFGSCHED", "LEARNING_RATE", "MOMENTUM", "lr_at", "TRAIN_ARGS"}
    | {"attach"},
    "mmengine": {"CFGSCHED", "LEARNING_RATE", "lr_at", "DarknetParamScheduler"}
    | {"param_scheduler", "optim_wrapper"},
}
#: The variants a framework module can take (its own format, no native style).
CASES = [
    (i, fmt)
    for fmt in FRAMEWORKS
    for i, (_, _, kw) in enumerate(VARIANTS)
    if kw.get("style", "class") == "class"
]


def variant(i: int, fmt: str) -> str:
    spec, options, _ = VARIANTS[i]
    return generate(variant_schedule(spec), options, fmt=fmt)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["convert", *args])


def one_line_error(res: Result, needle: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cfgsched: error: "), res.stderr
    assert needle in lines[0], lines[0]


# ----------------------------------------------------------------------- modules


@pytest.mark.parametrize(("i", "fmt"), CASES)
def test_lr_at_equals_the_translation(i: int, fmt: str) -> None:
    spec, options, _ = VARIANTS[i]
    t = translate(variant_schedule(spec), options)
    text = variant(i, fmt)
    if fmt == "mmengine":  # lr_at without MMEngine: the module up to the class
        text = text[: text.index("@PARAM_SCHEDULERS")]
        text = "\n".join(
            line for line in text.splitlines() if not line.startswith("from mmengine")
        )
    with modules.cfgsched_blocked():
        m = modules.load(text, f"gen_fw_{fmt}_{i}")
    steps = [*range(0, 1200, 7), 3999, 10**5, 399_999, 10**7]
    got = [m.lr_at(s) for s in steps]
    assert [float_to_bits(x) for x in got] == [float_to_bits(t.lr(s)) for s in steps]


@pytest.mark.parametrize(("i", "fmt"), CASES)
def test_every_top_level_name_is_used(i: int, fmt: str) -> None:
    tree = ast.parse(variant(i, fmt))
    defined = {name for node in tree.body for name in top_level_names(node)}
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name):
                used.add(root.id)
    assert not sorted(defined - used - PUBLIC[fmt])
    assert PUBLIC[fmt] <= defined


def test_imports_only_what_the_format_needs() -> None:
    ultra = generate(cfgsched.load(YOLOV4), fmt="ultralytics")
    mm = generate(cfgsched.load(YOLOV4), fmt="mmengine")
    tops = {
        fmt: {
            (a.name if isinstance(node, ast.Import) else node.module or "").split(".")[
                0
            ]
            for node in ast.parse(text).body
            if isinstance(node, ast.Import | ast.ImportFrom)
            for a in node.names
        }
        for fmt, text in (("ultralytics", ultra), ("mmengine", mm))
    }
    assert tops["ultralytics"] <= set(sys.stdlib_module_names)  # not even torch
    assert tops["mmengine"] - set(sys.stdlib_module_names) == {"mmengine"}


@pytest.mark.skipif(not RUFF.exists(), reason="ruff not installed next to python")
def test_ruff_format_and_check_leave_them_alone(tmp_path: Path) -> None:
    texts = [variant(i, fmt) for i, fmt in CASES]
    texts += [
        render(cfgsched.load(YOLOV4), fmt="mmengine", style="native", options=o).text
        for o in (None, Options(images_per_step=16))
    ]
    texts += [hostile(cfg, ODD_NAMES[0], fmt) for cfg in HOSTILE for fmt in FRAMEWORKS]
    modules.assert_ruff_clean(texts, tmp_path)


def hostile(cfg: str, name: str, fmt: str) -> str:
    return generate(cfgsched.parse(cfg, source=name), fmt=fmt)


@pytest.mark.parametrize("fmt", FRAMEWORKS)
@pytest.mark.parametrize("cfg", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_cfg_only_our_names_and_strings(cfg: str, fmt: str) -> None:
    allowed: tuple[set[str], set[str], set[str]] = (set(), set(), set())
    for i, f in CASES:
        if f == fmt:
            shape = module_shape(variant(i, fmt))
            allowed = (
                allowed[0] | shape[0],
                allowed[1] | shape[1],
                allowed[2] | shape[2],
            )
    for name in ODD_NAMES:
        types, names, strings, doc = module_shape(hostile(cfg, name, fmt))
        assert types <= allowed[0]
        assert names <= allowed[1]
        assert strings <= allowed[2] | {safe_name(name)}
        rest = doc.replace(safe_name(name), "NAME")
        for bad in ("__import__", "\\", "system", "ü", "'''", '"""'):
            assert bad not in rest, (bad, doc)


def test_sizes() -> None:
    """yolov4: the Ultralytics module <= 190 lines, MMEngine's <= 160 (docstrings in)."""
    schedule = cfgsched.load(YOLOV4)
    counts = {fmt: len(generate(schedule, fmt=fmt).splitlines()) for fmt in FRAMEWORKS}
    assert counts["ultralytics"] <= 190 and counts["mmengine"] <= 160, counts


def test_records() -> None:
    schedule = cfgsched.load(YOLOV4)
    for fmt in FRAMEWORKS:
        m = ast.literal_eval(
            next(
                node.value
                for node in ast.parse(generate(schedule, fmt=fmt)).body
                if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "CFGSCHED"
            )
        )
        assert (m["format"], m["style"], m["cfg"]) == (fmt, "class", "yolov4.cfg")
        assert Options.from_record(m["options"]) == Options()
        assert "loss_reduction" not in m


# ----------------------------------------------------------------------- Ultralytics


def test_train_args_and_the_step_geometry() -> None:
    schedule = cfgsched.load(YOLOV4)
    text = generate(schedule, fmt="ultralytics")
    text4 = generate(
        schedule, Options(ngpus=4), fmt="ultralytics", loss_reduction="sum"
    )
    with modules.cfgsched_blocked():
        m = modules.load(text, "gen_fw_train_args")
        m4 = modules.load(text4, "gen_fw_train_args4")
    assert m.TRAIN_ARGS == {
        "optimizer": "SGD",
        "lr0": schedule.learning_rate,
        "lrf": 1.0,
        "cos_lr": False,
        "momentum": schedule.momentum,
        "weight_decay": schedule.decay,
        "warmup_epochs": 0.0,
        "warmup_momentum": schedule.momentum,
        "warmup_bias_lr": 0.0,
        "nbs": 64,
        "amp": False,
        "time": None,
    }
    assert (m.LOSS_SCALE, m.IMAGES_PER_STEP) == (1, 64)
    # -gpus 4 as DDP: 256 images per step, b = 4 (i + 1), the LR x 4
    assert (m4.LOSS_SCALE, m4.TRAIN_ARGS["nbs"]) == (256, 256)
    assert m4.lr_at(999) == translate(schedule, Options(ngpus=4)).lr(999)


def test_adam_cfg_sets_betas_and_eps() -> None:
    schedule = cfgsched.load(YOLOV4).with_values(adam=True, b1=0.8, b2=0.95, eps=1e-7)
    text = generate(schedule, fmt="ultralytics")
    with modules.cfgsched_blocked():
        m = modules.load(text, "gen_fw_adam")
    assert (m.TRAIN_ARGS["optimizer"], m.TRAIN_ARGS["momentum"]) == ("Adam", m.B1)
    assert 'group["betas"] = (B1, B2)' in text and "nesterov" not in text
    assert (m.B1, m.B2, m.EPS) == (schedule.b1, schedule.b2, schedule.eps)


def test_hyp_yaml_is_the_fit_with_its_report(tmp_path: Path) -> None:
    out = tmp_path / "hyp.yaml"
    res = invoke(
        str(YOLOV4), "--format", "ultralytics-hyp", "--images", "5000",
        "--torch-batch", "16", "--accumulate", "4", "-o", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    schedule = cfgsched.load(YOLOV4)
    fit = fit_ultralytics(schedule, Options(images_per_step=64), images=5000, batch=16)
    hyp = yaml.safe_load(out.read_text())
    assert hyp == fit.hyp
    assert (hyp["nbs"], hyp["batch"], hyp["optimizer"]) == (64, 16, "SGD")
    assert res.stderr.splitlines() == fit.comment()
    assert res.stderr.startswith("approximation, not exact: max relative LR error")
    comments = " ".join(x[2:] for x in out.read_text().splitlines() if x[:1] == "#")
    assert "approximation, not exact: max relative LR error" in comments
    assert "(exact)" not in comments


def test_hyp_yaml_world_size_and_odd_floats() -> None:
    schedule = cfgsched.load(YOLOV4).with_values(decay=1e-5)
    out = render(
        schedule,
        Options(images_per_step=64),
        fmt="ultralytics-hyp",
        images=900,
        batch=32,
    )
    hyp = yaml.safe_load(out.text)
    assert isinstance(hyp["weight_decay"], float) and hyp["weight_decay"] > 0
    assert hyp["batch"] == 32
    res = invoke(
        str(YOLOV4), "--format", "ultralytics-hyp", "--images", "900",
        "--torch-batch", "16", "--accumulate", "2", "--world-size", "2",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert yaml.safe_load(res.stdout)["batch"] == 32


# ----------------------------------------------------------------------- summed loss


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
        torch.nn.Linear(8, 3),
    )  # fmt: skip


def one_step(net: torch.nn.Module, opt: torch.optim.Optimizer, reduce: str) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(64, 1, 4, 4), torch.randn(64, 3)
    loss = ((net(x) - y) ** 2).sum(1)
    opt.zero_grad()
    (loss.sum() if reduce == "sum" else loss.mean()).backward()
    opt.step()


@pytest.mark.parametrize("adam", [False, True])
def test_summed_loss_step_equals_the_librarys_mean_step(adam: bool) -> None:
    """64 images (the cfg's batch): the generated build_optimizer on a summed loss moves
    every parameter exactly as cfgsched's build_optimizer on the mean."""
    schedule = cfgsched.load(YOLOV4).with_values(adam=adam)
    text = generate(schedule, with_optimizer=True, loss_reduction="sum")
    lr = float(cfgsched.darknet_lr(schedule, 1))  # the library, outside the block
    with modules.cfgsched_blocked():
        m = modules.load(text, f"gen_fw_sum_{adam}")
        net_sum = model()
        opt_sum = m.build_optimizer(net_sum)
        sched = m.build_scheduler(opt_sum, rescale=True)  # as the usage says
        for group in opt_sum.param_groups:  # darknet's LR for b = 1, divided by 64
            assert group["lr"] == (lr if adam else lr / 64)
        one_step(net_sum, opt_sum, "sum")
        sched.step()
    net_mean = model()
    opt_mean = build_optimizer(net_mean, schedule)
    for group in opt_mean.param_groups:
        group["lr"] = float(cfgsched.darknet_lr(schedule, 1))
    one_step(net_mean, opt_mean, "mean")
    for a, b in zip(net_sum.parameters(), net_mean.parameters(), strict=True):
        if adam:  # Adam's normalisation: equal up to its eps
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9)
        else:
            assert torch.equal(a, b)
    assert m.CFGSCHED["loss_reduction"] == "sum" and m.SUMMED_IMAGES == 64


def test_summed_images_default_and_option() -> None:
    def summed(*args: str) -> Any:
        res = invoke(str(YOLOV4), "--with-optimizer", "--loss-reduction", "sum", *args)
        assert res.exit_code == 0, res.stderr
        tree = ast.parse(res.stdout)
        return next(
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "SUMMED_IMAGES"
        )

    assert summed() == 64
    assert summed("--torch-batch", "16", "--accumulate", "2", "--world-size", "4") == 32
    assert summed("--summed-images", "48") == 48
    res = invoke(str(YOLOV4), "--format", "lightning", "--loss-reduction", "sum")
    assert res.exit_code == 0 and "LEARNING_RATE / SUMMED_IMAGES" in res.stdout


# ----------------------------------------------------------------------- CLI choices


def test_cli_and_library_agree_on_the_formats() -> None:
    assert convert_cli.FORMATS == FORMATS


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--format", "ultralytics-hyp", "--torch-batch", "8"], "needs --images N"),
        (["--format", "ultralytics-hyp", "--images", "100"], "needs --torch-batch B"),
        (["--images", "100"], "--images applies to --format ultralytics-hyp"),
        (["--format", "ultralytics", "--style", "native"], "ultralytics-hyp"),
        (["--loss-reduction", "sum"], "add --with-optimizer"),
        (["--format", "mmengine", "--loss-reduction", "sum"], "applies to --format"),
        (["--summed-images", "8"], "needs --loss-reduction sum"),
        (["--format", "ultralytics-hyp", "--images", "0", "--torch-batch", "8"], "0"),
    ],
)
def test_bad_choices_are_one_line_errors(args: list[str], needle: str) -> None:
    res = invoke(str(YOLOV4), *args)
    if "--images" in args and "0" in args:  # click's own range check
        assert res.exit_code == 2 and "--images" in res.stderr
        return
    one_line_error(res, needle)


@pytest.mark.parametrize(
    ("policy", "fmt"), [("sigmoid", "mmengine"), ("random", "ultralytics-hyp")]
)
def test_no_approximation_is_a_one_line_error(
    tmp_path: Path, policy: str, fmt: str
) -> None:
    cfg = tmp_path / "x.cfg"
    cfg.write_text(
        f"[net]\npolicy={policy}\nmax_batches=100\nwidth=32\nheight=32\nchannels=3\n"
    )
    args = ["--style", "native"] if fmt == "mmengine" else []
    args += ["--images", "10", "--torch-batch", "2"] if fmt == "ultralytics-hyp" else []
    res = invoke(str(cfg), "--format", fmt, *args)
    assert res.exit_code == 2
    err = [x for x in res.stderr.splitlines() if not x.startswith("warning:")]
    assert len(err) == 1 and f"approximates policy={policy}" in err[0], res.stderr


def test_bad_render_arguments() -> None:
    schedule = cfgsched.load(YOLOV4)
    for kw in (
        {"fmt": "ultralytics", "style": "native"},
        {"fmt": "json", "loss_reduction": "sum"},
        {"loss_reduction": "sum"},  # python without build_optimizer
        {"loss_reduction": "max"},
        {"summed_images": 4},
        {"fmt": "python", "loss_reduction": "sum", "summed_images": 0},
        {"fmt": "mmengine", "images": 10},
        {"fmt": "ultralytics-hyp", "batch": 10},
        {"fmt": "ultralytics-hyp", "images": 10},
    ):
        with pytest.raises(CodegenError):
            render(schedule, **kw)  # type: ignore[arg-type]
    assert np.isfinite(float(cfgsched.darknet_lr(schedule, 1)))


def test_framework_benchmarks_run_quick() -> None:
    """tests/benchmarks/frameworks.py keeps working (quick sizes; figures not checked)."""
    from tests.benchmarks.frameworks import bench_frameworks

    rows = bench_frameworks(quick=True)
    assert [r.name for r in rows] == [
        "mmengine_step",
        "ultralytics_step",
        "ultralytics_hooked_step",
    ]
    assert all(r.ratio > 0 for r in rows)
