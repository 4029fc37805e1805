"""Plot darknet learning-rate schedules: the data (:func:`plot_data`) and the figure (:func:`draw`).

:func:`plot_data` computes everything a figure shows as plain arrays, without matplotlib:
per curve the LR at every batch (small ranges) or a min/max envelope per pixel column
(large ranges, computed in chunks so memory stays bounded and no one-batch spike is lost),
the boundary markers with their LR, and the batch ranges where the LR is NaN, infinite,
zero or negative. :func:`draw` turns that into a matplotlib figure; :func:`save` writes it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import boundaries
from cfgsched.errors import CfgError, CfgWarning
from cfgsched.schedule import NetSchedule
from cfgsched.tools import diff as _diff

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Envelope columns (at least the pixel width of the plot at 200 dpi).
COLUMNS = 2000
#: Ranges up to this many batches are plotted batch by batch (no envelope).
EXACT_LIMIT = 20_000
#: Batches evaluated per chunk (bounds memory: ~60 bytes per batch in flight).
CHUNK = 1 << 20
#: Above this many batches each column is sampled (boundaries ±1 always included).
FULL_LIMIT = 100_000_000
#: Samples per column above :data:`FULL_LIMIT`.
COLUMN_SAMPLES = 257
#: Regions listed per curve and kind before neighbouring ones are merged.
MAX_REGIONS = 100
#: Curves per figure at most (overlays multiply: cfgs × forks × gpus × option values).
MAX_CURVES = 12
#: ``--vs torch`` steps every step up to this range, else boundaries plus a sample.
TORCH_EXACT_LIMIT = _diff.EXHAUSTIVE_DEFAULT_LIMIT

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
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One curve to draw: a parsed schedule, its legend label and darknet's ``-gpus`` count."""

    schedule: NetSchedule
    label: str
    gpus: int = 1
    name: str = ""


def apply_overrides(
    text: str, changes: Mapping[str, str]
) -> tuple[str, dict[int, str], list[int]]:
    """``text`` with ``[net]`` keys set to ``changes`` (values kept as written).

    The first line of a key in the first section is rewritten in place; keys not present are
    added at the end of that section. Returns the new text, ``{new line: key}`` for the lines
    that hold an override, and the sorted new line numbers that were inserted.
    """
    lines = text.splitlines(keepends=True)
    eol = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    header = None
    end = len(lines)
    for n, raw in enumerate(lines):
        stripped = "".join(raw.split())
        if stripped.startswith("["):
            if header is None:
                header = n
            else:
                end = n
                break
    if header is None:
        lines.insert(0, "[net]" + eol)
        header, end = 0, len(lines)
    where: dict[int, str] = {}
    todo = dict(changes)
    last = header
    for n in range(header + 1, end):
        stripped = "".join(lines[n].split())
        if not stripped or stripped[0] in "#;":
            continue
        last = n
        key = stripped.split("=", 1)[0]
        if key in todo:
            ending = (
                "\r\n"
                if lines[n].endswith("\r\n")
                else ("\n" if lines[n][-1:] == "\n" else "")
            )
            lines[n] = f"{key}={todo.pop(key)}{ending or eol}"
            where[n + 1] = key
    if last < len(lines) and not lines[last].endswith("\n"):
        lines[last] += eol
    inserted = []
    for k, (key, value) in enumerate(todo.items()):
        lines.insert(last + 1 + k, f"{key}={value}{eol}")
        where[last + 2 + k] = key
        inserted.append(last + 2 + k)
    return "".join(lines), where, inserted


def _orig_line(line: int | None, inserted: Sequence[int]) -> int | None:
    if line is None:
        return None
    return line - sum(1 for x in inserted if x < line)


