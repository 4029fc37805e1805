"""Plot darknet LR schedules: the figure's data (:func:`plot_data`) and the figure
(:func:`draw`). Positions are batches b, or 0-based optimizer steps i with ``x="steps"``."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import Boundary, boundaries
from cfgsched.errors import CfgError
from cfgsched.files import escape
from cfgsched.layers import LayerRule
from cfgsched.options import Options
from cfgsched.run import MAX_BATCH, TRACE_LIMIT, Run, translate
from cfgsched.schedule import NetSchedule
from cfgsched.text import counted
from cfgsched.tools import stepping
from cfgsched.tools.editor import Edit, edit_schedule
from cfgsched.tools.lint import layer_text
from cfgsched.tools.plot_choices import APPROXIMATIONS, MAX_POSITION, X_UNITS

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

COLUMNS = 2000  # envelope columns (at least the plot's pixel width at 200 dpi)
EXACT_LIMIT = 20_000  # up to this many positions, one point per position
CHUNK = 1 << 20  # positions evaluated at once (bounds memory)
FULL_LIMIT = 100_000_000  # beyond this many positions each column is sampled
COLUMN_SAMPLES = 257
SAMPLED_NOTE = f"each column from {COLUMN_SAMPLES} samples plus every boundary ±1"
MAX_REGIONS = 100  # regions per curve and kind before neighbours merge
MAX_CURVES = 12
MAX_MARKS = 1000  # boundaries marked per curve (a note counts the rest)
ZOOM_FRACTION = 0.02  # a first phase under this share of the range gets a zoomed panel
#: LR kinds shaded as regions: words, colour, hatch ("after": past the end of the run).
KINDS = {
    "nan": ("LR is NaN", "#7f7f7f", "xx"),
    "inf": ("LR is infinite", "#9467bd", ".."),
    "zero": ("LR is 0", "#ff7f0e", "//"),
    "negative": ("LR is negative", "#d62728", "\\\\"),
    "after": ("after max_batches: darknet has stopped", "#bbbbbb", ""),
    "layers": ("", "#2ca02c", ""),
}
REGION_KINDS = ("nan", "inf", "zero", "negative")
#: darknet's defaults (input size and a layer so that hankai accepts it; no LR effect).
DEFAULTS_CFG = "[net]\nwidth=416\nheight=416\nchannels=3\n\n[maxpool]\n"
#: Without a CFG: the detector recipe of AlexeyAB's guide (yolov4-custom.cfg): burn_in
#: 1000, steps at 80 % and 90 % of max_batches (rescaled with it), scales .1,.1.
RECIPE_CFG = (
    "[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nchannels=3\n"
    "momentum=0.949\ndecay=0.0005\nlearning_rate=0.001\nburn_in=1000\n"
    "max_batches=6000\npolicy=steps\nsteps=4800,5400\nscales=.1,.1\n\n[maxpool]\n"
)
RECIPE_NAME = "AlexeyAB's detector recipe"
_RECIPE_STEPS = "policy=steps\nsteps=4800,5400\nscales=.1,.1\n"


@dataclass(frozen=True)
class Variant:
    """One curve to draw: a parsed schedule, its legend label and translation options."""

    schedule: NetSchedule
    label: str
    options: Options = field(default_factory=Options)
    name: str = ""


def warning_lines(variants: Sequence[Variant]) -> list[str]:
    """The parser's warnings, each once; with several forks each names its fork."""
    forks = {v.schedule.fork for v in variants}
    out: dict[str, None] = {}
    for v in variants:
        for w in v.schedule.warnings:
            line = w.format(v.schedule.source)
            out[f"{line} [{v.schedule.fork}]" if len(forks) > 1 else line] = None
    return list(out)


def build_variants(
    cfgs: Sequence[tuple[str, str]],
    *,
    forks: Sequence[str] = ("alexeyab",),
    gpus: Sequence[int] = (1,),
    options: Mapping[str, Sequence[str]] | None = None,
    translation: Callable[[NetSchedule, int], Options] | None = None,
    recipe: bool = False,
    rescale: bool = False,
) -> list[Variant]:
    """Every cfg ``(text, source)`` × fork × gpus × ``[net]`` option value, labelled by
    what differs (no cfg: darknet's defaults, or :data:`RECIPE_CFG` with ``recipe``)."""
    opts = {k: list(v) for k, v in (options or {}).items() if v}
    none = (RECIPE_CFG, RECIPE_NAME) if recipe else (DEFAULTS_CFG, "darknet defaults")
    items = list(cfgs) or [none]
    combos = list(itertools.product(items, forks or ("alexeyab",), gpus or (1,),
                                    itertools.product(*opts.values())))  # fmt: skip
    if len(combos) > MAX_CURVES:
        why = f"{len(combos)} curves: at most {MAX_CURVES} in one figure"
        raise CfgError("plot", None, None, why)
    how = translation or (lambda s, n: Options(ngpus=n))
    flags = (len(items) > 1, len(set(forks)) > 1, len(set(gpus)) > 1)
    varied = [k for k, v in opts.items() if len(v) > 1]
    default = "[net] from options" if opts else "darknet defaults"
    out = []
    for (text, source), fork, ngpus, vals in combos:
        values = dict(zip(opts, vals, strict=True))
        own = not cfgs and recipe
        if own and values.get("policy", "steps").strip() != "steps":
            text = RECIPE_CFG.replace(_RECIPE_STEPS, "")  # the steps are for steps
        edits = [Edit(k, v) for k, v in values.items()]
        resc = rescale or (own and "steps" not in values)
        _, s = edit_schedule(text, edits, fork=fork, source=source, rescale=resc)
        name = Path(source).name if cfgs else RECIPE_NAME if recipe else default
        gpu = f"{ngpus} GPU{'s' if ngpus > 1 else ''}"
        label = [p for p, f in zip((name, fork, gpu), flags, strict=True) if f]
        label += [f"{k}={values[k]}" for k in varied]
        alone = f"{name} ({fork}{', ' + gpu if ngpus > 1 else ''})"
        out.append(Variant(s, ", ".join(label) or alone, how(s, ngpus), name))
    return out


