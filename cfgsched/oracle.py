"""The reference darknet learning rate, vectorized over numpy arrays of batch numbers.

:func:`darknet_lr` equals :func:`cfgsched.kernel.formulas.rate` (the scalar formulas, checked
bit for bit against darknet's own C code) for every batch number, every fork and every policy.

How it stays exact although numpy's ``pow``/``exp``/``cos`` are not the C library's:

* Every step that is only float32/float64 arithmetic (``+ - * /``, casts) is IEEE-exact in
  numpy, and float32 ``+ - * /`` give the same value as the C code's double operation
  rounded to float32 (double has more than ``2*24 + 2`` bits).
* A transcendental result ``z`` (double, before its final rounding to float32) is only an
  estimate within a few double ulps of the C value. It rounds to the same float32 unless it
  lies that close to a float32 rounding boundary. :func:`_near_boundary` flags every ``z``
  within 4096 double ulps (2**-40 relative) of a boundary or below the float32 normal
  range (sgdr, whose cos error is absolute, also flags ``|z|`` tiny next to the
  amplitude); flagged elements (about 1e-5 of them) are recomputed by the scalar kernel,
  which calls the C library through Python's ``math`` module. Zero, infinite and NaN
  arguments of ``pow`` use C's ``pow`` (numpy's special cases differ from C99).
* hankai's float ``powf``/``expf`` are called through the kernel's ``ctypes`` bindings,
  once per distinct argument: hankai poly and sigmoid cost about 0.5-1 µs per distinct
  batch number (burn-in: at most ``burn_in`` values); its other policies are as fast as
  the other forks'.
* Flush-to-zero (release builds): the intermediate roundings that can fall below float32's
  normal range (the steps' running products, sgdr's ``lr - lr_min``, hankai's ``powf``) are
  flushed as the kernel flushes them, the final rounding by :func:`_flush_tiny`.
* The steps policy searches the kernel's :func:`~cfgsched.kernel.formulas.steps_table`
  (``np.searchsorted``): O(log len(steps)) per batch.
* NaN: with NaN-free parameters every NaN the C code produces is x86's default NaN (sign
  bit set, ``0xffc00000`` as float32); NaN results are set to it. With a NaN parameter the
  NaN elements are recomputed by the scalar kernel.

Arrays are processed in chunks of ``_CHUNK`` values so temporaries stay small (large fresh
numpy temporaries cost page faults); memory is O(len(b)). Measured for 10,000,000
consecutive batches on a shared 2-core machine: steps and poly 5-8 ns per value,
exp/sigmoid about 10 ns, sgdr about 20 ns.
"""

from __future__ import annotations

import math
from array import array
from typing import overload

import numpy as np
import numpy.typing as npt

from cfgsched.kernel import formulas as _kernel
from cfgsched.options import default_flush
from cfgsched.schedule import NetSchedule

__all__ = ["darknet_lr", "darknet_lr_scalar", "params_lr"]

_F32 = np.float32
_F64 = np.float64
_I64 = np.int64
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1
#: float32 bit pattern of the kernel's NaN (x86 default NaN).
_NAN_BITS = np.uint32(0xFFC00000)
_LOW29 = np.uint64((1 << 29) - 1)
_TOL = 1 << 12  # double ulps around a float32 rounding boundary that are recomputed
_MID_LO = np.uint64((1 << 28) - _TOL)
_MID_W = np.uint64(2 * _TOL)
_ABS = np.uint64(0x7FFFFFFFFFFFFFFF)
_SMALL = np.uint64(((1023 - 126) << 52) - 1)  # (2**-126 as double bits) - 1
#: Batch numbers evaluated at a time (keeps the intermediate arrays in cache).
_CHUNK = 1 << 14


def darknet_lr_scalar(
    schedule: NetSchedule, b: int, *, seed: int = 0, flush: bool | None = None
) -> float:
    """darknet's learning rate at batch ``b`` (``b >= 0``) as a Python float (float32 value).

    A thin wrapper over :func:`cfgsched.kernel.formulas.rate`; ``seed`` drives ``random``,
    ``flush`` as in :func:`darknet_lr`.
    """
    b = _check_scalar(b)
    fl = _flush_of(schedule, flush)
    p = schedule.kernel_params(seed)
    return _kernel.rate(_kernel.flushed(p, scales=False) if fl else p, b, True, fl)


@overload
def darknet_lr(
    schedule: NetSchedule, b: int, *, seed: int = 0, flush: bool | None = None
) -> np.float32: ...
@overload
def darknet_lr(
    schedule: NetSchedule,
    b: npt.NDArray[np.integer],
    *,
    seed: int = 0,
    flush: bool | None = None,
) -> npt.NDArray[np.float32]: ...