def parse_variant(
    text: str,
    source: str,
    fork: str,
    changes: Mapping[str, str],
) -> NetSchedule:
    """Parse ``text`` (a cfg, or ``""`` for darknet's defaults) with ``changes`` applied.

    Values go through the fork's own number rules. Errors and warnings name the cfg line, or
    the option (``--set key=value``) that caused them.
    """
    from cfgsched.reader.parser import parse

    for key, value in changes.items():
        if not _KEY_RE.fullmatch(key):
            raise CfgError("--set", None, key, "not a cfg key name")
        if any(c in value for c in "\r\n\0"):
            raise CfgError("--set", None, key, "value must be one line")
    base = text if text.strip() else DEFAULTS_CFG
    new, where, inserted = apply_overrides(base, changes)
    try:
        sched = parse(new, fork=fork, source=source)
    except CfgError as exc:
        if exc.line in where:
            key = where[exc.line]
            raise CfgError(
                f"--set {key}={changes[key]}", None, exc.key, exc.message
            ) from None
        raise CfgError(
            exc.source, _orig_line(exc.line, inserted), exc.key, exc.message
        ) from None
    if not inserted:
        return sched
    warns = tuple(
        replace(w, line=_orig_line(w.line, inserted)) if w.line not in where else w
        for w in sched.warnings
    )
    lines = {k: v for k, v in sched.lines.items()}
    for k, v in lines.items():
        lines[k] = _orig_line(v, inserted) or v
    return replace(sched, warnings=warns, lines=lines)


def warning_lines(variant: Variant) -> list[str]:
    """The parser's warnings for ``variant`` as ``source:line:col: CODE message``."""
    return [_fmt_warning(w, variant.schedule.source) for w in variant.schedule.warnings]


def _fmt_warning(w: CfgWarning, source: str) -> str:
    return w.format(source)


def build_variants(
    cfgs: Sequence[tuple[str, str]],
    *,
    forks: Sequence[str] = ("alexeyab",),
    gpus: Sequence[int] = (1,),
    options: Mapping[str, Sequence[str]] | None = None,
) -> list[Variant]:
    """Every combination of cfg × fork × gpus × option value, labelled by what differs.

    ``cfgs`` holds ``(text, source)`` pairs (none: darknet's defaults); ``options`` maps a
    ``[net]`` key to its values (a key with several values makes one curve per value).
    """
    opts = {k: list(v) for k, v in (options or {}).items() if v}
    items = list(cfgs) or [("", "darknet defaults")]
    keys = list(opts)
    combos: list[tuple[tuple[str, str], str, int, tuple[str, ...]]] = [
        (item, fork, ngpus, vals)
        for item in items
        for fork in (forks or ("alexeyab",))
        for ngpus in (gpus or (1,))
        for vals in itertools.product(*(opts[k] for k in keys))
    ]
    if len(combos) > MAX_CURVES:
        raise CfgError(
            "plot",
            None,
            None,
            f"{len(combos)} curves: at most {MAX_CURVES} in one figure",
        )
    many_cfg = len(items) > 1
    many_fork = len(set(forks)) > 1
    many_gpus = len(set(gpus)) > 1
    varied = [k for k in keys if len(opts[k]) > 1]
    out = []
    for (text, source), fork, ngpus, vals in combos:
        values = dict(zip(keys, vals, strict=True))
        sched = parse_variant(text, source, fork, values)
        name = (
            Path(source).name
            if text
            else ("[net] from options" if opts else "darknet defaults")
        )
        parts = []
        if many_cfg:
            parts.append(name)
        if many_fork:
            parts.append(fork)
        if many_gpus:
            parts.append(f"{ngpus} GPU{'s' if ngpus > 1 else ''}")
        parts.extend(f"{k}={values[k]}" for k in varied)
        gp = f", {ngpus} GPUs" if ngpus > 1 else ""
        label = ", ".join(parts) if parts else f"{name} ({fork}{gp})"
        out.append(Variant(sched, label, ngpus, name))
    return out


# ----------------------------------------------------------------------------- plot data


@dataclass(frozen=True)
class Curve:
    """One plotted curve: point k covers batches ``start[k] .. stop[k] - 1``.

    ``lo``/``hi`` are the smallest/largest finite LR there (NaN when there is none);
    ``exact`` means one point per batch (``lo == hi`` is the LR). ``x_per_batch`` converts
    batches to the x unit.
    """

    label: str
    kind: str
    start: I64
    stop: I64
    lo: F32
    hi: F32
    exact: bool
    sampled: bool
    x_per_batch: float
    gpus: int = 1


