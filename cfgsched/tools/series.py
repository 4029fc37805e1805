"""A translated run step by step: where each optimizer step falls, its LR, its export.

The one place the tools (explain, plot, and diff after the merge) turn a
:class:`~cfgsched.translation.Translation` into series: the run's length, the step where a
darknet batch is reached or landed on, the LR darknet computes at a batch under the
translation's base rate, and the exported LR series (:class:`LRSeries` written as CSV,
JSON or TensorBoard scalars). Numpy only; tensorboard is imported when scalars are
written (torch stepping is :mod:`cfgsched.tools.stepping`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import boundaries
from cfgsched.kernel.formulas import FORK_PJREDDIE, STEPS
from cfgsched.kernel.position import Translation
from cfgsched.oracle import params_lr, translation_batches, translation_lr
from cfgsched.schedule import NetSchedule
from cfgsched.tools.text import fmt
from cfgsched.translation import steps_for

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Largest darknet batch number the tools evaluate (int64).
MAX_BATCH = (1 << 63) - 1
#: Batches shown when ``max_batches`` is 0 and no boundary says how long training is.
DEFAULT_SPAN = 1000
#: GPU 0 loop iterations (``multigpu="trace"``) followed at most (about 0.3 µs each).
TRACE_LIMIT = 4_000_000

__all__ = [
    "DEFAULT_SPAN",
    "ENVELOPE_COLUMNS",
    "EXPORT_LIMIT",
    "FULL_COLUMNS",
    "MAX_BATCH",
    "SERIES_SCHEMA",
    "TENSORBOARD_FILE",
    "TRACE_LIMIT",
    "LRSeries",
    "batch_lrs",
    "batches_of",
    "counted",
    "full_series",
    "last_batch",
    "mapping_text",
    "run_ends",
    "run_steps",
    "step_landing",
    "step_lrs",
    "step_reaching",
    "trace_head",
    "trace_too_long",
    "write_csv",
    "write_json",
    "write_tensorboard",
]


# ----------------------------------------------------------------------------- LR series


def batch_lrs(t: Translation, b: I64) -> F32 | F64:
    """darknet's LR at the batches ``b`` under ``t``'s base rate and arithmetic (the value a
    step landing on b trains with; ``translation_lr`` gives the same at steps)."""
    b = np.asarray(b, dtype=np.int64)
    p = t.params
    if _plateaus(t, b.size):
        return _steps_by_plateau(t, b)
    return params_lr(p, b, exact=t.exact, flush=t.flush)


def _plateaus(t: Translation, size: int) -> bool:
    """Whether :func:`_steps_by_plateau` is the fast way for ``size`` values."""
    return t.exact and t.flush and t.params.policy == STEPS and size > 64


def _steps_by_plateau(t: Translation, b: I64) -> F32 | F64:
    """``params_lr`` for the steps policy with flushing, one evaluation per plateau.

    ``oracle.params_lr`` evaluates a flushing steps schedule batch by batch (an
    intermediate product may flush); past burn-in the rate only depends on which step
    values are ``<= b``, so every batch takes the value of the last cut (burn_in or a
    step value) at or below it. Batches inside burn-in are evaluated themselves.
    """
    p = t.params
    pj = p.fork == FORK_PJREDDIE
    if pj and p.burn_in < 0:  # unsigned: every batch is in burn-in
        return params_lr(p, b, exact=True, flush=True)
    n = min(len(p.steps), len(p.scales))
    eff = [s % (1 << 64) if pj else s for s in p.steps[:n]]
    first = max(p.burn_in, 0)
    cuts = {first, *(s for s in eff if first <= s <= MAX_BATCH)}
    table = np.asarray(sorted(cuts), dtype=np.int64)
    idx = np.searchsorted(table, b, side="right") - 1
    values = params_lr(p, table, exact=True, flush=True)
    out = values[np.maximum(idx, 0)]
    burn = np.flatnonzero(idx < 0)
    if burn.size:
        out[burn] = params_lr(p, b[burn], exact=True, flush=True)
    return out


def step_lrs(t: Translation, steps: I64) -> F32 | F64:
    """The LR of the 0-based optimizer ``steps`` under ``t``: ``oracle.translation_lr``
    (for a flushing steps schedule, the same values through :func:`batch_lrs`)."""
    steps = np.asarray(steps, dtype=np.int64)
    if _plateaus(t, steps.size):
        return batch_lrs(t, batches_of(t, steps))
    return translation_lr(t, steps)[1]


def mapping_text(t: Translation) -> str:
    """How step i maps to batch b under ``t``, in words (``b = (i + 1)*4 (...)``)."""
    if t.trace:
        return f"b = GPU 0's batch in loop iteration i + 1 of a -gpus {t.ngpus} run (trace)"
    ips, ipi = t.images_per_step, t.images_per_iteration
    if ips == ipi:
        return "b = i + 1"
    per = f"{counted(ips, 'image')} per step"
    if ips % ipi == 0:
        return f"b = (i + 1)*{ips // ipi} ({per})"
    return f"b = (i + 1)*{ips} // {ipi} ({per})"


# ----------------------------------------------------------------------------- run length


def last_batch(schedule: NetSchedule) -> tuple[int, str]:
    """The last darknet batch of the run: ``max_batches``, or a span with a note when it
    is 0 (twice the last boundary, at least :data:`DEFAULT_SPAN`)."""
    if schedule.max_batches > 0:
        return schedule.max_batches, ""
    marks, _ = boundaries(schedule, 1, 1 << 40, limit=8)
    span = max(DEFAULT_SPAN, 2 * max([m.batch for m in marks] + [0]))
    return span, f"max_batches is 0: shows the first {span:,} batches instead"


def trace_too_long(t: Translation) -> bool:
    """True when ``t`` follows GPU 0's trace over more than :data:`TRACE_LIMIT` iterations."""
    p = t.params
    return t.trace and p.max_batches // t.ngpus + max(p.burn_in, 0) > TRACE_LIMIT


