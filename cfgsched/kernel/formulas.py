"""C's float arithmetic as darknet computes its rate, standard library only (the policies'
formulas use it; generated modules write their own; the golden tests keep both exact)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

FORK_ALEXEYAB = 0
FORK_PJREDDIE = 1
FORK_HANKAI = 2

#: x86's default NaN (sign bit set), what C produces for 0/0 and pow(-x, 0.5).
NAN = -math.nan
U64 = 1 << 64
#: Largest darknet batch number the vectorised methods evaluate (int64).
MAX_BATCH = (1 << 63) - 1


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


#: hankai's ``-gpus`` rule in words (the other forks multiply learning_rate by n).
HANKAI_GPUS = "hankai does not multiply learning_rate by the GPU count"


def ngpus_lr(fork: int, lr: float, ngpus: int) -> float:
    """The base rate of a ``-gpus n`` run: ``f32(lr·n)``, except in hankai (no scaling)."""
    if ngpus == 1 or fork == FORK_HANKAI:
        return lr
    return f32(lr * ngpus)


#: Smallest normal float32; release builds (``-Ofast``: flush-to-zero) return 0 below it.
FLT_MIN = 2.0**-126
#: x86 flush-to-zero judges tininess after rounding to 24 bits: an exact value below
#: ``FLT_MIN - 2**-151`` is flushed to ±0.
FTZ_LIMIT = FLT_MIN - 2.0**-151


def f32_ftz(x: float) -> float:
    """:func:`f32` in a flush-to-zero build (x86 ``-Ofast``): ``|x| < FTZ_LIMIT`` gives ±0."""
    return math.copysign(0.0, x) if abs(x) < FTZ_LIMIT else f32(x)


def rounding(exact: bool, flush: bool) -> Callable[[float], float]:
    """The rounding of every float32 result: flushed, plain float32, or none (double)."""
    return (f32_ftz if flush else f32) if exact else float


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


@cache
def _libm() -> tuple[Any, Any] | None:
    """The C library's ``powf``/``expf`` through ctypes, loaded on first use (or None)."""
    import ctypes
    import ctypes.util

    for name in filter(None, ("libm.so.6", ctypes.util.find_library("m"))):
        try:
            libm = ctypes.CDLL(name)
            powf_, expf_ = libm.powf, libm.expf
        except (OSError, AttributeError):
            continue
        powf_.restype, powf_.argtypes = ctypes.c_float, [ctypes.c_float] * 2
        expf_.restype, expf_.argtypes = ctypes.c_float, [ctypes.c_float]
        return powf_, expf_
    return None


def powf(x: float, y: float) -> float:
    """C ``powf`` from the C library (hankai's float overload); falls back to f32(pow)."""
    fns = _libm()
    return f32(cpow(f32(x), f32(y))) if fns is None else float(fns[0](x, y))


def expf(x: float) -> float:
    """C ``expf`` from the C library (hankai's float overload); falls back to f32(exp)."""
    fns = _libm()
    return f32(cexp(f32(x))) if fns is None else float(fns[1](x))


def powf_ftz(x: float, y: float) -> float:
    """:func:`powf` in a flush-to-zero build; a rounded ±FLT_MIN is kept only when the
    double ``pow`` is at least ``FTZ_LIMIT``."""
    v = powf(x, y)
    if not abs(v) <= FLT_MIN:  # larger, or NaN
        return v
    if abs(v) < FLT_MIN or abs(cpow(x, y)) < FTZ_LIMIT:
        return math.copysign(0.0, v)
    return v


def lr_pow(p: Params, x: float, exact: bool, flush: bool) -> float:
    """``lr * pow(x, power)`` rounded: hankai's C++ ``std::pow`` on floats is ``powf``."""
    r = rounding(exact, flush)
    if p.fork == FORK_HANKAI and exact:
        return r(p.lr * (powf_ftz if flush else powf)(x, p.power))
    return r(p.lr * cpow(x, p.power))


def ctrunc_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero); ``b`` must not be 0."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def flushed(p: Params, scales: bool = True) -> Params:
    """``p`` as a flush-to-zero build reads it: float32 values below ``FLT_MIN`` are 0
    (``scales=False`` leaves the steps' scales to the steps table, which flushes them)."""
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
