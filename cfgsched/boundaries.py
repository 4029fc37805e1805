"""Where a schedule changes shape: burn-in end, steps, sgdr cycle ends, max_batches.

The one home of darknet's sgdr cycle walk over batch numbers and of the boundary list that
diff, plot, explain and lint mark and check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cfgsched.kernel.formulas import f32_text as short
from cfgsched.schedule import NetSchedule, Policy

#: Boundaries listed at most by default.
MAX_BOUNDARIES = 60


def sgdr_hangs(s: NetSchedule) -> bool:
    """True when darknet's sgdr cycle search would loop forever within training."""
    if s.policy is not Policy.SGDR:
        return False
    if s.sgdr_cycle <= 0:
        return True
    return s.sgdr_mult <= 0 and (s.max_batches <= 0 or s.max_batches > s.sgdr_cycle)


def sgdr_ends(s: NetSchedule, top: int) -> Iterator[tuple[int, int]]:
    """``(end, cycle)`` of each sgdr cycle ending at or before batch ``top``, in order.

    darknet's walk (cycles count from b = 0): ``end = start + cycle`` is the last batch
    of a cycle (it gets exactly learning_rate_min); then ``cycle *= sgdr_mult``. A
    non-growing cycle (``sgdr_mult <= 0``) ends the walk after its first end.
    """
    start, cycle = 0, s.sgdr_cycle
    while cycle > 0 and start + cycle <= top:
        yield start + cycle, cycle
        start += cycle
        cycle *= s.sgdr_mult if s.sgdr_mult >= 1 else 0


@dataclass(frozen=True)
class Boundary:
    """A batch where the LR changes (``kind``: burn_in, step, sgdr, sigmoid, max_batches)."""

    batch: int
    kind: str
    label: str


def boundaries(
    schedule: NetSchedule,
    lo: int = 1,
    hi: int | None = None,
    limit: int = MAX_BOUNDARIES,
) -> tuple[list[Boundary], int]:
    """Boundaries in ``[lo, hi]`` in batch order (at most ``limit``) and how many were cut.

    burn_in end is the first batch after burn-in; a step is the first batch its scale applies
    to; an sgdr cycle end is the batch that gets exactly learning_rate_min.
    """
    top = hi if hi is not None else max(schedule.max_batches, 1)
    out: list[Boundary] = []
    cut = 0

    def add(b: int, kind: str, label: str) -> None:
        nonlocal cut
        if lo <= b <= top:
            if len(out) < limit:
                out.append(Boundary(b, kind, label))
            else:
                cut += 1

    if schedule.burn_in > 0:
        add(schedule.burn_in, "burn_in", "burn_in end")
    pol = schedule.policy
    if pol is Policy.STEPS:
        n = min(len(schedule.steps), len(schedule.scales))
        for k, s in enumerate(schedule.steps[:n]):
            add(s, "step", f"steps[{k}] ×{short(schedule.scales[k])}")
    elif pol is Policy.STEP and schedule.step > 0:
        k = max(1, -(-lo // schedule.step))
        while k * schedule.step <= top and len(out) < limit:
            add(k * schedule.step, "step", f"step {k} ×{short(schedule.scale)}^{k}")
            k += 1
        cut += max(top // schedule.step - k + 1, 0)  # the steps past the limit
    elif pol is Policy.SIG:
        add(schedule.step, "sigmoid", "sigmoid midpoint")
    elif pol is Policy.SGDR and schedule.sgdr_cycle > 0:
        for k, (end, cycle) in enumerate(sgdr_ends(schedule, top)):
            if end >= lo:
                if len(out) >= limit:
                    cut += 1 if schedule.sgdr_mult != 1 else (top - end) // cycle + 1
                    break
                add(end, "sgdr", f"sgdr cycle {k} end")
    if schedule.max_batches > 0:
        add(schedule.max_batches, "max_batches", "max_batches")
    out.sort(key=lambda x: x.batch)
    return out, cut
