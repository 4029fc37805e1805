"""``policy=sigmoid``: ``lr / (1 + exp(gamma * (b - step)))``."""

from __future__ import annotations

import math

from cfgsched.kernel.formulas import (
    FORK_HANKAI,
    FORK_PJREDDIE,
    U64,
    Params,
    cexp,
    expf,
    f32,
    f32_text,
    rounding,
)
from cfgsched.policies import base
from cfgsched.schedule import NetSchedule

_C_EXP = '''def c_exp(x: float) -> float:
    """C's exp(): inf where Python's math.exp raises OverflowError."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf'''


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``f32(lr * (1 / (1 + exp(f32(gamma * (b - step))))))``; pjreddie subtracts in size_t."""
    r = rounding(exact, flush)
    d = (b - p.step) % U64 if p.fork == FORK_PJREDDIE else b - p.step
    t = r(p.gamma * r(float(d)))
    e = expf(t) if p.fork == FORK_HANKAI and exact else cexp(t)
    return r(p.lr * (1.0 / (1.0 + e)))


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    import numpy as np

    from cfgsched.kernel.vector import F32, F64, ctypes_many, finish

    if p.fork == FORK_PJREDDIE:  # size_t: b - step wraps modulo 2**64 when b < step
        d = (b.astype(np.uint64) - np.uint64(p.step % U64)).astype(F64)
    else:
        d = (b - p.step).astype(F64)
    hk = p.fork == FORK_HANKAI
    with np.errstate(all="ignore"):
        t = (p.gamma * d.astype(F32).astype(F64)).astype(F32)
        e = ctypes_many(expf, t).astype(F64) if hk else np.exp(t.astype(F64))
        z = p.lr * (1.0 / (1.0 + e))
    return finish(b, z, not hk, lambda x: rate(p, x, True, flush))


def boundaries(
    s: NetSchedule, lo: int, top: int, add: base.Add, full: base.Full
) -> int:
    """The midpoint (half the LR)."""
    add(s.step, "sigmoid", "sigmoid midpoint")
    return 0


def code(c: base.LrCode) -> None:
    """``f32(lr * (1 / (1 + exp(f32(gamma * (b - step))))))``."""
    p = c.params
    g = p.gamma
    pj = p.fork == FORK_PJREDDIE
    c.const("GAMMA", c.f(g))
    c.const("STEP", c.num(p.step))
    if pj:
        c.line("# pjreddie subtracts in size_t: b - STEP wraps around below 0")
    d = c.r("(b - STEP) % 2**64" if pj else "b - STEP")
    c.line(f"x = {c.r(f'GAMMA * {base.atom(d)}')}")
    # exp(x) overflows only for x > 709: x grows with b when gamma > 0; for gamma < 0
    # it is largest at b = 0 (pjreddie: x <= 0)
    most = 0.0 if pj else -g * max(p.step, 0)
    if c.exact and p.fork == FORK_HANKAI:
        c.c_lib("expf")
        e = "LIBM.expf(x)"
    elif not math.isfinite(g) or g == 0 or (g < 0 and most < 709):
        e = "math.exp(x)"
    else:
        c.helper(_C_EXP)
        e = "c_exp(x)"
    c.line(f"return {c.times_lr(f'(1 / (1 + {e}))')}")


def normal(p: Params) -> bool:
    """Never proven: lr / (1 + exp(x)) passes through every magnitude below lr."""
    return False


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """None: no torch built-in computes darknet's logistic decay."""
    changes = (
        run.batch(i)
        for i in range(run.m0 + 1, run.steps)  # where darknet's LR first changes
        if f32(run.lr(i)) != f32(run.lr(i - 1))
    )
    b = next(changes, run.batch(min(run.m0, run.steps - 1)))
    raise base.NotExactError(
        b, "sigmoid: no torch built-in computes darknet's logistic decay"
    )


phases = base.one_phase(
    "decay",
    lambda s: (
        f"lr / (1 + exp({f32_text(s.gamma)} x (b - {s.step}))), half LR at b={s.step}"
    ),
)