def darknet_lr(
    schedule: NetSchedule,
    b: int | npt.NDArray[np.integer],
    *,
    seed: int = 0,
    flush: bool | None = None,
) -> np.float32 | npt.NDArray[np.float32]:
    """darknet's ``get_current_rate()`` at batch number(s) ``b``, as float32.

    ``b`` is an int (gives an ``np.float32``) or an integer array of any shape (gives a
    float32 array of that shape); every value must be in ``[0, 2**63)``. The result equals
    :func:`cfgsched.kernel.formulas.rate` bit for bit, NaN and infinities included. In a single-GPU
    run the k-th weight update (k = 1, 2, ...) uses ``b = k``.

    ``flush``: a release build's flush-to-zero (rates below float32's normal range are 0);
    None is the fork's default release build (:func:`cfgsched.options.default_flush`:
    alexeyab and pjreddie flush, hankai does not).

    ``random`` policy: the draw for batch ``b`` is the kernel's counter-based
    ``uniform(seed, b)``, so results are reproducible; darknet's own draws (``rand()``
    seeded by time) are not reproducible by anyone.
    """
    if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
        return _F32(darknet_lr_scalar(schedule, int(b), seed=seed, flush=flush))
    arr = np.asarray(b)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"batch numbers must be integers, got dtype {arr.dtype}")
    if arr.ndim == 0:
        return _F32(darknet_lr_scalar(schedule, int(arr), seed=seed, flush=flush))
    flat = _as_int64(arr.reshape(-1))
    p = schedule.kernel_params(seed)
    return _chunked(p, flat, _flush_of(schedule, flush)).reshape(arr.shape)


def _flush_of(schedule: NetSchedule, flush: bool | None) -> bool:
    """``flush``, or the default release build of the schedule's fork when None."""
    return default_flush(schedule.fork) if flush is None else flush


