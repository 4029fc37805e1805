"""``policy=constant`` (and an unknown policy, which darknet treats alike): ``lr``."""

from __future__ import annotations

from cfgsched.kernel.formulas import Params
from cfgsched.policies import base


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``lr``."""
    return p.lr


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    """``lr`` at every batch."""
    import numpy as np

    return np.full(b.shape, p.lr, dtype=np.float32)


def phases(x: base.Explainer, start: int, end: int | None) -> list[base.Phase]:
    """One plateau."""
    return x.pieces(start, end, [])


def code(c: base.LrCode) -> None:
    c.line(f"return {c.lr}")


def normal(p: Params) -> bool:
    """Only ``lr``, flushed already."""
    return True


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """The burn-in and base-rate parts alone."""
    return [head]


boundaries = base.no_boundaries
