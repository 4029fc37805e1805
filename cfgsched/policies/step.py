"""``policy=step``: ``lr * scale^(b / step)`` with C's integer division."""

from __future__ import annotations

import math
from dataclasses import replace

from cfgsched.kernel.formulas import (
    FORK_PJREDDIE,
    U64,
    Params,
    cpow,
    ctrunc_div,
    f32,
    f32_text,
    rounding,
)
from cfgsched.policies import base
from cfgsched.schedule import NetSchedule

#: Largest number of milestones a native plan may hold (a tiny ``step``).
MAX_MILESTONES = 100_000


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``f32(lr * pow(scale, b / step))`` (pjreddie divides as unsigned)."""
    k = b // (p.step % U64) if p.fork == FORK_PJREDDIE else ctrunc_div(b, p.step)
    return rounding(exact, flush)(p.lr * cpow(p.scale, float(k)))


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    """:func:`rate` over ``b``: ``lr * scale^k`` over the exponents ``k = b / step``."""
    import numpy as np

    from cfgsched.kernel.vector import I64, lr_base_pow

    step = p.step % U64 if p.fork == FORK_PJREDDIE else p.step
    if step == 0:
        raise ZeroDivisionError("step=0: darknet divides by zero (SIGFPE)")
    if step >= 1 << 63:
        k = np.zeros(b.shape, dtype=I64)
    else:
        k = b // step if step > 0 else -(b // -step)
    return lr_base_pow(p.lr, p.scale, k, lambda x: f32(p.lr * cpow(p.scale, float(x))))


def boundaries(
    s: NetSchedule, lo: int, top: int, add: base.Add, full: base.Full
) -> int:
    """Every ``k * step`` (``scale^k`` from there), and how many more the limit cut."""
    if s.step <= 0:
        return 0
    k = max(1, -(-lo // s.step))
    while k * s.step <= top and not full():
        add(k * s.step, "step", f"step {k} ×{f32_text(s.scale)}^{k}")
        k += 1
    return max(top // s.step - k + 1, 0)


def phases(x: base.Explainer, start: int, end: int | None) -> list[base.Phase]:
    """A plateau per step (the middle ones summarised when there are many)."""
    st, scale = x.schedule.step, x.schedule.scale
    if st <= 0:
        note = "step <= 0: darknet fails"
        return [base.Phase("plateau", start, end, math.nan, math.nan, note)]
    horizon = end if end is not None else start + 20 * st
    k0, k1 = start // st + 1, horizon // st  # cuts k*st inside (start, horizon]
    if k1 - k0 < 1000:
        pieces = x.pieces(start, end, [k * st for k in range(k0, k1 + 1)])
    else:
        head = x.pieces(
            start,
            (k0 + base.HEAD) * st - 1,
            [k * st for k in range(k0, k0 + base.HEAD)],
        )
        tail = x.pieces((k1 - 1) * st, end, [k1 * st])
        tail[0] = replace(tail[0], kind="plateau", note=f"at batch {tail[0].first}")
        note = f"{k1 - 1 - k0 - base.HEAD} more plateaus: x{f32_text(scale)} every {st} batches"
        mid = x.span("summary", (k0 + base.HEAD) * st, (k1 - 1) * st - 1, note)
        pieces = [*head, mid, *tail]
    if end is None and len(pieces) > 1:
        pieces = base.open_ended(pieces, "; goes on")
    return base.summarise(pieces, "plateaus")


def code(c: base.LrCode) -> None:
    """``f32(lr * pow(scale, b / step))`` with C's integer division."""
    p = c.params
    if p.fork == FORK_PJREDDIE and p.step < 0:
        c.line(f"return {c.lr}  # pjreddie divides by step={p.step} as unsigned: 0")
        return
    c.const("STEP", c.num(p.step))
    c.const("SCALE", c.f(p.scale))
    s = p.scale
    if p.step > 0:
        exponent = "b // STEP"
        safe = not math.isfinite(s) or abs(s) <= 1
    else:
        c.line("k = -(b // -STEP)  # C's integer division rounds toward 0")
        exponent = "k"
        safe = not math.isfinite(s) or abs(s) >= 1
    c.line(f"return {c.times_lr(c.pow('SCALE', exponent, safe))}")


def normal(p: Params) -> bool:
    """|scale|**k moves towards 0 only for 0 < |scale| < 1 (k >= 0) or |scale| > 1."""
    s = abs(p.scale)
    if p.fork == FORK_PJREDDIE and p.step < 0:
        return True
    return s == 0 or (s >= 1 if p.step > 0 else s <= 1) or p.lr == 0


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """A MultiStepLR with a milestone per step drop in the run."""
    p = run.params
    if p.step <= 0:
        raise base.NotExactError(
            run.batch(run.m0), f"step={p.step}: darknet divides by a non-positive step"
        )
    epochs: list[int] = []
    for k in range(1, run.horizon // p.step + 1):  # the first step of every drop
        first = max(run.first(k * p.step), run.m0)
        if first >= run.steps:
            break
        if k > MAX_MILESTONES:
            raise base.NotExactError(
                k * p.step,
                f"more than {MAX_MILESTONES} step drops in the run: "
                "too many MultiStepLR milestones (use DarknetLR)",
            )
        epochs.append(first)
    return [head + base.grouped((e, p.scale) for e in epochs)]
