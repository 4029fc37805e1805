"""Runs a real Ultralytics training with a module from ``cfgsched convert --format ultralytics``.

Executed by the Ultralytics venv's python (``make ultralytics-env``), not by pytest:

    python ultralytics_run.py MODULE WORKDIR OUT.json --images N --batch B --epochs E
        [--interrupt-after-epoch K] [--resume]

Writes a tiny dataset of its own (no downloads, sockets blocked), trains YOLOv8n built from
its yaml on CPU with ``attach(model)`` and ``TRAIN_ARGS`` of the module, and records, at
every real ``optimizer.step()`` (a torch step post-hook: the values the step used, whatever
order the hooks run in), every parameter group's lr, weight decay, momentum, Nesterov flag
and step count. ``--interrupt-after-epoch K`` stops the run right after the checkpoint of
epoch K is saved; ``--resume`` then continues it from ``last.pt`` in a new process.
OUT.json: ``{"steps": [{"ni", "epoch", "lrs", "names", ...}], "net": [...], "version":
ultralytics.__version__, "start_epoch"}`` (``net``: connection attempts, must be empty).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

NET: list[str] = []


def block_network() -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        NET.append(repr(args[:2]))
        raise OSError("network disabled in this test")

    socket.getaddrinfo = refuse  # type: ignore[assignment]
    real_connect = socket.socket.connect

    def connect(self: socket.socket, addr: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse(addr)
        real_connect(self, addr)

    socket.socket.connect = connect  # type: ignore[method-assign]


def offline_settings(work: Path) -> None:
    """Settings, fonts and caches under ``work``; Arial.ttf present so nothing is fetched."""
    cfg = work / "yolo_config"
    (cfg / "Ultralytics").mkdir(parents=True, exist_ok=True)
    os.environ.update(
        YOLO_CONFIG_DIR=str(cfg),
        YOLO_OFFLINE="1",
        YOLO_AUTOINSTALL="False",
        MPLCONFIGDIR=str(work / "mpl"),
    )
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    shutil.copy(font, cfg / "Ultralytics" / "Arial.ttf")


def write_dataset(root: Path, n: int) -> Path:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    for j in range(n):
        img = np.full((64, 64, 3), 114, np.uint8)
        x0, y0 = (int(v) for v in rng.integers(4, 30, 2))
        w, h = (int(v) for v in rng.integers(12, 30, 2))
        img[y0 : y0 + h, x0 : x0 + w] = (0, 0, 255)
        cv2.imwrite(str(root / "images" / f"im{j}.png"), img)
        box = f"0 {(x0 + w / 2) / 64} {(y0 + h / 2) / 64} {w / 64} {h / 64}\n"
        (root / "labels" / f"im{j}.txt").write_text(box)
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images\nval: images\nnames:\n  0: box\n")
    return data


class Interrupt(Exception):
    """Raised after a checkpoint is saved: an interrupted run that can be resumed."""


class Recorder:
    def __init__(self, model: Any, interrupt_after_epoch: int | None) -> None:
        self.steps: list[dict[str, Any]] = []
        self.i = -1
        model.add_callback("on_train_start", self.on_train_start)
        model.add_callback("on_train_epoch_start", self.on_epoch_start)
        model.add_callback("on_train_batch_start", self.on_batch_start)
        if interrupt_after_epoch is not None:

            def on_model_save(trainer: Any) -> None:
                if trainer.epoch == interrupt_after_epoch:
                    raise Interrupt

            model.add_callback("on_model_save", on_model_save)

    def on_train_start(self, trainer: Any) -> None:
        self.trainer = trainer
        self.nb = len(trainer.train_loader)
        trainer.optimizer.register_step_post_hook(self.post_hook)

    def on_epoch_start(self, trainer: Any) -> None:
        self.i = -1

    def on_batch_start(self, trainer: Any) -> None:
        self.i += 1

    def post_hook(self, opt: Any, args: Any, kwargs: Any) -> None:
        groups = opt.param_groups
        self.steps.append(
            {
                "ni": self.trainer.epoch * self.nb + self.i,
                "epoch": self.trainer.epoch,
                "lrs": [g["lr"] for g in groups],
                "names": [g.get("param_group") for g in groups],
                "weight_decay": [g["weight_decay"] for g in groups],
                "momentum": [g["momentum"] for g in groups],
                "nesterov": [g["nesterov"] for g in groups],
                "counter": [g.get("cfgsched_step") for g in groups],
            }
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("module")
    ap.add_argument("work")
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--interrupt-after-epoch", type=int)
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    offline_settings(work)
    block_network()
    spec = importlib.util.spec_from_file_location("darknet_lr", a.module)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import ultralytics
    from ultralytics import YOLO, settings

    settings.update({k: False for k in ("sync", "tensorboard", "wandb", "mlflow")})
    if a.resume:
        model = YOLO(str(work / "runs" / "r" / "weights" / "last.pt"))
        mod.attach(model)
        rec = Recorder(model, None)
        model.train(resume=True)
    else:
        data = write_dataset(work / "data", a.images)
        model = YOLO("yolov8n.yaml")
        mod.attach(model)
        rec = Recorder(model, a.interrupt_after_epoch)
        kw: dict[str, Any] = dict(
            data=str(data),
            epochs=a.epochs,
            batch=a.batch,
            imgsz=32,
            workers=0,
            device="cpu",
            plots=False,
            val=False,
            project=str(work / "runs"),
            name="r",
            exist_ok=True,
            seed=0,
            verbose=False,
        )
        try:
            model.train(**mod.TRAIN_ARGS, **kw)  # a key in both would be a TypeError
        except Interrupt:
            pass
    out = {
        "steps": rec.steps,
        "net": NET,
        "version": ultralytics.__version__,
        "start_epoch": rec.trainer.start_epoch,
    }
    Path(a.out).write_text(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
