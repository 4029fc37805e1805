"""darknet's formula for one policy, written out as the Python a generated module holds.

:func:`lr_code` returns the pieces of ``lr_at(step)`` for one translation: the helpers it
calls, the constants, GPU 0's batch counter (``multigpu="trace"`` only) and the body. Each
piece is emitted only when this fork, policy, parameter set and translation need it:

- ``f32`` (float32 rounding through ``ctypes``) only for float32 arithmetic; it flushes
  subnormal results to zero only when the translation flushes and some value of this
  schedule can be subnormal (:func:`flush_matters`).
- Python's ``**`` and ``math.exp`` raise where C returns inf or NaN. Where the parameters
  prove that this cannot happen for any batch number, the formula uses them plainly;
  otherwise it calls ``c_pow``/``c_exp``/``c_div``, which return what C returns.
- hank-ai's float ``powf``/``expf`` come from the C library (``LIBM``) for its burn-in, poly
  and sigmoid in float32 arithmetic.

The generated ``lr_at`` equals :meth:`cfgsched.run.Run.lr` (the kernel) for
every step; the golden and property tests check it.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cfgsched.codegen.source import float32, num, seq
from cfgsched.kernel import formulas as k
from cfgsched.kernel.mgpu import save_interval
from cfgsched.run import Run

_U64 = 1 << 64
#: Largest integral ``power`` for which ``|base| ** power`` cannot overflow a double
#: (``|base| <= 2**63`` for poly).
_MAX_SAFE_POWER = 16

_F32 = '''def f32(x: float) -> float:
    """x rounded to float32, the type darknet computes its learning rate in."""
    return ctypes.c_float(x).value'''

_F32_FTZ = '''def f32(x: float) -> float:
    """x rounded to float32; a -Ofast build flushes to zero what would round below
    2**-126 (x86 checks after rounding to 24 bits: below 2**-126 - 2**-151)."""
    if abs(x) < 2.0**-126 - 2.0**-151:
        return math.copysign(0.0, x)
    return ctypes.c_float(x).value'''

_C_POW = '''def c_pow(x: float, y: float) -> float:
    """C's pow(): inf or NaN where Python's ** raises or gives a complex number."""
    try:
        z = x**y
    except ZeroDivisionError:  # 0 ** negative
        return math.copysign(math.inf, x) if y % 2 == 1 else math.inf
    except OverflowError:
        return -math.inf if x < 0 and y % 2 == 1 else math.inf
    return z if isinstance(z, float) else -math.nan  # negative ** fraction'''

_C_EXP = '''def c_exp(x: float) -> float:
    """C's exp(): inf where Python's math.exp raises OverflowError."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf'''

_C_DIV = '''def c_div(a: float, b: float) -> float:
    """IEEE division as C does it: x / 0 is +-inf and 0 / 0 is NaN."""
    if b != 0:
        return a / b
    if a == 0 or a != a:
        return -math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)'''

_UNIFORM = '''def uniform(b: int) -> float:
    """A reproducible U[0, 1) draw for batch b: splitmix64 of SEED and b (darknet's own
    rand() is seeded by the time: its draws cannot be reproduced)."""
    z = (SEED * 0x9E3779B97F4A7C15 + b + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((z ^ (z >> 31)) >> 40) / 2**24'''

_LIBM_HEAD = """# hank-ai's C++ calls {calls} on floats: the C library's {fns}.
LIBM = ctypes.CDLL(find_library("m") or find_library("ucrtbase"))"""

_LIBM_FN = """LIBM.{name}.argtypes = ({args})
LIBM.{name}.restype = ctypes.c_float"""

_TRACE_DOC = '''def gpu0_batches() -> Iterator[int]:
    """GPU 0's batch number at each iteration of darknet's training loop on GPUS GPUs.'''

_TRACE_C = (
    _TRACE_DOC
    + '''

    Each iteration GPU 0 adds one batch to seen and its counter grows by GPUS; every 4
    iterations the weights are synced and seen jumps to the counter + 4 * (GPUS - 1); a
    weight save (every SAVE_EVERY iterations, and every 100) sets seen to the counter.
    """
{start}    while counter < MAX_BATCHES:
        yield seen + 1
        counter += GPUS
        seen = counter + 4 * (GPUS - 1) if counter % 4 == 0 else counter
        if counter >= saved + SAVE_EVERY or counter % SAVE_EVERY == 0:
            saved = seen = counter
        if counter >= saved_last + 100 or (counter % 100 == 0 and counter > 1):
            saved_last = seen = counter'''
)

