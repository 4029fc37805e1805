"""Compositions of torch's built-in schedulers, returned only when proven exact.

**Exact**: for every parameter group and optimizer step ``i`` with darknet batch
``1 <= b(i) <= horizon`` (default ``max_batches``), the group's lr rounded to float32 equals
:class:`cfgsched.DarknetLR`'s (``exact=False``: within :data:`REL_TOL`, relative).
:func:`native_plan` replays each scheduler's ``get_lr`` arithmetic at every step where either
side can change, on the compositions each policy proposes (``native``), and raises
:class:`cfgsched.NotExactError` at the first darknet batch that differs."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ChainedScheduler, LRScheduler

from cfgsched.adapters.darknet_lr import options_of
from cfgsched.boundaries import boundaries
from cfgsched.errors import NotExactError
from cfgsched.kernel.formulas import f32_decimal
from cfgsched.options import Options
from cfgsched.policies import burn_in, module
from cfgsched.policies.base import (
    MAX_DENSE_STEPS,
    REL_TOL,
    NativePart,
    NativeRun,
    close,
    step_part,
)
from cfgsched.policies.steps import MAX_PARTS
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule, Policy

__all__ = ["MAX_PARTS", "REL_TOL", "NativePlan", "native_plan", "native_scheduler"]

_CONSTANT = NativePart("ConstantLR", {"factor": 1.0, "total_iters": 0})


@dataclass(frozen=True)
class NativePlan:
    """``parts`` (chained in order) proven over ``steps`` optimizer steps (darknet batches
    ``b(0) .. horizon``) for every group's initial lr."""

    parts: tuple[NativePart, ...]
    horizon: int
    steps: int

    def source(self) -> str:
        """Python source building the scheduler from a name ``optimizer``."""
        calls = [p.source() for p in self.parts]
        if len(calls) == 1:
            return calls[0]
        inner = ",\n        ".join(calls)
        return (
            "torch.optim.lr_scheduler.ChainedScheduler(\n"
            f"    [\n        {inner},\n    ],\n    optimizer=optimizer,\n)"
        )


def _events(parts: Sequence[NativePart], steps: int) -> Sequence[int]:
    """Epochs ``< steps`` at which some part may change the lr (sorted; a range when a part
    changes it at every step)."""
    if any(p.name in ("ExponentialLR", "PolynomialLR") for p in parts):
        return range(steps)
    ev: set[int] = {0} if steps > 0 else set()
    for p in parts:
        if p.name == "MultiStepLR":
            ev.update(m for m in p.kwargs["milestones"] if 0 <= m < steps)
        elif p.name == "LinearLR":
            ev.update(range(min(int(p.kwargs["total_iters"]) + 1, steps)))
    return sorted(ev)


def _apply(p: NativePart, lr: float, e: int) -> float:
    """``lr`` after part ``p``'s ``get_lr`` at epoch ``e`` (torch's exact float operations)."""
    kw: dict[str, float] = p.kwargs
    name = p.name
    if e == 0:  # ConstantLR and LinearLR start at their factor, the others at lr
        return lr * kw.get("factor", kw.get("start_factor", 1.0))
    if name == "ConstantLR":
        return lr * (1.0 / kw["factor"]) if e == kw["total_iters"] else lr
    if name == "LinearLR" and e <= kw["total_iters"]:
        s, end, total = kw["start_factor"], kw["end_factor"], kw["total_iters"]
        return lr * (1.0 + (end - s) / (total * s + (e - 1) * (end - s)))
    if name == "ExponentialLR":
        return lr * kw["gamma"]
    if name == "PolynomialLR" and e <= (n := kw["total_iters"]):
        decay: float = ((1.0 - e / n) / (1.0 - (e - 1) / n)) ** kw["power"]
        return lr * decay
    return lr


def _walk(
    parts: Sequence[NativePart], lr0: float, epochs: Iterable[int]
) -> Iterator[tuple[int, float]]:
    """``(epoch, group lr after that epoch's step)`` from initial lr ``lr0``; ``epochs``
    sorted and holding every epoch where a part changes the lr (:func:`_events`)."""
    counts = [
        Counter(p.kwargs["milestones"]) if p.name == "MultiStepLR" else None
        for p in parts
    ]
    lr = lr0
    for e in epochs:
        for p, cnt in zip(parts, counts, strict=True):
            if cnt is None:
                lr = _apply(p, lr, e)
            elif e in cnt:  # MultiStepLR.get_lr
                lr = lr * p.kwargs["gamma"] ** cnt[e]
        yield e, lr


