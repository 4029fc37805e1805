"""Plot darknet learning-rate schedules: the data (:func:`plot_data`) and the figure (:func:`draw`).

:func:`plot_data` computes everything a figure shows as plain arrays, without matplotlib:
per curve the LR at every x position (small ranges) or a min/max envelope per pixel column
(large ranges, in chunks: bounded memory, no one-point spike lost), the boundary markers
with their LR, the ranges where the LR is NaN, infinite, zero or negative, and a zoomed
panel of a phase too short to see in the whole run (burn-in). Positions are darknet
batches b, or 0-based optimizer steps i with x in steps; every LR is what the run
translated by the variant's :class:`~cfgsched.options.Options` trains with.
``--vs`` overlays DarknetLR stepped in torch or a framework's fitted built-in schedule
(:class:`Approx`, always called an approximation). The what-if edits go through
:func:`cfgsched.tools.editor.edit_schedule`, the editor of ``adjust``.
"""

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
from cfgsched.kernel.formulas import ngpus_lr
from cfgsched.options import Options
from cfgsched.run import MAX_BATCH, TRACE_LIMIT, Run, translate
from cfgsched.schedule import NetSchedule
from cfgsched.tools import stepping
from cfgsched.tools.editor import Edit, edit_schedule
from cfgsched.tools.text import counted

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Envelope columns (at least the pixel width of the plot at 200 dpi).
COLUMNS = 2000
#: Ranges up to this many positions are plotted one by one (no envelope).
EXACT_LIMIT = 20_000
#: Positions evaluated per chunk (bounds memory: ~60 bytes per position in flight).
CHUNK = 1 << 20
#: Above this many positions each column is sampled (boundaries ±1 always included).
FULL_LIMIT = 100_000_000
#: Samples per column above :data:`FULL_LIMIT`.
COLUMN_SAMPLES = 257
SAMPLED_NOTE = f"each column from {COLUMN_SAMPLES} samples plus every boundary ±1"
#: Regions listed per curve and kind before neighbouring ones are merged.
MAX_REGIONS = 100
#: Curves per figure at most (overlays multiply: cfgs × forks × gpus × option values).
MAX_CURVES = 12
#: Boundaries marked per curve at most (the note counts the rest exactly).
MAX_MARKS = 1000
#: A first phase shorter than this fraction of the x range gets a zoomed panel.
ZOOM_FRACTION = 0.02
#: Largest ``--from``/``--to`` (batches or steps).
MAX_POSITION = 1 << 62
#: x axis units; "steps" puts the curves on optimizer steps, the others on batches.
X_UNITS = ("batches", "images", "epochs", "steps")
REGION_KINDS = ("nan", "inf", "zero", "negative")
#: The cfg plotted without a CFG: darknet's defaults (input size and one layer only so that
#: hankai, which refuses a network without them, accepts it; they do not touch the LR).
DEFAULTS_CFG = "[net]\nwidth=416\nheight=416\nchannels=3\n\n[maxpool]\n"
#: The cfg ``cfgsched plot`` draws without a CFG: the detector recipe of AlexeyAB's guide
#: ("How to train to detect your custom objects", yolov4-custom.cfg): burn_in 1000, steps
#: at 80 % and 90 % of max_batches (rescaled with it), scales .1,.1, learning_rate 0.001.
RECIPE_CFG = (
    "[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nchannels=3\n"
    "momentum=0.949\ndecay=0.0005\nlearning_rate=0.001\nburn_in=1000\n"
    "max_batches=6000\npolicy=steps\nsteps=4800,5400\nscales=.1,.1\n\n[maxpool]\n"
)
RECIPE_NAME = "AlexeyAB's detector recipe"
_RECIPE_OTHER_POLICY = RECIPE_CFG.replace(
    "policy=steps\nsteps=4800,5400\nscales=.1,.1\n", ""
)

#: ``translation(schedule, ngpus)`` gives a curve's translation options.
TranslationFor = Callable[[NetSchedule, int], Options]


# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One curve to draw: a parsed schedule, its legend label and translation options."""

    schedule: NetSchedule
    label: str
    options: Options = field(default_factory=Options)
    name: str = ""

    @property
    def gpus(self) -> int:
        """darknet's ``-gpus`` count of this curve."""
        return self.options.ngpus


def warning_lines(variants: Sequence[Variant]) -> list[str]:
    """The parser's warnings for ``variants`` as ``source:line:col: CODE message``, each
    once; with several forks each line names the fork that raised it."""
    forks = {v.schedule.fork for v in variants}
    out: dict[str, None] = {}
    for v in variants:
        for w in v.schedule.warnings:
            line = w.format(v.schedule.source)
            out[f"{line} [{v.schedule.fork}]" if len(forks) > 1 else line] = None
    return list(out)


def _label(
    name: str, fork: str, ngpus: int, varied: Sequence[str], flags: Sequence[bool]
) -> str:
    """A legend label naming what differs between the curves (``flags``: several cfgs,
    forks, GPU counts)."""
    gpus = f"{ngpus} GPU{'s' if ngpus > 1 else ''}"
    parts = [p for p, f in zip((name, fork, gpus), flags, strict=True) if f]
    parts.extend(varied)
    gp = f", {ngpus} GPUs" if ngpus > 1 else ""
    return ", ".join(parts) if parts else f"{name} ({fork}{gp})"


def build_variants(
    cfgs: Sequence[tuple[str, str]],
    *,
    forks: Sequence[str] = ("alexeyab",),
    gpus: Sequence[int] = (1,),
    options: Mapping[str, Sequence[str]] | None = None,
    translation: TranslationFor | None = None,
    recipe: bool = False,
    rescale: bool = False,
) -> list[Variant]:
    """Every combination of cfg × fork × gpus × option value, labelled by what differs.

    ``cfgs`` holds ``(text, source)`` pairs (none: darknet's defaults, or with ``recipe``
    :data:`RECIPE_CFG`, whose steps follow a new max_batches unless steps are given);
    ``options`` maps a ``[net]`` key to its values (several values: one curve each),
    applied by ``adjust``'s editor; ``translation(schedule, ngpus)`` gives each curve's
    options (default: ``-gpus`` only); ``rescale``: a new max_batches moves the steps.
    """
    opts = {k: list(v) for k, v in (options or {}).items() if v}
    none = (RECIPE_CFG, RECIPE_NAME) if recipe else (DEFAULTS_CFG, "darknet defaults")
    items = list(cfgs) or [none]
    keys = list(opts)
    combos = list(itertools.product(items, forks or ("alexeyab",), gpus or (1,),
                                    itertools.product(*(opts[k] for k in keys))))  # fmt: skip
    if len(combos) > MAX_CURVES:
        why = f"{len(combos)} curves: at most {MAX_CURVES} in one figure"
        raise CfgError("plot", None, None, why)
    how = translation or (lambda s, n: Options(ngpus=n))
    flags = (len(items) > 1, len(set(forks)) > 1, len(set(gpus)) > 1)
    varied = [k for k in keys if len(opts[k]) > 1]
    default = "[net] from options" if opts else "darknet defaults"
    out = []
    for (text, source), fork, ngpus, vals in combos:
        values = dict(zip(keys, vals, strict=True))
        if not cfgs and recipe and values.get("policy", "steps").strip() != "steps":
            text = _RECIPE_OTHER_POLICY  # the recipe's steps are for policy=steps
        own = not cfgs and recipe and "steps" not in values
        edits = [Edit(k, v) for k, v in values.items()]
        _, sched = edit_schedule(
            text, edits, fork=fork, source=source, rescale=rescale or own
        )
        name = Path(source).name if cfgs else RECIPE_NAME if recipe else default
        label = _label(name, fork, ngpus, [f"{k}={values[k]}" for k in varied], flags)
        out.append(Variant(sched, label, how(sched, ngpus), name))
    return out


