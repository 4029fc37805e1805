"""GPU 0's batch number and LR per loop iteration of a ``-gpus`` run (the counter rules:
:mod:`cfgsched.kernel.mgpu`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cfgsched.kernel.formulas import ngpus_lr
from cfgsched.kernel.mgpu import mgpu_batches, mgpu_step
from cfgsched.oracle import darknet_lr
from cfgsched.run import mgpu_config
from cfgsched.schedule import NetSchedule


@dataclass(frozen=True, eq=False)
class MultiGpuTrace:
    """GPU 0 per loop iteration (``phase`` 2: after hankai's single-GPU burn-in); ``ended``:
    darknet's loop ended (not cut by ``iterations``)."""

    fork: str
    ngpus: int
    scratch: bool
    learning_rate: float
    batches: npt.NDArray[np.int64]
    lr: npt.NDArray[np.float32]
    phase: npt.NDArray[np.int64]
    iteration: npt.NDArray[np.int64]
    ended: bool

    def __len__(self) -> int:
        return int(self.batches.size)


def multigpu_trace(
    schedule: NetSchedule,
    ngpus: int,
    *,
    scratch: bool = False,
    iterations: int | None = None,
) -> MultiGpuTrace:
    """GPU 0's batch and LR in every loop iteration on ``ngpus`` GPUs (at most
    ``iterations``); ``scratch``: no weights file (hankai trains burn-in on one GPU), else
    one with ``seen = 0``. Assumes no ``-map``, ``dynamic_minibatch=0``, default saving."""
    if iterations is not None and iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    cfg = mgpu_config(schedule, ngpus, scratch=scratch)
    batches, phases, state = mgpu_batches(cfg, iterations)
    lr_n = ngpus_lr(cfg.fork, schedule.learning_rate, ngpus)
    b = np.asarray(batches, dtype=np.int64)
    return MultiGpuTrace(
        fork=schedule.fork,
        ngpus=ngpus,
        scratch=scratch,
        learning_rate=lr_n,
        batches=b,
        lr=darknet_lr(schedule.with_values(learning_rate=lr_n), b),
        phase=np.asarray(phases, dtype=np.int64),
        iteration=np.arange(1, len(batches) + 1, dtype=np.int64),
        ended=mgpu_step(cfg, state) is None,
    )
