"""``policy=sgdr`` (AlexeyAB, hank-ai): cosine from lr to lr_min, cycles from b = 0."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence

from cfgsched.kernel.formulas import FORK_HANKAI, Params, cdiv, f32, rounding
from cfgsched.policies import base
from cfgsched.schedule import NetSchedule, Policy

PI_ALEXEYAB = 3.14159265


def _cycles(cycle: int, mult: int, top: int) -> Iterator[tuple[int, int]]:
    """darknet's sgdr cycle search: ``(start, cycle)`` of each cycle it walks to reach ``top``."""
    start = 0
    yield start, cycle
    while cycle > 0 and start + cycle < top:
        start, cycle = start + cycle, cycle * mult
        yield start, cycle


def sgdr_hangs(s: NetSchedule) -> bool:
    """True when darknet's sgdr cycle search would loop forever within training."""
    if s.policy is not Policy.SGDR:
        return False
    if s.sgdr_cycle <= 0:
        return True
    return s.sgdr_mult <= 0 and (s.max_batches <= 0 or s.max_batches > s.sgdr_cycle)


def sgdr_ends(s: NetSchedule, top: int) -> Iterator[tuple[int, int]]:
    """``(end, cycle)`` of each cycle ending by ``top`` (a cycle <= 0 ends the walk)."""
    walk = _cycles(s.sgdr_cycle, s.sgdr_mult, top + 1)
    return ((a + c, c) for a, c in walk if c > 0 and a + c <= top)


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``f32(lr_min + 0.5 * f32(lr - lr_min) * (1 + cos((b - start) * pi / cycle)))``."""
    r = rounding(exact, flush)
    cycle = p.sgdr_cycle
    if p.sgdr_mult == 1:  # equal cycles: computed, never walked
        start = (max(0, (b - 1) // cycle) if cycle > 0 else 0) * cycle
    else:  # the cycle that holds b
        start, cycle = deque(_cycles(cycle, p.sgdr_mult, b), maxlen=1)[0]
    pi = math.pi if p.fork == FORK_HANKAI else PI_ALEXEYAB
    c = math.cos(cdiv(r(float(b - start)) * pi, float(cycle)))
    return r(p.lr_min + 0.5 * r(p.lr - p.lr_min) * (1.0 + c))


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    """:func:`rate` over ``b`` (the cycle walk once, searched per batch)."""
    import numpy as np

    from cfgsched.kernel.vector import F64, I64, finish, to_f32

    cycle, mult = p.sgdr_cycle, p.sgdr_mult
    if mult == 1:
        start = (
            np.maximum(0, (b - 1) // cycle) * cycle if cycle > 0 else np.zeros_like(b)
        )
        cyc = np.full(b.shape, float(cycle), dtype=F64)
    else:
        starts, cycles = zip(*_cycles(cycle, mult, int(b.max())), strict=True)
        j = np.searchsorted(np.array(starts[1:], dtype=I64), b, side="left")
        start = np.array(starts, dtype=I64)[j]
        cyc = np.array([float(x) for x in cycles], dtype=F64)[j]
    pi = math.pi if p.fork == FORK_HANKAI else PI_ALEXEYAB
    amp = 0.5 * rounding(True, flush)(p.lr - p.lr_min)
    if np.any((cyc == 0) & (b != start)):  # sgdr_cycle=0, or sgdr_mult <= 0
        raise ValueError("sgdr: a cycle of 0 batches: darknet loops forever")
    with np.errstate(all="ignore"):
        theta = to_f32(b - start).astype(F64) * pi / cyc
        z = p.lr_min + amp * (1.0 + np.cos(theta))
    # numpy's and C's cos differ by a few 2**-53: z by less than |amp| * 2**-50
    return finish(b, z, True, lambda x: rate(p, x, True, flush), abs_err=abs(amp))


def boundaries(
    s: NetSchedule, lo: int, top: int, add: base.Add, full: base.Full
) -> int:
    """Each cycle's end (the batch that gets exactly learning_rate_min)."""
    for k, (end, cycle) in enumerate(sgdr_ends(s, top)):
        if end >= lo:
            if full():
                return 1 if s.sgdr_mult != 1 else (top - end) // cycle + 1
            add(end, "sgdr", f"sgdr cycle {k} end")
    return 0


