"""Plot darknet learning-rate schedules: the data (:func:`plot_data`) and the figure (:func:`draw`).

:func:`plot_data` computes everything a figure shows as plain arrays, without matplotlib:
per curve the LR at every x position (small ranges) or a min/max envelope per pixel column
(large ranges, computed in chunks so memory stays bounded and no one-point spike is lost),
the boundary markers with their LR, and the ranges where the LR is NaN, infinite, zero or
negative. Positions are darknet batches b (x in batches, images or epochs) or 0-based
optimizer steps i (x in steps). Every LR is what the run translated by the variant's
:class:`~cfgsched.options.Options` trains with: at a batch, darknet's value with the
translation's base rate and arithmetic; at a step, ``Run.lrs``.
:func:`draw` turns the data into a matplotlib figure; :func:`save` writes it (marked as
cfgsched's, so ``plot`` may replace it). ``--vs`` overlays DarknetLR stepped in torch or a
framework's fitted built-in schedule (:class:`Approx`, always called an approximation);
:func:`export_series` gives the LR of every optimizer step for CSV, JSON and TensorBoard.
Without a cfg the CLI draws :data:`RECIPE_CFG`, AlexeyAB's detector recipe.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import Boundary, boundaries
from cfgsched.errors import CfgError
from cfgsched.kernel.formulas import ngpus_lr
from cfgsched.options import Options
from cfgsched.run import MAX_BATCH, TRACE_LIMIT, Run, translate
from cfgsched.schedule import NetSchedule
from cfgsched.tools import series

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
#: Regions listed per curve and kind before neighbouring ones are merged.
MAX_REGIONS = 100
#: Curves per figure at most (overlays multiply: cfgs × forks × gpus × option values).
MAX_CURVES = 12
#: ``--vs torch`` steps every step up to this range, else boundaries plus a sample.
TORCH_EXACT_LIMIT = series.EXHAUSTIVE_LIMIT
#: Largest ``--from``/``--to`` (batches or steps).
MAX_POSITION = 1 << 62
#: x axis units; "steps" puts the curves on optimizer steps, the others on batches.
X_UNITS = ("batches", "images", "epochs", "steps")

#: Option name -> [net] key for the schedule options of ``cfgsched plot``.
OPTION_KEYS: dict[str, str] = {
    "policy": "policy",
    "learning_rate": "learning_rate",
    "max_batches": "max_batches",
    "burn_in": "burn_in",
    "power": "power",
    "steps": "steps",
    "scales": "scales",
    "step": "step",
    "scale": "scale",
    "gamma": "gamma",
    "sgdr_cycle": "sgdr_cycle",
    "sgdr_mult": "sgdr_mult",
    "learning_rate_min": "learning_rate_min",
    "batch": "batch",
    "subdivisions": "subdivisions",
}

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
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

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


def _check_changes(changes: Mapping[str, str], fork: str) -> None:
    """Refuse what ``adjust`` refuses as a key (not a ``[net]`` schedule key ``fork``
    reads) and values that are not one line."""
    import difflib

    from cfgsched.reader.editor import KEY_KINDS, NOT_READ

    known = [k for k in KEY_KINDS if k not in NOT_READ.get(fork, frozenset())]
    for key, value in changes.items():
        if not _KEY_RE.fullmatch(key):
            raise CfgError("--set", None, key, "not a cfg key name")
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise CfgError(
                "--set", None, key,
                f"not a [net] schedule key {fork} reads ({hint}one of {', '.join(known)})",
            )  # fmt: skip
        if any(c in value for c in "\r\n\0"):
            raise CfgError("--set", None, key, "value must be one line")


def _rescaled(
    base: NetSchedule, text: str, changes: Mapping[str, str], fork: str, source: str
) -> dict[str, str]:
    """``changes`` plus the cfg's steps moved to the same fractions of the new
    max_batches (as the fork reads it); unchanged without a new max_batches."""
    from cfgsched.reader.editor import Edit, edit_text, rescale_steps
    from cfgsched.reader.parser import parse

    if "max_batches" not in changes or not base.steps:
        return dict(changes)
    if "steps" in changes:
        raise CfgError(
            "--rescale-steps", None, "steps", "moves the cfg's steps: not with --steps"
        )
    edit = [Edit("max_batches", changes["max_batches"])]
    new = parse(edit_text(text, edit, fork=fork, source=source).text, fork=fork)
    try:
        steps = rescale_steps(base.steps, base.max_batches, new.max_batches)
    except ValueError as exc:
        raise CfgError("--rescale-steps", None, "steps", str(exc)) from None
    return {**changes, "steps": ",".join(map(str, steps))}


def parse_variant(
    text: str | None,
    source: str,
    fork: str,
    changes: Mapping[str, str],
    *,
    rescale: bool = False,
) -> NetSchedule:
    """Parse ``text`` (a cfg, or None for darknet's defaults) with ``changes`` applied.

    The cfg is first read as every command reads it (errors name its lines); the changes
    then go through ``adjust``'s cfg editor and the fork's own number rules. Errors the
    changes cause name the option (``--set key=value``); lines keep the file's numbers.
    ``rescale``: a new max_batches moves the cfg's steps to the same fractions of it
    (:func:`cfgsched.reader.editor.rescale_steps`).
    """
    from cfgsched.reader.editor import Edit, edit_text
    from cfgsched.reader.parser import parse

    _check_changes(changes, fork)
    base = DEFAULTS_CFG if text is None else text
    sched = parse(base, fork=fork, source=source)
    if rescale:
        changes = _rescaled(sched, base, changes, fork, source)
    if not changes:
        return sched
    edits = [Edit(k, v) for k, v in changes.items()]
    edited = edit_text(base, edits, fork=fork, source=source)
    try:
        sched = parse(edited.text, fork=fork, source=source)
    except CfgError as exc:
        if exc.line in edited.lines:
            key = edited.lines[exc.line]
            raise CfgError(
                f"--set {key}={changes[key]}", None, exc.key, exc.message
            ) from None
        line = edited.original_line(exc.line)
        raise CfgError(exc.source, line, exc.key, exc.message) from None
    warns = tuple(replace(w, line=edited.original_line(w.line)) for w in sched.warnings)
    lines = {k: edited.original_line(v) or v for k, v in sched.lines.items()}
    return replace(sched, warnings=warns, lines=lines)


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
    parts = []
    if flags[0]:
        parts.append(name)
    if flags[1]:
        parts.append(fork)
    if flags[2]:
        parts.append(f"{ngpus} GPU{'s' if ngpus > 1 else ''}")
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
    ``options`` maps a ``[net]`` key to its values (a key with several values makes one
    curve per value); ``translation(schedule, ngpus)`` gives each curve's options
    (default: ``-gpus`` only); ``rescale``: a new max_batches moves the cfgs' steps.
    """
    opts = {k: list(v) for k, v in (options or {}).items() if v}
    none = (RECIPE_CFG, RECIPE_NAME) if recipe else (None, "darknet defaults")
    items: list[tuple[str | None, str]] = list(cfgs) or [none]
    keys = list(opts)
    combos = list(
        itertools.product(
            items,
            forks or ("alexeyab",),
            gpus or (1,),
            itertools.product(*(opts[k] for k in keys)),
        )
    )
    if len(combos) > MAX_CURVES:
        raise CfgError(
            "plot", None, None,
            f"{len(combos)} curves: at most {MAX_CURVES} in one figure",
        )  # fmt: skip
    how = translation or (lambda s, n: Options(ngpus=n))
    flags = (len(items) > 1, len(set(forks)) > 1, len(set(gpus)) > 1)
    varied = [k for k in keys if len(opts[k]) > 1]
    out = []
    for (text, source), fork, ngpus, vals in combos:
        values = dict(zip(keys, vals, strict=True))
        if not cfgs and recipe and values.get("policy", "steps").strip() != "steps":
            text = _RECIPE_OTHER_POLICY  # the recipe's steps are for policy=steps
        own = not cfgs and recipe and "steps" not in values
        sched = parse_variant(text, source, fork, values, rescale=rescale or own)
        if cfgs:
            name = Path(source).name
        elif recipe:
            name = RECIPE_NAME
        else:
            name = "[net] from options" if opts else "darknet defaults"
        shown = [f"{k}={values[k]}" for k in varied]
        label = _label(name, fork, ngpus, shown, flags)
        out.append(Variant(sched, label, how(sched, ngpus), name))
    return out


def recipe_note(variants: Sequence[Variant], changed: bool) -> str:
    """What is drawn without a cfg (for stderr); ``changed``: options were given."""
    runs = sorted({v.schedule.max_batches for v in variants})
    mb = " and ".join(f"{m:,}" for m in runs)
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
    none); ``exact`` means one point per position (``lo == hi`` is the LR).
    ``x_per_unit`` converts positions to the x unit.
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
    """Positions ``first .. last`` of curve ``curve`` where the LR is ``kind``.

    ``kind`` is nan, inf, zero or negative; or "after" for positions past the end of the
    curve's run (darknet never uses them).
    """

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
    measured error, one line each (for stderr)."""

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


def column_edges(first: int, last: int, columns: int = COLUMNS) -> I64:
    """Start positions of the columns covering ``first .. last`` plus ``last + 1``."""
    n = last - first + 1
    steps = np.arange(columns + 1, dtype=np.float64) * (n / columns)
    edges = first + steps.astype(np.int64)
    edges[-1] = last + 1
    return np.unique(edges)


class _Runs:
    """Runs of consecutive evaluated positions where a mask holds, fed chunk by chunk.

    Keeps at most a few times ``limit`` runs: beyond that, the runs separated by the
    smallest gaps are merged, so memory stays bounded for any mask.
    """

    def __init__(self, limit: int = MAX_REGIONS) -> None:
        self.limit = limit
        self.lo = np.zeros(0, dtype=np.int64)
        self.hi = np.zeros(0, dtype=np.int64)
        self.tail = False  # the previous chunk ended inside a run
        self.count = 0  # positions where the mask holds
        self.runs = 0  # runs before any merging

    def feed(self, b: I64, mask: npt.NDArray[np.bool_]) -> None:
        n = int(np.count_nonzero(mask))
        if n == 0:
            self.tail = False
            return
        self.count += n
        idx = np.flatnonzero(mask)
        cuts = np.flatnonzero(np.diff(idx) != 1) + 1
        s = idx[np.concatenate(([0], cuts))]
        e = idx[np.concatenate((cuts, [idx.size])) - 1]
        lo, hi = b[s], b[e]
        if self.tail and s[0] == 0 and self.lo.size:
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
        masks = {
            "nan": np.isnan(v),
            "inf": np.isinf(v),
            "zero": v == 0,
            "negative": v < 0,
        }
        for k, m in masks.items():
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
        return Envelope(
            start, stop, lo.astype(np.float32), hi.astype(np.float32), exact, sampled,
            regions, counts,
        )  # fmt: skip


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
        for c0, c1 in _column_groups(edges):
            pos = np.arange(edges[c0], edges[c1], dtype=np.int64)
            fold.feed(pos, values(pos), c0, edges[c0:c1] - edges[c0])
    else:
        near = np.asarray(sorted(extra), dtype=np.int64)
        for c0 in range(0, edges.size - 1, 64):
            c1 = min(c0 + 64, edges.size - 1)
            pos = _column_samples(edges, c0, c1, near)
            fold.feed(pos, values(pos), c0, np.searchsorted(pos, edges[c0:c1]))
    return fold.result(edges[:-1], edges[1:], False, n > FULL_LIMIT)


def _column_groups(edges: I64) -> list[tuple[int, int]]:
    """``(c0, c1)``: groups of whole columns of about :data:`CHUNK` positions."""
    out, c0 = [], 0
    while c0 < edges.size - 1:
        c1 = int(np.searchsorted(edges, edges[c0] + CHUNK, side="right")) - 1
        c1 = min(max(c1, c0 + 1), edges.size - 1)
        out.append((c0, c1))
        c0 = c1
    return out


def _column_samples(edges: I64, c0: int, c1: int, near: I64) -> I64:
    """Sorted sample positions of columns ``c0 .. c1 - 1``: :data:`COLUMN_SAMPLES` evenly
    spaced per column plus the positions of ``near`` inside them."""
    pts = [
        np.linspace(edges[c], edges[c + 1] - 1, COLUMN_SAMPLES).astype(np.int64)
        for c in range(c0, c1)
    ]
    inside = near[(near >= edges[c0]) & (near < edges[c1])]
    return np.unique(np.concatenate([*pts, inside]))


# ----------------------------------------------------------------------------- one curve


@dataclass(frozen=True)
class _Source:
    """One variant's translated run on the figure's domain (batches or steps)."""

    variant: Variant
    t: Run
    trained: NetSchedule
    steps: bool

    @classmethod
    def of(cls, v: Variant, steps: bool) -> _Source:
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

    def batch_range(self, lo: int, hi: int) -> tuple[int, int]:
        """The darknet batches the positions ``lo .. hi`` cover."""
        if not self.steps:
            return lo, hi
        return self.t.batch(lo), max(self.t.batch(hi), self.t.batch(lo))

    def marks(
        self, lo: int, hi: int, limit: int
    ) -> tuple[list[tuple[int, Boundary]], int]:
        """``(position, boundary)`` inside ``lo .. hi`` and how many were cut."""
        b0, b1 = self.batch_range(lo, hi)
        marks, cut = boundaries(self.trained, max(b0, 1), b1, limit=limit)
        where = [m.batch for m in marks]
        if self.steps:
            where = [self.t.first_step(b) for b in where]
        return [(p, m) for p, m in zip(where, marks, strict=True) if lo <= p <= hi], cut

    def extra(self, lo: int, hi: int) -> list[int]:
        """Boundary positions ±1 (always sampled in very long ranges)."""
        marks, _ = self.marks(lo, hi, 10_000)
        return [p + d for p, _ in marks for d in (-1, 0, 1)]


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


_KIND_WORDS = {"nan": "NaN", "inf": "infinite", "zero": "0", "negative": "negative"}


def _darknet_curve(
    k: int, src: _Source, lo: int, hi: int, xpu: float, columns: int, log: bool
) -> _Parts:
    """Curve ``k``: the envelope, its special regions, the after-the-run region."""
    v = src.variant
    extra = src.extra(lo, hi) if hi - lo + 1 > FULL_LIMIT else []
    env = envelope(src.values, lo, hi, columns, extra)
    out = _Parts()
    out.curves.append(
        Curve(v.label, "darknet", env.start, env.stop, env.lo, env.hi, env.exact,
              env.sampled, xpu, v.gpus)
    )  # fmt: skip
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
        out.notes.append(
            f"{hi - lo + 1:,} {unit}: each column from {COLUMN_SAMPLES} samples "
            "plus every boundary ±1"
        )
    for kind, spans in env.regions.items():
        out.regions.extend(Region(k, kind, a, b) for a, b in spans)
    end, _ = src.end()
    if src.trained.max_batches > 0 and end < hi:
        out.regions.append(Region(k, "after", max(end + 1, lo), hi))
    return out


def _markers(k: int, src: _Source, lo: int, hi: int) -> _Parts:
    """Curve ``k``'s boundary markers (and the resume point) with the LR there."""
    out = _Parts()
    marks, cut = src.marks(lo, hi, limit=60)
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
        more = series.counted(cut, "more boundary", "more boundaries")
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


