"""numpy helpers that keep a vectorised policy bit-exact with its scalar formula: numpy's
``pow``/``exp``/``cos`` are within a few double ulps of C's, so :func:`finish` recomputes
with the scalar formula every element within 4096 double ulps of a float32 rounding
boundary or below float32's normal range (about 1e-5 of them)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.kernel.formulas import FORK_HANKAI, Params, cpow, powf, powf_ftz

F32 = np.float32
F64 = np.float64
I64 = np.int64
I64s = npt.NDArray[np.int64]
F32s = npt.NDArray[np.float32]
F64s = npt.NDArray[np.float64]
#: The scalar formula of the elements being evaluated (b -> float32 value).
Exact = Callable[[int], float]

_LOW29 = np.uint64((1 << 29) - 1)
_TOL = 1 << 12  # double ulps around a float32 rounding boundary that are recomputed
_MID_LO = np.uint64((1 << 28) - _TOL)
_MID_W = np.uint64(2 * _TOL)
_ABS = np.uint64(0x7FFFFFFFFFFFFFFF)
_SMALL = np.uint64(((1023 - 126) << 52) - 1)  # (2**-126 as double bits) - 1


def to_f32(b: I64s) -> F32s:
    """``f32(float(b))`` as the kernel computes it (via double for b >= 2**53)."""
    if b.size and int(b.max()) >= 1 << 53:
        return b.astype(F64).astype(F32)
    return b.astype(F32)


def near_boundary(z: F64s) -> npt.NDArray[np.bool_]:
    """Elements of ``z`` within ``_TOL`` double ulps of a float32 rounding boundary, and
    non-zero values below float32's normal range."""
    bits = z.view(np.uint64)
    t = bits & _LOW29
    t -= _MID_LO
    flag = t <= _MID_W
    np.bitwise_and(bits, _ABS, out=t)
    t -= np.uint64(1)  # zero wraps around to the top
    flag |= t < _SMALL
    return flag


def per_value(fn: Callable[[Any], float], x: npt.NDArray[Any]) -> F64s:
    """``fn`` over the distinct values of the 1-d ``x``, in ``x``'s order."""
    uniq, inv = np.unique(x, return_inverse=True)
    return np.array([fn(v) for v in uniq.tolist()], dtype=F64)[inv.reshape(-1)]


def finish(b: I64s, z: F64s, check: bool, fn: Exact, abs_err: float = 0.0) -> F32s:
    """``z`` rounded to float32, doubtful elements recomputed by ``fn``; ``abs_err`` > 0:
    the error is at most ``abs_err * 2**-50`` and ``|z| < abs_err * 2**-8`` is redone."""
    with np.errstate(over="ignore"):
        out = z.astype(F32)
    if check:
        flag = near_boundary(z)
        if abs_err > 0:
            flag |= np.abs(z) < abs_err * 2.0**-8
        idx = np.flatnonzero(flag)
        if idx.size:
            out[idx] = per_value(fn, b[idx])
    return out


def ctypes_many(fn: Callable[..., float], x: F32s, *extra: float) -> F32s:
    """``fn(x, *extra)`` (a kernel ``powf``/``expf``) over the distinct values of ``x``."""
    uniq, inv = np.unique(x.view(np.uint32), return_inverse=True)
    vals = np.array([fn(v, *extra) for v in uniq.view(F32).tolist()], dtype=F64)
    return vals.astype(F32)[inv.reshape(-1)]


def lr_base_pow(lr: float, base: float, e: I64s, fn: Exact) -> F32s:
    """``f32(lr * pow(base, e))`` for integer ``e``; unusual bases go through C's ``pow``."""
    x = e.astype(F64)
    with np.errstate(all="ignore"):
        if math.isfinite(base) and base > 0:
            return finish(e, lr * np.power(base, x), True, fn)
        return finish(e, lr * per_value(lambda v: cpow(base, v), x), True, fn)


def lr_pow(p: Params, b: I64s, base: F32s, flush: bool, fn: Exact) -> F32s:
    """``f32(lr * pow(base, power))``: double ``pow``, or hankai's ``powf``."""
    if p.fork == FORK_HANKAI:
        y = ctypes_many(powf_ftz if flush else powf, base, p.power)
        with np.errstate(all="ignore"):
            return (p.lr * y.astype(F64)).astype(F32)
    x, power = base.astype(F64), p.power
    with np.errstate(all="ignore"):
        if power in (1.0, 2.0):  # exact in double (a float32 squared too)
            return finish(b, p.lr * (x if power == 1.0 else x * x), False, fn)
        y64: F64s = np.power(x, power)
        # numpy's special cases are not all C99's (pow(-inf, 0.5) is +inf in C): use C's
        special = np.flatnonzero(~np.isfinite(x) | (x == 0))
        if special.size:
            y64[special] = per_value(lambda v: cpow(v, power), x[special])
        return finish(b, p.lr * y64, True, fn)