def phases(x: base.Explainer, start: int, end: int | None) -> list[base.Phase]:
    """A phase per cycle (the middle ones summarised when there are many)."""
    s, mid = x.schedule, None
    if sgdr_hangs(s):
        note = f"sgdr_cycle {s.sgdr_cycle}, sgdr_mult {s.sgdr_mult}: darknet hangs"
        return [base.Phase("cycles", start, end, math.nan, math.nan, note)]
    c = s.sgdr_cycle
    horizon = end if end is not None else start + 64 * c
    if s.sgdr_mult != 1:
        walk = enumerate(_cycles(c, s.sgdr_mult, horizon), 1)
        spans = [(k, a + 1, a + cyc) for k, (a, cyc) in walk if cyc > 0]
    else:  # cycle k covers (k-1)c+1 .. kc: computed, never enumerated
        k0, k1 = max(1, -(-start // c)), max(1, -(-horizon // c))
        ks: Sequence[int] = range(k0, k1 + 1)
        if k1 - k0 >= base.MAX_LISTED:
            ks = [*range(k0, k0 + base.HEAD), *range(k1 - base.TAIL + 1, k1 + 1)]
            n = k1 - k0 + 1 - base.HEAD - base.TAIL
            a, z = (k0 + base.HEAD - 1) * c + 1, (k1 - base.TAIL) * c
            mid = x.span("summary", a, z, f"{n} more cycles of {c} batches")
        spans = [(k, (k - 1) * c + 1, k * c) for k in ks]
    out: list[base.Phase] = []
    for k, a, z in spans:
        a2, z2 = max(a, start), z if end is None else min(z, end)
        if a2 <= z2:
            note = f"cycle {k}: {z - a + 1} batches, restart at {a}, lr_min at {z}"
            out.append(x.span("cycle", a2, z2, note))
    if end is None and out:
        out = base.open_ended(out, "; cycles go on")
    if mid is not None:
        return [*out[: base.HEAD], mid, *out[base.HEAD :]]
    return base.summarise(out, "cycles")


def code(c: base.LrCode) -> None:
    """Cosine from LR down to LR_MIN over cycles of CYCLE * CYCLE_MULT**i batches."""
    p = c.params
    c.const("LR_MIN", c.f(p.lr_min))
    c.const("CYCLE", c.num(p.sgdr_cycle), "sgdr_cycle: batches in the first cycle.")
    pi = "math.pi" if p.fork == FORK_HANKAI else "PI"
    if pi == "PI":
        c.const("PI", c.num(PI_ALEXEYAB), "AlexeyAB's value of pi.")
    if p.sgdr_mult == 1:
        c.line("start = max(0, (b - 1) // CYCLE) * CYCLE  # equal cycles (sgdr_mult=1)")
        cycle = "CYCLE"
    else:
        c.const(
            "CYCLE_MULT",
            c.num(p.sgdr_mult),
            "sgdr_mult: each cycle is this much longer.",
        )
        guard = "cycle > 0 and " if p.sgdr_mult <= 0 else ""
        c.line("start, cycle = 0, CYCLE  # darknet's search for the cycle that holds b")
        c.line(f"while {guard}start + cycle < b:")
        c.line("    start += cycle")
        c.line("    cycle *= CYCLE_MULT")
        cycle = "cycle"
    c.line(f"cos = math.cos({base.atom(c.r('b - start'))} * {pi} / {cycle})")
    amp = base.atom(c.r(c.lr + " - LR_MIN"))
    c.line(f"return {c.r(f'LR_MIN + 0.5 * {amp} * (1 + cos)')}")


def normal(p: Params) -> bool:
    """lr_min + 0.5 * (lr - lr_min) * (1 + cos) stays at least lr_min when lr >= lr_min."""
    amp = f32(p.lr - p.lr_min)
    return (
        p.lr >= p.lr_min and (amp == 0 or abs(amp) >= 2**-125) and p.lr_min >= 2**-125
    )


def _cawr(p: Params, b: int) -> float:
    """CosineAnnealingWarmRestarts's LR after ``step(epoch=b)``."""
    t_i, t_cur = p.sgdr_cycle, b
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= max(p.sgdr_mult, 1)
    return p.lr_min + (p.lr - p.lr_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """None: CosineAnnealingWarmRestarts restarts where darknet ends a cycle."""
    p = run.params
    differ = (
        run.batch(i)
        for i in range(run.m0, run.steps)  # the first batch where they differ
        if p.sgdr_cycle <= 0
        or not base.close(_cawr(p, run.batch(i)), run.lr(i), run.exact)
    )
    raise base.NotExactError(
        next(differ, run.batch(run.m0)),
        "sgdr: no torch scheduler matches; CosineAnnealingWarmRestarts (epoch = batch) "
        "restarts where darknet ends the cycle at exactly learning_rate_min, and darknet "
        "rounds to float32 (alexeyab's pi is 3.14159265)",
    )
