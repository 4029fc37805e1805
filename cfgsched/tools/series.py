"""A translated run step by step: where each optimizer step falls and its LR.

The run's length, the step where a darknet batch is reached or landed on, and the LR
darknet computes at a batch under the translation's base rate (exported series:
:mod:`cfgsched.tools.export`; torch stepping: :mod:`cfgsched.tools.stepping`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import boundaries
from cfgsched.kernel.formulas import FORK_PJREDDIE, STEPS
from cfgsched.kernel.position import Translation
from cfgsched.oracle import params_lr, translation_batches, translation_lr
from cfgsched.schedule import NetSchedule
from cfgsched.translation import steps_for

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Largest darknet batch number the tools evaluate (int64).
MAX_BATCH = (1 << 63) - 1
#: Batches shown when ``max_batches`` is 0 and no boundary says how long training is.
DEFAULT_SPAN = 1000
#: GPU 0 loop iterations (``multigpu="trace"``) followed at most (about 0.3 µs each).
TRACE_LIMIT = 4_000_000

__all__ = [
    "DEFAULT_SPAN",
    "MAX_BATCH",
    "TRACE_LIMIT",
    "batch_lrs",
    "batches_of",
    "counted",
    "last_batch",
    "mapping_text",
    "run_steps",
    "step_landing",
    "step_lrs",
    "step_reaching",
    "trace_head",
    "trace_too_long",
]


# ----------------------------------------------------------------------------- LR series


def batch_lrs(t: Translation, b: I64) -> F32 | F64:
    """darknet's LR at the batches ``b`` under ``t``'s base rate and arithmetic (the value a
    step landing on b trains with; ``translation_lr`` gives the same at steps)."""
    b = np.asarray(b, dtype=np.int64)
    p = t.params
    if _plateaus(t, b.size):
        return _steps_by_plateau(t, b)
    return params_lr(p, b, exact=t.exact, flush=t.flush)


def _plateaus(t: Translation, size: int) -> bool:
    """Whether :func:`_steps_by_plateau` is the fast way for ``size`` values."""
    return t.exact and t.flush and t.params.policy == STEPS and size > 64


def _steps_by_plateau(t: Translation, b: I64) -> F32 | F64:
    """``params_lr`` for the steps policy with flushing, one evaluation per plateau.

    ``oracle.params_lr`` evaluates a flushing steps schedule batch by batch (an
    intermediate product may flush); past burn-in the rate only depends on which step
    values are ``<= b``, so every batch takes the value of the last cut (burn_in or a
    step value) at or below it. Batches inside burn-in are evaluated themselves.
    """
    p = t.params
    pj = p.fork == FORK_PJREDDIE
    if pj and p.burn_in < 0:  # unsigned: every batch is in burn-in
        return params_lr(p, b, exact=True, flush=True)
    n = min(len(p.steps), len(p.scales))
    eff = [s % (1 << 64) if pj else s for s in p.steps[:n]]
    first = max(p.burn_in, 0)
    cuts = {first, *(s for s in eff if first <= s <= MAX_BATCH)}
    table = np.asarray(sorted(cuts), dtype=np.int64)
    idx = np.searchsorted(table, b, side="right") - 1
    values = params_lr(p, table, exact=True, flush=True)
    out = values[np.maximum(idx, 0)]
    burn = np.flatnonzero(idx < 0)
    if burn.size:
        out[burn] = params_lr(p, b[burn], exact=True, flush=True)
    return out


def step_lrs(t: Translation, steps: I64) -> F32 | F64:
    """The LR of the 0-based optimizer ``steps`` under ``t``: ``oracle.translation_lr``
    (for a flushing steps schedule, the same values through :func:`batch_lrs`)."""
    steps = np.asarray(steps, dtype=np.int64)
    if _plateaus(t, steps.size):
        return batch_lrs(t, batches_of(t, steps))
    return translation_lr(t, steps)[1]


def mapping_text(t: Translation) -> str:
    """How step i maps to batch b under ``t``, in words (``b = (i + 1)*4 (...)``)."""
    if t.trace:
        return f"b = GPU 0's batch in loop iteration i + 1 of a -gpus {t.ngpus} run (trace)"
    ips, ipi = t.images_per_step, t.images_per_iteration
    if ips == ipi:
        return "b = i + 1"
    per = f"{counted(ips, 'image')} per step"
    if ips % ipi == 0:
        return f"b = (i + 1)*{ips // ipi} ({per})"
    return f"b = (i + 1)*{ips} // {ipi} ({per})"


# ----------------------------------------------------------------------------- run length


def last_batch(schedule: NetSchedule) -> tuple[int, str]:
    """The last darknet batch of the run: ``max_batches``, or a span with a note when it
    is 0 (twice the last boundary, at least :data:`DEFAULT_SPAN`)."""
    if schedule.max_batches > 0:
        return schedule.max_batches, ""
    marks, _ = boundaries(schedule, 1, 1 << 40, limit=8)
    span = max(DEFAULT_SPAN, 2 * max([m.batch for m in marks] + [0]))
    return span, f"max_batches is 0: shows the first {span:,} batches instead"


def trace_too_long(t: Translation) -> bool:
    """True when ``t`` follows GPU 0's trace over more than :data:`TRACE_LIMIT` iterations."""
    p = t.params
    return t.trace and p.max_batches // t.ngpus + max(p.burn_in, 0) > TRACE_LIMIT


