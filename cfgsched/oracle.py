"""darknet's learning rate over numpy arrays of batch numbers, bit for bit the scalar
kernel's (:func:`cfgsched.policies.rate`): the policies' numpy formulas recompute where
numpy's ``pow``/``exp``/``cos`` could round differently (:mod:`cfgsched.kernel.vector`);
NaN is x86's default NaN; with a NaN parameter, and at the flush-to-zero edge, the
scalar kernel decides. Arrays go in chunks of ``_CHUNK`` values: memory is O(len(b))."""

from __future__ import annotations

import math
from typing import cast, overload

import numpy as np
import numpy.typing as npt

from cfgsched.kernel.formulas import FLT_MIN, FORK_PJREDDIE, MAX_BATCH, Params, flushed
from cfgsched.kernel.vector import F32, I64, F32s, I64s, per_value
from cfgsched.options import default_flush
from cfgsched.policies import burn_in, module, rate
from cfgsched.schedule import NetSchedule

__all__ = ["darknet_lr", "darknet_lr_scalar", "params_lr"]

#: float32 bit pattern of the kernel's NaN (x86 default NaN).
_NAN_BITS = np.uint32(0xFFC00000)
#: Batch numbers evaluated at a time (keeps the intermediate arrays in cache).
_CHUNK = 1 << 14


def darknet_lr_scalar(
    schedule: NetSchedule, b: int, *, seed: int = 0, flush: bool | None = None
) -> float:
    """darknet's learning rate at batch ``b`` (``b >= 0``) as a Python float (float32 value);
    ``seed`` drives ``random``, ``flush`` as in :func:`darknet_lr`."""
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
        raise TypeError(f"batch number must be an integer, got {b!r}")
    if not 0 <= int(b) <= MAX_BATCH:
        raise ValueError(f"batch number must be in [0, 2**63), got {int(b)}")
    fl = default_flush(schedule.fork) if flush is None else flush
    p = schedule.kernel_params(seed)
    return rate(flushed(p, scales=False) if fl else p, int(b), True, fl)


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
) -> F32s: ...


def darknet_lr(
    schedule: NetSchedule,
    b: int | npt.NDArray[np.integer],
    *,
    seed: int = 0,
    flush: bool | None = None,
) -> np.float32 | F32s:
    """darknet's ``get_current_rate()`` at batch number(s) ``b`` (int or integer array in
    ``[0, 2**63)``) as float32; update k uses ``b = k``. ``flush``: a release build's
    flush-to-zero (None: :func:`cfgsched.options.default_flush`). ``random`` uses
    cfgsched's seeded draws (``seed``), not darknet's time-seeded ``rand()``."""
    if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
        return F32(darknet_lr_scalar(schedule, int(b), seed=seed, flush=flush))
    arr = np.asarray(b)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"batch numbers must be integers, got dtype {arr.dtype}")
    if arr.ndim == 0:
        return F32(darknet_lr_scalar(schedule, int(arr), seed=seed, flush=flush))
    fl = default_flush(schedule.fork) if flush is None else flush
    return cast(F32s, params_lr(schedule.kernel_params(seed), arr, flush=fl))


def params_lr(
    p: Params, b: npt.NDArray[np.integer], *, exact: bool = True, flush: bool = False
) -> F32s | npt.NDArray[np.float64]:
    """The kernel's ``rate(p, b, exact, flush)`` over batches ``b``: float32 (``exact``)
    or float64 (the double formulas); ``p`` is flushed here when ``flush``."""
    flat = _as_int64(np.asarray(b).reshape(-1))
    if not exact:
        return per_value(lambda x: rate(p, x, False), flat).reshape(np.shape(b))
    if flush:
        p = flushed(p, scales=False)  # the steps table flushes the scales
    out = np.empty(flat.size, dtype=F32)
    for i in range(0, flat.size, _CHUNK):
        out[i : i + _CHUNK] = _rate(p, flat[i : i + _CHUNK], flush)
    return out.reshape(np.shape(b))


def _as_int64(a: npt.NDArray[np.integer]) -> I64s:
    if a.size == 0:
        return a.astype(I64)
    if a.dtype == np.uint64 and int(a.max()) > MAX_BATCH:
        raise ValueError(f"batch numbers must be in [0, 2**63), got {int(a.max())}")
    out = a.astype(I64, copy=False)
    if np.issubdtype(a.dtype, np.signedinteger) and int(out.min()) < 0:
        raise ValueError(f"batch numbers must be >= 0, got {int(out.min())}")
    return out


def _rate(p: Params, b: I64s, flush: bool) -> F32s:
    """The burn-in and the policy's numpy formulas, then NaN and flush-to-zero fixed."""
    # pjreddie compares b < burn_in unsigned: a negative burn_in never ends
    burn = b < (p.burn_in % 2**64 if p.fork == FORK_PJREDDIE else p.burn_in)
    if burn.any():
        out = np.empty(b.shape, dtype=F32)
        out[burn] = burn_in.rates(p, b[burn], flush)
        if not burn.all():
            out[~burn] = module(p.policy).rates(p, b[~burn], flush)
    else:
        out = module(p.policy).rates(p, b, flush)
    nan = np.flatnonzero(np.isnan(out))
    if nan.size:
        if any(
            math.isnan(v)
            for v in (p.lr, p.power, p.scale, p.gamma, p.lr_min, *p.scales)
        ):
            out[nan] = per_value(lambda x: rate(p, x, True, flush), b[nan])
        else:
            out.view(np.uint32)[nan] = _NAN_BITS
    if flush:  # below FLT_MIN is ±0; a rounded ±FLT_MIN may come from below FTZ_LIMIT
        a = np.abs(out)
        tiny = np.flatnonzero(a < F32(FLT_MIN))
        out[tiny] = np.copysign(F32(0), out[tiny])
        edge = np.flatnonzero(a == F32(FLT_MIN))
        if edge.size:
            out[edge] = per_value(lambda x: rate(p, x, True, True), b[edge])
    return out