def _torch_steps(src: _Source, lo: int, hi: int) -> tuple[int, int]:
    """The optimizer steps ``i0 .. i1`` whose position lies in ``lo .. hi`` (resumed runs
    start at their resume step)."""
    if src.steps:
        i0, i1 = lo, hi
    else:
        i0, i1 = src.t.first_step(lo), src.t.first_step(hi + 1) - 1
    return max(i0, src.t.start), i1


def _torch_values(src: _Source, lo: int, hi: int) -> _TorchRun:
    """Step :class:`~cfgsched.translate.scheduler.DarknetScheduler` (what ``DarknetLR``
    runs) under the curve's translation over the steps of ``lo .. hi``."""
    t = src.t
    i0, i1 = _torch_steps(src, lo, hi)
    if i1 < i0:
        none = np.zeros(0, dtype=np.int64)
        return _TorchRun(none, np.zeros(0), np.zeros(0), "no torch step in range")
    count = i1 - i0 + 1
    if count <= TORCH_EXACT_LIMIT:
        windows, note = [(i0, i1 + 1)], "every step"
    else:
        marks, _ = src.marks(lo, hi, limit=60)
        at = [p if src.steps else i for p, i in _mark_steps(src, marks)]
        windows = [
            (i0 + s, i0 + e)
            for s, e in series.sample_windows(count, [a - i0 for a in at])
        ]
        note = "boundaries and a dense sample of steps"
    factory = series.scheduler_factory(t)
    steps: list[I64] = []
    got: list[F64] = []
    for w0, w1 in windows:
        steps.append(np.arange(w0, w1, dtype=np.int64))
        got.extend(series.torch_lrs(factory, t.cfg_lr, w0, w1 - w0))
    i = np.concatenate(steps)
    expected = np.asarray(t.lrs(i), dtype=np.float64)
    pos = i if src.steps else t.batches(i)
    keep = np.flatnonzero((pos >= lo) & (pos <= hi))
    order = keep[np.argsort(pos[keep], kind="stable")]
    return _TorchRun(pos[order], np.concatenate(got)[order], expected[order], note)