_TRACE_PJ = (
    _TRACE_DOC
    + '''

    One batch per iteration, and 4 * (GPUS - 1) more at each weight sync (every 4).
    """
    seen = 0
    while seen < MAX_BATCHES:
        seen += 1
        yield seen
        if seen % 4 == 0:
            seen += 4 * (GPUS - 1)'''
)

_TRACE_LOOKUP = '''BATCHES: list[int] = []  # GPU 0's batch numbers so far
RUN = gpu0_batches()


def gpu0_batch(step: int) -> int:
    """darknet's batch number for optimizer step ``step``: GPU 0's at loop iteration
    step + 1 (after darknet's loop has ended it grows by GPUS per step)."""
    if step >= len(BATCHES):
        BATCHES.extend(islice(RUN, step + 1 - len(BATCHES)))
    if step < len(BATCHES):
        return BATCHES[step]
    return (BATCHES[-1] if BATCHES else 0) + (step + 1 - len(BATCHES)) * GPUS'''


@dataclass
class LrCode:
    """The source pieces of ``lr_at``: helpers, constants, engine blocks and body lines."""

    exact: bool
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
        return float32(x, self.exact)

    def r(self, expr: str) -> str:
        """``f32(expr)`` in float32 arithmetic, ``expr`` in double."""
        return f"f32({expr})" if self.exact else expr

    def times_lr(self, expr: str) -> str:
        """``f32(LR * expr)``: the rate darknet returns."""
        return f"f32({self.lr} * {expr})" if self.exact else f"{self.lr} * {expr}"

    def helper(self, source: str) -> None:
        if source not in self.helpers:
            self.helpers.append(source)

    def line(self, text: str) -> None:
        self.body.append("    " + text)

    def lr_at(self, doc: str = "for the 0-based optimizer step ``step``") -> str:
        """``def lr_at(step)``: the body, under a one-line docstring."""
        head = [
            "def lr_at(step: int) -> float:",
            f'    """darknet\'s learning rate {doc}."""',
        ]
        return "\n".join(head + self.body)

    def blocks(self) -> list[str]:
        """The top-level helper blocks in order: f32, the C library's functions, others."""
        out = self.helpers[:1]
        if self.libm:
            arity = {
                "powf": "ctypes.c_float, ctypes.c_float",
                "expf": "ctypes.c_float,",
            }
            fns = [_LIBM_FN.format(name=n, args=arity[n]) for n in self.libm]
            head = _LIBM_HEAD.format(
                calls=" and ".join(f"{n[:-1]}()" for n in self.libm),
                fns=" and ".join(f"{n}()" for n in self.libm),
            )
            out.append("\n".join([head, *fns]))
        return out + self.helpers[1:]


def atom(expr: str) -> str:
    """``expr`` as an operand: unchanged when it is a name or one call, else parenthesized."""
    m = re.match(r"[A-Za-z_][\w.]*", expr)
    if m is None:
        return f"({expr})"
    rest = expr[m.end() :]
    if not rest:
        return expr
    if rest[0] != "(":
        return f"({expr})"
    depth = 0
    for i, ch in enumerate(rest):
        depth += 1 if ch == "(" else -1 if ch == ")" else 0
        if depth == 0:
            return expr if i == len(rest) - 1 else f"({expr})"
    return f"({expr})"


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def lr_code(t: Run) -> LrCode:
    """The pieces of ``lr_at(step)`` for ``t`` (see the module docstring)."""
    p = t.params
    c = LrCode(exact=t.exact)
    if t.exact:
        c.helper(_F32_FTZ if flush_matters(t) else _F32)
    _lr_constants(c, t)
    if p.fork == k.FORK_PJREDDIE and p.burn_in < 0:
        c.line(
            "# pjreddie compares b with burn_in as unsigned numbers: burn-in never ends"
        )
        c.line(f"return {_burn_in_value(c, t)}")
    else:
        if p.burn_in > 0:
            c.line("if b < BURN_IN:  # burn-in")
            c.line(f"    return {_burn_in_value(c, t)}")
        _POLICIES.get(p.policy, _constant)(c, t)
    rate = c.body
    c.body = []
    if any(re.search(r"\bb\b", line.split("#")[0]) for line in rate):
        _mapping(c, t)
    if t.start:
        c.const(
            "RESUME_STEP",
            num(t.start),
            "Optimizer steps done where darknet resumes the .weights file.",
        )
    c.body += rate
    return c


