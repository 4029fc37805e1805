"""Compare a real torch scheduler, step by step, or a second schedule, batch by batch,
with darknet's C formula, in chunks (bounded memory)."""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cfgsched.boundaries import MAX_BOUNDARIES, Boundary, boundaries
from cfgsched.errors import CfgError
from cfgsched.files import escape
from cfgsched.module_record import ModuleRecord, module_bytes, read_record
from cfgsched.options import Options, default_flush
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule, Policy
from cfgsched.tools import stepping as st
from cfgsched.tools.layer_check import check_layers
from cfgsched.tools.stepping import Factory, user_code
from cfgsched.tools.text import counted, json_float

#: Steps, their darknet batches, the expected and the compared LRs.
Chunk = tuple[st.I64, st.I64, st.F32 | st.F64, st.F64]
Progress = Callable[[int, int], None]

SCHEMA = "cfgsched-diff/1"
#: ``--exhaustive`` refuses more steps than this (about 4 minutes of scheduler stepping).
MAX_EXHAUSTIVE_STEPS = 50_000_000
#: Oracle-vs-oracle comparisons are exhaustive up to this many batches.
MAX_EXHAUSTIVE_BATCHES = 200_000_000
#: Batches per chunk when both sides are the vectorized C formula.
ORACLE_CHUNK = 1 << 20
#: Differing ranges listed at most.
MAX_RANGES = 20
#: Boundaries a sampled diff checks at most (±SAMPLE_HALO steps each: ~2.6M steps).
MAX_CHECKED_BOUNDARIES = 20_000
#: The note on policy=random's draws.
_RANDOM = (
    "policy=random: darknet draws rand() at every batch, which no one can replay; "
    "the values here are cfgsched's seeded draws (Options.seed), not darknet's"
)
#: The scheduler each --style tests.
_STYLES = {"class": "cfgsched.DarknetLR", "native": "cfgsched.native_scheduler"}
#: The JSON keys of a differing range.
_SPAN = ("first_step", "last_step", "first_batch", "last_batch", "count")


@dataclass(frozen=True)
class Tolerance:
    """Allowed error: ``kind`` "ulp" (float32 ulps of darknet's value) or "rel" (relative)."""

    kind: str
    value: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """``0ulp``, ``1ulp``, ``2ulps`` or a relative error such as ``1e-6``."""
        t = text.strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*ulps?", t)
        if m:
            return cls("ulp", float(m.group(1)), text.strip())
        try:
            v = float(t)
        except ValueError:
            raise ValueError(
                f"tolerance {text!r}: expected e.g. 0ulp, 1ulp or 1e-6"
            ) from None
        if not v >= 0 or math.isinf(v):
            raise ValueError(f"tolerance {text!r}: must be a finite number >= 0")
        return cls("rel", v, text.strip())


def _tolerance(tolerance: Tolerance | str | None, exact: bool) -> Tolerance:
    """The tolerance given, else 0ulp, or 1e-9 in double (only the order of operations
    may differ)."""
    if tolerance is None:
        tolerance = "0ulp" if exact else "1e-9"
    return tolerance if isinstance(tolerance, Tolerance) else Tolerance.parse(tolerance)


# ----------------------------------------------------------------------------- report


def _side(label: str, kind: str, s: NetSchedule, o: Options) -> dict[str, Any]:
    """One side as JSON: ``kind`` darknet (the C formula), seeded draws (policy=random),
    class, native, module, or A/B (two schedules); ``o`` is the translation it follows."""
    d = {"label": label, "kind": kind, "fork": s.fork, "source": s.source}
    return {**d, "gpus": o.ngpus, "options": o.to_record()}


