"""Approximations of darknet's schedule by MMEngine's built-in schedulers (evaluated by
MMEngine) and Ultralytics' train arguments (evaluated by a cited table of its trainer's
arithmetic), each with its measured error: never called exact."""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from cfgsched.adapters import MMENGINE_VERSION, ULTRALYTICS_VERSION
from cfgsched.kernel.formulas import f32_decimal
from cfgsched.kernel.vector import F64s, I64s
from cfgsched.options import Options
from cfgsched.oracle import params_lr
from cfgsched.policies.sgdr import sgdr_ends, sgdr_hangs
from cfgsched.policies.steps import steps_table
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule, Policy

__all__ = ["Fit", "Phase", "Report", "fit_mmengine", "fit_ultralytics"]
__all__ += ["mmengine_lr", "ultralytics_lr"]

MAX_MILESTONES = 100_000  # most milestones (step) or cosine periods (sgdr) in a fit
_SAMPLE = 8192  # steps the searches evaluate at most (evenly spaced, weighted)
_TINY = 1e-15  # floor of the searches' log error (relative to the peak LR)
_MM_TYPES = ("LinearLR", "MultiStepLR", "ExponentialLR", "PolyLR", "CosineRestartLR")
_NO_BUILTIN = {
    Policy.SIG: "sigmoid (a logistic decay)",
    Policy.RANDOM: "random (a new random LR at every batch)",
}


class Phase(NamedTuple):
    """Relative error over steps ``first``..``last``, largest at ``worst`` (-1: none)."""

    label: str
    first: int
    last: int
    max_rel: float
    mean_rel: float
    worst: int


class Report(NamedTuple):
    """``|f - d| / |d|`` of a framework's LR ``f`` vs darknet's ``d`` where ``d`` is non-zero
    and finite, over the run and its ``phases``; the largest ``|f - d|`` at ``abs_step``."""

    steps: int
    max_rel: float
    mean_rel: float
    worst_step: int
    max_abs: float
    abs_step: int
    zero_steps: int
    phases: tuple[Phase, ...]


def _rel(f: F64s, d: F64s) -> F64s:
    """``|f - d| / |d|``, NaN where darknet's LR is 0 or not finite."""
    with np.errstate(all="ignore"):
        rel = np.abs(f - d) / np.abs(d)
    ok = np.isfinite(d) & (d != 0)
    return np.where(ok, np.nan_to_num(rel, nan=np.inf), np.nan)


def _phase(label: str, idx: I64s, rel: F64s) -> Phase:
    keep = idx[~np.isnan(rel[idx])]
    if not keep.size:
        return Phase(label, int(idx[0]), int(idx[-1]), math.nan, math.nan, -1)
    r, w = rel[keep], int(keep[np.argmax(rel[keep])])
    return Phase(label, int(idx[0]), int(idx[-1]), float(r.max()), float(r.mean()), w)


def _report(f: F64s, d: F64s, b: I64s, burn_in: int) -> Report:
    """The :class:`Report` of ``f`` against ``d`` at darknet's batches ``b``."""
    rel = _rel(f, d)
    run = _phase("run", np.arange(f.size, dtype=np.int64), rel)
    split = (("burn-in", b < burn_in), ("after burn-in", b >= burn_in))
    phases = [
        _phase(s, np.flatnonzero(m), rel) for s, m in split if burn_in > 0 < m.sum()
    ]
    gap = np.where(np.isfinite(d), np.abs(f - d), 0.0)
    worst, zero = int(np.argmax(gap)), int((d == 0).sum())
    return Report(f.size, *run[3:], float(gap[worst]), worst, zero, tuple(phases))


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "n/a" if math.isnan(x) else "inf"
    return f"{x * 100:.3g}%" if x >= 1e-3 or x == 0 else f"{x * 100:.2g}%"