def _mark_steps(
    src: _Source, marks: Sequence[tuple[int, Boundary]]
) -> list[tuple[int, int]]:
    """``(position, step)`` of each marker: the first step reaching its batch."""
    return [(p, src.t.first_step(m.batch)) for p, m in marks]


def _torch_curve(label: str, run: _TorchRun, base: Curve, kind: str = "torch") -> Curve:
    """The LR ``run`` got as a curve on the columns of ``base`` (one point per step if
    exact); ``kind`` "torch" or "approx"."""
    g = run.got.astype(np.float32)
    fin = np.isfinite(g)
    if base.exact or run.pos.size == 0:
        g = np.where(fin, g, np.float32(np.nan)).astype(np.float32)
        return Curve(
            label, kind, run.pos, run.pos + 1, g, g.copy(), True, False,
            base.x_per_unit, base.gpus,
        )  # fmt: skip
    col = np.searchsorted(base.start, run.pos, side="right") - 1
    keep = np.flatnonzero(np.diff(np.concatenate(([-1], col))) != 0)
    mn = np.minimum.reduceat(np.where(fin, g, np.float32(np.inf)), keep)
    mx = np.maximum.reduceat(np.where(fin, g, np.float32(-np.inf)), keep)
    lo = np.full(base.start.size, np.nan, dtype=np.float32)
    hi = np.full(base.start.size, np.nan, dtype=np.float32)
    lo[col[keep]] = np.where(np.isfinite(mn), mn, np.nan)
    hi[col[keep]] = np.where(np.isfinite(mx), mx, np.nan)
    return Curve(
        label, kind, base.start, base.stop, lo, hi, False, True, base.x_per_unit,
        base.gpus,
    )  # fmt: skip