@dataclass(frozen=True)
class Row:
    """A compared step at a boundary (``in_training`` False past max_batches)."""

    label: str
    step: int
    batch: int
    expected: float
    got: float
    ulp_error: float
    within: bool
    in_training: bool

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON (non-finite floats as strings)."""
        d = asdict(self)
        return {k: json_float(v) if isinstance(v, float) else v for k, v in d.items()}


@dataclass
class Stats:
    """What a comparison found, chunk by chunk (steps from ``stop`` on: boundary rows
    only); differing ranges as :data:`_SPAN`."""

    tolerance: Tolerance
    rows_at: dict[int, str] = field(repr=False)
    stop: int = field(repr=False)
    steps_compared: int = 0
    first_step: int = 0
    last_step: int = 0
    first_batch: int = 0
    last_batch: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    max_ulp_error: float = 0.0
    max_error_step: int | None = None
    first_difference: Row | None = None
    spans: list[list[int]] = field(default_factory=list)
    spans_total: int = 0
    rows: list[Row] = field(default_factory=list)
    _last: list[int] | None = field(default=None, repr=False)

    def fold(self, chunks: Iterable[Chunk]) -> Stats:
        """Fold every chunk in."""
        for chunk in chunks:
            self.add(*chunk)
        return self

    def add(self, i: st.I64, b: st.I64, expected: st.F32 | st.F64, got: st.F64) -> None:
        """Fold the increasing steps ``i`` (darknet batches ``b``) into the statistics."""
        e = expected.astype(np.float64)
        ab, rel, ulp = st.errors(e, got)
        tol = self.tolerance
        within = (ulp if tol.kind == "ulp" else rel) <= tol.value

        def row(label: str, j: int, ok: bool, training: bool) -> Row:
            got_j, ulp_j = float(got[j]), float(ulp[j])
            return Row(
                label, int(i[j]), int(b[j]), float(e[j]), got_j, ulp_j, ok, training
            )

        for j in np.flatnonzero(np.isin(i, list(self.rows_at))).tolist():
            k = int(i[j])
            self.rows.append(row(self.rows_at[k], j, bool(within[j]), k < self.stop))
        n = int(np.searchsorted(i, self.stop))  # the steps in training
        if n == 0:
            return
        if not self.steps_compared:
            self.first_step, self.first_batch = int(i[0]), int(b[0])
        self.last_step, self.last_batch = int(i[n - 1]), int(b[n - 1])
        self.steps_compared += n
        k = int(np.argmax(ulp[:n]))
        if ulp[k] > self.max_ulp_error:
            self.max_ulp_error, self.max_error_step = float(ulp[k]), int(i[k])
        self.max_abs_error = max(self.max_abs_error, float(ab[:n].max()))
        self.max_rel_error = max(self.max_rel_error, float(rel[:n].max()))
        bad = np.flatnonzero(~within[:n])
        if bad.size and self.first_difference is None:
            self.first_difference = row("first difference", int(bad[0]), False, True)
        starts = np.flatnonzero(np.diff(bad, prepend=-2) != 1).tolist()
        for a, z in zip(starts, [*starts[1:], bad.size], strict=False):
            lo, hi, o = int(bad[a]), int(bad[z - 1]), self._last
            if o is not None and int(i[lo]) == o[1] + 1:  # continues the last range
                o[1], o[3], o[4] = int(i[hi]), int(b[hi]), o[4] + z - a
                continue
            self._last = [int(i[lo]), int(i[hi]), int(b[lo]), int(b[hi]), z - a]
            self.spans_total += 1
            if len(self.spans) < MAX_RANGES:  # the same list: a continuation lands here
                self.spans.append(self._last)


@dataclass(frozen=True)
class DiffReport:
    """What ``cfgsched diff`` prints; ``unchecked`` (boundaries a sample skipped) and
    ``different`` (a failed layer-rule check) make it not EQUAL."""

    expected: dict[str, Any]
    got: dict[str, Any]
    coverage: str
    coverage_note: str
    stats: Stats
    boundaries_cut: int
    notes: tuple[str, ...] = ()
    unchecked: str = ""
    different: str = ""

    @property
    def equal(self) -> bool:
        """True when every compared step is within the tolerance and nothing was skipped."""
        fd = self.stats.first_difference
        return fd is None and not self.unchecked and not self.different

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema :data:`SCHEMA`); non-finite floats are "nan"/"inf"/"-inf"."""
        s, fd = self.stats, self.stats.first_difference
        errs = ("max_abs_error", "max_rel_error", "max_ulp_error")
        return {
            "schema": SCHEMA,
            "equal": self.equal,
            "exit_code": 0 if self.equal else 1,
            "expected": self.expected,
            "got": self.got,
            "coverage": self.coverage,
            "coverage_note": self.coverage_note,
            "unchecked": self.unchecked or None,
            "different": self.different or None,
            "steps_compared": s.steps_compared,
            "steps": [s.first_step, s.last_step],
            "batches": [s.first_batch, s.last_batch],
            "tolerance": {"kind": s.tolerance.kind, "value": s.tolerance.value},
            **{k: json_float(getattr(s, k)) for k in errs},
            "max_error_step": s.max_error_step,
            "first_difference": None if fd is None else fd.to_dict(),
            "differing_ranges": [dict(zip(_SPAN, x, strict=True)) for x in s.spans],
            "differing_ranges_total": s.spans_total,
            "boundaries": [r.to_dict() for r in s.rows],
            "boundaries_not_listed": self.boundaries_cut,
            "notes": list(self.notes),
        }

    def format_text(self) -> str:
        """The human-readable report (control characters of names escaped)."""
        e, g, s = self.expected, self.got, self.stats
        what = "A = {}  vs  B = {}" if e["kind"] == "A" else "{1}  vs  {0}"
        at = "" if s.max_error_step is None else f" (at step i = {s.max_error_step})"
        lines = [
            "cfgsched diff: " + what.format(e["label"], g["label"]),
            f"compared {s.steps_compared:,} steps exhaustively (i = {s.first_step}.."
            f"{s.last_step}, b = {s.first_batch}..{s.last_batch})"
            if self.coverage == "exhaustive"
            else f"compared {s.steps_compared:,} sampled steps between i = "
            f"{s.first_step} (b = {s.first_batch}) and i = {s.last_step} "
            f"(b = {s.last_batch}) ({self.coverage_note})",
            *(f"note: {n}" for n in self.notes),
            f"max abs error {_g(s.max_abs_error)}, max rel error "
            f"{_g(s.max_rel_error)}, max ulp error {_g(s.max_ulp_error)}{at}",
            self._result(),
        ]
        if s.spans:
            lines.append("differing ranges (optimizer steps i, darknet batches b):")
        for i0, i1, b0, b1, n in s.spans:
            lines.append(
                f"  i = {_range(i0, i1)}, b = {_range(b0, b1)}  ({counted(n, 'step')})"
            )
        if s.spans_total > len(s.spans):
            lines.append(f"  ... {s.spans_total - len(s.spans)} more ranges")
        return "\n".join(escape(line) for line in lines + self._row_lines())

    def _result(self) -> str:
        fd, e, g = self.stats.first_difference, self.expected, self.got
        if fd is not None:
            return (
                f"result: DIFFERENT beyond {self.stats.tolerance.text}; first at step "
                f"i = {fd.step} (b = {fd.batch}): {e['kind']} {_g(fd.expected)}, {g['kind']} "
                f"{_g(fd.got)}"
            )
        if self.different:
            return f"result: DIFFERENT: {self.different}"
        if self.unchecked:
            return f"result: NOT ALL CHECKED: {self.unchecked}"
        return f"result: EQUAL within {self.stats.tolerance.text}"

    def _row_lines(self) -> list[str]:
        rows, e, g = self.stats.rows, self.expected, self.got
        if not rows:
            return []
        w = max(len(r.label) for r in rows)
        lines = [
            "",
            f"{'boundary':<{w}}  {'step i':>9}  {'batch b':>9}  {e['kind']:>15}  "
            f"{g['kind']:>15}  {'ulp':>6}",
        ]
        for r in rows:
            mark = ("" if r.within else "  <-- differs") + (
                "" if r.in_training else "  (after training)"
            )
            lines.append(
                f"{r.label:<{w}}  {r.step:>9}  {r.batch:>9}  {_g(r.expected):>15}  "
                f"{_g(r.got):>15}  {r.ulp_error:>6.3g}{mark}"
            )
        if self.boundaries_cut:
            lines.append(f"({self.boundaries_cut} more boundaries not listed)")
        return lines


