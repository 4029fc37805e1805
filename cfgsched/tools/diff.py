"""Compare a real torch scheduler, step by step, or a second schedule, batch by batch,
with darknet's C formula, in chunks (bounded memory)."""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
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
from cfgsched.text import counted, plain
from cfgsched.tools import stepping as st
from cfgsched.tools.layer_check import check_layers
from cfgsched.tools.stepping import Factory, user_code

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


@dataclass
class DiffReport:
    """What ``cfgsched diff`` prints, folded in chunk by chunk (steps from ``stop`` on: the
    ``rows_at`` table rows only); the JSON keys are the fields shown by repr, in order.
    ``unchecked`` (boundaries a sample skipped) and ``different`` (a failed layer-rule
    check) make it not EQUAL; differing ranges as :data:`_SPAN`."""

    expected: dict[str, Any]
    got: dict[str, Any]
    coverage: str
    coverage_note: str
    unchecked: str
    different: str = ""
    steps_compared: int = 0
    steps: list[int] = field(default_factory=lambda: [0, 0])
    batches: list[int] = field(default_factory=lambda: [0, 0])
    tolerance: Tolerance = field(default_factory=lambda: Tolerance("ulp", 0.0, "0ulp"))
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    max_ulp_error: float = 0.0
    max_error_step: int | None = None
    first_difference: Row | None = None
    differing_ranges: list[list[int]] = field(default_factory=list)
    differing_ranges_total: int = 0
    boundaries: list[Row] = field(default_factory=list)
    boundaries_not_listed: int = 0
    notes: tuple[str, ...] = ()
    rows_at: dict[int, str] = field(default_factory=dict, repr=False)
    stop: int = field(default=0, repr=False)
    _last: list[int] | None = field(default=None, repr=False)

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
            self.boundaries.append(
                row(self.rows_at[k], j, bool(within[j]), k < self.stop)
            )
        n = int(np.searchsorted(i, self.stop))  # the steps in training
        if n == 0:
            return
        if not self.steps_compared:
            self.steps[0], self.batches[0] = int(i[0]), int(b[0])
        self.steps[1], self.batches[1] = int(i[n - 1]), int(b[n - 1])
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
            self.differing_ranges_total += 1
            if len(self.differing_ranges) < MAX_RANGES:  # a continuation lands here too
                self.differing_ranges.append(self._last)

    @property
    def equal(self) -> bool:
        """True when every compared step is within the tolerance and nothing was skipped."""
        return (
            self.first_difference is None and not self.unchecked and not self.different
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema :data:`SCHEMA`); non-finite floats are "nan"/"inf"/"-inf"."""
        d = {f.name: plain(getattr(self, f.name)) for f in fields(self) if f.repr}
        d["unchecked"], d["different"] = self.unchecked or None, self.different or None
        d["tolerance"] = {"kind": self.tolerance.kind, "value": self.tolerance.value}
        spans = self.differing_ranges
        d["differing_ranges"] = [dict(zip(_SPAN, x, strict=True)) for x in spans]
        return {
            "schema": SCHEMA,
            "equal": self.equal,
            "exit_code": int(not self.equal),
            **d,
        }

    def format_text(self) -> str:
        """The human-readable report (control characters of names escaped)."""
        e, g, (i0, i1), (b0, b1) = self.expected, self.got, self.steps, self.batches
        what = "A = {}  vs  B = {}" if e["kind"] == "A" else "{1}  vs  {0}"
        worst = self.max_error_step
        at = "" if worst is None else f" (at step i = {worst})"
        lines = [
            "cfgsched diff: " + what.format(e["label"], g["label"]),
            f"compared {self.steps_compared:,} steps exhaustively (i = {i0}..{i1}, "
            f"b = {b0}..{b1})"
            if self.coverage == "exhaustive"
            else f"compared {self.steps_compared:,} sampled steps between i = {i0} "
            f"(b = {b0}) and i = {i1} (b = {b1}) ({self.coverage_note})",
            *(f"note: {n}" for n in self.notes),
            f"max abs error {_g(self.max_abs_error)}, max rel error "
            f"{_g(self.max_rel_error)}, max ulp error {_g(self.max_ulp_error)}{at}",
            self._result(),
        ]
        spans, total = self.differing_ranges, self.differing_ranges_total
        if spans:
            lines.append("differing ranges (optimizer steps i, darknet batches b):")
        for i0, i1, b0, b1, n in spans:
            lines.append(
                f"  i = {_range(i0, i1)}, b = {_range(b0, b1)}  ({counted(n, 'step')})"
            )
        if total > len(spans):
            lines.append(f"  ... {total - len(spans)} more ranges")
        return "\n".join(escape(line) for line in lines + self._row_lines())

    def _result(self) -> str:
        fd, e, g, tol = self.first_difference, self.expected, self.got, self.tolerance
        if fd is not None:
            return (
                f"result: DIFFERENT beyond {tol.text}; first at step i = {fd.step} "
                f"(b = {fd.batch}): {e['kind']} {_g(fd.expected)}, {g['kind']} "
                f"{_g(fd.got)}"
            )
        if self.different:
            return f"result: DIFFERENT: {self.different}"
        if self.unchecked:
            return f"result: NOT ALL CHECKED: {self.unchecked}"
        return f"result: EQUAL within {tol.text}"

    def _row_lines(self) -> list[str]:
        rows, e, g = self.boundaries, self.expected, self.got
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
        if self.boundaries_not_listed:
            lines.append(f"({self.boundaries_not_listed} more boundaries not listed)")
        return lines


def _g(x: float) -> str:
    return f"{x:.9g}"


def _range(first: int, last: int) -> str:
    return f"{first}" if first == last else f"{first}..{last}"


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
    """What the translation does, in words (:attr:`Run.notes`; none for a plain run)."""
    keys = ["span", "random", "mapping", "gpus", "ideal", "resume"]
    if run.mapping == "b = i + 1":
        keys.remove("mapping")
    return [run.notes[k] for k in keys if k in run.notes]


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

    def lrs(start: int, count: int, first: bool) -> Iterator[st.F64]:
        default = module is not None and first  # as users call it
        return st.torch_lrs(factory, float(lr), start, count, who=who, default=default)

    lo = run.batch(run.start) if run.start > 0 else 1
    hi = max(run.batch(run.stop), run.schedule.max_batches, 1)
    report = _compare(
        _torch_sides(run, got, "module" if module else style),
        [("", run.schedule)], _tolerance(tolerance, o.exact),
        _translation_notes(run) + (_record_notes(record, run) if record else []),
        steps=(run.start, run.stop), batches=(lo, hi), first_step=run.first_step,
        expect=lambda i: (run.batches(i), run.lrs(i)), got=lrs, exhaustive=exhaustive,
        limits=(st.EXHAUSTIVE_LIMIT, MAX_EXHAUSTIVE_STEPS), progress=progress,
    )  # fmt: skip
    report.different = check_layers(names, run) if names is not None else ""
    return report


def _torch_sides(
    run: Run, got: str, kind: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    s, o = run.given, run.options
    how = ", ".join([Path(s.source).name, s.fork, *filter(None, [describe(o)])])
    if s.policy is Policy.RANDOM:
        label = f"cfgsched's seeded draws, not darknet's rand() ({how})"
        return _side(label, "seeded draws", s, o), _side(got, kind, s, o)
    return _side(f"darknet C formula ({how})", "darknet", s, o), _side(got, kind, s, o)


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
    labels: tuple[str, str] | None = None,
    tolerance: Tolerance | str | None = None,
    exhaustive: bool | None = None,
) -> DiffReport:
    """Compare two schedules batch by batch (C formula vs C formula; step i = b - 1) over
    b = 1 .. the longer run (+1 for the table); ``options`` that map optimizer steps
    (images per step, trace, resume) raise ValueError; ``labels`` default to :func:`_title`.
    Default tolerance: 1e-6 when one side is double, else :func:`diff_torch`'s."""
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
    if labels is None:
        labels = (_title(a, oa), _title(b, ob))

    def lrs(start: int, count: int, first: bool) -> Iterator[st.F64]:
        for s in range(start + 1, start + count + 1, ORACLE_CHUNK):
            stop = min(s + ORACLE_CHUNK, start + count + 1)
            yield tb.batch_lrs(np.arange(s, stop, dtype=np.int64)).astype(np.float64)

    notes = [
        ta.note,
        tb.note if tb.note != ta.note else "",
        ta.notes.get("random") or tb.notes.get("random", ""),
        f"max_batches differ ({a.max_batches} vs {b.max_batches}): compared up to b = {n}"
        if a.max_batches != b.max_batches
        else "",
    ]
    return _compare(
        (_side(labels[0], "A", a, oa), _side(labels[1], "B", b, ob)),
        [("A", a), ("B", b)], _tolerance(tolerance, oa.exact), notes,
        steps=(0, n), batches=(1, n), first_step=lambda x: max(x - 1, 0),
        expect=lambda i: (i + 1, ta.batch_lrs(i + 1)), got=lrs,
        exhaustive=exhaustive, limits=(MAX_EXHAUSTIVE_BATCHES, None),
    )  # fmt: skip