def recipe_note(variants: Sequence[Variant], changed: bool) -> str:
    """What is drawn without a cfg (for stderr); ``changed``: options were given."""
    mb = " and ".join(
        f"{m:,}" for m in sorted({v.schedule.max_batches for v in variants})
    )
    mine = ", with your options applied" if changed else ""
    return (
        f"no cfg: {RECIPE_NAME} (policy=steps, learning_rate=0.001, burn_in=1000, "
        f"steps at 80% and 90% of max_batches {mb}, scales=.1,.1){mine}; "
        "pass a cfg to plot yours"
    )


# ----------------------------------------------------------------------------- plot data


@dataclass(frozen=True)
class Curve:
    """One plotted curve: point k covers positions ``start[k] .. stop[k] - 1``.

    Positions are the figure's domain (darknet batches, or optimizer steps with x in
    steps). ``lo``/``hi`` are the smallest/largest finite LR there (NaN when there is
    none); ``exact``: one point per position. ``x_per_unit`` converts positions to x.
    """

    label: str
    kind: str
    start: I64
    stop: I64
    lo: F32
    hi: F32
    exact: bool
    sampled: bool
    x_per_unit: float
    gpus: int = 1


@dataclass(frozen=True)
class Marker:
    """A labelled boundary of curve ``curve`` at position ``at`` (darknet batch ``batch``,
    or the first optimizer step reaching it) with the LR there."""

    curve: int
    batch: int
    kind: str
    label: str
    lr: float
    at: int


@dataclass(frozen=True)
class Region:
    """Positions ``first .. last`` of curve ``curve`` where the LR is ``kind``: nan, inf,
    zero or negative; or "after" for positions past the end of the curve's run."""

    curve: int
    kind: str
    first: int
    last: int


@dataclass(frozen=True)
class ErrorPanel:
    """The error of curve ``curve`` against darknet per column, from the compared steps:
    torch − C in signed float32 ulps (``unit`` "ulp"), or an approximation's signed
    relative error (approx − C) / C ("rel"; NaN where darknet's LR is 0). ``summary``:
    the panel's one-line report (built from the fields when empty)."""

    curve: int
    start: I64
    stop: I64
    lo: F64
    hi: F64
    max_ulp: float
    max_rel: float
    steps: int
    coverage: str
    unit: str = "ulp"
    summary: str = ""


@dataclass(frozen=True)
class PlotData:
    """Everything a figure shows; arrays are positions in ``domain`` ("batches" or
    "steps"), ``x`` and ``x_label`` name the x unit; ``reports``: the approximations'
    measured error, one line each (for stderr); ``zoom``: the same figure over a short
    first phase (burn-in), drawn beside the whole run, or None."""

    title: str
    first: int
    last: int
    curves: tuple[Curve, ...]
    markers: tuple[Marker, ...]
    regions: tuple[Region, ...]
    errors: tuple[ErrorPanel, ...]
    x: str
    x_label: str
    log: bool
    notes: tuple[str, ...]
    domain: str = "batches"
    reports: tuple[str, ...] = ()
    zoom: PlotData | None = None


def column_edges(first: int, last: int, columns: int = COLUMNS) -> I64:
    """Start positions of the columns covering ``first .. last`` plus ``last + 1``."""
    steps = np.arange(columns + 1, dtype=np.float64) * ((last - first + 1) / columns)
    edges = first + steps.astype(np.int64)
    edges[-1] = last + 1
    return np.unique(edges)


class _Runs:
    """Runs of consecutive evaluated positions where a mask holds, fed chunk by chunk;
    beyond a few times ``limit`` runs, those with the smallest gaps merge (bounded)."""

    def __init__(self, limit: int = MAX_REGIONS) -> None:
        self.limit = limit
        self.lo = np.zeros(0, dtype=np.int64)
        self.hi = np.zeros(0, dtype=np.int64)
        self.tail = False  # the previous chunk ended inside a run
        self.count = 0  # positions where the mask holds
        self.runs = 0  # runs before any merging

    def feed(self, b: I64, mask: npt.NDArray[np.bool_]) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            self.tail = False
            return
        self.count += int(idx.size)
        cuts = np.flatnonzero(np.diff(idx) != 1) + 1
        lo = b[idx[np.concatenate(([0], cuts))]]
        hi = b[idx[np.concatenate((cuts, [idx.size])) - 1]]
        if self.tail and idx[0] == 0 and self.lo.size:
            self.hi[-1] = hi[0]
            lo, hi = lo[1:], hi[1:]
        self.runs += int(lo.size)
        self.lo = np.concatenate((self.lo, lo))
        self.hi = np.concatenate((self.hi, hi))
        self.tail = bool(mask[-1])
        if self.lo.size > 4 * self.limit:
            self._compact()

    def _compact(self) -> None:
        n = self.lo.size
        if n <= self.limit:
            return
        gaps = self.lo[1:] - self.hi[:-1]
        keep = np.sort(np.argsort(gaps, kind="stable")[n - self.limit :])
        self.lo = self.lo[np.concatenate(([0], keep + 1))]
        self.hi = self.hi[np.concatenate((keep, [n - 1]))]

    def merged(self) -> list[tuple[int, int]]:
        """The runs (at most ``limit``; neighbours with the smallest gaps merged)."""
        self._compact()
        return list(zip(self.lo.tolist(), self.hi.tolist(), strict=True))


#: ``values(positions)``: the LR at int64 positions.
Values = Callable[[I64], npt.NDArray[np.floating[Any]]]