def _lr_constants(c: LrCode, t: Run) -> None:
    """LEARNING_RATE (the cfg's, float32) and LR, the base rate when it differs."""
    c.const(
        "LEARNING_RATE",
        c.f(t.cfg_lr),
        "learning_rate; a parameter group created with it gets darknet's LR exactly.",
    )
    if _same(t.params.lr, t.cfg_lr):
        return
    if t.ngpus > 1 and t.params.lr != 0:
        why = f"learning_rate x {t.ngpus}: darknet -gpus {t.ngpus} multiplies it."
    else:
        why = "learning_rate as a -Ofast build sees it (below float32's normal range)."
    c.const("LR", c.f(t.params.lr), why)
    c.lr = "LR"


def _mapping(c: LrCode, t: Run) -> None:
    """The first body line: ``b``, darknet's batch number of the optimizer step."""
    if t.trace:
        _trace(c, t)
        c.line("b = gpu0_batch(step)")
    elif t.images_per_step == t.images_per_iteration:
        c.line("b = step + 1  # darknet's batch number: its k-th update uses b = k")
    elif t.images_per_step == t.images_per_iteration * t.ngpus:
        c.const("GPUS", num(t.ngpus))
        c.line("b = (step + 1) * GPUS  # each step covers GPUS darknet iterations")
    else:
        c.const(
            "IMAGES_PER_STEP",
            num(t.images_per_step),
            "Images one optimizer step consumes (torch batch x accumulation x ranks).",
        )
        c.const(
            "IMAGES_PER_ITERATION",
            num(t.images_per_iteration),
            "Images per darknet iteration (batch x subdivisions).",
        )
        c.line("b = (step + 1) * IMAGES_PER_STEP // IMAGES_PER_ITERATION")


def _trace(c: LrCode, t: Run) -> None:
    p = t.params
    c.const("GPUS", num(t.ngpus))
    c.const("MAX_BATCHES", num(p.max_batches))
    split = p.fork == k.FORK_HANKAI and t.scratch and t.ngpus > 1 and p.burn_in != 0
    if p.fork == k.FORK_PJREDDIE:
        c.engine.append(_TRACE_PJ)
    elif (
        split and p.burn_in < 0
    ):  # the counter never equals burn_in: one GPU throughout
        c.engine.append(
            _TRACE_DOC
            + '"""\n    # hank-ai without a weights file: one GPU until its counter equals '
            "burn_in\n    yield from range(1, MAX_BATCHES + 1)"
        )
    else:
        every = save_interval(p.fork, p.max_batches)
        c.const("SAVE_EVERY", num(every), "darknet saves the weights this often.")
        start = "    seen = counter = saved = saved_last = 0\n"
        if split:
            c.const("BURN_IN", num(p.burn_in))
            start = (
                "    # hank-ai without a weights file: burn-in on one GPU, then on all\n"
                "    yield from range(1, min(BURN_IN, MAX_BATCHES) + 1)\n"
                "    seen = counter = saved = saved_last = BURN_IN\n"
            )
        c.engine.append(_TRACE_C.format(start=start))
    c.engine.append(_TRACE_LOOKUP)


def _divide(c: LrCode, a: str, divisor: int, name: str) -> str:
    """``f32(a / f32(NAME))``: darknet divides a float by an int in float."""
    d = name if not c.exact or k.f32(float(divisor)) == divisor else f"f32({name})"
    if divisor == 0:
        c.helper(_C_DIV)
        return c.r(f"c_div({a}, {d})")
    return c.r(f"{a} / {d}")


def _power(c: LrCode, t: Run, base: str, safe: bool) -> str:
    """``pow(base, POWER)``: hank-ai's powf, Python's ** when safe, else C's pow."""
    c.const("POWER", c.f(t.params.power))
    if t.exact and t.params.fork == k.FORK_HANKAI:
        if "powf" not in c.libm:
            c.libm.append("powf")
        powf = f"LIBM.powf({base}, POWER)"
        return f"f32({powf})" if flush_matters(t) else powf  # -Ofast flushes powf too
    if not safe:
        c.helper(_C_POW)
        return f"c_pow({base}, POWER)"
    base = atom(base)
    return f"{base}**POWER" if base.isidentifier() else f"{base} ** POWER"


