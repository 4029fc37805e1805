"""The translation: how 0-based optimizer step i maps to darknet batch b and base rate.

One frozen, validated :class:`Options` value holds every choice (arithmetic, release-build
flushing, ``-gpus`` count and mode, images per step, AlexeyAB's advice, resume point);
:func:`translate` binds it to a schedule. Every command, scheduler and output format takes
the options whole and records them (:meth:`Options.to_record`), so that what ``convert``
wrote can be checked by ``diff`` without repeating anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from cfgsched.errors import CfgError
from cfgsched.kernel.position import MULTIGPU_MODES, Translation, make_translation
from cfgsched.schedule import FORKS, NetSchedule

__all__ = [
    "MULTIGPU_MODES",
    "RECORD_SCHEMA",
    "Options",
    "Translation",
    "advised",
    "default_flush",
    "steps_for",
    "translate",
]

#: Schema name of :meth:`Options.to_record` (the record generated modules carry).
RECORD_SCHEMA = "cfgsched-translation-options/1"


def default_flush(fork: str) -> bool:
    """Whether the fork's default release build flushes subnormal results to zero.

    alexeyab and pjreddie link with ``-Ofast`` (crtfastmath sets flush-to-zero); hank-ai's
    CMake release build compiles with ``-Ofast`` but links without it, so it does not flush.
    """
    return fork != "hankai"


@dataclass(frozen=True)
class Options:
    """Every choice of a translation; invalid or meaningless combinations raise ValueError.

    - ``exact``: darknet's float32 arithmetic (False: the same formulas in double).
    - ``flush``: a release build's flush-to-zero (None: the fork's default build,
      :func:`default_flush`).
    - ``ngpus``, ``multigpu``, ``scratch``: a ``darknet -gpus N`` run; ``"images"`` puts
      step i at b = (i + 1)·N, ``"trace"`` follows GPU 0's real sequence (``scratch``:
      hankai's single-GPU burn-in of a run without a weights file).
    - ``images_per_step``: images one optimizer step consumes (torch batch × accumulation ×
      world size); step i is at b = ⌊(i + 1)·T / images_per_iteration⌋.
    - ``ideal``: AlexeyAB's advice for N GPUs first (learning_rate / N, burn_in × N).
    - ``resume_iteration``: darknet's iteration where training resumes (from a ``.weights``
      file: seen // images per iteration); the scheduler starts after those images.
    - ``seed``: draws of the ``random`` policy.
    """

    exact: bool = True
    flush: bool | None = None
    ngpus: int = 1
    multigpu: str = "images"
    scratch: bool = False
    images_per_step: int | None = None
    ideal: bool = False
    resume_iteration: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self._check_types()
        if self.ngpus < 1:
            raise ValueError(f"ngpus must be >= 1, got {self.ngpus}")
        if self.multigpu not in MULTIGPU_MODES:
            raise ValueError(
                f"multigpu must be one of {MULTIGPU_MODES}, got {self.multigpu!r}"
            )
        trace = self.multigpu == "trace"
        if self.scratch and not trace:
            raise ValueError("scratch applies to multigpu='trace' only")
        if trace and self.images_per_step is not None:
            raise ValueError(
                "multigpu='trace' follows darknet's own iterations: no images_per_step"
            )
        if trace and self.resume_iteration:
            raise ValueError(
                "multigpu='trace' covers runs from scratch only: no resume"
            )
        if self.images_per_step is not None and self.images_per_step < 1:
            raise ValueError(
                f"images_per_step must be >= 1, got {self.images_per_step}"
            )
        if self.ideal and self.ngpus < 2:
            raise ValueError(
                "ideal needs ngpus > 1 (it is AlexeyAB's advice for N GPUs)"
            )
        if self.resume_iteration is not None and self.resume_iteration < 0:
            raise ValueError(
                f"resume_iteration must be >= 0, got {self.resume_iteration}"
            )
        if self.flush and not self.exact:
            raise ValueError(
                "flush applies to darknet's float32 arithmetic: not with exact=False"
            )

    def _check_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            want: tuple[type, ...] = {
                "exact": (bool,),
                "flush": (bool, type(None)),
                "scratch": (bool,),
                "ideal": (bool,),
                "multigpu": (str,),
                "images_per_step": (int, type(None)),
                "resume_iteration": (int, type(None)),
            }.get(f.name, (int,))
            bad_bool = isinstance(value, bool) and bool not in want
            if not isinstance(value, want) or bad_bool:
                raise TypeError(
                    f"{f.name}: expected {' or '.join(t.__name__ for t in want)}, "
                    f"got {value!r}"
                )

    def flushes(self, fork: str) -> bool:
        """Whether results below float32's normal range are flushed to 0 for ``fork``."""
        if not self.exact:
            return False
        return default_flush(fork) if self.flush is None else self.flush

    def to_record(self) -> dict[str, Any]:
        """The options as plain values (``schema`` first), what generated modules record."""
        return {"schema": RECORD_SCHEMA, **asdict(self)}

    @classmethod
    def from_record(cls, record: Any) -> Options:
        """Inverse of :meth:`to_record`; a malformed record raises ValueError."""
        if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
            raise ValueError(f"not a {RECORD_SCHEMA} record")
        names = {f.name for f in fields(cls)}
        extra = sorted(set(record) - names - {"schema"})
        if extra:
            raise ValueError(f"unknown translation option(s): {', '.join(extra)}")
        try:
            return cls(**{k: v for k, v in record.items() if k != "schema"})
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def differences(self, other: Options) -> list[str]:
        """``name: mine vs theirs`` for every option that differs (empty when equal)."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} vs {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def advised(schedule: NetSchedule, ngpus: int) -> NetSchedule:
    """AlexeyAB's README advice for ``ngpus`` GPUs: ``learning_rate / n`` (float32) and
    ``burn_in * n``, which undoes the fork's ``learning_rate *= n`` (alexeyab, pjreddie;
    hankai does not multiply, so there the advice lowers the LR)."""
    if ngpus < 1:
        raise ValueError(f"ngpus must be >= 1, got {ngpus}")
    return schedule.with_values(
        learning_rate=schedule.learning_rate / ngpus,
        burn_in=schedule.burn_in * ngpus,
    )


def trained_schedule(schedule: NetSchedule, options: Options) -> NetSchedule:
    """The schedule darknet trains with under ``options`` (``ideal`` applied, LR not scaled)."""
    return advised(schedule, options.ngpus) if options.ideal else schedule


def translate(schedule: NetSchedule, options: Options | None = None) -> Translation:
    """Bind ``options`` to ``schedule``: the step → batch → LR mapping every tool uses."""
    if not isinstance(schedule, NetSchedule):
        raise TypeError(f"expected a NetSchedule, got {type(schedule).__name__}")
    o = Options() if options is None else options
    s = trained_schedule(schedule, o)
    if s.images_per_iteration < 1:
        key = "subdivisions" if s.line_of("subdivisions") is not None else "batch"
        raise CfgError(
            s.source,
            s.line_of(key),
            key,
            f"{s.images_per_iteration} images per iteration (batch {s.batch}, "
            f"subdivisions {s.subdivisions}): darknet counts batches as seen images / "
            "images per iteration, so there is no schedule to translate",
        )
    return make_translation(
        s.kernel_params(o.seed),
        s.images_per_iteration,
        exact=o.exact,
        flush=o.flushes(schedule.fork if schedule.fork in FORKS else "alexeyab"),
        ngpus=o.ngpus,
        multigpu=o.multigpu,
        images_per_step=o.images_per_step,
        scratch=o.scratch,
        resume_iteration=o.resume_iteration or 0,
    )


def steps_for(t: Translation, batches: int) -> int:
    """Optimizer steps that cover darknet's first ``batches`` iterations under ``t``: the
    steps that start before ``batches × images_per_iteration`` images are used up
    (⌈batches / n⌉ for a ``-gpus n`` run, darknet's own loop count)."""
    if batches <= 0:
        return 0
    if t.trace:
        return -(-batches // t.ngpus)
    return -(-batches * t.images_per_iteration // t.images_per_step)
