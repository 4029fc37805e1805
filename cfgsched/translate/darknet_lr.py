"""``DarknetLR``: darknet's learning-rate schedule as an exact PyTorch ``LRScheduler``."""

from __future__ import annotations

import os
from typing import Any

from torch.optim import Optimizer

from cfgsched.schedule import NetSchedule, translation_for
from cfgsched.translate.scheduler import (
    DarknetScheduler,
    resume_step,
)

__all__ = ["DarknetLR", "translation_for"]


class DarknetLR(DarknetScheduler):
    """darknet's learning rate for every optimizer step, bit for bit (``exact=True``).

    Right after construction the optimizer holds darknet's LR for batch b = 1 (the first
    ``optimizer.step()``); after i calls of ``step()`` it holds the LR for b = i + 1.

    - Group multiplier = the group's initial lr / the cfg's ``learning_rate``. A group
      created with the cfg's learning_rate (as written, e.g. 0.0013, or its float32 value)
      has multiplier exactly 1 and gets darknet's float32 value unchanged.
    - ``exact=False`` evaluates the same formulas in double instead of darknet's float32;
      they differ most where float32 cancels (poly near max_batches, sigmoid far from its
      step): there ``exact=True`` is what darknet trains with.
    - ``images_per_step=T`` (torch batch × accumulation × world size) puts step i at
      ``b = (i + 1)·T // images_per_iteration``.
    - ``ngpus=n`` reproduces ``darknet -gpus``: base LR × n in alexeyab and pjreddie
      (hankai does not scale), and ``multigpu="images"`` (b = (i + 1)·n, for DDP averaging
      over n·batch images) or ``"trace"`` (GPU 0's exact, non-monotonic batch sequence;
      ``scratch=True`` adds hankai's single-GPU burn-in phase).
    - ``last_epoch=k`` resumes with k + 1 optimizer steps done; see :meth:`from_weights`.
    - ``seed`` drives the ``random`` policy (darknet's own draws are not reproducible).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: NetSchedule,
        *,
        exact: bool = True,
        ngpus: int = 1,
        multigpu: str = "images",
        images_per_step: int | None = None,
        scratch: bool = False,
        seed: int = 0,
        last_epoch: int = -1,
    ) -> None:
        translation = translation_for(
            schedule,
            exact=exact,
            ngpus=ngpus,
            multigpu=multigpu,
            images_per_step=images_per_step,
            scratch=scratch,
            seed=seed,
        )
        super().__init__(optimizer, translation, last_epoch)

    @classmethod
    def from_weights(
        cls,
        optimizer: Optimizer,
        schedule: NetSchedule,
        weights_path: str | os.PathLike[str],
        **kwargs: Any,
    ) -> DarknetLR:
        """A scheduler starting where darknet resumes ``weights_path`` under ``schedule``.

        darknet resumes at iteration ``seen // images_per_iteration`` (the current cfg's
        batch × subdivisions); the next optimizer step is the one after those images.
        """
        from cfgsched.weights import read_weights_header

        if "last_epoch" in kwargs:
            raise TypeError("from_weights sets last_epoch from the weights file")
        header = read_weights_header(weights_path, fork=schedule.fork)
        iteration = header.iteration(schedule)
        t = translation_for(schedule, **kwargs)
        return cls(
            optimizer, schedule, last_epoch=resume_step(t, iteration) - 1, **kwargs
        )