def _pow_safe(power: float) -> bool:
    """``x ** power`` for ``0 <= x <= 1`` neither raises nor overflows."""
    return not (math.isfinite(power) and power < 0)


def _burn_in_value(c: LrCode, t: Run) -> str:
    """``f32(lr * pow(f32(f32(b) / burn_in), power))``."""
    p = t.params
    c.const("BURN_IN", num(p.burn_in))
    small = 0 < p.burn_in <= 1 << 24  # then b < burn_in is exact in float32
    x = _divide(c, "b" if small or not c.exact else "f32(b)", p.burn_in, "BURN_IN")
    return c.times_lr(_power(c, t, x, p.burn_in > 0 and _pow_safe(p.power)))


def _constant(c: LrCode, t: Run) -> None:
    c.line(f"return {c.lr}")


def _steps(c: LrCode, t: Run) -> None:
    """darknet walks the steps in cfg order and stops at the first step > b."""
    p = t.params
    n = min(len(p.steps), len(p.scales))
    steps, scales = list(p.steps[:n]), list(p.scales[:n])
    if p.fork == k.FORK_PJREDDIE and any(s < 0 for s in steps):
        cut = next(i for i, s in enumerate(steps) if s < 0)
        c.line(f"# pjreddie compares unsigned: step {steps[cut]} is never passed")
        steps, scales = steps[:cut], scales[:cut]
    if not steps:
        c.line(f"return {c.lr}  # no step applies")
        return
    runs = _runs(steps, scales)
    if len(runs) * 4 > len(steps):
        c.constants.append(seq([num(s) for s in steps], 0, "STEPS = "))
        c.constants.append(seq([c.f(s) for s in scales], 0, "SCALES = "))
    else:
        c.constants += [
            "#: The steps as runs (first, spacing, count, scale): count steps from first,",
            "#: spacing apart, each with scale.",
            "RUNS = (",
            *(
                f"    ({num(a)}, {num(d)}, {num(n)}, {c.f(sc)}),"
                for a, d, n, sc in runs
            ),
            ")",
            "STEPS = tuple(a + k * d for a, d, n, _ in RUNS for k in range(n))",
            "SCALES = tuple(s for _, _, n, s in RUNS for _ in range(n))",
        ]
    product = "f32(r * s)" if c.exact else "r * s"
    c.constants.append(
        "#: The LR once the first k steps are passed: darknet's running product, in order."
    )
    c.constants.append(
        f"LRS = tuple(accumulate(SCALES, lambda r, s: {product}, initial={c.lr}))"
    )
    table = "STEPS"
    if steps != sorted(steps):
        c.constants.append(
            "#: Steps are not sorted: darknet passes step i once max(steps[: i + 1]) <= b."
        )
        c.constants.append("REACHED = tuple(accumulate(STEPS, max))")
        table = "REACHED"
    c.line(
        f"return LRS[bisect_right({table}, b)]  # darknet stops at the first step > b"
    )


def _runs(steps: list[int], scales: list[float]) -> list[tuple[int, int, int, float]]:
    """``(first, spacing, count, scale)``: the steps in runs of even spacing and one
    scale (the same bits: -0.0 is not 0.0)."""
    out: list[tuple[int, int, int, float]] = []
    for st, sc in zip(steps, scales, strict=True):
        if out:
            a, d, n, last = out[-1]
            same = struct.pack("<d", sc) == struct.pack("<d", last)
            if same and (n == 1 or st == a + n * d):
                out[-1] = (a, st - a if n == 1 else d, n + 1, last)
                continue
        out.append((st, 0, 1, sc))
    return out


def _step(c: LrCode, t: Run) -> None:
    """``f32(lr * pow(scale, b / step))`` with C's integer division."""
    p = t.params
    if p.fork == k.FORK_PJREDDIE and p.step < 0:
        c.line(f"return {c.lr}  # pjreddie divides by step={p.step} as unsigned: 0")
        return
    c.const("STEP", num(p.step))
    c.const("SCALE", c.f(p.scale))
    s = p.scale
    if p.step > 0:
        exponent = "(b // STEP)"
        safe = not math.isfinite(s) or abs(s) <= 1
    else:
        c.line("k = -(b // -STEP)  # C's integer division rounds toward 0")
        exponent = "k"
        safe = not math.isfinite(s) or abs(s) >= 1
    if safe:
        pw = f"SCALE**{exponent}" if exponent == "k" else f"SCALE ** {exponent}"
    else:
        c.helper(_C_POW)
        pw = f"c_pow(SCALE, {exponent.strip('()')})"
    c.line(f"return {c.times_lr(pw)}")