def _error_panel(curve: int, run: _TorchRun, base: Curve) -> ErrorPanel:
    """torch − expected in signed float32 ulps, per step or per column of ``base``."""
    _, rel, ulp = series.errors(run.expected, run.got)
    signed = np.where(run.got < run.expected, -ulp, ulp)
    n, cov = int(run.pos.size), run.coverage
    if n == 0:
        z = np.zeros(0)
        return ErrorPanel(curve, run.pos, run.pos, z, z, 0.0, 0.0, 0, cov)
    top_ulp, top_rel = float(ulp.max()), float(rel.max())
    if n <= EXACT_LIMIT:
        return ErrorPanel(
            curve, run.pos, run.pos + 1, signed, signed.copy(), top_ulp, top_rel, n, cov
        )
    col = np.searchsorted(base.start, run.pos, side="right") - 1
    keep = np.flatnonzero(np.diff(np.concatenate(([-1], col))) != 0)
    cols = col[keep]
    return ErrorPanel(
        curve, base.start[cols], base.stop[cols], np.minimum.reduceat(signed, keep),
        np.maximum.reduceat(signed, keep), top_ulp, top_rel, n, cov,
    )  # fmt: skip


def _torch_parts(
    k: int, src: _Source, lo: int, hi: int, base: Curve, many: bool
) -> _Parts:
    """The ``--vs torch`` curve (index ``k``) and its error panel."""
    run = _torch_values(src, lo, hi)
    label = "PyTorch DarknetLR" + (f" ({src.variant.label})" if many else "")
    return _Parts(
        curves=[_torch_curve(label, run, base)], errors=[_error_panel(k, run, base)]
    )


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
        if self.kind == "ultralytics-hyp":
            if not self.images or not self.batch:
                raise CfgError(
                    opt, None, None,
                    "needs --images N (the data set) and --torch-batch T "
                    "(Ultralytics' batch)",
                )  # fmt: skip
            if x == "steps":
                raise CfgError(
                    opt, None, None,
                    "Ultralytics' optimizer steps are its own (its accumulate ramps "
                    "during warmup): use --x batches, images or epochs",
                )  # fmt: skip

    def fit(self, src: _Source) -> Any:
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


def _rel_panel(curve: int, pos: I64, rel: F64, base: Curve, summary: str) -> ErrorPanel:
    """Signed relative error per position (NaN where undefined), per column of ``base``
    when the curve is an envelope."""
    n = int(pos.size)
    fin = rel[np.isfinite(rel)]
    top = float(np.abs(fin).max()) if fin.size else math.nan
    if base.exact or n == 0:
        return ErrorPanel(curve, pos, pos + 1, rel, rel.copy(), math.nan, top, n,
                          "every step", "rel", summary)  # fmt: skip
    col = np.searchsorted(base.start, pos, side="right") - 1
    keep = np.flatnonzero(np.diff(np.concatenate(([-1], col))) != 0)
    cols = col[keep]
    return ErrorPanel(
        curve, base.start[cols], base.stop[cols], np.fmin.reduceat(rel, keep),
        np.fmax.reduceat(rel, keep), math.nan, top, n, "every step", "rel", summary,
    )  # fmt: skip


