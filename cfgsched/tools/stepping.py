"""What diff and plot's ``--vs torch`` share: a real torch scheduler stepped, the sample
of steps checked on long runs, errors in float32 ulps, one-line errors for code under test."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.errors import CfgError, NotExactError
from cfgsched.module_record import clip
from cfgsched.run import Run

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Steps per chunk when a torch scheduler is stepped.
CHUNK = 1 << 16
#: Up to this many steps a torch scheduler is stepped at every step, else at a sample.
EXHAUSTIVE_LIMIT = 2_000_000
#: The sample: the first steps, evenly spaced windows, and steps around each boundary.
SAMPLE_PREFIX = 10_000
SAMPLE_WINDOWS = 256
SAMPLE_WINDOW = 512
SAMPLE_HALO = 64

#: ``factory(optimizer, last_epoch)`` builds the scheduler under test; ``last_epoch``
#: None builds it as its users do, with the builder's own default.
Factory = Callable[[Any, "int | None"], Any]


def new_optimizer(lr: float, last_epoch: int = -1) -> Any:
    """A one-parameter SGD with group LR ``lr`` (``initial_lr`` set when resuming), set
    after construction: torch refuses a negative ``lr``, darknet does not."""
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    for g in opt.param_groups:
        g["lr"] = lr
        if last_epoch >= 0:
            g.setdefault("initial_lr", lr)
    return opt


def class_factory(t: Run) -> Factory:
    """Builds ``DarknetScheduler`` (what ``DarknetLR`` runs) for ``t``, by default at
    ``t``'s resume step."""
    from cfgsched.adapters.darknet_lr import DarknetScheduler

    def make(optimizer: Any, last_epoch: int | None) -> Any:
        at = t.start - 1 if last_epoch is None else last_epoch
        return DarknetScheduler(optimizer, t, last_epoch=at)

    return make


def torch_lrs(
    factory: Factory,
    lr: float,
    start: int,
    count: int,
    *,
    who: str = "scheduler",
    default: bool = False,
) -> Iterator[F64]:
    """Build at step ``start`` (``default``: at the builder's own default start) on
    :func:`new_optimizer` and yield ``param_groups[0]["lr"]`` of the next ``count`` steps,
    each followed by ``scheduler.step()`` (after one no-op ``optimizer.step()``, as in
    training), in chunks of at most :data:`CHUNK`. Its errors are one-line CfgErrors."""
    opt = new_optimizer(lr, -1 if default else start - 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step\(\)` before")
        how = "build_scheduler(optimizer" + (")" if default else ", last_epoch)")
        with user_code(who, how):
            step = factory(opt, None if default else start - 1).step
            opt.step()
        group = opt.param_groups[0]
        for done in range(0, count, CHUNK):
            buf: list[Any] = [0.0] * min(CHUNK, count - done)
            try:
                for j in range(len(buf)):
                    buf[j] = group["lr"]
                    step()
            except (CfgError, NotExactError):
                raise
            except (Exception, SystemExit) as exc:
                why = f"scheduler.step() failed at optimizer step {start + done + j}"
                raise CfgError(who, None, None, f"{why}: {describe(exc)}") from None
            yield _numbers(buf, who, start + done)


@contextlib.contextmanager
def user_code(who: str, what: str) -> Iterator[None]:
    """Errors of code under test (``sys.exit`` too) as a one-line CfgError naming ``who``."""
    try:
        yield
    except (CfgError, NotExactError):
        raise
    except (Exception, SystemExit) as exc:
        raise CfgError(who, None, None, f"{what} failed: {describe(exc)}") from None


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 200 characters."""
    if isinstance(exc, SystemExit):
        text = f"sys.exit({clip(exc.code)})"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _numbers(buf: list[Any], who: str, first: int) -> F64:
    """The LRs read from the optimizer as float64; anything but a real number is an error."""
    arr = np.asarray(buf)
    if arr.dtype.kind in "fiu":
        return arr.astype(np.float64)
    out = np.zeros(len(buf))
    for j, x in enumerate(buf):
        try:
            if isinstance(x, (bool, str, bytes)):
                raise TypeError
            out[j] = float(x)
        except Exception:  # a user object's __float__ may raise anything
            at = f"the optimizer's lr at step {first + j}"
            raise CfgError(
                who, None, None, f"{at} is {clip(x)}, not a number"
            ) from None
    return out


def sample_windows(n: int, around: Sequence[int]) -> list[tuple[int, int]]:
    """Merged ``[start, stop)`` windows of ``0 .. n - 1``: the first steps, the last window,
    evenly spaced windows and ±:data:`SAMPLE_HALO` around each of ``around``."""
    raw = [(0, min(SAMPLE_PREFIX, n)), (max(0, n - SAMPLE_WINDOW), n)]
    spaced = np.linspace(0, max(n - SAMPLE_WINDOW, 0), SAMPLE_WINDOWS).astype(np.int64)
    raw += [(s, min(s + SAMPLE_WINDOW, n)) for s in spaced.tolist()]
    raw += [(max(0, i - SAMPLE_HALO), min(n, i + SAMPLE_HALO + 1)) for i in around]
    return merged(raw)


def merged(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The non-empty ``[start, stop)`` windows sorted, touching or overlapping ones merged."""
    out: list[tuple[int, int]] = []
    for s, t in sorted(windows):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], t))
        elif t > s:
            out.append((s, t))
    return out


def _ordered(x: F32) -> I64:
    """float32 values as integers in the same order (adjacent floats differ by 1)."""
    i = x.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def errors(expected: F64, got: F64) -> tuple[F64, F64, F64]:
    """Absolute, relative (NaN = NaN) and float32 ulp error of ``got`` (rounded to float32
    as an optimizer on float32 parameters applies it; NaN = NaN, else inf)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        same = (expected == got) | (np.isnan(expected) & np.isnan(got))
        ab = np.abs(got - expected)
        ab = np.where(same, 0.0, np.where(np.isnan(ab), np.inf, ab))
        rel = np.where(ab == 0, 0.0, ab / np.abs(expected))
        rel = np.where(np.isnan(rel), np.inf, rel)
        e, g = expected.astype(np.float32), got.astype(np.float32)
        ulp = np.abs(_ordered(e) - _ordered(g)).astype(np.float64)
        en, gn = np.isnan(e), np.isnan(g)
        ulp = np.where(en | gn, np.where(en & gn, 0.0, np.inf), ulp)
        ulp = np.where(np.isinf(e) | np.isinf(g), np.where(e == g, 0.0, np.inf), ulp)
    return ab, rel, ulp