def recipe_note(variants: Sequence[Variant], changed: bool) -> str:
    """What is drawn without a cfg (for stderr); ``changed``: options were given."""
    mbs = sorted({v.schedule.max_batches for v in variants})
    mb = " and ".join(f"{m:,}" for m in mbs)
    mine = ", with your options applied" if changed else ""
    return (
        f"no cfg: {RECIPE_NAME} (policy=steps, learning_rate=0.001, burn_in=1000, "
        f"steps at 80% and 90% of max_batches {mb}, scales=.1,.1){mine}; "
        "pass a cfg to plot yours"
    )


@dataclass(frozen=True)
class Curve:
    """Point k: positions ``start[k] .. stop[k] - 1``, finite LR min/max (NaN: none);
    ``runs``: an envelope's runs per :data:`REGION_KINDS`."""

    start: I64
    stop: I64
    lo: F32
    hi: F32
    exact: bool
    sampled: bool
    label: str = ""
    kind: str = "darknet"
    x_per_unit: float = 1.0
    runs: dict[str, _Runs] = field(default_factory=dict)


@dataclass(frozen=True)
class Marker(Boundary):
    """A boundary of curve ``curve`` at position ``at`` with the LR there."""

    curve: int
    lr: float
    at: int


@dataclass(frozen=True)
class Region:
    """Positions ``first .. last`` of variant ``curve`` shaded as ``kind`` (:data:`KINDS`)."""

    curve: int
    kind: str
    first: int
    last: int
    label: str = ""


@dataclass(frozen=True)
class ErrorPanel:
    """Curve ``curve``'s signed error per point or column: ulps or (approx − C) / C."""

    curve: int
    start: I64
    stop: I64
    lo: F64
    hi: F64
    max_ulp: float
    max_rel: float
    steps: int
    unit: str
    summary: str


@dataclass(frozen=True)
class PlotData:
    """Everything a figure shows, positions in ``domain`` ("batches" or "steps")."""

    title: str
    first: int
    last: int
    x_label: str
    log: bool
    domain: str = "batches"
    zoom: PlotData | None = None
    curves: list[Curve] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    errors: list[ErrorPanel] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Runs:
    """Runs of positions where a mask holds, fed chunk by chunk (closest ones merge)."""

    def __init__(self) -> None:
        self.lo = self.hi = np.zeros(0, dtype=np.int64)  # concatenated into new arrays
        self.tail = False  # the previous chunk ended inside a run
        self.count = self.runs = 0  # positions where it holds; runs before merging

    def feed(self, pos: I64, mask: npt.NDArray[np.bool_]) -> None:
        idx = np.flatnonzero(mask)
        if idx.size:
            self.count += int(idx.size)
            cuts = np.flatnonzero(np.diff(idx) != 1) + 1
            lo = pos[idx[np.concatenate(([0], cuts))]]
            hi = pos[idx[np.concatenate((cuts, [idx.size])) - 1]]
            if self.tail and idx[0] == 0:
                self.hi[-1] = hi[0]
                lo, hi = lo[1:], hi[1:]
            self.runs += int(lo.size)
            self.lo = np.concatenate((self.lo, lo))
            self.hi = np.concatenate((self.hi, hi))
            if self.lo.size > 4 * MAX_REGIONS:
                self.merged()
        self.tail = bool(mask[-1]) if idx.size else False

    def merged(self) -> list[tuple[int, int]]:
        """The runs, at most :data:`MAX_REGIONS` (the smallest gaps merged)."""
        n = self.lo.size
        if n > MAX_REGIONS:
            gaps = self.lo[1:] - self.hi[:-1]
            keep = np.sort(np.argsort(gaps, kind="stable")[n - MAX_REGIONS :])
            self.lo = self.lo[np.concatenate(([0], keep + 1))]
            self.hi = self.hi[np.concatenate((keep, [n - 1]))]
        return list(zip(self.lo.tolist(), self.hi.tolist(), strict=True))