def _title(s: NetSchedule, o: Options) -> str:
    """``yolov4.cfg (alexeyab, 4 GPUs)``: a schedule's label in a comparison of two."""
    return f"{Path(s.source).name} ({', '.join(filter(None, [s.fork, describe(o)]))})"


# ----------------------------------------------------------------------------- comparing


def _compare(
    sides: tuple[dict[str, Any], dict[str, Any]],
    tagged: Sequence[tuple[str, NetSchedule]],
    tol: Tolerance,
    notes: Sequence[str],
    *,
    steps: tuple[int, int],
    batches: tuple[int, int],
    first_step: Callable[[int], int],
    expect: Callable[[st.I64], tuple[st.I64, st.F32 | st.F64]],
    got: Callable[[int, int, bool], Iterator[st.F64]],
    exhaustive: bool | None,
    limits: tuple[int, int | None],
    progress: Progress | None = None,
) -> DiffReport:
    """Compare ``steps`` (start, stop; one more for the table): darknet's batches and LRs
    by ``expect(i)``, the LRs under test by ``got(first, count, is_first)`` per window;
    windows and rows at ``tagged``'s boundaries in ``batches``, from ``first_step(b)``."""
    lo, stop = steps
    marks, listed, cut, unchecked = _marks(tagged, *batches)
    at = [first_step(m.batch) for m in marks]
    windows, coverage, note = _plan(tagged[0][1], lo, stop, at, exhaustive, *limits)
    rows_at: dict[int, str] = {}  # the first step at or past each boundary, neighbours
    for m in listed:
        i0 = first_step(m.batch)
        for d, suffix in ((-1, " -1"), (0, ""), (1, " +1")):
            if lo <= i0 + d <= stop:
                rows_at.setdefault(i0 + d, m.label + suffix)
    report = DiffReport(
        *sides, coverage, note, "" if coverage == "exhaustive" else unchecked,
        tolerance=tol, boundaries_not_listed=cut, notes=tuple(filter(None, notes)),
        rows_at=rows_at, stop=stop,
    )  # fmt: skip
    todo = sum(t - s for s, t in windows)
    for k, (s, t) in enumerate(windows):
        for lrs in got(s, t - s, not k):
            i = np.arange(s, s + lrs.size, dtype=np.int64)
            report.add(i, *expect(i), lrs)
            s += lrs.size
            if progress is not None:
                progress(int(lrs.size), todo)
    return report