def _exp(c: LrCode, t: Run) -> None:
    """``f32(lr * pow(gamma, b))``."""
    g = t.params.gamma
    c.const("GAMMA", c.f(g))
    if not math.isfinite(g) or abs(g) <= 1:
        pw = "GAMMA**b"
    else:
        c.helper(_C_POW)
        pw = "c_pow(GAMMA, b)"
    c.line(f"return {c.times_lr(pw)}")


def _poly(c: LrCode, t: Run) -> None:
    """``f32(lr * pow(f32(1 - f32(f32(b) / max_batches)), power))``."""
    p = t.params
    c.const("MAX_BATCHES", num(p.max_batches))
    ratio = _divide(c, "f32(b)" if c.exact else "b", p.max_batches, "MAX_BATCHES")
    base = f"f32(1 - {ratio})" if c.exact else f"1 - {ratio}"
    c.line(f"base = {base}  # negative past max_batches")
    pw = p.power
    safe = p.max_batches != 0 and (
        not math.isfinite(pw) or (pw == int(pw) and 0 <= pw <= _MAX_SAFE_POWER)
    )
    c.line(f"return {c.times_lr(_power(c, t, 'base', safe))}")


def _sigmoid(c: LrCode, t: Run) -> None:
    """``f32(lr * (1 / (1 + exp(f32(gamma * (b - step))))))``."""
    p = t.params
    g = p.gamma
    pj = p.fork == k.FORK_PJREDDIE
    c.const("GAMMA", c.f(g))
    c.const("STEP", num(p.step))
    if pj:
        c.line("# pjreddie subtracts in size_t: b - STEP wraps around below 0")
    d = c.r("(b - STEP) % 2**64" if pj else "b - STEP")
    c.line(f"x = {c.r(f'GAMMA * {atom(d)}')}")
    # exp(x) overflows only for x > 709: x grows with b when gamma > 0; for gamma < 0
    # it is largest at b = 0 (pjreddie: x <= 0)
    most = 0.0 if pj else -g * max(p.step, 0)
    if t.exact and p.fork == k.FORK_HANKAI:
        if "expf" not in c.libm:
            c.libm.append("expf")
        e = "LIBM.expf(x)"
    elif not math.isfinite(g) or g == 0 or (g < 0 and most < 709):
        e = "math.exp(x)"
    else:
        c.helper(_C_EXP)
        e = "c_exp(x)"
    c.line(f"return {c.times_lr(f'(1 / (1 + {e}))')}")


def _sgdr(c: LrCode, t: Run) -> None:
    """Cosine from LR down to LR_MIN over cycles of CYCLE * CYCLE_MULT**i batches."""
    p = t.params
    c.const("LR_MIN", c.f(p.lr_min))
    c.const("CYCLE", num(p.sgdr_cycle), "sgdr_cycle: batches in the first cycle.")
    if p.fork == k.FORK_HANKAI:
        pi = "math.pi"
    else:
        c.const("PI", num(k.PI_ALEXEYAB), "AlexeyAB's value of pi.")
        pi = "PI"
    if p.sgdr_mult == 1:
        c.line("start = max(0, (b - 1) // CYCLE) * CYCLE  # equal cycles (sgdr_mult=1)")
        cycle = "CYCLE"
    else:
        c.const(
            "CYCLE_MULT", num(p.sgdr_mult), "sgdr_mult: each cycle is this much longer."
        )
        guard = "cycle > 0 and " if p.sgdr_mult <= 0 else ""
        c.line("start, cycle = 0, CYCLE  # darknet's search for the cycle that holds b")
        c.line(f"while {guard}start + cycle < b:")
        c.line("    start += cycle")
        c.line("    cycle *= CYCLE_MULT")
        cycle = "cycle"
    c.line(f"cos = math.cos({atom(c.r('b - start'))} * {pi} / {cycle})")
    amp = atom(c.r(f"{c.lr} - LR_MIN"))
    value = f"LR_MIN + 0.5 * {amp} * (1 + cos)"
    c.line(f"return {f'f32({value})' if c.exact else value}")


