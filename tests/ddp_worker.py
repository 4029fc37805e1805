"""One rank of the DDP test (started by tests/test_ddp.py through torch.distributed.run).

Usage: ``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py OUTDIR``.
Trains a tiny model with DarknetLR (``images_per_step`` = per-rank batch × world size),
gathers every rank's LR at every step, checkpoints mid-run, restores into fresh objects
and replays the rest; writes ``OUTDIR/rank<r>.json`` with what it saw.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import cfgsched

CFG = """[net]
batch=4
subdivisions=1
learning_rate=0.01
momentum=0.9
decay=0.0005
burn_in=10
policy=steps
steps=30,50
scales=.1,.1
max_batches=80
width=416
height=416
channels=3
"""
PER_RANK_BATCH = 4
STEPS = 40
CHECKPOINT_AT = 15  # optimizer steps done when the checkpoint is written


def data(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(PER_RANK_BATCH, 5, generator=g), torch.randn(
        PER_RANK_BATCH, 1, generator=g
    )


def build(schedule: cfgsched.NetSchedule, world: int) -> tuple[nn.Module, Any, Any]:
    torch.manual_seed(0)  # same initial weights on every rank
    model = DistributedDataParallel(
        nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))
    )
    opt = cfgsched.build_optimizer(model.module, schedule)
    sched = cfgsched.DarknetLR(opt, schedule, images_per_step=PER_RANK_BATCH * world)
    return model, opt, sched


def train(
    model: nn.Module, opt: Any, sched: Any, rank: int, world: int, start: int, stop: int
) -> tuple[list[float], bool]:
    """Steps ``start .. stop-1``; the LR of each step and whether all ranks agreed."""
    lrs: list[float] = []
    agree = True
    for step in range(start, stop):
        x, y = data(rank, step)
        loss = nn.functional.mse_loss(model(x), y)  # mean over this rank's images
        opt.zero_grad()
        loss.backward()  # DDP averages over ranks: the mean over all images of the step
        lr = float(opt.param_groups[0]["lr"])
        mine = torch.tensor([lr], dtype=torch.float64)
        every = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(every, mine)
        agree = agree and all(float(t.item()) == lr for t in every)
        lrs.append(lr)
        opt.step()
        sched.step()
    return lrs, agree


def main() -> None:
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    schedule = cfgsched.parse(CFG)

    model, opt, sched = build(schedule, world)
    first, agree1 = train(model, opt, sched, rank, world, 0, CHECKPOINT_AT)
    ckpt = out / "ckpt.pt"
    if rank == 0:
        state = {
            "model": model.module.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
        }
        torch.save(state, ckpt)
    dist.barrier()
    rest, agree2 = train(model, opt, sched, rank, world, CHECKPOINT_AT, STEPS)
    final = [p.detach().clone() for p in model.parameters()]

    # restore into fresh objects, as a restarted job would
    model2, opt2, sched2 = build(schedule, world)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model2.module.load_state_dict(state["model"])
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    resumed, agree3 = train(model2, opt2, sched2, rank, world, CHECKPOINT_AT, STEPS)
    same_weights = all(
        torch.equal(a, b) for a, b in zip(final, model2.parameters(), strict=True)
    )

    result = {
        "rank": rank,
        "world": world,
        "lrs": first + rest,
        "resumed": resumed,
        "ranks_agree": agree1 and agree2 and agree3,
        "same_weights_after_resume": same_weights,
        "weights": [p.detach().flatten().tolist() for p in model.parameters()],
    }
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    del model, model2, opt, opt2, sched, sched2
    dist.destroy_process_group()
    sys.stdout.flush()
    # skip interpreter teardown: gloo's background threads can abort ("terminate called
    # without an active exception") while Python tears down; the results are written
    os._exit(0)


if __name__ == "__main__":
    main()
