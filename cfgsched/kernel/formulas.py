"""Scalar darknet learning-rate formulas, standard library only.

The library's single source of the per-batch formulas (the oracle and the schedulers
call it). Generated modules write out the formula of their own policy instead; the golden
tests keep both equal to darknet's C code.
"""

from __future__ import annotations

import math
import struct
from array import array
from bisect import bisect_right
from decimal import Decimal
from typing import Any, NamedTuple

FORK_ALEXEYAB = 0
FORK_PJREDDIE = 1
FORK_HANKAI = 2

CONSTANT, STEP, EXP, POLY, STEPS, SIG, RANDOM, SGDR = range(8)

PI_ALEXEYAB = 3.14159265
#: x86's default NaN (sign bit set), what C produces for 0/0 and pow(-x, 0.5).
NAN = -math.nan
_U64 = 1 << 64
_M64 = _U64 - 1


class Params(NamedTuple):
    """The numbers a schedule needs; floats hold float32 values."""

    fork: int
    policy: int
    lr: float
    power: float
    burn_in: int
    step: int
    scale: float
    gamma: float
    max_batches: int
    lr_min: float
    sgdr_cycle: int
    sgdr_mult: int
    steps: tuple[int, ...]
    scales: tuple[float, ...]
    seed: int = 0


