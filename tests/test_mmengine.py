"""``convert --format mmengine`` against real MMEngine (the pinned version, main venv).

The exact module: ``param_scheduler`` built through MMEngine's registry on an
``OptimWrapper`` and stepped once per iteration (as ``ParamSchedulerHook`` does) gives,
after k steps, the module's ``lr_at(k)`` and cfgsched's oracle, bit for bit; it resumes
from its ``state_dict`` and from ``last_step``; with gradient accumulation update k still
uses ``lr_at(k - 1)``; a real ``Runner`` loads it through ``custom_imports``. The native
style: MMEngine's own built-ins, stepped the same way, give the values the fit reports.
"""

from __future__ import annotations

import io
import math
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("mmengine", reason="MMEngine is in the dev extra")

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.runner import Runner

import cfgsched
from cfgsched.codegen import generate, render
from cfgsched.options import Options
from cfgsched.run import translate
from tests import modules
from tests.golden import float_to_bits

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_cfgs"
TINY = """[net]
batch=4
subdivisions=2
learning_rate=0.01
momentum=0.9
decay=0.0005
burn_in=5
power=4
policy=steps
steps=8,12
scales=.1,.5
max_batches=20
width=32
height=32
channels=3
"""


def schedule(spec: str) -> cfgsched.NetSchedule:
    fork, _, name = spec.rpartition(":")
    if name == "tiny":
        return cfgsched.parse(TINY, fork=fork or "alexeyab", source="tiny.cfg")
    return cfgsched.load(SAMPLES / name, fork=fork or "alexeyab")


def module(spec: str, options: Options | None = None, name: str = "") -> Any:
    """The generated module, loaded with cfgsched blocked (it registers its class)."""
    text = generate(schedule(spec), options, fmt="mmengine")
    with modules.cfgsched_blocked():
        return modules.load(text, name or f"gen_mm_{abs(hash((spec, options)))}")


def wrapper(lrs: tuple[float, ...], **kw: Any) -> OptimWrapper:
    groups = [{"params": [torch.nn.Parameter(torch.ones(3))], "lr": lr} for lr in lrs]
    return OptimWrapper(torch.optim.SGD(groups, lr=lrs[0], momentum=0.9), **kw)


def build(m: Any, ow: OptimWrapper, **kw: Any) -> Any:
    (cfg,) = m.param_scheduler
    return PARAM_SCHEDULERS.build(dict(cfg, **kw), default_args=dict(optimizer=ow))


def run(ow: OptimWrapper, sched: Any, n: int) -> list[float]:
    """The LR of the next ``n`` updates: ``ow.step()`` then ``sched.step()``, as the
    Runner's loop and ParamSchedulerHook.after_train_iter do."""
    out = []
    for _ in range(n):
        out.append(ow.optimizer.param_groups[0]["lr"])
        ow.step()
        sched.step()
    return out


def oracle(spec: str, options: Options | None, steps: range) -> list[float]:
    t = translate(schedule(spec), options)
    lrs = t.lrs(np.asarray(steps, dtype=np.int64))
    return [float(x) for x in lrs]


CASES = [
    ("tiny", None, 40),
    ("yolov4.cfg", None, 1200),
    ("hankai:yolov4.cfg", Options(ngpus=2), 600),
    ("classifier-poly.cfg", Options(images_per_step=96), 800),
    ("sgdr.cfg", Options(resume_iteration=150), 900),
    ("sgdr.cfg", Options(exact=False), 900),
]


@pytest.mark.parametrize(("spec", "options", "n"), CASES)
def test_registry_build_steps_as_the_hook_does(
    spec: str, options: Options | None, n: int
) -> None:
    m = module(spec, options)
    ow = wrapper((m.LEARNING_RATE,))
    sched = build(m, ow)
    assert type(sched) is m.DarknetParamScheduler and sched.by_epoch is False
    start = translate(schedule(spec), options).start
    got = run(ow, sched, n)
    want = oracle(spec, options, range(start, start + n))
    assert [float_to_bits(x) for x in got] == [float_to_bits(x) for x in want]
    assert [m.lr_at(start + k) for k in range(n)] == want


