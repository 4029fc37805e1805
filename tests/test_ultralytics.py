"""``convert --format ultralytics`` against real Ultralytics (the pinned version).

Ultralytics needs PyPI's CUDA torch (for torchvision), so it runs in its own venv
(``make ultralytics-env``), whose python ``$CFGSCHED_ULTRALYTICS_PYTHON`` names (``make
test`` sets it). Each run is a subprocess of ``tests/frameworks/ultralytics_run.py``:
YOLOv8n from its yaml, a tiny dataset, CPU, no network; a torch step post-hook records
every group's lr at every real optimizer step. Every recorded value must equal the
module's ``lr_at(k - 1)`` and cfgsched's oracle for step k (k = 1, 2, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import cfgsched
from cfgsched.cli import main
from cfgsched.codegen.ultralytics import ULTRALYTICS_VERSION
from cfgsched.options import Options
from cfgsched.run import translate
from tests import modules

DRIVER = Path(__file__).resolve().parent / "frameworks" / "ultralytics_run.py"
PYTHON = os.environ.get("CFGSCHED_ULTRALYTICS_PYTHON")
pytestmark = pytest.mark.skipif(
    not PYTHON,
    reason="CFGSCHED_ULTRALYTICS_PYTHON is unset: run `make test` (it builds the "
    "Ultralytics venv with `make ultralytics-env` and sets it)",
)

#: 4 images per darknet iteration (2 x 2); burn-in 5, then steps 8 and 12.
CFG = """[net]
batch=4
subdivisions=2
width=32
height=32
channels=3
learning_rate=0.01
momentum=0.9
decay=0.0005
burn_in=5
power=4
policy=steps
steps=8,12
scales=.1,.5
max_batches=20
"""
SCHEDULE = cfgsched.parse(CFG, source="tiny.cfg")


def convert(tmp: Path, *args: str) -> tuple[Path, Any]:
    """The module ``cfgsched convert --format ultralytics`` writes, and it loaded."""
    cfg = tmp / "tiny.cfg"
    cfg.write_text(CFG)
    out = tmp / "darknet_lr.py"
    res = CliRunner().invoke(
        main, ["convert", str(cfg), "--format", "ultralytics", "-o", str(out), *args]
    )
    assert res.exit_code == 0, res.output
    with modules.cfgsched_blocked():
        module = modules.load(out.read_text(), f"gen_ultra_{tmp.name}")
    return out, module


def train(module: Path, work: Path, *args: str) -> dict[str, Any]:
    """One Ultralytics run in its venv; its recorded steps."""
    assert PYTHON is not None
    out = work / f"out{len(list(work.glob('out*.json')))}.json"
    proc = subprocess.run(
        [PYTHON, str(DRIVER), str(module), str(work), str(out), *args],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["net"] == []  # nothing tried to reach the network
    assert data["version"] == ULTRALYTICS_VERSION
    return data


def darknet(k: list[int], options: Options | None = None) -> list[float]:
    """cfgsched's oracle: darknet's LR of 1-based optimizer steps ``k``."""
    t = translate(SCHEDULE, options)
    lrs = t.lrs(np.asarray(k, dtype=np.int64) - 1)
    return [float(x) for x in lrs]


def check(steps: list[dict[str, Any]], module: Any, first: int, scale: int = 1) -> None:
    """Step ``first + j`` of the run used ``lr_at(k - 1) / scale`` in all three groups
    (== darknet's LR / scale), plain momentum and darknet's decay x scale on weights."""
    ks = list(range(first, first + len(steps)))
    want = darknet(ks)
    for k, s, lr in zip(ks, steps, want, strict=True):
        assert s["names"] == ["weight", "bn", "bias"]
        assert module.lr_at(k - 1) == lr
        assert s["lrs"] == [lr / scale] * 3, (k, s["lrs"], lr)
        assert s["counter"] == [k] * 3  # the pre-hook counted this step
        assert s["weight_decay"] == [SCHEDULE.decay * scale, 0.0, 0.0]
        assert s["momentum"] == [SCHEDULE.momentum] * 3
        assert s["nesterov"] == [False] * 3


def test_every_step_has_darknets_rate(tmp_path: Path) -> None:
    """batch = the cfg's 4 images: one step per batch, across the epoch boundary."""
    module, m = convert(tmp_path)
    run = train(module, tmp_path, "--images", "16", "--batch", "4", "--epochs", "2")
    assert [s["ni"] for s in run["steps"]] == list(range(8))
    check(run["steps"], m, first=1)
    # the burn-in, both steps' scales and the plateau were all exercised
    assert len(set(darknet(list(range(1, 9))))) == 6


def test_accumulation_windows_cross_epochs_with_a_summed_loss(tmp_path: Path) -> None:
    """batch 2, nbs 4: Ultralytics accumulates 2 batches; 7 batches per epoch put
    windows across epoch ends. --loss-reduction sum: LOSS_SCALE = 4 images per step,
    LR / 4 and decay x 4."""
    module, m = convert(tmp_path, "--loss-reduction", "sum")
    assert m.LOSS_SCALE == m.IMAGES_PER_STEP == 4
    run = train(module, tmp_path, "--images", "14", "--batch", "2", "--epochs", "3")
    assert [s["ni"] for s in run["steps"]] == list(range(1, 21, 2))
    assert run["steps"][3]["epoch"] == 1  # batch 6 of epoch 0 + batch 0 of epoch 1
    check(run["steps"], m, first=1, scale=4)


def test_resume_continues_the_count_and_the_windows(tmp_path: Path) -> None:
    """Interrupted after epoch 0 (last.pt saved), resumed in a new process: the step
    count comes back from the optimizer's groups and the windows are those of an
    uninterrupted run (16 images, batch 2, accumulate 2: 4 steps per epoch)."""
    module, m = convert(tmp_path)
    args = ["--images", "16", "--batch", "2", "--epochs", "3"]
    first = train(module, tmp_path, *args, "--interrupt-after-epoch", "0")
    assert [s["ni"] for s in first["steps"]] == [1, 3, 5, 7]
    check(first["steps"], m, first=1)
    resumed = train(module, tmp_path, *args, "--resume")
    assert resumed["start_epoch"] == 1
    assert [s["ni"] for s in resumed["steps"]] == list(range(9, 24, 2))
    check(resumed["steps"], m, first=5)


def test_a_batch_that_does_not_divide_the_step_is_refused(tmp_path: Path) -> None:
    """batch 3 with nbs 4: Ultralytics would step every 3 images; attach() stops it."""
    assert PYTHON is not None
    module, _ = convert(tmp_path)
    args = ["--images", "6", "--batch", "3", "--epochs", "1"]
    proc = subprocess.run(
        [
            PYTHON,
            str(DRIVER),
            str(module),
            str(tmp_path),
            str(tmp_path / "o.json"),
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "batch 3 x accumulate 1 is not IMAGES_PER_STEP = 4" in proc.stderr