_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    """Round to the nearest float32 (overflow gives a signed infinity, NaN stays NaN)."""
    try:
        return float(_F32.unpack(_F32.pack(x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def f32_decimal(x: float) -> float:
    """The shortest decimal that rounds to the float32 ``x``, as a double (0.0013, not f32)."""
    if not math.isfinite(x) or x == 0:
        return x
    for digits in range(1, 10):
        d = float(f"{x:.{digits}g}")
        if f32(d) == x:
            return d
    return x


def f32_text(x: float) -> str:
    """Shortest text that reads back as the float32 ``x`` (0.1, 2, 1e-05; not 0.100000001)."""
    d = f32_decimal(f32(x))
    if d == 0 or not math.isfinite(d) or f32(1e-4) <= abs(d) < 1e6:
        text = repr(d)
        return text[:-2] if text.endswith(".0") else text
    mantissa, exp = f"{Decimal(repr(d)).normalize():e}".split("e")
    return f"{mantissa}e{int(exp):+03d}"


def ngpus_lr(fork: int, lr: float, ngpus: int) -> float:
    """The base rate of a ``-gpus n`` run: ``f32(lr·n)``, except in hankai (no scaling)."""
    if ngpus == 1 or fork == FORK_HANKAI:
        return lr
    return f32(lr * ngpus)


def _same(x: float) -> float:
    return x


#: Smallest normal float32; release builds (``-Ofast``: flush-to-zero) return 0 below it.
FLT_MIN = 2.0**-126
#: x86 flush-to-zero detects tininess after rounding to 24 bits: a result is flushed to ±0
#: when its exact value is below ``FLT_MIN - 2**-151`` (from there on it rounds to FLT_MIN).
FTZ_LIMIT = FLT_MIN - 2.0**-151


def f32_ftz(x: float) -> float:
    """:func:`f32` in a flush-to-zero build (x86 ``-Ofast``): ``|x| < FTZ_LIMIT`` gives ±0.

    ``x`` is the exact value C rounds (a double, or a float product held exactly).
    """
    return math.copysign(0.0, x) if abs(x) < FTZ_LIMIT else f32(x)


def cpow(x: float, y: float) -> float:
    """C ``pow`` in double: NaN/inf where C gives them instead of Python exceptions."""
    if math.isnan(x) or math.isnan(y):
        return 1.0 if y == 0 or x == 1 else (x if math.isnan(x) else y)
    if x == 0 and y < 0:
        return math.copysign(math.inf, x) if _odd(y) else math.inf
    try:
        return math.pow(x, y)
    except ValueError:
        return NAN
    except OverflowError:
        return -math.inf if (x < 0 and _odd(y)) else math.inf


def _odd(y: float) -> bool:
    """Whether ``y`` is an odd integer (C99 pow's sign rules; infinities are not)."""
    return math.isfinite(y) and y == int(y) and int(y) % 2 == 1


def cexp(x: float) -> float:
    """C ``exp`` in double (overflow gives inf)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def cdiv(a: float, b: float) -> float:
    """IEEE division: x/0 is ±inf, 0/0 is NaN."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


_LIBM: list[tuple[Any, Any] | None] = []


def _libm() -> tuple[Any, Any] | None:
    """The C library's ``powf``/``expf`` through ctypes, loaded on first use (or None)."""
    if not _LIBM:
        import ctypes
        import ctypes.util

        fns = None
        for name in ("libm.so.6", ctypes.util.find_library("m")):
            if not name:
                continue
            try:
                libm = ctypes.CDLL(name)
                powf_, expf_ = libm.powf, libm.expf
            except (OSError, AttributeError):
                continue
            powf_.restype, powf_.argtypes = (
                ctypes.c_float,
                [ctypes.c_float, ctypes.c_float],
            )
            expf_.restype, expf_.argtypes = ctypes.c_float, [ctypes.c_float]
            fns = (powf_, expf_)
            break
        _LIBM.append(fns)
    return _LIBM[0]


def powf(x: float, y: float) -> float:
    """C ``powf`` from the C library (hankai's float overload); falls back to f32(pow)."""
    fns = _libm()
    if fns is None:
        return f32(cpow(f32(x), f32(y)))
    return float(fns[0](x, y))


def expf(x: float) -> float:
    """C ``expf`` from the C library (hankai's float overload); falls back to f32(exp)."""
    fns = _libm()
    if fns is None:
        return f32(cexp(f32(x)))
    return float(fns[1](x))


def powf_ftz(x: float, y: float) -> float:
    """:func:`powf` in a flush-to-zero build: its float result is flushed like any other.

    The C library rounds a double to float; a result of ±FLT_MIN came from a value that
    flush-to-zero keeps only from ``FTZ_LIMIT`` up, judged on the double ``pow``.
    """
    v = powf(x, y)
    if not abs(v) <= FLT_MIN:  # larger, or NaN
        return v
    if abs(v) < FLT_MIN or abs(cpow(x, y)) < FTZ_LIMIT:
        return math.copysign(0.0, v)
    return v


def ctrunc_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero); ``b`` must not be 0."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def uniform(seed: int, b: int) -> float:
    """A reproducible U[0, 1) float32 draw for batch ``b`` (splitmix64 of seed and b)."""
    z = (seed * 0x9E3779B97F4A7C15 + b + 1) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    z ^= z >> 31
    return f32((z >> 40) / float(1 << 24))


def flushed(p: Params, scales: bool = True) -> Params:
    """``p`` as a flush-to-zero build reads it: float32 values below ``FLT_MIN`` are 0.

    ``scales=False`` leaves the steps' scales alone (O(1)): :func:`rate` flushes them where
    it reads them, in :func:`steps_table`.
    """
    z = f32_ftz
    q = p._replace(
        lr=z(p.lr),
        power=z(p.power),
        scale=z(p.scale),
        gamma=z(p.gamma),
        lr_min=z(p.lr_min),
    )
    if scales and any(0 < abs(s) < FLT_MIN for s in p.scales):
        q = q._replace(scales=tuple(z(s) for s in p.scales))
    return q  # the same scales tuple when none is flushed (the steps table is shared)


class StepsTable(NamedTuple):
    """The steps policy precomputed: ``rates[bisect_right(bounds, b)]`` is the rate at b.

    ``bounds[i]`` is the running maximum of the steps (pjreddie: up to the first negative
    step, which an unsigned ``b`` never reaches); ``rates[k]`` the rate after the first k
    scales, multiplied in cfg order as darknet does.
    """

    bounds: Any  # array('q'), or a list for steps beyond int64
    rates: Any  # array('d') of float32 (or double) values


#: Steps tables by (id(steps), id(scales), lr bits, mode); entries keep their tuples alive.
_TABLES: dict[tuple[int, int, bytes, int], tuple[Any, Any, StepsTable]] = {}
_TABLES_MAX = 8
#: The last table returned, with its Params and mode.
_LAST: tuple[Any, int, StepsTable | None] = (None, -1, None)


def steps_table(p: Params, mode: int) -> StepsTable:
    """The :class:`StepsTable` of ``p`` (computed once per steps/scales/lr/mode).

    ``mode``: 0 double arithmetic, 1 float32, 2 float32 with flush-to-zero (the scales and
    every product flushed). Cached by the identity of ``p.steps`` and ``p.scales``, so a
    schedule's tables are built once however often :func:`rate` is called.
    """
    global _LAST
    last = _LAST
    if last[0] is p and last[1] == mode and last[2] is not None:  # a scheduler stepping
        return last[2]
    key = (id(p.steps), id(p.scales), struct.pack("<d", p.lr), mode * 3 + p.fork)
    hit = _TABLES.get(key)
    if hit is not None and hit[0] is p.steps and hit[1] is p.scales:
        table = hit[2]
    else:
        table = _build_steps_table(p, mode)
        if len(_TABLES) >= _TABLES_MAX:
            _TABLES.clear()  # atomic: safe with threads; rebuilt on demand
        _TABLES[key] = (p.steps, p.scales, table)
    _LAST = (p, mode, table)  # one atomic assignment: safe with threads
    return table


def _build_steps_table(p: Params, mode: int) -> StepsTable:
    r = (_same, f32, f32_ftz)[mode]
    pj = p.fork == FORK_PJREDDIE
    bounds: list[int] = []
    rates = [r(p.lr) if mode == 2 else p.lr]
    top = 0
    for s, sc in zip(p.steps, p.scales, strict=False):
        if pj and s < 0:
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
    return StepsTable(packed, array("d", rates))


def sgdr_start(cycle: int, mult: int, b: int) -> tuple[int, int]:
    """darknet's sgdr cycle search: ``(start, cycle)`` of the cycle that holds ``b``."""
    start = 0
    if mult == 1:
        k = max(0, (b - 1) // cycle) if cycle > 0 else 0
        return k * cycle, cycle
    while cycle > 0 and start + cycle < b:
        start += cycle
        cycle *= mult
    return start, cycle


def rate(p: Params, b: int, exact: bool = True, flush: bool = False) -> float:
    """darknet's ``get_current_rate()`` at integer batch ``b`` (``0 <= b < 2**64``).

    ``exact=True`` reproduces the fork's float32 arithmetic bit for bit; ``exact=False``
    evaluates the same formulas in double. ``flush`` (with ``exact``): a release build's
    flush-to-zero, every float32 result (:func:`f32_ftz`, hankai's ``powf`` included) and
    every scale is flushed; the other inputs must be flushed already (:func:`flushed`).
    The steps policy costs O(log len(steps)) (:func:`steps_table`, built once).
    """
    r = (f32_ftz if flush else f32) if exact else _same
    hk = p.fork == FORK_HANKAI and exact
    pw = powf_ftz if flush else powf
    pj = p.fork == FORK_PJREDDIE
    lr = p.lr
    burn = p.burn_in % _U64 if pj else p.burn_in
    if b < burn:
        x = r(cdiv(r(float(b)), r(float(p.burn_in))))
        if hk:
            return r(lr * pw(x, p.power))
        return r(lr * cpow(x, p.power))
    pol = p.policy
    if pol == CONSTANT:
        return lr
    if pol == STEP:
        if pj:
            k = b // (p.step % _U64)
        else:
            k = ctrunc_div(b, p.step)
        return r(lr * cpow(p.scale, float(k)))
    if pol == STEPS:
        tab = steps_table(p, (2 if flush else 1) if exact else 0)
        return float(tab.rates[bisect_right(tab.bounds, b)])
    if pol == EXP:
        return r(lr * cpow(p.gamma, float(b)))
    if pol == POLY:
        base = r(1.0 - r(cdiv(r(float(b)), r(float(p.max_batches)))))
        if hk:
            return r(lr * pw(base, p.power))
        return r(lr * cpow(base, p.power))
    if pol == SIG:
        d = (b - p.step) % _U64 if pj else b - p.step
        t = r(p.gamma * r(float(d)))
        e = expf(t) if hk else cexp(t)
        return r(lr * (1.0 / (1.0 + e)))
    if pol == RANDOM:  # hankai: std::pow on floats is powf, as for burn-in and poly
        u = uniform(p.seed, b)
        return r(lr * pw(u, p.power)) if hk else r(lr * cpow(u, p.power))
    if pol == SGDR:
        start, cycle = sgdr_start(p.sgdr_cycle, p.sgdr_mult, b)
        pi = math.pi if p.fork == FORK_HANKAI else PI_ALEXEYAB
        c = math.cos(cdiv(r(float(b - start)) * pi, float(cycle)))
        return r(p.lr_min + 0.5 * r(lr - p.lr_min) * (1.0 + c))
    return lr