def _candidates(t: Run, run: NativeRun) -> list[list[NativePart]]:
    """Candidate compositions in order of preference (raises when none can exist): the
    burn-in's LinearLRs from the ratio in double, then from darknet's float32 ratio."""
    p = t.params
    if run.steps == 0:
        return [[_CONSTANT]]
    head = [step_part([0], p.lr / t.cfg_lr)] if p.lr != t.cfg_lr else []
    m0, out = run.first(p.burn_in), list[list[NativePart]]()
    for start32 in (False, True) if m0 > 0 and p.burn_in > 0 else (False,):
        burn = burn_in.native(dataclasses.replace(run, m0=m0), start32)
        policy_run = dataclasses.replace(run, m0=m0 if burn else 0)
        if policy_run.m0 >= run.steps:  # the run ends inside the burn-in: the ramp only
            out.append(head + burn)
        else:
            out += module(p.policy).native(policy_run, head + burn)
    return out


def _verify(
    t: Run, parts: Sequence[NativePart], run: NativeRun, lrs: Sequence[float]
) -> None:
    """Raise NotExactError at the first step of the run where ``parts`` differ, compared
    where torch or darknet may change (which covers the whole run)."""
    points = _events(parts, run.steps)
    if isinstance(points, range) and run.steps > MAX_DENSE_STEPS:
        raise NotExactError(
            None,
            f"{run.steps} steps to verify one by one (limit {MAX_DENSE_STEPS}): "
            "use DarknetLR or a smaller horizon",
        )
    if not isinstance(points, range):
        ep = {*points, *range(min(run.first(run.params.burn_in) + 1, run.steps))}
        marks = boundaries(t.schedule, 1, run.horizon, 1 << 62)[0]
        ep.update(run.first(x.batch) for x in marks)
        points = sorted(e for e in ep if 0 <= e < run.steps)
    for lr0 in lrs:
        m = t.multiplier(lr0)
        for e, have in _walk(parts, lr0, points):
            r = t.lr(e)
            want = r if m == 1.0 else r * m
            if not close(have, want, t.exact):
                b = t.batch(e)
                raise NotExactError(b, _why(parts, run, b, have, want))


def _why(
    parts: Sequence[NativePart], run: NativeRun, b: int, have: float, want: float
) -> str:
    """Why ``parts`` give ``have`` where darknet gives ``want`` at batch ``b``."""
    p, names = run.params, " + ".join(dict.fromkeys(x.name for x in parts))
    got = f"{names} gives {have!r}, darknet {want!r}"
    kind = "float32" if run.exact else f"relative {REL_TOL:g}"
    if p.policy == Policy.POLY and b > p.max_batches:
        return f"{got}: PolynomialLR stays at 0 after max_batches; darknet's poly continues"
    if p.burn_in > b and (run.per_step is None or p.burn_in % run.per_step):
        return f"{got} in the burn-in: burn_in is not a whole number of optimizer steps"
    if p.burn_in > b:
        return f"{got} in the burn-in ({kind}): LinearLR's ramp rounds differently"
    return f"{got} ({kind}): torch's running product rounds differently from darknet"


def _trace_refusal(t: Run) -> NotExactError:
    """GPU 0's batch sequence goes backwards (counter reset at syncs): no native form."""
    reason = (
        "multigpu='trace': GPU 0's darknet batch counter is not monotonic; "
        "torch schedulers only move forward"
    )
    seq = t.gpu0_batches(min(100_000, max(t.schedule.max_batches, 1)))
    for prev, b in itertools.pairwise(seq):
        if b < prev:
            return NotExactError(b, f"{reason} (... {prev}, {b})")
    return NotExactError(None, reason)


