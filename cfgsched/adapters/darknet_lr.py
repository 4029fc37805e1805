"""darknet's learning-rate schedule as exact PyTorch ``LRScheduler``s: ``DarknetScheduler``
(a closed form of ``last_epoch`` over a :class:`~cfgsched.run.Run`) and ``DarknetLR``."""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from cfgsched.adapters.optim import LayerWindows
from cfgsched.kernel.formulas import f32_decimal
from cfgsched.layers import layer_states
from cfgsched.options import Options
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule
from cfgsched.weights import read_weights_header

__all__ = ["DarknetLR", "DarknetScheduler", "options_of"]

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
        for k, (_, back) in _PLAIN.items():
            if isinstance(state.get(k), dict):
                state[k] = back(state[k])
        super().load_state_dict(state)

    def darknet_batch(self) -> int:
        """darknet's batch number for the optimizer's next step."""
        return self.translation.batch(self.last_epoch)


def options_of(options: Options | None, option_kwargs: dict[str, Any]) -> Options:
    """``options`` with keyword options (which win); TypeError for unknown keywords."""
    if options is not None and not isinstance(options, Options):
        raise TypeError(f"options: expected Options, got {type(options).__name__}")
    unknown = sorted(set(option_kwargs) - {f.name for f in dataclasses.fields(Options)})
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    base = Options() if options is None else options
    return dataclasses.replace(base, **option_kwargs) if option_kwargs else base


def _update_number(scheduler: DarknetLR, start: int) -> int:
    """darknet's update k (1-based) of the scheduler's next optimizer step."""
    return scheduler.last_epoch - start + 1


class DarknetLR(DarknetScheduler):
    """darknet's learning rate for every optimizer step, bit for bit (``exact=True``), and its
    layer rules when the optimizer comes from ``build_optimizer(layers=...)``. After i
    ``step()`` calls the optimizer holds the LR of step i of the translation under
    ``options`` (or its fields as keywords, which win; docs/commands.md). A group's
    multiplier is its initial lr / the cfg's ``learning_rate``; one other than 1 warns once
    unless ``rescale=True`` (build_optimizer's groups never warn). ``last_epoch=k`` (k + 1
    steps done) overrides the resume point."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: NetSchedule,
        options: Options | None = None,
        *,
        last_epoch: int = -1,
        rescale: bool = False,
        **option_kwargs: Any,
    ) -> None:
        self.options = o = options_of(options, option_kwargs)
        translation = translate(schedule, o)
        at = translation.start - 1 if last_epoch == -1 else last_epoch  # -1: the start
        super().__init__(optimizer, translation, at)
        self.layer_windows: LayerWindows | None = None
        if any(g.get("darknet_layers") for g in optimizer.param_groups):
            update = functools.partial(_update_number, self, translation.start)
            states = layer_states(
                schedule,
                build=o.build,
                resume_iteration=o.resume_iteration,
                ngpus=o.ngpus,
            )
            self.layer_windows = LayerWindows(optimizer, states, update)
        # warn once when a group's lr is not the cfg's (build_optimizer's groups aside)
        groups = zip(optimizer.param_groups, self.multipliers, strict=True)
        scaled = [(g, m) for g, m in groups if m != 1.0 and "darknet_layer" not in g]
        if scaled and not rescale:
            (group, m), cfg = scaled[0], f32_decimal(translation.cfg_lr)
            warnings.warn(
                f"DarknetLR: the optimizer's lr {group['initial_lr']:.6g} is not the"
                f" cfg's learning_rate {cfg:.6g}: every LR is scaled by {m:.3g}x;"
                " build the optimizer with lr=learning_rate, or pass rescale=True"
                " if the scaling is meant",
                stacklevel=2,
            )

    @classmethod
    def from_weights(
        cls,
        optimizer: Optimizer,
        schedule: NetSchedule,
        weights_path: str | os.PathLike[str],
        options: Options | None = None,
        *,
        rescale: bool = False,
        **option_kwargs: Any,
    ) -> DarknetLR:
        """A scheduler starting where darknet resumes ``weights_path`` (its header's seen)."""
        if "last_epoch" in option_kwargs or "resume_iteration" in option_kwargs:
            raise TypeError("from_weights sets the resume point from the weights file")
        opts = options_of(options, option_kwargs)
        if opts.resume_iteration is not None:
            raise ValueError("from_weights sets resume_iteration from the weights file")
        header = read_weights_header(weights_path, fork=schedule.fork)
        opts = dataclasses.replace(opts, resume_iteration=header.iteration(schedule))
        return cls(optimizer, schedule, opts, rescale=rescale)