def _marks(
    tagged: Sequence[tuple[str, NetSchedule]], lo: int, hi: int
) -> tuple[list[Boundary], list[Boundary], int, str]:
    """The boundaries in batches ``lo..hi`` of each schedule (``tag: `` before the label of
    one the others lack): those checked (:data:`MAX_CHECKED_BOUNDARIES` each), those the
    table lists (:data:`MAX_BOUNDARIES` each), how many it does not list, and which were
    not checked ("" when none)."""
    found, cut, unchecked = [], 0, ""
    for _, s in tagged:
        marks, more = boundaries(s, lo, hi, limit=MAX_CHECKED_BOUNDARIES + 1)
        if len(marks) > MAX_CHECKED_BOUNDARIES:
            marks.pop()
            more += 1
            unchecked = unchecked or (
                f"{s.source} has more than {MAX_CHECKED_BOUNDARIES:,} boundaries: those "
                f"after b = {marks[-1].batch} did not get their ±{st.SAMPLE_HALO}-step "
                "windows (--exhaustive checks every step)"
            )
        found.append(marks)
        cut += more + max(len(marks) - MAX_BOUNDARIES, 0)
    shared = set(found[0]).intersection(*found[1:])

    def labelled(limit: int | None) -> list[Boundary]:
        out = {
            m if m in shared else replace(m, label=f"{tag}: {m.label}"): None
            for (tag, _), marks in zip(tagged, found, strict=True)
            for m in marks[:limit]
        }
        return sorted(out, key=lambda m: (m.batch, m in shared))  # one side's first

    return labelled(None), labelled(MAX_BOUNDARIES), cut, unchecked


def _plan(
    s: NetSchedule,
    lo: int,
    stop: int,
    at: Sequence[int],
    exhaustive: bool | None,
    limit: int,
    cap: int | None,
) -> tuple[list[tuple[int, int]], str, str]:
    """The step windows to compare (the boundaries' steps ``at`` in a sample), the
    coverage and its note; exhaustive up to ``limit`` steps by default, never past ``cap``
    (a CfgError on ``s``)."""
    count = stop - lo
    exhaustive = count <= limit if exhaustive is None else exhaustive
    if exhaustive and cap is not None and count > cap:
        raise CfgError(
            s.source, s.line_of("max_batches"), "max_batches",
            f"{count} steps: more than the {cap} an exhaustive diff allows; use --sampled",
        )  # fmt: skip
    if exhaustive:  # one step past the run for the boundary table
        return [(lo, stop + 1)], "exhaustive", "every step"
    windows = st.sample_windows(count + 1, [i - lo for i in at])
    why = f"{count:,} steps is more than {limit:,}"
    note = (
        f"{why if count > limit else '--sampled'}: the first "
        f"{st.SAMPLE_PREFIX:,} steps, ±{st.SAMPLE_HALO} steps around each of {len(at):,} "
        f"boundaries and {st.SAMPLE_WINDOWS} windows of {st.SAMPLE_WINDOW} steps; "
        "--exhaustive checks all"
    )
    return [(lo + a, lo + z) for a, z in windows], "sampled", note