@dataclass(frozen=True)
class Envelope:
    """The LR over a range of positions, as :func:`envelope` computes it.

    ``regions``: kind -> merged runs; ``counts``: kind -> (positions, runs before merging).
    """

    start: I64
    stop: I64
    lo: F32
    hi: F32
    exact: bool
    sampled: bool
    regions: dict[str, list[tuple[int, int]]]
    counts: dict[str, tuple[int, int]]


class _Folder:
    """Column minima/maxima and special-value runs, fed chunk by chunk."""

    def __init__(self, columns: int) -> None:
        self.lo = np.full(columns, np.inf, dtype=np.float32)
        self.hi = np.full(columns, -np.inf, dtype=np.float32)
        self.runs = {k: _Runs() for k in REGION_KINDS}

    def feed(
        self, pos: I64, v: npt.NDArray[np.floating[Any]], c0: int, offs: I64
    ) -> None:
        """Fold the values ``v`` at ``pos`` (column ``c0 + k`` starts at ``offs[k]``)."""
        masks = (np.isnan(v), np.isinf(v), v == 0, v < 0)
        for k, m in zip(REGION_KINDS, masks, strict=True):
            self.runs[k].feed(pos, m)
        v32 = v.astype(np.float32)
        fin = np.isfinite(v32)
        c1 = c0 + offs.size
        vmin = np.where(fin, v32, np.float32(np.inf)).astype(np.float32)
        vmax = np.where(fin, v32, np.float32(-np.inf)).astype(np.float32)
        np.minimum(self.lo[c0:c1], np.minimum.reduceat(vmin, offs), out=self.lo[c0:c1])
        np.maximum(self.hi[c0:c1], np.maximum.reduceat(vmax, offs), out=self.hi[c0:c1])

    def result(self, start: I64, stop: I64, exact: bool, sampled: bool) -> Envelope:
        lo = np.where(np.isinf(self.lo) & (self.lo > 0), np.float32(np.nan), self.lo)
        hi = np.where(np.isinf(self.hi) & (self.hi < 0), np.float32(np.nan), self.hi)
        regions = {k: r.merged() for k, r in self.runs.items()}
        counts = {k: (r.count, r.runs) for k, r in self.runs.items()}
        f32 = np.float32
        return Envelope(start, stop, lo.astype(f32), hi.astype(f32), exact, sampled,
                        regions, counts)  # fmt: skip


def envelope(
    values: Values,
    first: int,
    last: int,
    columns: int = COLUMNS,
    extra: Sequence[int] = (),
) -> Envelope:
    """The LR ``values`` over the positions ``first .. last`` (see :class:`Envelope`).

    Up to :data:`EXACT_LIMIT` positions every position is a point. Beyond, each of
    ``columns`` columns keeps the min and max finite LR of every position in it (computed
    in chunks of :data:`CHUNK`); beyond :data:`FULL_LIMIT` positions, of evenly spaced
    samples plus every position in ``extra`` (boundaries ±1).
    """
    n = last - first + 1
    if n <= EXACT_LIMIT:
        pos = np.arange(first, last + 1, dtype=np.int64)
        fold = _Folder(n)
        fold.feed(pos, values(pos), 0, np.arange(n, dtype=np.int64))
        return fold.result(pos, pos + 1, True, False)
    edges = column_edges(first, last, columns)
    fold = _Folder(edges.size - 1)
    if n <= FULL_LIMIT:
        c0 = 0
        while c0 < edges.size - 1:  # whole columns of about CHUNK positions
            c1 = int(np.searchsorted(edges, edges[c0] + CHUNK, side="right")) - 1
            c1 = min(max(c1, c0 + 1), edges.size - 1)
            pos = np.arange(edges[c0], edges[c1], dtype=np.int64)
            fold.feed(pos, values(pos), c0, edges[c0:c1] - edges[c0])
            c0 = c1
    else:
        near = np.asarray(sorted(extra), dtype=np.int64)
        for c0 in range(0, edges.size - 1, 64):
            c1 = min(c0 + 64, edges.size - 1)
            pts = [np.linspace(edges[c], edges[c + 1] - 1, COLUMN_SAMPLES).astype(np.int64)
                   for c in range(c0, c1)]  # fmt: skip
            inside = near[(near >= edges[c0]) & (near < edges[c1])]
            pos = np.unique(np.concatenate([*pts, inside]))
            fold.feed(pos, values(pos), c0, np.searchsorted(pos, edges[c0:c1]))
    return fold.result(edges[:-1], edges[1:], False, n > FULL_LIMIT)


# ----------------------------------------------------------------------------- one curve


@dataclass(frozen=True)
class Source:
    """One variant's translated run on the figure's domain (batches or steps)."""

    variant: Variant
    t: Run
    trained: NetSchedule
    steps: bool

    @classmethod
    def of(cls, v: Variant, steps: bool) -> Source:
        t = translate(v.schedule, v.options)
        return cls(v, t, t.schedule, steps)

    def values(self, pos: I64) -> npt.NDArray[np.floating[Any]]:
        """The LR at the positions ``pos``."""
        if self.steps:
            return self.t.lrs(pos)
        return self.t.batch_lrs(pos)

    def end(self) -> tuple[int, str]:
        """The last position of the run and a note (when max_batches is 0)."""
        if self.steps:
            return self.t.stop - 1, self.t.note
        return self.t.span

    def begin(self) -> int:
        """The default first position: b = 1, or the first step of the (resumed) run."""
        return self.t.start if self.steps else 1

    def marks(
        self, lo: int, hi: int, limit: int = MAX_MARKS
    ) -> tuple[list[tuple[int, Boundary]], int]:
        """``(position, boundary)`` inside ``lo .. hi`` and how many were cut."""
        b0, b1 = lo, hi
        if self.steps:
            b0, b1 = self.t.batch(lo), max(self.t.batch(hi), self.t.batch(lo))
        marks, cut = boundaries(self.trained, max(b0, 1), b1, limit=limit)
        where = [m.batch for m in marks]
        if self.steps:
            where = [self.t.first_step(b) for b in where]
        return [(p, m) for p, m in zip(where, marks, strict=True) if lo <= p <= hi], cut

    def extra(self, lo: int, hi: int) -> list[int]:
        """Boundary positions ±1 (sampled in ranges over :data:`FULL_LIMIT`), else []."""
        if hi - lo + 1 <= FULL_LIMIT:
            return []
        return [p + d for p, _ in self.marks(lo, hi, 10_000)[0] for d in (-1, 0, 1)]


