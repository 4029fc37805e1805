"""A translated run step by step: where each optimizer step falls, its LR, torch stepping.

The one place the tools (explain, plot, and diff after the merge) turn a
:class:`~cfgsched.translation.Translation` into series: the run's length, the step where a
darknet batch is reached or landed on, the LR darknet computes at a batch under the
translation's base rate, a real torch scheduler stepped on a one-parameter SGD and the
error between two series (the exported series: :mod:`cfgsched.tools.export`). Numpy
only; torch is imported when a scheduler is stepped.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
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
#: Steps per chunk when a torch scheduler is stepped.
CHUNK = 1 << 16
#: Up to this many steps a torch scheduler is stepped at every step, else at a sample.
EXHAUSTIVE_LIMIT = 2_000_000
#: The sample: the first steps, evenly spaced windows, and steps around each boundary.
SAMPLE_PREFIX = 10_000
SAMPLE_WINDOWS = 256
SAMPLE_WINDOW = 512
SAMPLE_HALO = 64

#: ``factory(optimizer, last_epoch)`` builds the torch scheduler under test.
Factory = Callable[[Any, int], Any]

__all__ = [
    "CHUNK",
    "DEFAULT_SPAN",
    "EXHAUSTIVE_LIMIT",
    "MAX_BATCH",
    "TRACE_LIMIT",
    "Factory",
    "batch_lrs",
    "batches_of",
    "counted",
    "errors",
    "last_batch",
    "mapping_text",
    "new_optimizer",
    "run_steps",
    "sample_windows",
    "scheduler_factory",
    "step_landing",
    "step_lrs",
    "step_reaching",
    "torch_lrs",
    "trace_head",
    "trace_too_long",
    "ulp_distance",
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


# ----------------------------------------------------------------------------- torch stepping


def new_optimizer(lr: float, last_epoch: int = -1) -> Any:
    """A one-parameter SGD whose group LR is ``lr`` (``initial_lr`` set when resuming).

    The LR is set after construction: torch refuses a negative ``lr`` in the constructor,
    darknet trains with whatever the cfg says.
    """
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    for g in opt.param_groups:
        g["lr"] = lr
        if last_epoch >= 0:
            g.setdefault("initial_lr", lr)
    return opt


def scheduler_factory(t: Translation) -> Factory:
    """Builds :class:`cfgsched.translate.scheduler.DarknetScheduler` (what ``DarknetLR``
    runs) for ``t``."""
    from cfgsched.translate.scheduler import DarknetScheduler

    def make(optimizer: Any, last_epoch: int) -> Any:
        return DarknetScheduler(optimizer, t, last_epoch=last_epoch)

    return make


def torch_lrs(factory: Factory, lr: float, start: int, count: int) -> Iterator[F64]:
    """Build at step ``start`` (``last_epoch = start - 1``) on :func:`new_optimizer` (``lr``)
    and yield the LR of the next ``count`` optimizer steps, in chunks of :data:`CHUNK`.

    Per step: read ``param_groups[0]["lr"]``, then ``scheduler.step()``. One no-op
    ``optimizer.step()`` precedes the first scheduler step, as in training.
    """
    opt = new_optimizer(lr, start - 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step\(\)` before")
        sched = factory(opt, start - 1)
        opt.step()
        group = opt.param_groups[0]
        step = sched.step
        done = 0
        while done < count:
            m = min(CHUNK, count - done)
            buf = [0.0] * m
            for j in range(m):
                buf[j] = group["lr"]
                step()
            done += m
            yield np.asarray(buf, dtype=np.float64)


def sample_windows(n: int, around: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted, merged ``[start, stop)`` windows of ``0 .. n - 1``: the first
    :data:`SAMPLE_PREFIX` steps, the last window, :data:`SAMPLE_WINDOWS` evenly spaced
    windows of :data:`SAMPLE_WINDOW` steps, and ±:data:`SAMPLE_HALO` around each of
    ``around``."""
    raw = [(0, min(SAMPLE_PREFIX, n)), (max(0, n - SAMPLE_WINDOW), n)]
    spaced = np.linspace(0, max(n - SAMPLE_WINDOW, 0), SAMPLE_WINDOWS).astype(np.int64)
    raw += [(s, min(s + SAMPLE_WINDOW, n)) for s in spaced.tolist()]
    raw += [(max(0, i - SAMPLE_HALO), min(n, i + SAMPLE_HALO + 1)) for i in around]
    merged: list[tuple[int, int]] = []
    for s, t in sorted(raw):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], t))
        elif t > s:
            merged.append((s, t))
    return merged


# ----------------------------------------------------------------------------- errors


def _ordered(x: F32) -> I64:
    """float32 values as integers in the same order (adjacent floats differ by 1)."""
    i = x.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def ulp_distance(expected: F32, got: F32) -> F64:
    """Number of float32 values between ``expected`` and ``got`` (NaN = NaN; else inf)."""
    e = np.ascontiguousarray(expected, dtype=np.float32)
    g = np.ascontiguousarray(got, dtype=np.float32)
    d = np.abs(_ordered(e) - _ordered(g)).astype(np.float64)
    en, gn = np.isnan(e), np.isnan(g)
    d = np.where(en | gn, np.where(en & gn, 0.0, np.inf), d)
    return np.where(np.isinf(e) | np.isinf(g), np.where(e == g, 0.0, np.inf), d)


def errors(expected: F64, got: F64) -> tuple[F64, F64, F64]:
    """Absolute and relative error of ``got`` (NaN = NaN) and its float32 ulp distance
    (``got`` rounded to float32 first, as an optimizer on float32 parameters applies it)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        same = (expected == got) | (np.isnan(expected) & np.isnan(got))
        ab = np.abs(got - expected)
        ab = np.where(same, 0.0, np.where(np.isnan(ab), np.inf, ab))
        rel = np.where(ab == 0, 0.0, ab / np.abs(expected))
        rel = np.where(np.isnan(rel), np.inf, rel)
        ulp = ulp_distance(expected.astype(np.float32), got.astype(np.float32))
    return ab, rel, ulp


# ----------------------------------------------------------------------------- text


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images``, ``1,000 batches`` (``nouns``: an irregular plural)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"
