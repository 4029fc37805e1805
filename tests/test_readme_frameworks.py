"""The README's Ultralytics and MMDetection recipes, run as written with the real framework.

Each recipe's module comes from ``cfgsched convert`` on ``sample_cfgs/yolov4.cfg``; every
LR the framework trains with must be darknet's (cfgsched's oracle, checked bit for bit
against darknet's C code by the golden tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cfgsched
from cfgsched.cli import main
from tests.docs import blocks, section

ROOT = Path(__file__).resolve().parents[1]
YOLOV4 = ROOT / "sample_cfgs" / "yolov4.cfg"
PYTHON = os.environ.get("CFGSCHED_ULTRALYTICS_PYTHON")


def convert(tmp: Path, fmt: str) -> Path:
    out = tmp / "darknet_lr.py"
    res = CliRunner().invoke(
        main, ["convert", str(YOLOV4), "--format", fmt, "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    return out


def darknet(k: int) -> np.float32:
    """darknet's LR of update k (b = k) for yolov4.cfg."""
    return cfgsched.darknet_lr(cfgsched.load(YOLOV4), k)


def test_recipes_name_the_command_they_need() -> None:
    for name, fmt in (("ultralytics", "ultralytics"), ("mmengine", "mmengine")):
        (sh,) = blocks(name, "sh")
        assert f"cfgsched convert yolov4.cfg --format {fmt} -o darknet_lr.py" in sh


@pytest.mark.skipif(
    not PYTHON, reason="CFGSCHED_ULTRALYTICS_PYTHON unset (make test sets it)"
)
def test_ultralytics_recipe_trains_with_darknets_lr(tmp_path: Path) -> None:
    convert(tmp_path, "ultralytics")
    (block,) = blocks("ultralytics")
    script = tmp_path / "recipe.py"
    script.write_text(block)
    out = tmp_path / "steps.json"
    driver = ROOT / "tests" / "frameworks" / "readme_ultralytics.py"
    proc = subprocess.run(
        [str(PYTHON), str(driver), str(tmp_path), str(script), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = json.loads(out.read_text())["steps"]
    # 32 images, BATCH 16, 64 images per darknet iteration: accumulate 4, so one step
    # per 4 batches: 2 epochs x 2 batches = 4 batches = 1 step
    assert len(steps) == 1
    for k, lrs in enumerate(steps, start=1):
        assert lrs == [float(darknet(k))] * 3


def test_mmengine_recipe_config_schedules_darknets_lr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    from torch import nn

    module = convert(tmp_path, "mmengine")
    (config_block,) = blocks("mmengine")
    cfg_file = tmp_path / "config.py"
    cfg_file.write_text(config_block)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("darknet_lr", None)
    cfg = Config.fromfile(str(cfg_file))  # custom_imports registers the scheduler
    mod = sys.modules["darknet_lr"]
    readme_sgd, module_sgd = cfg.optim_wrapper.optimizer, mod.optim_wrapper["optimizer"]
    for key in ("lr", "momentum", "weight_decay"):  # the README's numbers are the cfg's
        assert np.float32(readme_sgd[key]) == np.float32(module_sgd[key]), key
    assert cfg.optim_wrapper.paramwise_cfg == mod.optim_wrapper["paramwise_cfg"]
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    (entry,) = cfg.param_scheduler
    sched = PARAM_SCHEDULERS.build(dict(entry), default_args=dict(optimizer=wrapper))
    for k in range(1, 1200):
        assert wrapper.optimizer.param_groups[0]["lr"] == float(darknet(k)), k
        loss = model(torch.ones(1, 3, 5, 5)).sum()
        wrapper.update_params(loss)
        sched.step()
    assert "custom_imports" in section("mmengine") and module.exists()