@dataclass
class _Parts:
    """What one variant adds to a figure."""

    curves: list[Curve] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    errors: list[ErrorPanel] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    nonpositive: int = 0
    reports: list[str] = field(default_factory=list)

    def add(self, part: _Parts) -> None:
        for name in ("curves", "markers", "regions", "errors", "notes", "reports"):
            getattr(self, name).extend(getattr(part, name))
        self.nonpositive += part.nonpositive


_KIND_WORDS = {"nan": "NaN", "inf": "infinite", "zero": "0", "negative": "negative"}


def _darknet_curve(
    k: int, src: Source, lo: int, hi: int, xpu: float, columns: int, log: bool
) -> _Parts:
    """Curve ``k``: the envelope, its special regions, the after-the-run region."""
    v = src.variant
    env = envelope(src.values, lo, hi, columns, src.extra(lo, hi))
    out = _Parts()
    out.curves.append(Curve(v.label, "darknet", env.start, env.stop, env.lo, env.hi,
                            env.exact, env.sampled, xpu, v.gpus))  # fmt: skip
    unit = "steps" if src.steps else "batches"
    for kind, (count, runs) in env.counts.items():
        if runs > MAX_REGIONS:
            out.notes.append(
                f"{v.label}: LR {_KIND_WORDS[kind]} at {count:,} {unit} in {runs:,} runs,"
                f" shaded as {MAX_REGIONS} merged regions"
            )
        if log and kind in ("zero", "negative"):
            out.nonpositive += count
    if env.sampled:
        out.notes.append(f"{hi - lo + 1:,} {unit}: {SAMPLED_NOTE}")
    for kind, spans in env.regions.items():
        out.regions.extend(Region(k, kind, a, b) for a, b in spans)
    end, _ = src.end()
    if src.trained.max_batches > 0 and end < hi:
        out.regions.append(Region(k, "after", max(end + 1, lo), hi))
    return out


def _markers(k: int, src: Source, lo: int, hi: int) -> _Parts:
    """Curve ``k``'s boundary markers (and the resume point) with the LR there."""
    out = _Parts()
    marks, cut = src.marks(lo, hi)
    t = src.t
    if t.start and lo <= (at := t.start if src.steps else t.batch(t.start)) <= hi:
        marks.append((at, Boundary(t.batch(t.start), "resume", "resume")))
        marks.sort(key=lambda pm: pm[0])
    if marks:
        vals = src.values(np.array([p for p, _ in marks], dtype=np.int64)).tolist()
        out.markers.extend(
            Marker(k, m.batch, m.kind, m.label, float(val), p)
            for (p, m), val in zip(marks, vals, strict=True)
        )
    if cut:
        more = counted(cut, "more boundary", "more boundaries")
        out.notes.append(f"{src.variant.label}: {more} not marked")
    return out


# ----------------------------------------------------------------------------- torch


@dataclass(frozen=True)
class _TorchRun:
    """The torch scheduler stepped for real: positions, its LR, the expected LR there."""

    pos: I64
    got: F64
    expected: F64
    coverage: str


def _torch_steps(src: Source, lo: int, hi: int) -> tuple[int, int]:
    """The optimizer steps ``i0 .. i1`` whose position lies in ``lo .. hi`` (resumed runs
    start at their resume step)."""
    if src.steps:
        i0, i1 = lo, hi
    else:
        i0, i1 = src.t.first_step(lo), src.t.first_step(hi + 1) - 1
    return max(i0, src.t.start), i1


def _torch_values(src: Source, lo: int, hi: int) -> _TorchRun:
    """Step :class:`~cfgsched.translate.scheduler.DarknetScheduler` (what ``DarknetLR``
    runs) under the curve's translation over the steps of ``lo .. hi``."""
    t = src.t
    i0, i1 = _torch_steps(src, lo, hi)
    if i1 < i0:
        none = np.zeros(0, dtype=np.int64)
        return _TorchRun(none, np.zeros(0), np.zeros(0), "no torch step in range")
    count = i1 - i0 + 1
    windows, note = [(i0, i1 + 1)], "every step"
    if count > stepping.EXHAUSTIVE_LIMIT:
        marks = [m.batch for _, m in src.marks(lo, hi)[0]]
        at = [t.first_step(b) for b in marks]
        around = stepping.sample_windows(count, [a - i0 for a in at])
        windows = [(i0 + s, i0 + e) for s, e in around]
        note = "boundaries and a dense sample of steps"
    factory = stepping.class_factory(t)
    steps: list[I64] = []
    got: list[F64] = []
    for w0, w1 in windows:
        steps.append(np.arange(w0, w1, dtype=np.int64))
        got.extend(stepping.torch_lrs(factory, t.cfg_lr, w0, w1 - w0))
    i = np.concatenate(steps)
    expected = np.asarray(t.lrs(i), dtype=np.float64)
    pos = i if src.steps else t.batches(i)
    keep = np.flatnonzero((pos >= lo) & (pos <= hi))
    order = keep[np.argsort(pos[keep], kind="stable")]
    return _TorchRun(pos[order], np.concatenate(got)[order], expected[order], note)


def _per_column(base: Curve, pos: I64) -> tuple[I64, I64]:
    """For sorted ``pos``: the first index of each run in one column of ``base`` and
    that column."""
    col = np.searchsorted(base.start, pos, side="right") - 1
    keep = np.flatnonzero(np.diff(np.concatenate(([-1], col))) != 0)
    return keep, col[keep]


def _torch_curve(label: str, run: _TorchRun, base: Curve, kind: str = "torch") -> Curve:
    """The LR ``run`` got as a curve on the columns of ``base`` (one point per step if
    exact); ``kind`` "torch" or "approx"."""
    g = run.got.astype(np.float32)
    fin = np.isfinite(g)
    xpu, gpus = base.x_per_unit, base.gpus
    if base.exact or run.pos.size == 0:
        g = np.where(fin, g, np.float32(np.nan)).astype(np.float32)
        return Curve(label, kind, run.pos, run.pos + 1, g, g.copy(), True, False, xpu,
                     gpus)  # fmt: skip
    keep, cols = _per_column(base, run.pos)
    mn = np.minimum.reduceat(np.where(fin, g, np.float32(np.inf)), keep)
    mx = np.maximum.reduceat(np.where(fin, g, np.float32(-np.inf)), keep)
    lo = np.full(base.start.size, np.nan, dtype=np.float32)
    hi = lo.copy()
    lo[cols] = np.where(np.isfinite(mn), mn, np.nan)
    hi[cols] = np.where(np.isfinite(mx), mx, np.nan)
    return Curve(label, kind, base.start, base.stop, lo, hi, False, True, xpu, gpus)


