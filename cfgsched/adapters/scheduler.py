"""The exact darknet scheduler for PyTorch (what :class:`cfgsched.DarknetLR` runs): a
closed form of ``last_epoch`` over a :class:`~cfgsched.run.Run`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from cfgsched.options import Options
from cfgsched.run import Run

__all__ = ["DarknetScheduler"]

#: Attributes a state dict holds as plain data: name -> (to plain data, back).
_PLAIN: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "translation": (Run.to_dict, Run.from_dict),
    "options": (Options.to_record, Options.from_record),  # DarknetLR's
}


class DarknetScheduler(LRScheduler):
    """darknet's learning rate, closed form: after i ``step()`` calls each group's lr is
    darknet's rate at step i times its :meth:`Run.multiplier` (no lambdas: it pickles).
    With ``last_epoch >= 0`` a group without ``initial_lr`` takes its current lr."""

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
        return [r * m for m in self.multipliers]

    def state_dict(self) -> dict[str, Any]:
        """The scheduler state: plain numbers, lists and dicts only (``weights_only`` loads it)."""
        state = super().state_dict()
        state.pop("layer_windows", None)  # DarknetLR's optimizer hooks
        return state | {k: f(state[k]) for k, (f, _) in _PLAIN.items() if k in state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (the checkpoint's translation wins)."""
        state = dict(state_dict)
        plain = _PLAIN.items()
        state |= {
            k: g(state[k]) for k, (_, g) in plain if isinstance(state.get(k), dict)
        }
        super().load_state_dict(state)

    def darknet_batch(self) -> int:
        """darknet's batch number for the optimizer's next step."""
        return self.translation.batch(self.last_epoch)
