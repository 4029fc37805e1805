"""Runs the README's Ultralytics recipe as written, in the Ultralytics venv.

    python readme_ultralytics.py WORK BLOCK.py OUT.json

``WORK`` holds ``darknet_lr.py`` (from ``cfgsched convert --format ultralytics``). The
harness provides what the recipe says is the reader's (``DATA``, ``EPOCHS``, ``BATCH``),
keeps the run small and offline (32-pixel images, CPU, no plots or validation: passed to
``YOLO.train`` for the recipe), and records every group's lr at every real optimizer step
with torch's global step post-hook (the lr the step used).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ultralytics_run import block_network, offline_settings, write_dataset


def main() -> None:
    work, block, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    offline_settings(work)
    block_network()
    os.chdir(work)
    sys.path.insert(0, str(work))
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from ultralytics import YOLO

    steps: list[list[float]] = []

    def record(opt: Any, args: Any, kwargs: Any) -> None:
        steps.append([g["lr"] for g in opt.param_groups])

    register_optimizer_step_post_hook(record)
    small = dict(
        imgsz=32,
        workers=0,
        device="cpu",
        plots=False,
        val=False,
        seed=0,
        project=str(work / "runs"),
        name="r",
        exist_ok=True,
        verbose=False,
    )
    train = YOLO.train
    YOLO.train = lambda self, **kw: train(self, **{**kw, **small})  # type: ignore[method-assign]
    namespace = {
        "DATA": str(write_dataset(work / "data", 32)),
        "EPOCHS": 2,
        "BATCH": 16,
    }
    exec(compile(block.read_text(), "README.md", "exec"), namespace)
    out.write_text(json.dumps({"steps": steps}))


if __name__ == "__main__":
    main()