def native_plan(
    source: NetSchedule | Run,
    options: Options | None = None,
    *,
    horizon: int | None = None,
    group_lrs: Sequence[float] | None = None,
    **option_kwargs: Any,
) -> NativePlan:
    """The verified native composition for ``source``'s run (a Run, or a schedule under
    ``options`` or their keywords), else :class:`NotExactError`; ``horizon``: the last
    darknet batch proven (default ``max_batches``); ``group_lrs``: the groups' initial lrs
    (default: the cfg's rate)."""
    t = _run_of(source, options, option_kwargs)
    if t.trace and t.ngpus > 1:
        raise _trace_refusal(t)
    if horizon is None:
        if t.schedule.max_batches < 1:
            raise NotExactError(
                None,
                "max_batches is 0: darknet trains no batch; pass horizon= to set the run",
            )
        horizon = t.schedule.max_batches
    lrs = tuple(group_lrs) if group_lrs else (t.cfg_lr,)
    ipi, ips = t.images_per_iteration, t.images_per_step
    per_step = ips // ipi if ips % ipi == 0 else None
    steps = t.first_step(horizon + 1)  # the steps at a batch <= horizon
    run = NativeRun(
        t.params, t.exact, horizon, steps, 0, per_step, t.batch, t.first_step, t.lr
    )
    cands = _candidates(t, run)
    finite = t.cfg_lr and math.isfinite(t.cfg_lr)
    fix = t.cfg_lr / f32_decimal(t.cfg_lr) if finite else 1.0
    if fix != 1.0 and any(t.multiplier(x) != 1.0 for x in lrs):
        # groups made from the cfg value as written (0.0013·m): start them at f32(lr)·m
        cands += [[step_part([0], fix), *c] for c in cands]
    err: NotExactError | None = None
    for parts in cands:
        parts = parts or [_CONSTANT]  # steps that change nothing (scales=1)
        try:
            _verify(t, parts, run, lrs)
        except NotExactError as e:
            err = err or e
            continue
        return NativePlan(tuple(parts), run.horizon, run.steps)
    raise err or NotExactError(None, "no candidate")


def native_scheduler(
    optimizer: Optimizer,
    source: NetSchedule | Run,
    options: Options | None = None,
    *,
    last_epoch: int = -1,
    horizon: int | None = None,
    **option_kwargs: Any,
) -> LRScheduler:
    """torch built-in schedulers equal to darknet (see the module docstring) up to darknet
    batch ``horizon`` (default ``max_batches``), or :class:`NotExactError`; ``source``,
    options and step convention as :func:`native_plan` and :class:`cfgsched.DarknetLR`:
    ``last_epoch=k`` resumes with k + 1 steps done (default: the options'
    ``resume_iteration``, if any)."""
    t = _run_of(source, options, option_kwargs)
    for g in optimizer.param_groups:
        if "initial_lr" in g:
            g["lr"] = g["initial_lr"]
    lrs = tuple(dict.fromkeys(float(g["lr"]) for g in optimizer.param_groups))
    plan = native_plan(t, horizon=horizon, group_lrs=lrs)
    parts = [p.build(optimizer) for p in plan.parts]
    sched = ChainedScheduler(parts, optimizer=optimizer) if len(parts) > 1 else parts[0]
    at = t.start - 1 if last_epoch == -1 else last_epoch  # -1: the run's start
    if at >= 0:
        _fast_forward(sched, parts, plan, at + 1)
    return sched


def _run_of(
    source: NetSchedule | Run, options: Options | None, option_kwargs: dict[str, Any]
) -> Run:
    """A Run as given, a schedule translated under the options."""
    if isinstance(source, Run):
        return source
    return translate(source, options_of(options, option_kwargs))


def _fast_forward(
    sched: LRScheduler, parts: list[LRScheduler], plan: NativePlan, epoch: int
) -> None:
    """Put ``sched`` (chaining ``parts``) in the state ``epoch`` ``step()`` calls from
    fresh would leave (through ``load_state_dict``: torch has no other public way)."""
    events = _events(plan.parts, epoch)
    per_part: list[list[float]] = [[] for _ in parts]
    for g in sched.optimizer.param_groups:
        [(_, lr)] = deque(_walk(plan.parts, float(g["initial_lr"]), events), maxlen=1)
        for k, part in enumerate(plan.parts):
            _, lr = next(_walk([part], lr, [epoch]))
            per_part[k].append(lr)
        g["lr"] = lr
    for sub, last in zip(parts, per_part, strict=True):
        state = dict(last_epoch=epoch, _step_count=epoch + 1, _last_lr=last)
        sub.load_state_dict(sub.state_dict() | state)
    if sched not in parts:
        lrs = [g["lr"] for g in sched.optimizer.param_groups]
        sched.load_state_dict(sched.state_dict() | {"_last_lr": lrs})
