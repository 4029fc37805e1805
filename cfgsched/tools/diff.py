"""Compare a real torch scheduler (or a second schedule) with darknet's C formula.

The torch side is stepped for real: ``scheduler.step()`` and reading the optimizer's LR are the
only per-step work. Step ``i`` (0-based) of a single-GPU run is compared with darknet's rate at
``b = i + 1``; with ``ngpus = n`` (``multigpu="images"``) with ``b = (i + 1)·n`` and the
learning rate × n where the fork multiplies it (alexeyab, pjreddie). Values are compared in
chunks, so memory stays bounded for any number of steps.
"""

from __future__ import annotations

import importlib.util
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import Boundary, boundaries
from cfgsched.errors import CfgError
from cfgsched.schedule import NetSchedule
from cfgsched.tools.text import json_float

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SCHEMA = "cfgsched-diff/1"
#: Above this many steps the default is boundaries plus a dense sample, not every step.
EXHAUSTIVE_DEFAULT_LIMIT = 2_000_000
#: ``--exhaustive`` refuses more steps than this (about 4 minutes of scheduler stepping).
MAX_EXHAUSTIVE_STEPS = 50_000_000
#: Oracle-vs-oracle comparisons are exhaustive up to this many batches.
MAX_EXHAUSTIVE_BATCHES = 200_000_000
#: Steps per comparison chunk (bounds memory).
CHUNK = 1 << 16
#: Batches per chunk when both sides are the vectorized C formula.
ORACLE_CHUNK = 1 << 20
#: Steps compared around each boundary in sampled mode (each side).
SAMPLE_HALO = 64
#: Sampled mode: the first steps, then this many evenly spaced windows of this many steps.
SAMPLE_PREFIX = 10_000
SAMPLE_WINDOWS = 256
SAMPLE_WINDOW = 512
#: Differing ranges listed at most.
MAX_RANGES = 20
#: Steps compared when ``max_batches`` is 0 and no boundary says how long training is.
DEFAULT_SPAN = 1000

Factory = Callable[[Any, int], Any]
Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------------- schedules


def gpu_schedule(schedule: NetSchedule, ngpus: int) -> NetSchedule:
    """The schedule darknet runs with ``-gpus`` of ``ngpus`` GPUs: lr × n in alexeyab/pjreddie."""
    if ngpus < 1:
        raise ValueError(f"ngpus must be >= 1, got {ngpus}")
    if ngpus == 1 or schedule.fork == "hankai":
        return schedule
    return schedule.with_values(learning_rate=schedule.learning_rate * ngpus)


def oracle(schedule: NetSchedule, b: I64) -> F32:
    """darknet's float32 LR at the batches ``b`` (``cfgsched.darknet_lr``)."""
    from cfgsched.oracle import darknet_lr

    return np.asarray(
        darknet_lr(schedule, np.asarray(b, dtype=np.int64)), dtype=np.float32
    )


