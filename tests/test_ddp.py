"""DarknetLR under DDP: 2 CPU processes (gloo, loopback) started by torch.distributed.run.

Checks: every rank holds the same LR at every step (all_gather inside the worker), that LR
is darknet's for b = (i + 1)·images_per_step / images_per_iteration, and a checkpoint
restored mid-run into fresh objects reproduces the uninterrupted LRs and weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

import cfgsched
from cfgsched.policies import rate
from tests import ddp_worker

WORKER = Path(__file__).with_name("ddp_worker.py")

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
        "PYTHONPATH": str(WORKER.parents[1]),
    }

    def run(port: int) -> subprocess.CompletedProcess[str]:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            str(WORKER),
            str(out),
        ]
        return subprocess.run(cmd, env=env, capture_output=True, text=True)

    proc = run(free_port())
    if proc.returncode != 0:
        # once more on a new port: another process may have taken the probed one
        proc = run(free_port())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_both_ranks_same_lr_every_step(ranks: list[dict[str, object]]) -> None:
    assert [r["world"] for r in ranks] == [2, 2]
    assert all(r["ranks_agree"] for r in ranks)
    assert ranks[0]["lrs"] == ranks[1]["lrs"]
    assert len(ranks[0]["lrs"]) == ddp_worker.STEPS  # type: ignore[arg-type]


def test_lr_is_darknets_under_the_images_mapping(
    ranks: list[dict[str, object]],
) -> None:
    s = cfgsched.parse(ddp_worker.CFG)
    per_step = (
        ddp_worker.PER_RANK_BATCH * 2
    )  # images per optimizer step over both ranks
    assert s.images_per_iteration == 4
    want = [
        rate(s.kernel_params(), (i + 1) * per_step // s.images_per_iteration)
        for i in range(ddp_worker.STEPS)
    ]
    assert ranks[0]["lrs"] == want
    # b = 2, 4, ..., 80: four burn-in values (b = 2, 4, 6, 8), then lr, lr/10, lr/100
    assert len(set(want)) == 7


def test_checkpoint_restore_reproduces_the_run(ranks: list[dict[str, object]]) -> None:
    for r in ranks:
        lrs = r["lrs"]
        assert isinstance(lrs, list)
        assert r["resumed"] == lrs[ddp_worker.CHECKPOINT_AT :]
        assert r["same_weights_after_resume"]
    assert ranks[0]["weights"] == ranks[1]["weights"]