def _approx_parts(
    k: int, src: _Source, lo: int, hi: int, base: Curve, many: bool, how: Approx
) -> _Parts:
    """The ``--vs mmengine|ultralytics-hyp`` curve (index ``k``), its relative error
    panel and its report line."""
    fit = how.fit(src)
    pos = np.arange(fit.steps, dtype=np.int64) if src.steps else fit.batches
    keep = np.flatnonzero((pos >= lo) & (pos <= hi))
    rel = fit.relative_error()[keep]
    f, d = fit.framework_lr[keep], fit.darknet_lr[keep]
    signed = np.where(f < d, -rel, rel)
    run = _TorchRun(pos[keep], f, d, "every step")
    label = how.label(fit) + (f" ({src.variant.label})" if many else "")
    head = fit.comment()[0]
    who = f"{src.variant.label}: " if many else ""
    return _Parts(
        curves=[_torch_curve(label, run, base, kind="approx")],
        errors=[_rel_panel(k, run.pos, signed, base, f"{who}{fit.framework} {head}")],
        reports=[f"{who}{fit.framework} {head}"],
    )


# ----------------------------------------------------------------------------- figure data


def _x_per_unit(x: str, v: Variant, images: int | None) -> float:
    """x units per position: 1 for batches and steps, images per iteration, epochs."""
    ipi = v.schedule.images_per_iteration
    return {"batches": 1.0, "steps": 1.0, "images": float(ipi)}.get(
        x, ipi / float(images or 1)
    )


def _x_label(x: str, images: int | None, sources: Sequence[_Source]) -> str:
    if x == "steps":
        maps = {s.t.mapping for s in sources}
        how = f"; {maps.pop()}" if len(maps) == 1 else ""
        return f"optimizer step i (0-based{how})"
    return {
        "batches": "darknet batch (iteration)",
        "images": "images seen (iterations × batch)",
        "epochs": f"epoch ({series.counted(images, 'image')})" if images else "epoch",
    }[x]


def _check_request(
    x: str, images: int | None, sources: Sequence[_Source], vs_torch: bool
) -> None:
    if x not in X_UNITS:
        raise ValueError(f"x must be one of {', '.join(X_UNITS)}, not {x!r}")
    if x == "epochs" and not images:
        raise CfgError(
            "--x epochs", None, None, "needs --images N (images in the data set)"
        )
    if (x == "steps" or vs_torch) and any(s.t.trace_too_long for s in sources):
        raise CfgError(
            "--multigpu trace", None, None,
            f"more than {TRACE_LIMIT:,} loop iterations of GPU 0 to follow",
        )  # fmt: skip


def _x_range(
    sources: Sequence[_Source], first: int | None, last: int | None
) -> tuple[int, int, list[str]]:
    """The positions to plot (defaults: the runs' first and last) and notes."""
    notes: list[str] = []
    lo = min(s.begin() for s in sources) if first is None else first
    if last is None:
        ends = []
        for s in sources:
            end, note = s.end()
            ends.append(end)
            if note and note not in notes:
                notes.append(note)
        hi = max(ends)
    else:
        hi = last
    if lo < 0 or hi < lo or hi > MAX_POSITION:
        raise CfgError("--from/--to", None, None, f"empty or negative range {lo}..{hi}")
    for s in sources:
        if s.steps and s.t.batch(hi) > MAX_BATCH:
            raise CfgError(
                "--to", None, None,
                f"step {hi:,} is darknet batch {s.t.batch(hi):,}: beyond int64",
            )  # fmt: skip
    return lo, hi, notes


def _variant_notes(src: _Source, x: str, vs_torch: bool) -> list[str]:
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
    names = list(dict.fromkeys(v.name for v in variants))
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


def _variant_parts(
    parts: _Parts,
    k: int,
    src: _Source,
    span: tuple[int, int, float, int],
    log: bool,
    vs: tuple[bool, Approx | None],
    many: bool,
) -> None:
    """Add variant ``k``'s curve, markers and ``--vs`` overlay (``span``: first and
    last position, x per position, columns) to ``parts``."""
    lo, hi, xpu, columns = span
    for p in (
        _darknet_curve(k, src, lo, hi, xpu, columns, log),
        _markers(k, src, lo, hi),
    ):
        _merge(parts, p)
    base, at = parts.curves[-1], len(parts.curves)
    if vs[0]:
        _merge(parts, _torch_parts(at, src, lo, hi, base, many))
    elif vs[1] is not None:
        _merge(parts, _approx_parts(at, src, lo, hi, base, many, vs[1]))


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
) -> PlotData:
    """Compute the curves, markers, special regions (and torch error) of a figure.

    ``x`` is "batches", "images" (batch × images per iteration), "epochs" (images /
    ``images``) or "steps" (0-based optimizer steps under each variant's translation).
    ``first``/``last`` are positions (batches, or steps for "steps"); they default to the
    start and end of the runs (b = 1 .. max_batches, or a span past the last boundary when
    max_batches is 0). ``vs_torch`` adds DarknetLR stepped for real and its error in
    ulps; ``approx`` a framework's fitted built-in schedule and its relative error.
    """
    if not variants:
        raise ValueError("nothing to plot")
    if vs_torch and approx is not None:
        raise ValueError("one --vs overlay at a time")
    sources = [_Source.of(v, x == "steps") for v in variants]
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
            f"log scale: LR ≤ 0 at {series.counted(parts.nonpositive, *unit)}"
            " cannot be drawn; shaded instead"
        )
    return PlotData(
        title=_title(variants, approx) if title is None else title,
        first=lo,
        last=hi,
        curves=tuple(parts.curves),
        markers=tuple(parts.markers),
        regions=tuple(parts.regions),
        errors=tuple(parts.errors),
        x=x,
        x_label=_x_label(x, images, sources),
        log=log,
        notes=tuple(parts.notes),
        domain="steps" if x == "steps" else "batches",
        reports=tuple(parts.reports),
    )


