"""Compare a real torch scheduler (or a second schedule) with darknet's C formula.

Both sides follow one translation (:class:`cfgsched.options.Options`): optimizer step
``i`` (0-based) is darknet batch ``b = translation.batch(i)`` with the translation's base
rate, and the expected value is :meth:`cfgsched.run.Run.lrs`. The torch side is
stepped for real: ``scheduler.step()`` and reading the optimizer's LR are the only per-step
work. Values are compared in chunks, so memory stays bounded for any number of steps.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.machinery
import importlib.util
import math
import os
import re
import stat
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import Boundary, boundaries
from cfgsched.codegen.python import MODULE_SCHEMA
from cfgsched.errors import CfgError, NotExactError
from cfgsched.options import Options, default_flush
from cfgsched.oracle import params_lr
from cfgsched.run import Run, translate
from cfgsched.schedule import FORKS, NetSchedule
from cfgsched.tools.series import (
    CHUNK,
    EXHAUSTIVE_LIMIT,
    SAMPLE_HALO,
    SAMPLE_PREFIX,
    SAMPLE_WINDOW,
    SAMPLE_WINDOWS,
    errors,
    new_optimizer,
    sample_windows,
)
from cfgsched.tools.text import json_float

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SCHEMA = "cfgsched-diff/1"
#: Default tolerance when the translation is darknet's float32 arithmetic.
EXACT_TOLERANCE = "0ulp"
#: Default tolerance for a double translation (``exact=False``): both sides evaluate the
#: same formulas in double, so only the order of operations may differ (the relative
#: error ``native_scheduler`` allows for ``exact=False``).
DOUBLE_TOLERANCE = "1e-9"
#: Above this many steps the default is boundaries plus a dense sample, not every step.
EXHAUSTIVE_DEFAULT_LIMIT = EXHAUSTIVE_LIMIT
#: ``--exhaustive`` refuses more steps than this (about 4 minutes of scheduler stepping).
MAX_EXHAUSTIVE_STEPS = 50_000_000
#: Oracle-vs-oracle comparisons are exhaustive up to this many batches.
MAX_EXHAUSTIVE_BATCHES = 200_000_000
#: Batches per chunk when both sides are the vectorized C formula.
ORACLE_CHUNK = 1 << 20
#: Differing ranges listed at most.
MAX_RANGES = 20
#: Largest module file ``--module`` reads (bytes).
MAX_MODULE_BYTES = 16 * 1024 * 1024

Factory = Callable[[Any, int], Any]
Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------------- schedules


def training_steps(
    schedule: NetSchedule, options: Options | None = None
) -> tuple[int, str]:
    """Optimizer steps in the run from step 0 (see :mod:`cfgsched.run`) and a note
    when ``max_batches`` is 0 and a span stands in for it."""
    r = _run(schedule, Options() if options is None else options)
    return r.stop, r.note


# ----------------------------------------------------------------------------- tolerance


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


# ----------------------------------------------------------------------------- errors


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Side:
    """One side of a comparison: ``kind`` is darknet (the C formula), class, native, module,
    or A/B (two schedules); ``options`` is the translation it follows."""

    label: str
    kind: str
    fork: str
    source: str
    options: Options = field(default_factory=Options)

    @property
    def gpus(self) -> int:
        """The ``-gpus`` count of the translation."""
        return self.options.ngpus


@dataclass(frozen=True)
class Row:
    """A compared step at a boundary (``in_training`` False past max_batches)."""

    label: str
    step: int
    batch: int
    expected: float
    got: float
    ulp: float
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


@dataclass(frozen=True)
class DiffReport:
    """Everything ``cfgsched diff`` prints (text or JSON)."""

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

    @property
    def equal(self) -> bool:
        """True when every compared step is within the tolerance."""
        return self.first_difference is None

    @property
    def exit_code(self) -> int:
        """0 equal within the tolerance, 1 different."""
        return 0 if self.equal else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema :data:`SCHEMA`); non-finite floats are "nan"/"inf"/"-inf"."""
        return {
            "schema": SCHEMA,
            "equal": self.equal,
            "exit_code": self.exit_code,
            "expected": _side_dict(self.expected),
            "got": _side_dict(self.got),
            "coverage": self.coverage,
            "coverage_note": self.coverage_note,
            "steps_compared": self.steps_compared,
            "steps": [self.first_step, self.last_step],
            "batches": [self.first_batch, self.last_batch],
            "tolerance": {"kind": self.tolerance.kind, "value": self.tolerance.value},
            "max_abs_error": json_float(self.max_abs_error),
            "max_rel_error": json_float(self.max_rel_error),
            "max_ulp_error": json_float(self.max_ulp_error),
            "max_error_step": self.max_error_step,
            "first_difference": None
            if self.first_difference is None
            else _row_dict(self.first_difference),
            "differing_ranges": [asdict(s) for s in self.spans],
            "differing_ranges_total": self.spans_total,
            "boundaries": [_row_dict(r) for r in self.rows],
            "boundaries_not_listed": self.boundaries_cut,
            "notes": list(self.notes),
        }

    def format_text(self) -> str:
        """The human-readable report."""
        e, g = self.expected, self.got
        if e.kind == "A":
            lines = [f"cfgsched diff: A = {e.label}  vs  B = {g.label}"]
        else:
            lines = [f"cfgsched diff: {g.label}  vs  {e.label}"]
        if self.coverage == "exhaustive":
            lines.append(
                f"compared {self.steps_compared:,} steps exhaustively "
                f"(i = {self.first_step}..{self.last_step}, b = {self.first_batch}.."
                f"{self.last_batch})"
            )
        else:
            lines.append(
                f"compared {self.steps_compared:,} sampled steps between i = "
                f"{self.first_step} (b = {self.first_batch}) and i = {self.last_step} "
                f"(b = {self.last_batch}) ({self.coverage_note})"
            )
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(
            f"max abs error {_g(self.max_abs_error)}, max rel error {_g(self.max_rel_error)}, "
            f"max ulp error {_g(self.max_ulp_error)}"
            + (
                ""
                if self.max_error_step is None
                else f" (at step i = {self.max_error_step})"
            )
        )
        fd = self.first_difference
        if fd is None:
            lines.append(f"result: EQUAL within {self.tolerance.text}")
        else:
            lines.append(
                f"result: DIFFERENT beyond {self.tolerance.text}; first at step i = {fd.step} "
                f"(b = {fd.batch}): {e.kind} {_g(fd.expected)}, {g.kind} {_g(fd.got)}"
            )
        lines.extend(self._span_lines())
        lines.extend(self._row_lines())
        return "\n".join(lines)

    def _span_lines(self) -> list[str]:
        if not self.spans:
            return []
        lines = ["differing ranges (optimizer steps i, darknet batches b):"]
        for s in self.spans:
            one = s.last_step == s.first_step
            rng = f"i = {s.first_step}" + ("" if one else f"..{s.last_step}")
            rng += f", b = {s.first_batch}" + (
                f"..{s.last_batch}" if s.last_batch != s.first_batch else ""
            )
            plural = "s" if s.count != 1 else ""
            lines.append(f"  {rng}  ({s.count:,} step{plural})")
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
            mark = "" if r.within else "  <-- differs"
            if not r.in_training:
                mark += "  (after training)"
            lines.append(
                f"{r.label:<{w}}  {r.step:>9}  {r.batch:>9}  {_g(r.expected):>15}  "
                f"{_g(r.got):>15}  {r.ulp:>6.3g}{mark}"
            )
        if self.boundaries_cut:
            lines.append(f"({self.boundaries_cut} more boundaries not listed)")
        return lines


