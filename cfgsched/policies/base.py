"""The hooks every policy module fills in (:class:`PolicyModule`) and the kits they use."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Protocol

from cfgsched.errors import NotExactError as NotExactError
from cfgsched.kernel.formulas import FORK_HANKAI, Params, f32, f32_text
from cfgsched.schedule import NetSchedule, Policy

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler

    from cfgsched.kernel.vector import F32s as F32s
    from cfgsched.kernel.vector import F64s as F64s
    from cfgsched.kernel.vector import I64s as I64s

#: ``add(batch, kind, label)`` of :func:`cfgsched.boundaries.boundaries`, and "list full".
Add = Callable[[int, str, str], None]
Full = Callable[[], bool]


class PolicyModule(Protocol):
    """A policy: its formula (scalar, numpy), boundaries, phases, code, native plans."""

    def rate(self, p: Params, b: int, exact: bool, flush: bool) -> float: ...
    def rates(self, p: Params, b: I64s, flush: bool) -> F32s: ...
    def boundaries(
        self, s: NetSchedule, lo: int, top: int, add: Add, full: Full
    ) -> int: ...
    def phases(self, x: Explainer, start: int, end: int | None) -> list[Phase]: ...
    def code(self, c: LrCode) -> None: ...
    def normal(self, p: Params) -> bool: ...
    def native(
        self, run: NativeRun, head: list[NativePart]
    ) -> list[list[NativePart]]: ...


#: With more plateaus or sgdr cycles than this, the middle ones are summarised.
MAX_LISTED = 8
HEAD, TAIL = 3, 2


@dataclass(frozen=True)
class Phase:
    """Batches ``first..last`` (None: open-ended) of one shape; ``step``: the first
    optimizer step at a batch ``>= first`` (None, with None LRs: not followed/none)."""

    kind: str
    first: int
    last: int | None
    lr_first: float | None
    lr_last: float | None
    note: str
    step: int | None = None


def same(a: float | None, b: float | None) -> bool:
    """Equal LRs (NaN equals NaN)."""
    return a == b or (
        a is not None and b is not None and math.isnan(a) and math.isnan(b)
    )


@dataclass(frozen=True)
class Explainer:
    """The schedule and its LRs, for a policy's :meth:`PolicyModule.phases`."""

    schedule: NetSchedule
    lrs: Callable[[Sequence[int]], list[float]]

    def span(self, kind: str, a: int, z: int | None, note: str) -> Phase:
        """A phase from ``a`` to ``z`` (None: open-ended) with the LRs at both ends."""
        lo, hi = self.lrs([a, a if z is None else z])
        return Phase(kind, a, z, lo, hi, note)

    def pieces(self, start: int, end: int | None, cuts: Iterable[int]) -> list[Phase]:
        """Plateaus between the change points ``cuts`` in ``start..end`` (equal merged)."""
        firsts = [
            start,
            *sorted({c for c in cuts if c > start and (end is None or c <= end)}),
        ]
        out: list[Phase] = []
        for i, (first, v) in enumerate(zip(firsts, self.lrs(firsts), strict=True)):
            last = firsts[i + 1] - 1 if i + 1 < len(firsts) else end
            if out and same(out[-1].lr_first, v):
                out[-1] = replace(out[-1], last=last, lr_last=v)
                continue
            if out:
                kind, note = "plateau", self._note(first, v, out)
            else:
                one = first == 1 or self.schedule.burn_in <= 1
                kind = "constant" if one else "plateau"
                note = "burn-in over, policy starts" if first > 1 else ""
            out.append(Phase(kind, first, last, v, v, note))
        return out

    def _note(self, first: int, v: float, out: list[Phase]) -> str:
        prev = out[-1].lr_first or math.inf  # None or 0: no ratio
        ratio = v / prev if math.isfinite(prev) else math.nan
        by = f"x{f32_text(ratio)}" if math.isfinite(ratio) else f"LR {f32_text(v)}"
        where = "step" if self.schedule.policy is Policy.STEPS else "at batch"
        return f"{where} {first}: {by}"


#: A policy's ``phases`` hook.
Phases = Callable[[Explainer, int, int | None], list[Phase]]


def one_phase(kind: str, note: Callable[[NetSchedule], str]) -> Phases:
    """The ``phases`` of a policy with one shape over the whole run, in words ``note``."""
    return lambda x, start, end: [x.span(kind, start, end, note(x.schedule))]


def summarise(phases: list[Phase], what: str) -> list[Phase]:
    """At most :data:`MAX_LISTED` phases: the middle ones as one summary."""
    if len(phases) <= MAX_LISTED:
        return phases
    mid = phases[HEAD:-TAIL]
    a, z = mid[0], mid[-1]
    note = f"{len(mid)} more {what} ({a.note} ... {z.note})"
    summary = Phase("summary", a.first, z.last, a.lr_first, z.lr_last, note)
    return [*phases[:HEAD], summary, *phases[-TAIL:]]


