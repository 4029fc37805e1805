"""``policy=steps``: ``lr`` times every scale whose step is passed, in cfg order."""

from __future__ import annotations

import math
import struct
from array import array
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

from cfgsched.kernel.formulas import (
    FLT_MIN,
    FORK_PJREDDIE,
    FTZ_LIMIT,
    Params,
    f32,
    f32_decimal,
    f32_ftz,
    f32_text,
)
from cfgsched.policies import base
from cfgsched.schedule import NetSchedule

#: Most torch schedulers in one native chain (each ``step()`` steps them all).
MAX_PARTS = 64


#: ``(bounds, rates)``: ``rates[bisect_right(bounds, b)]`` is the rate at b; bounds
#: (the running max of steps) an array('q'), or a list beyond int64; rates an array('d').
StepsTable = tuple[Any, Any]
#: Steps tables by (id(steps), id(scales), lr bits, mode); entries keep their tuples alive
#: (keyed by identity: hashing a long steps tuple would cost O(len(steps)) per lookup).
_TABLES: dict[tuple[int, int, bytes, int], tuple[Any, Any, StepsTable]] = {}
_TABLES_MAX = 8
#: The last table returned, with its Params and mode (a stepping scheduler's fast path).
_LAST: tuple[Any, int, StepsTable | None] = (None, -1, None)


def steps_table(p: Params, mode: int) -> StepsTable:
    """``p``'s table, cached (``mode``: 0 double, 1 float32, 2 float32 flushed)."""
    global _LAST
    last = _LAST
    if last[0] is p and last[1] == mode and last[2] is not None:
        return last[2]
    key = (id(p.steps), id(p.scales), struct.pack("<d", p.lr), mode * 3 + p.fork)
    hit = _TABLES.get(key)
    if hit is not None and hit[0] is p.steps and hit[1] is p.scales:
        table = hit[2]
    else:
        table = _build(p, mode)
        if len(_TABLES) >= _TABLES_MAX:
            _TABLES.clear()  # atomic: safe with threads; rebuilt on demand
        _TABLES[key] = (p.steps, p.scales, table)
    _LAST = (p, mode, table)  # one atomic assignment: safe with threads
    return table


def _build(p: Params, mode: int) -> StepsTable:
    r: Callable[[float], float] = (float, f32, f32_ftz)[mode]
    bounds: list[int] = []
    rates = [r(p.lr) if mode == 2 else p.lr]
    top = 0
    for s, sc in zip(p.steps, p.scales, strict=False):
        if p.fork == FORK_PJREDDIE and s < 0:
            break  # size_t b < 2**64 never reaches it, nor any step after it
        top = max(top, s) if bounds else s
        bounds.append(top)
        if mode == 2 and abs(sc) < FTZ_LIMIT:
            sc = math.copysign(0.0, sc)  # a subnormal scale is read as 0
        rates.append(r(rates[-1] * sc))
    try:
        packed: Any = array("q", bounds)
    except OverflowError:
        packed = bounds
    return packed, array("d", rates)


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """The rate after the steps passed at ``b``: O(log len(steps))."""
    bounds, rates = steps_table(p, (2 if flush else 1) if exact else 0)
    return float(rates[bisect_right(bounds, b)])


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    """The steps table searched per batch."""
    import numpy as np

    from cfgsched.kernel.vector import F32, F64, I64, per_value

    raw, values = steps_table(p, 2 if flush else 1)
    if not isinstance(raw, array):  # steps beyond int64: the scalar search
        return per_value(lambda x: rate(p, x, True, flush), b).astype(F32)
    rates, bounds = np.frombuffer(values, dtype=F64), np.frombuffer(raw, dtype=I64)
    # search only the bounds between b's extremes (cache-friendly for a chunk of a run)
    lo = int(np.searchsorted(bounds, b.min(), side="right"))
    hi = int(np.searchsorted(bounds, b.max(), side="right"))
    if lo == hi:  # the whole chunk on one plateau
        return np.full(b.shape, rates[lo], dtype=F32)
    if hi - lo <= 8:  # a few boundaries: one comparison each beats a binary search
        count = np.full(b.shape, lo, dtype=np.intp)
        for bound in bounds[lo:hi].tolist():
            count += b >= bound
    else:
        count = np.searchsorted(bounds[lo:hi], b, side="right") + lo
    return rates[count].astype(F32)


def boundaries(
    s: NetSchedule, lo: int, top: int, add: base.Add, full: base.Full
) -> int:
    """Each step (the first batch its scale applies to)."""
    for k, st in enumerate(s.steps[: min(len(s.steps), len(s.scales))]):
        add(st, "step", f"steps[{k}] ×{f32_text(s.scales[k])}")
    return 0