@dataclass(frozen=True, eq=False)
class Fit:
    """A framework's config (MMEngine: ``schedulers``, ``optim_wrapper``; Ultralytics:
    ``hyp``) approximating darknet, with darknet's batch and both LRs at every step."""

    framework: str
    batches: I64s
    framework_lr: F64s
    darknet_lr: F64s
    report: Report
    notes: tuple[str, ...]
    schedulers: list[dict[str, Any]] = field(default_factory=list)
    optim_wrapper: dict[str, Any] = field(default_factory=dict)
    hyp: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Optimizer steps in the compared run."""
        return self.report.steps

    def relative_error(self) -> F64s:
        """``|f - d| / |d|`` at every step (NaN where darknet's LR is 0 or not finite)."""
        return _rel(self.framework_lr, self.darknet_lr)

    def _at(self, i: int) -> str:
        d, f, b = self.darknet_lr[i], self.framework_lr[i], self.batches[i]
        return f"step {i}, darknet b={b}: darknet {d:.6g} vs {self.framework} {f:.6g}"

    def comment(self) -> list[str]:
        """The measured error (headline first), then the notes. The headline's relative
        error is after burn-in (it starts near 0, where a relative error says nothing)
        unless no later step has a non-zero darknet LR; its absolute error is the run's."""
        r = self.report
        run = Phase("", 0, r.steps - 1, r.max_rel, r.mean_rel, r.worst_step)
        known = [p for p in r.phases if p.worst >= 0]
        main = ([p for p in known if p.label != "burn-in"] or known or [run])[0]
        rel = f"no step of the {r.steps:,} has a non-zero darknet LR to compare with"
        where = {"burn-in": " over the burn-in", "after burn-in": " after burn-in"}
        if main.worst >= 0:
            rel = f"max relative LR error {_pct(main.max_rel)}"
            rel += f"{where.get(main.label, '')} ({self._at(main.worst)}), "
            rel += f"mean {_pct(main.mean_rel)}"
        lines = [
            f"approximation, not exact: {rel}; max absolute LR error {r.max_abs:.3g} "
            f"({self._at(r.abs_step)}) over {r.steps:,} steps"
        ]
        lines += [
            f"burn-in (steps {p.first}-{p.last}, darknet's LR from "
            f"{self.darknet_lr[p.first]:.3g}): max relative LR error {_pct(p.max_rel)}, "
            f"mean {_pct(p.mean_rel)}"
            for p in r.phases
            if p.label == "burn-in" and p is not main
        ]
        zero = f"{r.zero_steps:,} step(s) where darknet's LR is 0: in the absolute error only"
        lines += [zero] if r.zero_steps else []
        return lines + list(self.notes)


def _translation(
    source: NetSchedule | Run, options: Options | None, who: str, refused: set[Policy]
) -> Run:
    """The run to fit; ValueError for a trace run, a ``refused`` policy or no run."""
    t = source if isinstance(source, Run) else translate(source, options)
    pol, why = t.schedule.policy, ""
    if t.trace:
        why = "approximations follow the images mapping: multigpu='trace' is not supported"
    elif pol in refused:
        why = f"no {who} approximates policy={pol.cfg_name}: {_NO_BUILTIN[pol]}"
    elif t.params.max_batches <= 0:
        why = "max_batches is 0: no run to fit"
    if why:
        raise ValueError(why)
    return t


def _fit(t: Run, name: str, lr: F64s, b: I64s, notes: list[str], **config: Any) -> Fit:
    """The :class:`Fit` of the framework's LR ``lr`` at darknet's batches ``b``."""
    d = np.asarray(t.batch_lrs(b), dtype=np.float64)
    if t.start:
        notes.append(
            f"the fit covers the run from step 0: resuming at step {t.start} restores "
            "the framework's own checkpoint (its scheduler state), not darknet's weights file"
        )
    report = _report(lr, d, b, t.params.burn_in)
    return Fit(name, b, lr, d, report, tuple(notes), **config)


def _sample(keep: npt.NDArray[np.bool_]) -> tuple[I64s, F64s]:
    """Steps for a search (all ``keep`` steps, a sample of the rest) and their weights."""
    idx = np.arange(keep.size, dtype=np.int64)
    if keep.size <= 2 * _SAMPLE:
        return idx, np.ones(keep.size)
    kept, rest = idx[keep], idx[~keep]
    pick = rest[np.linspace(0, rest.size - 1, min(_SAMPLE, rest.size)).astype(np.int64)]
    wts = [np.ones(kept.size), np.full(pick.size, rest.size / pick.size)]
    return np.concatenate([kept, pick]), np.concatenate(wts)


def mmengine_lr(
    schedulers: Sequence[Mapping[str, Any]], base: float, steps: int
) -> F64s:
    """The LR of steps ``0..steps-1`` under MMEngine ``schedulers`` built by its registry,
    stepped after every step as ``ParamSchedulerHook.after_train_iter`` does."""
    if importlib.util.find_spec("mmengine") is None:
        raise ValueError(f"needs MMEngine (pip install mmengine=={MMENGINE_VERSION})")
    for c in schedulers:
        if c.get("by_epoch", True) or c.get("type") not in _MM_TYPES:
            raise ValueError(f"unsupported MMEngine scheduler {dict(c)!r}")
    import mmengine.optim  # type: ignore[import-untyped]  # noqa: F401  (registers them)
    import torch
    from mmengine.registry import PARAM_SCHEDULERS  # type: ignore[import-untyped]

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    out = np.empty(steps, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        args = dict(optimizer=opt)
        built = [PARAM_SCHEDULERS.build(dict(c), default_args=args) for c in schedulers]
        for i in range(steps):
            out[i] = opt.param_groups[0]["lr"]
            for s in built:
                s.step()
    return out


def _fit_ramp(t: Run, batches: I64s, i0: int) -> tuple[list[dict[str, Any]], str]:
    """``round(power)`` chained LinearLRs for the burn-in ``lr·(b/burn_in)^power`` (steps
    ``0..i0-1``), the start closest in mean ``|log(f / d)|``; ``b(0)/burn_in`` is tried
    (exact for an integer power when ``b(i) = (i + 1)·b(0)``)."""
    p, pw = t.params, float(t.params.power)
    k = np.unique(np.linspace(0, i0 - 1, min(i0, 4 * _SAMPLE)).astype(np.int64))
    count, s0 = min(max(round(pw), 1), 8), float(batches[0] / p.burn_in)
    starts = np.append(np.geomspace(1e-9, 1.0, 401), s0 if s0 > 0 else 1.0)
    f = (starts[:, None] + (1 - starts[:, None]) * (k / i0)[None, :]) ** count
    with np.errstate(all="ignore"):  # log error |log(f / d)|, both floored at _TINY
        target = np.log(np.maximum((batches[k] / p.burn_in) ** pw, _TINY))
        score = np.abs(np.log(np.maximum(f, _TINY)) - target[None, :]).mean(axis=1)
    j = int(np.argmin(score))
    what = f"darknet's burn-in lr·(b/{p.burn_in})^{pw:g} (steps 0-{i0 - 1})"
    if pw <= 0 or score[j] >= np.abs(target).mean():  # the constant base LR's
        return [], f"{what}: no LinearLR comes closer than the constant base LR"
    start = float(starts[j]) if j == starts.size - 1 else float(f"{starts[j]:.6g}")
    ramp = dict(type="LinearLR", start_factor=start, end_factor=1.0, by_epoch=False)
    how = f"{count} chained LinearLR(start_factor={start:g}, end={i0 + 1})"
    closest = f"the closest found (mean |log(f/d)| = {score[j]:.2g} over the burn-in)"
    exact = "whose product is darknet's formula (in double)"
    how += f", {exact if score[j] < 1e-6 else closest}"
    return [dict(ramp, begin=0, end=i0 + 1) for _ in range(count)], f"{what}: {how}"


def _multistep(milestones: list[int], gamma: float) -> dict[str, Any]:
    mm = dict(type="MultiStepLR", milestones=milestones, gamma=gamma)
    return dict(mm, by_epoch=False, begin=0)


def _steps_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    """A MultiStepLR per darknet step (one hides behind any earlier larger one)."""
    parts = []
    bounds = steps_table(t.params, 0)[0]  # the running max of the steps darknet reaches
    for top, scale in zip(bounds, t.params.scales, strict=False):
        i = max(t.first_step(top), i0)
        if i >= n:
            break
        parts.append(_multistep([i], f32_decimal(scale)))
    return parts


def _step_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    p, ms = t.params, list[int]()
    if p.step <= 0:
        raise ValueError(
            f"no MMEngine built-in approximates policy=step, step={p.step}"
        )
    while (i := max(t.first_step((len(ms) + 1) * p.step), i0)) < n:
        ms.append(i)
        if len(ms) > MAX_MILESTONES:
            raise ValueError(f"policy=step: more than {MAX_MILESTONES} milestones")
    return [_multistep(ms, f32_decimal(p.scale))] if ms else []


def _exp_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    """``lr·gamma^b``: a jump to ``gamma^b(i0)`` at ``i0``, then ExponentialLR(gamma^r)."""
    p, r = t.params, t.images_per_step / t.images_per_iteration
    jump, gamma = float(p.gamma) ** t.batch(i0), float(p.gamma) ** r
    exp = dict(type="ExponentialLR", gamma=gamma, by_epoch=False, begin=i0)
    return ([_multistep([i0], jump)] if jump != 1 else []) + [exp]


def _poly_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    """``lr·(1 - b/M)^power``: a jump at ``i0``, then PolyLR down to 0 at b ≈ M."""
    p, m = t.params, t.params.max_batches
    jump = max(1.0 - t.batch(i0) / m, 0.0) ** float(p.power)
    span = max(round(m * t.images_per_iteration / t.images_per_step) - 1 - i0, 1)
    poly = dict(type="PolyLR", eta_min=0.0, power=float(p.power), by_epoch=False)
    return ([_multistep([i0], jump)] if jump != 1 else []) + [
        dict(poly, begin=i0, end=i0 + span + 1)
    ]


def _sgdr_parts(t: Run, n: int, i0: int) -> list[dict[str, Any]]:
    """CosineRestartLR from ``i0``: a period per darknet cycle, the first started at
    darknet's LR there (``c·(lr - eta_min) + eta_min`` is no product: not in a ramp)."""
    if sgdr_hangs(t.schedule):
        raise ValueError("sgdr: darknet's cycle search loops forever for this cfg")
    p, periods, prev = t.params, [], i0
    for end, _ in sgdr_ends(t.schedule, 1 << 62):
        q = t.first_step(end + 1)  # the first step of the next cycle
        if q > prev:
            periods.append(q - prev)
            prev = q
        if q >= n:
            break
        if len(periods) > MAX_MILESTONES:
            raise ValueError(f"sgdr: more than {MAX_MILESTONES} cycles")
    if not periods or p.lr == 0:
        return []
    first = float(f"{float(t.lr(i0)) / p.lr:.6g}") if i0 > 0 else 1.0
    weights = [first] + [1.0] * (len(periods) - 1)
    cos = dict(type="CosineRestartLR", periods=periods, restart_weights=weights)
    return [
        dict(cos, eta_min_ratio=p.lr_min / p.lr, by_epoch=False, begin=i0, end=prev)
    ]


_PARTS = {Policy.STEPS: _steps_parts, Policy.STEP: _step_parts, Policy.EXP: _exp_parts}
_PARTS |= {Policy.POLY: _poly_parts, Policy.SGDR: _sgdr_parts}
#: What a policy's built-ins do differently from darknet, beyond the sampled error.
_MM_NOTES = {
    Policy.SGDR: "CosineRestartLR starts each period at its full LR and runs a whole "
    "half-cosine per period (darknet: one batch later; the cycle cut by the burn-in is "
    "a partial cosine)",
    Policy.EXP: "ExponentialLR's gamma is darknet's float32 gamma, digit for digit",
}


def fit_mmengine(source: NetSchedule | Run, options: Options | None = None) -> Fit:
    """MMEngine built-in schedulers (iteration based) approximating ``source``'s run (a Run
    or a schedule translated with ``options``) up to ``max_batches``: burn-in LinearLRs,
    then MultiStepLR, ExponentialLR, PolyLR or CosineRestartLR; sigmoid/random refused."""
    t = _translation(source, options, "MMEngine built-in", set(_NO_BUILTIN))
    p, n, s, pol = t.params, t.stop, t.schedule, t.schedule.policy
    batches = t.batches(np.arange(n, dtype=np.int64))
    i0 = min(t.first_step(p.burn_in), n) if p.burn_in > 0 else 0
    ramp, note = _fit_ramp(t, batches, i0) if i0 > 0 else ([], "")
    parts = _PARTS[pol](t, n, i0) if i0 < n and pol in _PARTS else []
    schedulers, base = ramp + parts, f32_decimal(p.lr)
    lr = mmengine_lr(schedulers, base, n)
    opt = dict(type="SGD", lr=base, momentum=f32_decimal(s.momentum))
    opt |= dict(weight_decay=f32_decimal(s.decay))
    paramwise = dict(norm_decay_mult=0.0, bias_decay_mult=0.0)
    wrapper = dict(type="OptimWrapper", optimizer=opt, paramwise_cfg=paramwise)
    notes = [note] if note else []
    notes.append(
        f"MMEngine {MMENGINE_VERSION} built-ins, iteration based (by_epoch=False): "
        "the value after k scheduler steps is the LR of optimizer step k"
    )
    if t.images_per_step != t.images_per_iteration:
        notes.append(
            f"an optimizer step sees {t.images_per_step} images, darknet's iteration "
            f"{t.images_per_iteration}: darknet's LR is a staircase over optimizer steps, "
            "the built-ins change smoothly"
        )
    notes += [_MM_NOTES[pol]] if pol in _MM_NOTES else []
    config = dict(schedulers=schedulers, optim_wrapper=wrapper)
    return _fit(t, "MMEngine", lr, batches, notes, **config)


# Ultralytics 8.4.190, ultralytics/engine/trainer.py (single process, no ``time`` mode, no
# OOM retries):
# - _build_train_pipeline: accumulate = max(round(nbs / batch), 1), capped at nb·epochs;
#   build_dataloader keeps the last short batch: nb = ceil(images / batch) per epoch
# - _get_warmup_iterations: nw = round(min(warmup_epochs, epochs - 1)·nb) (0 if <= 0)
# - _setup_scheduler: LambdaLR sets lr0·lf(epoch) at each epoch start, lf linear
#   max(1 - e/epochs, 0)·(1 - lrf) + lrf or (cos_lr) one_cycle(1, lrf, epochs)
#   (ultralytics/utils/torch_utils.py: max((1 - cos(e·pi/epochs)) / 2, 0)·(lrf - 1) + 1)
# - _do_train: for ni <= nw, accumulate = max(1, int(np.interp(ni, [0, nw], [1, acc0])
#   .round())) and every group's lr = np.interp(ni, [0, nw], [start, lr0·lf(epoch)]),
#   start warmup_bias_lr for the bias group, else 0; a step when ni - last_opt_step >=
#   accumulate.


class _UltraRun(NamedTuple):
    """The batch geometry of an Ultralytics run (the table above): ``nb`` batches per
    epoch, ``accumulate`` batches per optimizer step."""

    images: int
    batch: int
    epochs: int
    nbs: int
    nb: int
    accumulate: int

    def warmup(self, warmup_epochs: float) -> int:
        we = min(warmup_epochs, max(self.epochs - 1, 0))
        return round(we * self.nb) if we > 0 else 0

    def seen(self, ni: I64s) -> I64s:
        """Images consumed up to and including global batch ``ni``."""
        e, i = np.divmod(ni, self.nb)
        seen: I64s = e * self.images + np.minimum((i + 1) * self.batch, self.images)
        return seen

    def cadence(self, nw: int) -> I64s:
        """The global batches ``ni`` at which ``_do_train`` steps the optimizer."""
        acc0, total = self.accumulate, self.nb * self.epochs
        last, found, warm_end = -1, [], min(nw, total - 1) if nw else -1
        for ni in range(warm_end + 1):
            if ni - last >= max(1, int(np.interp(ni, [0, nw], [1, acc0]).round())):
                found.append(ni)
                last = ni
        rest = np.arange(max(warm_end + 1, last + acc0), total, acc0, dtype=np.int64)
        return np.concatenate([np.array(found, dtype=np.int64), rest])


def _hyp_run(hyp: Mapping[str, Any], images: int) -> _UltraRun:
    values = dict(batch=hyp["batch"], epochs=hyp["epochs"], nbs=hyp["nbs"])
    for key, v in (*values.items(), ("images", images)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {v!r}")
    batch, epochs, nbs = values.values()
    nb = -(-images // batch)
    accumulate = min(max(round(nbs / batch), 1), nb * epochs)
    return _UltraRun(images, batch, epochs, nbs, nb, accumulate)


def ultralytics_lr(
    hyp: Mapping[str, Any], *, images: int, group: str = "weight"
) -> tuple[I64s, F64s]:
    """``(global batch, LR)`` of ``group`` ("weight", "bn", "bias") at each step of ``hyp``."""
    run = _hyp_run(hyp, images)
    nw = run.warmup(float(hyp.get("warmup_epochs", 3.0)))
    ni, lrf, epochs = run.cadence(nw), float(hyp.get("lrf", 0.01)), run.epochs
    if hyp.get("cos_lr", False):
        c = [max((1 - math.cos(e * math.pi / epochs)) / 2, 0) for e in range(epochs)]
        lf = [x * (lrf - 1) + 1 for x in c]
    else:
        lf = [max(1 - e / epochs, 0) * (1.0 - lrf) + lrf for e in range(epochs)]
    lr = float(hyp.get("lr0", 0.01)) * np.array(lf, dtype=np.float64)[ni // run.nb]
    start = float(hyp.get("warmup_bias_lr", 0.1)) if group == "bias" else 0.0
    for j in np.flatnonzero(ni <= nw) if nw else ():
        lr[j] = float(np.interp(int(ni[j]), [0, nw], [start, float(lr[j])]))
    return ni, lr


def _best_lr0(g: F64s, d: F64s, w: F64s, tiny: float) -> tuple[float, float]:
    """``(score, lr0)`` minimizing the weighted mean ``|log(lr0·g / d)|``: ``log lr0`` is
    the weighted median of ``log(d / g)`` (steps with ``g = 0`` add a constant)."""
    ld, pos = np.log(np.maximum(d, tiny)), g > 0
    a, wa = ld[pos] - np.log(g[pos]), w[pos]
    const = float((w[~pos] * np.abs(math.log(tiny) - ld[~pos])).sum())
    if a.size == 0:
        return const / w.sum(), tiny
    order = np.argsort(a)
    cw = np.cumsum(wa[order])
    c = float(a[order][np.searchsorted(cw, cw[-1] / 2)])
    return (float((wa * np.abs(a - c)).sum()) + const) / float(w.sum()), math.exp(c)


def _best_lrf(
    g: F64s, u: F64s, d: F64s, w: F64s, tiny: float
) -> tuple[float, float, float]:
    """``(score, lr0, lrf)`` for ``lf = u + (1 - u)·lrf``: ``lrf`` on a twice zoomed grid."""
    lrfs = np.concatenate([[0.0], np.geomspace(1e-4, 1.0, 33)])
    top = (math.inf, 1.0, 1.0)
    for width in (None, 1.5, 1.05):
        if width is not None:
            lrfs = np.clip(top[2] * np.geomspace(1 / width, width, 17), 0.0, 1.0)
        for lrf in lrfs.tolist():
            top = min(top, (*_best_lr0(g * (u + (1 - u) * lrf), d, w, tiny), lrf))
    return top


def _ultra_search(t: Run, run: _UltraRun) -> dict[str, Any]:
    """lr0, lrf (4 digits), cos_lr and warmup_epochs with the least mean ``|log(f / d)|``
    per image."""
    p = t.params
    # the burn-in in epochs; none: warmup_epochs 0 only
    one = max(p.burn_in, 0) * t.images_per_iteration / run.images
    warm = sorted({round(one * f, 3) for f in (0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4)})
    tiny = _TINY * (float(p.lr) if p.lr > 0 else 1.0)
    # flushing only zeroes subnormal tails: the unflushed oracle serves the search
    every = np.arange(p.max_batches + 1, dtype=np.int64)
    table = params_lr(p, every, exact=t.exact, flush=False).astype(np.float64)
    best: tuple[float, dict[str, Any]] = (math.inf, {})
    for we in warm:
        nw = run.warmup(we)
        ni = run.cadence(nw)
        warming = (ni <= nw) & (nw > 0)
        idx, wts = _sample(warming)
        wts = wts * np.diff(run.seen(ni), prepend=0)[idx]  # warmup steps see fewer
        d = table[_ultra_batches(t, run, ni)][idx]
        g = np.where(warming[idx], ni[idx] / max(nw, 1), 1.0)
        e = (ni[idx] // run.nb).astype(np.float64)
        cosine = 1 - np.maximum((1 - np.cos(e * np.pi / run.epochs)) / 2, 0)
        for cos, u in ((False, np.maximum(1 - e / run.epochs, 0)), (True, cosine)):
            score, lr0, lrf = _best_lrf(g, u, d, wts, tiny)
            if score < best[0]:
                lr0, lrf = float(f"{lr0:.4g}"), float(f"{lrf:.4g}")
                best = (score, dict(lr0=lr0, lrf=lrf, cos_lr=cos, warmup_epochs=we))
    return best[1]


def _ultra_batches(t: Run, run: _UltraRun, ni: I64s) -> I64s:
    """darknet's batch at each step: images seen // images per iteration, <= max_batches."""
    b = np.minimum(run.seen(ni) // t.images_per_iteration, t.params.max_batches)
    return b.astype(np.int64)


def fit_ultralytics(
    source: NetSchedule | Run,
    options: Options | None = None,
    *,
    images: int,
    batch: int,
) -> Fit:
    """Ultralytics train arguments approximating ``source``'s run (as in fit_mmengine) on
    ``images`` images, ``batch`` per batch: ``nbs`` is the images per optimizer step,
    ``epochs`` darknet's images over ``images``; the LR arguments are searched."""
    t = _translation(source, options, "Ultralytics schedule", {Policy.RANDOM})
    s, total = t.schedule, t.params.max_batches * t.images_per_iteration
    epochs = max(1, round(total / max(images, 1)))
    run = _hyp_run(dict(batch=batch, epochs=epochs, nbs=t.images_per_step), images)
    decay = float(f"{s.decay * run.nbs / (run.batch * run.accumulate):.6g}")
    momentum = f32_decimal(s.momentum)
    hyp = dict(optimizer="SGD") | _ultra_search(t, run) | dict(warmup_bias_lr=0.0)
    hyp |= dict(warmup_momentum=momentum, momentum=momentum)
    hyp |= dict(weight_decay=decay, epochs=epochs, nbs=run.nbs, batch=batch)
    ni, lr = ultralytics_lr(hyp, images=images)
    past = "; steps past darknet's last batch are compared with its last rate"
    past = past if run.epochs * run.images > total else ""
    notes = [
        f"Ultralytics {ULTRALYTICS_VERSION} trainer arithmetic: the LR changes once per "
        f"epoch ({run.nb} batches, ~{run.nb / run.accumulate:.4g} optimizer steps) after "
        "a per-batch linear warmup; darknet's changes per batch",
        f"epochs={run.epochs}: {run.epochs * run.images:,} images vs darknet's "
        f"{total:,} (max_batches x batch){past}",
        "warmup_bias_lr=0: the bias group follows the weight group at every step "
        "(Ultralytics' default 0.1 starts biases at 0.1 and lowers them during warmup)",
        "optimizer=SGD is required ('auto' ignores lr0 and momentum); Ultralytics' SGD "
        "uses Nesterov momentum and its detection loss is multiplied by the batch size: "
        "the update differs from darknet's beyond the LR",
    ]
    p = t.params
    if p.burn_in > 0:
        notes.append(
            f"darknet's burn-in ({p.burn_in} batches, power {p.power:g}) lasts "
            f"{p.burn_in * t.images_per_iteration / run.images:.3g} epochs; Ultralytics' "
            f"warmup is linear: warmup_epochs={hyp['warmup_epochs']:g} came closest"
        )
    if run.batch * run.accumulate != run.nbs:
        notes.append(
            f"accumulate = round(nbs/batch) = {run.accumulate}: a step sees "
            f"{run.batch * run.accumulate} images, not nbs={run.nbs}"
        )
    return _fit(t, "Ultralytics", lr, _ultra_batches(t, run, ni), notes, hyp=hyp)
