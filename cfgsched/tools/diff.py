"""Compare a real torch scheduler (or a second schedule) with darknet's C formula.

Both sides follow one translation (:class:`cfgsched.options.Options`): optimizer step
``i`` (0-based) is darknet batch ``b = translation.batch(i)`` with the translation's base
rate, and the expected value is :meth:`cfgsched.run.Run.lrs`. The torch side is
stepped for real (:mod:`cfgsched.tools.stepping`). Values are compared in chunks, so
memory stays bounded for any number of steps.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import MAX_BOUNDARIES, Boundary, boundaries
from cfgsched.errors import CfgError
from cfgsched.files import escape
from cfgsched.module_record import ModuleRecord, module_bytes, read_record
from cfgsched.options import Options, default_flush
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule, Policy
from cfgsched.tools.stepping import (
    EXHAUSTIVE_LIMIT,
    SAMPLE_HALO,
    SAMPLE_PREFIX,
    SAMPLE_WINDOW,
    SAMPLE_WINDOWS,
    Factory,
    class_factory,
    errors,
    new_optimizer,
    sample_windows,
    torch_lrs,
    user_code,
)
from cfgsched.tools.text import json_float

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SCHEMA = "cfgsched-diff/1"
#: Default tolerance when the translation is darknet's float32 arithmetic.
EXACT_TOLERANCE = "0ulp"
#: Default tolerance for a double translation (``exact=False``): both sides evaluate the
#: same formulas in double, so only the order of operations may differ.
DOUBLE_TOLERANCE = "1e-9"
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

Progress = Callable[[int, int], None]


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


def default_tolerance(options: Options) -> Tolerance:
    """:data:`EXACT_TOLERANCE`, or :data:`DOUBLE_TOLERANCE` for a double translation."""
    return Tolerance.parse(EXACT_TOLERANCE if options.exact else DOUBLE_TOLERANCE)


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Side:
    """One side of a comparison: ``kind`` is darknet (the C formula), seeded draws
    (policy=random), class, native, module, or A/B (two schedules); ``options`` is the
    translation it follows."""

    label: str
    kind: str
    fork: str
    source: str
    options: Options = field(default_factory=Options)

    def to_dict(self) -> dict[str, Any]:
        """The side as JSON (``options`` as :meth:`Options.to_record`)."""
        out = {k: getattr(self, k) for k in ("label", "kind", "fork", "source")}
        return {**out, "gpus": self.options.ngpus, "options": self.options.to_record()}


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


@dataclass(frozen=True)
class Span:
    """A run of consecutive compared steps that differ beyond the tolerance."""

    first_step: int
    last_step: int
    first_batch: int
    last_batch: int
    count: int


def _row_dict(r: Row) -> dict[str, Any]:
    return {
        k: json_float(v) if isinstance(v, float) else v for k, v in asdict(r).items()
    }


@dataclass(frozen=True)
class DiffReport:
    """Everything ``cfgsched diff`` prints (text or JSON). ``unchecked`` names the
    boundaries a sampled diff did not check (then the result is not EQUAL)."""

    expected: Side
    got: Side
    coverage: str
    coverage_note: str
    steps_compared: int
    first_step: int
    last_step: int
    first_batch: int
    last_batch: int
    tolerance: Tolerance
    max_abs_error: float
    max_rel_error: float
    max_ulp_error: float
    max_error_step: int | None
    first_difference: Row | None
    spans: tuple[Span, ...]
    spans_total: int
    rows: tuple[Row, ...]
    boundaries_cut: int
    notes: tuple[str, ...] = ()
    unchecked: str = ""

    @property
    def equal(self) -> bool:
        """True when every compared step is within the tolerance and nothing was skipped."""
        return self.first_difference is None and not self.unchecked

    @property
    def exit_code(self) -> int:
        """0 equal within the tolerance, 1 different (or not all checked)."""
        return 0 if self.equal else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema :data:`SCHEMA`); non-finite floats are "nan"/"inf"/"-inf"."""
        fd = self.first_difference
        return {
            "schema": SCHEMA,
            "equal": self.equal,
            "exit_code": self.exit_code,
            "expected": self.expected.to_dict(),
            "got": self.got.to_dict(),
            "coverage": self.coverage,
            "coverage_note": self.coverage_note,
            "unchecked": self.unchecked or None,
            "steps_compared": self.steps_compared,
            "steps": [self.first_step, self.last_step],
            "batches": [self.first_batch, self.last_batch],
            "tolerance": {"kind": self.tolerance.kind, "value": self.tolerance.value},
            "max_abs_error": json_float(self.max_abs_error),
            "max_rel_error": json_float(self.max_rel_error),
            "max_ulp_error": json_float(self.max_ulp_error),
            "max_error_step": self.max_error_step,
            "first_difference": None if fd is None else _row_dict(fd),
            "differing_ranges": [asdict(s) for s in self.spans],
            "differing_ranges_total": self.spans_total,
            "boundaries": [_row_dict(r) for r in self.rows],
            "boundaries_not_listed": self.boundaries_cut,
            "notes": list(self.notes),
        }

    def format_text(self) -> str:
        """The human-readable report (control characters of names escaped)."""
        e, g = self.expected, self.got
        what = "A = {}  vs  B = {}" if e.kind == "A" else "{1}  vs  {0}"
        where = f"i = {self.first_step}..{self.last_step}, b = {self.first_batch}.."
        lines = [
            "cfgsched diff: " + what.format(e.label, g.label),
            f"compared {self.steps_compared:,} steps exhaustively ({where}"
            f"{self.last_batch})"
            if self.coverage == "exhaustive"
            else f"compared {self.steps_compared:,} sampled steps between i = "
            f"{self.first_step} (b = {self.first_batch}) and i = {self.last_step} "
            f"(b = {self.last_batch}) ({self.coverage_note})",
            *(f"note: {n}" for n in self.notes),
            f"max abs error {_g(self.max_abs_error)}, max rel error "
            f"{_g(self.max_rel_error)}, max ulp error {_g(self.max_ulp_error)}"
            + (
                ""
                if self.max_error_step is None
                else f" (at step i = {self.max_error_step})"
            ),
            self._result(),
            *self._span_lines(),
            *self._row_lines(),
        ]
        return "\n".join(escape(line) for line in lines)

    def _result(self) -> str:
        fd, e, g = self.first_difference, self.expected, self.got
        if fd is not None:
            return (
                f"result: DIFFERENT beyond {self.tolerance.text}; first at step i = "
                f"{fd.step} (b = {fd.batch}): {e.kind} {_g(fd.expected)}, {g.kind} "
                f"{_g(fd.got)}"
            )
        if self.unchecked:
            return f"result: NOT ALL CHECKED: {self.unchecked}"
        return f"result: EQUAL within {self.tolerance.text}"

    def _span_lines(self) -> list[str]:
        if not self.spans:
            return []
        lines = ["differing ranges (optimizer steps i, darknet batches b):"]
        for s in self.spans:
            rng = f"i = {s.first_step}" + (
                f"..{s.last_step}" if s.last_step != s.first_step else ""
            )
            rng += f", b = {s.first_batch}" + (
                f"..{s.last_batch}" if s.last_batch != s.first_batch else ""
            )
            lines.append(f"  {rng}  ({s.count:,} step{'s' if s.count != 1 else ''})")
        if self.spans_total > len(self.spans):
            lines.append(f"  ... {self.spans_total - len(self.spans)} more ranges")
        return lines

    def _row_lines(self) -> list[str]:
        if not self.rows:
            return []
        e, g = self.expected, self.got
        w = max(len(r.label) for r in self.rows)
        lines = [
            "",
            f"{'boundary':<{w}}  {'step i':>9}  {'batch b':>9}  {e.kind:>15}  "
            f"{g.kind:>15}  {'ulp':>6}",
        ]
        for r in self.rows:
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


