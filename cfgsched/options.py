"""The translation choices: one frozen :class:`Options` value, validated here and only here,
recorded whole (:meth:`Options.to_record`) so that ``diff`` checks what ``convert`` wrote."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, get_args, get_type_hints

#: Schema name of :meth:`Options.to_record` (the record generated modules carry).
RECORD_SCHEMA = "cfgsched-translation-options/1"
#: ``multigpu=`` choices: darknet batch ``(i + 1)·n`` (the DDP intent) or GPU 0's real sequence.
MULTIGPU_MODES = ("images", "trace")
#: ``build=`` choices: the darknet build whose layer rules apply (docs/design.md, layers).
BUILDS = ("gpu", "cpu")
_CHOICES = {"multigpu": MULTIGPU_MODES, "build": BUILDS}
#: Inclusive bounds of the integer options (darknet's counters are int64 at most).
BOUNDS = {
    "ngpus": (1, 1 << 20),
    "images_per_step": (1, 1 << 62),
    "resume_iteration": (0, 1 << 62),
    "seed": (0, (1 << 64) - 1),
}
#: How the library's messages name what is not an :class:`Options` field.
WORDS = {"double": "exact=False", "trace": "multigpu='trace'"}


def default_flush(fork: str) -> bool:
    """Whether the fork's release build flushes subnormals to zero: alexeyab and pjreddie
    link with ``-Ofast`` (crtfastmath); hank-ai's CMake build compiles but links without it."""
    return fork != "hankai"


class OptionError(ValueError):
    """An invalid option or combination; :meth:`worded` names the options as a caller does."""

    def __init__(self, template: str, **values: object) -> None:
        self.template, self.values = template, values
        super().__init__(self.worded(WORDS))

    def worded(self, words: Mapping[str, str]) -> str:
        """The message with each option named by ``words`` (missing names: library's)."""
        names = {f.name: f.name for f in fields(Options)} | WORDS | dict(words)
        return self.template.format_map(names | self.values)


@dataclass(frozen=True)
class Options:
    """Every choice of a translation; a bad value or combination raises
    :class:`OptionError` (a ValueError), a wrong type TypeError."""

    exact: bool = True  # darknet's float32 arithmetic (False: the formulas in double)
    flush: bool | None = None  # a release build's flush-to-zero (None: default_flush)
    ngpus: int = 1  # darknet -gpus N
    multigpu: str = "images"  # step i at b = (i + 1)·N, or "trace": GPU 0's batches
    scratch: bool = False  # a trace run without a weights file
    images_per_step: int | None = None  # torch batch × accumulation × world size
    ideal: bool = False  # AlexeyAB's advice for N GPUs first
    resume_iteration: int | None = None  # darknet's iteration where training resumes
    seed: int = 0  # draws of the random policy
    build: str = "gpu"  # the darknet build whose per-layer rules apply

    def __post_init__(self) -> None:
        for f in fields(self):
            value, want = getattr(self, f.name), _TYPES[f.name]
            if not isinstance(value, want) or (
                isinstance(value, bool) and bool not in want
            ):
                names = " or ".join(t.__name__ for t in want)
                raise TypeError(f"{f.name}: expected {names}, got {value!r}")
            lo, hi = BOUNDS.get(f.name, (0, 0))
            choices = _CHOICES.get(f.name, (value,))
            if lo != hi and isinstance(value, int) and not lo <= value <= hi:
                rule = f">= {lo}" if value < lo else f"<= {hi:,}"
            elif value not in choices:
                rule = " or ".join(map(repr, choices))
            else:
                continue
            raise OptionError(f"{{{f.name}}} must be {rule}, got {{got!r}}", got=value)
        trace = self.multigpu == "trace"
        for bad, template in (
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
        ):
            if bad:
                raise OptionError(template)

    def flushes(self, fork: str) -> bool:
        """Whether results below float32's normal range are flushed to 0 for ``fork``."""
        if not self.exact:
            return False
        return default_flush(fork) if self.flush is None else self.flush

    def to_record(self) -> dict[str, Any]:
        """The options as plain values, ``schema`` first (``build`` only when not "gpu")."""
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


_TYPES = {
    name: get_args(hint) or (hint,) for name, hint in get_type_hints(Options).items()
}
