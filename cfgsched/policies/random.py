"""``policy=random``: ``lr * U(0,1)^power``; cfgsched's seeded draws (darknet's are not
reproducible: ``rand()`` seeded by the time)."""

from __future__ import annotations

from cfgsched.kernel.formulas import Params, f32, f32_text, lr_pow
from cfgsched.policies import base

#: What every LR of this policy is, in words (explain, diff, plot say it).
DRAWS = "cfgsched's seeded draws, not darknet's rand()"

_M64 = (1 << 64) - 1

_UNIFORM = '''def uniform(b: int) -> float:
    """A reproducible U[0, 1) draw for batch b: splitmix64 of SEED and b (darknet's own
    rand() is seeded by the time: its draws cannot be reproduced)."""
    z = (SEED * 0x9E3779B97F4A7C15 + b + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((z ^ (z >> 31)) >> 40) / 2**24'''


def uniform(seed: int, b: int) -> float:
    """A reproducible U[0, 1) float32 draw for batch ``b`` (splitmix64 of seed and b)."""
    z = (seed * 0x9E3779B97F4A7C15 + b + 1) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return f32(((z ^ (z >> 31)) >> 40) / float(1 << 24))


def rate(p: Params, b: int, exact: bool, flush: bool) -> float:
    """``f32(lr * pow(uniform(seed, b), power))``."""
    return lr_pow(p, uniform(p.seed, b), exact, flush)


def uniforms(seed: int, b: base.I64s) -> base.F64s:
    """:func:`uniform` vectorised in uint64."""
    import numpy as np

    u64 = np.uint64
    z = b.astype(u64) + u64((seed * 0x9E3779B97F4A7C15 + 1) & _M64)
    z = (z ^ (z >> u64(30))) * u64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u64(27))) * u64(0x94D049BB133111EB)
    z ^= z >> u64(31)
    return (z >> u64(40)).astype(np.float64) / float(1 << 24)


def rates(p: Params, b: base.I64s, flush: bool) -> base.F32s:
    from cfgsched.kernel.vector import F32, lr_pow

    u = uniforms(p.seed, b).astype(F32)
    return lr_pow(p, b, u, flush, lambda x: rate(p, x, True, flush))


def code(c: base.LrCode) -> None:
    """``lr * pow(U(0, 1), power)`` with a reproducible draw per batch."""
    c.const(
        "SEED", c.num(c.params.seed), "The random policy's draws (cfgsched's seed)."
    )
    c.helper(_UNIFORM)
    c.line(f"return {c.times_lr(c.power('uniform(b)', base.pow_safe(c.params.power)))}")


def normal(p: Params) -> bool:
    """A non-zero draw is at least 2**-24."""
    return base.normal_24(p)


def native(run: base.NativeRun, head: base.Parts) -> base.Plans:
    """None: no torch scheduler draws."""
    raise base.NotExactError(
        run.batch(run.m0),
        "random: darknet draws a new LR every batch; no torch scheduler does",
    )


phases = base.one_phase(
    "random",
    lambda s: f"lr x U(0,1)^{f32_text(s.power)}, redrawn every batch ({DRAWS})",
)
boundaries = base.no_boundaries