# ----------------------------------------------------------------------------- accumulation


@dataclass
class _Acc:
    tol: Tolerance
    rows_at: dict[int, str]
    train_steps: int
    b_of: Callable[[I64], I64]
    count: int = 0
    first_step: int | None = None
    last_step: int = -1
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    max_step: int | None = None
    first_diff: Row | None = None
    spans: list[Span] = field(default_factory=list)
    spans_total: int = 0
    open_span: list[int] | None = None
    rows: dict[int, Row] = field(default_factory=dict)

    def add(self, i: I64, b: I64, expected: F32 | F64, got: F64) -> None:
        """Fold steps ``i`` (darknet batches ``b``) into the report."""
        e = expected.astype(np.float64)
        ab, rel, ulp = errors(e, got)
        within = (ulp if self.tol.kind == "ulp" else rel) <= self.tol.value
        for j in np.flatnonzero(np.isin(i, list(self.rows_at))).tolist():
            k = int(i[j])
            self.rows[k] = Row(
                self.rows_at[k], k, int(b[j]), float(e[j]), float(got[j]),
                float(ulp[j]), bool(within[j]), k < self.train_steps,
            )  # fmt: skip
        keep = np.flatnonzero(i < self.train_steps)
        if keep.size == 0:
            return
        i, b, within, e, got = i[keep], b[keep], within[keep], e[keep], got[keep]
        ab, rel, ulp = ab[keep], rel[keep], ulp[keep]
        self.count += int(i.size)
        self.first_step = int(i[0]) if self.first_step is None else self.first_step
        self.last_step = int(i[-1])
        k = int(np.argmax(ulp))
        if ulp[k] > self.max_ulp or (self.max_step is None and ulp[k] > 0):
            self.max_ulp, self.max_step = float(ulp[k]), int(i[k])
        self.max_abs = max(self.max_abs, float(ab.max()))
        self.max_rel = max(self.max_rel, float(rel.max()))
        bad = np.flatnonzero(~within)
        if bad.size and self.first_diff is None:
            k = int(bad[0])
            self.first_diff = Row(
                "first difference", int(i[k]), int(b[k]), float(e[k]), float(got[k]),
                float(ulp[k]), False, True,
            )  # fmt: skip
        self._add_runs(i[bad], int(i[-1]))

    def _add_runs(self, steps: I64, last: int) -> None:
        """Fold the differing ``steps`` of a chunk ending at step ``last`` into spans."""
        if not steps.size:
            self._close()
            return
        cuts = np.flatnonzero(np.diff(steps) != 1) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [steps.size])) - 1
        for s, t in zip(starts.tolist(), ends.tolist(), strict=True):
            lo, hi = int(steps[s]), int(steps[t])
            if self.open_span is not None and lo == self.open_span[1] + 1:
                self.open_span[1:] = [hi, self.open_span[2] + t - s + 1]
            else:
                self._close()
                self.open_span = [lo, hi, t - s + 1]
        if int(steps[-1]) != last:
            self._close()

    def _close(self) -> None:
        if self.open_span is None:
            return
        lo, hi, n = self.open_span
        self.spans_total += 1
        if len(self.spans) < MAX_RANGES:
            bl = self.b_of(np.array([lo, hi], dtype=np.int64))
            self.spans.append(Span(lo, hi, int(bl[0]), int(bl[1]), n))
        self.open_span = None

    def report(
        self, sides: tuple[Side, Side], plan: tuple[str, str], cut: int, notes: Sequence[str],
        unchecked: str = "",
    ) -> DiffReport:  # fmt: skip
        """The report of everything added."""
        self._close()
        first = self.first_step if self.first_step is not None else 0
        last = max(self.last_step, first)
        fb = self.b_of(np.array([first, last], dtype=np.int64))
        return DiffReport(
            *sides, *plan, self.count, first, last, int(fb[0]), int(fb[1]), self.tol,
            self.max_abs, self.max_rel, self.max_ulp, self.max_step, self.first_diff,
            tuple(self.spans), self.spans_total, tuple(self.rows[k] for k in sorted(self.rows)),
            cut, tuple(n for n in notes if n), unchecked,
        )  # fmt: skip