def run_steps(t: Translation, schedule: NetSchedule) -> tuple[int, str]:
    """Optimizer steps of the whole run (steps ``0 .. n - 1``) and a note.

    ``multigpu="trace"``: darknet's loop iterations on GPU 0. Otherwise the steps that
    cover the last batch (:func:`cfgsched.translation.steps_for` of :func:`last_batch`).
    """
    last, note = last_batch(schedule)
    if t.trace and schedule.max_batches > 0:
        if trace_too_long(t):
            raise ValueError(
                f"--multigpu trace: more than {TRACE_LIMIT:,} loop iterations of GPU 0"
            )
        return int(_trace_cached(t).size), note
    return max(steps_for(t, last), 1), note


def _trace(t: Translation, count: int | None = None) -> list[int]:
    """GPU 0's batch sequence of ``t`` (the whole darknet run, or its first ``count``)."""
    from cfgsched.kernel.mgpu import MgpuConfig, mgpu_batches

    p = t.params
    cfg = MgpuConfig(p.fork, t.ngpus, p.max_batches, p.burn_in, t.scratch)
    limit = TRACE_LIMIT if count is None else min(count, TRACE_LIMIT)
    return mgpu_batches(cfg, limit)[0]


def trace_head(t: Translation, count: int) -> list[int]:
    """GPU 0's batch numbers over the first ``count`` loop iterations of ``t``'s
    ``-gpus`` run (the counter rules of :mod:`cfgsched.kernel.mgpu`)."""
    return _trace(t, count)


# ----------------------------------------------------------------------------- batch -> step