def _merge(into: _Parts, part: _Parts) -> None:
    into.curves += part.curves
    into.markers += part.markers
    into.regions += part.regions
    into.errors += part.errors
    into.notes += part.notes
    into.nonpositive += part.nonpositive
    into.reports += part.reports


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
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def fmt_count(v: float, _pos: object = None) -> str:
    """``400k``, ``1.5M`` style for batch and image counts."""
    a = abs(v)
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.4g}{suf}"
    return f"{v:.4g}"


_REGION_STYLE: dict[str, tuple[str, str, str]] = {
    "nan": ("#7f7f7f", "xx", "LR is NaN"),
    "inf": ("#9467bd", "..", "LR is infinite"),
    "zero": ("#ff7f0e", "//", "LR is 0"),
    "negative": ("#d62728", "\\\\", "LR is negative"),
    "after": ("#bbbbbb", "", "after max_batches: darknet has stopped"),
}


@dataclass(frozen=True)
class _Canvas:
    """The figure being drawn: its axes and each curve's colour."""

    fig: Any
    ax: Any
    ax_err: Any
    colour: dict[int, str]
    dark_index: list[int]

    def dark(self, data: PlotData, k: int) -> Curve:
        """The darknet curve of variant ``k``."""
        return data.curves[self.dark_index[k]]


def _canvas(data: PlotData, width: float, height: float | None, figure: Any) -> _Canvas:
    """A figure with the LR axes (and the error axes under them when there are errors)."""
    from matplotlib.figure import Figure

    panels = 2 if data.errors else 1
    h = height if height is not None else (6.8 if panels == 2 else 5.6)
    if figure is None:
        fig = Figure(figsize=(width, h), layout="constrained")
    else:
        fig = figure
        fig.set_size_inches(width, h)
    if panels == 2:
        ax, ax_err = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    else:
        ax, ax_err = fig.subplots(1, 1), None
    colour: dict[int, str] = {}
    dark_index = [i for i, c in enumerate(data.curves) if c.kind == "darknet"]
    for n, idx in enumerate(dark_index):
        colour[idx] = f"C{n % 10}"
    for idx in range(len(data.curves)):
        colour.setdefault(idx, "black")
    if data.log:
        ax.set_yscale("log")
    return _Canvas(fig, ax, ax_err, colour, dark_index)


#: Line style of the overlaid curves: DarknetLR stepped in torch, an approximation.
_OVERLAY_DASHES: dict[str, Any] = {"torch": (0, (4, 3)), "approx": (0, (6, 2, 1, 2))}


def _draw_curves(cv: _Canvas, data: PlotData) -> None:
    """Each curve as a step line; envelopes as a band between their min and max lines."""
    ax = cv.ax
    for idx, c in enumerate(data.curves):
        col = cv.colour[idx]
        xs = np.append(c.start, c.stop[-1:]).astype(np.float64) * c.x_per_unit
        if c.kind in _OVERLAY_DASHES:
            y = np.append(c.hi, c.hi[-1:])
            if data.log:
                y = np.where(y > 0, y, np.nan)
            ax.plot(xs, y, color=col, lw=1.0, ls=_OVERLAY_DASHES[c.kind],
                    drawstyle="steps-post", label=c.label, zorder=4)  # fmt: skip
            if not c.exact:  # an envelope: its lower line too
                y = np.append(c.lo, c.lo[-1:])
                ax.plot(xs, np.where(y > 0, y, np.nan) if data.log else y, color=col,
                        lw=0.7, ls=_OVERLAY_DASHES[c.kind], drawstyle="steps-post",
                        zorder=4)  # fmt: skip
            continue
        lo, hi = c.lo, c.hi
        if data.log:
            lo, hi = np.where(lo > 0, lo, np.nan), np.where(hi > 0, hi, np.nan)
        ylo, yhi = np.append(lo, lo[-1:]), np.append(hi, hi[-1:])
        lw = 1.6 if c.exact else 1.2
        if not c.exact:
            ax.fill_between(
                xs, ylo, yhi, step="post", color=col, alpha=0.35, lw=0, zorder=2
            )
        ax.plot(
            xs, yhi, color=col, lw=lw, drawstyle="steps-post", label=c.label, zorder=3
        )
        if not c.exact:
            ax.plot(xs, ylo, color=col, lw=0.8, drawstyle="steps-post", zorder=3)


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
    return Patch(
        facecolor=colr, alpha=0.3, hatch=hatch, edgecolor=colr, label=f"{text} ({span})"
    )


def _draw_regions(cv: _Canvas, data: PlotData) -> dict[str, Any]:
    """Shade the special regions; return one legend handle per kind."""
    handles: dict[str, Any] = {}
    shaded: set[tuple[str, float, float]] = set()
    many = len(cv.dark_index) > 1
    for r in data.regions:
        c = cv.dark(data, r.curve if r.curve < len(cv.dark_index) else 0)
        colr, hatch, _ = _REGION_STYLE[r.kind]
        x0, x1 = r.first * c.x_per_unit, (r.last + 1) * c.x_per_unit
        if (r.kind, x0, x1) in shaded:
            continue
        shaded.add((r.kind, x0, x1))
        cv.ax.axvspan(x0, x1, facecolor=colr, alpha=0.18, hatch=hatch, edgecolor=colr,
                      lw=0, zorder=1)  # fmt: skip
        if r.kind not in handles:
            handles[r.kind] = _region_handle(data, r, c, many)
    return handles