def envelope(
    values: Callable[[I64], npt.NDArray[np.floating[Any]]],
    first: int,
    last: int,
    columns: int = COLUMNS,
    extra: Sequence[int] = (),
) -> Curve:
    """The LR ``values`` over ``first .. last``: exact, per column, or (beyond
    :data:`FULL_LIMIT`) per column of samples plus the positions ``extra``."""
    n = last - first + 1
    exact = n <= EXACT_LIMIT
    steps = np.arange(columns + 1, dtype=np.float64) * (n / columns)
    edges = np.arange(first, last + 2) if exact else first + steps.astype(np.int64)
    edges[-1] = last + 1  # the column starts, then last + 1
    edges = np.unique(edges)
    ncols, runs = edges.size - 1, {k: _Runs() for k in REGION_KINDS}
    lo, hi = np.empty((2, ncols), dtype=np.float32)  # every column is set below
    near, c0 = np.asarray(sorted(extra), dtype=np.int64), 0
    while c0 < ncols:
        if n <= FULL_LIMIT:  # whole columns of about CHUNK positions
            c1 = int(np.searchsorted(edges, edges[c0] + CHUNK, side="right")) - 1
            c1 = min(max(c1, c0 + 1), ncols)
            pos = np.arange(edges[c0], edges[c1], dtype=np.int64)
        else:  # 64 columns of samples, and the positions ``extra`` inside them
            c1 = min(c0 + 64, ncols)
            pts = [np.linspace(edges[c], edges[c + 1] - 1, COLUMN_SAMPLES).astype(np.int64)
                   for c in range(c0, c1)]  # fmt: skip
            inside = near[(near >= edges[c0]) & (near < edges[c1])]
            pos = np.unique(np.concatenate([*pts, inside]))
        v = values(pos)
        for k, m in zip(runs, (np.isnan(v), np.isinf(v), v == 0, v < 0), strict=True):
            runs[k].feed(pos, m)
        v32, offs = v.astype(np.float32), np.searchsorted(pos, edges[c0:c1])
        fin = np.isfinite(v32)
        lo[c0:c1] = np.minimum.reduceat(np.where(fin, v32, np.inf), offs)
        hi[c0:c1] = np.maximum.reduceat(np.where(fin, v32, -np.inf), offs)
        c0 = c1
    lo[np.isposinf(lo)] = np.nan
    hi[np.isneginf(hi)] = np.nan
    return Curve(edges[:-1], edges[1:], lo, hi, exact, n > FULL_LIMIT, runs=runs)


@dataclass(frozen=True)
class Source:
    """One variant's translated run on the figure's domain (batches, or steps)."""

    variant: Variant
    t: Run
    steps: bool

    def values(self, pos: I64) -> npt.NDArray[np.floating[Any]]:
        """The LR at the positions ``pos``."""
        return self.t.lrs(pos) if self.steps else self.t.batch_lrs(pos)

    def end(self) -> tuple[int, str]:
        """The run's last position and a note (when max_batches is 0)."""
        return (self.t.stop - 1, self.t.note) if self.steps else self.t.span

    def position(self, step: int) -> int:
        """The position of optimizer step ``step``."""
        return step if self.steps else self.t.batch(step)

    def marks(self, lo: int, hi: int, limit: int = MAX_MARKS) -> tuple[list[Any], int]:
        """``(position, boundary)`` inside ``lo .. hi`` and how many were cut."""
        b0, b1 = lo, hi
        if self.steps:
            b0, b1 = self.t.batch(lo), max(self.t.batch(hi), self.t.batch(lo))
        marks, cut = boundaries(self.t.schedule, max(b0, 1), b1, limit=limit)
        at = [self.t.first_step(m.batch) if self.steps else m.batch for m in marks]
        return [(p, m) for p, m in zip(at, marks, strict=True) if lo <= p <= hi], cut

    def extra(self, lo: int, hi: int) -> list[int]:
        """Boundary positions ±1 for ranges over :data:`FULL_LIMIT` (else none)."""
        if hi - lo + 1 <= FULL_LIMIT:
            return []
        return [p + d for p, _ in self.marks(lo, hi, 10_000)[0] for d in (-1, 0, 1)]


def _darknet_curve(parts: PlotData, k: int, src: Source, xpu: float) -> None:
    """Variant ``k``'s curve, its special regions, the after-the-run region and its
    boundary markers (and the resume point) with the LR there."""
    lo, hi, v = parts.first, parts.last, src.variant
    env = envelope(src.values, lo, hi, extra=src.extra(lo, hi))
    parts.curves.append(replace(env, label=v.label, x_per_unit=xpu))
    unit = "steps" if src.steps else "batches"
    for kind, runs in env.runs.items():
        if runs.runs > MAX_REGIONS:
            parts.notes.append(
                f"{v.label}: {KINDS[kind][0]} at {runs.count:,} {unit} in {runs.runs:,} "
                f"runs, shaded as {MAX_REGIONS} merged regions"
            )
        parts.regions.extend(Region(k, kind, a, b) for a, b in runs.merged())
    if env.sampled:
        parts.notes.append(f"{hi - lo + 1:,} {unit}: {SAMPLED_NOTE}")
    if src.t.schedule.max_batches > 0 and (end := src.end()[0]) < hi:
        parts.regions.append(Region(k, "after", max(end + 1, lo), hi))
    (marks, cut), t = src.marks(lo, hi), src.t
    if t.start and lo <= (at := src.position(t.start)) <= hi:
        marks.append((at, Boundary(t.batch(t.start), "resume", "resume")))
        marks.sort(key=lambda pm: pm[0])
    lrs = src.values(np.array([p for p, _ in marks], dtype=np.int64)).tolist()
    parts.markers.extend(
        Marker(m.batch, m.kind, m.label, k, float(lr), p)
        for (p, m), lr in zip(marks, lrs, strict=True)
    )
    if cut:
        more = counted(cut, "more boundary", "more boundaries")
        parts.notes.append(f"{src.variant.label}: {more} not marked")


