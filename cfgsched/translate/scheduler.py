"""The exact darknet scheduler for PyTorch: imports only torch, the stdlib and the kernels.

:class:`DarknetScheduler` is what :class:`cfgsched.DarknetLR` runs: a closed form of
``last_epoch`` over a :class:`~cfgsched.run.Run`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from cfgsched.run import Run

__all__ = ["DarknetScheduler", "record_step", "torch_step_count"]


# torch compat: the only code that touches LRScheduler's private state. LRScheduler.step()
# counts its calls in ``_step_count`` (for its call-order warnings) and keeps the lrs it set
# in ``_last_lr`` (``get_last_lr()``); torch offers no public way to set either, which a
# fast step() and a resumed native scheduler need (checked with torch 2.x).


def torch_step_count(sched: LRScheduler) -> int:
    """How many times ``sched.step()`` ran (construction counts one)."""
    return int(getattr(sched, "_step_count", 0))


def record_step(
    sched: LRScheduler, last_lr: list[Any], step_count: int | None = None
) -> None:
    """Record what ``LRScheduler.step()`` records: the lrs it set and (unless None) the
    call count."""
    if step_count is not None:
        sched._step_count = step_count
    sched._last_lr = last_lr


class DarknetScheduler(LRScheduler):
    """darknet's learning rate, closed form: after i ``step()`` calls, ``lr = rate(b(i))``.

    Right after construction the optimizer holds the LR of the first ``optimizer.step()``.
    Each group's lr is darknet's rate times the group's :meth:`Run.multiplier`.
    No lambdas: the scheduler pickles and its ``state_dict`` round-trips. With
    ``last_epoch >= 0`` a group without ``initial_lr`` uses its current lr as initial lr.
    """

    def __init__(
        self, optimizer: Optimizer, translation: Run, last_epoch: int = -1
    ) -> None:
        if not isinstance(translation, Run):
            raise TypeError(f"expected a Run, got {type(translation).__name__}")
        self.translation = translation
        if last_epoch != -1:
            for group in getattr(optimizer, "param_groups", []):
                group.setdefault("initial_lr", group["lr"])
        self.multipliers: list[float] = [
            translation.multiplier(float(g.get("initial_lr", g["lr"])))
            for g in getattr(optimizer, "param_groups", [])
        ]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | Tensor]:
        """The learning rate of each group for optimizer step ``last_epoch`` (0-based)."""
        r = self.translation.lr(self.last_epoch)
        return [r if m == 1.0 else r * m for m in self.multipliers]

    def step(self, epoch: int | None = None) -> None:
        """Advance one optimizer step (``epoch``: deprecated torch form, jumps there)."""
        count = torch_step_count(self)
        if epoch is not None or count < 2:
            # torch's own path: the order-of-calls warnings and the deprecated epoch jump
            super().step(epoch)
            return
        # Same effect as LRScheduler.step() without its per-call bookkeeping objects.
        self.last_epoch += 1
        r = self.translation.lr(self.last_epoch)
        last: list[float | Tensor] = []
        for group, m in zip(self.optimizer.param_groups, self.multipliers, strict=True):
            value = r if m == 1.0 else r * m
            old = group["lr"]
            if isinstance(old, Tensor):
                old.fill_(value)
                last.append(old.clone())
            else:
                group["lr"] = value
                last.append(value)
        record_step(self, last, count + 1)

    def _get_closed_form_lr(self) -> list[float | Tensor]:
        return self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        """The scheduler state: plain numbers, lists and dicts only (``weights_only`` loads it)."""
        state = super().state_dict()
        state["translation"] = self.translation.to_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (the checkpoint's translation wins)."""
        state = dict(state_dict)
        t = state.get("translation")
        if isinstance(t, dict):
            state["translation"] = Run.from_dict(t)
        super().load_state_dict(state)

    def darknet_batch(self) -> int:
        """darknet's batch number for the optimizer's next step."""
        return self.translation.batch(self.last_epoch)
