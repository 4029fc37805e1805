"""Compositions of torch's built-in schedulers, returned only when proven exact.

**Exact** means: for every parameter group and every optimizer step ``i`` of the run, the
group's lr rounded to float32 equals :class:`cfgsched.DarknetLR`'s value rounded to
float32 (darknet's float32 rate at ``b(i)`` for a group created with the cfg's
``learning_rate``). The run is every step whose darknet batch is ``1 <= b(i) <= horizon``
(default ``max_batches``: darknet's last update). Optimizers compute with the lr cast to
the parameters' float32, so an exact native scheduler trains exactly like darknet.
With ``exact=False`` the reference is darknet's formula evaluated in double and each value
must agree within :data:`REL_TOL` (relative).

Every candidate is checked before it is returned: :func:`native_plan` replays torch's own
arithmetic (the same Python float operations, in the same order, as each scheduler's
``get_lr``) at every step where either side can change, and raises
:class:`cfgsched.NotExactError` at the first darknet batch that differs. Where no native
form exists (sgdr, sigmoid, random, burn-in power other than 1 or 2, poly or exp with a
burn-in, multi-GPU traces) it raises at the first batch where darknet leaves what torch
can express.

Compositions used: ``ConstantLR`` (constant), ``LinearLR`` (burn-in, power 1; two chained
for power 2), ``MultiStepLR`` (steps and step: darknet step ``s`` is milestone ``s - 1``
because optimizer step ``i`` is darknet batch ``i + 1``; a milestone 0 applies at
construction, which folds steps <= 0 and the ``-gpus`` factor into the base LR),
``ExponentialLR`` (exp) and ``PolynomialLR`` (poly, up to ``max_batches``), chained with
``ChainedScheduler`` when there is more than one.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ChainedScheduler,
    ConstantLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    PolynomialLR,
)

from cfgsched.adapters.darknet_lr import options_of
from cfgsched.adapters.scheduler import record_step
from cfgsched.errors import NotExactError
from cfgsched.kernel.formulas import FORK_PJREDDIE, f32, f32_decimal, rate
from cfgsched.options import Options
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule, Policy

__all__ = ["REL_TOL", "NativePart", "NativePlan", "native_plan", "native_scheduler"]

#: Relative tolerance of ``exact=False`` (torch's running products drift ~1e-16 per step).
REL_TOL = 1e-9
#: Largest number of milestones a plan may hold (``step`` policy with a tiny ``step``).
MAX_MILESTONES = 100_000
#: Most torch schedulers in one chain (each ``step()`` steps them all): a steps policy
#: with more distinct scales or rate changes than this is refused (use DarknetLR).
MAX_PARTS = 64
#: Most steps verified one by one (exp and poly change at every step; ~1 µs per step).
MAX_DENSE_STEPS = 5_000_000

_CLASSES: dict[str, type[LRScheduler]] = {
    "ConstantLR": ConstantLR,
    "LinearLR": LinearLR,
    "MultiStepLR": MultiStepLR,
    "ExponentialLR": ExponentialLR,
    "PolynomialLR": PolynomialLR,
}


@dataclass(frozen=True)
class NativePart:
    """One torch scheduler of a plan: its class name and keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, optimizer: Optimizer) -> LRScheduler:
        """The torch scheduler, constructed fresh (``last_epoch=-1``) on ``optimizer``."""
        return _CLASSES[self.name](optimizer, **self.kwargs)

    def source(self) -> str:
        """Python source of the constructor call (``optimizer`` is the first argument)."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"torch.optim.lr_scheduler.{self.name}(optimizer{', ' if args else ''}{args})"


@dataclass(frozen=True)
class NativePlan:
    """A verified composition: ``parts`` chained in this order.

    ``steps`` optimizer steps (darknet batches ``b(0) .. horizon``) were proven exact
    for every initial group lr in ``checked_lrs``.
    """

    parts: tuple[NativePart, ...]
    horizon: int
    steps: int
    exact: bool
    checked_lrs: tuple[float, ...]

    def build(self, optimizer: Optimizer) -> LRScheduler:
        """The torch scheduler (a ``ChainedScheduler`` when there are several parts)."""
        return _chain([p.build(optimizer) for p in self.parts], optimizer)

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


def _chain(built: list[LRScheduler], optimizer: Optimizer) -> LRScheduler:
    if len(built) == 1:
        return built[0]
    return ChainedScheduler(built, optimizer=optimizer)


# ----------------------------------------------------------------------------- torch replay


def _events(parts: Sequence[NativePart], steps: int) -> Sequence[int]:
    """Epochs ``< steps`` at which some part may change the lr (sorted)."""
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
    kw = p.kwargs
    if p.name == "ConstantLR":
        factor: float = kw["factor"]
        if e == 0:
            return lr * factor
        if e != kw["total_iters"]:
            return lr
        return lr * (1.0 / factor)
    if p.name == "LinearLR":
        s: float = kw["start_factor"]
        end: float = kw["end_factor"]
        total: int = kw["total_iters"]
        if e == 0:
            return lr * s
        if e > total:
            return lr
        return lr * (1.0 + (end - s) / (total * s + (e - 1) * (end - s)))
    if p.name == "ExponentialLR":
        gamma: float = kw["gamma"]
        return lr if e == 0 else lr * gamma
    if p.name == "PolynomialLR":
        iters: int = kw["total_iters"]
        power: float = kw["power"]
        if e == 0 or e > iters:
            return lr
        decay: float = ((1.0 - e / iters) / (1.0 - (e - 1) / iters)) ** power
        return lr * decay
    raise ValueError(f"unknown part {p.name}")


def _walk(
    parts: Sequence[NativePart], lr0: float, epochs: Iterable[int]
) -> Iterator[tuple[int, float]]:
    """``(epoch, group lr after that epoch's step)`` from initial lr ``lr0``.

    ``epochs`` must be sorted and hold every epoch where a part changes the lr
    (:func:`_events`); other epochs may be added (a part leaves the lr alone there).
    """
    counts = [
        Counter(p.kwargs["milestones"]) if p.name == "MultiStepLR" else None
        for p in parts
    ]
    lr = lr0
    for e in epochs:
        for p, cnt in zip(parts, counts, strict=True):
            if cnt is not None:
                if e in cnt:  # MultiStepLR.get_lr
                    lr = lr * p.kwargs["gamma"] ** cnt[e]
            else:
                lr = _apply(p, lr, e)
        yield e, lr


# ----------------------------------------------------------------------------- plan building


class _Run:
    """The optimizer steps of the run and their darknet batches."""

    def __init__(self, t: Run, horizon: int) -> None:
        self.t = t
        self.horizon = horizon
        self.ipi = t.images_per_iteration
        self.ips = t.images_per_step
        self.steps = max(0, ((horizon + 1) * self.ipi - 1) // self.ips)

    def batch(self, i: int) -> int:
        return self.t.batch(i)

    def first(self, b: int) -> int:
        """The first optimizer step whose darknet batch is ``>= b``."""
        return self.t.first_step(b)

    def linear(self) -> int | None:
        """``c`` when ``b(i) = (i + 1)·c`` for every step, else None."""
        return self.ips // self.ipi if self.ips % self.ipi == 0 else None


_CONSTANT = NativePart("ConstantLR", {"factor": 1.0, "total_iters": 0})


def _fail(b: int, reason: str) -> NotExactError:
    return NotExactError(b, reason)


def _burn_parts(run: _Run, start32: bool = False) -> tuple[list[NativePart], int]:
    """Parts for the burn-in phase and the first step after it (``m0``).

    ``start32`` uses darknet's float32 ratio ``f32(b(0)/burn_in)`` as LinearLR's start.
    """
    p = run.t.params
    m0 = run.first(p.burn_in)
    if p.burn_in <= 0 or m0 == 0 or run.steps == 0:
        return [], 0
    b0 = run.batch(0)
    if b0 < 1:
        raise _fail(
            b0, "the first optimizer step is at darknet batch 0 (LR 0 in burn-in)"
        )
    if p.power not in (1.0, 2.0):
        b = _first_burn_difference(run, m0)
        raise _fail(
            b,
            f"burn-in with power={p.power:g}: darknet ramps lr·(b/burn_in)^{p.power:g}; "
            "torch's LinearLR is linear (power 1) and no built-in has another power",
        )
    start = f32(f32(float(b0)) / f32(float(p.burn_in))) if start32 else b0 / p.burn_in
    part = NativePart(
        "LinearLR", {"start_factor": start, "end_factor": 1.0, "total_iters": m0}
    )
    return [part] * int(p.power), m0


def _first_burn_difference(run: _Run, m0: int) -> int:
    """First batch of the burn-in where the power curve differs from a linear ramp."""
    p = run.t.params
    lin = p._replace(power=1.0)
    for i in range(min(m0, run.steps)):
        b = run.batch(i)
        if f32(rate(p, b)) != f32(rate(lin, b)):
            return b
    return run.batch(0)


def _steps_milestones(run: _Run, m0: int) -> list[tuple[int, float]]:
    """(epoch, scale) of every darknet step applied within the run, in cfg order."""
    p = run.t.params
    out: list[tuple[int, float]] = []
    high = -(2**63)
    for st, sc in zip(p.steps, p.scales, strict=False):
        if run.t.params.fork == FORK_PJREDDIE and st < 0:
            break  # unsigned comparison: a negative step is never reached, nor any after it
        high = max(high, st)
        e = max(run.first(high), m0)
        if e >= run.steps:
            break
        out.append((e, sc))
    return out


def _grouped(pairs: list[tuple[int, float]]) -> list[NativePart]:
    """One MultiStepLR per distinct gamma other than 1 (x·1.0 = x), in order of first use."""
    order: dict[float, list[int]] = {}
    for e, g in pairs:
        if g != 1.0:
            order.setdefault(g, []).append(e)
    return [
        NativePart("MultiStepLR", {"milestones": ms, "gamma": g})
        for g, ms in order.items()
    ]


def _ratio_chain(run: _Run, epochs: list[int], lr0: float) -> list[NativePart]:
    """One single-milestone MultiStepLR per change, gamma = ratio of darknet's values
    (an epoch where darknet's value stays the same needs none)."""
    parts: list[NativePart] = []
    prev = lr0
    for e in sorted(set(epochs)):
        cur = run.t.lr(e)
        if cur == prev and parts:
            continue
        gamma = cur / prev if prev != 0 and math.isfinite(prev) else 0.0
        parts.append(NativePart("MultiStepLR", {"milestones": [e], "gamma": gamma}))
        prev = cur
    return parts


def _steps_candidates(
    run: _Run, head: list[NativePart], m0: int
) -> list[list[NativePart]]:
    """MultiStepLRs per distinct scale (as float32, as decimals), then one per change;
    candidates longer than :data:`MAX_PARTS` are left out (none left: NotExactError)."""
    pairs = _steps_milestones(run, m0)
    if not pairs:
        return [head] if head else []
    decimal = {g: f32_decimal(g) for g in {g for _, g in pairs}}
    grouped = [_grouped(pairs), _grouped([(e, decimal[g]) for e, g in pairs])]
    cands = [head + g for g in grouped if len(head) + len(g) <= MAX_PARTS]
    epochs = sorted({e for e, _ in pairs})
    chain = _ratio_chain(run, epochs, run.t.params.lr)
    if len(head) + len(chain) <= MAX_PARTS:
        cands.append(head + chain)
    if not cands:
        raise _fail(
            run.batch(epochs[0]),
            f"steps: {len(chain)} rate changes with {len(grouped[0])} distinct scales "
            f"need more than {MAX_PARTS} chained torch schedulers (use DarknetLR)",
        )
    return cands


def _candidates(run: _Run, start32: bool = False) -> list[list[NativePart]]:
    """Candidate compositions in order of preference (raises when none can exist)."""
    t = run.t
    p = t.params
    pol = Policy(p.policy)
    constant = [_CONSTANT]
    if run.steps == 0:
        return [constant]
    first_b = run.batch(0)
    head: list[NativePart] = []
    if p.lr != t.cfg_lr:
        head = [
            NativePart("MultiStepLR", {"milestones": [0], "gamma": p.lr / t.cfg_lr})
        ]
    burn, m0 = _burn_parts(run, start32)
    after_burn = 0 < m0 < run.steps
    if m0 >= run.steps:  # the run ends inside the burn-in: only the ramp matters
        return [head + burn]
    main_b = run.batch(m0)  # first batch of the main phase
    if pol == Policy.RANDOM:
        raise _fail(
            main_b,
            "random: darknet draws a new LR every batch; no torch scheduler does",
        )
    if pol == Policy.SGDR:
        raise _fail(
            _first_sgdr_difference(run, m0),
            "sgdr: no torch scheduler matches; CosineAnnealingWarmRestarts (epoch = batch) "
            "restarts where darknet ends the cycle at exactly learning_rate_min, and darknet "
            "rounds to float32 (alexeyab's pi is 3.14159265)",
        )
    if pol == Policy.SIG:
        raise _fail(
            _first_change(run, m0),
            "sigmoid: no torch built-in computes darknet's logistic decay",
        )
    if pol == Policy.CONSTANT or (pol == Policy.EXP and p.gamma == 1.0):
        return [head + burn or constant]
    if pol == Policy.STEPS:
        return _steps_candidates(run, head + burn, m0) or [constant]
    if pol == Policy.STEP:
        if p.step <= 0:
            raise _fail(
                main_b, f"step={p.step}: darknet divides by a non-positive step"
            )
        epochs: list[int] = []
        k = 1
        while k * p.step <= run.horizon:
            e = max(run.first(k * p.step), m0)
            if e >= run.steps:
                break
            epochs.append(e)
            if len(epochs) > MAX_MILESTONES:
                raise _fail(
                    k * p.step,
                    f"more than {MAX_MILESTONES} step drops in the run: "
                    "too many MultiStepLR milestones (use DarknetLR)",
                )
            k += 1
        return [head + burn + _grouped([(e, p.scale) for e in epochs]) or constant]
    c = run.linear()
    if pol == Policy.EXP:
        if after_burn:
            raise _fail(
                p.burn_in,
                "exp with burn-in: torch's SequentialLR restarts ExponentialLR at its base LR "
                "after the warm-up; darknet continues with lr·gamma^b",
            )
        if c is None:
            raise _fail(
                run.batch(1), "exp: darknet batches are not evenly spaced steps"
            )
        g = p.gamma**c
        return [
            [
                *head,
                NativePart("MultiStepLR", {"milestones": [0], "gamma": g}),
                NativePart("ExponentialLR", {"gamma": g}),
            ]
        ]
    if pol == Policy.POLY:
        if p.max_batches <= 0:
            raise _fail(first_b, "poly with max_batches=0: darknet's LR is NaN or inf")
        if after_burn:
            raise _fail(
                p.burn_in,
                "poly with burn-in: torch's SequentialLR restarts PolynomialLR at its base LR "
                "after the warm-up; darknet continues with lr·(1 - b/max_batches)^power",
            )
        if c is None or p.max_batches % c:
            raise _fail(
                run.batch(1), "poly: max_batches is not a whole number of steps"
            )
        total = p.max_batches // c - 1
        if total < 1:
            raise _fail(first_b, "poly: max_batches ends within the first step")
        k = (1.0 - c / p.max_batches) ** p.power
        return [
            [
                *head,
                NativePart("MultiStepLR", {"milestones": [0], "gamma": k}),
                NativePart("PolynomialLR", {"total_iters": total, "power": p.power}),
            ]
        ]
    raise _fail(first_b, f"policy {pol.cfg_name}: no native torch form")


def _first_sgdr_difference(run: _Run, m0: int) -> int:
    """First batch where sgdr differs from CosineAnnealingWarmRestarts with epoch = batch."""
    p = run.t.params
    for i in range(m0, run.steps):
        b = run.batch(i)
        if p.sgdr_cycle <= 0:
            return b
        t_i, t_cur = p.sgdr_cycle, b
        while t_cur >= t_i:  # CosineAnnealingWarmRestarts.step(epoch)
            t_cur -= t_i
            t_i *= max(p.sgdr_mult, 1)
        cawr = p.lr_min + (p.lr - p.lr_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
        if not _same(cawr, run.t.lr(i), run.t.exact):
            return b
    return run.batch(m0)


def _first_change(run: _Run, m0: int) -> int:
    """First batch after the burn-in where darknet's LR differs from the previous step's."""
    prev = None
    for i in range(m0, run.steps):
        v = run.t.lr(i)
        if prev is not None and f32(v) != f32(prev):
            return run.batch(i)
        prev = v
    return run.batch(min(m0, run.steps - 1))


def _dense(parts: Sequence[NativePart], run: _Run) -> bool:
    """True when torch or darknet may change at every step after the burn-in."""
    pol = Policy(run.t.params.policy)
    if any(p.name in ("ExponentialLR", "PolynomialLR") for p in parts):
        return True
    return pol not in (Policy.CONSTANT, Policy.STEP, Policy.STEPS) and not (
        pol == Policy.EXP and run.t.params.gamma == 1.0
    )


def _points(parts: Sequence[NativePart], run: _Run) -> Sequence[int]:
    """Steps where torch or darknet may change: comparing there covers the whole run."""
    p = run.t.params
    if _dense(parts, run):
        if run.steps > MAX_DENSE_STEPS:
            raise NotExactError(
                None,
                f"{run.steps} steps to verify one by one (limit {MAX_DENSE_STEPS}): "
                "use DarknetLR or a smaller horizon",
            )
        return range(run.steps)
    ep: set[int] = set(_events(parts, run.steps))
    ep.update(range(min(run.first(p.burn_in) + 1, run.steps)))
    pol = Policy(p.policy)
    if pol == Policy.STEPS:
        ep.update(run.first(st) for st in p.steps)
    elif pol == Policy.STEP and p.step > 0:
        k = 1
        while k * p.step <= run.horizon:
            ep.add(run.first(k * p.step))
            k += 1
    return sorted(e for e in ep if 0 <= e < run.steps)


def _same(torch_lr: float, target: float, exact: bool) -> bool:
    if math.isnan(target) or math.isnan(torch_lr):
        return math.isnan(target) and math.isnan(torch_lr)
    if exact:
        return f32(torch_lr) == f32(target)
    return abs(torch_lr - target) <= REL_TOL * abs(target)


def _verify(
    parts: Sequence[NativePart], run: _Run, lrs: Sequence[float], exact: bool
) -> None:
    """Raise NotExactError at the first step of the run where ``parts`` differ."""
    points = _points(parts, run)
    for lr0 in lrs:
        m = run.t.multiplier(lr0)
        for e, have in _walk(parts, lr0, points):
            r = run.t.lr(e)
            want = r if m == 1.0 else r * m
            if not _same(have, want, exact):
                b = run.batch(e)
                raise NotExactError(b, _why(parts, run, b, have, want, exact))


def _why(
    parts: Sequence[NativePart],
    run: _Run,
    b: int,
    have: float,
    want: float,
    exact: bool,
) -> str:
    p = run.t.params
    names = " + ".join(dict.fromkeys(x.name for x in parts))
    pol = Policy(p.policy)
    got = f"{names} gives {have!r}, darknet {want!r}"
    if pol == Policy.POLY and b > p.max_batches:
        return f"{got}: PolynomialLR stays at 0 after max_batches; darknet's poly continues"
    kind = "float32" if exact else f"relative {REL_TOL:g}"
    if p.burn_in > b:
        c = run.linear()
        if c is None or p.burn_in % c:
            return f"{got} in the burn-in: burn_in is not a whole number of optimizer steps"
        return f"{got} in the burn-in ({kind}): LinearLR's ramp rounds differently"
    return f"{got} ({kind}): torch's running product rounds differently from darknet"


def _trace_refusal(schedule: NetSchedule, options: Options) -> NotExactError:
    """GPU 0's batch sequence goes backwards (counter reset at syncs): no native form."""
    reason = (
        "multigpu='trace': GPU 0's darknet batch counter is not monotonic; "
        "torch schedulers only move forward"
    )
    t = translate(schedule, options)
    prev = 0
    try:
        for i in range(min(100_000, max(schedule.max_batches, 1))):
            b = t.batch(i)
            if b < prev:
                return NotExactError(b, f"{reason} (... {prev}, {b})")
            prev = b
    except (ImportError, IndexError, ValueError):
        pass
    return NotExactError(None, reason)


def native_plan(
    schedule: NetSchedule,
    options: Options | None = None,
    *,
    horizon: int | None = None,
    group_lrs: Sequence[float] | None = None,
    **option_kwargs: Any,
) -> NativePlan:
    """The verified native composition for ``schedule`` under ``options`` (or the same
    names as keywords: ``exact``, ``ngpus``, ``multigpu``, ``images_per_step``, ...).

    ``horizon`` is the last darknet batch that must match (default ``max_batches``);
    ``group_lrs`` are the initial lrs of the parameter groups to prove (default: the
    cfg's ``learning_rate``). Raises :class:`cfgsched.NotExactError` otherwise.
    """
    opts = options_of(options, option_kwargs)
    if opts.multigpu == "trace":
        if opts.ngpus > 1:
            raise _trace_refusal(schedule, opts)
        opts = dataclasses.replace(opts, multigpu="images", scratch=False)
    t = translate(schedule, opts)
    if horizon is None:
        if schedule.max_batches < 1:
            raise NotExactError(
                None,
                "max_batches is 0: darknet trains no batch; pass horizon= to set the run",
            )
        horizon = schedule.max_batches
    return _prove(t, _Run(t, horizon), tuple(group_lrs) if group_lrs else (t.cfg_lr,))


def _prove(t: Run, run: _Run, lrs: tuple[float, ...]) -> NativePlan:
    """The first candidate composition that :func:`_verify` proves for every group lr."""
    cands = _candidates(run)
    if 0 < run.first(t.params.burn_in) and t.params.burn_in > 0:
        cands += _candidates(run, start32=True)
    fix = (
        t.cfg_lr / f32_decimal(t.cfg_lr)
        if t.cfg_lr and math.isfinite(t.cfg_lr)
        else 1.0
    )
    if fix != 1.0 and any(t.multiplier(x) != 1.0 for x in lrs):
        # groups made from the cfg value as written (0.0013·m): start them at f32(lr)·m
        head = NativePart("MultiStepLR", {"milestones": [0], "gamma": fix})
        cands += [[head, *c] for c in cands]
    err: NotExactError | None = None
    for parts in cands:
        parts = parts or [_CONSTANT]  # steps that change nothing (scales=1)
        try:
            _verify(parts, run, lrs, t.exact)
        except NotExactError as e:
            err = err or e
            continue
        return NativePlan(tuple(parts), run.horizon, run.steps, t.exact, lrs)
    assert err is not None
    raise err


def native_scheduler(
    optimizer: Optimizer,
    schedule: NetSchedule | Run,
    options: Options | None = None,
    *,
    last_epoch: int = -1,
    horizon: int | None = None,
    **option_kwargs: Any,
) -> LRScheduler:
    """torch built-in schedulers equal to darknet over the run, or :class:`NotExactError`.

    Same options and step convention as :class:`cfgsched.DarknetLR`: after construction
    the optimizer holds the LR of the first ``optimizer.step()`` (darknet b = 1);
    ``last_epoch=k`` resumes with k + 1 steps done (default: the options'
    ``resume_iteration``, if any). "Equal" is defined in the module docstring;
    ``horizon`` (default ``max_batches``) is the last darknet batch proven.
    """
    if isinstance(schedule, Run):  # a translated run (diff): the same translation
        options, schedule = schedule.options, schedule.given
    opts = options_of(options, option_kwargs)
    groups = optimizer.param_groups
    for g in groups:
        if "initial_lr" in g:
            g["lr"] = g["initial_lr"]
    lrs = tuple(dict.fromkeys(float(g["lr"]) for g in groups))
    plan = native_plan(schedule, opts, horizon=horizon, group_lrs=lrs)
    parts = [p.build(optimizer) for p in plan.parts]
    sched = _chain(parts, optimizer)
    if last_epoch == -1 and opts.resume_iteration:
        last_epoch = translate(schedule, opts).start - 1
    if last_epoch >= 0:
        _fast_forward(sched, parts, plan, last_epoch + 1)
    return sched


def _last(walk: Iterator[tuple[int, float]], default: float) -> float:
    """The lr after the last epoch of ``walk`` (``default`` when it is empty)."""
    lr = default
    for _, value in walk:
        lr = value
    return lr


def _fast_forward(
    sched: LRScheduler, parts: list[LRScheduler], plan: NativePlan, epoch: int
) -> None:
    """Put ``sched`` (chaining ``parts``) in the state ``epoch`` ``step()`` calls from
    fresh would leave."""
    events = _events(plan.parts, epoch)
    per_part: list[list[float]] = [[] for _ in parts]
    for g in sched.optimizer.param_groups:
        lr = _last(
            _walk(plan.parts, float(g["initial_lr"]), events), float(g["initial_lr"])
        )
        for k, part in enumerate(plan.parts):
            lr = _last(_walk([part], lr, [epoch]), lr)
            per_part[k].append(lr)
        g["lr"] = lr
    for sub, last in zip(parts, per_part, strict=True):
        sub.last_epoch = epoch
        record_step(sub, last, epoch + 1)
    if sched not in parts:
        lrs = [g["lr"] for g in sched.optimizer.param_groups]
        record_step(sched, lrs)