def _layer_windows(parts: PlotData, k: int, src: Source, many: bool) -> None:
    """Variant ``k``'s layer windows in the figure (update u is step ``start + u - 1``),
    each labelled as explain and lint word its rule (:func:`layer_text`)."""
    t, spans = src.t, list[tuple[LayerRule, int | None]]()  # last update held back
    for r in t.layers:  # None: the whole run (never updated, or no gradient at all)
        g = None if not r.updated or r.gradient_from is None else r.gradient_from - 1
        spans += [(r, u) for u in (g, r.held * r.updated) if u is None or u > 0]
    uneven = t.trace or t.images_per_step != t.images_per_iteration
    if spans and not src.steps and uneven:
        parts.notes.append(f"{src.variant.label}: darknet's layer rules: see --x steps")
        return
    first, end = src.position(t.start), src.end()[0]
    for r, upto in spans:
        last = end if upto is None else min(src.position(t.start + upto - 1), end)
        a, b = max(first, parts.first), min(last, parts.last)
        if a <= b:
            label = f"{layer_text(r)} ({r.rule}, line {r.line})"
            label = f"{src.variant.label}: {label}" if many else label
            parts.regions.append(Region(k, "layers", a, b, label))


def _torch_steps(src: Source, lo: int, hi: int) -> tuple[int, int]:
    """The optimizer steps ``i0 .. i1`` at positions ``lo .. hi`` (from the resume step)."""
    t = src.t
    i0, i1 = (lo, hi) if src.steps else (t.first_step(lo), t.first_step(hi + 1) - 1)
    return max(i0, t.start), i1


def _by_column(base: Curve, pos: I64, y: npt.NDArray[Any]) -> tuple[I64, Any, Any]:
    """The columns of ``base`` holding the sorted ``pos``, NaN-aware min/max of ``y``."""
    col = np.searchsorted(base.start, pos, side="right") - 1
    keep = np.flatnonzero(np.diff(np.concatenate(([-1], col))) != 0)
    return col[keep], np.fmin.reduceat(y, keep), np.fmax.reduceat(y, keep)


def _add_overlay(
    parts: PlotData, label: str, run: tuple[I64, F64, F64], err: F64,
    tops: tuple[float, float], unit: str, summary: str,
) -> None:  # fmt: skip
    """``run`` (positions, LR, darknet's LR) as a "torch" (``unit`` "rel": "approx") curve
    on the last curve's columns, and its error ``err`` signed, per step or column."""
    (pos, got, want), base, k = run, parts.curves[-1], len(parts.curves)
    n, xpu, g = int(pos.size), base.x_per_unit, got.astype(np.float32)
    kind = "torch" if unit == "ulp" else "approx"
    lo = hi = np.where(np.isfinite(g), g, np.float32(np.nan))
    exact, start, stop = base.exact or n == 0, pos, pos + 1
    if not exact:
        cols, mn, mx = _by_column(base, pos, lo)
        start, stop = base.start, base.stop
        lo, hi = np.full((2, base.start.size), np.nan, dtype=np.float32)
        lo[cols], hi[cols] = mn, mx
    parts.curves.append(
        Curve(start, stop, lo, hi.copy(), exact, not exact, label, kind, xpu)
    )
    e = np.where(got < want, -err, err)
    start, stop, e_lo, e_hi = pos, pos + 1, e, e.copy()
    if not (n == 0 or (base.exact if unit == "rel" else n <= EXACT_LIMIT)):
        cols, e_lo, e_hi = _by_column(base, pos, e)
        start, stop = base.start[cols], base.stop[cols]
    parts.errors.append(ErrorPanel(k, start, stop, e_lo, e_hi, *tops, n, unit, summary))


def _torch_parts(parts: PlotData, src: Source, many: bool) -> None:
    """DarknetScheduler stepped (every step or a sample) and its signed ulp error panel."""
    lo, hi, t = parts.first, parts.last, src.t
    i0, i1 = _torch_steps(src, lo, hi)
    i, got, note = np.zeros(0, dtype=np.int64), np.zeros(0), "no torch step in range"
    if i0 <= i1:
        n, windows, note = i1 - i0 + 1, [(i0, i1 + 1)], "every step"
        if n > stepping.EXHAUSTIVE_LIMIT:
            at = [t.first_step(m.batch) - i0 for _, m in src.marks(lo, hi)[0]]
            windows = [(i0 + a, i0 + b) for a, b in stepping.sample_windows(n, at)]
            note = "boundaries and a dense sample of steps"
        make, lr = stepping.class_factory(t), t.cfg_lr
        i = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in windows])
        got = np.concatenate(
            [g for a, b in windows for g in stepping.torch_lrs(make, lr, a, b - a)]
        )
    pos = i if src.steps else t.batches(i)
    keep = np.flatnonzero((pos >= lo) & (pos <= hi))
    keep = keep[np.argsort(pos[keep], kind="stable")]
    want = np.asarray(t.lrs(i[keep]), dtype=np.float64)
    _, rel, ulp = stepping.errors(want, got[keep])
    tops = (float(ulp.max()), float(rel.max())) if ulp.size else (0.0, 0.0)
    summary = (
        f"max |error| {fmt_lr(tops[0])} ulp, rel {fmt_lr(tops[1])} over "
        f"{counted(ulp.size, 'step')} ({note})"
    )
    label = "PyTorch DarknetLR" + (f" ({src.variant.label})" if many else "")
    _add_overlay(parts, label, (pos[keep], got[keep], want), ulp, tops, "ulp", summary)


