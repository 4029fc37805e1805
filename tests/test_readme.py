"""Runs the ```python blocks of README's "training-loop" and "native" sections.

The blocks run in order in one namespace, in a temporary directory holding
``sample_cfgs/yolov4.cfg``, a ``yolov4.weights`` header and our small
``sample_cfgs/layer-rules.cfg`` as ``yolov4-custom.cfg``. The harness provides what the
README says is the reader's own: ``model``, ``loader``, ``mini_loader``, ``loss_fn``,
``per_rank_batch`` and ``Darknet`` (a cfg-driven port); DDP runs in a one-process gloo
group; the Lightning module is fitted by a real Lightning ``Trainer``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

import cfgsched
from cfgsched.policies import rate
from cfgsched.reader.parser import read_sections
from tests.docs import blocks
from tests.test_layers import _model as module_list

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LOADER_STEPS = 6
SEEN_ITERATIONS = 1234  # the yolov4.weights header says 1234 iterations were trained


def section_blocks(name: str) -> list[str]:
    return blocks(name)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2 * 2 * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def batches(
    size: int, count: int, channels: int = 3, outputs: int = 1
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(size)
    for _ in range(count):
        x = torch.randn(size, channels, 4, 4, generator=g)
        yield x, torch.randn(size, outputs, generator=g)


class Darknet(nn.Module):
    """A cfg-driven port in miniature: ``module_list[i]`` is darknet layer i."""

    def __init__(self, path: str) -> None:
        super().__init__()
        sections = read_sections(Path(path).read_text())
        net = {e.key: e.value for e in sections[0].entries}
        self.module_list = module_list(sections, int(net["channels"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.module_list:
            x = m(x)
        return x


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sample_cfgs").mkdir()
    shutil.copy(
        ROOT / "sample_cfgs" / "yolov4.cfg", tmp_path / "sample_cfgs" / "yolov4.cfg"
    )
    shutil.copy(
        ROOT / "sample_cfgs" / "layer-rules.cfg", tmp_path / "yolov4-custom.cfg"
    )
    s = cfgsched.load(ROOT / "sample_cfgs" / "yolov4.cfg")
    seen = SEEN_ITERATIONS * s.images_per_iteration
    (tmp_path / "yolov4.weights").write_bytes(
        struct.pack("<iiiQ", 0, 2, 5, seen) + b"\0" * 64
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    return tmp_path


LIGHTNING_STEPS = 4


def lightning_fit(module: Any, batch: int) -> list[float]:
    """Fit ``module`` with a real Lightning Trainer (CPU, a few steps) and return the LR of
    the first group at every optimizer step, as the optimizer applies it."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    lrs: list[float] = []

    class Record(pl.Callback):
        def on_before_optimizer_step(
            self, trainer: Any, pl_module: Any, opt: Any
        ) -> None:
            lrs.append(opt.param_groups[0]["lr"])

    x, y = next(batches(batch * LIGHTNING_STEPS, 1))
    trainer = pl.Trainer(
        max_steps=LIGHTNING_STEPS, accelerator="cpu", logger=False, callbacks=[Record()],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=batch))
    return lrs