def open_ended(phases: list[Phase], more: str) -> list[Phase]:
    """The last phase with ``last`` None and ``more`` added to its note."""
    return [*phases[:-1], replace(phases[-1], last=None, note=phases[-1].note + more)]


_C_POW = '''def c_pow(x: float, y: float) -> float:
    """C's pow(): inf or NaN where Python's ** raises or gives a complex number."""
    try:
        z = x**y
    except ZeroDivisionError:  # 0 ** negative
        return math.copysign(math.inf, x) if y % 2 == 1 else math.inf
    except OverflowError:
        return -math.inf if x < 0 and y % 2 == 1 else math.inf
    return z if isinstance(z, float) else -math.nan  # negative ** fraction'''

_C_DIV = '''def c_div(a: float, b: float) -> float:
    """IEEE division as C does it: x / 0 is +-inf and 0 / 0 is NaN."""
    if b != 0:
        return a / b
    if a == 0 or a != a:
        return -math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)'''

_LIBM_HEAD = """# hank-ai's C++ calls {calls} on floats: the C library's {fns}.
LIBM = ctypes.CDLL(find_library("m") or find_library("ucrtbase"))"""

_LIBM_FN = """LIBM.{name}.argtypes = ({args})
LIBM.{name}.restype = ctypes.c_float"""

_ARITY = {"powf": "ctypes.c_float, ctypes.c_float", "expf": "ctypes.c_float,"}


@dataclass
class LrCode:
    """The source pieces of ``lr_at`` (``ftz``: float32 results may be flushed)."""

    exact: bool
    params: Params
    literal: Callable[[float, bool], str]
    num: Callable[[object], str]
    seq: Callable[[Sequence[str], int, str], str]
    ftz: bool = False
    helpers: list[str] = field(default_factory=list)
    constants: list[str] = field(default_factory=list)
    engine: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    libm: list[str] = field(default_factory=list)
    #: The name of the base rate in the formulas (LR when it differs from the cfg's).
    lr: str = "LEARNING_RATE"

    def const(self, name: str, value: str, comment: str = "") -> None:
        """``NAME = value`` once (``#: comment`` above it)."""
        if name in self.names:
            return
        self.names.add(name)
        if comment:
            self.constants.append(f"#: {comment}")
        self.constants.append(f"{name} = {value}")

    def f(self, x: float) -> str:
        """A float32 parameter's literal."""
        return self.literal(x, self.exact)

    def r(self, expr: str) -> str:
        """``f32(expr)`` in float32 arithmetic, ``expr`` in double."""
        return f"f32({expr})" if self.exact else expr

    def times_lr(self, expr: str) -> str:
        """``f32(LR * expr)``: the rate darknet returns."""
        return self.r(f"{self.lr} * {expr}")

    def helper(self, source: str) -> None:
        """A top-level helper block, once."""
        if source not in self.helpers:
            self.helpers.append(source)

    def line(self, text: str) -> None:
        self.body.append("    " + text)

    def c_lib(self, name: str) -> None:
        """Use the C library's ``powf``/``expf`` (hank-ai's float overloads)."""
        if name not in self.libm:
            self.libm.append(name)

    def divide(self, a: str, divisor: int, name: str) -> str:
        """``f32(a / f32(NAME))``: darknet divides a float by an int in float."""
        d = name if not self.exact or f32(float(divisor)) == divisor else f"f32({name})"
        if divisor == 0:
            self.helper(_C_DIV)
            return self.r(f"c_div({a}, {d})")
        return self.r(f"{a} / {d}")

    def power(self, base: str, safe: bool) -> str:
        """``pow(base, POWER)``: hank-ai's powf, Python's ** when safe, else C's pow."""
        self.const("POWER", self.f(self.params.power))
        if self.exact and self.params.fork == FORK_HANKAI:
            self.c_lib("powf")
            powf = f"LIBM.powf({base}, POWER)"
            return f"f32({powf})" if self.ftz else powf  # -Ofast flushes powf too
        return self.pow(base, "POWER", safe)

    def pow(self, base: str, exponent: str, safe: bool) -> str:
        """``base ** exponent`` spaced as ruff formats it, else C's pow (not ``safe``)."""
        if not safe:
            self.helper(_C_POW)
            return f"c_pow({base}, {exponent})"
        a, e = atom(base), atom(exponent)
        return f"{a}**{e}" if a.isidentifier() and e.isidentifier() else f"{a} ** {e}"

    def lr_at(self, doc: str = "for the 0-based optimizer step ``step``") -> str:
        """``def lr_at(step)``: the body, under a one-line docstring."""
        doc = f'    """darknet\'s learning rate {doc}."""'
        return "\n".join(["def lr_at(step: int) -> float:", doc, *self.body])

    def blocks(self) -> list[str]:
        """The top-level helper blocks in order: f32, the C library's functions, others."""
        out = self.helpers[:1]
        if self.libm:
            fns = [_LIBM_FN.format(name=n, args=_ARITY[n]) for n in self.libm]
            head = _LIBM_HEAD.format(
                calls=" and ".join(f"{n[:-1]}()" for n in self.libm),
                fns=" and ".join(f"{n}()" for n in self.libm),
            )
            out.append("\n".join([head, *fns]))
        return out + self.helpers[1:]


