"""Which optimizer steps a translated darknet run trains: the span diff and lint check.

darknet's run is ``max_batches`` iterations of ``images_per_iteration`` images. Under a
translation with ``T`` images per optimizer step, step ``i`` trains when darknet has not
finished its run before it: ``i·T < max_batches·images_per_iteration``, so the run has
``⌈max_batches·I / T⌉`` steps. That is ``max_batches`` for one GPU and ``⌈max_batches / n⌉``
for ``-gpus n`` (darknet's own loop count: it runs while its counter is below
``max_batches``). With ``multigpu="trace"`` the run is GPU 0's loop iterations. A resumed run
starts at ``translation.start``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import boundaries
from cfgsched.kernel.mgpu import MgpuConfig, mgpu_batches
from cfgsched.oracle import translation_batches
from cfgsched.schedule import NetSchedule
from cfgsched.translation import (
    Options,
    Translation,
    steps_for,
    trained_schedule,
    translate,
)

I64 = npt.NDArray[np.int64]

#: Batches covered when ``max_batches`` is 0 and no boundary says how long training is.
DEFAULT_SPAN = 1000


@dataclass(frozen=True)
class TrainingRun:
    """Steps ``start .. stop - 1`` of ``translation`` are darknet's run (``schedule`` is the
    schedule trained, AlexeyAB's advice applied). ``note`` says when ``max_batches`` is 0
    and a span of ``span_batches`` batches stands in for the run."""

    schedule: NetSchedule
    translation: Translation
    start: int
    stop: int
    note: str = ""

    @property
    def steps(self) -> int:
        """Optimizer steps the (resumed) run trains."""
        return max(self.stop - self.start, 0)

    def batches(self, steps: I64) -> I64:
        """darknet's batch number of each 0-based optimizer step in ``steps``."""
        return translation_batches(self.translation, np.asarray(steps, dtype=np.int64))

    def batch(self, step: int) -> int:
        """darknet's batch number of one optimizer step."""
        return self.translation.batch(step)

    def first_step(self, b: int) -> int:
        """The first optimizer step whose batch is ``>= b`` (0 for ``b <= 0``; past the
        run for a trace it counts on at ``n`` batches per step)."""
        t = self.translation
        if not t.trace:
            return max(-(-b * t.images_per_iteration // t.images_per_step) - 1, 0)
        seq = self._trace
        top = np.maximum.accumulate(seq) if seq.size else seq
        k = int(np.searchsorted(top, b, side="left"))
        if k < top.size:
            return k
        last = int(seq[-1]) if seq.size else 0
        return seq.size + max(-(-(b - last) // t.ngpus) - 1, 0)

    @cached_property
    def _trace(self) -> I64:
        """GPU 0's batches over darknet's whole run (a trace translation)."""
        return np.asarray(_trace_batches(self.translation), dtype=np.int64)


def _trace_batches(t: Translation) -> list[int]:
    p = t.params
    cfg = MgpuConfig(p.fork, t.ngpus, p.max_batches, p.burn_in, t.scratch)
    return mgpu_batches(cfg)[0]


def training_run(schedule: NetSchedule, options: Options | None = None) -> TrainingRun:
    """The steps of ``schedule``'s run under ``options`` (ValueError when the schedule
    cannot be translated, e.g. fewer than one image per iteration)."""
    o = Options() if options is None else options
    t = translate(schedule, o)
    trained = trained_schedule(schedule, o)
    mb = schedule.max_batches
    note = ""
    if mb > 0:
        stop = len(_trace_batches(t)) if t.trace else steps_for(t, mb)
    else:
        marks, _ = boundaries(trained, 1, 1 << 40, limit=8)
        last = max([m.batch for m in marks] + [0])
        span = max(DEFAULT_SPAN, 2 * last)
        stop = max(steps_for(t, span), 1)
        note = f"max_batches is {mb}: compared the first {span} batches instead"
    return TrainingRun(trained, t, t.start, stop, note)