def _draw_markers(cv: _Canvas, data: PlotData) -> None:
    """A dotted line and a label per group of nearby boundaries; a dot and the LR value
    at each marker."""
    from matplotlib.transforms import blended_transform_factory

    ax = cv.ax
    tx = blended_transform_factory(ax.transData, ax.transAxes)
    nmark = len(data.markers)
    x_span = max((data.last + 1 - data.first) * data.curves[0].x_per_unit, 1e-300)
    for xm, text in _marker_labels(data, cv.dark_index, 0.008 * x_span):
        ax.axvline(xm, color="0.55", lw=0.7, ls=":", zorder=1)
        if nmark <= 30:
            ax.text(xm, 0.99, text + " ", transform=tx, rotation=90, va="top",
                    ha="left", fontsize=7, color="0.3", parse_math=False)  # fmt: skip
    texts_at: dict[float, list[str]] = {}
    for m in data.markers:
        col = cv.colour[cv.dark_index[m.curve]]
        xm = m.at * cv.dark(data, m.curve).x_per_unit
        if not (math.isfinite(m.lr) and (m.lr > 0 or not data.log)):
            continue
        ax.plot([xm], [m.lr], "o", ms=4, color=col, zorder=5)
        shown = texts_at.setdefault(xm, [])
        if nmark <= 30 and fmt_lr(m.lr) not in shown:
            shown.append(fmt_lr(m.lr))
            ax.annotate(fmt_lr(m.lr), (xm, m.lr), xytext=(4, 4 + 9 * (len(shown) - 1)),
                        textcoords="offset points", fontsize=7, color=col)  # fmt: skip