def _approx_parts(
    parts: PlotData, src: Source, many: bool, vs: str, images: int, batch: int
) -> None:
    """The fit's curve (always called an approximation), relative error panel, report."""
    from cfgsched.adapters.approx import fit_mmengine, fit_ultralytics

    t, mm, lo, hi = src.t, vs == "mmengine", parts.first, parts.last
    try:
        fit = fit_mmengine(t) if mm else fit_ultralytics(t, images=images, batch=batch)
    except ValueError as exc:
        raise CfgError(f"--vs {vs}", None, None, str(exc)) from None
    label = "MMEngine built-in schedulers (approximation)"
    if not mm:
        h, cos = fit.hyp, "cos_lr, " if fit.hyp["cos_lr"] else ""
        label = (f"Ultralytics lr0={h['lr0']:g}, lrf={h['lrf']:g}, {cos}"
                 f"warmup_epochs={h['warmup_epochs']:g} (approximation)")  # fmt: skip
    pos = np.arange(fit.steps, dtype=np.int64) if src.steps else fit.batches
    keep = np.flatnonzero((pos >= lo) & (pos <= hi))
    rel = fit.relative_error()[keep]
    f, d = fit.framework_lr[keep], fit.darknet_lr[keep]
    who = f" ({src.variant.label})" if many else ""
    report = f"{src.variant.label}: " * many + f"{fit.framework} {fit.comment()[0]}"
    fin = rel[np.isfinite(rel)]
    tops = (math.nan, float(np.abs(fin).max()) if fin.size else math.nan)
    _add_overlay(parts, label + who, (pos[keep], f, d), rel, tops, "rel", report)


def _x_axis(
    x: str, images: int | None, sources: Sequence[Source], vs: str | None, batch: int
) -> str:
    """The x axis label; a bad request or ``--vs``: a one-line error."""
    if x not in X_UNITS:
        raise ValueError(f"x must be one of {', '.join(X_UNITS)}, not {x!r}")
    if x == "epochs" and not images:
        why = "needs --images N (images in the data set)"
        raise CfgError("--x epochs", None, None, why)
    if (x == "steps" or vs == "torch") and any(s.t.trace_too_long for s in sources):
        why = f"more than {TRACE_LIMIT:,} loop iterations of GPU 0 to follow"
        raise CfgError("--multigpu trace", None, None, why)
    if vs == "ultralytics-hyp":
        why = ""
        if not (images and batch):
            why = "needs --images N (the data set) and --torch-batch T (Ultralytics' batch)"
        elif x == "steps":
            why = ("Ultralytics' optimizer steps are its own (its accumulate ramps "
                   "during warmup): use --x batches, images or epochs")  # fmt: skip
        if why:
            raise CfgError(f"--vs {vs}", None, None, why)
    if x == "steps":
        maps = {s.t.mapping for s in sources}
        how = f"; {maps.pop()}" if len(maps) == 1 else ""
        return f"optimizer step i (0-based{how})"
    return {
        "batches": "darknet batch (iteration)",
        "images": "images seen (iterations × batch)",
        "epochs": f"epoch ({counted(images, 'image')})" if images else "epoch",
    }[x]


def _x_range(
    sources: Sequence[Source], first: int | None, last: int | None
) -> tuple[int, int, list[str]]:
    """The positions to plot (default: the runs' first and last) and notes."""
    lo = min(s.t.start if s.steps else 1 for s in sources) if first is None else first
    ends = [s.end() for s in sources] if last is None else [(last, "")]
    notes = list(dict.fromkeys(note for _, note in ends if note))
    hi = max(end for end, _ in ends)
    if hi < lo and first is None and min(s.t.start for s in sources) > hi:
        why = f"resumes at step {lo:,}, past the run's last step {hi:,}"
        raise CfgError("--resume-from", None, None, f"{why}: nothing to show")
    if lo < 0 or hi < lo or hi > MAX_POSITION:
        raise CfgError("--from/--to", None, None, f"empty or negative range {lo}..{hi}")
    for s in sources:
        if s.steps and s.t.batch(hi) > MAX_BATCH:
            why = f"step {hi:,} is darknet batch {s.t.batch(hi):,}: beyond int64"
            raise CfgError("--to", None, None, why)
    return lo, hi, notes


def step_range(
    v: Variant, first: int | None, last: int | None, x: str, images: int | None
) -> tuple[Source, int, int, list[str]]:
    """``v``'s steps source and the optimizer steps of ``plot``'s range, and notes."""
    src = Source(v, translate(v.schedule, v.options), True)
    _x_axis(x, images, [src], "torch", 0)
    if x == "steps" or (first is None and last is None):
        return src, *_x_range([src], first, last)
    by_batch = Source(v, src.t, False)
    b0, b1, notes = _x_range([by_batch], first, last)
    lo, hi = _torch_steps(by_batch, b0, b1)
    return src, src.t.start if first is None else lo, hi, notes


def _variant_notes(src: Source, x: str, vs_torch: bool) -> list[str]:
    """What the translation changes for this curve, in words (:attr:`Run.notes`)."""
    o, notes = src.variant.options, src.t.notes
    default = Options(ngpus=o.ngpus, ideal=o.ideal, exact=o.exact)
    mapped = (x == "steps" or vs_torch) and (o != default or o.ngpus > 1)
    keys = ("gpus", "ideal", "double", "mapping" if mapped else "", "resume")
    return [f"{src.variant.label}: {notes[k]}" for k in keys if k in notes]


