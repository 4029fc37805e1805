"""Honest approximations: darknet's schedule in a framework's own built-in schedulers.

:func:`fit_mmengine` picks MMEngine's built-in LR schedulers (iteration based) and
:func:`fit_ultralytics` picks Ultralytics' hyperparameters (``lr0``, ``lrf``, ``cos_lr``,
``warmup_epochs``, …) that come closest to darknet's schedule under a translation. Each
returns a :class:`Fit`: the configuration, the framework's LR at every optimizer step
(computed by a numpy reimplementation of the framework's own arithmetic:
:func:`mmengine_lr`, :func:`ultralytics_lr`), darknet's LR at the same steps (the oracle) and
the measured error. An approximation is never called exact: :meth:`Fit.comment` states the
maximum and mean relative error and the worst step.

Pinned framework facts (read from their sources):

* MMEngine 0.10.7, ``mmengine/optim/scheduler/param_scheduler.py``: every scheduler steps
  once at construction and once per iteration (``ParamSchedulerHook.after_train_iter``);
  it acts while ``begin <= global_step < end`` with ``last_step = global_step - begin``
  and updates the group value in chainable form (``LinearLR``: × ``start_factor`` at
  last_step 0, then × ``1 + (e - s) / (T·s + (last_step - 1)·(e - s))`` with
  ``T = end - begin - 1``; ``MultiStepLR``: × ``gamma ** count`` at a milestone;
  ``ExponentialLR``: × ``gamma`` after last_step 0; ``PolyLR``:
  ``(lr - eta_min)·(1 - 1/(T - last_step + 1)) ** power + eta_min``; ``CosineRestartLR``:
  ``base·weight`` at a period start, else ``(1 + cos(π·s/P)) / (1 + cos(π·(s-1)/P))·(lr -
  eta_min) + eta_min``). Chained schedulers apply in list order, so multiplicative ones
  multiply. The LR of optimizer step ``i`` (0-based) is the value after ``i`` steps.
* Ultralytics 8.4.190, ``ultralytics/engine/trainer.py`` (``_build_train_pipeline``,
  ``_setup_scheduler``, ``_get_warmup_iterations``, ``_do_train``): ``accumulate =
  max(round(nbs / batch), 1)``; a LambdaLR sets ``lr0 · lf(epoch)`` at the start of every
  epoch (``lf`` linear ``max(1 - e/epochs, 0)·(1 - lrf) + lrf`` or ``one_cycle`` cosine);
  the first ``nw = round(min(warmup_epochs, epochs - 1)·nb)`` batches interpolate
  (``np.interp``) the LR from 0 (bias group: from ``warmup_bias_lr``) to that target and
  ``accumulate`` from 1 to its value; the optimizer steps when ``ni - last_opt_step >=
  accumulate``.

numpy only at import time: neither torch, MMEngine nor Ultralytics is imported.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import sgdr_ends, sgdr_hangs
from cfgsched.kernel.formulas import FORK_PJREDDIE, f32_decimal
from cfgsched.options import Options
from cfgsched.oracle import params_lr
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule, Policy
from cfgsched.tools.text import fmt

__all__ = [
    "MMENGINE_VERSION",
    "ULTRALYTICS_VERSION",
    "Fit",
    "Phase",
    "Report",
    "fit_mmengine",
    "fit_ultralytics",
    "measure",
    "mmengine_lr",
    "ultralytics_lr",
    "ultralytics_steps",
]

#: The versions whose arithmetic :func:`mmengine_lr` and :func:`ultralytics_lr` reproduce.
MMENGINE_VERSION = "0.10.7"
ULTRALYTICS_VERSION = "8.4.190"
#: MMEngine's default ``end`` (``param_scheduler.INF``).
MMENGINE_INF = int(1e9)
#: Most milestones (``step`` policy) or cosine periods (``sgdr``) a fit may hold.
MAX_MILESTONES = 100_000
#: Most chained LinearLRs a burn-in ramp may use (their product gives integer powers).
MAX_RAMP_FACTORS = 8
#: Steps the grid searches evaluate at most (evenly spaced, weighted).
_SAMPLE = 8192
_ROWS = 1 << 15
#: Floor (relative to the peak LR) of the searches' log error.
_TINY = 1e-15

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Phase:
    """The error over one part of the run (steps ``first``..``last``, inclusive)."""

    label: str
    first: int
    last: int
    max_rel: float
    mean_rel: float


@dataclass(frozen=True)
class Report:
    """How far a framework's LR is from darknet's over a run of ``steps`` optimizer steps.

    Relative error ``|f - d| / |d|`` over the steps where darknet's LR ``d`` is non-zero
    and finite; ``zero_steps`` steps where it is 0 (b = 0, underflow) are left out, and at
    ``zero_mismatches`` of them the framework's LR ``f`` is not 0. ``worst_*`` describe the
    step with the largest relative error (-1 and NaN when no step counts).
    ``median_rel`` and ``within_10pct`` (the share of those steps within 10 %) say how
    typical the worst step is.
    """

    steps: int
    max_rel: float
    mean_rel: float
    median_rel: float
    within_10pct: float
    worst_step: int
    worst_batch: int
    worst_darknet: float
    worst_framework: float
    zero_steps: int
    zero_mismatches: int
    phases: tuple[Phase, ...]


def _rel_errors(f: F64, d: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
    ok = np.isfinite(d) & (d != 0)
    rel = np.zeros(f.shape, dtype=np.float64)
    with np.errstate(all="ignore"):
        rel[ok] = np.abs(f[ok] - d[ok]) / np.abs(d[ok])
    rel[ok & ~np.isfinite(f)] = np.inf
    return rel, ok


def measure(
    framework_lr: npt.ArrayLike,
    darknet_lr: npt.ArrayLike,
    batches: npt.ArrayLike,
    *,
    burn_in: int = 0,
) -> Report:
    """The :class:`Report` of ``framework_lr`` against ``darknet_lr`` (same steps).

    ``batches`` are darknet's batch numbers of the steps; with ``burn_in > 0`` the report
    splits the run into the burn-in (``b < burn_in``) and the rest.
    """
    f = np.asarray(framework_lr, dtype=np.float64)
    d = np.asarray(darknet_lr, dtype=np.float64)
    b = np.asarray(batches, dtype=np.int64)
    if not f.shape == d.shape == b.shape or f.ndim != 1:
        raise ValueError(
            "framework_lr, darknet_lr and batches must be equal 1-d arrays"
        )
    rel, ok = _rel_errors(f, d)
    zero = d == 0
    phases: list[Phase] = []
    if burn_in > 0:
        for label, mask in (("burn-in", b < burn_in), ("after burn-in", b >= burn_in)):
            idx = np.flatnonzero(mask)
            if idx.size:
                r, k = rel[idx], ok[idx]
                mx, mean = _stats(r, k)
                phases.append(Phase(label, int(idx[0]), int(idx[-1]), mx, mean))
    mx, mean = _stats(rel, ok)
    w = int(np.argmax(np.where(ok, rel, -1.0))) if ok.any() else -1
    return Report(
        steps=int(f.size),
        max_rel=mx,
        mean_rel=mean,
        median_rel=float(np.median(rel[ok])) if ok.any() else math.nan,
        within_10pct=float((rel[ok] <= 0.1).mean()) if ok.any() else math.nan,
        worst_step=w,
        worst_batch=int(b[w]) if w >= 0 else -1,
        worst_darknet=float(d[w]) if w >= 0 else math.nan,
        worst_framework=float(f[w]) if w >= 0 else math.nan,
        zero_steps=int(zero.sum()),
        zero_mismatches=int((zero & (f != 0)).sum()),
        phases=tuple(phases),
    )


def _stats(rel: F64, ok: npt.NDArray[np.bool_]) -> tuple[float, float]:
    if not ok.any():
        return math.nan, math.nan
    r = rel[ok]
    return float(r.max()), float(r.mean())


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _pct(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    v = x * 100
    return f"{v:.3g}%" if v >= 0.1 or v == 0 else f"{v:.2g}%"


@dataclass(frozen=True, eq=False)
class Fit:
    """A framework configuration that approximates darknet's schedule, and its error.

    ``schedulers``: MMEngine's ``param_scheduler`` list (plain dicts; empty for
    Ultralytics). ``optim_wrapper``: the MMEngine ``optim_wrapper`` whose ``lr`` the
    schedulers scale. ``hyp``: Ultralytics' train arguments (empty for MMEngine).
    ``batches``, ``framework_lr``, ``darknet_lr``: darknet's batch number, the framework's
    LR (its own arithmetic, reimplemented) and darknet's LR at every optimizer step.
    """

    framework: str
    schedulers: list[dict[str, Any]]
    optim_wrapper: dict[str, Any]
    hyp: dict[str, Any]
    batches: I64
    framework_lr: F64
    darknet_lr: F64
    report: Report
    notes: tuple[str, ...]

    @property
    def steps(self) -> int:
        """Optimizer steps in the compared run."""
        return self.report.steps

    def relative_error(self) -> F64:
        """``|f - d| / |d|`` at every step (NaN where darknet's LR is 0 or not finite)."""
        rel, ok = _rel_errors(self.framework_lr, self.darknet_lr)
        rel[~ok] = np.nan
        return rel

    def comment(self) -> list[str]:
        """Text lines stating the measured error (for the output file and stderr)."""
        r, name = self.report, self.framework
        if r.worst_step < 0:
            head = (
                f"approximation, not exact: no step of the {r.steps:,} has a non-zero "
                "darknet LR to compare with"
            )
        else:
            head = (
                f"approximation, not exact: max relative LR error {_pct(r.max_rel)} "
                f"(step {r.worst_step}, darknet b={r.worst_batch}: darknet "
                f"{fmt(r.worst_darknet)} vs {name} {fmt(r.worst_framework)}), "
                f"mean {_pct(r.mean_rel)} over {r.steps:,} steps"
            )
        lines = [head]
        if r.worst_step >= 0:
            lines.append(
                f"median relative error {_pct(r.median_rel)}; within 10% of darknet's "
                f"LR at {_pct(r.within_10pct)} of the steps"
            )
        if r.phases:
            lines.append(
                "; ".join(
                    f"{p.label} (steps {p.first}-{p.last}): max {_pct(p.max_rel)}, "
                    f"mean {_pct(p.mean_rel)}"
                    for p in r.phases
                )
            )
        if r.zero_steps:
            lines.append(
                f"{r.zero_steps:,} step(s) where darknet's LR is 0 left out of the "
                f"relative error; {_possessive(name)} LR is non-zero at "
                f"{r.zero_mismatches:,} of them"
            )
        return lines + list(self.notes)


# ----------------------------------------------------------------------------- run geometry


def _images_translation(schedule: NetSchedule, options: Options | None) -> Run:
    t = translate(schedule, options)
    if t.trace:
        raise ValueError(
            "approximations follow the images mapping: multigpu='trace' is not supported"
        )
    return t


def _run_notes(t: Run) -> list[str]:
    """What the translation changes that a framework configuration cannot hold."""
    if not t.start:
        return []
    return [
        f"the fit covers the run from step 0: resuming at step {t.start} restores the "
        "framework's own checkpoint (its scheduler state), not darknet's weights file"
    ]


def _first(t: Run, b: int) -> int:
    """The first optimizer step whose darknet batch is ``>= b``."""
    return t.first_step(b)


def _run_steps(t: Run, steps: int | None) -> int:
    """``steps``, or the optimizer steps of darknet's run (:attr:`Run.stop`)."""
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        return steps
    m = t.params.max_batches
    if m <= 0:
        raise ValueError("max_batches is 0: no run to fit (pass steps=N)")
    return t.stop


def _log_gap(f: F64, d: F64, tiny: float) -> F64:
    """``|log(f / d)|`` with both floored at ``tiny``: the searches' error measure
    (symmetric and scale-free, finite where darknet's LR is 0 or ~0)."""
    with np.errstate(all="ignore"):
        gap: F64 = np.abs(np.log(np.maximum(f, tiny)) - np.log(np.maximum(d, tiny)))
    return gap


def _sample(count: int, keep: npt.NDArray[np.bool_] | None = None) -> tuple[I64, F64]:
    """Step indices for a search and their weights (all ``keep`` steps plus an even
    sample of the others, weighted so that the weighted mean estimates the run's mean)."""
    idx = np.arange(count, dtype=np.int64)
    if count <= 2 * _SAMPLE:
        return idx, np.ones(count)
    kept = idx[keep] if keep is not None else idx[:0]
    rest = idx[~keep] if keep is not None else idx
    pick = rest[np.linspace(0, rest.size - 1, min(_SAMPLE, rest.size)).astype(np.int64)]
    wts = np.concatenate(
        [np.ones(kept.size), np.full(pick.size, rest.size / pick.size)]
    )
    return np.concatenate([kept, pick]), wts


# ----------------------------------------------------------------------------- MMEngine: simulation


def _bounds(cfg: Mapping[str, Any], n: int) -> tuple[int, int]:
    begin = int(cfg.get("begin", 0))
    end = int(cfg.get("end", MMENGINE_INF))
    if end <= begin:
        raise ValueError(f"{cfg['type']}: end must be > begin")
    return begin, min(end, n)


def _linear_column(cfg: Mapping[str, Any], n: int) -> F64:
    col = np.ones(n)
    begin, stop = _bounds(cfg, n)
    s, e = float(cfg["start_factor"]), float(cfg.get("end_factor", 1.0))
    total = int(cfg.get("end", MMENGINE_INF)) - begin - 1
    if begin < stop:
        col[begin] = s
        ls = np.arange(1, stop - begin, dtype=np.int64)
        with np.errstate(divide="raise"):
            col[begin + 1 : stop] = 1.0 + (e - s) / (total * s + (ls - 1) * (e - s))
    return col


def _multistep_column(cfg: Mapping[str, Any], n: int) -> F64:
    col = np.ones(n)
    begin, stop = _bounds(cfg, n)
    gamma = float(cfg.get("gamma", 0.1))
    for m, count in Counter(int(x) for x in cfg["milestones"]).items():
        if begin <= begin + m < stop:
            col[begin + m] = gamma**count
    return col


def _exponential_column(cfg: Mapping[str, Any], n: int) -> F64:
    col = np.ones(n)
    begin, stop = _bounds(cfg, n)
    col[begin + 1 : stop] = float(cfg["gamma"])
    return col


def _poly_column(cfg: Mapping[str, Any], n: int) -> F64:
    col = np.ones(n)
    begin, stop = _bounds(cfg, n)
    total = int(cfg.get("end", MMENGINE_INF)) - begin - 1
    power = float(cfg.get("power", 1.0))
    ls = np.arange(1, max(stop - begin, 1), dtype=np.int64)
    base = 1 - 1 / (total - ls + 1).astype(np.float64)
    # Python's float ** (C pow), as MMEngine computes it; numpy's SIMD pow may differ by 1 ulp
    col[begin + 1 : stop] = [x**power for x in base.tolist()]
    return col


_COLUMNS: dict[str, Callable[[Mapping[str, Any], int], F64]] = {
    "LinearLR": _linear_column,
    "MultiStepLR": _multistep_column,
    "ExponentialLR": _exponential_column,
    "PolyLR": _poly_column,
}


def _cosine_restart_op(
    cfg: Mapping[str, Any], base: float
) -> Callable[[float, int], float]:
    """CosineRestartLR's update of the group value at global step ``g``."""
    begin, end = int(cfg.get("begin", 0)), int(cfg.get("end", MMENGINE_INF))
    periods = [int(p) for p in cfg["periods"]]
    weights = [float(w) for w in cfg.get("restart_weights", (1,))]
    cum = [sum(periods[: i + 1]) for i in range(len(periods))]
    ratio = cfg.get("eta_min_ratio")
    eta_min = base * float(ratio) if ratio is not None else float(cfg["eta_min"])

    def op(x: float, g: int) -> float:
        if not begin <= g < end:
            return x
        ls = g - begin
        idx = next((i for i, c in enumerate(cum) if ls < c), None)
        if idx is None:
            return x
        step = ls - (cum[idx - 1] if idx else 0)
        if step == 0:
            return base * weights[idx]
        p = periods[idx]
        c = (1 + math.cos(math.pi * step / p)) / (
            1 + math.cos(math.pi * (step - 1) / p)
        )
        return c * (x - eta_min) + eta_min

    return op


def _poly_affine_op(cfg: Mapping[str, Any]) -> Callable[[float, int], float]:
    """PolyLR with ``eta_min != 0`` (not a plain product)."""
    begin, end = int(cfg.get("begin", 0)), int(cfg.get("end", MMENGINE_INF))
    total, power = end - begin - 1, float(cfg.get("power", 1.0))
    eta_min = float(cfg["eta_min"])

    def op(x: float, g: int) -> float:
        if not begin < g < end:
            return x
        ls = g - begin
        factor: float = (1 - 1 / (total - ls + 1)) ** power
        return (x - eta_min) * factor + eta_min

    return op


def mmengine_lr(
    schedulers: Sequence[Mapping[str, Any]], base_lr: float, steps: int
) -> F64:
    """The LR of optimizer steps ``0..steps-1`` under MMEngine's chained ``schedulers``.

    Reproduces MMEngine 0.10.7's own float operations in its order (construction step,
    then one step per iteration, schedulers in list order), so the values equal the real
    schedulers' up to the last bits of ``pow``/``cos``. Iteration-based only
    (``by_epoch=False``); types: LinearLR, MultiStepLR, ExponentialLR, PolyLR,
    CosineRestartLR.
    """
    cols: list[F64 | None] = []
    ops: list[Callable[[float, int], float] | None] = []
    for cfg in schedulers:
        kind = cfg.get("type")
        if cfg.get("by_epoch", True):
            raise ValueError(
                f"{kind}: only iteration-based schedulers (by_epoch=False)"
            )
        if kind == "CosineRestartLR":
            cols.append(None)
            ops.append(_cosine_restart_op(cfg, base_lr))
        elif kind == "PolyLR" and float(cfg.get("eta_min", 0.0)) != 0.0:
            cols.append(None)
            ops.append(_poly_affine_op(cfg))
        elif isinstance(kind, str) and kind in _COLUMNS:
            cols.append(_COLUMNS[kind](cfg, steps))
            ops.append(None)
        else:
            raise ValueError(f"unsupported MMEngine scheduler type {kind!r}")
    if any(op is not None for op in ops):
        return _walk(cols, ops, base_lr, steps)
    return _products([c for c in cols if c is not None], base_lr, steps)


def _products(cols: list[F64], base: float, n: int) -> F64:
    """Sequential products ``x *= col[g]`` row by row, in MMEngine's order."""
    out = np.full(n, base, dtype=np.float64)
    if not cols:
        return out
    m, x = len(cols), base
    for lo in range(0, n, _ROWS):
        hi = min(lo + _ROWS, n)
        block = np.stack([c[lo:hi] for c in cols], axis=1).reshape(-1)
        acc = np.multiply.accumulate(np.concatenate(([x], block)))
        out[lo:hi] = acc[m::m]
        x = float(out[hi - 1])
    return out


def _walk(
    cols: list[F64 | None],
    ops: list[Callable[[float, int], float] | None],
    base: float,
    n: int,
) -> F64:
    """Step by step (affine updates), in MMEngine's order."""
    out = np.empty(n, dtype=np.float64)
    lists = [c.tolist() if c is not None else None for c in cols]
    x = base
    for g in range(n):
        for col, op in zip(lists, ops, strict=True):
            if col is not None:
                x = x * col[g]
            elif op is not None:
                x = op(x, g)
        out[g] = x
    return out


# ----------------------------------------------------------------------------- MMEngine: fitting


@dataclass(frozen=True)
class _Ramp:
    """``count`` chained LinearLRs (start ``start``, end ``end``) and their search score."""

    count: int
    start: float
    end: int
    score: float
    formula: bool = False


def _ramp_values(k: I64, start: F64, end: int, count: int) -> F64:
    """LinearLR's closed form ``s + (1 - s)·min(k, T)/T`` (T = end - 1) to the ``count``."""
    frac = np.minimum(k, end - 1) / (end - 1)
    return (start[:, None] + (1 - start[:, None]) * frac[None, :]) ** count


def _ramp_grid(
    k: I64, target: F64, count: int, starts: F64, ends: I64
) -> tuple[float, float, int]:
    best = (math.inf, 1.0, 2)
    for e in ends.tolist():
        f = _ramp_values(k, starts, e, count)
        score = _log_gap(f, target[None, :], _TINY).mean(axis=1)
        j = int(np.argmin(score))
        if score[j] < best[0]:
            best = (float(score[j]), float(starts[j]), int(e))
    return best


def _search_ramp(k: I64, target: F64, count: int, last: int) -> _Ramp:
    """The best ``count`` chained LinearLRs ending by step ``last`` (grid, then zoom)."""
    if last <= 64:
        ends = np.arange(2, last + 1)
    else:
        ends = np.unique(np.geomspace(2, last, 48).round().astype(np.int64))
    starts = np.geomspace(1e-7, 1.0, 57)
    score, s, e = _ramp_grid(k, target, count, starts, ends)
    for width in (1.5, 1.05):
        starts = np.clip(s * np.geomspace(1 / width, width, 31), 1e-12, 1.0)
        lo, hi = max(2, int(e / width) - 1), min(last, int(e * width) + 1)
        ends = np.unique(np.linspace(lo, hi, min(hi - lo + 1, 33)).round()).astype(
            np.int64
        )
        score, s, e = _ramp_grid(k, target, count, starts, ends)
    return _Ramp(count, float(f"{s:.6g}"), e, score)


def _fit_ramp(t: Run, batches: I64, i0: int) -> tuple[list[dict[str, Any]], str]:
    """LinearLRs for darknet's burn-in ``lr·(b/burn_in)^power`` over steps ``0..i0-1``."""
    p = t.params
    b = batches[:i0].astype(np.float64)
    with np.errstate(all="ignore"):
        target = (b / p.burn_in) ** p.power
    k = np.arange(i0, dtype=np.int64)
    if i0 > 4 * _SAMPLE:
        k = np.unique(np.linspace(0, i0 - 1, 4 * _SAMPLE).astype(np.int64))
    tk = target[k]
    best = _Ramp(0, 1.0, 2, float(_log_gap(np.ones(k.size), tk, _TINY).mean()))
    candidates: list[_Ramp] = []
    pw = float(p.power)
    if b[0] > 0 and pw == round(pw) and 1 <= pw <= MAX_RAMP_FACTORS:
        s = float(b[0] / p.burn_in)  # exact ramp when b(i) = (i + 1)·c and c divides B
        e = i0 + 1
        f = _ramp_values(k, np.array([s]), e, int(pw))[0]
        gap = float(_log_gap(f, tk, _TINY).mean())
        candidates.append(_Ramp(int(pw), s, e, gap, formula=gap < 1e-6))
    if i0 >= 1:
        counts = {max(1, math.floor(pw)), max(1, math.ceil(pw))} if pw > 0 else set()
        last = i0 + 1
        for c in sorted(x for x in counts if x <= MAX_RAMP_FACTORS):
            candidates.append(_search_ramp(k, tk, c, last))
    for cand in candidates:
        if cand.score < best.score - 1e-15:
            best = cand
    return _ramp_parts(best), _ramp_note(t, best, i0)


def _ramp_parts(r: _Ramp) -> list[dict[str, Any]]:
    part = dict(
        type="LinearLR",
        start_factor=r.start,
        end_factor=1.0,
        by_epoch=False,
        begin=0,
        end=r.end,
    )
    return [dict(part) for _ in range(r.count)]


def _ramp_note(t: Run, r: _Ramp, i0: int) -> str:
    p = t.params
    what = f"darknet's burn-in lr·(b/{p.burn_in})^{p.power:g} (steps 0-{i0 - 1})"
    if r.count == 0:
        return f"{what}: no LinearLR comes closer than the constant base LR"
    ramp = f"{r.count} chained LinearLR(start_factor={r.start:g}, end={r.end})"
    if r.formula:
        return f"{what}: {ramp}, whose product is darknet's formula (in double)"
    return (
        f"{what}: {ramp}, the closest ramp a grid search found "
        f"(mean |log(f/d)| = {r.score:.2g} over the burn-in)"
    )


def _steps_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    """One MultiStepLR per darknet step (in cfg order, as darknet applies them)."""
    p = t.params
    pj = p.fork == FORK_PJREDDIE
    parts: list[dict[str, Any]] = []
    top = -(1 << 70)
    for s, scale in zip(p.steps, p.scales, strict=False):
        top = max(
            top, s % (1 << 64) if pj else s
        )  # darknet stops at the first step > b
        i = max(_first(t, top), i0)
        if i >= n:
            break
        parts.append(_multistep([i], f32_decimal(scale)))
    return parts


def _multistep(milestones: list[int], gamma: float) -> dict[str, Any]:
    return dict(
        type="MultiStepLR", milestones=milestones, gamma=gamma, by_epoch=False, begin=0
    )


def _step_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    p = t.params
    if p.step <= 0:
        raise ValueError(
            f"no MMEngine built-in approximates policy=step with step={p.step}"
        )
    ms: list[int] = []
    j = 1
    while (i := max(_first(t, j * p.step), i0)) < n:
        ms.append(i)
        j += 1
        if len(ms) > MAX_MILESTONES:
            raise ValueError(f"policy=step: more than {MAX_MILESTONES} milestones")
    return [_multistep(ms, f32_decimal(p.scale))] if ms else []


def _exp_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    """``lr·gamma^b``: a jump to ``gamma^b(i0)`` at ``i0``, then ExponentialLR(gamma^r)."""
    p = t.params
    if i0 >= n:
        return []
    r = t.images_per_step / t.images_per_iteration
    jump = float(p.gamma) ** t.batch(i0)
    gamma = float(p.gamma) if r == 1 else float(p.gamma) ** r
    parts = [_multistep([i0], jump)] if jump != 1 else []
    return [*parts, dict(type="ExponentialLR", gamma=gamma, by_epoch=False, begin=i0)]


def _poly_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    """``lr·(1 - b/M)^power``: a jump at ``i0``, then PolyLR down to 0 at b ≈ M."""
    p = t.params
    if p.max_batches <= 0:
        raise ValueError(
            "no MMEngine built-in approximates policy=poly with max_batches=0"
        )
    if i0 >= n:
        return []
    m = p.max_batches
    base = max(1.0 - t.batch(i0) / m, 0.0)
    jump = base ** float(p.power)
    span = round(m * t.images_per_iteration / t.images_per_step) - 1 - i0
    poly = dict(
        type="PolyLR",
        eta_min=0.0,
        power=float(p.power),
        by_epoch=False,
        begin=i0,
        end=i0 + max(span, 1) + 1,
    )
    return ([_multistep([i0], jump)] if jump != 1 else []) + [poly]


def _sgdr_parts(
    schedule: NetSchedule, t: Run, n: int, i0: int, at_i0: float
) -> list[dict[str, Any]]:
    """CosineRestartLR from the burn-in's end: one period per darknet cycle (in optimizer
    steps), the first one cut at ``i0`` and started at darknet's LR there (``at_i0``).

    MMEngine's cosine update ``c·(lr - eta_min) + eta_min`` is not a product, so it must
    not run during a LinearLR ramp (the ramp would amplify the ``eta_min`` term).
    """
    if sgdr_hangs(schedule):
        raise ValueError("sgdr: darknet's cycle search loops forever for this cfg")
    p = t.params
    periods: list[int] = []
    prev = i0
    for end, _ in sgdr_ends(schedule, 1 << 62):
        q = _first(t, end + 1)  # the first step of the next cycle
        if q > prev:
            periods.append(q - prev)
            prev = q
        if q >= n:
            break
        if len(periods) > MAX_MILESTONES:
            raise ValueError(f"sgdr: more than {MAX_MILESTONES} cycles")
    if not periods or p.lr == 0:
        return []
    weights = [1.0] * len(periods)
    if i0 > 0:
        weights[0] = float(f"{at_i0 / p.lr:.6g}")
    return [
        dict(
            type="CosineRestartLR",
            periods=periods,
            restart_weights=weights,
            eta_min_ratio=p.lr_min / p.lr,
            by_epoch=False,
            begin=i0,
            end=prev,
        )
    ]


_NO_BUILTIN = {
    Policy.SIG: "sigmoid (a logistic decay)",
    Policy.RANDOM: "random (a new random LR at every batch)",
}


def fit_mmengine(
    schedule: NetSchedule, options: Options | None = None, *, steps: int | None = None
) -> Fit:
    """MMEngine built-in schedulers (iteration based) that approximate ``schedule``.

    Optimizer step ``i`` is darknet batch ``Run.batch(i)``; the run is steps
    ``0..steps-1`` (default: every step up to ``max_batches``). Burn-in: chained LinearLRs
    (``power`` of them for an integer power: their product is ``((k+1)/burn_in)^power``),
    else the closest ramp found by a small search; steps/step: MultiStepLRs (one per cfg
    step); exp: ExponentialLR; poly: PolyLR; sgdr: CosineRestartLR; constant: none.
    sigmoid and random raise ValueError.
    """
    t = _images_translation(schedule, options)
    pol = Policy(t.params.policy)
    if pol in _NO_BUILTIN:
        raise ValueError(
            f"no MMEngine built-in approximates policy={pol.cfg_name}: {_NO_BUILTIN[pol]}"
        )
    n = _run_steps(t, steps)
    batches = t.batches(np.arange(n, dtype=np.int64))
    dk = t.batch_lrs(batches)
    p = t.params
    i0 = min(_first(t, p.burn_in), n) if p.burn_in > 0 else 0
    ramp, note = _fit_ramp(t, batches, i0) if i0 > 0 else ([], "")
    parts: list[dict[str, Any]] = []
    if pol in (Policy.STEPS, Policy.STEP):
        parts = (_steps_parts if pol is Policy.STEPS else _step_parts)(t, n, i0)
    elif pol is Policy.EXP:
        parts = _exp_parts(t, n, i0)
    elif pol is Policy.POLY:
        parts = _poly_parts(t, n, i0)
    elif pol is Policy.SGDR:
        parts = _sgdr_parts(schedule, t, n, i0, float(dk[i0]) if i0 < n else 0.0)
    schedulers = ramp + parts
    base = f32_decimal(p.lr)
    lr = mmengine_lr(schedulers, base, n)
    notes = [note] if note else []
    notes += _mmengine_notes(t, pol) + _run_notes(t)
    return Fit(
        framework="MMEngine",
        schedulers=schedulers,
        optim_wrapper=_optim_wrapper(schedule, base),
        hyp={},
        batches=np.asarray(batches, dtype=np.int64),
        framework_lr=lr,
        darknet_lr=np.asarray(dk, dtype=np.float64),
        report=measure(lr, dk, batches, burn_in=p.burn_in),
        notes=tuple(notes),
    )


def _optim_wrapper(schedule: NetSchedule, base: float) -> dict[str, Any]:
    """SGD with the base LR the schedulers scale; decay on conv/linear weights only."""
    return dict(
        type="OptimWrapper",
        optimizer=dict(
            type="SGD",
            lr=base,
            momentum=f32_decimal(schedule.momentum),
            weight_decay=f32_decimal(schedule.decay),
        ),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    )


def _mmengine_notes(t: Run, pol: Policy) -> list[str]:
    notes = [
        f"MMEngine {MMENGINE_VERSION} built-ins, iteration based (by_epoch=False): "
        "the value after k scheduler steps is the LR of optimizer step k"
    ]
    if t.images_per_step != t.images_per_iteration:
        notes.append(
            f"an optimizer step sees {t.images_per_step} images, darknet's iteration "
            f"{t.images_per_iteration}: darknet's LR is a staircase over optimizer steps, "
            "the built-ins change smoothly"
        )
    if pol is Policy.SGDR:
        notes.append(
            "CosineRestartLR starts each period at its full LR and runs a whole "
            "half-cosine per period (darknet: one batch later; the cycle cut by the "
            "burn-in is a partial cosine)"
        )
    if pol is Policy.EXP:
        notes.append(
            "ExponentialLR's gamma is darknet's float32 gamma, digit for digit"
        )
    return notes


# ----------------------------------------------------------------------------- Ultralytics


@dataclass(frozen=True)
class _UltraRun:
    """The batch geometry of an Ultralytics run (single process, no ``time`` mode)."""

    images: int
    batch: int
    epochs: int
    nbs: int

    @property
    def nb(self) -> int:
        """Batches per epoch (``drop_last=False``)."""
        return -(-self.images // self.batch)

    @property
    def accumulate(self) -> int:
        """``min(max(round(nbs / batch), 1), nb·epochs)`` (``_build_train_pipeline``)."""
        return min(max(round(self.nbs / self.batch), 1), self.nb * self.epochs)

    def warmup(self, warmup_epochs: float) -> int:
        """``nw`` (``_get_warmup_iterations``)."""
        we = min(warmup_epochs, max(self.epochs - 1, 0))
        return round(we * self.nb) if we > 0 else 0

    def seen(self, ni: I64) -> I64:
        """Images consumed up to and including global batch ``ni``."""
        e, i = np.divmod(ni, self.nb)
        out: I64 = e * self.images + np.minimum((i + 1) * self.batch, self.images)
        return out


def _hyp_run(hyp: Mapping[str, Any], images: int) -> _UltraRun:
    for key in ("batch", "epochs", "nbs"):
        v = hyp[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {v!r}")
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"images must be an integer >= 1, got {images!r}")
    return _UltraRun(images, int(hyp["batch"]), int(hyp["epochs"]), int(hyp["nbs"]))


def _cadence(run: _UltraRun, nw: int) -> I64:
    """Global batch indices ``ni`` at which ``_do_train`` calls ``optimizer_step()``."""
    acc0, total = run.accumulate, run.nb * run.epochs
    last, found = -1, []
    warm_end = min(nw, total - 1) if nw else -1
    for ni in range(warm_end + 1):
        acc = max(1, int(np.interp(ni, [0, nw], [1, acc0]).round()))
        if ni - last >= acc:
            found.append(ni)
            last = ni
    first = max(warm_end + 1, last + acc0)
    rest = np.arange(first, total, acc0, dtype=np.int64)
    return np.concatenate([np.array(found, dtype=np.int64), rest])


def ultralytics_steps(hyp: Mapping[str, Any], *, images: int) -> I64:
    """Global batch index ``ni`` of every optimizer step of an Ultralytics run."""
    run = _hyp_run(hyp, images)
    return _cadence(run, run.warmup(float(hyp.get("warmup_epochs", 3.0))))


def _lf(hyp: Mapping[str, Any], epochs: int) -> Callable[[int], float]:
    """``BaseTrainer._setup_scheduler``'s lambda (``one_cycle`` for ``cos_lr``)."""
    lrf = float(hyp.get("lrf", 0.01))
    if hyp.get("cos_lr", False):
        return lambda x: (
            max((1 - math.cos(x * math.pi / epochs)) / 2, 0) * (lrf - 1) + 1
        )
    return lambda x: max(1 - x / epochs, 0) * (1.0 - lrf) + lrf


def ultralytics_lr(
    hyp: Mapping[str, Any], *, images: int, group: str = "weight"
) -> tuple[I64, F64]:
    """``(ni, lr)``: the global batch index and LR of ``group`` at every optimizer step.

    Reimplements Ultralytics 8.4.190's trainer arithmetic (single process, no ``time``
    mode, no OOM retries): ``hyp`` holds ``batch``, ``epochs``, ``nbs``, ``lr0``, ``lrf``,
    ``cos_lr``, ``warmup_epochs`` and ``warmup_bias_lr``. ``group`` "weight" and "bn"
    warm up from 0, "bias" from ``warmup_bias_lr``.
    """
    run = _hyp_run(hyp, images)
    nw = run.warmup(float(hyp.get("warmup_epochs", 3.0)))
    ni = _cadence(run, nw)
    lf = _lf(hyp, run.epochs)
    lr0 = float(hyp.get("lr0", 0.01))
    targets = np.array([lr0 * lf(e) for e in range(run.epochs)], dtype=np.float64)
    lr = targets[ni // run.nb]
    start = float(hyp.get("warmup_bias_lr", 0.1)) if group == "bias" else 0.0
    for j in np.flatnonzero(ni <= nw) if nw else ():
        lr[j] = float(np.interp(int(ni[j]), [0, nw], [start, float(lr[j])]))
    return ni, lr


def _ultra_batches(t: Run, run: _UltraRun, ni: I64) -> I64:
    """darknet's batch of each step: images seen // images per iteration (at most
    max_batches)."""
    b = np.minimum(run.seen(ni) // t.images_per_iteration, t.params.max_batches)
    return b.astype(np.int64)


def _darknet(t: Run, b: I64, *, flush: bool | None = None) -> F64:
    """darknet's LR at batches ``b`` under ``t`` (``flush``: override the translation's)."""
    f = t.flush if flush is None else flush
    return np.asarray(params_lr(t.params, b, exact=t.exact, flush=f), dtype=np.float64)


def _shape(e: I64, epochs: int, cos: bool) -> F64:
    """``u`` with ``lf = u + (1 - u)·lrf`` (linear or one_cycle cosine)."""
    x = e.astype(np.float64)
    if cos:
        return 1 - np.maximum((1 - np.cos(x * np.pi / epochs)) / 2, 0)
    return np.maximum(1 - x / epochs, 0)


def _best_lr0(g: F64, d: F64, w: F64, tiny: float) -> tuple[float, float]:
    """``(score, lr0)`` minimizing the weighted mean ``|log(lr0·g / d)|``: ``log lr0`` is
    the weighted median of ``log(d / g)`` (steps with ``g = 0`` add a constant)."""
    ld = np.log(np.maximum(d, tiny))
    pos = g > 0
    a = ld[pos] - np.log(g[pos])
    wa = w[pos]
    const = float((w[~pos] * np.abs(math.log(tiny) - ld[~pos])).sum())
    if a.size == 0:
        return const / w.sum(), tiny
    order = np.argsort(a)
    cw = np.cumsum(wa[order])
    c = float(a[order][np.searchsorted(cw, cw[-1] / 2)])
    return (float((wa * np.abs(a - c)).sum()) + const) / float(w.sum()), math.exp(c)


def _fit_lr_shape(
    g: F64, u: F64, d: F64, w: F64, tiny: float
) -> tuple[float, float, float]:
    """Best ``(score, lr0, lrf)`` for ``lr = lr0·g·(u + (1 - u)·lrf)``."""
    best = (math.inf, 1.0, 1.0)
    lrfs = np.concatenate([[0.0], np.geomspace(1e-4, 1.0, 33)])
    for width in (None, 1.5, 1.05):
        if width is not None:
            lrfs = np.clip(best[2] * np.geomspace(1 / width, width, 17), 0.0, 1.0)
        for lrf in lrfs.tolist():
            score, lr0 = _best_lr0(g * (u + (1 - u) * lrf), d, w, tiny)
            if score < best[0]:
                best = (score, lr0, lrf)
    return best


def _ultra_search(t: Run, run: _UltraRun) -> dict[str, Any]:
    """lr0, lrf, cos_lr and warmup_epochs with the smallest mean ``|log(f / d)|`` per
    image (each step weighted by the images it consumed)."""
    p = t.params
    per_epoch = run.images / t.images_per_iteration  # darknet batches per epoch
    warm = [0.0]
    if p.burn_in > 0:
        one = p.burn_in / per_epoch
        factors = (0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4)
        warm = sorted({round(one * f, 3) for f in factors})
    tiny = _TINY * (float(p.lr) if p.lr > 0 else 1.0)
    # flushing only zeroes subnormal tails: the vectorized unflushed oracle for the search
    table = _darknet(t, np.arange(p.max_batches + 1, dtype=np.int64), flush=False)
    best: tuple[float, dict[str, Any]] = (math.inf, {})
    for we in warm:
        nw = run.warmup(we)
        ni = _cadence(run, nw)
        seen = run.seen(ni)
        d = table[_ultra_batches(t, run, ni)]
        idx, wts = _sample(ni.size, ni <= nw if nw else None)
        wts = wts * np.diff(seen, prepend=0)[idx]  # per image: warmup steps see fewer
        g = np.where((ni[idx] <= nw) & (nw > 0), ni[idx] / max(nw, 1), 1.0)
        for cos in (False, True):
            u = _shape(ni[idx] // run.nb, run.epochs, cos)
            score, lr0, lrf = _fit_lr_shape(g, u, d[idx], wts, tiny)
            if score < best[0]:
                best = (score, dict(lr0=lr0, lrf=lrf, cos_lr=cos, warmup_epochs=we))
    return best[1]


def fit_ultralytics(
    schedule: NetSchedule,
    options: Options | None = None,
    *,
    images: int,
    batch: int,
) -> Fit:
    """Ultralytics hyperparameters that approximate ``schedule`` for a dataset of
    ``images`` images trained with ``batch`` images per batch.

    ``nbs`` is the translation's images per optimizer step (darknet's cfg ``batch``
    unless ``images_per_step`` is given) and ``epochs`` the darknet run's images
    (``max_batches × batch``) over ``images``. ``lr0``, ``lrf``, ``cos_lr`` and
    ``warmup_epochs`` come from a small search minimizing the mean ``|log(f / d)|`` over
    the run's images. Step ``j`` is compared with darknet at
    ``b = images seen // images per iteration`` (at most ``max_batches``).
    """
    t = _images_translation(schedule, options)
    p = t.params
    if Policy(p.policy) is Policy.RANDOM:
        raise ValueError(
            f"no Ultralytics schedule approximates policy=random: {_NO_BUILTIN[Policy.RANDOM]}"
        )
    if p.max_batches <= 0:
        raise ValueError("max_batches is 0: no run to fit")
    total = p.max_batches * t.images_per_iteration
    run = _hyp_run(
        dict(
            batch=batch,
            epochs=max(1, round(total / max(images, 1))),
            nbs=t.images_per_step,
        ),
        images,
    )
    found = _ultra_search(t, run)
    hyp = _hyp(schedule, run, found)
    ni, lr = ultralytics_lr(hyp, images=images)
    b = _ultra_batches(t, run, ni)
    d = _darknet(t, b)
    return Fit(
        framework="Ultralytics",
        schedulers=[],
        optim_wrapper={},
        hyp=hyp,
        batches=b,
        framework_lr=lr,
        darknet_lr=d,
        report=measure(lr, d, b, burn_in=p.burn_in),
        notes=tuple(_ultra_notes(t, run, hyp, total) + _run_notes(t)),
    )


def _hyp(
    schedule: NetSchedule, run: _UltraRun, found: Mapping[str, Any]
) -> dict[str, Any]:
    """The train arguments (searched values rounded to 4 significant digits)."""
    momentum = f32_decimal(schedule.momentum)
    decay = schedule.decay * run.nbs / (run.batch * run.accumulate)
    return dict(
        optimizer="SGD",
        lr0=float(f"{found['lr0']:.4g}"),
        lrf=float(f"{found['lrf']:.4g}"),
        cos_lr=bool(found["cos_lr"]),
        warmup_epochs=float(found["warmup_epochs"]),
        warmup_bias_lr=0.0,
        warmup_momentum=momentum,
        momentum=momentum,
        weight_decay=float(f"{decay:.6g}"),
        epochs=run.epochs,
        nbs=run.nbs,
        batch=run.batch,
    )


def _ultra_notes(
    t: Run, run: _UltraRun, hyp: Mapping[str, Any], total: int
) -> list[str]:
    steps_per_epoch = run.nb / run.accumulate
    notes = [
        f"Ultralytics {ULTRALYTICS_VERSION} trainer arithmetic: the LR changes once per "
        f"epoch ({run.nb} batches, ~{steps_per_epoch:.4g} optimizer steps) after a "
        "per-batch linear warmup; darknet's changes per batch",
        f"epochs={run.epochs}: {run.epochs * run.images:,} images vs darknet's "
        f"{total:,} (max_batches x batch)"
        + (
            "; steps past darknet's last batch are compared with its last rate"
            if run.epochs * run.images > total
            else ""
        ),
        "warmup_bias_lr=0: the bias group follows the weight group at every step "
        "(Ultralytics' default 0.1 starts biases at 0.1 and lowers them during warmup)",
        "optimizer=SGD is required ('auto' ignores lr0 and momentum); Ultralytics' SGD "
        "uses Nesterov momentum and its detection loss is multiplied by the batch size: "
        "the update differs from darknet's beyond the LR",
    ]
    p = t.params
    if p.burn_in > 0:
        epochs = p.burn_in * t.images_per_iteration / run.images
        notes.append(
            f"darknet's burn-in ({p.burn_in} batches, power {p.power:g}) lasts "
            f"{epochs:.3g} epochs; Ultralytics' warmup is linear: "
            f"warmup_epochs={hyp['warmup_epochs']:g} came closest"
        )
    if run.batch * run.accumulate != run.nbs:
        notes.append(
            f"accumulate = round(nbs/batch) = {run.accumulate}: a step sees "
            f"{run.batch * run.accumulate} images, not nbs={run.nbs}"
        )
    return notes