def _row_steps(
    marks: Sequence[Boundary], step_of: Callable[[int], int], lo: int, hi: int
) -> dict[int, str]:
    """Step -> label for the steps around each boundary within ``lo .. hi``: the first
    step at or past the boundary's batch, and the steps before and after it."""
    out: dict[int, str] = {}
    for m in marks:
        i0 = step_of(m.batch)
        for d, suffix in ((-1, " -1"), (0, ""), (1, " +1")):
            if lo <= i0 + d <= hi:
                out.setdefault(i0 + d, m.label + suffix)
    return out


# ----------------------------------------------------------------------------- modules


@dataclass(frozen=True)
class LoadedModule:
    """A module under test: its record, ``build_scheduler`` and the ``LEARNING_RATE``
    its users give the optimizer (None when it has none)."""

    path: str
    record: ModuleRecord
    build: Callable[..., Any]
    learning_rate: float | None


def load_module(path: str) -> LoadedModule:
    """Read the module file at ``path`` and its record, then run exactly the bytes read
    (compiled here, never a cached byte-code file) as a fresh module: **this runs the
    module's code**. Failures (also ``sys.exit``) raise a one-line :class:`CfgError`."""
    data = module_bytes(path)
    record = read_record(path, data)
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
    if not callable(build):
        raise CfgError(
            path, None, None, "defines no build_scheduler(optimizer, last_epoch=-1)"
        )
    try:
        inspect.signature(build).bind(None, last_epoch=-1)
    except (TypeError, ValueError) as exc:
        raise CfgError(
            path, None, None, f"build_scheduler(optimizer, last_epoch=-1): {exc}"
        ) from None
    lr: Any = getattr(module, "LEARNING_RATE", None)
    ok = isinstance(lr, (int, float)) and not isinstance(lr, bool)
    return LoadedModule(path, record, build, float(lr) if ok else None)


