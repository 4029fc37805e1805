"""The translated run: ``translate(schedule, options)``, built once per command. Step ``i``
(0-based) trains at batch ``b = (i + 1)·T // I`` (``T`` images per step, ``I`` per
iteration) or at GPU 0's batch in loop iteration ``i + 1`` (trace); vectorised methods
import numpy when called."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cfgsched.boundaries import boundaries
from cfgsched.errors import CfgError
from cfgsched.kernel.formulas import (
    HANKAI_GPUS,
    Params,
    f32,
    f32_decimal,
    flushed,
    ngpus_lr,
)
from cfgsched.kernel.formulas import MAX_BATCH as MAX_BATCH
from cfgsched.kernel.mgpu import MgpuConfig, mgpu_batches
from cfgsched.layers import LayerRule, layer_rules
from cfgsched.options import Options
from cfgsched.policies import rate
from cfgsched.policies.random import DRAWS
from cfgsched.schedule import NetSchedule, Policy

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    I64 = npt.NDArray[np.int64]
    LRs = npt.NDArray[np.float32] | npt.NDArray[np.float64]

#: Batches that stand in for the run when ``max_batches`` is 0 (at least; see Run.span).
DEFAULT_SPAN = 1000
#: GPU 0 loop iterations the tools follow at most (about 0.3 µs each).
TRACE_LIMIT = 4_000_000


def advised_schedule(schedule: NetSchedule, ngpus: int) -> NetSchedule:
    """AlexeyAB's README advice for ``n`` GPUs: ``learning_rate / n`` and ``burn_in * n``
    (undoes ``learning_rate *= n``; hankai does not multiply, so there it lowers the LR)."""
    if ngpus < 1:
        raise ValueError(f"ngpus must be >= 1, got {ngpus}")
    return schedule.with_values(
        learning_rate=schedule.learning_rate / ngpus, burn_in=schedule.burn_in * ngpus
    )


def mgpu_config(
    schedule: NetSchedule, ngpus: int, *, scratch: bool = False
) -> MgpuConfig:
    """The :class:`~cfgsched.kernel.mgpu.MgpuConfig` of ``schedule`` on ``ngpus`` GPUs."""
    if ngpus < 1:
        raise ValueError(f"ngpus must be >= 1, got {ngpus}")
    fork = schedule.kernel_params().fork
    return MgpuConfig(fork, ngpus, schedule.max_batches, schedule.burn_in, scratch)


class _Gpu0:
    """GPU 0's batch sequence, grown on demand: a run's one trace cache (not pickled)."""

    def __init__(self) -> None:
        self.seq: array[int] = array("q")
        self.complete = False
        self._top: Any = None

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return _Gpu0, ()

    def upto(self, cfg: MgpuConfig, count: int | None) -> array[int]:
        """The sequence with at least ``count`` entries (None: darknet's whole run)."""
        if not self.complete and (count is None or count > len(self.seq)):
            want = None if count is None else max(count, 2 * len(self.seq), 4096)
            batches = mgpu_batches(cfg, want)[0]
            self.seq = array("q", batches)
            self.complete = want is None or len(batches) < want
            self._top = None
        return self.seq

    def whole(self, cfg: MgpuConfig) -> I64:
        """The whole run as int64 (shares the sequence's memory)."""
        import numpy as np

        return np.frombuffer(self.upto(cfg, None), dtype=np.int64)

    def top(self, cfg: MgpuConfig) -> I64:
        """Running maximum of :meth:`whole` (for the first step reaching a batch)."""
        if self._top is None:
            import numpy as np

            self._top = np.maximum.accumulate(self.whole(cfg))
        return self._top  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Run:
    """``given``: the schedule as read; ``schedule``: as trained (``ideal``); ``params``: its
    numbers at the ``-gpus`` base rate; ``cfg_lr``: its ``learning_rate``; ``flush``: resolved."""

    given: NetSchedule
    schedule: NetSchedule
    options: Options
    params: Params
    cfg_lr: float
    images_per_iteration: int
    images_per_step: int
    exact: bool
    flush: bool
    trace: bool
    ngpus: int
    scratch: bool
    mgpu: MgpuConfig
    start: int
    _gpu0: _Gpu0 = field(default_factory=_Gpu0, init=False, compare=False, repr=False)

    def batch(self, step: int) -> int:
        """darknet's batch number ``b`` for the 0-based optimizer step ``step``."""
        if step < 0:
            raise ValueError(f"optimizer step must be >= 0, got {step}")
        if self.trace:  # past darknet's run b keeps growing by ngpus per step
            seq = self._gpu0.upto(self.mgpu, step + 1)
            if step < len(seq):
                return seq[step]
            return (seq[-1] if seq else 0) + (step + 1 - len(seq)) * self.ngpus
        return (step + 1) * self.images_per_step // self.images_per_iteration

    def lr(self, step: int) -> float:
        """darknet's learning rate for the 0-based optimizer step ``step`` (multiplier 1)."""
        return rate(self.params, self.batch(step), self.exact, self.flush)

    def batches(self, steps: I64) -> I64:
        """darknet's batch number of each 0-based optimizer step in ``steps`` (int64)."""
        import numpy as np

        s = np.asarray(steps, dtype=np.int64)
        if s.size and int(s.min()) < 0:
            raise ValueError(f"optimizer steps must be >= 0, got {int(s.min())}")
        top = int(s.max()) + 1 if s.size else 0
        if self.trace:
            seq = np.frombuffer(self._gpu0.upto(self.mgpu, top), dtype=np.int64)
            if top <= seq.size:
                return seq[s]
        elif top * self.images_per_step < 1 << 62:
            return (s + 1) * self.images_per_step // self.images_per_iteration
        return np.array([self.batch(int(i)) for i in s.flat]).reshape(s.shape)

    def lrs(self, steps: I64) -> LRs:
        """The LR of each 0-based optimizer step in ``steps`` (equal to :meth:`lr`)."""
        return self.batch_lrs(self.batches(steps))

    def batch_lrs(self, batches: I64) -> LRs:
        """darknet's LR at ``batches`` in this run's base rate and arithmetic."""
        from cfgsched.oracle import params_lr

        return params_lr(self.params, batches, exact=self.exact, flush=self.flush)

    def multiplier(self, initial_lr: float) -> float:
        """A group's initial lr / the cfg's learning_rate: exactly 1 for the cfg's own rate
        (float32 or as written) and when the cfg's rate is 0 or not finite."""
        ref = self.cfg_lr
        if f32(initial_lr) == ref or ref == 0 or not math.isfinite(ref):
            return 1.0
        return initial_lr / f32_decimal(ref)

    def first_step(self, b: int) -> int:
        """The first optimizer step whose batch is ``>= b`` (0 for ``b <= 1``)."""
        if not self.trace:
            return max(-(-b * self.images_per_iteration // self.images_per_step) - 1, 0)
        import numpy as np

        top = self._gpu0.top(self.mgpu)
        k = int(np.searchsorted(top, b, side="left"))
        return k if k < top.size else self._past_trace(b)[0]

    def landing_step(self, b: int) -> int | None:
        """The first optimizer step at exactly batch ``b``; None when none is (b = 3, -gpus 4)."""
        if not self.trace:
            i = self.first_step(b)
            return i if self.batch(i) == b else None
        import numpy as np

        hits = np.flatnonzero(self._gpu0.whole(self.mgpu) == b)
        if hits.size:
            return int(hits[0])
        i, at = self._past_trace(b)
        return i if at == b else None

    def _past_trace(self, b: int) -> tuple[int, int]:
        """The first step after darknet's trace at a batch ``>= b``, and its batch."""
        seq = self._gpu0.upto(self.mgpu, None)
        last = seq[-1] if seq else 0
        k = max(-(-(b - last) // self.ngpus), 1)
        return len(seq) + k - 1, last + k * self.ngpus

    def gpu0_batches(self, count: int) -> list[int]:
        """GPU 0's batches in the first ``count`` loop iterations (whatever ``multigpu`` is)."""
        return self._gpu0.upto(self.mgpu, count)[:count].tolist()

    @property
    def trace_too_long(self) -> bool:
        """The run follows GPU 0 over more than :data:`TRACE_LIMIT` loop iterations."""
        p = self.params
        loops = p.max_batches // self.ngpus + max(p.burn_in, 0)
        return self.trace and loops > TRACE_LIMIT

    @cached_property
    def layers(self) -> tuple[LayerRule, ...]:
        """darknet's per-layer rules in this run (layers in no rule train normally)."""
        o = self.options
        kw = dict(build=o.build, resume_iteration=o.resume_iteration, ngpus=o.ngpus)
        return layer_rules(self.schedule, **kw)

    @cached_property
    def span(self) -> tuple[int, str]:
        """``max_batches``, or when 0 twice the last boundary (>= DEFAULT_SPAN) and a note."""
        mb = self.schedule.max_batches
        if mb > 0:
            return mb, ""
        marks, _ = boundaries(self.schedule, 1, 1 << 40, limit=8)
        span = max(DEFAULT_SPAN, 2 * max([m.batch for m in marks] + [0]))
        why = f"max_batches is {mb}: the first {span:,} batches stand in for the run"
        return span, why

    @cached_property
    def stop(self) -> int:
        """One past the run's last optimizer step (darknet's loop count for a trace)."""
        if self.trace and self.schedule.max_batches > 0:
            return len(self._gpu0.upto(self.mgpu, None))
        last = self.span[0]
        if self.trace:
            return max(-(-last // self.ngpus), 1)
        return max(-(-last * self.images_per_iteration // self.images_per_step), 1)

    @property
    def steps(self) -> int:
        """Optimizer steps the (resumed) run trains."""
        return max(self.stop - self.start, 0)

    @property
    def note(self) -> str:
        """What stands in for the run's length when ``max_batches`` is 0 (else empty)."""
        return self.span[1]

    @property
    def mapping(self) -> str:
        """How step i maps to batch b, in words (``b = (i + 1)*4 (256 images per step)``)."""
        if self.trace:
            n = self.ngpus
            return (
                f"b = GPU 0's batch in loop iteration i + 1 of a -gpus {n} run (trace)"
            )
        ips, ipi = self.images_per_step, self.images_per_iteration
        if ips == ipi:
            return "b = i + 1"
        per = f"{ips:,} image{'' if ips == 1 else 's'} per step"
        if ips % ipi == 0:
            return f"b = (i + 1)*{ips // ipi} ({per})"
        return f"b = (i + 1)*{ips} // {ipi} ({per})"

    @property
    def notes(self) -> dict[str, str]:
        """What the translation does, in words, by topic (only those that apply): span,
        random, gpus, ideal, double, mapping, resume; each tool shows the ones it needs."""
        n, fork, o = self.ngpus, self.params.fork, self.options
        scaled = ngpus_lr(fork, 1.0, 2) != 1.0  # the fork's -gpus base-rate rule
        how = f"learning_rate × {n}" if scaled else HANKAI_GPUS
        b = self.batch(self.start) if self.start else 0
        out = {
            "span": self.note,
            "random": "policy=random: darknet draws rand() at every batch, which no one "
            f"can replay; the LRs here are {DRAWS} (Options.seed)",
            "gpus": f"-gpus {n}: {how}",
            "ideal": f"--ideal (AlexeyAB's advice for {n} GPUs): learning_rate / {n}, "
            f"burn_in × {n}",
            "double": "double arithmetic (not darknet's float32)",
            "mapping": f"optimizer step i at darknet batch {self.mapping}",
            "resume": f"resumes at step i = {self.start:,} (darknet batch b = {b:,})",
        }
        off = {
            "random": self.schedule.policy is not Policy.RANDOM,
            "gpus": n == 1,
            "ideal": not o.ideal,
            "double": self.exact,
            "resume": not self.start,
        }
        return {k: v for k, v in out.items() if v and not off.get(k)}

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data (checkpoints): the schedule as read and the options."""
        return {"schedule": self.given.to_dict(), "options": self.options.to_record()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        """Inverse of :meth:`to_dict`."""
        s = NetSchedule.from_dict(d["schedule"])
        return translate(s, Options.from_record(d["options"]))


def translate(schedule: NetSchedule, options: Options | None = None) -> Run:
    """The run of ``schedule`` under ``options``; CfgError without images per iteration."""
    o = Options() if options is None else options
    s = advised_schedule(schedule, o.ngpus) if o.ideal else schedule
    ipi = s.images_per_iteration
    if ipi < 1:
        key = "subdivisions" if s.line_of("subdivisions") is not None else "batch"
        why = f"{ipi} images per iteration (batch {s.batch}, subdivisions "
        why += f"{s.subdivisions}): darknet counts batches as seen images / images per "
        why += "iteration, so there is no schedule to translate"
        raise CfgError(s.source, s.line_of(key), key, why)
    p = s.kernel_params(o.seed)
    flush = o.flushes(s.fork)
    params = p._replace(lr=ngpus_lr(p.fork, p.lr, o.ngpus))
    ips = o.images_per_step or ipi * o.ngpus
    trace = o.multigpu == "trace"
    return Run(
        given=schedule,
        schedule=s,
        options=o,
        params=flushed(params) if flush else params,
        cfg_lr=p.lr,
        images_per_iteration=ipi,
        images_per_step=ips,
        exact=o.exact,
        flush=flush,
        trace=trace,
        ngpus=o.ngpus,
        scratch=o.scratch,
        mgpu=mgpu_config(s, o.ngpus, scratch=o.scratch),
        start=0 if trace else (o.resume_iteration or 0) * ipi // ips,
    )
