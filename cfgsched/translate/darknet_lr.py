"""``DarknetLR``: darknet's learning-rate schedule as an exact PyTorch ``LRScheduler``."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

from torch.optim import Optimizer

from cfgsched.kernel.formulas import f32_decimal
from cfgsched.options import Options
from cfgsched.run import translate
from cfgsched.schedule import NetSchedule
from cfgsched.translate.optim import LayerWindows
from cfgsched.translate.scheduler import DarknetScheduler

__all__ = ["DarknetLR", "options_of"]


def options_of(options: Options | None, option_kwargs: dict[str, Any]) -> Options:
    """One :class:`Options` from ``options`` and keyword options (the keywords win).

    Unknown keywords raise TypeError; invalid values ValueError (from :class:`Options`).
    """
    if options is not None and not isinstance(options, Options):
        raise TypeError(f"options: expected Options, got {type(options).__name__}")
    names = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(option_kwargs) - names)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    base = Options() if options is None else options
    return dataclasses.replace(base, **option_kwargs) if option_kwargs else base


class DarknetLR(DarknetScheduler):
    """darknet's learning rate for every optimizer step, bit for bit (``exact=True``).

    Right after construction the optimizer holds darknet's LR for batch b = 1 (the first
    ``optimizer.step()``); after i calls of ``step()`` it holds the LR for b = i + 1.

    The translation is one :class:`cfgsched.options.Options` (``options``, or the same
    names as keywords, which override it): ``exact``, ``flush`` (a release build's
    flush-to-zero; None = the fork's default build), ``ngpus``, ``multigpu``,
    ``images_per_step``, ``scratch``, ``ideal``, ``resume_iteration``, ``seed``, ``build``
    (the darknet build whose layer rules apply: ``"gpu"``, the default, or ``"cpu"``).

    - Group multiplier = the group's initial lr / the cfg's ``learning_rate``. A group
      created with the cfg's learning_rate (as written, e.g. 0.0013, or its float32 value)
      has multiplier exactly 1 and gets darknet's float32 value unchanged. Any other
      multiplier warns once (``UserWarning``) unless ``rescale=True`` says it is meant;
      the groups of :func:`cfgsched.build_optimizer` are scaled on purpose and never warn.
    - ``exact=False`` evaluates the same formulas in double instead of darknet's float32;
      they differ most where float32 cancels (poly near max_batches, sigmoid far from its
      step): there ``exact=True`` is what darknet trains with.
    - ``images_per_step=T`` (torch batch × accumulation × world size) puts step i at
      ``b = (i + 1)·T // images_per_iteration``.
    - ``ngpus=n`` reproduces ``darknet -gpus``: base LR × n in alexeyab and pjreddie
      (hankai does not scale), and ``multigpu="images"`` (b = (i + 1)·n, for DDP averaging
      over n·batch images) or ``"trace"`` (GPU 0's exact, non-monotonic batch sequence;
      ``scratch=True`` adds hankai's single-GPU burn-in phase).
    - Resume: ``resume_iteration`` (darknet's iteration; see :meth:`from_weights`) starts at
      the translation's first step after it; ``last_epoch=k`` (k + 1 optimizer steps done)
      overrides it.
    - ``seed`` drives the ``random`` policy (darknet's own draws are not reproducible).
    """

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
        self.options = options_of(options, option_kwargs)
        translation = translate(schedule, self.options)
        if last_epoch == -1 and translation.start > 0:
            last_epoch = translation.start - 1
        super().__init__(optimizer, translation, last_epoch)
        # darknet's layer rules (cfgsched.layers), applied before every optimizer step
        self.layer_windows = LayerWindows.attach(
            optimizer,
            schedule,
            lambda: self.last_epoch - translation.start + 1,
            build=self.options.build,
            resume_iteration=self.options.resume_iteration,
            ngpus=self.options.ngpus,
        )
        if not rescale:
            self._warn_rescaled()

    def _warn_rescaled(self) -> None:
        """Warn once when a group's lr is not the cfg's (build_optimizer's groups, which
        carry ``darknet_layer``, are scaled on purpose)."""
        for group, m in zip(self.optimizer.param_groups, self.multipliers, strict=True):
            if m != 1.0 and "darknet_layer" not in group:
                cfg = self.translation.cfg_lr
                warnings.warn(
                    f"DarknetLR: the optimizer's lr {group['initial_lr']:.6g} is not the"
                    f" cfg's learning_rate {f32_decimal(cfg):.6g}: every LR is scaled by"
                    f" {m:.3g}x; build the optimizer with lr=learning_rate, or pass"
                    " rescale=True if the scaling is meant",
                    UserWarning,
                    stacklevel=3,
                )
                return

    def state_dict(self) -> dict[str, Any]:
        """The scheduler state, plain data only (the options as their record)."""
        state = super().state_dict()
        state.pop("layer_windows", None)
        state["options"] = self.options.to_record()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (the checkpoint's translation wins)."""
        state = dict(state_dict)
        if isinstance(state.get("options"), dict):
            state["options"] = Options.from_record(state["options"])
        super().load_state_dict(state)

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
        """A scheduler starting where darknet resumes ``weights_path`` under ``schedule``.

        darknet resumes at iteration ``seen // images_per_iteration`` (the current cfg's
        batch × subdivisions): ``resume_iteration`` is set from the file's header.
        """
        from cfgsched.weights import read_weights_header

        if "last_epoch" in option_kwargs or "resume_iteration" in option_kwargs:
            raise TypeError("from_weights sets the resume point from the weights file")
        opts = options_of(options, option_kwargs)
        if opts.resume_iteration is not None:
            raise ValueError("from_weights sets resume_iteration from the weights file")
        header = read_weights_header(weights_path, fork=schedule.fork)
        opts = dataclasses.replace(opts, resume_iteration=header.iteration(schedule))
        return cls(optimizer, schedule, opts, rescale=rescale)