def _module_factory(m: LoadedModule) -> Factory:
    def make_module(optimizer: Any, last_epoch: int | None) -> Any:
        if last_epoch is None:
            sched = m.build(optimizer)
        else:
            sched = m.build(optimizer, last_epoch=last_epoch)
        if not callable(getattr(sched, "step", None)):
            raise TypeError(
                f"build_scheduler returned {type(sched).__name__}, not a scheduler "
                "with step()"
            )
        return sched

    return make_module


def _native_factory(schedule: NetSchedule, o: Options, run: Run) -> Factory:
    from cfgsched.translate.native import scheduler_for

    who = f"{schedule.source}: --style native"
    if o.flush is not None and o.flush != default_flush(schedule.fork):
        raise CfgError(
            who, None, None, "follows the fork's default release build: "
            "no --flush-subnormals/--keep-subnormals",
        )  # fmt: skip
    horizon = max(run.batch(run.stop - 1), 1) if run.stop > 0 else 1

    def make_native(optimizer: Any, last_epoch: int | None) -> Any:
        return scheduler_for(
            optimizer, run, horizon=horizon,
            last_epoch=run.start - 1 if last_epoch is None else last_epoch,
        )  # fmt: skip

    with user_code(who, "cfgsched.native_scheduler"):  # NotExactError passes
        make_native(new_optimizer(run.cfg_lr), -1)
    return make_native


# ----------------------------------------------------------------------------- entry points


def describe(options: Options) -> str:
    """The options that differ from the defaults, e.g. ``4 GPUs, trace`` ("" for none)."""
    o = options
    parts = [f"{o.ngpus} GPUs"] if o.ngpus > 1 else []
    parts += ["multigpu trace"] if o.multigpu == "trace" else []
    parts += ["scratch"] if o.scratch else []
    if o.images_per_step is not None:
        parts.append(f"{o.images_per_step} images per step")
    parts += ["ideal"] if o.ideal else []
    parts += ["double"] if not o.exact else []
    if o.flush is not None:
        parts.append("flush subnormals" if o.flush else "keep subnormals")
    if o.resume_iteration is not None:
        parts.append(f"resumed at iteration {o.resume_iteration}")
    parts += [f"seed {o.seed}"] if o.seed else []
    return ", ".join(parts)


def _run(schedule: NetSchedule, options: Options) -> Run:
    """:func:`~cfgsched.run.translate`; a schedule that cannot be translated is a
    CfgError."""
    try:
        return translate(schedule, options)
    except CfgError:
        raise
    except ValueError as exc:
        raise CfgError(
            schedule.source, None, None, f"cannot translate: {exc}"
        ) from None


def _random_note(*schedules: NetSchedule) -> list[str]:
    if all(s.policy is not Policy.RANDOM for s in schedules):
        return []
    return [
        "policy=random: darknet draws rand() at every batch, which no one can replay; "
        "the values here are cfgsched's seeded draws (Options.seed), not darknet's"
    ]