def _panel(
    curve: int, run: _TorchRun, err: F64, base: Curve, tops: tuple[float, float],
    unit: str = "ulp", summary: str = "",
) -> ErrorPanel:  # fmt: skip
    """The signed error ``err`` per compared step, or per column of ``base`` (NaN-aware
    min/max) beyond :data:`EXACT_LIMIT` steps or when ``base`` is an envelope of an
    approximation."""
    n, pos = int(run.pos.size), run.pos
    args = (tops[0], tops[1], n, run.coverage, unit, summary)
    if n == 0 or (base.exact if unit == "rel" else n <= EXACT_LIMIT):
        return ErrorPanel(curve, pos, pos + 1, err, err.copy(), *args)
    keep, cols = _per_column(base, pos)
    lo, hi = np.fmin.reduceat(err, keep), np.fmax.reduceat(err, keep)
    return ErrorPanel(curve, base.start[cols], base.stop[cols], lo, hi, *args)


def _torch_parts(
    k: int, src: Source, lo: int, hi: int, base: Curve, many: bool
) -> _Parts:
    """The ``--vs torch`` curve (index ``k``) and its error panel in signed ulps."""
    run = _torch_values(src, lo, hi)
    label = "PyTorch DarknetLR" + (f" ({src.variant.label})" if many else "")
    _, rel, ulp = stepping.errors(run.expected, run.got)
    signed = np.where(run.got < run.expected, -ulp, ulp)
    tops = (float(ulp.max()), float(rel.max())) if ulp.size else (0.0, 0.0)
    panel = _panel(k, run, signed, base, tops)
    return _Parts(curves=[_torch_curve(label, run, base)], errors=[panel])


# ----------------------------------------------------------------------------- approximations

#: ``--vs`` values that overlay a framework's own built-in schedule fitted to darknet's.
APPROXIMATIONS = ("mmengine", "ultralytics-hyp")


@dataclass(frozen=True)
class Approx:
    """What an approximation overlay needs: ``kind`` (one of :data:`APPROXIMATIONS`),
    the data set size and Ultralytics' ``batch`` (both needed for ultralytics-hyp)."""

    kind: str
    images: int | None = None
    batch: int | None = None

    def check(self, x: str) -> None:
        """Refuse a request the fit cannot serve (one-line CfgError)."""
        opt = f"--vs {self.kind}"
        if self.kind not in APPROXIMATIONS:
            raise ValueError(f"unknown approximation {self.kind!r}")
        if self.kind == "ultralytics-hyp" and not (self.images and self.batch):
            why = "needs --images N (the data set) and --torch-batch T (Ultralytics' batch)"
            raise CfgError(opt, None, None, why)
        if self.kind == "ultralytics-hyp" and x == "steps":
            why = ("Ultralytics' optimizer steps are its own (its accumulate ramps "
                   "during warmup): use --x batches, images or epochs")  # fmt: skip
            raise CfgError(opt, None, None, why)

    def fit(self, src: Source) -> Any:
        """The :class:`~cfgsched.translate.approx.Fit` for ``src``'s variant."""
        from cfgsched.translate import approx

        v = src.variant
        try:
            if self.kind == "mmengine":
                return approx.fit_mmengine(v.schedule, v.options)
            assert self.images and self.batch
            return approx.fit_ultralytics(
                v.schedule, v.options, images=self.images, batch=self.batch
            )
        except ValueError as exc:
            raise CfgError(f"--vs {self.kind}", None, None, str(exc)) from None

    def label(self, fit: Any) -> str:
        """The legend text of the fitted schedule (always called an approximation)."""
        if self.kind == "mmengine":
            return "MMEngine built-in schedulers (approximation)"
        h = fit.hyp
        cos = "cos_lr, " if h["cos_lr"] else ""
        return (
            f"Ultralytics lr0={h['lr0']:g}, lrf={h['lrf']:g}, {cos}"
            f"warmup_epochs={h['warmup_epochs']:g} (approximation)"
        )


def _approx_parts(
    k: int, src: Source, lo: int, hi: int, base: Curve, many: bool, how: Approx
) -> _Parts:
    """The ``--vs mmengine|ultralytics-hyp`` curve (index ``k``), its relative error
    panel and its report line."""
    fit = how.fit(src)
    pos = np.arange(fit.steps, dtype=np.int64) if src.steps else fit.batches
    keep = np.flatnonzero((pos >= lo) & (pos <= hi))
    rel = fit.relative_error()[keep]
    f, d = fit.framework_lr[keep], fit.darknet_lr[keep]
    run = _TorchRun(pos[keep], f, d, "every step")
    label = how.label(fit) + (f" ({src.variant.label})" if many else "")
    who = f"{src.variant.label}: " if many else ""
    report = f"{who}{fit.framework} {fit.comment()[0]}"
    fin = rel[np.isfinite(rel)]
    tops = (math.nan, float(np.abs(fin).max()) if fin.size else math.nan)
    signed = np.where(f < d, -rel, rel)
    return _Parts(
        curves=[_torch_curve(label, run, base, kind="approx")],
        errors=[_panel(k, run, signed, base, tops, "rel", report)],
        reports=[report],
    )


# ----------------------------------------------------------------------------- figure data


def _x_per_unit(x: str, v: Variant, images: int | None) -> float:
    """x units per position: 1 for batches and steps, images per iteration, epochs."""
    ipi = v.schedule.images_per_iteration
    return {"batches": 1.0, "steps": 1.0, "images": float(ipi)}.get(
        x, ipi / float(images or 1)
    )


def _x_label(x: str, images: int | None, sources: Sequence[Source]) -> str:
    if x == "steps":
        maps = {s.t.mapping for s in sources}
        how = f"; {maps.pop()}" if len(maps) == 1 else ""
        return f"optimizer step i (0-based{how})"
    return {
        "batches": "darknet batch (iteration)",
        "images": "images seen (iterations × batch)",
        "epochs": f"epoch ({counted(images, 'image')})" if images else "epoch",
    }[x]


def _check_request(
    x: str, images: int | None, sources: Sequence[Source], vs_torch: bool
) -> None:
    if x not in X_UNITS:
        raise ValueError(f"x must be one of {', '.join(X_UNITS)}, not {x!r}")
    if x == "epochs" and not images:
        why = "needs --images N (images in the data set)"
        raise CfgError("--x epochs", None, None, why)
    if (x == "steps" or vs_torch) and any(s.t.trace_too_long for s in sources):
        why = f"more than {TRACE_LIMIT:,} loop iterations of GPU 0 to follow"
        raise CfgError("--multigpu trace", None, None, why)