def _g(x: float) -> str:
    return f"{x:.9g}"


def _side_dict(s: Side) -> dict[str, Any]:
    return {
        "label": s.label,
        "kind": s.kind,
        "fork": s.fork,
        "source": s.source,
        "gpus": s.gpus,
        "options": s.options.to_record(),
    }


def _row_dict(r: Row) -> dict[str, Any]:
    return {
        "label": r.label,
        "step": r.step,
        "batch": r.batch,
        "expected": json_float(r.expected),
        "got": json_float(r.got),
        "ulp_error": json_float(r.ulp),
        "within": r.within,
        "in_training": r.in_training,
    }


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
        if i.size == 0:
            return
        e = expected.astype(np.float64)
        ab, rel, ulp = errors(e, got)
        within = (
            (ulp <= self.tol.value)
            if self.tol.kind == "ulp"
            else (rel <= self.tol.value)
        )
        self._record_rows(i, b, e, got, ulp, within)
        keep = i < self.train_steps
        if not keep.all():
            i, b, within = i[keep], b[keep], within[keep]
            e, got, ab, rel, ulp = e[keep], got[keep], ab[keep], rel[keep], ulp[keep]
        if i.size == 0:
            return
        self.count += int(i.size)
        if self.first_step is None:
            self.first_step = int(i[0])
        self.last_step = int(i[-1])
        k = int(np.argmax(ulp))
        if ulp[k] > self.max_ulp or (self.max_step is None and ulp[k] > 0):
            self.max_ulp, self.max_step = float(ulp[k]), int(i[k])
        self.max_abs = max(self.max_abs, float(ab.max()))
        self.max_rel = max(self.max_rel, float(rel.max()))
        bad = np.flatnonzero(~within)
        if bad.size == 0:
            self._close()
            return
        if self.first_diff is None:
            k = int(bad[0])
            self.first_diff = Row(
                "first difference",
                int(i[k]),
                int(b[k]),
                float(e[k]),
                float(got[k]),
                float(ulp[k]),
                False,
                True,
            )
        self._add_runs(i[bad], int(i[-1]))

    def _record_rows(
        self, i: I64, b: I64, e: F64, got: F64, ulp: F64, within: npt.NDArray[np.bool_]
    ) -> None:
        """Keep the table rows among steps ``i``."""
        if not self.rows_at:
            return
        keys = np.fromiter(self.rows_at, dtype=np.int64)
        for j in np.flatnonzero(np.isin(i, keys)).tolist():
            step = int(i[j])
            self.rows[step] = Row(
                self.rows_at[step],
                step,
                int(b[j]),
                float(e[j]),
                float(got[j]),
                float(ulp[j]),
                bool(within[j]),
                step < self.train_steps,
            )

    def _add_runs(self, steps: I64, last: int) -> None:
        """Fold the differing ``steps`` of a chunk ending at step ``last`` into spans."""
        cuts = np.flatnonzero(np.diff(steps) != 1) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [steps.size])) - 1
        for s, t in zip(starts.tolist(), ends.tolist(), strict=True):
            lo, hi = int(steps[s]), int(steps[t])
            if self.open_span is not None and lo == self.open_span[1] + 1:
                self.open_span[1] = hi
                self.open_span[2] += t - s + 1
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
        self,
        expected: Side,
        got: Side,
        coverage: str,
        note: str,
        cut: int,
        notes: Sequence[str],
    ) -> DiffReport:
        self._close()
        first = self.first_step if self.first_step is not None else 0
        fb = self.b_of(np.array([first, max(self.last_step, first)], dtype=np.int64))
        return DiffReport(
            expected=expected,
            got=got,
            coverage=coverage,
            coverage_note=note,
            steps_compared=self.count,
            first_step=first,
            last_step=max(self.last_step, first),
            first_batch=int(fb[0]),
            last_batch=int(fb[1]),
            tolerance=self.tol,
            max_abs_error=self.max_abs,
            max_rel_error=self.max_rel,
            max_ulp_error=self.max_ulp,
            max_error_step=self.max_step,
            first_difference=self.first_diff,
            spans=tuple(self.spans),
            spans_total=self.spans_total,
            rows=tuple(self.rows[k] for k in sorted(self.rows)),
            boundaries_cut=cut,
            notes=tuple(n for n in notes if n),
        )