def _translation_notes(run: Run, o: Options) -> list[str]:
    """What the translation does, in words (empty for a plain one-GPU run)."""
    notes = [run.note, *_random_note(run.schedule)]
    if run.mapping != "b = i + 1":
        notes.append(f"step i is darknet batch {run.mapping}")
    if run.params.lr != run.cfg_lr:
        notes.append(f"base rate learning_rate × {run.ngpus} (-gpus {run.ngpus})")
    if o.ideal:
        notes.append(
            f"AlexeyAB's advice for {o.ngpus} GPUs: learning_rate / N, burn_in × N"
        )
    if run.start:
        notes.append(f"resumed: the run starts at step i = {run.start}")
    return notes


def _options_for(
    schedule: NetSchedule, options: Options | None, m: LoadedModule | None
) -> Options:
    """The translation to check: ``options``, or the module's record (they must agree)."""
    if m is None:
        return Options() if options is None else options
    rec = m.record
    bad = ""
    if rec.fork != schedule.fork:
        bad = f"written for fork {rec.fork}, the cfg is read as {schedule.fork}"
    elif options is not None and options != rec.options:
        diffs = "; ".join(rec.options.differences(options))
        bad = f"options differ from the record (record vs given): {diffs}"
    if bad:
        raise CfgError(m.path, None, "CFGSCHED", bad)
    return rec.options


def _marks(run: Run) -> tuple[list[Boundary], int, str]:
    """The run's boundaries (at most :data:`MAX_CHECKED_BOUNDARIES`), how many more the
    schedule reports, and which were not checked ("" when none)."""
    s = run.schedule
    lo_b = run.batch(run.start) if run.start > 0 else 1
    hi_b = max(run.batch(run.stop), s.max_batches, 1)
    marks, cut = boundaries(s, lo_b, hi_b, limit=MAX_CHECKED_BOUNDARIES + 1)
    if len(marks) <= MAX_CHECKED_BOUNDARIES and not cut:
        return marks, cut, ""
    marks = marks[:MAX_CHECKED_BOUNDARIES]
    return (
        marks,
        cut + 1,
        (
            f"{s.source} has more than {MAX_CHECKED_BOUNDARIES:,} boundaries: those after "
            f"b = {marks[-1].batch} did not get their ±{SAMPLE_HALO}-step windows "
            "(--exhaustive checks every step)"
        ),
    )


def _plan(
    run: Run, marks: Sequence[Boundary], exhaustive: bool | None
) -> tuple[list[tuple[int, int]], str, str]:
    """The step windows to compare, the coverage and its note."""
    lo, n = run.start, run.stop
    count = n - lo
    if exhaustive is None:
        exhaustive = count <= EXHAUSTIVE_LIMIT
    if exhaustive and count > MAX_EXHAUSTIVE_STEPS:
        s = run.schedule
        raise CfgError(
            s.source, s.line_of("max_batches"), "max_batches",
            f"{count} steps: more than the {MAX_EXHAUSTIVE_STEPS} an exhaustive diff "
            "allows; use --sampled",
        )  # fmt: skip
    if exhaustive:  # one step past the run for the boundary table
        return [(lo, n + 1)], "exhaustive", "every step"
    rel = [run.first_step(m.batch) - lo for m in marks]
    windows = [(lo + s, lo + t) for s, t in sample_windows(count + 1, rel)]
    why = (
        f"{count:,} steps is more than {EXHAUSTIVE_LIMIT:,}"
        if count > EXHAUSTIVE_LIMIT
        else "--sampled"
    )
    note = (
        f"{why}: the first {SAMPLE_PREFIX:,} steps, ±{SAMPLE_HALO} steps around each of "
        f"{len(marks):,} boundaries and {SAMPLE_WINDOWS} windows of {SAMPLE_WINDOW} "
        "steps; --exhaustive checks all"
    )
    return windows, "sampled", note


def _check_resume(run: Run, o: Options) -> None:
    """A run resumed at or past its end has nothing to compare: a one-line error."""
    if run.start < run.stop:
        return
    s = run.schedule
    raise CfgError(
        s.source, s.line_of("max_batches"), "max_batches",
        f"the resume point (darknet iteration {o.resume_iteration:,}, optimizer step "
        f"i = {run.start:,}) is past the end of the run ({run.stop:,} steps, "
        f"max_batches {s.max_batches}): nothing to compare",
    )  # fmt: skip