def _x_range(
    sources: Sequence[Source], first: int | None, last: int | None
) -> tuple[int, int, list[str]]:
    """The positions to plot (defaults: the runs' first and last) and notes."""
    lo = min(s.begin() for s in sources) if first is None else first
    ends = [s.end() for s in sources] if last is None else [(last, "")]
    notes = list(dict.fromkeys(note for _, note in ends if note))
    hi = max(end for end, _ in ends)
    if hi < lo and first is None and min(s.t.start for s in sources) > hi:
        why = (
            f"resumes at step {lo:,}, past the run's last step {hi:,}: nothing to show"
        )
        raise CfgError("--resume-from", None, None, why)
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
    """The steps source of ``v`` and the optimizer steps of ``plot``'s range (for the
    exported series): the whole run (from its first step, also those before batch 1),
    or the steps whose batch lies in ``first .. last`` (steps themselves with x steps)."""
    src = Source.of(v, True)
    _check_request(x, images, [src], True)
    if x == "steps" or (first is None and last is None):
        lo, hi, notes = _x_range([src], first, last)
        return src, lo, hi, notes
    by_batch = Source.of(v, False)
    b0, b1, notes = _x_range([by_batch], first, last)
    lo, hi = _torch_steps(by_batch, b0, b1)
    return src, src.begin() if first is None else lo, hi, notes


def _variant_notes(src: Source, x: str, vs_torch: bool) -> list[str]:
    """What the translation changes for this curve, in words."""
    v, o, t = src.variant, src.variant.options, src.t
    notes = []
    if v.gpus > 1:
        scaled = ngpus_lr(t.params.fork, 1.0, 2) != 1.0  # the fork's -gpus rule
        how = (
            f"learning_rate × {v.gpus}"
            if scaled
            else "hankai does not scale the learning rate"
        )
        notes.append(f"{v.label}: -gpus {v.gpus}: {how}")
    if o.ideal:
        notes.append(
            f"{v.label}: --ideal: learning_rate / {v.gpus}, burn_in × {v.gpus}"
        )
    if not o.exact:
        notes.append(f"{v.label}: double arithmetic (not darknet's float32)")
    default = Options(ngpus=o.ngpus, ideal=o.ideal, exact=o.exact)
    if (x == "steps" or vs_torch) and (o != default or v.gpus > 1):
        notes.append(f"{v.label}: optimizer step i at {t.mapping}")
    if t.start:
        notes.append(
            f"{v.label}: resumes at step {t.start:,} (b = {t.batch(t.start):,})"
        )
    return notes


def _coincide_notes(curves: Sequence[Curve]) -> list[str]:
    dark = [c for c in curves if c.kind == "darknet"]
    return [
        f"{a.label} and {b.label} coincide (drawn on top of each other)"
        for a, b in itertools.combinations(dark, 2)
        if np.array_equal(a.start, b.start)
        and np.array_equal(a.lo, b.lo, equal_nan=True)
        and np.array_equal(a.hi, b.hi, equal_nan=True)
    ]


def _title(variants: Sequence[Variant], approx: Approx | None) -> str:
    names = list(dict.fromkeys(escape(v.name) for v in variants))
    forks = list(dict.fromkeys(v.schedule.fork for v in variants))
    pols = sorted({v.schedule.policy.cfg_name for v in variants})
    vs = ""
    if approx is not None:
        who = "MMEngine schedulers" if approx.kind == "mmengine" else "Ultralytics hyp"
        vs = f" vs {who} fitted to it (approximation)"
    return (
        f"{' vs '.join(names)}: darknet learning rate{vs} "
        f"({', '.join(pols)} policy; {', '.join(forks)} fork)"
    )


def _zoom_range(sources: Sequence[Source], lo: int, hi: int) -> tuple[int, int] | None:
    """The positions of a zoomed panel when a curve's first phase (up to its first
    boundary: burn-in end, the first step, ...) is under :data:`ZOOM_FRACTION` of the
    range: from ``lo`` to twice the longest such phase; else None."""
    firsts = []
    for s in sources:
        marks, _ = s.marks(lo + 1, hi, limit=2)
        firsts += [p for p, m in marks[:1] if m.kind != "max_batches"]
    if not firsts or max(firsts) - lo >= ZOOM_FRACTION * (hi - lo):
        return None
    return lo, min(hi, lo + 2 * (max(firsts) - lo) + 1)


def _variant_parts(
    parts: _Parts,
    k: int,
    src: Source,
    span: tuple[int, int, float, int],
    log: bool,
    vs: tuple[bool, Approx | None],
    many: bool,
) -> None:
    """Add variant ``k``'s curve, markers and ``--vs`` overlay (``span``: first and
    last position, x per position, columns) to ``parts``."""
    lo, hi, xpu, columns = span
    parts.add(_darknet_curve(k, src, lo, hi, xpu, columns, log))
    parts.add(_markers(k, src, lo, hi))
    base, at = parts.curves[-1], len(parts.curves)
    if vs[0]:
        parts.add(_torch_parts(at, src, lo, hi, base, many))
    elif vs[1] is not None:
        parts.add(_approx_parts(at, src, lo, hi, base, many, vs[1]))


def plot_data(
    variants: Sequence[Variant],
    *,
    first: int | None = None,
    last: int | None = None,
    log: bool = False,
    x: str = "batches",
    images: int | None = None,
    vs_torch: bool = False,
    columns: int = COLUMNS,
    title: str | None = None,
    approx: Approx | None = None,
    zoom: bool = True,
) -> PlotData:
    """Compute the curves, markers, special regions (and torch error) of a figure.

    ``x`` is "batches", "images" (batch × images per iteration), "epochs" (images /
    ``images``) or "steps" (0-based optimizer steps under each variant's translation).
    ``first``/``last`` are positions (batches, or steps for "steps"); they default to the
    whole runs, and then a first phase too short to see gets a zoomed panel (``zoom``).
    ``vs_torch`` adds DarknetLR stepped for real and its error in ulps; ``approx`` a
    framework's fitted built-in schedule and its relative error.
    """
    if not variants:
        raise ValueError("nothing to plot")
    if vs_torch and approx is not None:
        raise ValueError("one --vs overlay at a time")
    sources = [Source.of(v, x == "steps") for v in variants]
    _check_request(x, images, sources, vs_torch)
    if approx is not None:
        approx.check(x)
    lo, hi, notes = _x_range(sources, first, last)
    parts = _Parts(notes=notes)
    for k, src in enumerate(sources):
        span = (lo, hi, _x_per_unit(x, src.variant, images), columns)
        parts.notes.extend(_variant_notes(src, x, vs_torch))
        _variant_parts(parts, k, src, span, log, (vs_torch, approx), len(sources) > 1)
    parts.notes.extend(_coincide_notes(parts.curves))
    if parts.nonpositive:
        unit = ("step", "steps") if x == "steps" else ("batch", "batches")
        parts.notes.append(
            f"log scale: LR ≤ 0 at {counted(parts.nonpositive, *unit)}"
            " cannot be drawn; shaded instead"
        )
    near = _zoom_range(sources, lo, hi) if zoom and first is last is None else None
    zoomed = None if near is None else plot_data(
        variants, first=near[0], last=near[1], log=log, x=x, images=images,
        columns=columns, title="", zoom=False,
    )  # fmt: skip
    return PlotData(
        _title(variants, approx) if title is None else title, lo, hi,
        tuple(parts.curves), tuple(parts.markers), tuple(parts.regions),
        tuple(parts.errors), x, _x_label(x, images, sources), log, tuple(parts.notes),
        "steps" if x == "steps" else "batches", tuple(parts.reports), zoomed,
    )  # fmt: skip


