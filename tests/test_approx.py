"""Honest approximations (cfgsched.adapters.approx) against the real frameworks.

MMEngine: the numpy reimplementation equals real MMEngine schedulers built through its
registry and stepped once per iteration (as ``ParamSchedulerHook`` does); the reported
errors are recomputed here from those real values and darknet's oracle. Ultralytics: the
trainer arithmetic is checked against values worked out by hand from
``ultralytics/engine/trainer.py`` (8.4.190) and, when its venv exists, against a real
training run.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cfgsched import load, parse
from cfgsched.adapters.approx import (
    Fit,
    fit_mmengine,
    fit_ultralytics,
    mmengine_lr,
    ultralytics_lr,
)
from cfgsched.options import Options
from cfgsched.oracle import darknet_lr
from cfgsched.schedule import NetSchedule
from tests.golden import ROOT
from tests.test_imports import imported_modules

SAMPLES = ROOT / "sample_cfgs"


def cfg(net: str) -> NetSchedule:
    """A schedule from ``[net]`` lines (the layer section darknet needs is added)."""
    text = "[net]\nwidth=32\nheight=32\nchannels=3\n" + textwrap.dedent(net)
    return parse(text + "\n[convolutional]\nfilters=1\nsize=1\nactivation=linear\n")


def real_mmengine_lr(
    schedulers: list[dict[str, Any]], base: float, n: int
) -> np.ndarray:
    """The LR of optimizer steps 0..n-1 under REAL MMEngine schedulers (registry-built
    on an OptimWrapper(SGD), one step per iteration after the optimizer step)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("mmengine", reason="MMEngine is not installed")
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS

    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=base))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        built = [
            PARAM_SCHEDULERS.build(dict(c), default_args=dict(optimizer=wrapper))
            for c in schedulers
        ]
        group = wrapper.param_groups[0]
        out = np.empty(n)
        for i in range(n):
            out[i] = group["lr"]
            for s in built:
                s.step()
    return out


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    return float(np.max(np.where(scale > 0, diff / np.where(scale > 0, scale, 1), 0)))


def check_report(
    fit: Fit, framework: np.ndarray, darknet: np.ndarray, burn_in: int = 0
) -> None:
    """fit.report and its headline, recomputed from independent values: the relative
    error after burn-in (over the run without one) and the absolute error over the run."""
    ok = darknet != 0
    rel = np.abs(framework[ok] - darknet[ok]) / np.abs(darknet[ok])
    r = fit.report
    assert r.steps == framework.size
    assert r.max_rel == pytest.approx(float(rel.max()), rel=1e-9)
    assert r.mean_rel == pytest.approx(float(rel.mean()), rel=1e-9)
    assert r.worst_step == int(np.flatnonzero(ok)[np.argmax(rel)])
    assert r.zero_steps == int((~ok).sum())
    assert np.allclose(fit.relative_error()[ok], rel, rtol=1e-9, atol=1e-15)
    assert np.isnan(fit.relative_error()[~ok]).all()
    gap = np.abs(framework - darknet)
    assert r.max_abs == pytest.approx(float(gap.max()), rel=1e-9)
    assert gap[r.abs_step] == gap.max()
    head = fit.comment()[0]
    assert head.startswith("approximation, not exact: max relative LR error ")
    after = ok & (fit.batches >= burn_in)
    # after burn-in; over the burn-in when no step after it has a non-zero darknet LR
    every = np.where(
        after if after.any() else ok,
        np.abs(framework - darknet) / np.where(ok, darknet, 1),
        -1,
    )
    w = int(np.argmax(every))
    assert f"step {w}, darknet b={fit.batches[w]}:" in head.split(";")[0]
    if after.any():
        assert ("after burn-in" in head) == (burn_in > 0)
    else:
        assert "over the burn-in" in head.split(";")[0]
    assert (
        f"step {r.abs_step}, darknet b={fit.batches[r.abs_step]}:" in head.split(";")[1]
    )


# ----------------------------------------------------------------------------- MMEngine

POWER1_POLY = """
batch=64
subdivisions=2
learning_rate=0.05
burn_in=300
power=1
policy=poly
max_batches=20000
"""
EXP = """
batch=32
learning_rate=0.01
burn_in=200
power=2
policy=exp
gamma=0.9997
max_batches=15000
"""
STEPS_SMALL = """
batch=64
subdivisions=4
learning_rate=0.002
burn_in=300
power=4
policy=steps
steps=3000,2000,4000
scales=.1,.5,.2
max_batches=5000
"""

