"""``policy=poly``: ``lr * (1 - b / max_batches)^power``."""

from __future__ import annotations

import math

from cfgsched.kernel.formulas import Params, cdiv, f32, f32_text, lr_pow, rounding
from cfgsched.policies import base

#: Largest integral ``power`` for which ``|base| ** power`` cannot overflow a double
#: (``|base| <= 2**63``).
_MAX_SAFE_POWER = 16


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``f32(lr * pow(f32(1 - f32(f32(b) / max_batches)), power))``."""
    r = rounding(exact, flush)
    return lr_pow(
        p, r(1.0 - r(cdiv(r(float(b)), r(float(p.max_batches))))), exact, flush
    )


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    import numpy as np

    from cfgsched.kernel.vector import F32, lr_pow, to_f32

    with np.errstate(all="ignore"):
        base = F32(1.0) - to_f32(b) / F32(f32(float(p.max_batches)))
    return lr_pow(p, b, base, flush, lambda x: rate(p, x, True, flush))


def code(c: base.LrCode) -> None:
    """``f32(lr * pow(f32(1 - f32(f32(b) / max_batches)), power))``."""
    p = c.params
    c.const("MAX_BATCHES", c.num(p.max_batches))
    ratio = c.divide("f32(b)" if c.exact else "b", p.max_batches, "MAX_BATCHES")
    c.line(f"base = {c.r(f'1 - {ratio}')}  # negative past max_batches")
    pw = p.power
    safe = p.max_batches != 0 and (
        not math.isfinite(pw) or (pw == int(pw) and 0 <= pw <= _MAX_SAFE_POWER)
    )
    c.line(f"return {c.times_lr(c.power('base', safe))}")


def normal(p: Params) -> bool:
    """A non-zero base is at least 2**-24 in magnitude."""
    return p.max_batches > 0 and base.normal_24(p)


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """PolynomialLR, when max_batches is a whole number of steps and no burn-in ends."""
    p = run.params
    if p.max_batches <= 0:
        raise base.NotExactError(
            run.batch(0), "poly with max_batches=0: darknet's LR is NaN or inf"
        )
    base.no_burn_in_end(run, "poly", "PolynomialLR", "lr·(1 - b/max_batches)^power")
    c = run.per_step
    if c is None or p.max_batches % c:
        raise base.NotExactError(
            run.batch(1), "poly: max_batches is not a whole number of steps"
        )
    total = p.max_batches // c - 1
    if total < 1:
        raise base.NotExactError(
            run.batch(0), "poly: max_batches ends within the first step"
        )
    k = (1.0 - c / p.max_batches) ** p.power
    poly = base.NativePart("PolynomialLR", {"total_iters": total, "power": p.power})
    return [[*head, base.step_part([0], k), poly]]


phases = base.one_phase(
    "decay", lambda s: f"lr x (1 - b/{s.max_batches})^{f32_text(s.power)}"
)
boundaries = base.no_boundaries