def _row_steps(
    marks: Sequence[Boundary], step_of: Callable[[int], int], lo: int, hi: int
) -> dict[int, str]:
    """Step -> label for the steps around each boundary within ``lo .. hi``: the first
    step at or past the boundary's batch, and the steps before and after it."""
    out: dict[int, str] = {}
    for m in marks:
        i0 = step_of(m.batch)
        for d, suffix in ((-1, " -1"), (0, ""), (1, " +1")):
            i = i0 + d
            if lo <= i <= hi:
                out.setdefault(i, m.label + suffix)
    return out


def _chunks(windows: Sequence[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    for s, t in windows:
        for a in range(s, t, size):
            yield a, min(a + size, t)


# ----------------------------------------------------------------------------- modules


@dataclass(frozen=True)
class ModuleRecord:
    """What a generated module records about itself: its ``CFGSCHED`` constant
    (schema :data:`MODULE_SCHEMA`): fork, translation options and provenance."""

    fork: str
    options: Options
    version: str = ""
    cfg: str = ""
    format: str = ""
    style: str = ""


@dataclass(frozen=True)
class LoadedModule:
    """An imported module under test: its record, ``build_scheduler`` and the
    ``LEARNING_RATE`` its users give the optimizer (None when it has none)."""

    path: str
    record: ModuleRecord
    build: Callable[..., Any]
    learning_rate: float | None


def _module_bytes(path: str) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_MODULE_BYTES` (never a FIFO)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CfgError(path, None, None, exc.strerror or "cannot read") from None
    if not stat.S_ISREG(st.st_mode):
        raise CfgError(path, None, None, "not a regular file")
    if st.st_size > MAX_MODULE_BYTES:
        raise CfgError(path, None, None, f"larger than {MAX_MODULE_BYTES} bytes")
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_MODULE_BYTES + 1)
    except OSError as exc:
        raise CfgError(path, None, None, exc.strerror or "cannot read") from None


def _record_node(tree: ast.Module) -> ast.Assign | ast.AnnAssign | None:
    """The last module-level assignment to ``CFGSCHED``."""
    found: ast.Assign | ast.AnnAssign | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "CFGSCHED" for t in node.targets
        ):
            found = node
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "CFGSCHED"
            and node.value is not None
        ):
            found = node
    return found


def read_module_record(path: str) -> ModuleRecord:
    """The ``CFGSCHED`` record of the module file at ``path``, read without running it.

    The record is a literal dict assigned at module level. No record, another schema, an
    unknown fork or invalid options raise a :class:`CfgError` naming the file.
    """
    data = _module_bytes(path)
    try:
        tree = ast.parse(data, filename=path)
    except SyntaxError as exc:
        raise CfgError(path, exc.lineno, None, f"not valid Python: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CfgError(
            path, None, None, f"not valid Python: {_describe(exc)}"
        ) from None
    node = _record_node(tree)
    if node is None or node.value is None:
        raise CfgError(
            path,
            None,
            None,
            f"no CFGSCHED record ({MODULE_SCHEMA}): diff --module checks modules written "
            "by cfgsched convert",
        )
    try:
        raw = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise CfgError(
            path, node.lineno, "CFGSCHED", "the record is not a literal dict"
        ) from None
    return _parse_record(path, node.lineno, raw)


def _parse_record(path: str, line: int, raw: Any) -> ModuleRecord:
    def bad(message: str) -> CfgError:
        return CfgError(path, line, "CFGSCHED", message)

    if not isinstance(raw, dict) or raw.get("schema") != MODULE_SCHEMA:
        got = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise bad(f"schema {_short_repr(got)}, expected {MODULE_SCHEMA!r}")
    fork = raw.get("fork")
    if fork not in FORKS:
        raise bad(f"fork {_short_repr(fork)} is not one of {', '.join(FORKS)}")
    try:
        options = Options.from_record(raw.get("options"))
    except (ValueError, TypeError) as exc:
        raise bad(f"options: {_describe(exc, name=False)}") from None
    text = {k: raw.get(k, "") for k in ("version", "cfg", "format", "style")}
    if not all(isinstance(v, str) for v in text.values()):
        raise bad("version, cfg, format and style must be strings")
    return ModuleRecord(fork, options, **text)


def record_conflicts(
    record: Options, given: Options, names: Iterable[str], fork: str
) -> list[str]:
    """``name: record vs given`` for each option in ``names`` (the ones given on the command
    line) that contradicts the record; ``flush`` compares its effect on ``fork``."""
    wanted = set(names)
    if "flush" in wanted and record.flushes(fork) == given.flushes(fork):
        wanted.discard("flush")
    return [d for d in record.differences(given) if d.split(":", 1)[0] in wanted]


def load_module(path: str) -> LoadedModule:
    """Read the record of the module file at ``path``, then import it: **this runs the
    module's code**. Failures (also ``sys.exit``) raise a one-line :class:`CfgError`."""
    record = read_module_record(path)
    name = f"_cfgsched_module_{abs(hash(path))}"
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise CfgError(path, None, None, "not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _user_code(path, "importing the module"):
            with contextlib.redirect_stdout(sys.stderr):
                loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    build = getattr(module, "build_scheduler", None)
    if not callable(build):
        raise CfgError(
            path, None, None, "defines no build_scheduler(optimizer, last_epoch=-1)"
        )
    lr = getattr(module, "LEARNING_RATE", None)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        lr = None
    return LoadedModule(path, record, build, None if lr is None else float(lr))


# ----------------------------------------------------------------------------- user code


def _short_repr(x: Any, limit: int = 60) -> str:
    try:
        text = repr(x)
    except Exception:  # a user object whose repr fails
        text = f"<{type(x).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: BaseException, *, name: bool = True) -> str:
    """``Type: message`` on one line, control characters escaped, at most 200 characters."""
    if isinstance(exc, SystemExit):
        text = f"sys.exit({_short_repr(exc.code)})"
    else:
        msg = str(exc)
        text = (
            f"{type(exc).__name__}: {msg}"
            if name and msg
            else msg or type(exc).__name__
        )
    text = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text
    )
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def _user_code(who: str, what: str) -> Iterator[None]:
    """Errors of code under test (``sys.exit`` too) as a one-line CfgError naming ``who``."""
    try:
        yield
    except (CfgError, NotExactError):
        raise
    except (Exception, SystemExit) as exc:
        raise CfgError(who, None, None, f"{what} failed: {_describe(exc)}") from None


def _numbers(buf: list[Any], who: str, first: int) -> F64:
    """The LRs read from the optimizer as float64; anything but a real number is an error."""
    arr = np.asarray(buf) if buf else np.zeros(0)
    if arr.dtype.kind in "fiu":
        return arr.astype(np.float64)
    out = np.empty(len(buf), dtype=np.float64)
    for j, x in enumerate(buf):
        try:
            if isinstance(x, (bool, str, bytes)) or x is None:
                raise TypeError
            out[j] = float(x)
        except Exception:
            raise CfgError(
                who,
                None,
                None,
                f"the optimizer's lr at step {first + j} is {_short_repr(x)}, not a number",
            ) from None
    return out


# ----------------------------------------------------------------------------- torch side


def scheduler_factory(
    schedule: NetSchedule,
    options: Options | None = None,
    *,
    style: str = "class",
    module: str | LoadedModule | None = None,
    ngpus: int | None = None,
    run: Run | None = None,
) -> Factory:
    """How to build the torch scheduler under test (``NotExactError`` for a native style
    without an exact form). ``style`` is "class" (the scheduler of
    :class:`cfgsched.DarknetLR` on ``translate(schedule, options)``) or "native"
    (:func:`cfgsched.native_scheduler`); ``module`` overrides both (it is imported).
    ``ngpus`` is shorthand for ``Options(ngpus=ngpus)``.
    """
    o = options if options is not None else Options(ngpus=ngpus or 1)
    if module is not None:
        m = load_module(module) if isinstance(module, str) else module
        return _module_factory(m)
    if style == "class":
        from cfgsched.translate.scheduler import DarknetScheduler

        t = run if run is not None else _run(schedule, o)

        def make_class(optimizer: Any, last_epoch: int) -> Any:
            return DarknetScheduler(optimizer, t, last_epoch)

        return make_class
    if style == "native":
        return _native_factory(schedule, o)
    raise ValueError(f"unknown style {style!r} (class or native)")


def _module_factory(m: LoadedModule) -> Factory:
    def make_module(optimizer: Any, last_epoch: int) -> Any:
        sched = m.build(optimizer, last_epoch=last_epoch)
        if not callable(getattr(sched, "step", None)):
            raise TypeError(
                f"build_scheduler returned {type(sched).__name__}, not a scheduler "
                "with step()"
            )
        return sched

    return make_module


def _native_factory(schedule: NetSchedule, o: Options) -> Factory:
    from cfgsched.translate.native import native_scheduler

    if o.flush is not None and o.flush != default_flush(schedule.fork):
        raise CfgError(
            schedule.source,
            None,
            None,
            "--style native follows the fork's default release build: "
            "no --flush-subnormals/--keep-subnormals",
        )
    run = _run(schedule, o)
    s = run.schedule
    horizon = max(run.batch(run.stop - 1), 1) if run.stop > 0 else 1

    def make_native(optimizer: Any, last_epoch: int) -> Any:
        return native_scheduler(
            optimizer,
            s,
            exact=o.exact,
            ngpus=o.ngpus,
            multigpu=o.multigpu,
            images_per_step=o.images_per_step,
            last_epoch=last_epoch,
            horizon=horizon,
        )

    make_native(new_optimizer(run.cfg_lr), -1)  # raises NotExactError
    return make_native


def step_lrs(
    factory: Factory, lr: float, start: int, count: int, *, who: str = "scheduler"
) -> Iterator[F64]:
    """Build at step ``start`` (``last_epoch = start - 1``) and yield the LR of the next
    ``count`` optimizer steps in chunks of at most :data:`CHUNK`.

    Per step: read ``param_groups[0]["lr"]`` then ``scheduler.step()``, nothing else. One no-op
    ``optimizer.step()`` (no gradients) precedes the first scheduler step, as in training, so
    torch does not warn about the call order. Errors of the scheduler (``who``) are one-line
    :class:`CfgError` s.
    """
    opt = new_optimizer(lr, start - 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step\(\)` before")
        with _user_code(who, "build_scheduler(optimizer, last_epoch)"):
            step = factory(opt, start - 1).step
            opt.step()
        group = opt.param_groups[0]
        done = 0
        while done < count:
            m = min(CHUNK, count - done)
            buf: list[Any] = [0.0] * m
            j = 0
            try:
                for j in range(m):
                    buf[j] = group["lr"]
                    step()
            except (CfgError, NotExactError):
                raise
            except (Exception, SystemExit) as exc:
                raise CfgError(
                    who,
                    None,
                    None,
                    f"scheduler.step() failed at optimizer step {start + done + j}: "
                    f"{_describe(exc)}",
                ) from None
            yield _numbers(buf, who, start + done)
            done += m


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


def _untranslatable(schedule: NetSchedule, exc: ValueError) -> CfgError:
    if isinstance(exc, CfgError):
        return exc
    return CfgError(schedule.source, None, None, f"cannot translate: {exc}")


def _run(schedule: NetSchedule, options: Options) -> Run:
    """:func:`translate`; a schedule that cannot be translated is a CfgError."""
    try:
        return translate(schedule, options)
    except ValueError as exc:
        raise _untranslatable(schedule, exc) from None


def _translation_notes(run: Run, o: Options) -> list[str]:
    """What the translation does, in words (empty for a plain one-GPU run)."""
    t = run
    notes = [run.note]
    if t.trace:
        notes.append(f"step i is GPU 0's batch b of a -gpus {t.ngpus} run (trace)")
    elif o.images_per_step is None and t.ngpus > 1:
        notes.append(f"step i is darknet batch b = (i + 1)·{t.ngpus} (-gpus {t.ngpus})")
    elif t.images_per_step != t.images_per_iteration:
        notes.append(
            f"step i is darknet batch b = ⌊(i + 1)·{t.images_per_step} / "
            f"{t.images_per_iteration}⌋ ({t.images_per_step} images per step)"
        )
    if t.params.lr != t.cfg_lr:
        notes.append(f"base rate learning_rate × {t.ngpus} (-gpus {t.ngpus})")
    if o.ideal:
        notes.append(
            f"AlexeyAB's advice for {o.ngpus} GPUs: learning_rate / N, burn_in × N"
        )
    if run.start:
        notes.append(f"resumed: the run starts at step i = {run.start}")
    if run.start >= run.stop:
        notes.append(
            "the resumed run is past darknet's last iteration: nothing to train"
        )
    return notes


def _options_for(
    schedule: NetSchedule, options: Options | None, m: LoadedModule | None
) -> Options:
    """The translation to check: ``options``, or the module's record (they must agree)."""
    if m is None:
        return Options() if options is None else options
    rec = m.record
    if rec.fork != schedule.fork:
        raise CfgError(
            m.path,
            None,
            "CFGSCHED",
            f"the module was written for fork {rec.fork}, the cfg is read as "
            f"{schedule.fork}",
        )
    if options is not None and options != rec.options:
        diffs = "; ".join(rec.options.differences(options))
        raise CfgError(
            m.path,
            None,
            "CFGSCHED",
            f"options differ from the record (record vs given): {diffs}",
        )
    return rec.options


def _plan(
    run: Run, rows_at: dict[int, str], exhaustive: bool | None
) -> tuple[list[tuple[int, int]], str, str]:
    """The step windows to compare, the coverage and its note."""
    lo, n = run.start, max(run.stop, run.start)
    count = n - lo
    if exhaustive is None:
        exhaustive = count <= EXHAUSTIVE_DEFAULT_LIMIT
    if exhaustive and count > MAX_EXHAUSTIVE_STEPS:
        s = run.schedule
        raise CfgError(
            s.source,
            s.line_of("max_batches"),
            "max_batches",
            f"{count} steps: more than the {MAX_EXHAUSTIVE_STEPS} an exhaustive diff "
            "allows; use --sampled",
        )
    if exhaustive:  # one step past the run for the boundary table
        return [(lo, n + 1)], "exhaustive", "every step"
    rel = [i - lo for i in sorted(rows_at)]
    windows = [(lo + s, lo + t) for s, t in sample_windows(count + 1, rel)]
    why = (
        f"{count:,} steps is more than {EXHAUSTIVE_DEFAULT_LIMIT:,}"
        if count > EXHAUSTIVE_DEFAULT_LIMIT
        else "--sampled"
    )
    note = (
        f"{why}: the first {SAMPLE_PREFIX:,} steps, ±{SAMPLE_HALO} steps around every "
        f"boundary and {SAMPLE_WINDOWS} windows of {SAMPLE_WINDOW} steps; "
        "--exhaustive checks all"
    )
    return windows, "sampled", note


def _marks(run: Run) -> tuple[dict[int, str], int]:
    """Rows at the boundaries of the run's steps and how many boundaries were cut."""
    lo, n = run.start, max(run.stop, run.start)
    hi_b = max(run.batch(n), run.schedule.max_batches, 1)
    lo_b = run.batch(lo) if lo > 0 else 1
    marks, cut = boundaries(run.schedule, lo_b, hi_b)
    return _row_steps(marks, run.first_step, lo, n), cut


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

    Both sides follow ``options`` (for a ``module``, its ``CFGSCHED`` record, which
    ``options`` must equal if given; the module is imported, which runs its code). The
    default tolerance is :func:`default_tolerance`. ``exhaustive=None`` chooses: every step
    when the run has at most :data:`EXHAUSTIVE_DEFAULT_LIMIT` steps, else the boundaries
    plus a dense sample (each window starts a fresh scheduler with ``last_epoch``, as a
    resumed run does). ``progress(n, total)`` is called after each chunk of ``n`` steps.
    """
    m = load_module(module) if isinstance(module, str) else module
    o = _options_for(schedule, options, m)
    tol = _tolerance(tolerance, o)
    run = _run(schedule, o)
    factory = scheduler_factory(schedule, o, style=style, module=m, run=run)
    rows_at, cut = _marks(run)
    windows, coverage, note = _plan(run, rows_at, exhaustive)
    lr = run.cfg_lr
    if m is not None and m.learning_rate is not None:
        lr = m.learning_rate  # what the module's users give the optimizer
    who = m.path if m is not None else f"{schedule.source}: --style {style}"
    acc = _Acc(tol, rows_at, run.stop, run.batches)
    todo = sum(t - s for s, t in windows)
    for s, t in windows:
        pos = s
        for vals in step_lrs(factory, lr, s, t - s, who=who):
            i = np.arange(pos, pos + vals.size, dtype=np.int64)
            b = run.batches(i)
            expected = run.batch_lrs(b)
            acc.add(i, b, expected, vals)
            pos += vals.size
            if progress is not None:
                progress(int(vals.size), todo)
    expected_side, got_side = _torch_sides(schedule, o, style, m)
    notes = _translation_notes(run, o) + (_record_notes(m, schedule) if m else [])
    return acc.report(expected_side, got_side, coverage, note, cut, notes)


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
    how = describe(o)
    src = Path(schedule.source).name
    expected = Side(
        f"darknet C formula ({src}, {schedule.fork}{', ' + how if how else ''})",
        "darknet",
        schedule.fork,
        schedule.source,
        o,
    )
    return expected, Side(name, kind, schedule.fork, schedule.source, o)


def _record_notes(m: LoadedModule, schedule: NetSchedule) -> list[str]:
    r = m.record
    how = describe(r.options) or "defaults"
    notes = [
        f"module record: cfgsched {r.version or '?'}, cfg {r.cfg or '?'}, "
        f"{r.format or '?'} / {r.style or '?'}, options: {how}"
    ]
    if r.cfg and Path(r.cfg).name != Path(schedule.source).name:
        notes.append(
            f"the module was written from {Path(r.cfg).name}; compared with "
            f"{Path(schedule.source).name}"
        )
    return notes


def _check_batchwise(o: Options) -> None:
    if o.images_per_step is not None or o.multigpu == "trace" or o.resume_iteration:
        raise ValueError(
            "two schedules are compared batch by batch: images per step, "
            "multigpu='trace' and resuming apply to a torch run (give one cfg)"
        )


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
        _check_batchwise(o)
    ra, rb = _run(a, oa), _run(b, ob)
    ta, tb = ra, rb
    if tolerance is None:
        tolerance = default_tolerance(oa) if oa.exact == ob.exact else "1e-6"
    tol = _tolerance(tolerance, oa)
    # batch by batch: the runs' lengths in darknet batches (one GPU, no translation)
    na, note_a = training_steps(a)
    nb, note_b = training_steps(b)
    n = max(na, nb)

    def b_of(i: I64) -> I64:
        return np.asarray(i, dtype=np.int64) + 1

    rows_at, cut = _pair_rows(ra.schedule, rb.schedule, n)
    if exhaustive is None:
        exhaustive = n <= MAX_EXHAUSTIVE_BATCHES
    if exhaustive:
        windows, coverage, note = [(0, n + 1)], "exhaustive", "every batch"
    else:
        windows = sample_windows(n + 1, sorted(rows_at))
        coverage, note = "sampled", "boundaries and a dense sample"
    acc = _Acc(tol, rows_at, n, b_of)
    for s, t in _chunks(windows, ORACLE_CHUNK):
        i = np.arange(s, t, dtype=np.int64)
        bb = b_of(i)
        ea = params_lr(ta.params, bb, exact=ta.exact, flush=ta.flush)
        eb = params_lr(tb.params, bb, exact=tb.exact, flush=tb.flush)
        acc.add(i, bb, ea, np.asarray(eb, dtype=np.float64))
    side_a = Side(labels[0], "A", a.fork, a.source, oa)
    side_b = Side(labels[1], "B", b.fork, b.source, ob)
    notes = [note_a, note_b if note_b != note_a else ""]
    if a.max_batches != b.max_batches:
        notes.append(
            f"max_batches differ ({a.max_batches} vs {b.max_batches}): compared up to b = {n}"
        )
    return acc.report(side_a, side_b, coverage, note, cut, notes)


def _pair_rows(a: NetSchedule, b: NetSchedule, n: int) -> tuple[dict[int, str], int]:
    """Rows at both schedules' boundaries (step i = b - 1), labelled A:/B: when not shared."""
    ma, cut_a = boundaries(a, 1, n)
    mb, cut_b = boundaries(b, 1, n)
    seen: set[tuple[int, str]] = set()
    marks = []
    for tag, ms in (("A", ma), ("B", mb)):
        for m in ms:
            key = (m.batch, m.label)
            if key not in seen:
                seen.add(key)
                both = m in ma and m in mb
                marks.append(
                    Boundary(m.batch, m.kind, m.label if both else f"{tag}: {m.label}")
                )
    marks.sort(key=lambda m: m.batch)
    return _row_steps(marks, lambda x: max(x - 1, 0), 0, n), cut_a + cut_b
