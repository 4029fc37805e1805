"""``policy=exp``: ``lr * gamma^b``."""

from __future__ import annotations

import math

from cfgsched.kernel.formulas import Params, cpow, f32_text, rounding
from cfgsched.policies import base


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``f32(lr * pow(gamma, b))``."""
    return rounding(exact, flush)(p.lr * cpow(p.gamma, float(b)))


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    from cfgsched.kernel.vector import lr_base_pow

    return lr_base_pow(p.lr, p.gamma, b, lambda x: rate(p, x, True, flush))


def code(c: base.LrCode) -> None:
    """``f32(lr * pow(gamma, b))``."""
    g = c.params.gamma
    c.const("GAMMA", c.f(g))
    safe = not math.isfinite(g) or abs(g) <= 1
    c.line(f"return {c.times_lr(c.pow('GAMMA', 'b', safe))}")


def normal(p: Params) -> bool:
    """``|gamma|^b`` shrinks only for ``0 < |gamma| < 1``."""
    g = abs(p.gamma)
    return g == 0 or g >= 1 or p.lr == 0


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """ExponentialLR with gamma^c, when each step covers c batches and no burn-in ends."""
    p = run.params
    if p.gamma == 1.0:
        return [head]
    base.no_burn_in_end(run, "exp", "ExponentialLR", "lr·gamma^b")
    if run.per_step is None:
        raise base.NotExactError(
            run.batch(1), "exp: darknet batches are not evenly spaced steps"
        )
    g = p.gamma**run.per_step
    return [
        [*head, base.step_part([0], g), base.NativePart("ExponentialLR", {"gamma": g})]
    ]


phases = base.one_phase("decay", lambda s: f"lr x {f32_text(s.gamma)}^b")
boundaries = base.no_boundaries