def _coincide_notes(curves: Sequence[Curve]) -> list[str]:
    dark = [c for c in curves if c.kind == "darknet"]
    return [
        f"{a.label} and {b.label} coincide (drawn on top of each other)"
        for a, b in itertools.combinations(dark, 2)
        if np.array_equal(a.start, b.start)
        and np.array_equal(a.lo, b.lo, equal_nan=True)
        and np.array_equal(a.hi, b.hi, equal_nan=True)
    ]


def _title(variants: Sequence[Variant], fit: str | None) -> str:
    names = list(dict.fromkeys(escape(v.name) for v in variants))
    forks = list(dict.fromkeys(v.schedule.fork for v in variants))
    pols = sorted({v.schedule.policy.cfg_name for v in variants})
    who = {"mmengine": "MMEngine schedulers", "ultralytics-hyp": "Ultralytics hyp"}
    vs = f" vs {who[fit]} fitted to it (approximation)" if fit in who else ""
    rnd = ": cfgsched's seeded draws, not darknet's rand()" if "random" in pols else ""
    return (
        f"{' vs '.join(names)}: darknet learning rate{vs} "
        f"({', '.join(pols)} policy{rnd}; {', '.join(forks)} fork)"
    )


def _zoom_range(sources: Sequence[Source], lo: int, hi: int) -> tuple[int, int] | None:
    """``lo`` to twice the longest first phase when under :data:`ZOOM_FRACTION`."""
    firsts = []
    for s in sources:
        marks, _ = s.marks(lo + 1, hi, limit=2)
        firsts += [p for p, m in marks[:1] if m.kind != "max_batches"]
    if not firsts or max(firsts) - lo >= ZOOM_FRACTION * (hi - lo):
        return None
    return lo, min(hi, lo + 2 * (max(firsts) - lo) + 1)


def plot_data(
    variants: Sequence[Variant],
    *,
    first: int | None = None,
    last: int | None = None,
    log: bool = False,
    x: str = "batches",
    images: int | None = None,
    vs: str | None = None,
    batch: int | None = None,
    title: str | None = None,
    zoom: bool = True,
) -> PlotData:
    """The curves, markers, regions, layer windows and overlay errors of a figure
    (``x``: one of :data:`X_UNITS`; a whole-run figure may get a zoomed first phase);
    ``vs``: "torch" or one of :data:`APPROXIMATIONS` (``batch``: Ultralytics' batch)."""
    if not variants:
        raise ValueError("nothing to plot")
    if vs not in (None, "torch", *APPROXIMATIONS):
        raise ValueError(f"unknown --vs overlay {vs!r}")
    sources = [
        Source(v, translate(v.schedule, v.options), x == "steps") for v in variants
    ]
    x_label = _x_axis(x, images, sources, vs, batch or 0)
    lo, hi, notes = _x_range(sources, first, last)
    near = _zoom_range(sources, lo, hi) if zoom and first is last is None else None
    zoomed = None if near is None else plot_data(
        variants, first=near[0], last=near[1], log=log, x=x, images=images,
        zoom=False,
        title=f"zoom: {'i' if x == 'steps' else 'b'} = {near[0]:,}–{near[1]:,}",
    )  # fmt: skip
    domain = "steps" if x == "steps" else "batches"
    title = _title(variants, vs) if title is None else title
    parts = PlotData(title, lo, hi, x_label, log, domain, zoomed, notes=notes)
    for k, src in enumerate(sources):
        ipi, many = src.t.schedule.images_per_iteration, len(sources) > 1
        xpu = {"images": float(ipi), "epochs": ipi / float(images or 1)}.get(x, 1.0)
        parts.notes.extend(_variant_notes(src, x, vs == "torch"))
        _darknet_curve(parts, k, src, xpu)
        _layer_windows(parts, k, src, many)
        if vs == "torch":
            _torch_parts(parts, src, many)
        elif vs is not None:
            _approx_parts(parts, src, many, vs, images or 0, batch or 0)
    parts.notes.extend(_coincide_notes(parts.curves))
    runs = [c.runs[k] for c in parts.curves if c.runs for k in ("zero", "negative")]
    if log and (n := sum(r.count for r in runs)):
        unit = ("step", "steps") if x == "steps" else ("batch", "batches")
        parts.notes.append(f"log scale: LR ≤ 0 at {counted(n, *unit)}"
                           " cannot be drawn; shaded instead")  # fmt: skip
    return parts


def fmt_lr(v: float, _pos: object = None) -> str:
    """``1.3e-3`` style (``0`` for zero, plain for 0.1 ≤ |v| < 1000)."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    if 0.1 <= abs(v) < 1000:
        return f"{v:.3g}"
    mant, exp = f"{v:.2e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"


def fmt_count(v: float, _pos: object = None) -> str:
    """``400k``, ``1.5M`` style for batch and image counts."""
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.4g}{suf}"
    return f"{v:.4g}"


#: Overlay line styles; marker label size (points), head room rows (axes fraction of
#: each row's top), boundary kinds labelled first, ink; layer window colours.
_DASHES: dict[str, Any] = {"torch": (0, (4, 3)), "approx": (0, (6, 2, 1, 2))}
_LABEL_SIZE = 7.5
_LABEL_ROWS = (0.985, 0.91, 0.835)
_FIRST_LABELS = ("burn_in", "max_batches", "resume")
_INK = "0.15"
_BOX = {"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1}
_LAYER_COLOURS = ("#2ca02c", "#17becf", "#8c564b", "#e377c2", "#bcbd22")


def _dark(data: PlotData) -> list[int]:
    """The index of each variant's darknet curve (overlays follow their curve)."""
    return [i for i, c in enumerate(data.curves) if c.kind == "darknet"]