@dataclass(frozen=True)
class Marker:
    """A labelled batch on curve ``curve`` with darknet's LR there."""

    curve: int
    batch: int
    kind: str
    label: str
    lr: float


@dataclass(frozen=True)
class Region:
    """Batches ``first .. last`` of curve ``curve`` where the LR is ``kind``.

    ``kind`` is nan, inf, zero or negative; or "after" for batches past the curve's
    max_batches (darknet never uses them).
    """

    curve: int
    kind: str
    first: int
    last: int


@dataclass(frozen=True)
class ErrorPanel:
    """torch − C error in float32 ulps (signed) per column, from the compared steps."""

    curve: int
    start: I64
    stop: I64
    lo: F64
    hi: F64
    max_ulp: float
    max_rel: float
    steps: int
    coverage: str


@dataclass(frozen=True)
class PlotData:
    """Everything a figure shows; arrays are in batches, ``x_label`` names the x unit."""

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


def column_edges(first: int, last: int, columns: int = COLUMNS) -> I64:
    """Start batches of the columns covering ``first .. last`` plus ``last + 1``."""
    n = last - first + 1
    edges = first + (np.arange(columns + 1, dtype=np.float64) * (n / columns)).astype(
        np.int64
    )
    edges[-1] = last + 1
    return np.unique(edges)


class _Runs:
    """Runs of consecutive evaluated batches where a mask holds, fed chunk by chunk.

    Keeps at most a few times ``limit`` runs: beyond that, the runs separated by the
    smallest gaps are merged, so memory stays bounded for any mask.
    """

    def __init__(self, limit: int = MAX_REGIONS) -> None:
        self.limit = limit
        self.lo = np.zeros(0, dtype=np.int64)
        self.hi = np.zeros(0, dtype=np.int64)
        self.tail = False  # the previous chunk ended inside a run
        self.count = 0  # batches where the mask holds
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


class Envelope(NamedTuple):
    """darknet's LR over a batch range, as :func:`envelope` computes it."""

    start: I64
    stop: I64
    lo: F32
    hi: F32
    exact: bool
    sampled: bool
    regions: dict[str, list[tuple[int, int]]]
    counts: dict[str, tuple[int, int]]  # kind -> (batches, runs before merging)


def _masks(v: F32) -> dict[str, npt.NDArray[np.bool_]]:
    return {
        "nan": np.isnan(v),
        "inf": np.isinf(v),
        "zero": v == 0,
        "negative": v < 0,
    }


def envelope(
    schedule: NetSchedule, first: int, last: int, columns: int = COLUMNS
) -> Envelope:
    """darknet's LR over ``first .. last`` (see :class:`Envelope`).

    Up to :data:`EXACT_LIMIT` batches every batch is a point. Beyond, each of ``columns``
    columns keeps the min and max finite LR of every batch in it (computed in chunks of
    :data:`CHUNK` batches); beyond :data:`FULL_LIMIT` batches, of evenly spaced samples plus
    every boundary ±1.
    """
    n = last - first + 1
    runs = {k: _Runs() for k in REGION_KINDS}
    if n <= EXACT_LIMIT:
        b = np.arange(first, last + 1, dtype=np.int64)
        v = _diff.oracle(schedule, b)
        for k, m in _masks(v).items():
            runs[k].feed(b, m)
        fin = np.where(np.isfinite(v), v, np.float32(np.nan)).astype(np.float32)
        regions = {k: r.merged() for k, r in runs.items()}
        counts = {k: (r.count, r.runs) for k, r in runs.items()}
        return Envelope(b, b + 1, fin, fin.copy(), True, False, regions, counts)
    edges = column_edges(first, last, columns)
    lo = np.full(edges.size - 1, np.inf, dtype=np.float32)
    hi = np.full(edges.size - 1, -np.inf, dtype=np.float32)
    sampled = n > FULL_LIMIT
    if not sampled:
        # groups of whole columns of about CHUNK batches
        c0 = 0
        while c0 < edges.size - 1:
            c1 = int(np.searchsorted(edges, edges[c0] + CHUNK, side="right")) - 1
            c1 = min(max(c1, c0 + 1), edges.size - 1)
            b = np.arange(edges[c0], edges[c1], dtype=np.int64)
            v = _diff.oracle(schedule, b)
            _reduce(v, edges[c0:c1] - edges[c0], lo[c0:c1], hi[c0:c1])
            for k, m in _masks(v).items():
                runs[k].feed(b, m)
            c0 = c1
    else:
        marks, _ = boundaries(schedule, first, last, limit=10_000)
        extra = [m.batch + d for m in marks for d in (-1, 0, 1)]
        for c0 in range(0, edges.size - 1, 64):
            c1 = min(c0 + 64, edges.size - 1)
            pts = [
                np.linspace(edges[c], edges[c + 1] - 1, COLUMN_SAMPLES).astype(np.int64)
                for c in range(c0, c1)
            ]
            near = [x for x in extra if edges[c0] <= x < edges[c1]]
            b = np.unique(np.concatenate([*pts, np.asarray(near, dtype=np.int64)]))
            v = _diff.oracle(schedule, b)
            offs = np.searchsorted(b, edges[c0:c1])
            _reduce(v, offs, lo[c0:c1], hi[c0:c1])
            for k, m in _masks(v).items():
                runs[k].feed(b, m)
    lo = np.where(np.isinf(lo) & (lo > 0), np.float32(np.nan), lo).astype(np.float32)
    hi = np.where(np.isinf(hi) & (hi < 0), np.float32(np.nan), hi).astype(np.float32)
    regions = {k: r.merged() for k, r in runs.items()}
    counts = {k: (r.count, r.runs) for k, r in runs.items()}
    return Envelope(edges[:-1], edges[1:], lo, hi, False, sampled, regions, counts)


