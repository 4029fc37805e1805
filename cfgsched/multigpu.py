"""Multi-GPU darknet runs (``-gpus 0,1,...``): GPU 0's batch number and LR per loop iteration.

The counter rules live in :mod:`cfgsched.kernel.mgpu` (standard library only); this module
adds the learning rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cfgsched.kernel.formulas import ngpus_lr
from cfgsched.kernel.mgpu import mgpu_batches, mgpu_step
from cfgsched.oracle import darknet_lr
from cfgsched.run import mgpu_config
from cfgsched.schedule import NetSchedule

__all__ = ["MultiGpuTrace", "multigpu_trace"]


@dataclass(frozen=True, eq=False)
class MultiGpuTrace:
    """GPU 0 in a darknet ``-gpus`` run, one entry per training-loop iteration.

    ``batches`` (int64): the batch number GPU 0's update was evaluated at; ``lr``
    (float32): the LR it used (``learning_rate`` already multiplied by ``ngpus`` where the
    fork does it); ``phase`` (int64): 1, or 2 after hankai's single-GPU burn-in;
    ``iteration`` (int64): the 1-based loop iteration. ``ended`` is True when the run
    reached darknet's own end of loop (False when cut by ``iterations``).
    """

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
    """GPU 0's batch number and LR for every loop iteration of a run on ``ngpus`` GPUs.

    ``scratch``: no weights file given (only hankai behaves differently: it trains on one
    GPU until ``burn_in``, then restarts on all GPUs); otherwise a weights file with
    ``seen = 0`` is assumed. The run ends where darknet's loop ends, or after ``iterations``
    loop iterations. Assumes no ``-map``, ``dynamic_minibatch=0`` and default save intervals.
    """
    if iterations is not None and iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    cfg = mgpu_config(schedule, ngpus, scratch=scratch)
    batches, phases, state = mgpu_batches(cfg, iterations)
    lr_n = ngpus_lr(cfg.fork, schedule.learning_rate, ngpus)
    b = np.asarray(batches, dtype=np.int64)
    lr = darknet_lr(schedule.with_values(learning_rate=lr_n), b)
    ended = mgpu_step(cfg, state) is None
    return MultiGpuTrace(
        fork=schedule.fork,
        ngpus=ngpus,
        scratch=scratch,
        learning_rate=lr_n,
        batches=b,
        lr=lr,
        phase=np.asarray(phases, dtype=np.int64),
        iteration=np.arange(1, len(batches) + 1, dtype=np.int64),
        ended=ended,
    )