def _stairs(c: Curve | ErrorPanel, xpu: float, log: bool = False) -> list[Any]:
    """x of each start and the end; lo and hi, last value repeated (log: only > 0)."""
    ys: list[Any] = [np.append(y, y[-1:]) for y in (c.lo, c.hi)]
    ys = [np.where(y > 0, y, np.nan) for y in ys] if log else ys
    return [np.append(c.start, c.stop[-1:]) * xpu, *ys]


def _draw_curves(ax: Any, data: PlotData, legend: bool) -> None:
    """Step lines; an envelope is a band between its min and max lines."""
    dark = _dark(data)
    for idx, c in enumerate(data.curves):
        own = c.kind == "darknet"
        col = f"C{dark.index(idx) % 10}" if own else "black"
        xs, ylo, yhi = _stairs(c, c.x_per_unit, data.log)
        name = "darknet (C formula)" if len(dark) == 1 and own else c.label
        label = name if legend and len(data.curves) > 1 else None
        step = {"drawstyle": "steps-post", "color": col, "ls": _DASHES.get(c.kind, "-")}
        if own and not c.exact:
            ax.fill_between(xs, ylo, yhi, step="post", color=col, alpha=0.35, lw=0,
                            zorder=2)  # fmt: skip
        lw = (1.6 if c.exact else 1.2) if own else 1.0
        ax.plot(xs, yhi, lw=lw, label=label, zorder=3 if own else 4, **step)
        if not c.exact:  # an envelope: its lower line too
            ax.plot(xs, ylo, lw=0.8 if own else 0.7, zorder=3 if own else 4, **step)


def _draw_regions(ax: Any, data: PlotData) -> list[Any]:
    """Shade the regions; a legend handle per kind (its first span) and layer window."""
    from matplotlib.patches import Patch

    dark, handles, shaded = _dark(data), {}, set()
    sym = "i" if data.domain == "steps" else "b"
    labels = list(dict.fromkeys(r.label for r in data.regions if r.label))
    for r in data.regions:
        c = data.curves[dark[r.curve]]
        x0, x1 = r.first * c.x_per_unit, (r.last + 1) * c.x_per_unit
        text, colr, hatch = KINDS[r.kind]
        if r.kind == "layers":  # a colour and a legend entry per layer rule
            i = labels.index(r.label)
            text, colr = r.label, _LAYER_COLOURS[i % len(_LAYER_COLOURS)]
        style: dict[str, Any] = {"facecolor": colr, "hatch": hatch, "edgecolor": colr}
        if (r.kind, r.label, x0, x1) not in shaded:
            shaded.add((r.kind, r.label, x0, x1))
            ax.axvspan(x0, x1, alpha=0.18, lw=0, zorder=1, **style)
        if (r.label or r.kind) in handles:
            continue
        span = f"{sym} = {r.first:,}" + (f"–{r.last:,}" if r.last != r.first else "")
        span = f"{c.label}: {span}" if r.kind == "after" and len(dark) > 1 else span
        more = len({(q.first, q.last) for q in data.regions if q.kind == r.kind}) - 1
        span = "" if r.label else f" ({span}{f' and {more} more' if more else ''})"
        handles[r.label or r.kind] = Patch(alpha=0.3, label=text + span, **style)
    return list(handles.values())


def _draw_markers(ax: Any, data: PlotData, span: tuple[float, float]) -> int:
    """A dot per marker, a label per position (:data:`_FIRST_LABELS` first) in a free
    head room slot; how many got none."""
    dark, size = _dark(data), 3.5 if len(data.markers) <= 40 else 2.0
    groups: dict[float, list[Marker]] = {}
    for m in data.markers:
        if math.isfinite(m.lr) and (m.lr > 0 or not data.log):
            x = m.at * data.curves[dark[m.curve]].x_per_unit
            groups.setdefault(x, []).append(m)
            ax.plot([x], [m.lr], "o", ms=size, color=f"C{m.curve % 10}", zorder=5)
    sym, labels = "i = " if data.domain == "steps" else "", []
    for x, ms in groups.items():
        names = " | ".join(dict.fromkeys(m.label for m in ms))
        lrs = " / ".join(dict.fromkeys(fmt_lr(m.lr) for m in ms))
        later = all(m.kind not in _FIRST_LABELS for m in ms)
        labels.append((later, x, f"{names}\n{sym}{ms[0].at:,}: LR {lrs}"))
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    taken: list[list[tuple[float, float]]] = [[] for _ in _LABEL_ROWS]
    skipped = 0
    for _, x, text in sorted(labels):
        f = (x - span[0]) / (span[1] - span[0])
        w = max(map(len, text.split("\n"))) * 0.55 * _LABEL_SIZE / width_pt + 0.01
        spots = [(r, a) for r in range(len(_LABEL_ROWS)) for a in (f, f - w)
                 if -0.01 <= a and a + w <= 1.01
                 and all(a + w <= lo or a >= hi for lo, hi in taken[r])]  # fmt: skip
        if not spots:
            skipped += 1
            continue
        row, a = spots[0]
        taken[row].append((a, a + w))
        ax.axvline(x, color=_INK, lw=0.6, alpha=0.3, zorder=1)
        ax.text(x, _LABEL_ROWS[row], f" {text} ", transform=ax.get_xaxis_transform(),
                ha="left" if a == f else "right", va="top", fontsize=_LABEL_SIZE,
                color=_INK, parse_math=False, zorder=6, bbox=_BOX)  # fmt: skip
    return skipped


