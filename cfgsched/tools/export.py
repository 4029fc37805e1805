"""The LR series of ``plot``'s range (:func:`export_series`: every optimizer step, or the
figure's min/max envelope) written as CSV, JSON or TensorBoard scalars."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.text import counted, fmt
from cfgsched.tools import plot
from cfgsched.tools.plot import F32, F64, I64
from cfgsched.tools.plot_choices import SERIES_SCHEMA

#: Rows at full resolution (one per optimizer step) at most; beyond, the envelope.
EXPORT_LIMIT = 5_000_000
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


@dataclass(frozen=True)
class LRSeries:
    """The LR of one translated run, ``resolution`` "full" (per step) or "envelope"."""

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


def _row_texts(
    cols: tuple[npt.NDArray[Any] | None, ...], json: bool
) -> list[list[str]]:
    """The text of every cell of a chunk, column by column: ints, floats' shortest
    round-trip text, nan/inf/-inf (quoted for JSON), an empty column."""
    n = next(c.size for c in cols if c is not None)
    q = '"' if json else ""
    out = []
    for c in cols:
        if c is None:
            out.append(["null" if json else ""] * n)
        else:  # ints and finite floats: repr (the shortest round-trip text)
            u, inv = np.unique(c, return_inverse=True)
            texts = [
                repr(x) if math.isfinite(x) else f"{q}{fmt(x)}{q}" for x in u.tolist()
            ]
            out.append([texts[k] for k in inv.ravel().tolist()])
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
        " and the smallest and largest finite LR of its steps (nan: none)"
    )


def _epoch_text(s: LRSeries) -> str:
    if not s.images:
        return "epoch: empty (pass --images N, the images in the data set)"
    return (
        f"epoch: images darknet has seen at the batch (batch x "
        f"{s.images_per_iteration}) / {counted(s.images, 'image')}"
    )


def write_csv(stream: Any, s: LRSeries) -> None:
    """``s`` as CSV: ``#`` comment lines, a header line, then one line per row."""
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
    head: dict[str, Any] = {"schema": SERIES_SCHEMA, "cfg": s.cfg, "fork": s.fork}
    head.update(options=s.options, resolution=s.resolution)
    head.update(resolution_text=_resolution_text(s), limit=EXPORT_LIMIT)
    head.update(images=s.images, epoch=_epoch_text(s))
    head.update(notes=list(s.notes), columns=list(s.columns))
    stream.write(json.dumps(head)[:-1] + ', "rows": [')
    sep = "\n"
    for cols in s.chunks():
        rows = zip(*_row_texts(cols, json=True), strict=True)
        stream.write(sep + ",\n".join("[" + ", ".join(r) + "]" for r in rows))
        sep = ",\n"
    stream.write("\n]}\n")


def run_ends(chunks: Chunks) -> Iterator[tuple[I64, F32]]:
    """``(steps, lrs)`` of the first and last step of every run of equal float32 LR."""
    held: tuple[int, float, bool] | None = None  # last row seen; does it start a run
    for cols in chunks():
        steps, lr = cols[0], np.asarray(cols[3], dtype=np.float32)
        assert steps is not None
        first0 = True
        if held is not None:
            steps = np.concatenate(([held[0]], steps))
            lr = np.concatenate((np.asarray([held[1]], dtype=np.float32), lr))
            first0 = held[2]
        new = (lr[1:] != lr[:-1]) & ~(np.isnan(lr[1:]) & np.isnan(lr[:-1]))
        keep = np.concatenate(([first0], new)) | np.concatenate((new, [False]))
        keep[-1] = False  # the last row waits for the next chunk
        yield steps[keep], lr[keep]
        held = (int(steps[-1]), float(lr[-1]), bool(new[-1]) if new.size else first0)
    if held is not None:
        yield np.asarray([held[0]], dtype=np.int64), np.asarray([held[1]], np.float32)


def write_tensorboard(stream: Any, s: LRSeries, tag: str) -> int:
    """Write ``s`` as TensorBoard scalars (step: optimizer step; an envelope as
    ``tag``_min and ``tag``_max at each column's first step); how many were written."""
    from tensorboard.compat.proto import event_pb2  # type: ignore[import-untyped]
    from tensorboard.summary.writer.record_writer import (  # type: ignore[import-untyped]
        RecordWriter,
    )

    now, out = time.time(), RecordWriter(stream)
    meta = event_pb2.SourceMetadata(writer="cfgsched plot")
    head = {"wall_time": now, "file_version": "brain.Event:2", "source_metadata": meta}
    out.write(event_pb2.Event(**head).SerializeToString())
    scalars: list[tuple[str, Any, Any]]  # float32 LRs (an envelope's lo, hi are too)
    if s.resolution == "full":
        scalars = [(tag, steps, lrs) for steps, lrs in run_ends(s.chunks)]
    else:  # columns 0, 6, 7: step_first, lr_min, lr_max
        pairs = (("min", 6), ("max", 7))
        scalars = [(f"{tag}_{m}", c[0], c[k]) for c in s.chunks() for m, k in pairs]
    for name, steps, values in scalars:
        event = event_pb2.Event(wall_time=now)
        value = event.summary.value.add(tag=name)
        for i, v in zip(steps.tolist(), values.tolist(), strict=True):
            event.step = i
            value.simple_value = v
            out.write(event.SerializeToString())
    return sum(steps.size for _, steps, _ in scalars)


def export_series(
    variant: plot.Variant,
    *,
    first: int | None = None,
    last: int | None = None,
    x: str = "batches",
    images: int | None = None,
) -> LRSeries:
    """``variant``'s series: a row per optimizer step of the range, or its envelope."""
    src, lo, hi, notes = plot.step_range(variant, first, last, x, images)
    t, ipi, rows, res = src.t, src.t.images_per_iteration, max(hi - lo + 1, 0), "full"

    def epochs(b: I64) -> F64 | None:
        """Images darknet has seen at batches ``b`` (b × cfg batch) / ``images``."""
        return b.astype(np.float64) * ipi / images if images else None

    def chunks() -> Iterator[tuple[npt.NDArray[Any] | None, ...]]:
        for s0 in range(lo, hi + 1, ROWS_CHUNK):
            steps = np.arange(s0, min(s0 + ROWS_CHUNK, hi + 1), dtype=np.int64)
            b = t.batches(steps)
            yield steps, b, epochs(b), t.batch_lrs(b)

    if rows > EXPORT_LIMIT:
        env = plot.envelope(src.values, lo, hi, extra=src.extra(lo, hi))
        if env.sampled:
            notes.append(plot.SAMPLED_NOTE)
        b0, b1 = t.batches(env.start), t.batches(env.stop - 1)
        cols = (env.start, env.stop - 1, b0, b1, epochs(b0), epochs(b1), env.lo, env.hi)
        rows, res, chunks = int(env.start.size), "envelope", lambda: iter([cols])
    s, opts = variant.schedule, variant.options.to_record()
    return LRSeries(s.source, s.fork, opts, res, rows, chunks, images, ipi, (*notes,))
