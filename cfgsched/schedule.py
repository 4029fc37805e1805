"""The typed schedule: every ``[net]`` value as darknet stores it after parsing."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from cfgsched.errors import CfgWarning
from cfgsched.kernel import formulas as _kernel

#: Fork names; the index of each is its ``_kernel.FORK_*`` code.
FORKS: tuple[str, ...] = ("alexeyab", "pjreddie", "hankai")
DEFAULT_FORK = "alexeyab"

#: JSON schema name written by :meth:`NetSchedule.to_dict`.
SCHEMA = "cfgsched-schedule/1"

#: Warning codes recorded by the reader (``P``) on ``NetSchedule.warnings``; lint adds its own.
WARNING_CODES: dict[str, str] = {
    "P001": "unknown policy: darknet goes on with constant",
    "P002": "'#' inside a value: C forks have no inline comments",
    "P003": "empty value: darknet keeps the default",
    "P004": "number read only up to its first bad character (atoi/atof prefix)",
    "P005": "duplicate key: the first occurrence wins",
    "P006": "more scales than steps: the extra ones are ignored",
    "P007": "trailing comma in steps and scales: adds step 0 with scale 0 (LR becomes 0)",
    "P008": "random policy: darknet's draws are not reproducible",
    "P009": "batch is not a multiple of subdivisions (or smaller): images per iteration change",
    "P010": "key that the fork ignores in [net] for this policy",
    "P011": "integer key given with a fraction: truncated",
    "P012": "line without '=' ignored",
    "P013": "fewer scales than steps: hankai pads with 0.0 (LR becomes 0)",
    "P014": "integer above 2^24 read through float32 by hankai: value changes",
    "P015": "unknown [net] key: the fork never reads it (a close known key is suggested)",
}


class Policy(enum.IntEnum):
    """darknet's ``learning_rate_policy`` enum (same integer values as the C code)."""

    CONSTANT = 0
    STEP = 1
    EXP = 2
    POLY = 3
    STEPS = 4
    SIG = 5
    RANDOM = 6
    SGDR = 7

    @property
    def cfg_name(self) -> str:
        """The name written in a cfg (``sigmoid`` for SIG)."""
        return "sigmoid" if self is Policy.SIG else self.name.lower()


f32 = _kernel.f32


@dataclass(frozen=True)
class LayerLR:
    """A layer's own ``learning_rate=`` multiplier (``index`` counts layers from 0)."""

    index: int
    section: str
    multiplier: float
    line: int


@dataclass(frozen=True)
class LayerKeys:
    """A layer's training keys as the fork reads them (0: not given): ``index`` from 0
    after ``[net]``; ``weights``: darknet's update changes its weights; ``lines``: key ->
    1-based line of each key given."""

    index: int
    section: str
    line: int
    weights: bool
    stopbackward: int = 0
    onlyforward: int = 0
    dont_update: int = 0
    burnin_update: int = 0
    train_only_bn: int = 0
    learning_rate: float = 1.0
    lines: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class NetSchedule:
    """Every learning-rate related ``[net]`` value exactly as the fork stores it (floats
    as float32; keys the fork does not read for the policy keep what it leaves in memory,
    0 for C forks); ``lines``: each key read -> its 1-based line in ``source``."""

    fork: str = DEFAULT_FORK
    policy: Policy = Policy.CONSTANT
    policy_name: str = "constant"
    learning_rate: float = f32(0.001)
    momentum: float = f32(0.9)
    decay: float = f32(0.0001)
    burn_in: int = 0
    power: float = 4.0
    step: int = 0
    scale: float = 0.0
    gamma: float = 0.0
    max_batches: int = 0
    learning_rate_min: float = f32(0.00001)
    sgdr_cycle: int = 0
    sgdr_mult: int = 2
    steps: tuple[int, ...] = ()
    scales: tuple[float, ...] = ()
    batch: int = 1
    subdivisions: int = 1
    mini_batch: int = 1
    time_steps: int = 1
    adam: bool = False
    b1: float = f32(0.9)
    b2: float = f32(0.999)
    eps: float = f32(0.000001)
    classes: int | None = None
    layer_lrs: tuple[LayerLR, ...] = ()
    layers: tuple[LayerKeys, ...] = ()
    warnings: tuple[CfgWarning, ...] = ()
    lines: Mapping[str, int] = field(default_factory=dict)
    source: str = "<string>"

    @property
    def images_per_iteration(self) -> int:
        """Images per darknet iteration: the divisor of ``seen`` (mini-batch × subdivisions)."""
        return self.mini_batch * self.subdivisions

    def kernel_params(self, seed: int = 0) -> _kernel.Params:
        """The numbers :func:`cfgsched.kernel.formulas.rate` needs (``seed`` drives ``random``)."""
        same = "power burn_in step scale gamma max_batches sgdr_cycle sgdr_mult steps scales"
        return _kernel.Params(
            fork=FORKS.index(self.fork) if self.fork in FORKS else 0,
            policy=int(self.policy),
            lr=self.learning_rate,
            lr_min=self.learning_rate_min,
            seed=seed,
            **{k: getattr(self, k) for k in same.split()},
        )

    def line_of(self, key: str) -> int | None:
        """1-based line of ``key`` in the source, or None when it was not given."""
        return self.lines.get(key)

    def with_values(self, **changes: Any) -> NetSchedule:
        """A copy with ``changes`` applied; float values are rounded to float32."""
        floats = {f.name for f in fields(self) if f.type in ("float", float)}
        fixed: dict[str, Any] = {
            k: (f32(float(v)) if k in floats else v) for k, v in changes.items()
        }
        if "scales" in fixed:
            fixed["scales"] = tuple(f32(float(s)) for s in fixed["scales"])
        if "policy" in fixed and "policy_name" not in fixed:
            fixed["policy_name"] = Policy(fixed["policy"]).cfg_name
        return replace(self, **fixed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (schema :data:`SCHEMA`); floats are exact float32 values."""
        d = asdict(self)
        d["policy"] = self.policy.name
        d["lines"] = dict(self.lines)
        d["steps"] = list(self.steps)
        d["scales"] = list(self.scales)
        d["images_per_iteration"] = self.images_per_iteration
        return {"schema": SCHEMA, **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetSchedule:
        """Inverse of :meth:`to_dict`."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={data.get('schema')!r})")
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["policy"] = Policy[kw["policy"]]
        kw["steps"] = tuple(int(s) for s in kw.get("steps", ()))
        kw["scales"] = tuple(float(s) for s in kw.get("scales", ()))
        kw["layer_lrs"] = tuple(LayerLR(**x) for x in kw.get("layer_lrs", ()))
        kw["layers"] = tuple(
            LayerKeys(**{**x, "lines": tuple(map(tuple, x["lines"]))})
            for x in kw.get("layers", ())
        )
        kw["warnings"] = tuple(CfgWarning(**x) for x in kw.get("warnings", ()))
        kw["lines"] = dict(kw.get("lines", {}))
        return cls(**kw)