def _chunked(
    p: _kernel.Params, flat: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    """:func:`_rate` over ``flat`` in chunks of ``_CHUNK`` (``p`` flushed here if needed)."""
    if flush:
        p = _kernel.flushed(p, scales=False)  # the steps table flushes the scales
    if flat.size <= _CHUNK:
        return _rate(p, flat, flush)
    out = np.empty(flat.size, dtype=_F32)
    for i in range(0, flat.size, _CHUNK):
        out[i : i + _CHUNK] = _rate(p, flat[i : i + _CHUNK], flush)
    return out


# --------------------------------------------------------------------------- helpers


def _check_scalar(b: int) -> int:
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
        raise TypeError(f"batch number must be an integer, got {b!r}")
    b = int(b)
    if b < 0 or b > _I64_MAX:
        raise ValueError(f"batch number must be in [0, 2**63), got {b}")
    return b


def _as_int64(a: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    if a.size == 0:
        return a.astype(_I64)
    if a.dtype == np.uint64 and int(a.max()) > _I64_MAX:
        raise ValueError(f"batch numbers must be in [0, 2**63), got {int(a.max())}")
    out = a.astype(_I64, copy=False)
    if np.issubdtype(a.dtype, np.signedinteger) and int(out.min()) < 0:
        raise ValueError(f"batch numbers must be >= 0, got {int(out.min())}")
    return out


def _to_f32(b: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """``f32(float(b))`` as the kernel computes it (via double for b >= 2**24)."""
    if b.size and int(b.max()) >= 1 << 53:
        return b.astype(_F64).astype(_F32)
    return b.astype(_F32)


def _near_boundary(z: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Elements of ``z`` whose float32 rounding a few ulps of error could change.

    True within ``_TOL`` double ulps of a float32 rounding boundary (low 29 mantissa bits
    near ``2**28``) and for non-zero values below the float32 normal range.
    """
    bits = z.view(np.uint64)
    t = bits & _LOW29
    t -= _MID_LO
    flag = t <= _MID_W
    np.bitwise_and(bits, _ABS, out=t)
    t -= np.uint64(1)  # zero wraps around to the top
    flag |= t < _SMALL  # 0 < |z| < 2**-126 (above 2**128 both round to inf)
    return flag


def _finish(
    p: _kernel.Params,
    b: npt.NDArray[np.int64],
    z: npt.NDArray[np.float64],
    check: bool,
    flush: bool,
    abs_err: float = 0.0,
) -> npt.NDArray[np.float32]:
    """Round the double estimate ``z`` to float32, recomputing doubtful elements exactly.

    ``abs_err`` (> 0): the estimate's error is absolute, at most ``abs_err * 2**-50``; the
    4096-ulp window (at least ``|z| * 2**-41``) covers it when ``|z| >= abs_err * 2**-9``,
    so every element with ``|z| < abs_err * 2**-8`` is recomputed too.
    """
    with np.errstate(over="ignore"):
        out = z.astype(_F32)
    if check:
        flag = _near_boundary(z)
        if abs_err > 0:
            flag |= np.abs(z) < abs_err * 2.0**-8
        idx = np.flatnonzero(flag)
        if idx.size:
            out[idx] = _scalar_many(p, b[idx], flush)
    return out


def _scalar_many(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    """The scalar kernel over the distinct values of ``b``."""
    uniq, inv = np.unique(b, return_inverse=True)
    vals = [_kernel.rate(p, int(x), True, flush) for x in uniq.tolist()]
    return np.array(vals, dtype=_F64).astype(_F32)[inv.reshape(-1)]


def _flush_tiny(
    p: _kernel.Params, b: npt.NDArray[np.int64], out: npt.NDArray[np.float32]
) -> None:
    """Flush-to-zero of the final rounding, in place: below ``FLT_MIN`` is ±0; a rounded
    ±``FLT_MIN`` may come from below ``FTZ_LIMIT`` (flushed), so the kernel decides it."""
    a = np.abs(out)
    tiny = np.flatnonzero(a < _F32(_kernel.FLT_MIN))
    if tiny.size:
        out[tiny] = np.copysign(_F32(0), out[tiny])
    edge = np.flatnonzero(a == _F32(_kernel.FLT_MIN))
    if edge.size:
        out[edge] = _scalar_many(p, b[edge], True)


def _ctypes_many(
    fn: object, x: npt.NDArray[np.float32], *extra: float
) -> npt.NDArray[np.float32]:
    """``fn(x, *extra)`` (a kernel ``powf``/``expf``) over the distinct values of ``x``."""
    uniq, inv = np.unique(x.view(np.uint32), return_inverse=True)
    args = uniq.view(_F32).tolist()
    vals = np.array([fn(v, *extra) for v in args], dtype=_F64)  # type: ignore[operator]
    return vals.astype(_F32)[inv.reshape(-1)]


def _pow_estimate(
    x: npt.NDArray[np.float64], power: float
) -> tuple[npt.NDArray[np.float64], bool]:
    """``pow(x, power)`` in double and whether it may differ from C's (False: exact)."""
    if power == 1.0:
        return x.copy(), False
    if power == 2.0:
        return x * x, False  # a float32 squared is exact in double
    if power == 4.0:
        x2 = x * x
        return x2 * x2, True
    with np.errstate(all="ignore"):
        y = np.power(x, power)
    # numpy's special cases are not all C99's (pow(-inf, 0.5) is +inf in C): use C's
    special = np.flatnonzero(~np.isfinite(x) | (x == 0))
    if special.size:
        uniq, inv = np.unique(x[special], return_inverse=True)
        vals = [_kernel.cpow(v, power) for v in uniq.tolist()]
        y[special] = np.array(vals, dtype=_F64)[inv.reshape(-1)]
    return y, True


def _scalar_base_pow(
    base: float, e: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``pow(base, e)`` for integer-valued ``e``; unusual bases go through C's ``pow``."""
    if math.isfinite(base) and base > 0:
        with np.errstate(all="ignore"):
            return np.power(base, e)
    uniq, inv = np.unique(e, return_inverse=True)
    vals = [_kernel.cpow(base, v) for v in uniq.tolist()]
    return np.array(vals, dtype=_F64)[inv.reshape(-1)]


def _has_nan_param(p: _kernel.Params) -> bool:
    vals = (p.lr, p.power, p.scale, p.gamma, p.lr_min, *p.scales)
    return any(math.isnan(v) for v in vals)


# --------------------------------------------------------------------------- policies


def _rate(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    pj = p.fork == _kernel.FORK_PJREDDIE
    out = np.empty(b.shape, dtype=_F32)
    if b.size == 0:
        return out
    if pj and p.burn_in < 0:
        burn_mask = np.ones(b.shape, dtype=np.bool_)
    else:
        burn_mask = b < p.burn_in
    if burn_mask.any():
        bi = np.flatnonzero(burn_mask)
        rest = np.flatnonzero(~burn_mask)
        out[bi] = _burn_in(p, b[bi], flush)
        if rest.size:
            out[rest] = _policy(p, b[rest], flush)
    else:
        out = _policy(p, b, flush)
    nan = np.isnan(out)
    if nan.any():
        idx = np.flatnonzero(nan)
        if _has_nan_param(p):
            out[idx] = _scalar_many(p, b[idx], flush)
        else:
            out.view(np.uint32)[idx] = _NAN_BITS
    if flush:
        _flush_tiny(p, b, out)
    return out


def _lr_times_pow(
    p: _kernel.Params,
    b: npt.NDArray[np.int64],
    base: npt.NDArray[np.float32],
    flush: bool,
) -> npt.NDArray[np.float32]:
    """``f32(lr * pow(base, power))``: double ``pow``, or hankai's ``powf``."""
    if p.fork == _kernel.FORK_HANKAI:
        pw = _kernel.powf_ftz if flush else _kernel.powf
        y = _ctypes_many(pw, base, p.power)
        with np.errstate(all="ignore"):
            return (p.lr * y.astype(_F64)).astype(_F32)
    y64, check = _pow_estimate(base.astype(_F64), p.power)
    with np.errstate(all="ignore"):
        z = p.lr * y64
    return _finish(p, b, z, check, flush)


def _burn_in(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    with np.errstate(all="ignore"):
        x = _to_f32(b) / _F32(_kernel.f32(float(p.burn_in)))
    return _lr_times_pow(p, b, x, flush)


def _policy(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    """The policy's rate after the burn-in (intermediate roundings flushed if ``flush``;
    the final rounding is flushed by :func:`_rate`)."""
    pol = p.policy
    if pol == _kernel.STEP:
        return _step(p, b)
    if pol == _kernel.STEPS:
        return _steps(p, b, flush)
    if pol == _kernel.EXP:
        with np.errstate(all="ignore"):
            z = p.lr * _scalar_base_pow(p.gamma, b.astype(_F64))
        return _finish(p, b, z, True, flush)
    if pol == _kernel.POLY:
        return _poly(p, b, flush)
    if pol == _kernel.SIG:
        return _sigmoid(p, b, flush)
    if pol == _kernel.RANDOM:
        return _random(p, b, flush)
    if pol == _kernel.SGDR:
        return _sgdr(p, b, flush)
    return np.full(b.shape, p.lr, dtype=_F32)


def _step(p: _kernel.Params, b: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    step = p.step % _U64 if p.fork == _kernel.FORK_PJREDDIE else p.step
    if step == 0:
        raise ZeroDivisionError(
            "step=0: darknet divides by zero (SIGFPE) for policy step"
        )
    if step > _I64_MAX:
        k = np.zeros(b.shape, dtype=_I64)
    elif step > 0:
        k = b // step
    else:
        k = -(b // -step)
    kmin, kmax = int(k.min()), int(k.max())
    if kmax - kmin < k.size:
        ks = np.arange(kmin, kmax + 1, dtype=_I64)  # a table over every k in range
        idx = k - kmin
    else:
        ks, idx = np.unique(k, return_inverse=True)
    with np.errstate(all="ignore"):
        z = p.lr * _scalar_base_pow(p.scale, ks.astype(_F64))
        vals = z.astype(_F32)
    for i in np.flatnonzero(
        _near_boundary(z)
    ).tolist():  # the kernel's formula, exactly
        vals[i] = _kernel.f32(p.lr * _kernel.cpow(p.scale, float(ks[i])))
    return vals[idx.reshape(-1)]


def _steps(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    """The kernel's steps table (running maximum, prefix products) searched per batch."""
    table = _kernel.steps_table(p, 2 if flush else 1)
    rates = np.frombuffer(table.rates, dtype=_F64)
    if isinstance(table.bounds, array):
        bounds = np.frombuffer(table.bounds, dtype=_I64)
    else:  # steps beyond int64: clip to [-2**63, 2**63 - 1]
        lo, hi = -(1 << 63), _I64_MAX
        clipped = [min(max(x, lo), hi) for x in table.bounds]
        if clipped[-1] == _I64_MAX and int(b.max()) == _I64_MAX:
            return _scalar_many(p, b, flush)  # a step clipped to b itself
        bounds = np.array(clipped, dtype=_I64)
    # search only the bounds between b's extremes (cache-friendly for a chunk of a run)
    lo = int(np.searchsorted(bounds, b.min(), side="right"))
    hi = int(np.searchsorted(bounds, b.max(), side="right"))
    if lo == hi:  # the whole chunk on one plateau
        return np.full(b.shape, rates[lo], dtype=_F32)
    if hi - lo <= 8:  # a few boundaries: one comparison each beats a binary search
        count = np.full(b.shape, lo, dtype=np.intp)
        for bound in bounds[lo:hi].tolist():
            count += b >= bound
    else:
        count = np.searchsorted(bounds[lo:hi], b, side="right") + lo
    return rates[count].astype(_F32)


def _poly(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    with np.errstate(all="ignore"):
        base = _F32(1.0) - _to_f32(b) / _F32(_kernel.f32(float(p.max_batches)))
    return _lr_times_pow(p, b, base, flush)


def _sigmoid(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    if p.fork == _kernel.FORK_PJREDDIE:
        # size_t arithmetic: b - step wraps modulo 2**64 when b < step
        step = p.step % _U64
        if step > _I64_MAX:
            d = b.astype(_F64) + float(_U64 - step)  # both terms exact
        else:
            diff = b - step
            d = diff.astype(_F64)
            wrap = diff < 0
            d[wrap] = d[wrap] + float(_U64)
    else:
        d = (b - p.step).astype(_F64)
    with np.errstate(all="ignore"):
        t = (p.gamma * d.astype(_F32).astype(_F64)).astype(_F32)
        if p.fork == _kernel.FORK_HANKAI:
            e = _ctypes_many(_kernel.expf, t).astype(_F64)
            check = False
        else:
            e = np.exp(t.astype(_F64))
            check = True
        z = p.lr * (1.0 / (1.0 + e))
    return _finish(p, b, z, check, flush)


def _uniform(seed: int, b: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The kernel's ``uniform(seed, b)`` (splitmix64) vectorized in uint64."""
    m = (1 << 64) - 1
    z = b.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + 1) & m)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(40)).astype(_F64) / float(1 << 24)


def _random(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    return _lr_times_pow(p, b, _uniform(p.seed, b).astype(_F32), flush)


def _sgdr(
    p: _kernel.Params, b: npt.NDArray[np.int64], flush: bool
) -> npt.NDArray[np.float32]:
    cycle, mult = p.sgdr_cycle, p.sgdr_mult
    bmax = int(b.max())
    if cycle == 0 and bmax > 0:
        raise ValueError("sgdr_cycle=0: darknet loops forever in its cycle search")
    if mult == 1:
        if cycle > 0:
            k = np.maximum(0, (b - 1) // cycle)
            start = k * cycle
        else:
            start = np.zeros(b.shape, dtype=_I64)
        cyc = np.full(b.shape, float(cycle), dtype=_F64)
    else:
        starts, cycles, ends = [0], [cycle], []
        s, c = 0, cycle
        while c > 0 and s + c < bmax:
            ends.append(s + c)
            s += c
            c *= mult
            starts.append(s)
            cycles.append(c)
        j = np.searchsorted(np.array(ends, dtype=_I64), b, side="left")
        start = np.array(starts, dtype=_I64)[j]
        cyc = np.array([float(x) for x in cycles], dtype=_F64)[j]
    pi = math.pi if p.fork == _kernel.FORK_HANKAI else _kernel.PI_ALEXEYAB
    amp = 0.5 * (_kernel.f32_ftz if flush else _kernel.f32)(p.lr - p.lr_min)
    if np.any((cyc == 0) & (b != start)):
        raise ValueError(
            "sgdr: a cycle of length 0 (sgdr_mult <= 0): darknet loops forever"
        )
    with np.errstate(all="ignore"):
        theta = _to_f32(b - start).astype(_F64) * pi / cyc
        z = p.lr_min + amp * (1.0 + np.cos(theta))
    # numpy's and C's cos (|cos| <= 1) differ by a few 2**-53, 1 + cos adds a rounding
    # each: z differs by less than |amp| * 2**-50 (plus ulps of z)
    return _finish(p, b, z, True, flush, abs_err=abs(amp))


def params_lr(
    p: _kernel.Params,
    b: npt.NDArray[np.int64],
    *,
    exact: bool = True,
    flush: bool = False,
) -> npt.NDArray[np.float32] | npt.NDArray[np.float64]:
    """The kernel's ``rate(p, b, exact, flush)`` over int64 batches ``b`` (vectorized).

    float32 (``exact``) or float64 (the double formulas, per distinct batch number).
    ``flush``: a release build's flush-to-zero, every float32 rounding flushed as the
    kernel's (``p`` need not be flushed: its float32 inputs are read as the build reads them).
    """
    flat = _as_int64(np.asarray(b).reshape(-1))
    if not exact:
        uniq, inv = np.unique(flat, return_inverse=True)
        vals = [_kernel.rate(p, int(x), False) for x in uniq.tolist()]
        return np.asarray(vals, dtype=_F64)[inv.reshape(-1)].reshape(np.shape(b))
    return _chunked(p, flat, flush).reshape(np.shape(b))