def diff_torch(
    schedule: NetSchedule,
    options: Options | None = None,
    *,
    style: str = "class",
    module: str | LoadedModule | None = None,
    tolerance: Tolerance | str | None = None,
    exhaustive: bool | None = None,
    progress: Progress | None = None,
) -> DiffReport:
    """Step the torch scheduler and compare every step (or a sample) with the C formula.

    ``style`` is "class" (what ``DarknetLR`` runs) or "native" (``native_scheduler``); a
    ``module`` (imported: its code runs) is tested instead, on its ``CFGSCHED`` record's
    translation (``options``, if given, must equal it), its first window built by
    ``build_scheduler(optimizer)`` as users call it. ``exhaustive=None``: every step up to
    :data:`EXHAUSTIVE_LIMIT` steps, else every boundary ±:data:`SAMPLE_HALO` steps and a
    dense sample (later windows start a fresh scheduler at ``last_epoch``).
    ``progress(n, total)`` is called after each chunk of ``n`` steps.
    """
    m = load_module(module) if isinstance(module, str) else module
    o = _options_for(schedule, options, m)
    tol = _tolerance(tolerance, o)
    run = _run(schedule, o)
    _check_resume(run, o)
    factory, lr, who = _under_test(schedule, o, style, m, run)
    marks, cut, unchecked = _marks(run)
    windows, coverage, note = _plan(run, marks, exhaustive)
    rows_at = _row_steps(marks[:MAX_BOUNDARIES], run.first_step, run.start, run.stop)
    acc = _Acc(tol, rows_at, run.stop, run.batches)
    todo = sum(t - s for s, t in windows)
    for k, (s, t) in enumerate(windows):
        i = s
        for got in torch_lrs(
            factory, lr, s, t - s, who=who, default=not k and m is not None
        ):
            steps = np.arange(i, i + got.size, dtype=np.int64)
            b = run.batches(steps)
            acc.add(steps, b, run.batch_lrs(b), got)
            i += got.size
            if progress is not None:
                progress(int(got.size), todo)
    notes = _translation_notes(run, o) + (_record_notes(m, schedule, run) if m else [])
    cut += max(len(marks) - MAX_BOUNDARIES, 0)
    unchecked = "" if coverage == "exhaustive" else unchecked
    return acc.report(
        _torch_sides(schedule, o, style, m), (coverage, note), cut, notes, unchecked
    )


def _under_test(
    schedule: NetSchedule,
    o: Options,
    style: str,
    m: LoadedModule | None,
    run: Run,
) -> tuple[Factory, float, str]:
    """The scheduler under test, the LR its optimizer starts with, and its name."""
    if m is not None:
        lr = run.cfg_lr if m.learning_rate is None else m.learning_rate
        return _module_factory(m), lr, m.path
    who = f"{schedule.source}: --style {style}"
    if style == "class":
        return class_factory(run), run.cfg_lr, who
    if style == "native":
        return _native_factory(schedule, o, run), run.cfg_lr, who
    raise ValueError(f"unknown style {style!r} (class or native)")


def _tolerance(tolerance: Tolerance | str | None, o: Options) -> Tolerance:
    if tolerance is None:
        return default_tolerance(o)
    return Tolerance.parse(tolerance) if isinstance(tolerance, str) else tolerance


def _torch_sides(
    schedule: NetSchedule, o: Options, style: str, m: LoadedModule | None
) -> tuple[Side, Side]:
    kind = "module" if m is not None else style
    name = {
        "class": "cfgsched.DarknetLR",
        "native": "cfgsched.native_scheduler",
        "module": f"{m.path if m else ''}:build_scheduler",
    }[kind]
    how = f"{Path(schedule.source).name}, {schedule.fork}"
    how += f", {describe(o)}" if describe(o) else ""
    if schedule.policy is Policy.RANDOM:
        label, what = (
            f"cfgsched's seeded draws, not darknet's rand() ({how})",
            "seeded draws",
        )
    else:
        label, what = f"darknet C formula ({how})", "darknet"
    expected = Side(label, what, schedule.fork, schedule.source, o)
    return expected, Side(name, kind, schedule.fork, schedule.source, o)