def _reduce(v: F32, offsets: I64, lo: F32, hi: F32) -> None:
    """Fold the finite values of ``v`` (segments start at ``offsets``) into ``lo``/``hi``."""
    fin = np.isfinite(v)
    vmin = np.where(fin, v, np.float32(np.inf)).astype(np.float32)
    vmax = np.where(fin, v, np.float32(-np.inf)).astype(np.float32)
    np.minimum(lo, np.minimum.reduceat(vmin, offsets), out=lo)
    np.maximum(hi, np.maximum.reduceat(vmax, offsets), out=hi)


def _torch_values(variant: Variant, first: int, last: int) -> tuple[I64, F64, F32, str]:
    """Steps of the translated torch scheduler (DarknetLR) inside ``first .. last``.

    Returns the darknet batches, torch's LR, darknet's LR there and a coverage note.
    """
    sched = variant.schedule
    n = variant.gpus
    factory = _diff.scheduler_factory(sched, style="class", ngpus=n)
    ref = _diff.gpu_schedule(sched, n)
    i0 = max(-(-first // n) - 1, 0)
    i1 = last // n - 1
    if i1 < i0:
        e = np.zeros(0, dtype=np.int64)
        return e, np.zeros(0), np.zeros(0, dtype=np.float32), "no torch step in range"
    count = i1 - i0 + 1
    if count <= TORCH_EXACT_LIMIT:
        windows = [(i0, i1 + 1)]
        note = "every step"
    else:
        marks, _ = boundaries(sched, first, last)
        rel = [max(-(-m.batch // n) - 1 - i0, 0) for m in marks]
        windows = [(i0 + s, i0 + t) for s, t in _diff._windows(count, rel)]
        note = "boundaries and a dense sample of steps"
    bs, gots = [], []
    for s, t in windows:
        pos = s
        for vals in _diff.step_lrs(factory, sched.learning_rate, s, t - s):
            bs.append((np.arange(pos, pos + vals.size, dtype=np.int64) + 1) * n)
            gots.append(vals)
            pos += vals.size
    b = np.concatenate(bs)
    got = np.concatenate(gots)
    return b, got, _diff.oracle(ref, b), note


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
) -> PlotData:
    """Compute the curves, markers, special regions (and torch error) of a figure.

    ``first``/``last`` default to 1 and the largest max_batches (or a span past the last
    boundary when max_batches is 0). ``x`` is "batches", "images" (batch × images per
    iteration) or "epochs" (images / ``images``).
    """
    if not variants:
        raise ValueError("nothing to plot")
    if x not in ("batches", "images", "epochs"):
        raise ValueError(f"x must be batches, images or epochs, not {x!r}")
    if x == "epochs" and not images:
        raise CfgError(
            "--x epochs", None, None, "needs --images N (images in the data set)"
        )
    notes: list[str] = []
    lo_b = 1 if first is None else first
    if last is None:
        spans = []
        for v in variants:
            steps, note = _diff.training_steps(v.schedule)
            spans.append(steps)
            if note and note not in notes:
                notes.append(note.replace("compared", "plotted"))
        hi_b = max(spans)
    else:
        hi_b = last
    if lo_b < 0 or hi_b < lo_b:
        raise CfgError(
            "--from/--to", None, None, f"empty or negative range {lo_b}..{hi_b}"
        )
    curves: list[Curve] = []
    markers: list[Marker] = []
    regions: list[Region] = []
    errors: list[ErrorPanel] = []
    nonpos = 0
    for k, v in enumerate(variants):
        sched = _diff.gpu_schedule(v.schedule, v.gpus)
        if v.gpus > 1:
            how = (
                f"learning_rate × {v.gpus}"
                if sched is not v.schedule
                else "hankai does not scale the learning rate"
            )
            notes.append(f"{v.label}: -gpus {v.gpus}: {how}")
        start, stop, lo, hi, exact, sampled, regs, counts = envelope(
            sched, lo_b, hi_b, columns
        )
        for kind, (nb, nr) in counts.items():
            if nr > MAX_REGIONS:
                notes.append(
                    f"{v.label}: LR {_REGION_STYLE[kind][2].removeprefix('LR is ')} at "
                    f"{nb:,} batches in {nr:,} runs, shaded as {MAX_REGIONS} merged regions"
                )
            if log and kind in ("zero", "negative"):
                nonpos += nb
        ipi = v.schedule.images_per_iteration
        xpb = (
            1.0
            if x == "batches"
            else ipi
            if x == "images"
            else ipi / float(images or 1)
        )
        curves.append(
            Curve(v.label, "darknet", start, stop, lo, hi, exact, sampled, xpb, v.gpus)
        )
        if sampled:
            notes.append(
                f"{hi_b - lo_b + 1:,} batches: each column from {COLUMN_SAMPLES} samples "
                "plus every boundary ±1"
            )
        for kind, runs in regs.items():
            for a, b in runs:
                regions.append(Region(k, kind, a, b))
        if 0 < v.schedule.max_batches < hi_b:
            regions.append(
                Region(k, "after", max(v.schedule.max_batches + 1, lo_b), hi_b)
            )
        marks, cut = boundaries(v.schedule, lo_b, hi_b)
        if marks:
            mb = np.array([m.batch for m in marks], dtype=np.int64)
            vals = _diff.oracle(sched, mb)
            for m, val in zip(marks, vals.tolist(), strict=True):
                markers.append(Marker(k, m.batch, m.kind, m.label, float(val)))
        if cut:
            notes.append(f"{v.label}: {cut} more boundaries not marked")
        if vs_torch:
            tb, got, exp, cov = _torch_values(v, lo_b, hi_b)
            tlabel = "PyTorch DarknetLR" + (
                f" ({v.label})" if len(variants) > 1 else ""
            )
            curves.append(_torch_curve(tlabel, v, tb, got, start, stop, exact, xpb))
            errors.append(_error_panel(len(curves) - 1, tb, got, exp, start, stop, cov))
    dark = [c for c in curves if c.kind == "darknet"]
    for a, b in itertools.combinations(range(len(dark)), 2):
        ca, cb = dark[a], dark[b]
        if (
            np.array_equal(ca.start, cb.start)
            and np.array_equal(ca.lo, cb.lo, equal_nan=True)
            and np.array_equal(ca.hi, cb.hi, equal_nan=True)
        ):
            notes.append(
                f"{ca.label} and {cb.label} coincide (drawn on top of each other)"
            )
    if nonpos:
        notes.append(
            f"log scale: LR ≤ 0 at {nonpos:,} batches cannot be drawn; shaded instead"
        )
    names = []
    for v in variants:
        if v.name not in names:
            names.append(v.name)
    forks = []
    for v in variants:
        if v.schedule.fork not in forks:
            forks.append(v.schedule.fork)
    if title is None:
        pols = sorted({v.schedule.policy.cfg_name for v in variants})
        title = (
            f"{' vs '.join(names)}: darknet learning rate "
            f"({', '.join(pols)} policy; {', '.join(forks)} fork)"
        )
    x_label = {
        "batches": "darknet batch (iteration)",
        "images": "images seen (iterations × batch)",
        "epochs": f"epoch ({images:,} images)" if images else "epoch",
    }[x]
    return PlotData(
        title=title,
        first=lo_b,
        last=hi_b,
        curves=tuple(curves),
        markers=tuple(markers),
        regions=tuple(regions),
        errors=tuple(errors),
        x=x,
        x_label=x_label,
        log=log,
        notes=tuple(notes),
    )


def _torch_curve(
    label: str,
    v: Variant,
    tb: I64,
    got: F64,
    start: I64,
    stop: I64,
    exact: bool,
    xpb: float,
) -> Curve:
    if exact or tb.size == 0:
        g = got.astype(np.float32)
        g = np.where(np.isfinite(g), g, np.float32(np.nan)).astype(np.float32)
        return Curve(
            label, "torch", tb, tb + v.gpus, g, g.copy(), True, False, xpb, v.gpus
        )
    col = np.searchsorted(start, tb, side="right") - 1
    lo = np.full(start.size, np.nan, dtype=np.float32)
    hi = np.full(start.size, np.nan, dtype=np.float32)
    keep = np.flatnonzero(np.diff(np.concatenate(([-1], col))) != 0)
    offs = keep
    g = got.astype(np.float32)
    fin = np.isfinite(g)
    mn = np.minimum.reduceat(np.where(fin, g, np.float32(np.inf)), offs)
    mx = np.maximum.reduceat(np.where(fin, g, np.float32(-np.inf)), offs)
    cols = col[keep]
    lo[cols] = np.where(np.isfinite(mn), mn, np.nan)
    hi[cols] = np.where(np.isfinite(mx), mx, np.nan)
    return Curve(label, "torch", start, stop, lo, hi, False, True, xpb, v.gpus)


def _error_panel(
    curve: int, tb: I64, got: F64, exp: F32, start: I64, stop: I64, coverage: str
) -> ErrorPanel:
    e = exp.astype(np.float64)
    _, rel, ulp = _diff.errors(e, got)
    signed = np.where(got < e, -ulp, ulp)
    if tb.size == 0:
        z = np.zeros(0)
        return ErrorPanel(curve, tb, tb, z, z, 0.0, 0.0, 0, coverage)
    if tb.size <= EXACT_LIMIT:
        return ErrorPanel(
            curve,
            tb,
            tb + 1,
            signed,
            signed.copy(),
            float(ulp.max()),
            float(rel.max()),
            int(tb.size),
            coverage,
        )
    col = np.searchsorted(start, tb, side="right") - 1
    keep = np.flatnonzero(np.diff(np.concatenate(([-1], col))) != 0)
    cols = col[keep]
    return ErrorPanel(
        curve,
        start[cols],
        stop[cols],
        np.minimum.reduceat(signed, keep),
        np.maximum.reduceat(signed, keep),
        float(ulp.max()),
        float(rel.max()),
        int(tb.size),
        coverage,
    )


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


def draw(
    data: PlotData,
    *,
    width: float = 11.0,
    height: float | None = None,
    figure: Any = None,
) -> Any:
    """A matplotlib ``Figure`` of ``data``; headless unless ``figure`` comes from pyplot."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter
    from matplotlib.transforms import blended_transform_factory

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
    palette = [f"C{k}" for k in range(10)]
    dark = [c for c in data.curves if c.kind == "darknet"]
    colour: dict[int, str] = {}
    n_dark = 0
    for idx, c in enumerate(data.curves):
        if c.kind == "darknet":
            colour[idx] = palette[n_dark % 10]
            n_dark += 1
        else:
            colour[idx] = "black"
    dark_index = [i for i, c in enumerate(data.curves) if c.kind == "darknet"]
    if data.log:
        ax.set_yscale("log")
    for idx, c in enumerate(data.curves):
        col = colour[idx]
        xs = np.append(c.start, c.stop[-1:]).astype(np.float64) * c.x_per_batch
        if c.kind == "torch":
            y = np.append(c.hi, c.hi[-1:])
            ax.plot(
                xs,
                y,
                color=col,
                lw=1.0,
                ls=(0, (4, 3)),
                drawstyle="steps-post",
                label=c.label,
                zorder=4,
            )
            continue
        if data.log:
            lo = np.where(c.lo > 0, c.lo, np.nan)
            hi = np.where(c.hi > 0, c.hi, np.nan)
        else:
            lo, hi = c.lo, c.hi
        ylo = np.append(lo, lo[-1:])
        yhi = np.append(hi, hi[-1:])
        if c.exact:
            ax.plot(
                xs,
                yhi,
                color=col,
                lw=1.6,
                drawstyle="steps-post",
                label=c.label,
                zorder=3,
            )
        else:
            ax.fill_between(
                xs, ylo, yhi, step="post", color=col, alpha=0.35, lw=0, zorder=2
            )
            ax.plot(
                xs,
                yhi,
                color=col,
                lw=1.2,
                drawstyle="steps-post",
                label=c.label,
                zorder=3,
            )
            ax.plot(xs, ylo, color=col, lw=0.8, drawstyle="steps-post", zorder=3)
    # special regions
    handles: dict[str, Any] = {}
    shaded: set[tuple[str, float, float]] = set()
    for r in data.regions:
        c = data.curves[dark_index[r.curve]] if r.curve < len(dark_index) else dark[0]
        colr, hatch, text = _REGION_STYLE[r.kind]
        x0 = r.first * c.x_per_batch
        x1 = (r.last + 1) * c.x_per_batch
        if (r.kind, x0, x1) in shaded:
            continue
        shaded.add((r.kind, x0, x1))
        ax.axvspan(
            x0,
            x1,
            facecolor=colr,
            alpha=0.18,
            hatch=hatch,
            edgecolor=colr,
            lw=0,
            zorder=1,
        )
        span = f"b = {r.first:,}" + (f"–{r.last:,}" if r.last != r.first else "")
        if r.kind == "after" and len(dark) > 1:
            span = f"{c.label}: {span}"
        more = len({(q.first, q.last) for q in data.regions if q.kind == r.kind}) - 1
        if more:
            span += f" and {more} more"
        handles.setdefault(
            r.kind,
            Patch(
                facecolor=colr,
                alpha=0.3,
                hatch=hatch,
                edgecolor=colr,
                label=f"{text} ({span})",
            ),
        )
    # markers: one dotted line and one label per group of nearby batches
    tx = blended_transform_factory(ax.transData, ax.transAxes)
    nmark = len(data.markers)
    x_span = max((data.last + 1 - data.first) * data.curves[0].x_per_batch, 1e-300)
    for xm, text in _marker_labels(data, dark_index, 0.008 * x_span):
        ax.axvline(xm, color="0.55", lw=0.7, ls=":", zorder=1)
        if nmark <= 30:
            ax.text(
                xm,
                0.99,
                text + " ",
                transform=tx,
                rotation=90,
                va="top",
                ha="left",
                fontsize=7,
                color="0.3",
            )
    texts_at: dict[float, list[str]] = {}
    for m in data.markers:
        c = data.curves[dark_index[m.curve]]
        col = colour[dark_index[m.curve]]
        xm = m.batch * c.x_per_batch
        if math.isfinite(m.lr) and (m.lr > 0 or not data.log):
            ax.plot([xm], [m.lr], "o", ms=4, color=col, zorder=5)
            shown = texts_at.setdefault(xm, [])
            if nmark <= 30 and fmt_lr(m.lr) not in shown:
                shown.append(fmt_lr(m.lr))
                ax.annotate(
                    fmt_lr(m.lr),
                    (xm, m.lr),
                    xytext=(4, 4 + 9 * (len(shown) - 1)),
                    textcoords="offset points",
                    fontsize=7,
                    color=col,
                )
    ax.yaxis.set_major_formatter(FuncFormatter(fmt_lr))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt_count))
    if data.log:
        from matplotlib.ticker import NullFormatter

        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("learning rate" + (" (log scale)" if data.log else ""))
    ax.set_title(data.title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ymin, ymax = ax.get_ylim()
    if data.log:
        ax.set_ylim(
            ymin, ymax * (ymax / ymin) ** 0.25
        )  # headroom for the marker labels
    else:
        ax.set_ylim(min(ymin, 0.0), ymax + 0.3 * (ymax - min(ymin, 0.0)))
    hs, ls_ = ax.get_legend_handles_labels()
    hs += list(handles.values())
    ls_ += [h.get_label() for h in handles.values()]
    if hs:  # below the axes: never over the curves or the marker labels
        fig.legend(
            hs,
            ls_,
            loc="outside lower center",
            ncols=min(len(hs), 3),
            fontsize=8,
            frameon=False,
        )
    if data.notes:
        ax.text(
            0.005,
            0.005,
            "\n".join(data.notes),
            transform=ax.transAxes,
            fontsize=7,
            va="bottom",
            ha="left",
            color="0.25",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
    last_ax = ax
    if ax_err is not None:
        for e in data.errors:
            c = data.curves[e.curve]
            if e.start.size == 0:
                continue
            xs = np.append(e.start, e.stop[-1:]).astype(np.float64) * c.x_per_batch
            lo = np.append(e.lo, e.lo[-1:])
            hi = np.append(e.hi, e.hi[-1:])
            ax_err.fill_between(xs, lo, hi, step="post", color="black", alpha=0.3, lw=0)
            ax_err.plot(xs, hi, color="black", lw=0.8, drawstyle="steps-post")
            ax_err.plot(xs, lo, color="black", lw=0.8, drawstyle="steps-post")
        summary = "; ".join(
            f"max |error| {fmt_lr(e.max_ulp)} ulp, rel {fmt_lr(e.max_rel)} over "
            f"{e.steps:,} steps ({e.coverage})"
            for e in data.errors
        )
        ax_err.text(
            0.005, 0.95, summary, transform=ax_err.transAxes, fontsize=7, va="top"
        )
        ax_err.axhline(0, color="0.5", lw=0.6)
        ax_err.set_ylabel("torch − C\n(float32 ulps)")
        ax_err.grid(True, alpha=0.3)
        last_ax = ax_err
    last_ax.set_xlabel(data.x_label)
    lo_x = data.first * data.curves[0].x_per_batch
    hi_x = (data.last + 1) * data.curves[0].x_per_batch
    ax.set_xlim(lo_x, hi_x + 0.015 * (hi_x - lo_x))
    return fig


def _marker_labels(
    data: PlotData, dark_index: Sequence[int], near: float
) -> list[tuple[float, str]]:
    """(x, text) per group of marker positions closer than ``near`` (x units)."""
    seen: dict[tuple[int, str], float] = {}
    for m in data.markers:
        c = data.curves[dark_index[m.curve]]
        seen.setdefault((m.batch, m.label), m.batch * c.x_per_batch)
    items = sorted(seen.items(), key=lambda kv: (kv[1], kv[0][0]))
    groups: list[list[tuple[tuple[int, str], float]]] = []
    for item in items:
        if groups and item[1] - groups[-1][0][1] < near:
            groups[-1].append(item)
        else:
            groups.append([item])
    out = []
    for g in groups:
        if len(g) <= 2:
            text = " | ".join(f"{lab} {b:,}" for (b, lab), _ in g)
        else:
            text = f"{len(g)} boundaries {g[0][0][0]:,}–{g[-1][0][0]:,}"
        out.append((g[0][1], text))
    return out


#: Output formats by file extension.
FORMATS = ("png", "svg", "pdf")


def output_format(path: str) -> str:
    """The image format for ``path`` from its extension (png, svg or pdf)."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise CfgError(path, None, None, "unknown image format: use .png, .svg or .pdf")
    return ext


def save(fig: Any, stream: Any, fmt: str, dpi: int = 150) -> None:
    """Write ``fig`` as ``fmt`` to the binary ``stream`` with the Agg-based canvases."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    meta = {"Software": "cfgsched"} if fmt == "png" else None
    fig.savefig(stream, format=fmt, dpi=dpi, metadata=meta)
