"""Where each PyTorch optimizer step falls in a darknet schedule: standard library only.

Maps 0-based optimizer steps to darknet batch numbers (images per step, ``-gpus`` runs,
GPU 0's multi-GPU trace) and learning rates. :func:`cfgsched.translation.translate` builds
the :class:`Translation` from the validated options.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, NamedTuple

from cfgsched.kernel.formulas import FORK_HANKAI, Params, f32, flushed, rate
from cfgsched.kernel.mgpu import MgpuConfig, mgpu_batches

#: ``multigpu=`` choices: darknet batch ``(i + 1)·n`` (the DDP intent) or GPU 0's real sequence.
MULTIGPU_MODES = ("images", "trace")


def f32_decimal(x: float) -> float:
    """The shortest decimal that rounds to the float32 ``x``, as a double (0.0013, not f32)."""
    if not math.isfinite(x) or x == 0:
        return x
    for digits in range(1, 10):
        d = float(f"{x:.{digits}g}")
        if f32(d) == x:
            return d
    return x


def ngpus_lr(fork: int, lr: float, ngpus: int) -> float:
    """The base rate a ``-gpus`` run uses: ``f32(lr·n)`` except in hankai (no scaling)."""
    if ngpus == 1 or fork == FORK_HANKAI:
        return lr
    return f32(lr * ngpus)


class Translation(NamedTuple):
    """How 0-based optimizer steps map to darknet batch numbers and learning rates.

    ``params`` already holds the multi-GPU base rate; ``cfg_lr`` is the cfg's own
    ``learning_rate`` (float32), the reference for parameter-group multipliers.
    ``images_per_step`` is the images one optimizer step consumes (all ranks, all
    accumulation steps); step ``i`` is at ``b = (i + 1)·images_per_step // images_per_iteration``
    unless ``trace`` (GPU 0's loop-iteration sequence of a darknet ``-gpus`` run).
    ``flush``: release-build flush-to-zero. ``start``: optimizer steps already done when
    training resumes (the scheduler's first step is ``start``).
    """

    params: Params
    cfg_lr: float
    images_per_iteration: int
    images_per_step: int
    exact: bool = True
    ngpus: int = 1
    trace: bool = False
    scratch: bool = False
    flush: bool = False
    start: int = 0

    def batch(self, step: int) -> int:
        """darknet's batch number ``b`` for the 0-based optimizer step ``step``."""
        if step < 0:
            raise ValueError(f"optimizer step must be >= 0, got {step}")
        if self.trace:
            return _trace_batch(self, step)
        return (step + 1) * self.images_per_step // self.images_per_iteration

    def lr(self, step: int) -> float:
        """darknet's learning rate for the 0-based optimizer step ``step`` (multiplier 1)."""
        return rate(self.params, self.batch(step), self.exact, self.flush)

    def multiplier(self, initial_lr: float) -> float:
        """A parameter group's multiplier: its initial lr / the cfg's learning_rate.

        A group created with the cfg's learning_rate (its float32 value or the decimal
        as written) gets exactly 1, so its lr is darknet's value with no extra rounding.
        A zero or non-finite cfg learning_rate gives 1 (no ratio exists).
        """
        ref = self.cfg_lr
        if f32(initial_lr) == ref or ref == 0 or not math.isfinite(ref):
            return 1.0
        return initial_lr / f32_decimal(ref)


def make_translation(
    params: Params,
    images_per_iteration: int,
    *,
    exact: bool = True,
    ngpus: int = 1,
    multigpu: str = "images",
    images_per_step: int | None = None,
    scratch: bool = False,
    flush: bool = False,
    resume_iteration: int = 0,
) -> Translation:
    """Validate the options and build the :class:`Translation` of a darknet schedule.

    ``ngpus=n`` multiplies the base rate by n where the fork does (alexeyab, pjreddie) and,
    with ``multigpu="images"``, puts step i at ``b = (i + 1)·n`` (unless ``images_per_step``
    is given); ``multigpu="trace"`` follows GPU 0's exact batch sequence (``scratch``: hankai's
    single-GPU burn-in phase of a run without a weights file). ``flush``: release-build
    flush-to-zero; ``resume_iteration``: darknet's iteration where training resumes.
    """
    if images_per_iteration < 1:
        raise ValueError(
            f"images per iteration must be >= 1, got {images_per_iteration}"
        )
    if ngpus < 1:
        raise ValueError(f"ngpus must be >= 1, got {ngpus}")
    if multigpu not in MULTIGPU_MODES:
        raise ValueError(f"multigpu must be one of {MULTIGPU_MODES}, got {multigpu!r}")
    trace = multigpu == "trace"
    if trace and images_per_step is not None:
        raise ValueError(
            "multigpu='trace' follows darknet's own iterations: no images_per_step"
        )
    if scratch and not trace:
        raise ValueError("scratch=True only applies to multigpu='trace'")
    if images_per_step is None:
        images_per_step = images_per_iteration * ngpus
    if images_per_step < 1:
        raise ValueError(f"images_per_step must be >= 1, got {images_per_step}")
    scaled = params._replace(lr=ngpus_lr(params.fork, params.lr, ngpus))
    if flush:
        scaled = flushed(scaled)
    t = Translation(
        params=scaled,
        cfg_lr=params.lr,
        images_per_iteration=images_per_iteration,
        images_per_step=images_per_step,
        exact=exact,
        ngpus=ngpus,
        trace=trace,
        scratch=scratch,
        flush=flush,
    )
    if resume_iteration:
        t = t._replace(start=resume_step(t, resume_iteration))
    return t


def translation_to_dict(t: Translation) -> dict[str, Any]:
    """``t`` as plain values (lists, not tuples) for checkpoints."""
    d = t._asdict()
    p = t.params._asdict()
    p["steps"] = list(p["steps"])
    p["scales"] = list(p["scales"])
    d["params"] = p
    return d


def translation_from_dict(d: dict[str, Any]) -> Translation:
    """Inverse of :func:`translation_to_dict`."""
    p = dict(d["params"])
    p["steps"] = tuple(int(s) for s in p["steps"])
    p["scales"] = tuple(float(s) for s in p["scales"])
    return Translation(**{**d, "params": Params(**p)})


def resume_step(t: Translation, iteration: int) -> int:
    """Optimizer steps already done when darknet resumes at ``iteration`` (images seen // T)."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    if t.trace:
        if iteration:
            raise ValueError(
                "multigpu='trace' covers runs from scratch only: no resume"
            )
        return 0
    return iteration * t.images_per_iteration // t.images_per_step


#: GPU 0's batch sequence per counter configuration, and whether it is darknet's whole run.
_TRACES: dict[MgpuConfig, tuple[array[int], bool]] = {}


def _trace_batch(t: Translation, step: int) -> int:
    """GPU 0's batch number at loop iteration ``step + 1``; past the end of darknet's run
    (the loop stops at max_batches) b keeps growing by ``ngpus`` per step."""
    p = t.params
    cfg = MgpuConfig(p.fork, t.ngpus, p.max_batches, p.burn_in, t.scratch)
    seq, complete = _TRACES.get(cfg, (array("q"), False))
    if step >= len(seq) and not complete:
        want = max(step + 1, 2 * len(seq), 4096)
        batches = mgpu_batches(cfg, want)[0]
        seq, complete = array("q", batches), len(batches) < want
        _TRACES[cfg] = (seq, complete)
    if step < len(seq):
        return seq[step]
    last = seq[-1] if seq else 0
    return last + (step + 1 - len(seq)) * t.ngpus