def test_readme_training_loop_blocks_run(workdir: Path) -> None:
    blocks = section_blocks("training-loop")
    assert len(blocks) == 7
    schedule = cfgsched.load(workdir / "sample_cfgs" / "yolov4.cfg")
    B, mini = schedule.images_per_iteration, schedule.mini_batch
    torch.manual_seed(0)
    ns: dict[str, Any] = {
        "model": Tiny(),
        "loader": list(batches(B, LOADER_STEPS)),
        "mini_loader": list(batches(mini, LOADER_STEPS * schedule.subdivisions)),
        "loss_fn": nn.functional.mse_loss,
        "per_rank_batch": B,
    }
    p = schedule.kernel_params()

    exec(blocks[0], ns)  # plain loop: LOADER_STEPS updates
    assert ns["scheduler"].last_epoch == LOADER_STEPS
    assert ns["optimizer"].param_groups[0]["lr"] == rate(p, LOADER_STEPS + 1)

    exec(blocks[1], ns)  # accumulation: one step per `subdivisions` mini-batches
    assert ns["scheduler"].last_epoch == 2 * LOADER_STEPS
    assert ns["optimizer"].param_groups[0]["lr"] == rate(p, 2 * LOADER_STEPS + 1)

    exec(blocks[2], ns)  # images_per_step=32 with batch 64: b = (i + 1)·32 // 64
    assert ns["scheduler"].darknet_batch() == 0

    dist.init_process_group(
        "gloo", init_method=f"file://{workdir / 'pg'}", rank=0, world_size=1
    )
    try:
        exec(blocks[3], ns)  # DDP, world size 1
    finally:
        dist.destroy_process_group()
    assert ns["world"] == 1 and ns["scheduler"].last_epoch == LOADER_STEPS

    exec(blocks[4], ns)  # Lightning: a real Trainer, one optimizer step per batch
    lrs = lightning_fit(ns["DarknetModule"](Tiny(), schedule), B)
    assert lrs == [rate(p, k) for k in range(1, LIGHTNING_STEPS + 1)]

    before = ns["scheduler"].state_dict()
    lr_before = ns["optimizer"].param_groups[0]["lr"]
    exec(blocks[5], ns)  # save, restore into new objects, and from a .weights header
    assert (workdir / "checkpoint.pt").is_file()
    assert ns["scheduler"].state_dict() == before
    assert ns["optimizer"].param_groups[0]["lr"] == lr_before
    resumed = ns["resumed"]
    assert resumed.optimizer.param_groups[0]["lr"] == rate(p, SEEN_ITERATIONS + 1)

    check_layer_schedule_block(blocks[6], ns)


def check_layer_schedule_block(block: str, ns: dict[str, Any]) -> None:
    """The layer-schedule recipe on our yolov4-custom.cfg stand-in (stopbackward=30 on
    layer 1): alexeyab GPU gives layers 0-1 no gradient in the first 30 updates, so over
    LOADER_STEPS updates their weights follow darknet's update without a gradient
    (dw += -decay*batch*w; w += lr/batch*dw; dw *= momentum) and their biases stay."""
    custom = cfgsched.load("yolov4-custom.cfg")
    batch = custom.images_per_iteration
    ns.update(Darknet=Darknet, loader=list(batches(batch, LOADER_STEPS, 2, 2)))
    torch.manual_seed(7)
    exec(block, ns)
    torch.manual_seed(7)
    start = Darknet("yolov4-custom.cfg").module_list
    trained = ns["model"].module_list
    w, dw = start[1].weight.detach().clone(), torch.zeros_like(start[1].weight)
    for k in range(1, LOADER_STEPS + 1):
        dw += -custom.decay * batch * w
        w += rate(custom.kernel_params(), k) / batch * dw
        dw *= custom.momentum
    assert torch.allclose(trained[1].weight, w, rtol=1e-5, atol=1e-7)
    assert torch.equal(trained[1].bias, start[1].bias)  # no gradient, no decay
    assert torch.equal(trained[0][1].weight, start[0][1].weight)  # batch-norm scale
    assert not torch.equal(trained[5].weight, start[5].weight)  # layer 5 trains


def test_readme_native_blocks_run(workdir: Path) -> None:
    blocks = section_blocks("native")
    assert len(blocks) == 1
    ns: dict[str, Any] = {}
    schedule = cfgsched.load(workdir / "sample_cfgs" / "yolov4.cfg")
    ns["schedule"] = schedule
    ns["optimizer"] = cfgsched.build_optimizer(Tiny(), schedule)
    ns["cfgsched"] = cfgsched
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(blocks[0], ns)
    lines = out.getvalue().splitlines()
    code = blocks[0]
    # the outputs shown in the README's comments are what the block prints
    assert lines[0] in code and "milestones=[3999, 4499]" in lines[0]
    assert lines[1].startswith("1 burn-in with power=4")