def run_steps(t: Translation, schedule: NetSchedule) -> tuple[int, str]:
    """Optimizer steps of the whole run (steps ``0 .. n - 1``) and a note.

    ``multigpu="trace"``: darknet's loop iterations on GPU 0. Otherwise the steps that
    cover the last batch (:func:`cfgsched.translation.steps_for` of :func:`last_batch`).
    """
    last, note = last_batch(schedule)
    if t.trace and schedule.max_batches > 0:
        if trace_too_long(t):
            raise ValueError(
                f"--multigpu trace: more than {TRACE_LIMIT:,} loop iterations of GPU 0"
            )
        return int(_trace_cached(t).size), note
    return max(steps_for(t, last), 1), note


def _trace(t: Translation, count: int | None = None) -> list[int]:
    """GPU 0's batch sequence of ``t`` (the whole darknet run, or its first ``count``)."""
    from cfgsched.kernel.mgpu import MgpuConfig, mgpu_batches

    p = t.params
    cfg = MgpuConfig(p.fork, t.ngpus, p.max_batches, p.burn_in, t.scratch)
    limit = TRACE_LIMIT if count is None else min(count, TRACE_LIMIT)
    return mgpu_batches(cfg, limit)[0]


def trace_head(t: Translation, count: int) -> list[int]:
    """GPU 0's batch numbers over the first ``count`` loop iterations of ``t``'s
    ``-gpus`` run (the counter rules of :mod:`cfgsched.kernel.mgpu`)."""
    return _trace(t, count)


# ----------------------------------------------------------------------------- batch -> step


def step_reaching(t: Translation, batches: Sequence[int]) -> list[int | None]:
    """For each batch b, the first 0-based step whose batch is ``>= b`` (where a phase
    starting at b starts in the torch run). None only for a GPU 0 trace longer than
    :data:`TRACE_LIMIT` iterations."""
    if not t.trace:
        ipi, ips = t.images_per_iteration, t.images_per_step
        return [max(-(-b * ipi // ips) - 1, 0) for b in batches]
    return [_trace_index(t, b, exact=False) for b in batches]


def step_landing(t: Translation, batches: Sequence[int]) -> list[int | None]:
    """For each batch b, the first 0-based step whose batch is exactly b, or None when no
    step of the translated run is evaluated at b (e.g. b = 3 with ``--gpus 4``)."""
    if not t.trace:
        return [
            i if i is not None and t.batch(i) == b else None
            for b, i in zip(batches, step_reaching(t, batches), strict=True)
        ]
    return [_trace_index(t, b, exact=True) for b in batches]


def _trace_index(t: Translation, b: int, *, exact: bool) -> int | None:
    """First step of GPU 0's trace at batch ``b`` (``exact``) or at a batch ``>= b``."""
    if trace_too_long(t):
        return None
    seq = _trace_cached(t)
    hits = np.flatnonzero(seq == b) if exact else np.flatnonzero(seq >= b)
    if hits.size:
        return int(hits[0])
    # past darknet's run b grows by ngpus per step (cfgsched.kernel.position)
    last = int(seq[-1]) if seq.size else 0
    k = max(-(-(b - last) // t.ngpus), 1)
    if exact and last + k * t.ngpus != b:
        return None
    return seq.size + k - 1


#: The last GPU 0 run computed (one entry: runs can be millions of iterations long).
_TRACE_CACHE: dict[tuple[Any, ...], I64] = {}


def _trace_cached(t: Translation) -> I64:
    """GPU 0's batch sequence of ``t``'s whole darknet run, as int64."""
    p = t.params
    key = (p.fork, t.ngpus, p.max_batches, p.burn_in, t.scratch)
    if key not in _TRACE_CACHE:
        _TRACE_CACHE.clear()
        _TRACE_CACHE[key] = np.asarray(_trace(t), dtype=np.int64)
    return _TRACE_CACHE[key]


def batches_of(t: Translation, steps: I64) -> I64:
    """darknet's batch for each 0-based step (``oracle.translation_batches``)."""
    return translation_batches(t, np.asarray(steps, dtype=np.int64))


# ----------------------------------------------------------------------------- export

#: Rows an exported series holds at full resolution (one per optimizer step) at most;
#: a longer range is written as the figure's min/max envelope instead.


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images``, ``1,000 batches`` (``nouns``: an irregular plural)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"