def _g(x: float) -> str:
    return f"{x:.9g}"


def _range(first: int, last: int) -> str:
    return f"{first}" if first == last else f"{first}..{last}"


def _row_steps(
    marks: Sequence[Boundary], step_of: Callable[[int], int], lo: int, hi: int
) -> dict[int, str]:
    """Step -> label for the first step at or past each boundary and its neighbours."""
    out: dict[int, str] = {}
    for m in marks:
        i0 = step_of(m.batch)
        for d, suffix in ((-1, " -1"), (0, ""), (1, " +1")):
            if lo <= i0 + d <= hi:
                out.setdefault(i0 + d, m.label + suffix)
    return out


# ----------------------------------------------------------------------------- modules


def _load(
    path: str, schedule: NetSchedule, options: Options | None
) -> tuple[ModuleRecord, dict[str, Any], Factory]:
    """Its record (fork and options as the cfg's and ``options``, checked first), then the
    bytes read run as a fresh module (never cached byte code): **this runs its code**; its
    names and ``build_scheduler`` as called. Failures (``sys.exit`` too): one-line CfgErrors."""
    data = module_bytes(path)
    record = read_record(path, data)
    if record.fork != schedule.fork:
        bad = f"written for fork {record.fork}, the cfg is read as {schedule.fork}"
        raise CfgError(path, None, "CFGSCHED", bad)
    if options is not None and options != record.options:
        diffs = "; ".join(record.options.differences(options))
        bad = f"options differ from the record (record vs given): {diffs}"
        raise CfgError(path, None, "CFGSCHED", bad)
    try:
        code = compile(data, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        line, msg = getattr(exc, "lineno", None), getattr(exc, "msg", None) or str(exc)
        raise CfgError(path, line, None, f"not valid Python: {msg}") from None
    module = types.ModuleType(f"_cfgsched_module_{abs(hash(path))}")
    module.__file__ = path
    sys.modules[module.__name__] = module
    try:
        with user_code(path, "importing the module"):
            with contextlib.redirect_stdout(sys.stderr):
                exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    build: Any = getattr(module, "build_scheduler", None)
    signature = "build_scheduler(optimizer, last_epoch=-1)"
    if not callable(build):
        raise CfgError(path, None, None, f"defines no {signature}")
    try:
        inspect.signature(build).bind(None, last_epoch=-1)
    except (TypeError, ValueError) as exc:
        raise CfgError(path, None, None, f"{signature}: {exc}") from None

    def factory(optimizer: Any, last_epoch: int | None) -> Any:
        kw = {} if last_epoch is None else {"last_epoch": last_epoch}
        sched = build(optimizer, **kw)
        if not callable(getattr(sched, "step", None)):
            got = type(sched).__name__
            raise TypeError(
                f"build_scheduler returned {got}, not a scheduler with step()"
            )
        return sched

    return record, module.__dict__, factory


def _native_factory(run: Run, who: str) -> Factory:
    """``native_scheduler`` on ``run`` (checked to build once here)."""
    from cfgsched.adapters.native import native_scheduler  # torch

    if run.options.flush not in (None, default_flush(run.schedule.fork)):
        raise CfgError(
            who, None, None, "follows the fork's default release build: "
            "no --flush-subnormals/--keep-subnormals",
        )  # fmt: skip
    horizon = max(run.batch(run.stop - 1), 1)

    def make_native(optimizer: Any, last_epoch: int | None) -> Any:
        at = run.start - 1 if last_epoch is None else last_epoch
        return native_scheduler(optimizer, run, last_epoch=at, horizon=horizon)

    with user_code(who, "cfgsched.native_scheduler"):  # NotExactError passes
        make_native(st.new_optimizer(run.cfg_lr), -1)
    return make_native


# ----------------------------------------------------------------------------- torch side


def describe(o: Options) -> str:
    """The options that differ from the defaults, e.g. ``4 GPUs, trace`` ("" for none)."""
    flush = {None: "", True: "flush subnormals", False: "keep subnormals"}[o.flush]
    ips, resume = o.images_per_step, o.resume_iteration
    parts = [
        f"{o.ngpus} GPUs" if o.ngpus > 1 else "",
        "multigpu trace" if o.multigpu == "trace" else "",
        "scratch" if o.scratch else "",
        "" if ips is None else f"{ips} images per step",
        "ideal" if o.ideal else "",
        "" if o.exact else "double",
        flush,
        "" if resume is None else f"resumed at iteration {resume}",
        f"seed {o.seed}" if o.seed else "",
    ]
    return ", ".join(filter(None, parts))


def _translation_notes(run: Run) -> list[str]:
    """What the translation does, in words (empty for a plain one-GPU run)."""
    o, n = run.options, run.ngpus
    return [
        run.note,
        _RANDOM if run.schedule.policy is Policy.RANDOM else "",
        "" if run.mapping == "b = i + 1" else f"step i is darknet batch {run.mapping}",
        ""
        if run.params.lr == run.cfg_lr
        else f"base rate learning_rate × {n} (-gpus {n})",
        f"AlexeyAB's advice for {o.ngpus} GPUs: learning_rate / N, burn_in × N"
        if o.ideal
        else "",
        f"resumed: the run starts at step i = {run.start}" if run.start else "",
    ]


def _marks(run: Run) -> tuple[list[Boundary], int, str]:
    """The run's boundaries (at most :data:`MAX_CHECKED_BOUNDARIES`), how many more the
    schedule has, and which were not checked ("" when none)."""
    s = run.schedule
    lo = run.batch(run.start) if run.start > 0 else 1
    hi = max(run.batch(run.stop), s.max_batches, 1)
    marks, cut = boundaries(s, lo, hi, limit=MAX_CHECKED_BOUNDARIES + 1)
    if len(marks) <= MAX_CHECKED_BOUNDARIES:
        return marks, cut, ""
    marks.pop()
    return marks, cut + 1, (
        f"{s.source} has more than {MAX_CHECKED_BOUNDARIES:,} boundaries: those after "
        f"b = {marks[-1].batch} did not get their ±{st.SAMPLE_HALO}-step windows "
        "(--exhaustive checks every step)"
    )  # fmt: skip


def _check_resume(run: Run) -> None:
    """A run resumed at or past its end has nothing to compare: a one-line error."""
    s = run.schedule
    if run.start >= run.stop:
        raise CfgError(
            s.source, s.line_of("max_batches"), "max_batches",
            f"the resume point (darknet iteration {run.options.resume_iteration:,}, "
            f"optimizer step i = {run.start:,}) is past the end of the run ({run.stop:,} "
            f"steps, max_batches {s.max_batches}): nothing to compare",
        )  # fmt: skip


def _plan(
    run: Run, marks: Sequence[Boundary], exhaustive: bool | None
) -> tuple[list[tuple[int, int]], str, str]:
    """The step windows to compare, the coverage and its note."""
    lo, count, s = run.start, run.steps, run.schedule
    exhaustive = count <= st.EXHAUSTIVE_LIMIT if exhaustive is None else exhaustive
    if exhaustive and count > MAX_EXHAUSTIVE_STEPS:
        raise CfgError(
            s.source, s.line_of("max_batches"), "max_batches",
            f"{count} steps: more than the {MAX_EXHAUSTIVE_STEPS} an exhaustive diff "
            "allows; use --sampled",
        )  # fmt: skip
    if exhaustive:  # one step past the run for the boundary table
        return [(lo, run.stop + 1)], "exhaustive", "every step"
    rel = [run.first_step(m.batch) - lo for m in marks]
    windows = [(lo + a, lo + z) for a, z in st.sample_windows(count + 1, rel)]
    why = f"{count:,} steps is more than {st.EXHAUSTIVE_LIMIT:,}"
    note = (
        f"{why if count > st.EXHAUSTIVE_LIMIT else '--sampled'}: the first "
        f"{st.SAMPLE_PREFIX:,} steps, ±{st.SAMPLE_HALO} steps around each of {len(marks):,} "
        f"boundaries and {st.SAMPLE_WINDOWS} windows of {st.SAMPLE_WINDOW} steps; "
        "--exhaustive checks all"
    )
    return windows, "sampled", note


def diff_torch(
    schedule: NetSchedule,
    options: Options | None = None,
    *,
    style: str = "class",
    module: str | None = None,
    tolerance: Tolerance | str | None = None,
    exhaustive: bool | None = None,
    progress: Progress | None = None,
) -> DiffReport:
    """Step the torch scheduler and compare every step (or a sample) with the C formula.

    ``style`` is "class" (``DarknetLR``) or "native" (``native_scheduler``); a ``module``
    file (imported: its code runs) is tested instead, on its record's translation
    (``options``, if given, must equal it), its first window built as users call it.
    ``exhaustive=None``: every step up to ``EXHAUSTIVE_LIMIT``, else a sample.
    ``progress(n, total)`` follows each chunk."""
    o, record, names, lr = options or Options(), None, None, None
    if module is not None:
        record, names, factory = _load(module, schedule, options)
        o, got = record.options, f"{module}:build_scheduler"
        lr = names.get("LEARNING_RATE")
    tol = _tolerance(tolerance, o.exact)
    run = translate(schedule, o)
    _check_resume(run)
    who = module or f"{run.given.source}: --style {style}"
    if module is None:
        if style not in _STYLES:
            raise ValueError(f"unknown style {style!r} (class or native)")
        got = _STYLES[style]
        factory = (
            st.class_factory(run) if style == "class" else _native_factory(run, who)
        )
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        lr = run.cfg_lr
    marks, cut, unchecked = _marks(run)
    windows, coverage, note = _plan(run, marks, exhaustive)
    rows_at = _row_steps(marks[:MAX_BOUNDARIES], run.first_step, run.start, run.stop)
    chunks = _torch_chunks(run, factory, float(lr), windows, who, module, progress)
    notes = _translation_notes(run) + (_record_notes(record, run) if record else [])
    return DiffReport(
        *_torch_sides(run, got, "module" if module else style), coverage, note,
        Stats(tol, rows_at, run.stop).fold(chunks),
        cut + max(len(marks) - MAX_BOUNDARIES, 0), tuple(filter(None, notes)),
        "" if coverage == "exhaustive" else unchecked,
        check_layers(names, run) if names is not None else "",
    )  # fmt: skip


def _torch_sides(
    run: Run, got: str, kind: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    s, o = run.given, run.options
    how = ", ".join([Path(s.source).name, s.fork, *filter(None, [describe(o)])])
    if s.policy is Policy.RANDOM:
        label = f"cfgsched's seeded draws, not darknet's rand() ({how})"
        return _side(label, "seeded draws", s, o), _side(got, kind, s, o)
    return _side(f"darknet C formula ({how})", "darknet", s, o), _side(got, kind, s, o)


def _torch_chunks(
    run: Run,
    factory: Factory,
    lr: float,
    windows: Sequence[tuple[int, int]],
    who: str,
    module: str | None,
    progress: Progress | None,
) -> Iterator[Chunk]:
    """The stepped LRs of each window (the first at the builder's default start when
    ``module``), the run's batches and darknet's LRs."""
    todo = sum(t - s for s, t in windows)
    for k, (s, t) in enumerate(windows):
        for got in st.torch_lrs(
            factory, lr, s, t - s, who=who, default=module is not None and not k
        ):
            i = np.arange(s, s + got.size, dtype=np.int64)
            b = run.batches(i)
            yield i, b, run.batch_lrs(b), got
            s += got.size
            if progress is not None:
                progress(int(got.size), todo)


def _record_notes(r: ModuleRecord, run: Run) -> list[str]:
    cfg, was = Path(run.given.source).name, Path(r.cfg).name
    return [
        f"module record: cfgsched {r.version or '?'}, cfg {r.cfg or '?'}, "
        f"{r.format or '?'} / {r.style or '?'}, options: {describe(r.options) or 'defaults'}",
        f"steps from i = {run.start} on are stepped from build_scheduler(optimizer) as "
        "written (its default start must be the record's); other windows from "
        "build_scheduler(optimizer, last_epoch=i - 1)",
        f"the module was written from {was}; compared with {cfg}"
        if r.cfg and was != cfg
        else "",
    ]


# ----------------------------------------------------------------------------- two schedules


def diff_schedules(
    a: NetSchedule,
    b: NetSchedule,
    options: tuple[Options, Options] | None = None,
    *,
    labels: tuple[str, str] = ("A", "B"),
    tolerance: Tolerance | str | None = None,
    exhaustive: bool | None = None,
) -> DiffReport:
    """Compare two schedules batch by batch (C formula vs C formula).

    b = 1 .. the longer run (+1 for the table); ``options`` that map optimizer steps
    (images per step, trace, resume) raise ValueError. Default tolerance: 1e-6 when
    one side is double, else :func:`diff_torch`'s."""
    oa, ob = options if options is not None else (Options(), Options())
    for o in (oa, ob):
        if o.images_per_step is not None or o.multigpu == "trace" or o.resume_iteration:
            raise ValueError(
                "two schedules are compared batch by batch: images per step, "
                "multigpu='trace' and resuming apply to a torch run (give one cfg)"
            )
    ta, tb = translate(a, oa), translate(b, ob)
    if tolerance is None and oa.exact != ob.exact:
        tolerance = "1e-6"
    n = max(ta.span[0], tb.span[0], 1)  # the longer run, in batches
    rows_at, cut = _pair_rows(ta.schedule, tb.schedule, n)
    exhaustive = n <= MAX_EXHAUSTIVE_BATCHES if exhaustive is None else exhaustive
    windows = [(0, n + 1)] if exhaustive else st.sample_windows(n + 1, sorted(rows_at))
    notes = [
        ta.note,
        tb.note if tb.note != ta.note else "",
        _RANDOM if Policy.RANDOM in (a.policy, b.policy) else "",
        f"max_batches differ ({a.max_batches} vs {b.max_batches}): compared up to b = {n}"
        if a.max_batches != b.max_batches
        else "",
    ]
    plan = ("exhaustive", "every batch") if exhaustive else (
        "sampled", "boundaries and a dense sample"
    )  # fmt: skip
    stats = Stats(_tolerance(tolerance, oa.exact), rows_at, n)
    return DiffReport(
        _side(labels[0], "A", a, oa),
        _side(labels[1], "B", b, ob),
        *plan,
        stats.fold(_pair_chunks(ta, tb, windows)),
        cut,
        tuple(filter(None, notes)),
    )


def _pair_chunks(a: Run, b: Run, windows: Sequence[tuple[int, int]]) -> Iterator[Chunk]:
    """Steps i = b - 1 of each window with both runs' LRs at b, in chunks."""
    for s, t in windows:
        for lo in range(s, t, ORACLE_CHUNK):
            i = np.arange(lo, min(lo + ORACLE_CHUNK, t), dtype=np.int64)
            yield i, i + 1, a.batch_lrs(i + 1), b.batch_lrs(i + 1).astype(np.float64)


def _pair_rows(a: NetSchedule, b: NetSchedule, n: int) -> tuple[dict[int, str], int]:
    """Rows at both schedules' boundaries (i = b - 1), labelled A:/B: when not shared."""
    ma, cut_a = boundaries(a, 1, n)
    mb, cut_b = boundaries(b, 1, n)
    marks = sorted(
        {Boundary(m.batch, m.kind, m.label if m in ma and m in mb else f"{tag}: {m.label}")
         for tag, ms in (("A", ma), ("B", mb)) for m in ms},
        key=lambda m: (m.batch, m.label),
    )  # fmt: skip
    return _row_steps(marks, lambda x: max(x - 1, 0), 0, n), cut_a + cut_b