def step_reaching(t: Translation, batches: Sequence[int]) -> list[int | None]:
    """For each batch b, the first 0-based step whose batch is ``>= b`` (where a phase
    starting at b starts in the torch run). None only for a GPU 0 trace longer than
    :data:`TRACE_LIMIT` iterations."""
    if not t.trace:
        ipi, ips = t.images_per_iteration, t.images_per_step
        return [max(-(-b * ipi // ips) - 1, 0) for b in batches]
    return [_trace_index(t, b, exact=False) for b in batches]


def step_landing(t: Translation, batches: Sequence[int]) -> list[int | None]:
    """For each batch b, the first 0-based step whose batch is exactly b, or None when no
    step of the translated run is evaluated at b (e.g. b = 3 with ``--gpus 4``)."""
    if not t.trace:
        return [
            i if i is not None and t.batch(i) == b else None
            for b, i in zip(batches, step_reaching(t, batches), strict=True)
        ]
    return [_trace_index(t, b, exact=True) for b in batches]


def _trace_index(t: Translation, b: int, *, exact: bool) -> int | None:
    """First step of GPU 0's trace at batch ``b`` (``exact``) or at a batch ``>= b``."""
    if trace_too_long(t):
        return None
    seq = _trace_cached(t)
    hits = np.flatnonzero(seq == b) if exact else np.flatnonzero(seq >= b)
    if hits.size:
        return int(hits[0])
    # past darknet's run b grows by ngpus per step (cfgsched.kernel.position)
    last = int(seq[-1]) if seq.size else 0
    k = max(-(-(b - last) // t.ngpus), 1)
    if exact and last + k * t.ngpus != b:
        return None
    return seq.size + k - 1


#: The last GPU 0 run computed (one entry: runs can be millions of iterations long).
_TRACE_CACHE: dict[tuple[Any, ...], I64] = {}


def _trace_cached(t: Translation) -> I64:
    """GPU 0's batch sequence of ``t``'s whole darknet run, as int64."""
    p = t.params
    key = (p.fork, t.ngpus, p.max_batches, p.burn_in, t.scratch)
    if key not in _TRACE_CACHE:
        _TRACE_CACHE.clear()
        _TRACE_CACHE[key] = np.asarray(_trace(t), dtype=np.int64)
    return _TRACE_CACHE[key]


def batches_of(t: Translation, steps: I64) -> I64:
    """darknet's batch for each 0-based step (``oracle.translation_batches``)."""
    return translation_batches(t, np.asarray(steps, dtype=np.int64))


# ----------------------------------------------------------------------------- export

#: Rows an exported series holds at full resolution (one per optimizer step) at most;
#: a longer range is written as the figure's min/max envelope instead.
EXPORT_LIMIT = 5_000_000
#: Schema of an exported LR series (the CSV's first comment line, the JSON's "schema").
SERIES_SCHEMA = "cfgsched-lr-series/1"
#: Columns of a full-resolution series and of an envelope.
FULL_COLUMNS = ("step", "batch", "epoch", "lr")
ENVELOPE_COLUMNS = (
    "step_first", "step_last", "batch_first", "batch_last",
    "epoch_first", "epoch_last", "lr_min", "lr_max",
)  # fmt: skip
#: Optimizer steps per chunk when a series is written.
ROWS_CHUNK = 1 << 16

#: ``chunks()`` yields the columns of consecutive rows (``None`` for an empty column).
Chunks = Callable[[], Iterator[tuple[npt.NDArray[Any] | None, ...]]]


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images``, ``1,000 batches`` (``nouns``: an irregular plural)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"


@dataclass(frozen=True)
class LRSeries:
    """The LR of one translated run, ready to write (see :data:`SERIES_SCHEMA`).

    ``resolution`` is "full" (rows :data:`FULL_COLUMNS`, one per optimizer step) or
    "envelope" (rows :data:`ENVELOPE_COLUMNS`, one per column of the figure). ``lr`` is
    darknet's value (float32, or float64 with ``--double``) under the translation
    ``options`` (:meth:`~cfgsched.translation.Options.to_record`).
    """

    cfg: str
    fork: str
    options: dict[str, Any]
    resolution: str
    rows: int
    chunks: Chunks
    images: int | None
    images_per_iteration: int
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names of the rows."""
        return FULL_COLUMNS if self.resolution == "full" else ENVELOPE_COLUMNS

    def epochs(self, b: I64) -> F64 | None:
        """Epochs at batches ``b``: images darknet has seen (b × cfg batch) / ``images``."""
        if not self.images:
            return None
        return b.astype(np.float64) * self.images_per_iteration / self.images


def full_series(t: Translation, first: int, last: int, **head: Any) -> LRSeries:
    """The LR of every optimizer step ``first .. last`` under ``t`` (``head``: the other
    :class:`LRSeries` fields: ``cfg``, ``fork``, ``options``, ``images``, ...)."""

    def chunks() -> Iterator[tuple[npt.NDArray[Any] | None, ...]]:
        for s0 in range(first, last + 1, ROWS_CHUNK):
            steps = np.arange(s0, min(s0 + ROWS_CHUNK, last + 1), dtype=np.int64)
            b = batches_of(t, steps)
            yield steps, b, out.epochs(b), step_lrs(t, steps)

    out = LRSeries(
        resolution="full", rows=max(last - first + 1, 0), chunks=chunks, **head
    )
    return out


def _float_texts(v: npt.NDArray[Any], quote_special: bool) -> list[str]:
    """Each value as the shortest text that reads back as the same double (a float32
    value exactly); NaN/±inf as nan/inf/-inf (quoted for JSON)."""
    u, inv = np.unique(v, return_inverse=True)
    texts = []
    for x in u.tolist():
        if math.isfinite(x):
            texts.append(repr(x))
        else:
            texts.append(f'"{fmt(x)}"' if quote_special else fmt(x))
    return [texts[k] for k in inv.ravel().tolist()]


def _row_texts(
    cols: tuple[npt.NDArray[Any] | None, ...], json: bool
) -> list[list[str]]:
    """The text of every cell of a chunk, column by column."""
    n = next(c.size for c in cols if c is not None)
    out = []
    for c in cols:
        if c is None:
            out.append(["null" if json else ""] * n)
        elif c.dtype.kind in "iu":
            out.append([str(x) for x in c.tolist()])
        else:
            out.append(_float_texts(c, json))
    return out


def _resolution_text(s: LRSeries) -> str:
    if s.resolution == "full":
        return (
            f"full: every optimizer step ({counted(s.rows, 'row')}; a range over "
            f"{EXPORT_LIMIT:,} steps is written as the figure's min/max envelope)"
        )
    return (
        f"envelope: more than {EXPORT_LIMIT:,} optimizer steps, so each of the "
        f"{counted(s.rows, 'row')} is one column of the figure: its first and last step"
        " and the smallest and largest finite LR of its steps"
    )


def _epoch_text(s: LRSeries) -> str:
    if not s.images:
        return "epoch: empty (pass --images N, the images in the data set)"
    return (
        f"epoch: images darknet has seen at the batch (batch x "
        f"{s.images_per_iteration}) / {counted(s.images, 'image')}"
    )


def write_csv(stream: Any, s: LRSeries) -> None:
    """``s`` as CSV: ``#`` comment lines (schema, cfg, options, resolution), a header
    line, then one line per row."""
    import json

    stream.write(
        f"# {SERIES_SCHEMA}: darknet's learning rate of {json.dumps(s.cfg)} "
        f"({s.fork} fork) per optimizer step of the translated run\n"
        f"# options: {json.dumps(s.options)}\n"
        f"# resolution: {_resolution_text(s)}\n"
        f"# {_epoch_text(s)}\n"
    )
    for note in s.notes:
        stream.write(f"# note: {json.dumps(note)[1:-1]}\n")
    stream.write(",".join(s.columns) + "\n")
    for cols in s.chunks():
        texts = _row_texts(cols, json=False)
        stream.write("".join(",".join(r) + "\n" for r in zip(*texts, strict=True)))


def write_json(stream: Any, s: LRSeries) -> None:
    """``s`` as one JSON object (``schema`` first; ``rows`` last, one row per line)."""
    import json

    head = {
        "schema": SERIES_SCHEMA,
        "cfg": s.cfg,
        "fork": s.fork,
        "options": s.options,
        "resolution": s.resolution,
        "resolution_text": _resolution_text(s),
        "limit": EXPORT_LIMIT,
        "images": s.images,
        "epoch": _epoch_text(s),
        "notes": list(s.notes),
        "columns": list(s.columns),
    }
    stream.write(json.dumps(head)[:-1] + ', "rows": [')
    sep = "\n"
    for cols in s.chunks():
        texts = _row_texts(cols, json=True)
        stream.write(
            sep + ",\n".join("[" + ", ".join(r) + "]" for r in zip(*texts, strict=True))
        )
        sep = ",\n"
    stream.write("\n]}\n")


#: Name of the event file ``--tensorboard`` writes (one fixed name: a re-run replaces it).
TENSORBOARD_FILE = "events.out.tfevents.0000000000.cfgsched-lr"


def _same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Elementwise equality with NaN equal to NaN."""
    out: npt.NDArray[np.bool_] = (a == b) | (np.isnan(a) & np.isnan(b))
    return out


def run_ends(chunks: Chunks) -> Iterator[tuple[I64, F32]]:
    """``(steps, lrs)`` of the first and the last step of every run of equal float32 LR
    in a full series' ``chunks``, in order: the line through them is the per-step
    series (every other step lies on a flat segment)."""
    held: tuple[int, float, bool] | None = (
        None  # last row seen, and whether it starts a run
    )
    for cols in chunks():
        steps, lr = cols[0], np.asarray(cols[3], dtype=np.float32)
        assert steps is not None
        first0 = True
        if held is not None:
            steps = np.concatenate(([held[0]], steps))
            lr = np.concatenate((np.asarray([held[1]], dtype=np.float32), lr))
            first0 = held[2]
        new = ~_same(lr[1:], lr[:-1])  # row k + 1 starts a run
        keep = np.concatenate(([first0], new)) | np.concatenate((new, [False]))
        keep[-1] = False  # the last row waits for the next chunk
        yield steps[keep], lr[keep]
        held = (int(steps[-1]), float(lr[-1]), bool(new[-1]) if new.size else first0)
    if held is not None:
        yield np.asarray([held[0]], dtype=np.int64), np.asarray([held[1]], np.float32)


def _scalar_events(s: LRSeries, tag: str) -> Iterator[tuple[str, I64, F32]]:
    """``(tag, steps, values)`` to write for ``s``."""
    if s.resolution == "full":
        for steps, lrs in run_ends(s.chunks):
            yield tag, steps, lrs
        return
    for cols in s.chunks():
        first, lo, hi = cols[0], cols[6], cols[7]
        assert first is not None and lo is not None and hi is not None
        yield f"{tag}_min", first, lo.astype(np.float32)
        yield f"{tag}_max", first, hi.astype(np.float32)


def write_tensorboard(stream: Any, s: LRSeries, tag: str) -> int:
    """Write ``s`` as TensorBoard scalar events to the binary ``stream`` (an event file);
    return how many scalars were written.

    ``global_step`` is the 0-based optimizer step. A full series writes ``tag`` at the
    first and last step of every run of equal LR (:func:`run_ends`); an envelope writes
    ``tag``\\ ``_min`` and ``tag``\\ ``_max`` at the first step of each column. Values are
    float32 (TensorBoard's ``simple_value``). ImportError without ``tensorboard``.
    """
    import time

    from tensorboard.compat.proto import event_pb2  # type: ignore[import-untyped]
    from tensorboard.summary.writer.record_writer import (  # type: ignore[import-untyped]
        RecordWriter,
    )

    now = time.time()
    out = RecordWriter(stream)
    meta = event_pb2.SourceMetadata(writer="cfgsched plot")
    out.write(
        event_pb2.Event(
            wall_time=now, file_version="brain.Event:2", source_metadata=meta
        ).SerializeToString()
    )
    count = 0
    for name, steps, values in _scalar_events(s, tag):
        event = event_pb2.Event(wall_time=now)
        value = event.summary.value.add(tag=name)
        for i, v in zip(steps.tolist(), values.tolist(), strict=True):
            event.step = i
            value.simple_value = v
            out.write(event.SerializeToString())
        count += steps.size
    return count