def atom(expr: str) -> str:
    """``expr`` as an operand: unchanged when it is a name or one call, else parenthesized."""
    m = re.match(r"[A-Za-z_][\w.]*", expr)
    rest = expr[m.end() :] if m else "?"
    depth = list(accumulate({"(": 1, ")": -1}.get(ch, 0) for ch in rest))
    call = rest[:1] == "(" and depth[-1] == 0 and 0 not in depth[:-1]
    return expr if not rest or call else f"({expr})"


def normal_24(p: Params) -> bool:
    """``lr * x**power`` is normal for every non-zero float32 ``x`` in [2**-24, 1]."""
    return p.power >= 0 and (p.lr == 0 or math.log2(abs(p.lr)) - 24 * p.power >= -125)


def pow_safe(power: float) -> bool:
    """``x ** power`` for ``0 <= x <= 1`` neither raises nor overflows."""
    return not (math.isfinite(power) and power < 0)


#: Relative tolerance of ``exact=False`` (torch's running products drift ~1e-16 per step).
REL_TOL = 1e-9
#: Most steps verified one by one (exp and poly change at every step; ~1 µs per step).
MAX_DENSE_STEPS = 5_000_000


@dataclass(frozen=True)
class NativePart:
    """One torch scheduler of a plan: its class name and keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, optimizer: Optimizer) -> LRScheduler:
        """The torch scheduler, constructed fresh (``last_epoch=-1``) on ``optimizer``."""
        from torch.optim import lr_scheduler

        cls: type[LRScheduler] = getattr(lr_scheduler, self.name)
        return cls(optimizer, **self.kwargs)

    def source(self) -> str:
        """Python source of the constructor call (``optimizer`` is the first argument)."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"torch.optim.lr_scheduler.{self.name}(optimizer{', ' if args else ''}{args})"


#: A composition of torch schedulers, and the candidate compositions of a policy.
Parts = list[NativePart]
Plans = list[Parts]


def step_part(milestones: list[int], gamma: float) -> NativePart:
    """A ``MultiStepLR``."""
    return NativePart("MultiStepLR", {"milestones": milestones, "gamma": gamma})


@dataclass(frozen=True)
class NativeRun:
    """Steps ``0..steps-1`` to match (batches to ``horizon``; the policy from step ``m0``)."""

    params: Params
    exact: bool
    horizon: int
    steps: int
    m0: int
    #: ``c`` when ``b(i) = (i + 1)·c`` for every step, else None.
    per_step: int | None
    batch: Callable[[int], int]
    first: Callable[[int], int]
    lr: Callable[[int], float]


def grouped(pairs: Iterable[tuple[int, float]]) -> list[NativePart]:
    """One MultiStepLR per distinct gamma other than 1 (x·1.0 = x), in order of first use."""
    order: dict[float, list[int]] = {}
    for e, g in pairs:
        if g != 1.0:
            order.setdefault(g, []).append(e)
    return [step_part(ms, g) for g, ms in order.items()]


def close(torch_lr: float, target: float, exact: bool) -> bool:
    """Equal in float32 (``exact``), else within :data:`REL_TOL`; NaN matches NaN."""
    if math.isnan(target) or math.isnan(torch_lr):
        return math.isnan(target) and math.isnan(torch_lr)
    if exact:
        return f32(torch_lr) == f32(target)
    return abs(torch_lr - target) <= REL_TOL * abs(target)


def no_burn_in_end(run: NativeRun, policy: str, cls: str, formula: str) -> None:
    """Fail when a burn-in ends within the run: SequentialLR would restart ``cls``."""
    if 0 < run.m0 < run.steps:
        raise NotExactError(
            run.params.burn_in,
            f"{policy} with burn-in: torch's SequentialLR restarts {cls} at its base LR "
            f"after the warm-up; darknet continues with {formula}",
        )


def no_boundaries(s: NetSchedule, lo: int, top: int, add: Add, full: Full) -> int:
    """None: the policy changes at every batch or never."""
    return 0