def _record_notes(m: LoadedModule, schedule: NetSchedule, run: Run) -> list[str]:
    r = m.record
    how = describe(r.options) or "defaults"
    notes = [
        f"module record: cfgsched {r.version or '?'}, cfg {r.cfg or '?'}, "
        f"{r.format or '?'} / {r.style or '?'}, options: {how}",
        f"steps from i = {run.start} on are stepped from build_scheduler(optimizer) as "
        "written (its default start must be the record's); other windows from "
        "build_scheduler(optimizer, last_epoch=i - 1)",
    ]
    if r.cfg and Path(r.cfg).name != Path(schedule.source).name:
        notes.append(
            f"the module was written from {Path(r.cfg).name}; compared with "
            f"{Path(schedule.source).name}"
        )
    return notes


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

    Covers b = 1 .. the longer run (+1 for the table). Each side's ``options`` set its
    base rate (``-gpus``, ``ideal``), arithmetic and flushing; options that map optimizer
    steps (images per step, trace, resume) raise ValueError. Default tolerance:
    :func:`default_tolerance` when both sides use the same arithmetic, else ``1e-6``.
    """
    oa, ob = options if options is not None else (Options(), Options())
    for o in (oa, ob):
        if o.images_per_step is not None or o.multigpu == "trace" or o.resume_iteration:
            raise ValueError(
                "two schedules are compared batch by batch: images per step, "
                "multigpu='trace' and resuming apply to a torch run (give one cfg)"
            )
    ta, tb = _run(a, oa), _run(b, ob)
    if tolerance is None:
        tolerance = default_tolerance(oa) if oa.exact == ob.exact else "1e-6"
    tol = _tolerance(tolerance, oa)
    ra, rb = _run(a, Options()), _run(b, Options())  # the runs' lengths in batches
    n = max(ra.stop, rb.stop)
    rows_at, cut = _pair_rows(ta.schedule, tb.schedule, n)
    if exhaustive is None:
        exhaustive = n <= MAX_EXHAUSTIVE_BATCHES
    windows = [(0, n + 1)] if exhaustive else sample_windows(n + 1, sorted(rows_at))
    acc = _Acc(tol, rows_at, n, lambda i: np.asarray(i, dtype=np.int64) + 1)
    for s, t in _chunks(windows, ORACLE_CHUNK):
        i = np.arange(s, t, dtype=np.int64)
        ea = ta.batch_lrs(i + 1)
        eb = tb.batch_lrs(i + 1)
        acc.add(i, i + 1, ea, np.asarray(eb, dtype=np.float64))
    sides = (
        Side(labels[0], "A", a.fork, a.source, oa),
        Side(labels[1], "B", b.fork, b.source, ob),
    )
    notes = [ra.note, rb.note if rb.note != ra.note else "", *_random_note(a, b)]
    if a.max_batches != b.max_batches:
        notes.append(
            f"max_batches differ ({a.max_batches} vs {b.max_batches}): compared up to b = {n}"
        )
    plan = ("exhaustive", "every batch") if exhaustive else (
        "sampled", "boundaries and a dense sample"
    )  # fmt: skip
    return acc.report(sides, plan, cut, notes)


def _chunks(windows: Sequence[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    for s, t in windows:
        for a in range(s, t, size):
            yield a, min(a + size, t)


def _pair_rows(a: NetSchedule, b: NetSchedule, n: int) -> tuple[dict[int, str], int]:
    """Rows at both schedules' boundaries (step i = b - 1), labelled A:/B: when not
    shared."""
    ma, cut_a = boundaries(a, 1, n)
    mb, cut_b = boundaries(b, 1, n)
    marks = sorted(
        {Boundary(m.batch, m.kind, m.label if m in ma and m in mb else f"{tag}: {m.label}")
         for tag, ms in (("A", ma), ("B", mb)) for m in ms},
        key=lambda m: (m.batch, m.label),
    )  # fmt: skip
    return _row_steps(marks, lambda x: max(x - 1, 0), 0, n), cut_a + cut_b
