"""Generated modules carry darknet's layer rules (issue 14 item 4): LAYERS and
attach_layers train a cfg-built model exactly as the library does, and diff --module
checks them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import cfgsched
from cfgsched.adapters.optim import build_optimizer
from cfgsched.cli import main
from cfgsched.codegen import generate
from tests import modules

ROOT = Path(__file__).resolve().parents[1]
LAYER_CFG = ROOT / "sample_cfgs" / "layer-rules.cfg"
CASES = [(f, b) for f in ("alexeyab", "pjreddie", "hankai") for b in ("gpu", "cpu")]


def convert(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "m.py"
    res = CliRunner().invoke(main, ["convert", str(LAYER_CFG), "-o", str(out), *args])
    assert res.exit_code == 0, res.output
    return out


def diff(module: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        main, ["diff", str(LAYER_CFG), "--module", str(module), *args]
    )
    return res.exit_code, res.output


def cfg_model() -> nn.ModuleList:
    """layer-rules.cfg's sections as modules, indexed by darknet layer number."""
    torch.manual_seed(1)
    return nn.ModuleList(
        [
            nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3)),
            nn.Conv2d(3, 3, 1),
            nn.Conv2d(3, 3, 1),
            nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.BatchNorm2d(3)),
            nn.AdaptiveAvgPool2d(1),
            nn.Sequential(nn.Flatten(), nn.Linear(3, 2)),
        ]
    )


def train(
    model: nn.ModuleList, optimizer: torch.optim.Optimizer, sched: object
) -> None:
    """40 updates on fixed random data (the rules' windows end at updates 21 and 31)."""
    gen = torch.Generator().manual_seed(7)
    for _ in range(40):
        x = torch.randn(4, 2, 4, 4, generator=gen)
        for layer in model:
            x = layer(x)
        optimizer.zero_grad()
        (x**2).mean().backward()
        optimizer.step()
        sched.step()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("fork", "build"), CASES)
def test_generated_layers_train_as_the_library(
    tmp_path: Path, fork: str, build: str
) -> None:
    """build_optimizer(model, layers) + attach_layers + build_scheduler give every
    parameter and batch-norm statistic DarknetLR's run gives, bit for bit."""
    m = modules.load(
        convert(
            tmp_path, "--fork", fork, "--build", build, "--with-optimizer"
        ).read_text(),
        f"gen_layers_{fork}_{build}",
    )
    schedule = cfgsched.parse(LAYER_CFG.read_text(), fork=fork)
    ours, theirs = cfg_model(), cfg_model()
    opt = build_optimizer(ours, schedule, layers=list(ours))
    sched = cfgsched.DarknetLR(opt, schedule, build=build)
    gen_opt = m.build_optimizer(theirs, list(theirs))
    m.attach_layers(gen_opt, list(theirs))
    train(ours, opt, sched)
    train(theirs, gen_opt, m.build_scheduler(gen_opt, rescale=True))
    want, got = ours.state_dict(), theirs.state_dict()
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    frozen = ours[0][0].weight  # never updated (hankai) or no gradient (the rest)
    assert not torch.equal(frozen, cfg_model()[0][0].weight) or fork == "hankai"


def test_build_optimizer_scales_the_layer_rate(tmp_path: Path) -> None:
    """Layer 3's learning_rate=0.5: its parameters' group has LEARNING_RATE x 0.5."""
    m = modules.load(convert(tmp_path, "--with-optimizer").read_text(), "gen_scale")
    model = cfg_model()
    opt = m.build_optimizer(model, list(model))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    for j, layer in enumerate(model):
        for p in layer.parameters():
            assert lr_of[id(p)] == m.LEARNING_RATE * (0.5 if j == 3 else 1.0)
    plain = m.build_optimizer(model)
    assert {g["lr"] for g in plain.param_groups} == {m.LEARNING_RATE}


@pytest.mark.parametrize(("fork", "build"), CASES)
def test_diff_module_checks_the_layer_rules(
    tmp_path: Path, fork: str, build: str
) -> None:
    module = convert(tmp_path, "--fork", fork, "--build", build)
    code, out = diff(module, "--fork", fork)
    assert code == 0 and "result: EQUAL" in out, out


def test_diff_module_finds_edited_layers_and_a_broken_hook(tmp_path: Path) -> None:
    module = convert(tmp_path, "--fork", "hankai")
    src = module.read_text()
    module.write_text(
        src.replace("33, 1, True, 1.0, 20, False)", "33, 1, True, 1.0, 21, False)")
    )
    code, out = diff(module, "--fork", "hankai")
    assert code == 1 and "result: DIFFERENT: LAYERS[2] is (2, 2, 'dont_update'" in out
    for old, new in [
        ("k < gradient_from", "k <= gradient_from"),  # the window one update late
        ("module.training = False", "pass"),  # batch-norm keeps training
        ("elif p in pile:", "elif p in ():"),  # the held gradients never land
    ]:
        assert old in src
        module.write_text(src.replace(old, new))
        code, out = diff(module, "--fork", "hankai")
        assert code == 1, (old, out)
        assert re.search(
            r"result: DIFFERENT: attach_layers differs .* after update", out
        )


def test_a_cfg_without_layer_rules_gets_no_layer_code() -> None:
    src = generate(cfgsched.parse((ROOT / "sample_cfgs/yolov4.cfg").read_text()))
    assert "LAYERS" not in src and "attach_layers" not in src


@pytest.mark.skipif(not modules.RUFF.exists(), reason="ruff not installed")
def test_layer_modules_are_ruff_clean(tmp_path: Path) -> None:
    texts = [
        convert(tmp_path, "--fork", fork, *args).read_text()
        for fork in ("alexeyab", "hankai")
        for args in ([], ["--with-optimizer"], ["--format", "lightning"])
    ]
    modules.assert_ruff_clean(texts, tmp_path)
