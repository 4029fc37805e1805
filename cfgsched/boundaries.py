"""Where a schedule changes shape: burn-in end, each policy's own (steps, sgdr cycle
ends, ...), max_batches: the list diff, plot, explain and lint mark and check."""

from __future__ import annotations

from dataclasses import dataclass

from cfgsched.policies import module
from cfgsched.schedule import NetSchedule

#: Boundaries listed at most by default.
MAX_BOUNDARIES = 60


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
    """Boundaries in ``[lo, hi]`` in batch order (at most ``limit``) and how many were cut
    (burn_in end: the first batch after burn-in; the policies' own: their ``boundaries``)."""
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
    cut += module(schedule.policy).boundaries(
        schedule, lo, top, add, lambda: len(out) >= limit
    )
    if schedule.max_batches > 0:
        add(schedule.max_batches, "max_batches", "max_batches")
    out.sort(key=lambda x: x.batch)
    return out, cut
