"""The burn-in every policy starts with: ``lr * (b / burn_in)^power`` while b < burn_in."""

from __future__ import annotations

from cfgsched.kernel.formulas import (
    FLT_MIN,
    Params,
    cdiv,
    f32,
    f32_text,
    lr_pow,
    rounding,
)
from cfgsched.policies import base


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``f32(lr * pow(f32(f32(b) / burn_in), power))``."""
    r = rounding(exact, flush)
    return lr_pow(p, r(cdiv(r(float(b)), r(float(p.burn_in)))), exact, flush)


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    import numpy as np

    from cfgsched.kernel.vector import F32, lr_pow, to_f32

    with np.errstate(all="ignore"):
        x = to_f32(b) / F32(f32(float(p.burn_in)))
    return lr_pow(p, b, x, flush, lambda v: rate(p, v, True, flush))


def phase(x: base.Explainer, end: int | None) -> base.Phase:
    """The ramp ``1 .. burn_in - 1``."""
    s = x.schedule
    last = s.burn_in - 1 if end is None else min(s.burn_in - 1, end)
    return x.span("burn-in", 1, last, f"lr x (b/{s.burn_in})^{f32_text(s.power)}")


def code(c: base.LrCode) -> str:
    """``f32(lr * pow(f32(f32(b) / burn_in), power))``, as an expression."""
    p = c.params
    c.const("BURN_IN", c.num(p.burn_in))
    small = 0 < p.burn_in <= 1 << 24  # then b < burn_in is exact in float32
    x = c.divide("b" if small or not c.exact else "f32(b)", p.burn_in, "BURN_IN")
    return c.times_lr(c.power(x, p.burn_in > 0 and base.pow_safe(p.power)))


def normal(p: Params) -> bool:
    """lr * (b / burn_in)**power grows with b: all of it is normal when b = 1 is."""
    if p.lr == 0 or p.power == 0:
        return True
    return p.power > 0 and abs(rate(p, 1, True, False)) >= 2 * FLT_MIN


def native(run: base.NativeRun, start32: bool) -> list[base.NativePart]:
    """LinearLR (power 1, twice for power 2) up to the first step after the burn-in;
    ``start32``: darknet's float32 ratio ``f32(b(0)/burn_in)`` as its start factor."""
    p = run.params
    if p.burn_in <= 0 or run.m0 == 0 or run.steps == 0:
        return []
    b0 = run.batch(0)
    if b0 < 1:
        raise base.NotExactError(
            b0, "the first optimizer step is at darknet batch 0 (LR 0 in burn-in)"
        )
    if p.power not in (1.0, 2.0):
        lin = p._replace(power=1.0)
        bs = (run.batch(i) for i in range(min(run.m0, run.steps)))
        b = next(
            (x for x in bs if rate(p, x, True, False) != rate(lin, x, True, False)), b0
        )
        raise base.NotExactError(
            b,
            f"burn-in with power={p.power:g}: darknet ramps lr·(b/burn_in)^{p.power:g}; "
            "torch's LinearLR is linear (power 1) and no built-in has another power",
        )
    start = f32(f32(float(b0)) / f32(float(p.burn_in))) if start32 else b0 / p.burn_in
    kw = {"start_factor": start, "end_factor": 1.0, "total_iters": run.m0}
    return [base.NativePart("LinearLR", kw)] * int(p.power)