def phases(x: base.Explainer, start: int, end: int | None) -> list[base.Phase]:
    """A plateau between steps (equal LRs merged)."""
    return x.pieces(start, end, x.schedule.steps)


def code(c: base.LrCode) -> None:
    """darknet walks the steps in cfg order and stops at the first step > b."""
    p = c.params
    n = min(len(p.steps), len(p.scales))
    steps, scales = list(p.steps[:n]), list(p.scales[:n])
    if p.fork == FORK_PJREDDIE and any(s < 0 for s in steps):
        cut = next(i for i, s in enumerate(steps) if s < 0)
        c.line(f"# pjreddie compares unsigned: step {steps[cut]} is never passed")
        steps, scales = steps[:cut], scales[:cut]
    if not steps:
        c.line(f"return {c.lr}  # no step applies")
        return
    runs = _runs(steps, scales)
    if len(runs) * 4 > len(steps):
        c.constants.append(c.seq([c.num(s) for s in steps], 0, "STEPS = "))
        c.constants.append(c.seq([c.f(s) for s in scales], 0, "SCALES = "))
    else:
        c.constants += [
            "#: The steps as runs (first, spacing, count, scale): count steps from first,",
            "#: spacing apart, each with scale.",
            "RUNS = (",
            *(
                f"    ({c.num(a)}, {c.num(d)}, {c.num(n)}, {c.f(sc)}),"
                for a, d, n, sc in runs
            ),
            ")",
            "STEPS = tuple(a + k * d for a, d, n, _ in RUNS for k in range(n))",
            "SCALES = tuple(s for _, _, n, s in RUNS for _ in range(n))",
        ]
    product = "f32(r * s)" if c.exact else "r * s"
    c.constants += [
        "#: The LR once the first k steps are passed: darknet's running product, in order.",
        f"LRS = tuple(accumulate(SCALES, lambda r, s: {product}, initial={c.lr}))",
    ]
    table = "STEPS"
    if steps != sorted(steps):
        c.constants += [
            "#: Steps are not sorted: darknet passes step i once max(steps[: i + 1]) <= b.",
            "REACHED = tuple(accumulate(STEPS, max))",
        ]
        table = "REACHED"
    c.line(
        f"return LRS[bisect_right({table}, b)]  # darknet stops at the first step > b"
    )


def _runs(steps: list[int], scales: list[float]) -> list[tuple[int, int, int, float]]:
    """``(first, spacing, count, scale)`` runs: even spacing, one scale (same bits)."""
    out: list[tuple[int, int, int, float]] = []
    for st, sc in zip(steps, scales, strict=True):
        if out:
            a, d, n, last = out[-1]
            same = struct.pack("<d", sc) == struct.pack("<d", last)
            if same and (n == 1 or st == a + n * d):
                out[-1] = (a, st - a if n == 1 else d, n + 1, last)
                continue
        out.append((st, 0, 1, sc))
    return out


def normal(p: Params) -> bool:
    """Every running product is 0 or at least twice FLT_MIN."""
    out = p.lr
    for sc in p.scales[: len(p.steps)]:
        out = f32(out * sc)
        if not (out == 0 or abs(out) >= 2 * FLT_MIN):
            return False
    return True


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """MultiStepLRs per scale (float32, decimal), per change; at most :data:`MAX_PARTS`."""
    pairs: list[tuple[int, float]] = []  # (epoch, scale) of each step within the run
    for high, sc in zip(steps_table(run.params, 0)[0], run.params.scales, strict=False):
        e = max(run.first(high), run.m0)
        if e >= run.steps:
            break
        pairs.append((e, sc))
    if not pairs:
        return [head]
    decimal = {g: f32_decimal(g) for g in {g for _, g in pairs}}
    by_scale = [base.grouped(pairs), base.grouped((e, decimal[g]) for e, g in pairs)]
    cands = [head + g for g in by_scale if len(head) + len(g) <= MAX_PARTS]
    epochs = sorted({e for e, _ in pairs})
    chain: base.Parts = []  # a one-milestone MultiStepLR per change of darknet's value
    prev = run.params.lr
    for e in epochs:
        cur = run.lr(e)
        if cur == prev and chain:
            continue
        gamma = cur / prev if prev != 0 and math.isfinite(prev) else 0.0  # the ratio
        chain.append(base.step_part([e], gamma))
        prev = cur
    if len(head) + len(chain) <= MAX_PARTS:
        cands.append(head + chain)
    if not cands:
        raise base.NotExactError(
            run.batch(epochs[0]),
            f"steps: {len(chain)} rate changes with {len(by_scale[0])} distinct scales "
            f"need more than {MAX_PARTS} chained torch schedulers (use DarknetLR)",
        )
    return cands