def training_steps(schedule: NetSchedule, ngpus: int = 1) -> tuple[int, str]:
    """Optimizer steps in a run: ``max_batches // ngpus``, or a span when max_batches is 0."""
    if schedule.max_batches > 0:
        return max(schedule.max_batches // ngpus, 1), ""
    marks, _ = boundaries(schedule, 1, 1 << 40, limit=8)
    last = max([m.batch for m in marks] + [0])
    span = max(DEFAULT_SPAN, 2 * last)
    steps = max(span // ngpus, 1)
    return steps, f"max_batches is 0: compared the first {span} batches instead"


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


# ----------------------------------------------------------------------------- errors


def _ordered(x: F32) -> I64:
    """float32 values as integers in the same order (adjacent floats differ by 1)."""
    i = x.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def ulp_distance(expected: F32, got: F32) -> F64:
    """Number of float32 values between ``expected`` and ``got`` (NaN = NaN; else inf)."""
    e = np.ascontiguousarray(expected, dtype=np.float32)
    g = np.ascontiguousarray(got, dtype=np.float32)
    d = np.abs(_ordered(e) - _ordered(g)).astype(np.float64)
    en, gn = np.isnan(e), np.isnan(g)
    d = np.where(en | gn, np.where(en & gn, 0.0, np.inf), d)
    return np.where(np.isinf(e) | np.isinf(g), np.where(e == g, 0.0, np.inf), d)


def errors(expected: F64, got: F64) -> tuple[F64, F64, F64]:
    """Absolute and relative error of ``got`` (NaN = NaN) and its float32 ulp distance.

    The ulp distance rounds ``got`` to float32 first: an optimizer on float32 parameters
    applies the LR as float32, so 0 ulp means it trains with darknet's exact value.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        same = (expected == got) | (np.isnan(expected) & np.isnan(got))
        ab = np.abs(got - expected)
        ab = np.where(same, 0.0, np.where(np.isnan(ab), np.inf, ab))
        rel = np.where(ab == 0, 0.0, ab / np.abs(expected))
        rel = np.where(np.isnan(rel), np.inf, rel)
        ulp = ulp_distance(expected.astype(np.float32), got.astype(np.float32))
    return ab, rel, ulp


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Side:
    """One side of a comparison: ``kind`` is darknet (the C formula), class, native or module."""

    label: str
    kind: str
    fork: str
    source: str
    gpus: int = 1


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
                f"compared {self.steps_compared:,} sampled steps between b = {self.first_batch} "
                f"and b = {self.last_batch} ({self.coverage_note})"
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
        if self.spans:
            lines.append("differing ranges (darknet batches):")
            for s in self.spans:
                rng = f"b = {s.first_batch}" + (
                    f"..{s.last_batch}" if s.last_batch != s.first_batch else ""
                )
                plural = "s" if s.count != 1 else ""
                lines.append(f"  {rng}  ({s.count:,} step{plural})")
            if self.spans_total > len(self.spans):
                lines.append(f"  ... {self.spans_total - len(self.spans)} more ranges")
        if self.rows:
            lines.append("")
            w = max(len(r.label) for r in self.rows)
            lines.append(
                f"{'boundary':<{w}}  {'step i':>9}  {'batch b':>9}  {e.kind:>15}  {g.kind:>15}"
                f"  {'ulp':>6}"
            )
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
        return "\n".join(lines)


def _g(x: float) -> str:
    return f"{x:.9g}"


def _side_dict(s: Side) -> dict[str, Any]:
    return {
        "label": s.label,
        "kind": s.kind,
        "fork": s.fork,
        "source": s.source,
        "gpus": s.gpus,
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

    def add(self, i: I64, expected: F32, got: F64) -> None:
        if i.size == 0:
            return
        e = expected.astype(np.float64)
        ab, rel, ulp = errors(e, got)
        within = (
            (ulp <= self.tol.value)
            if self.tol.kind == "ulp"
            else (rel <= self.tol.value)
        )
        b = self.b_of(i)
        if self.rows_at:
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
        steps = i[bad]
        # runs of consecutive steps
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
        if int(steps[-1]) != int(i[-1]):
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
    marks: Sequence[Boundary], step_of: Callable[[int], int], n: int
) -> dict[int, str]:
    """Step index -> label for the steps around each boundary (b-1, b, b+1 for one GPU)."""
    out: dict[int, str] = {}
    for m in marks:
        i0 = step_of(m.batch)
        for d, suffix in ((-1, " -1"), (0, ""), (1, " +1")):
            i = i0 + d
            if 0 <= i <= n:
                out.setdefault(i, m.label + suffix)
    return out


def _windows(n: int, row_steps: Sequence[int]) -> list[tuple[int, int]]:
    """Sampled mode: merged ``[start, stop)`` step windows covering prefix, boundaries, sample."""
    raw = [(0, min(SAMPLE_PREFIX, n)), (max(0, n - SAMPLE_WINDOW), n)]
    for s in (
        np.linspace(0, max(n - SAMPLE_WINDOW, 0), SAMPLE_WINDOWS)
        .astype(np.int64)
        .tolist()
    ):
        raw.append((s, min(s + SAMPLE_WINDOW, n)))
    for i in row_steps:
        raw.append((max(0, i - SAMPLE_HALO), min(n, i + SAMPLE_HALO + 1)))
    raw.sort()
    merged: list[tuple[int, int]] = []
    for s, t in raw:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], t))
        elif t > s:
            merged.append((s, t))
    return merged


def _chunks(windows: Sequence[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    for s, t in windows:
        for a in range(s, t, size):
            yield a, min(a + size, t)


# ----------------------------------------------------------------------------- torch side


def load_module(path: str) -> Factory:
    """``build_scheduler(optimizer, last_epoch=-1)`` from the Python file at ``path``."""
    p = Path(path)
    if not p.is_file():
        raise CfgError(path, None, None, "no such module file")
    spec = importlib.util.spec_from_file_location(
        f"_cfgsched_user_{abs(hash(path))}", p
    )
    if spec is None or spec.loader is None:
        raise CfgError(path, None, None, "not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # user code: report it on one line
        raise CfgError(
            path, None, None, f"importing the module failed: {exc!r}"
        ) from None
    build = getattr(module, "build_scheduler", None)
    if not callable(build):
        raise CfgError(
            path, None, None, "defines no build_scheduler(optimizer, last_epoch=-1)"
        )

    def factory(optimizer: Any, last_epoch: int) -> Any:
        return build(optimizer, last_epoch=last_epoch)

    return factory


def scheduler_factory(
    schedule: NetSchedule,
    *,
    style: str = "class",
    module: str | None = None,
    ngpus: int = 1,
) -> Factory:
    """How to build the torch scheduler under test (``NotExactError`` for a native style).

    ``style`` is "class" (:class:`cfgsched.DarknetLR`) or "native"
    (:func:`cfgsched.native_scheduler`); ``module`` (a file) overrides both.
    """
    if module is not None:
        return load_module(module)
    if style == "class":
        from cfgsched.translate.darknet_lr import DarknetLR

        def make_class(optimizer: Any, last_epoch: int) -> Any:
            return DarknetLR(optimizer, schedule, ngpus=ngpus, last_epoch=last_epoch)

        return make_class
    if style == "native":
        from cfgsched.translate.native import native_scheduler

        def make_native(optimizer: Any, last_epoch: int) -> Any:
            return native_scheduler(
                optimizer, schedule, ngpus=ngpus, last_epoch=last_epoch
            )

        make_native(new_optimizer(schedule.learning_rate), -1)  # raises NotExactError
        return make_native
    raise ValueError(f"unknown style {style!r} (class or native)")


def new_optimizer(lr: float, last_epoch: int = -1) -> Any:
    """A one-parameter SGD whose group LR is the cfg's learning_rate (multiplier exactly 1)."""
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    if last_epoch >= 0:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
    return opt


def step_lrs(factory: Factory, lr: float, start: int, count: int) -> Iterator[F64]:
    """Build at step ``start`` (``last_epoch = start - 1``) and yield the LR of the next
    ``count`` optimizer steps in chunks of at most :data:`CHUNK`.

    Per step: read ``param_groups[0]["lr"]`` then ``scheduler.step()``, nothing else. One no-op
    ``optimizer.step()`` (no gradients) precedes the first scheduler step, as in training, so
    torch does not warn about the call order.
    """
    opt = new_optimizer(lr, start - 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step\(\)` before")
        sched = factory(opt, start - 1)
        opt.step()
        group = opt.param_groups[0]
        step = sched.step
        done = 0
        while done < count:
            m = min(CHUNK, count - done)
            buf = [0.0] * m
            for j in range(m):
                buf[j] = group["lr"]
                step()
            done += m
            yield np.asarray(buf, dtype=np.float64)


# ----------------------------------------------------------------------------- entry points


def diff_torch(
    schedule: NetSchedule,
    *,
    style: str = "class",
    module: str | None = None,
    ngpus: int = 1,
    tolerance: Tolerance | str = "0ulp",
    exhaustive: bool | None = None,
    progress: Progress | None = None,
) -> DiffReport:
    """Step the torch scheduler and compare every step (or a sample) with the C formula.

    ``exhaustive=None`` chooses: every step when the run has at most
    :data:`EXHAUSTIVE_DEFAULT_LIMIT` steps, else the boundaries plus a dense sample (each
    sampled window starts a fresh scheduler with ``last_epoch``, as a resumed run does).
    ``progress(n, total)`` is called after each chunk of ``n`` of the ``total`` steps.
    """
    tol = Tolerance.parse(tolerance) if isinstance(tolerance, str) else tolerance
    factory = scheduler_factory(schedule, style=style, module=module, ngpus=ngpus)
    ref = gpu_schedule(schedule, ngpus)
    n, span_note = training_steps(schedule, ngpus)

    def b_of(i: I64) -> I64:
        return (np.asarray(i, dtype=np.int64) + 1) * ngpus

    def step_of(b: int) -> int:
        return max(-(-b // ngpus) - 1, 0)

    marks, cut = boundaries(schedule, 1, n * ngpus)
    rows_at = _row_steps(marks, step_of, n)
    if exhaustive is None:
        exhaustive = n <= EXHAUSTIVE_DEFAULT_LIMIT
    if exhaustive and n > MAX_EXHAUSTIVE_STEPS:
        raise CfgError(
            schedule.source,
            schedule.line_of("max_batches"),
            "max_batches",
            f"{n} steps: more than the {MAX_EXHAUSTIVE_STEPS} an exhaustive diff allows; "
            "use --sampled",
        )
    total = n + 1  # one step past max_batches for the boundary table
    if exhaustive:
        windows = [(0, total)]
        coverage, note = "exhaustive", "every step"
    else:
        windows = _windows(total, sorted(rows_at))
        coverage = "sampled"
        note = (
            f"{n:,} steps is more than {EXHAUSTIVE_DEFAULT_LIMIT:,}: the first "
            f"{SAMPLE_PREFIX:,} steps, ±{SAMPLE_HALO} steps around every boundary and "
            f"{SAMPLE_WINDOWS} windows of {SAMPLE_WINDOW} steps; --exhaustive checks all"
        )
    acc = _Acc(tol, rows_at, n, b_of)
    lr = schedule.learning_rate
    todo = sum(t - s for s, t in windows)
    for s, t in windows:
        pos = s
        for vals in step_lrs(factory, lr, s, t - s):
            i = np.arange(pos, pos + vals.size, dtype=np.int64)
            acc.add(i, oracle(ref, b_of(i)), vals)
            pos += vals.size
            if progress is not None:
                progress(int(vals.size), todo)
    kind = "module" if module is not None else style
    name = {
        "class": "cfgsched.DarknetLR",
        "native": "cfgsched.native_scheduler",
        "module": f"{module}:build_scheduler",
    }[kind]
    gpus = f", {ngpus} GPUs" if ngpus > 1 else ""
    src = Path(schedule.source).name
    expected = Side(
        f"darknet C formula ({src}, {schedule.fork}{gpus})",
        "darknet",
        schedule.fork,
        schedule.source,
        ngpus,
    )
    got = Side(name, kind, schedule.fork, schedule.source, ngpus)
    notes = [span_note]
    if ngpus > 1:
        notes.append(
            f"{ngpus} GPUs: step i is darknet batch b = (i + 1)·{ngpus}"
            + (", learning_rate × " + str(ngpus) if ref is not schedule else "")
        )
    return acc.report(expected, got, coverage, note, cut, notes)


def diff_schedules(
    a: NetSchedule,
    b: NetSchedule,
    *,
    labels: tuple[str, str] = ("A", "B"),
    gpus: tuple[int, int] = (1, 1),
    tolerance: Tolerance | str = "0ulp",
    exhaustive: bool | None = None,
) -> DiffReport:
    """Compare two schedules batch by batch (C formula vs C formula).

    Covers b = 1 .. max(max_batches) (+1 for the table); with GPU counts, each side's
    learning_rate is multiplied as its fork does under ``-gpus``.
    """
    tol = Tolerance.parse(tolerance) if isinstance(tolerance, str) else tolerance
    ra, rb = gpu_schedule(a, gpus[0]), gpu_schedule(b, gpus[1])
    na, note_a = training_steps(a)
    nb, note_b = training_steps(b)
    n = max(na, nb)

    def b_of(i: I64) -> I64:
        return np.asarray(i, dtype=np.int64) + 1

    def step_of(x: int) -> int:
        return max(x - 1, 0)

    ma, cut_a = boundaries(a, 1, n)
    mb, cut_b = boundaries(b, 1, n)
    seen: set[tuple[int, str]] = set()
    marks = []
    for tag, ms in (("A", ma), ("B", mb)):
        for m in ms:
            key = (m.batch, m.label)
            if key not in seen:
                seen.add(key)
                both = any(x == m for x in ma) and any(x == m for x in mb)
                lab = m.label if both else f"{tag}: {m.label}"
                marks.append(Boundary(m.batch, m.kind, lab))
    marks.sort(key=lambda m: m.batch)
    rows_at = _row_steps(marks, step_of, n)
    if exhaustive is None:
        exhaustive = n <= MAX_EXHAUSTIVE_BATCHES
    total = n + 1
    if exhaustive:
        windows = [(0, total)]
        coverage, note = "exhaustive", "every batch"
    else:
        windows = _windows(total, sorted(rows_at))
        coverage, note = "sampled", "boundaries and a dense sample"
    acc = _Acc(tol, rows_at, n, b_of)
    for s, t in _chunks(windows, ORACLE_CHUNK):
        i = np.arange(s, t, dtype=np.int64)
        bb = b_of(i)
        acc.add(i, oracle(ra, bb), oracle(rb, bb).astype(np.float64))
    ea = Side(labels[0], "A", a.fork, a.source, gpus[0])
    eb = Side(labels[1], "B", b.fork, b.source, gpus[1])
    notes = [note_a, note_b if note_b != note_a else ""]
    if a.max_batches != b.max_batches:
        notes.append(
            f"max_batches differ ({a.max_batches} vs {b.max_batches}): compared up to b = {n}"
        )
    return acc.report(ea, eb, coverage, note, cut_a + cut_b, notes)
