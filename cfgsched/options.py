"""The translation choices: one frozen :class:`Options` value, validated here and only here.

Every command, scheduler and output format takes the options whole and records them
(:meth:`Options.to_record`), so that what ``convert`` wrote can be checked by ``diff``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = [
    "BUILDS",
    "MULTIGPU_MODES",
    "RECORD_SCHEMA",
    "WORDS",
    "OptionError",
    "Options",
    "default_flush",
]

#: Schema name of :meth:`Options.to_record` (the record generated modules carry).
RECORD_SCHEMA = "cfgsched-translation-options/1"
#: ``multigpu=`` choices: darknet batch ``(i + 1)·n`` (the DDP intent) or GPU 0's real sequence.
MULTIGPU_MODES = ("images", "trace")
#: ``build=`` choices: the darknet build whose layer rules apply (docs/design.md, layers).
BUILDS = ("gpu", "cpu")
#: Inclusive bounds of the integer options (darknet's counters are int64 at most).
BOUNDS = {
    "ngpus": (1, 1 << 20),
    "images_per_step": (1, 1 << 62),
    "resume_iteration": (0, 1 << 62),
    "seed": (0, (1 << 64) - 1),
}
#: How the rules name each option in the library; the command line passes its flags.
WORDS = {
    "exact": "exact",
    "double": "exact=False",
    "flush": "flush",
    "ngpus": "ngpus",
    "multigpu": "multigpu",
    "trace": "multigpu='trace'",
    "scratch": "scratch",
    "images_per_step": "images_per_step",
    "ideal": "ideal",
    "resume_iteration": "resume_iteration",
    "seed": "seed",
    "build": "build",
}


def default_flush(fork: str) -> bool:
    """Whether the fork's default release build flushes subnormal results to zero.

    alexeyab and pjreddie link with ``-Ofast`` (crtfastmath sets flush-to-zero); hank-ai's
    CMake release build compiles with ``-Ofast`` but links without it, so it does not flush.
    """
    return fork != "hankai"


class OptionError(ValueError):
    """An invalid option or combination; ``str()`` names options as the library does,
    :meth:`worded` as the caller does (``--gpus`` on the command line)."""

    def __init__(self, template: str, **values: object) -> None:
        self.template, self.values = template, values
        super().__init__(self.worded(WORDS))

    def worded(self, words: Mapping[str, str]) -> str:
        """The message with each option named by ``words`` (missing names: library's)."""
        return self.template.format_map({**WORDS, **words, **self.values})


_TYPES: dict[str, tuple[type, ...]] = {
    "exact": (bool,),
    "flush": (bool, type(None)),
    "scratch": (bool,),
    "ideal": (bool,),
    "multigpu": (str,),
    "build": (str,),
    "images_per_step": (int, type(None)),
    "resume_iteration": (int, type(None)),
}


@dataclass(frozen=True)
class Options:
    """Every choice of a translation; invalid or meaningless combinations raise
    :class:`OptionError` (a ValueError), wrong types TypeError.

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
    - ``build``: the darknet build (``"gpu"``, what users train with, or ``"cpu"``) whose
      per-layer rules (``stopbackward``, ...) apply; the LR is the same in both.
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
    build: str = "gpu"

    def __post_init__(self) -> None:
        for f in fields(self):
            value, want = getattr(self, f.name), _TYPES.get(f.name, (int,))
            if not isinstance(value, want) or (
                isinstance(value, bool) and bool not in want
            ):
                names = " or ".join(t.__name__ for t in want)
                raise TypeError(f"{f.name}: expected {names}, got {value!r}")
            lo, hi = BOUNDS.get(f.name, (0, 0))
            if lo != hi and isinstance(value, int) and not lo <= value <= hi:
                rule = f">= {lo}" if value < lo else f"<= {hi:,}"
                raise OptionError(
                    "{" + f.name + "} must be " + rule + ", got {got}", got=value
                )
        for bad, template in self._rules():
            if bad:
                raise OptionError(template, mode=self.multigpu, build_value=self.build)

    def _rules(self) -> list[tuple[bool, str]]:
        trace = self.multigpu == "trace"
        return [
            (
                self.multigpu not in MULTIGPU_MODES,
                "{multigpu} must be 'images' or 'trace', got {mode!r}",
            ),
            (
                self.build not in BUILDS,
                "{build} must be 'gpu' or 'cpu', got {build_value!r}",
            ),
            (self.scratch and not trace, "{scratch} needs {trace}"),
            (
                trace and self.images_per_step is not None,
                "{trace} follows darknet's own iterations: no {images_per_step}",
            ),
            (
                trace and self.resume_iteration is not None,
                "{trace} covers runs from scratch only: no {resume_iteration}",
            ),
            (
                self.ideal and self.ngpus < 2,
                "{ideal} needs {ngpus} > 1 (it is AlexeyAB's advice for N GPUs)",
            ),
            (
                bool(self.flush) and not self.exact,
                "{flush} is darknet's float32 arithmetic: not with {double}",
            ),
        ]

    def flushes(self, fork: str) -> bool:
        """Whether results below float32's normal range are flushed to 0 for ``fork``."""
        if not self.exact:
            return False
        return default_flush(fork) if self.flush is None else self.flush

    def to_record(self) -> dict[str, Any]:
        """The options as plain values (``schema`` first), what generated modules record;
        ``build`` only when it is not the default ``"gpu"`` (records older than it stay
        valid and modules of cfgs without layer rules unchanged)."""
        d = asdict(self)
        if d["build"] == "gpu":
            del d["build"]
        return {"schema": RECORD_SCHEMA, **d}

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