# ----------------------------------------------------------------------------- drawing


def fmt_lr(v: float, _pos: object = None) -> str:
    """``1.3e-3`` style (``0`` for zero, plain for 0.1 ≤ |v| < 1000)."""
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
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


_REGION_STYLE: dict[str, tuple[str, str, str]] = {
    "nan": ("#7f7f7f", "xx", "LR is NaN"),
    "inf": ("#9467bd", "..", "LR is infinite"),
    "zero": ("#ff7f0e", "//", "LR is 0"),
    "negative": ("#d62728", "\\\\", "LR is negative"),
    "after": ("#bbbbbb", "", "after max_batches: darknet has stopped"),
}
#: Line style of the overlaid curves: DarknetLR stepped in torch, an approximation.
_OVERLAY_DASHES: dict[str, Any] = {"torch": (0, (4, 3)), "approx": (0, (6, 2, 1, 2))}
#: Marker labels: font size (points), rows in the head room (axes fraction of the top of
#: each row), boundary kinds labelled first, ink.
_LABEL_SIZE = 7.5
_LABEL_ROWS = (0.985, 0.91, 0.835)
_FIRST_LABELS = ("burn_in", "max_batches", "resume")
_INK = "0.15"
_BOX = {"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1}


def _colours(data: PlotData) -> tuple[list[int], dict[int, str]]:
    """The darknet curves' indexes and every curve's colour (overlays in black)."""
    dark = [i for i, c in enumerate(data.curves) if c.kind == "darknet"]
    colour = {idx: f"C{n % 10}" for n, idx in enumerate(dark)}
    return dark, {i: colour.get(i, "black") for i in range(len(data.curves))}


def _positive(y: npt.NDArray[Any], log: bool) -> npt.NDArray[Any]:
    return np.where(y > 0, y, np.nan) if log else y


def _draw_curves(ax: Any, data: PlotData, legend: bool) -> None:
    """Each curve as a step line; envelopes as a band between their min and max lines.
    A lone darknet curve has no legend entry (the title names it)."""
    dark, colour = _colours(data)
    alone = len(data.curves) == 1
    for idx, c in enumerate(data.curves):
        col = colour[idx]
        xs = np.append(c.start, c.stop[-1:]).astype(np.float64) * c.x_per_unit
        ylo = _positive(np.append(c.lo, c.lo[-1:]), data.log)
        yhi = _positive(np.append(c.hi, c.hi[-1:]), data.log)
        name = "darknet (C formula)" if len(dark) == 1 else c.label
        label = (
            None if alone or not legend else c.label if c.kind != "darknet" else name
        )
        dash = _OVERLAY_DASHES.get(c.kind, "-")
        step = {"drawstyle": "steps-post", "color": col, "ls": dash}
        z = 4 if c.kind != "darknet" else 3
        if c.kind == "darknet" and not c.exact:
            ax.fill_between(xs, ylo, yhi, step="post", color=col, alpha=0.35, lw=0,
                            zorder=2)  # fmt: skip
        lw = 1.0 if c.kind != "darknet" else 1.6 if c.exact else 1.2
        ax.plot(xs, yhi, lw=lw, label=label, zorder=z, **step)
        if not c.exact:  # an envelope: its lower line too
            ax.plot(xs, ylo, lw=0.7 if c.kind != "darknet" else 0.8, zorder=z, **step)


def _region_handle(data: PlotData, r: Region, c: Curve, many: bool) -> Any:
    """The legend entry of region kind ``r.kind``: its first span and how many more."""
    from matplotlib.patches import Patch

    colr, hatch, text = _REGION_STYLE[r.kind]
    sym = "i" if data.domain == "steps" else "b"
    span = f"{sym} = {r.first:,}" + (f"–{r.last:,}" if r.last != r.first else "")
    if r.kind == "after" and many:
        span = f"{c.label}: {span}"
    more = len({(q.first, q.last) for q in data.regions if q.kind == r.kind}) - 1
    if more:
        span += f" and {more} more"
    return Patch(facecolor=colr, alpha=0.3, hatch=hatch, edgecolor=colr,
                 label=f"{text} ({span})")  # fmt: skip


def _draw_regions(ax: Any, data: PlotData) -> dict[str, Any]:
    """Shade the special regions; return one legend handle per kind."""
    handles: dict[str, Any] = {}
    shaded: set[tuple[str, float, float]] = set()
    dark, _ = _colours(data)
    for r in data.regions:
        c = data.curves[dark[r.curve if r.curve < len(dark) else 0]]
        colr, hatch, _ = _REGION_STYLE[r.kind]
        x0, x1 = r.first * c.x_per_unit, (r.last + 1) * c.x_per_unit
        if (r.kind, x0, x1) in shaded:
            continue
        shaded.add((r.kind, x0, x1))
        ax.axvspan(x0, x1, facecolor=colr, alpha=0.18, hatch=hatch, edgecolor=colr,
                   lw=0, zorder=1)  # fmt: skip
        if r.kind not in handles:
            handles[r.kind] = _region_handle(data, r, c, len(dark) > 1)
    return handles


def marker_labels(data: PlotData) -> list[tuple[float, str, str]]:
    """``(x, text, kind)`` per marker position: the boundary names and the LR there
    (burn-in end, max_batches and the resume point first, then in x order)."""
    dark, _ = _colours(data)
    groups: dict[float, list[Marker]] = {}
    for m in data.markers:
        if math.isfinite(m.lr) and (m.lr > 0 or not data.log):
            groups.setdefault(m.at * data.curves[dark[m.curve]].x_per_unit, []).append(
                m
            )
    sym = "i = " if data.domain == "steps" else ""
    out = []
    for x, ms in groups.items():
        names = " | ".join(dict.fromkeys(m.label for m in ms))
        lrs = " / ".join(dict.fromkeys(fmt_lr(m.lr) for m in ms))
        kind = next((m.kind for m in ms if m.kind in _FIRST_LABELS), ms[0].kind)
        out.append((x, f"{names}\n{sym}{ms[0].at:,}: LR {lrs}", kind))
    return sorted(out, key=lambda g: (g[2] not in _FIRST_LABELS, g[0]))


def _draw_markers(ax: Any, data: PlotData, span: tuple[float, float]) -> int:
    """A dot at each marker; its label in a free slot of the head room rows (never over
    the curves, right-aligned at the right edge) with a faint line down to the curve.
    Returns how many marker positions got no label (no room)."""
    dark, colour = _colours(data)
    for m in data.markers:
        if math.isfinite(m.lr) and (m.lr > 0 or not data.log):
            x = m.at * data.curves[dark[m.curve]].x_per_unit
            ms = 3.5 if len(data.markers) <= 40 else 2.0
            ax.plot([x], [m.lr], "o", ms=ms, color=colour[dark[m.curve]], zorder=5)
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    taken: list[list[tuple[float, float]]] = [[] for _ in _LABEL_ROWS]
    skipped = 0
    for x, text, _ in marker_labels(data):
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


def _style_axes(
    ax: Any, data: PlotData, span: tuple[float, float], size: float = 11
) -> None:
    """Tick formats, labels, title, grid, x range and head room for the marker labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

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


def _legend_and_notes(
    fig: Any, ax: Any, data: PlotData, handles: dict[str, Any], unlabelled: int
) -> None:
    """The legend below the axes (never over the curves) and the notes box."""
    hs, labels = ax.get_legend_handles_labels()
    hs += list(handles.values())
    labels += [h.get_label() for h in handles.values()]
    if hs:
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


def _error_summary(e: ErrorPanel) -> str:
    if e.summary:
        return e.summary
    return (
        f"max |error| {fmt_lr(e.max_ulp)} ulp, rel {fmt_lr(e.max_rel)} over "
        f"{counted(e.steps, 'step')} ({e.coverage})"
    )


def _draw_errors(ax: Any, data: PlotData) -> None:
    """The error panel: torch − C in signed float32 ulps, or an approximation's signed
    relative error in % (symmetric log scale beyond ±100 %), and a one-line summary."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    rel = any(e.unit == "rel" for e in data.errors)
    scale = 100.0 if rel else 1.0
    top = 0.0
    for e in data.errors:
        if e.start.size == 0:
            continue
        xs = np.append(e.start, e.stop[-1:]) * data.curves[e.curve].x_per_unit
        lo = np.append(e.lo, e.lo[-1:]) * scale
        hi = np.append(e.hi, e.hi[-1:]) * scale
        top = max(top, float(np.nanmax(np.abs(np.concatenate((lo, hi, [0.0]))))))
        ax.fill_between(xs, lo, hi, step="post", color="black", alpha=0.3, lw=0)
        for y in (hi, lo):
            ax.plot(xs, y, color="black", lw=0.8, drawstyle="steps-post")
    summary = "; ".join(_error_summary(e) for e in data.errors)
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


def _axes(fig: Any, data: PlotData) -> dict[str, Any]:
    """The figure's axes: "main" (LR), "zoom" beside it, "err" under it (when present)."""
    layout = [["zoom", "main"] if data.zoom else ["main"]]
    kw: dict[str, Any] = {"width_ratios": [1, 2.6]} if data.zoom else {}
    if data.errors:
        layout.append([".", "err"] if data.zoom else ["err"])
        kw["height_ratios"] = [3, 1]
    axes: dict[str, Any] = fig.subplot_mosaic(layout, **kw)
    if data.errors:
        axes["err"].sharex(axes["main"])
        axes["main"].tick_params(labelbottom=False)
    return axes


def _span(data: PlotData) -> tuple[float, float]:
    """The x range of a panel (a little room right of the last position)."""
    xpu = data.curves[0].x_per_unit
    lo, hi = data.first * xpu, (data.last + 1) * xpu
    return lo, hi + 0.015 * (hi - lo)


def draw(
    data: PlotData,
    *,
    width: float = 11.0,
    height: float | None = None,
    figure: Any = None,
) -> Any:
    """A matplotlib ``Figure`` of ``data``; headless unless ``figure`` comes from pyplot."""
    from matplotlib.figure import Figure

    h = height if height is not None else (6.8 if data.errors else 5.6)
    fig = figure if figure is not None else Figure(layout="constrained")
    fig.set_size_inches(width, h)
    axes = _axes(fig, data)
    ax = axes["main"]
    _draw_curves(ax, data, legend=True)
    handles = _draw_regions(ax, data)
    unlabelled = _draw_markers(ax, data, _span(data))
    _style_axes(ax, data, _span(data))
    left = axes["zoom" if data.zoom else "main"]
    left.set_ylabel("learning rate" + (" (log scale)" if data.log else ""))
    _legend_and_notes(fig, ax, data, handles, unlabelled)
    if data.zoom is not None:
        z = data.zoom
        _draw_curves(axes["zoom"], z, legend=False)
        _draw_regions(axes["zoom"], z)
        _draw_markers(axes["zoom"], z, _span(z))
        sym = "i" if z.domain == "steps" else "b"
        title = f"zoom: {sym} = {z.first:,}–{z.last:,}"
        _style_axes(axes["zoom"], replace(z, title=title), _span(z), size=9)
        axes["zoom"].set_xlabel(data.x_label, fontsize=8)
    if data.errors:
        _draw_errors(axes["err"], data)
    axes["err" if data.errors else "main"].set_xlabel(data.x_label)
    return fig


#: Image formats and data formats by file extension.
FORMATS = ("png", "svg", "pdf")
DATA_FORMATS = ("csv", "json")
#: Bytes that mark an image as cfgsched's own (``plot`` replaces it without ``--force``):
#: PNG "Software", SVG/PDF "Creator" metadata.
OUTPUT_MARKERS = (
    b"tEXtSoftware\x00cfgsched",
    b"<dc:title>cfgsched</dc:title>",
    b"/Creator (cfgsched)",
)


def output_format(path: str) -> str:
    """The output format for ``path`` from its extension (png, svg, pdf, csv or json)."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS + DATA_FORMATS:
        why = "unknown output format: use .png, .svg, .pdf, .csv or .json (or --format)"
        raise CfgError(path, None, None, why)
    return ext


def save(fig: Any, stream: Any, fmt: str, dpi: int = 150) -> None:
    """Write ``fig`` as ``fmt`` to the binary ``stream`` with the Agg-based canvases,
    marked as cfgsched's (PNG "Software", SVG and PDF "Creator")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    meta = {"Software": "cfgsched"} if fmt == "png" else {"Creator": "cfgsched"}
    fig.savefig(stream, format=fmt, dpi=dpi, metadata=meta)