def test_another_lr_warns_once_unless_rescale() -> None:
    """Issue 15 item 7: an optimizer lr that is not the cfg's scales every LR: one
    warning naming both values and the ratio; the cfg's lr as written does not warn."""
    m = module("tiny")
    with pytest.warns(UserWarning) as caught:
        build(m, wrapper((0.01, 0.5)))
    (w,) = [c for c in caught if "rescale=True" in str(c.message)]
    assert (
        "lr 0.5 is not the cfg's learning_rate 0.01: every LR is scaled by 50x"
        in str(w.message)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(m, wrapper((0.01,)))
        build(m, wrapper((0.5,)), rescale=True)


def test_groups_keep_their_ratio_to_learning_rate() -> None:
    m = module("tiny")
    lr = m.LEARNING_RATE
    ow = wrapper((0.01, 2 * lr, 0.1 * lr))  # 0.01 as written is the cfg's LR
    sched = build(m, ow, rescale=True)  # the ratios are meant: no warning
    for k in range(20):
        r = m.lr_at(k)
        assert [g["lr"] for g in ow.optimizer.param_groups] == [
            r,
            r * (2 * lr / lr),
            r * (0.1 * lr / lr),
        ]
        ow.step()
        sched.step()


@pytest.mark.parametrize("restore_optimizer", [True, False])
@pytest.mark.parametrize("k0", [0, 4, 7, 12])
def test_resume_from_state_dict(k0: int, restore_optimizer: bool) -> None:
    """torch.save / torch.load(weights_only=True) round trip; the Runner's order
    (optimizer state first, then the scheduler's) or the scheduler alone."""
    m = module("tiny")
    ow = wrapper((m.LEARNING_RATE,))
    sched = build(m, ow)
    run(ow, sched, k0)
    buf = io.BytesIO()
    torch.save({"opt": ow.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    ow2 = wrapper((m.LEARNING_RATE,))
    sched2 = build(m, ow2)
    if restore_optimizer:
        ow2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert run(ow2, sched2, 20 - k0) == [m.lr_at(k) for k in range(k0, 20)]


@pytest.mark.parametrize("k0", [1, 5, 8, 399_995])
def test_resume_from_last_step(k0: int) -> None:
    m = module("yolov4.cfg") if k0 > 100 else module("tiny")
    ow = wrapper((m.LEARNING_RATE,))
    sched = build(m, ow, last_step=k0 - 1)
    assert run(ow, sched, 12) == [m.lr_at(k) for k in range(k0, k0 + 12)]


def train_step(ow: OptimWrapper) -> None:
    loss = sum((p**2).sum() for g in ow.optimizer.param_groups for p in g["params"])
    ow.update_params(loss)  # backward; step and zero_grad every accumulative_counts


@pytest.mark.parametrize("counts", [2, 3])
def test_accumulation_counts_updates_not_iterations(counts: int) -> None:
    """accumulative_counts=c: the hook steps the scheduler every iteration, the
    optimizer updates every c; update k still uses lr_at(k - 1)."""
    m = module("tiny")
    ow = wrapper((m.LEARNING_RATE,), accumulative_counts=counts)
    sched = build(m, ow)
    used: list[float] = []
    ow.optimizer.register_step_pre_hook(
        lambda opt, args, kw: used.append(opt.param_groups[0]["lr"])
    )
    with warnings.catch_warnings():  # MMEngine warns that the first update is late
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(18 * counts):
            train_step(ow)
            sched.step()
    assert used == [m.lr_at(k) for k in range(18)]


def test_second_import_and_epoch_mode() -> None:
    a = module("tiny", name="gen_mm_twice_a")
    b = module("tiny", name="gen_mm_twice_b")  # force=True: no KeyError
    assert PARAM_SCHEDULERS.get("DarknetParamScheduler") is b.DarknetParamScheduler
    assert a.DarknetParamScheduler is not b.DarknetParamScheduler
    with pytest.raises(ValueError, match="by_epoch=False"):
        build(b, wrapper((b.LEARNING_RATE,)), by_epoch=True)
    with pytest.raises(ValueError, match="begin=0"):
        build(b, wrapper((b.LEARNING_RATE,)), begin=3)


# ----------------------------------------------------------------------- a real Runner


class ToyModel(BaseModel):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(
        self, inputs: list[torch.Tensor], target: list[torch.Tensor], mode: str = "loss"
    ) -> dict[str, torch.Tensor]:
        out = self.linear(torch.stack(inputs)).squeeze(1)
        return {"loss": ((out - torch.stack(target)) ** 2).mean()}


class LrRecorder(Hook):  # type: ignore[misc]
    """The LR each real update uses (a torch step pre-hook on the optimizer)."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def before_train(self, runner: Runner) -> None:
        opt = runner.optim_wrapper.optimizer
        opt.register_step_pre_hook(
            lambda o, a, kw: self.seen.append(o.param_groups[0]["lr"])
        )


def make_runner(
    cfg: Config, work: Path, iters: int, load_from: Path | None = None
) -> tuple[Runner, LrRecorder]:
    dataset = [dict(inputs=torch.randn(2), target=torch.randn(())) for _ in range(5)]
    recorder = LrRecorder()
    runner = Runner(
        model=ToyModel(),
        work_dir=str(work),
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type="InfiniteSampler", shuffle=False),
            batch_size=2,
            num_workers=0,
        ),
        optim_wrapper=cfg.optim_wrapper,
        param_scheduler=cfg.param_scheduler,
        train_cfg=dict(by_epoch=False, max_iters=iters),
        default_hooks=dict(
            checkpoint=dict(type="CheckpointHook", interval=6, by_epoch=False),
            logger=dict(type="LoggerHook", interval=1000),
        ),
        custom_hooks=[recorder],
        resume=load_from is not None,
        load_from=None if load_from is None else str(load_from),
        log_level="WARNING",
        default_scope="mmengine",
        experiment_name=f"{work.name}_{iters}_{load_from is not None}",
    )
    return runner, recorder


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """darknet_lr.py written by convert, importable, not yet imported or registered."""
    from click.testing import CliRunner

    from cfgsched.cli import main

    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY)
    out = tmp_path / "darknet_lr.py"
    res = CliRunner().invoke(
        main, ["convert", str(cfg), "--format", "mmengine", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "darknet_lr", raising=False)
    registered = PARAM_SCHEDULERS._module_dict.pop("DarknetParamScheduler", None)
    yield tmp_path
    sys.modules.pop("darknet_lr", None)
    if registered is not None:
        PARAM_SCHEDULERS._module_dict["DarknetParamScheduler"] = registered


def test_runner_with_custom_imports_accumulation_and_resume(
    importable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config file like MMDetection's: custom_imports brings the scheduler in; two
    iterations per update (accumulative_counts=2); resume from iteration 6 needs
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 on torch >= 2.6 (MMEngine 0.10.7's torch.load)."""
    text = (
        'custom_imports = dict(imports=["darknet_lr"], allow_failed_imports=False)\n'
        'param_scheduler = [dict(type="DarknetParamScheduler", by_epoch=False)]\n'
        'optim_wrapper = dict(type="OptimWrapper", accumulative_counts=2,\n'
        '    optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0005))\n'
    )
    (importable / "config.py").write_text(text)
    cfg = Config.fromfile(str(importable / "config.py"))
    import darknet_lr  # type: ignore[import-not-found]

    assert cfg.param_scheduler == darknet_lr.param_scheduler
    assert PARAM_SCHEDULERS.get("DarknetParamScheduler") is (
        darknet_lr.DarknetParamScheduler
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        runner, rec = make_runner(cfg, importable / "a", 12)
        runner.train()
        assert rec.seen == [darknet_lr.lr_at(k) for k in range(6)]
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
        runner2, rec2 = make_runner(
            cfg, importable / "b", 12, load_from=importable / "a" / "iter_6.pth"
        )
        runner2.train()
    assert rec2.seen == [darknet_lr.lr_at(k) for k in range(3, 6)]
    assert darknet_lr.lr_at(3) != darknet_lr.lr_at(5)  # burn-in, then the plateau


# ----------------------------------------------------------------------- native style


def exec_config(text: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(text, "native.py", "exec"), namespace)  # our own generated config
    return namespace


@pytest.mark.parametrize(
    ("spec", "options"),
    [("yolov4.cfg", None), ("sgdr.cfg", None), ("tiny", Options(images_per_step=6))],
)
def test_native_builtins_give_the_reported_values(
    spec: str, options: Options | None
) -> None:
    """The config snippet's schedulers, built by MMEngine and stepped as the hook does,
    give the LRs the fit's report was measured on; the report is in the output and
    says approximation."""
    from cfgsched.adapters.approx import fit_mmengine

    out = render(schedule(spec), options, fmt="mmengine", style="native")
    fit = fit_mmengine(schedule(spec), options)
    assert out.report == tuple(fit.comment())
    assert out.report[0].startswith("approximation, not exact: max relative LR error")
    assert out.text.splitlines()[0].endswith("(not exact).")
    assert "# - approximation, not exact" in out.text
    config = exec_config(out.text)
    assert config["param_scheduler"] == fit.schedulers
    n = min(fit.steps, 1500)
    base = config["optim_wrapper"]["optimizer"]["lr"]
    ow = wrapper((base,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        scheds = [
            PARAM_SCHEDULERS.build(c, default_args=dict(optimizer=ow))
            for c in config["param_scheduler"]
        ]
        got = []
        for _ in range(n):
            got.append(ow.optimizer.param_groups[0]["lr"])
            ow.step()
            for s in scheds:
                s.step()
    want = fit.framework_lr[:n]
    assert all(
        math.isclose(g, w, rel_tol=1e-12) for g, w in zip(got, want, strict=True)
    )


def test_native_module_is_a_plain_config() -> None:
    """No imports (a config snippet); the optimizer and decay rule of the cfg."""
    text = generate(schedule("yolov4.cfg"), fmt="mmengine", style="native")
    assert "\nimport " not in text and "\nfrom " not in text
    config = exec_config(text)
    assert config["optim_wrapper"]["optimizer"] == dict(
        type="SGD", lr=0.0013, momentum=0.949, weight_decay=0.0005
    )
    assert isinstance(config["CFGSCHED"], dict)
    assert types.SimpleNamespace(**config).CFGSCHED["style"] == "native"