def _random(c: LrCode, t: Run) -> None:
    """``lr * pow(U(0, 1), power)`` with a reproducible draw per batch."""
    c.const("SEED", num(t.params.seed), "The random policy's draws (cfgsched's seed).")
    c.helper(_UNIFORM)
    c.line(
        f"return {c.times_lr(_power(c, t, 'uniform(b)', _pow_safe(t.params.power)))}"
    )


_POLICIES = {
    k.STEP: _step,
    k.STEPS: _steps,
    k.EXP: _exp,
    k.POLY: _poly,
    k.SIG: _sigmoid,
    k.RANDOM: _random,
    k.SGDR: _sgdr,
}


# ----------------------------------------------------------------------------- flushing

FLT_MIN = k.FLT_MIN


def flush_matters(t: Run) -> bool:
    """Whether flush-to-zero can change any rate of ``t`` (False is proven, True is not).

    Flushing changes a value only where a float32 result lies below ``FLT_MIN``; every
    check below bounds the smallest non-zero result of the formula from below.
    """
    if not (t.flush and t.exact):
        return False
    p = t.params
    if not all(math.isfinite(x) for x in (p.lr, p.power, p.lr_min, *p.scales)):
        return True
    if p.fork == k.FORK_PJREDDIE and p.burn_in < 0:
        return True
    if p.burn_in > 0 and not _burn_in_normal(p):
        return True
    normal = _POLICY_NORMAL.get(p.policy)
    return normal is not None and not normal(p)


def _normal(x: float) -> bool:
    """0, or at least twice FLT_MIN (a margin for hank-ai's powf rounding)."""
    return x == 0 or abs(x) >= 2 * FLT_MIN


def _burn_in_normal(p: k.Params) -> bool:
    """lr * (b / burn_in)**power grows with b: all of it is normal when b = 1 is (b = 0
    gives 0, or lr for power 0)."""
    if p.lr == 0 or p.power == 0:
        return True
    if p.power < 0:
        return False
    return abs(k.rate(p._replace(policy=k.CONSTANT), 1)) >= 2 * FLT_MIN


def _poly_normal(p: k.Params) -> bool:
    """A non-zero poly base (or random draw) is at least 2**-24 in magnitude."""
    if p.power < 0 or (p.policy == k.POLY and p.max_batches <= 0):
        return False
    return p.lr == 0 or math.log2(abs(p.lr)) - 24 * p.power >= -125


def _steps_normal(p: k.Params) -> bool:
    out = p.lr
    for _, sc in zip(p.steps, p.scales, strict=False):
        out = k.f32(out * sc)
        if not _normal(out):
            return False
    return True


def _step_normal(p: k.Params) -> bool:
    """|scale|**k moves towards 0 only for 0 < |scale| < 1 (k >= 0) or |scale| > 1."""
    s = abs(p.scale)
    if p.fork == k.FORK_PJREDDIE and p.step < 0:
        return True
    return s == 0 or (s >= 1 if p.step > 0 else s <= 1) or p.lr == 0


def _exp_normal(p: k.Params) -> bool:
    g = abs(p.gamma)
    return g == 0 or g >= 1 or p.lr == 0


def _sgdr_normal(p: k.Params) -> bool:
    """lr_min + 0.5 * (lr - lr_min) * (1 + cos) stays at least lr_min when lr >= lr_min."""
    amp = k.f32(p.lr - p.lr_min)
    return p.lr >= p.lr_min and _normal(amp) and p.lr_min >= 2 * FLT_MIN


def _never_proven(p: k.Params) -> bool:
    """sigmoid: lr / (1 + exp(x)) passes through every magnitude below lr."""
    return False


#: Per policy: all results are 0 or normal (constant: only lr, already flushed).
_POLICY_NORMAL: dict[int, Callable[[k.Params], bool]] = {
    k.STEP: _step_normal,
    k.STEPS: _steps_normal,
    k.EXP: _exp_normal,
    k.POLY: _poly_normal,
    k.RANDOM: _poly_normal,
    k.SIG: _never_proven,
    k.SGDR: _sgdr_normal,
}