def _draw_errors(ax: Any, data: PlotData) -> None:
    """The error panel (ulps, or relative % on a symlog beyond ±100 %) and summary."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    rel = any(e.unit == "rel" for e in data.errors)
    scale, top = (100.0 if rel else 1.0), 0.0
    for e in data.errors:
        if e.start.size:
            xs, lo, hi = _stairs(e, data.curves[e.curve].x_per_unit)
            lo, hi = lo * scale, hi * scale
            top = max(top, float(np.nanmax(np.abs(np.concatenate((lo, hi, [0.0]))))))
            ax.fill_between(xs, lo, hi, step="post", color="black", alpha=0.3, lw=0)
            for y in (hi, lo):
                ax.plot(xs, y, color="black", lw=0.8, drawstyle="steps-post")
    summary = "; ".join(e.summary for e in data.errors)
    ax.text(0.005, 0.95, summary, transform=ax.transAxes, fontsize=7, va="top",
            parse_math=False)  # fmt: skip
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel("(approx − C) / C\n(%)" if rel else "torch − C\n(float32 ulps)")
    if rel and top > 100:  # symmetric log, ticks at 0, ±10^(d/2) and ±10^d
        ax.set_yscale("symlog", linthresh=1.0)
        dec = math.floor(math.log10(top))
        up = [float(10 ** (dec // 2)), float(10**dec)]
        ax.yaxis.set_major_locator(FixedLocator([-u for u in up] + [0.0] + up))
        ax.yaxis.set_major_formatter(FuncFormatter(fmt_lr))
    ax.grid(True, alpha=0.3)


def _panel_axes(ax: Any, data: PlotData, size: float, legend: bool) -> tuple[Any, int]:
    """Draw ``data`` on ``ax`` (tick formats, title, grid, x range and head room for the
    marker labels): legend handles, how many boundaries got no label."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    xpu = data.curves[0].x_per_unit
    lo, hi = data.first * xpu, (data.last + 1) * xpu
    span = (lo, hi + 0.015 * (hi - lo))  # a little room right of the last position
    _draw_curves(ax, data, legend)
    handles = _draw_regions(ax, data)
    unlabelled = _draw_markers(ax, data, span)
    ax.yaxis.set_major_formatter(FuncFormatter(fmt_lr))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt_count))
    if data.log:
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(data.title, fontsize=size, parse_math=False)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_xlim(*span)
    ymin, ymax = ax.get_ylim()
    if data.log:
        ax.set_ylim(ymin, ymax * (ymax / ymin) ** 0.5)
    else:
        ax.set_ylim(min(ymin, 0.0), ymax + 0.5 * (ymax - min(ymin, 0.0)))
    return handles, unlabelled


def draw(data: PlotData, figure: Any = None) -> Any:
    """A matplotlib ``Figure`` of ``data`` (the legend below the axes, never over the
    curves, and a notes box); headless unless ``figure`` comes from pyplot."""
    from matplotlib.figure import Figure

    fig = figure if figure is not None else Figure(layout="constrained")
    fig.set_size_inches(11.0, 6.8 if data.errors else 5.6)
    layout: list[Any] = [["zoom", "main"] if data.zoom else ["main"]]
    kw: dict[str, Any] = {"width_ratios": [1, 2.6]} if data.zoom else {}
    if data.errors:
        layout.append([".", "err"] if data.zoom else ["err"])
        kw["height_ratios"] = [3, 1]
    axes: dict[str, Any] = fig.subplot_mosaic(layout, **kw)
    ax = axes["main"]
    handles, unlabelled = _panel_axes(ax, data, 11, legend=True)
    ylabel = "learning rate" + (" (log scale)" if data.log else "")
    axes["zoom" if data.zoom else "main"].set_ylabel(ylabel)
    hs = ax.get_legend_handles_labels()[0] + handles  # the legend below the axes
    if hs:
        labels = [h.get_label() for h in hs]
        legend = fig.legend(hs, labels, loc="outside lower center",
                            ncols=min(len(hs), 3), fontsize=8, frameon=False)  # fmt: skip
        for t in legend.get_texts():  # cfg names and values: no mathtext
            t.set_parse_math(False)
    notes = list(data.notes)
    if unlabelled:
        more = counted(unlabelled, "boundary", "boundaries")
        notes.append(f"{more} marked by a dot only (no room for the label)")
    if notes:
        ax.text(0.005, 0.005, "\n".join(notes), transform=ax.transAxes, fontsize=7,
                va="bottom", ha="left", color="0.25", parse_math=False,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})  # fmt: skip
    if data.zoom is not None:
        _panel_axes(axes["zoom"], data.zoom, 9, legend=False)
        axes["zoom"].set_xlabel(data.x_label, fontsize=8)
    if data.errors:
        axes["err"].sharex(ax)
        ax.tick_params(labelbottom=False)
        _draw_errors(axes["err"], data)
    axes["err" if data.errors else "main"].set_xlabel(data.x_label)
    return fig


def save(fig: Any, stream: Any, fmt: str, dpi: int = 150) -> None:
    """Write ``fig`` as ``fmt`` to the binary ``stream``, marked as cfgsched's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    meta = {"Software": "cfgsched"} if fmt == "png" else {"Creator": "cfgsched"}
    fig.savefig(stream, format=fmt, dpi=dpi, metadata=meta)