def _style_axes(cv: _Canvas, data: PlotData) -> None:
    """Tick formats, labels, title, grid and head room for the marker labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax = cv.ax
    ax.yaxis.set_major_formatter(FuncFormatter(fmt_lr))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt_count))
    if data.log:
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("learning rate" + (" (log scale)" if data.log else ""))
    ax.set_title(data.title, fontsize=11, parse_math=False)  # user text: no mathtext
    ax.grid(True, which="major", alpha=0.3)
    ymin, ymax = ax.get_ylim()
    if data.log:
        ax.set_ylim(ymin, ymax * (ymax / ymin) ** 0.25)
    else:
        ax.set_ylim(min(ymin, 0.0), ymax + 0.3 * (ymax - min(ymin, 0.0)))


def _legend_and_notes(cv: _Canvas, data: PlotData, handles: dict[str, Any]) -> None:
    """The legend below the axes (never over the curves) and the notes box."""
    hs, labels = cv.ax.get_legend_handles_labels()
    hs += list(handles.values())
    labels += [h.get_label() for h in handles.values()]
    if hs:
        legend = cv.fig.legend(hs, labels, loc="outside lower center",
                               ncols=min(len(hs), 3), fontsize=8, frameon=False)  # fmt: skip
        for t in legend.get_texts():  # cfg names and values: no mathtext
            t.set_parse_math(False)
    if data.notes:
        cv.ax.text(
            0.005, 0.005, "\n".join(data.notes), transform=cv.ax.transAxes, fontsize=7,
            va="bottom", ha="left", color="0.25", parse_math=False,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )  # fmt: skip


def _error_summary(e: ErrorPanel) -> str:
    if e.summary:
        return e.summary
    return (
        f"max |error| {fmt_lr(e.max_ulp)} ulp, rel {fmt_lr(e.max_rel)} over "
        f"{series.counted(e.steps, 'step')} ({e.coverage})"
    )


def _symlog_axis(ax: Any, top: float) -> None:
    """A symmetric log y axis (linear within ±1) with ticks at 0, ±10^(d/2) and ±10^d
    for the largest value ``top`` (> 100)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    ax.set_yscale("symlog", linthresh=1.0)
    dec = math.floor(math.log10(top))
    up = [float(10 ** (dec // 2)), float(10**dec)]
    ax.yaxis.set_major_locator(FixedLocator([-u for u in up] + [0.0] + up))
    ax.yaxis.set_major_formatter(FuncFormatter(fmt_lr))


def _draw_errors(cv: _Canvas, data: PlotData) -> None:
    """The error panel: torch − C in signed float32 ulps, or an approximation's signed
    relative error in % (symmetric log scale beyond ±100 %), and a one-line summary."""
    ax = cv.ax_err
    rel = any(e.unit == "rel" for e in data.errors)
    scale = 100.0 if rel else 1.0
    top = 0.0
    for e in data.errors:
        if e.start.size == 0:
            continue
        c = data.curves[e.curve]
        xs = np.append(e.start, e.stop[-1:]).astype(np.float64) * c.x_per_unit
        lo = np.append(e.lo, e.lo[-1:]) * scale
        hi = np.append(e.hi, e.hi[-1:]) * scale
        top = max(top, float(np.nanmax(np.abs(np.concatenate((lo, hi, [0.0]))))))
        ax.fill_between(xs, lo, hi, step="post", color="black", alpha=0.3, lw=0)
        ax.plot(xs, hi, color="black", lw=0.8, drawstyle="steps-post")
        ax.plot(xs, lo, color="black", lw=0.8, drawstyle="steps-post")
    summary = "; ".join(_error_summary(e) for e in data.errors)
    ax.text(0.005, 0.95, summary, transform=ax.transAxes, fontsize=7, va="top",
            parse_math=False)  # fmt: skip
    ax.axhline(0, color="0.5", lw=0.6)
    if rel:
        if top > 100:
            _symlog_axis(ax, top)
        ax.set_ylabel("(approx − C) / C\n(%)")
    else:
        ax.set_ylabel("torch − C\n(float32 ulps)")
    ax.grid(True, alpha=0.3)


def draw(
    data: PlotData,
    *,
    width: float = 11.0,
    height: float | None = None,
    figure: Any = None,
) -> Any:
    """A matplotlib ``Figure`` of ``data``; headless unless ``figure`` comes from pyplot."""
    cv = _canvas(data, width, height, figure)
    _draw_curves(cv, data)
    handles = _draw_regions(cv, data)
    _draw_markers(cv, data)
    _style_axes(cv, data)
    _legend_and_notes(cv, data, handles)
    last_ax = cv.ax
    if cv.ax_err is not None:
        _draw_errors(cv, data)
        last_ax = cv.ax_err
    last_ax.set_xlabel(data.x_label)
    xpu = data.curves[0].x_per_unit
    lo_x, hi_x = data.first * xpu, (data.last + 1) * xpu
    cv.ax.set_xlim(lo_x, hi_x + 0.015 * (hi_x - lo_x))
    return cv.fig


def _marker_labels(
    data: PlotData, dark_index: Sequence[int], near: float
) -> list[tuple[float, str]]:
    """(x, text) per group of marker positions closer than ``near`` (x units)."""
    seen: dict[tuple[int, str], float] = {}
    for m in data.markers:
        c = data.curves[dark_index[m.curve]]
        seen.setdefault((m.at, m.label), m.at * c.x_per_unit)
    items = sorted(seen.items(), key=lambda kv: (kv[1], kv[0][0]))
    groups: list[list[tuple[tuple[int, str], float]]] = []
    for item in items:
        if groups and item[1] - groups[-1][0][1] < near:
            groups[-1].append(item)
        else:
            groups.append([item])
    sym = "i=" if data.domain == "steps" else ""
    out = []
    for g in groups:
        if len(g) <= 2:
            text = " | ".join(f"{lab} {sym}{at:,}" for (at, lab), _ in g)
        else:
            text = f"{len(g)} boundaries {sym}{g[0][0][0]:,}–{g[-1][0][0]:,}"
        out.append((g[0][1], text))
    return out


#: Image formats and data formats by file extension.
FORMATS = ("png", "svg", "pdf")
DATA_FORMATS = ("csv", "json")
#: Bytes that mark a file as cfgsched's own output (``plot`` replaces such a file
#: without ``--force``): PNG "Software", SVG/PDF "Creator" metadata, the series schema.
OUTPUT_MARKERS = (
    b"tEXtSoftware\x00cfgsched",
    b"<dc:title>cfgsched</dc:title>",
    b"/Creator (cfgsched)",
    b"# " + series.SERIES_SCHEMA.encode(),
    b'{"schema": "' + series.SERIES_SCHEMA.encode(),
)


def output_format(path: str) -> str:
    """The output format for ``path`` from its extension (png, svg, pdf, csv or json)."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS + DATA_FORMATS:
        raise CfgError(
            path, None, None,
            "unknown output format: use .png, .svg, .pdf, .csv or .json (or --format)",
        )  # fmt: skip
    return ext


def save(fig: Any, stream: Any, fmt: str, dpi: int = 150) -> None:
    """Write ``fig`` as ``fmt`` to the binary ``stream`` with the Agg-based canvases,
    marked as cfgsched's (PNG "Software", SVG and PDF "Creator")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    meta = {"Software": "cfgsched"} if fmt == "png" else {"Creator": "cfgsched"}
    fig.savefig(stream, format=fmt, dpi=dpi, metadata=meta)


# ----------------------------------------------------------------------------- export


def _export_range(
    v: Variant, first: int | None, last: int | None, x: str
) -> tuple[_Source, int, int, list[str]]:
    """The steps source and the optimizer steps to export: the whole run (from its first
    step, also those before batch 1), or the steps whose batch lies in ``first ..
    last`` (steps themselves with x in steps)."""
    src = _Source.of(v, True)
    if x == "steps" or (first is None and last is None):
        lo, hi, notes = _x_range([src], first, last)
        return src, lo, hi, notes
    by_batch = _Source.of(v, False)
    b0, b1, notes = _x_range([by_batch], first, last)
    lo, hi = _torch_steps(by_batch, b0, b1)
    return src, src.begin() if first is None else lo, hi, notes


def export_series(
    variant: Variant,
    *,
    first: int | None = None,
    last: int | None = None,
    x: str = "batches",
    images: int | None = None,
) -> series.LRSeries:
    """The LR series of ``variant`` (for ``-o X.csv|json`` and ``--tensorboard``).

    One row per optimizer step of the figure's range (the steps whose batch lies in
    ``first .. last``, or those steps with x in steps), at most
    :data:`series.EXPORT_LIMIT`; a longer range is the figure's min/max envelope over
    the steps (:data:`COLUMNS` columns).
    """
    _check_request(x, images, [_Source.of(variant, False)], True)
    src, lo, hi, notes = _export_range(variant, first, last, x)
    s = variant.schedule
    head: dict[str, Any] = dict(
        cfg=s.source, fork=s.fork, options=variant.options.to_record(), images=images,
        images_per_iteration=src.t.images_per_iteration,
    )  # fmt: skip
    if hi - lo + 1 <= series.EXPORT_LIMIT:
        return series.full_series(src.t, lo, hi, notes=tuple(notes), **head)
    extra = src.extra(lo, hi) if hi - lo + 1 > FULL_LIMIT else []
    env = envelope(src.values, lo, hi, COLUMNS, extra)
    if env.sampled:
        notes.append(
            f"each column from {COLUMN_SAMPLES} sampled steps plus every boundary ±1"
        )
    notes.append(
        "lr_min/lr_max: the smallest/largest finite LR of the column (nan: none)"
    )
    first_b = src.t.batches(env.start)
    last_b = src.t.batches(env.stop - 1)
    out = series.LRSeries(
        resolution="envelope", rows=int(env.start.size), notes=tuple(notes),
        chunks=lambda: iter([cols]), **head,
    )  # fmt: skip
    cols = (
        env.start, env.stop - 1, first_b, last_b, out.epochs(first_b),
        out.epochs(last_b), env.lo, env.hi,
    )  # fmt: skip
    return out