CASES = {
    "yolov4": (lambda: load(SAMPLES / "yolov4.cfg"), Options()),
    "power1-poly": (lambda: cfg(POWER1_POLY), Options()),
    "exp": (lambda: cfg(EXP), Options()),
    "sgdr": (lambda: load(SAMPLES / "sgdr.cfg"), Options()),
    "steps-torch-batch-24": (lambda: cfg(STEPS_SMALL), Options(images_per_step=24)),
    "exp-torch-batch-48": (lambda: cfg(EXP), Options(images_per_step=48)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mmengine_fit_equals_real_mmengine_and_reports_its_error(case: str) -> None:
    make, options = CASES[case]
    schedule = make()
    fit = fit_mmengine(schedule, options)
    base = fit.optim_wrapper["optimizer"]["lr"]
    real = real_mmengine_lr(fit.schedulers, base, fit.steps)
    assert max_rel(fit.framework_lr, real) <= 1e-12
    # darknet's rate, with the step -> batch mapping written out here
    ipi, ips = schedule.images_per_iteration, options.images_per_step or schedule.batch
    b = (np.arange(fit.steps, dtype=np.int64) + 1) * ips // ipi
    assert np.array_equal(fit.batches, b)
    dk = np.asarray(darknet_lr(schedule, b), dtype=np.float64)
    if case == "yolov4":
        assert fit.steps == 500_500  # every update up to max_batches
    check_report(fit, real, dk, schedule.burn_in)


def test_yolov4_fit_is_four_linear_ramps_and_two_steps() -> None:
    fit = fit_mmengine(load(SAMPLES / "yolov4.cfg"))
    ramp = dict(
        type="LinearLR",
        start_factor=0.001,
        end_factor=1.0,
        by_epoch=False,
        begin=0,
        end=1000,
    )
    steps = [
        dict(type="MultiStepLR", milestones=[m], gamma=0.1, by_epoch=False, begin=0)
        for m in (399_999, 449_999)
    ]
    assert fit.schedulers == [ramp] * 4 + steps
    assert fit.optim_wrapper["optimizer"]["lr"] == 0.0013
    # ((k+1)/1000)^4 is darknet's burn-in: only float32 rounding remains, but never "exact"
    assert 1e-8 < fit.report.max_rel < 5e-7
    assert "approximation, not exact" in fit.comment()[0]


def test_power1_burn_in_and_steps_only_float32_rounding() -> None:
    s = cfg(
        """
        batch=64
        learning_rate=0.001
        burn_in=1000
        power=1
        policy=steps
        steps=8000,9000
        scales=.1,.1
        max_batches=10000
        """
    )
    fit = fit_mmengine(s)
    assert fit.schedulers[0] == dict(
        type="LinearLR",
        start_factor=1 / 1000,
        end_factor=1.0,
        by_epoch=False,
        begin=0,
        end=1000,
    )
    assert len(fit.schedulers) == 3  # one LinearLR, one MultiStepLR per step
    assert 0 < fit.report.max_rel < 2e-7  # float32 (darknet) vs double (MMEngine)


def test_non_integer_power_and_staircase_give_large_honest_errors() -> None:
    yolov4 = load(SAMPLES / "yolov4.cfg")
    fit = fit_mmengine(yolov4.with_values(power=2.5))
    burn, after = fit.report.phases
    assert burn.label == "burn-in" and (burn.first, burn.last) == (0, 998)
    assert burn.max_rel > 0.1  # no built-in has power 2.5
    assert after.max_rel < 5e-7  # the steps stay right
    assert fit.report.max_rel == burn.max_rel
    # torch batch 16 of 64 images: darknet's LR is a staircase over optimizer steps
    stair = fit_mmengine(cfg(STEPS_SMALL), Options(images_per_step=16))
    assert stair.report.phases[0].max_rel > 0.5
    assert (
        stair.report.zero_steps == 3
    )  # b = 0 for the first 3 steps: darknet's LR is 0
    assert any("LR is 0: in the absolute error" in x for x in stair.comment())


def test_sgdr_cosine_starts_at_the_end_of_burn_in() -> None:
    fit = fit_mmengine(load(SAMPLES / "sgdr.cfg"))
    cos = fit.schedulers[-1]
    assert cos["type"] == "CosineRestartLR"
    # darknet's cycles end at b = 1000, 3000, 7000; burn-in ends at step 199 (b = 200)
    assert (cos["begin"], cos["periods"], cos["end"]) == (199, [801, 2000, 4000], 7000)
    assert cos["restart_weights"][1:] == [1.0, 1.0]
    d199 = float(darknet_lr(load(SAMPLES / "sgdr.cfg"), 200))
    assert cos["restart_weights"][0] == pytest.approx(d199 / 0.01, rel=1e-5)
    assert fit.report.phases[0].max_rel < 5e-7  # burn-in: 4 ramps, float32 only


@pytest.mark.parametrize(
    ("policy", "extra"),
    [("sigmoid", "gamma=0.001\nstep=500"), ("random", "")],
)
def test_mmengine_has_no_builtin_for_sigmoid_or_random(policy: str, extra: str) -> None:
    s = cfg(f"batch=1\npolicy={policy}\nmax_batches=1000\n{extra}\n")
    with pytest.raises(
        ValueError, match=f"no MMEngine built-in approximates policy={policy}"
    ):
        fit_mmengine(s)


def test_bad_runs_are_value_errors() -> None:
    with pytest.raises(ValueError, match="max_batches is 0"):
        fit_mmengine(cfg("batch=1\npolicy=constant\n"))
    with pytest.raises(ValueError, match="multigpu='trace'"):
        fit_mmengine(load(SAMPLES / "yolov4.cfg"), Options(ngpus=2, multigpu="trace"))
    with pytest.raises(ValueError, match="images must be"):
        fit_ultralytics(load(SAMPLES / "yolov4.cfg"), images=0, batch=16)


def test_constant_without_burn_in_needs_no_scheduler() -> None:
    fit = fit_mmengine(cfg("batch=8\nlearning_rate=0.01\nmax_batches=100\n"))
    assert fit.schedulers == []
    assert fit.report.max_rel < 1e-7


def test_mmengine_lr_rejects_epoch_based_and_unknown_types() -> None:
    with pytest.raises(ValueError, match="unsupported MMEngine scheduler"):
        mmengine_lr([dict(type="LinearLR", start_factor=0.5)], 0.1, 10)
    with pytest.raises(ValueError, match="unsupported MMEngine scheduler"):
        mmengine_lr([dict(type="OneCycleLR", by_epoch=False)], 0.1, 10)


def test_approx_imports_no_framework() -> None:
    mods = imported_modules("import cfgsched.adapters.approx")
    assert not mods & {"torch", "mmengine", "ultralytics", "matplotlib"}


# ----------------------------------------------------------------------------- Ultralytics

# ultralytics/engine/trainer.py (8.4.190): 10 images / batch 2 -> nb = 5 batches per epoch
# (build_dataloader, drop_last=False); accumulate = max(round(nbs / batch), 1) = 2
# (_build_train_pipeline); nw = round(min(1.5, epochs - 1) * nb) = round(7.5) = 8
# (_get_warmup_iterations); in _do_train, for ni <= nw: accumulate =
# max(1, int(np.interp(ni, [0, 8], [1, 2]).round())) = 1, 1, 1, 1, 2 (1.5 rounds to even),
# 2, 2, 2, 2, and a step when ni - last_opt_step >= accumulate.
HAND_HYP: dict[str, Any] = dict(
    optimizer="SGD",
    lr0=0.01,
    lrf=0.1,
    cos_lr=False,
    warmup_epochs=1.5,
    warmup_bias_lr=0.1,
    warmup_momentum=0.8,
    momentum=0.9,
    weight_decay=0.0005,
    epochs=4,
    nbs=4,
    batch=2,
)
HAND_STEPS = [0, 1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19]


def test_ultralytics_cadence_by_hand() -> None:
    assert ultralytics_lr(HAND_HYP, images=10)[0].tolist() == HAND_STEPS
    no_warm = {**HAND_HYP, "warmup_epochs": 0.0}
    assert ultralytics_lr(no_warm, images=10)[0].tolist() == list(range(1, 20, 2))
    # images=9: the last batch of each epoch holds 1 image, still one batch (nb = 5)
    assert ultralytics_lr(HAND_HYP, images=9)[0].tolist() == HAND_STEPS


def test_ultralytics_linear_lr_by_hand() -> None:
    # _setup_scheduler: lf(e) = max(1 - e/4, 0) * (1 - 0.1) + 0.1 = 1, .775, .55, .325;
    # LambdaLR sets lr0 * lf(epoch) at each epoch start; warmup (ni <= 8) interpolates
    # from 0 (bias: from warmup_bias_lr) to lr0 * lf(epoch)
    lf = [1.0, 0.775, 0.55, 0.325]
    want_w, want_b = [], []
    for ni in HAND_STEPS:
        target = 0.01 * lf[ni // 5]
        want_w.append(target * ni / 8 if ni <= 8 else target)
        want_b.append(0.1 + (target - 0.1) * ni / 8 if ni <= 8 else target)
    ni, lr = ultralytics_lr(HAND_HYP, images=10)
    assert ni.tolist() == HAND_STEPS
    assert lr.tolist() == pytest.approx(want_w, rel=1e-12, abs=0)
    _, bias = ultralytics_lr(HAND_HYP, images=10, group="bias")
    assert bias.tolist() == pytest.approx(want_b, rel=1e-12)
    assert bias[0] == 0.1 and lr[0] == 0.0


def test_ultralytics_cosine_lr_by_hand() -> None:
    # one_cycle(1, lrf, epochs): ((1 - cos(e*pi/4)) / 2) * (lrf - 1) + 1
    hyp = {**HAND_HYP, "cos_lr": True, "warmup_epochs": 0.0}
    ni, lr = ultralytics_lr(hyp, images=10)
    lf = [((1 - math.cos(e * math.pi / 4)) / 2) * (0.1 - 1) + 1 for e in range(4)]
    assert lr.tolist() == pytest.approx(
        [0.01 * lf[n // 5] for n in ni.tolist()], rel=1e-12
    )
    assert lf[2] == pytest.approx(0.55) and lf[0] == 1.0


def test_ultralytics_fit_reports_its_error() -> None:
    schedule = load(SAMPLES / "sgdr.cfg")
    fit = fit_ultralytics(schedule, images=1000, batch=16)
    hyp = fit.hyp
    assert (hyp["optimizer"], hyp["nbs"], hyp["batch"], hyp["epochs"]) == (
        "SGD",
        64,
        16,
        448,
    )
    assert (
        hyp["warmup_bias_lr"] == 0.0
        and hyp["momentum"] == hyp["warmup_momentum"] == 0.9
    )
    assert hyp["weight_decay"] == 0.0005  # batch x accumulate = nbs: no rescaling
    ni, lr = ultralytics_lr(hyp, images=1000)
    _, bias = ultralytics_lr(hyp, images=1000, group="bias")
    assert np.array_equal(lr, fit.framework_lr) and np.array_equal(bias, lr)
    # images seen through batch ni: 63 batches per epoch, the last one of 8 images
    e, i = np.divmod(ni, 63)
    seen = e * 1000 + np.minimum((i + 1) * 16, 1000)
    b = np.minimum(seen // 64, 7000)
    assert np.array_equal(fit.batches, b)
    dk = np.asarray(darknet_lr(schedule, b), dtype=np.float64)
    check_report(fit, lr, dk, schedule.burn_in)
    assert (
        fit.report.max_rel > 1
    )  # Ultralytics cannot follow darknet's burn-in or cycles


def test_ultralytics_fit_samples_state_their_settings() -> None:
    fit = fit_ultralytics(load(SAMPLES / "yolov4.cfg"), images=10_000, batch=16)
    assert fit.hyp["epochs"] == 3203  # 500,500 x 64 images / 10,000
    assert fit.hyp["warmup_epochs"] > 0  # darknet has a burn-in
    text = "\n".join(fit.comment())
    assert "Nesterov" in text and "once per epoch" in text and "not exact" in text
    with pytest.raises(ValueError, match="policy=random"):
        fit_ultralytics(
            cfg("batch=1\npolicy=random\nmax_batches=10\n"), images=5, batch=1
        )


# ----------------------------------------------------------------------------- real Ultralytics

ULTRA_PY = Path.home() / ".cache/cfgsched/ultralytics-venv/bin/python"

ULTRA_SCRIPT = r"""
import json, os, shutil, socket, sys, tempfile
from pathlib import Path
tmp = Path(tempfile.mkdtemp(prefix="cfgsched_approx_"))
(tmp / "cfg" / "Ultralytics").mkdir(parents=True)
os.environ.update(YOLO_CONFIG_DIR=str(tmp / "cfg"), YOLO_OFFLINE="1",
                  YOLO_AUTOINSTALL="False", MPLCONFIGDIR=str(tmp / "mpl"))
def _off(*a, **k):
    raise OSError("network disabled")
socket.getaddrinfo = _off
import matplotlib
# check_font("Arial.ttf") would download it: a local copy short-circuits the request
shutil.copy(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf",
            tmp / "cfg" / "Ultralytics" / "Arial.ttf")
import cv2, numpy as np
from ultralytics import YOLO, __version__
root = tmp / "data"
(root / "images").mkdir(parents=True); (root / "labels").mkdir()
rng = np.random.default_rng(0)
for j in range(10):
    img = np.full((64, 64, 3), 114, np.uint8)
    x0, y0 = (int(v) for v in rng.integers(4, 30, 2))
    img[y0:y0 + 20, x0:x0 + 20] = (0, 0, 255)
    cv2.imwrite(str(root / "images" / f"im{j}.png"), img)
    (root / "labels" / f"im{j}.txt").write_text(
        f"0 {(x0 + 10) / 64} {(y0 + 10) / 64} {20 / 64} {20 / 64}\n")
(root / "data.yaml").write_text(f"path: {root}\ntrain: images\nval: images\nnames:\n  0: box\n")
runs = []
for k, hyp in enumerate(json.loads(sys.argv[1])):
    model = YOLO("yolov8n.yaml")
    rec, state = [], {}
    def on_train_start(tr):
        state["tr"] = tr
        def pre(opt, args, kwargs):
            t = state["tr"]
            rec.append(dict(ni=t.epoch * len(t.train_loader) + state["i"],
                            lr={g["param_group"]: g["lr"] for g in opt.param_groups}))
        tr.optimizer.register_step_pre_hook(pre)
    def on_epoch_start(tr):
        state["i"] = -1
    def on_batch_start(tr):
        state["i"] += 1
    model.add_callback("on_train_start", on_train_start)
    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_train_batch_start", on_batch_start)
    model.train(data=str(root / "data.yaml"), imgsz=32, workers=0, device="cpu",
                plots=False, val=False, amp=False, seed=0, verbose=False,
                project=str(tmp / "runs"), name=f"r{k}", exist_ok=True, **hyp)
    runs.append(rec)
print(json.dumps(dict(version=__version__, runs=runs)))
shutil.rmtree(tmp, ignore_errors=True)
"""


def _ultralytics_venv_works() -> str | None:
    if not ULTRA_PY.exists():
        return f"no Ultralytics venv at {ULTRA_PY.parent.parent} (built by the Ultralytics tests)"
    res = subprocess.run(
        [str(ULTRA_PY), "-c", "import ultralytics, torch, cv2"],
        capture_output=True,
        text=True,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        check=False,
    )
    return (
        None
        if res.returncode == 0
        else f"Ultralytics venv does not import: {res.stderr[-300:]}"
    )


def test_ultralytics_lr_equals_real_trainer() -> None:
    reason = _ultralytics_venv_works()
    if reason:
        pytest.skip(reason)
    hyps = [HAND_HYP, {**HAND_HYP, "cos_lr": True, "lrf": 0.05, "warmup_epochs": 0.9}]
    res = subprocess.run(
        [str(ULTRA_PY), "-c", ULTRA_SCRIPT, json.dumps(hyps)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["version"] == "8.4.190"
    for hyp, rec in zip(hyps, out["runs"], strict=True):
        ni, lr = ultralytics_lr(hyp, images=10)
        _, bias = ultralytics_lr(hyp, images=10, group="bias")
        assert [r["ni"] for r in rec] == ni.tolist()
        assert [r["lr"]["weight"] for r in rec] == lr.tolist()
        assert [r["lr"]["bn"] for r in rec] == lr.tolist()
        assert [r["lr"]["bias"] for r in rec] == bias.tolist()


@st.composite
def small_schedules(draw: st.DrawFn) -> tuple[NetSchedule, Options]:
    policy = draw(st.sampled_from(["constant", "step", "steps", "exp", "poly", "sgdr"]))
    m = draw(st.integers(20, 1500))
    lines = [
        f"batch={draw(st.sampled_from([1, 8, 64]))}",
        f"learning_rate={draw(st.floats(1e-4, 0.5)):.6g}",
        f"burn_in={draw(st.integers(0, 400))}",
        f"power={draw(st.sampled_from([0.5, 1, 2, 2.5, 4]))}",
        f"policy={policy}",
        f"max_batches={m}",
        f"step={draw(st.integers(1, 500))}",
        f"scale={draw(st.floats(0.05, 1.0)):.4g}",
        f"gamma={draw(st.floats(0.99, 1.0)):.6g}",
        f"learning_rate_min={draw(st.floats(0.0, 1e-4)):.4g}",
        f"sgdr_cycle={draw(st.integers(5, 600))}",
        f"sgdr_mult={draw(st.integers(1, 3))}",
    ]
    steps = sorted(draw(st.lists(st.integers(1, 2000), min_size=1, max_size=3)))
    lines += [
        f"steps={','.join(map(str, steps))}",
        "scales=" + ",".join([".5"] * len(steps)),
    ]
    s = cfg("\n".join(lines) + "\n")
    ips = draw(st.sampled_from([None, 1, 3, 16, 100]))
    return s, Options(images_per_step=ips if ips is None else ips * s.batch // 8 or 1)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(small_schedules())
# every step in burn-in but the last, where poly's LR is 0 (b = max_batches)
@example(
    (
        cfg("learning_rate=0.01\nburn_in=20\npower=2\npolicy=poly\nmax_batches=20"),
        Options(),
    )
)
@example(
    (
        cfg(
            "learning_rate=0.01\nburn_in=400\npolicy=steps\nsteps=5\nscales=.5\nmax_batches=20"
        ),
        Options(),
    )
)
def test_any_fit_equals_real_mmengine_and_reports_its_error(
    case: tuple[NetSchedule, Options],
) -> None:
    schedule, options = case
    fit = fit_mmengine(schedule, options)
    real = real_mmengine_lr(
        fit.schedulers, fit.optim_wrapper["optimizer"]["lr"], fit.steps
    )
    assert max_rel(fit.framework_lr, real) <= 1e-12
    ips = options.images_per_step or schedule.images_per_iteration
    b = (np.arange(fit.steps) + 1) * ips // schedule.images_per_iteration
    dk = np.asarray(darknet_lr(schedule, b), dtype=np.float64)
    if (dk != 0).any():
        check_report(fit, real, dk, schedule.burn_in)


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "--format", "ultralytics-hyp", "--images", "10000"],
        ["plot", "--vs", "ultralytics-hyp", "--images", "10000"],
    ],
)
def test_headline_is_an_error_a_user_can_act_on(
    args: list[str], tmp_path: Path
) -> None:
    """issue 15 item 4: darknet's burn-in starts at 1.3e-15 (b = 1 of yolov4), where the
    relative error is meaningless ("max relative LR error 5.54e+10%"): the headline
    gives it after burn-in and the absolute LR error, each with its worst step."""
    from click.testing import CliRunner

    from cfgsched.cli import main

    cmd = [args[0], str(SAMPLES / "yolov4.cfg"), *args[1:], "--torch-batch", "16"]
    res = CliRunner().invoke(main, [*cmd, "-o", str(tmp_path / "out.png")])
    assert res.exit_code == 0, res.output
    head = next(x for x in res.stderr.splitlines() if "approximation, not exact" in x)
    rel, absolute = head.split("; max absolute LR error ")
    b, d, f = (
        float(x)
        for x in re.search(
            r"b=(\d+): darknet (\S+) vs Ultralytics (\S+)\)", rel
        ).groups()
    )
    assert "after burn-in" in rel and b >= 1000  # yolov4's burn_in=1000
    pct = float(re.search(r"error ([\d.e+-]+)%", rel).group(1))
    assert pct == pytest.approx(abs(f - d) / d * 100, rel=1e-2) and pct < 1000
    gap, d, f = (
        float(x)
        for x in re.search(r"^(\S+) \(step \d+, darknet b=\d+: darknet (\S+) vs "
                           r"Ultralytics (\S+)\)", absolute).groups()
    )  # fmt: skip
    assert gap == pytest.approx(abs(f - d), rel=1e-2) and gap < 0.0013
