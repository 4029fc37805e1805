"""``lr_at(step)`` of a generated module: f32, the step -> batch mapping, GPU 0's counter,
the burn-in and each policy module's ``code`` (golden tests: equal to ``Run.lr``)."""

from __future__ import annotations

import math
import re

from cfgsched.codegen.source import float32, images, num, seq
from cfgsched.kernel import formulas as k
from cfgsched.kernel.mgpu import save_interval
from cfgsched.policies import burn_in, module
from cfgsched.policies.base import LrCode as LrCode
from cfgsched.policies.base import same
from cfgsched.run import Run

#: f32 (``doc``: the rest of its docstring, and a flush before the rounding).
_F32 = '''def f32(x: float) -> float:
    """x rounded to float32{doc}
    return ctypes.c_float(x).value'''
_FTZ = '''; a -Ofast build flushes to zero what would round below
    2**-126 (x86 checks after rounding to 24 bits: below 2**-126 - 2**-151)."""
    if abs(x) < 2.0**-126 - 2.0**-151:
        return math.copysign(0.0, x)'''

#: GPU 0's batch counter (``body``: the rest of the docstring and the loop).
_TRACE = '''def gpu0_batches() -> Iterator[int]:
    """GPU 0's batch number at each iteration of darknet's training loop on GPUS GPUs.{body}'''

_TRACE_C = '''

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

_TRACE_PJ = '''

    One batch per iteration, and 4 * (GPUS - 1) more at each weight sync (every 4).
    """
    seen = 0
    while seen < MAX_BATCHES:
        seen += 1
        yield seen
        if seen % 4 == 0:
            seen += 4 * (GPUS - 1)'''

_TRACE_ONE = '''"""
    # hank-ai without a weights file: one GPU until its counter equals burn_in
    yield from range(1, MAX_BATCHES + 1)'''

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


def lr_code(t: Run, optimizer: bool = True, summed: int | None = None) -> LrCode:
    """The pieces of ``lr_at(step)`` for ``t`` (see the module docstring), MOMENTUM, DECAY
    (and with ``optimizer`` Adam's B1, B2, EPS), SUMMED_IMAGES after LEARNING_RATE."""
    p = t.params
    ftz = flush_matters(t)
    c = LrCode(t.exact, p, float32, num, seq, ftz)
    if t.exact:
        plain = ', the type darknet computes its learning rate in."""'
        c.helper(_F32.format(doc=_FTZ if ftz else plain))
    _lr_constants(c, t, optimizer, summed)
    if p.fork == k.FORK_PJREDDIE and p.burn_in < 0:
        c.line(
            "# pjreddie compares b with burn_in as unsigned numbers: burn-in never ends"
        )
        c.line(f"return {burn_in.code(c)}")
    else:
        if p.burn_in > 0:
            c.line("if b < BURN_IN:  # burn-in")
            c.line(f"    return {burn_in.code(c)}")
        module(p.policy).code(c)
    rate, c.body = c.body, []
    if any(re.search(r"\bb\b", line.split("#")[0]) for line in rate):
        mapping(t, c)
    if t.start:
        why = "Optimizer steps done where darknet resumes the .weights file."
        c.const("RESUME_STEP", num(t.start), why)
    c.body += rate
    return c


def _lr_constants(c: LrCode, t: Run, optimizer: bool, summed: int | None) -> None:
    """LEARNING_RATE (the cfg's, float32), the optimizer's constants and LR, the base
    rate when it differs."""
    c.const(
        "LEARNING_RATE",
        c.f(t.cfg_lr),
        "learning_rate; a parameter group created with it gets darknet's LR exactly.",
    )
    adam = ("b1", "b2", "eps") if optimizer and t.given.adam else ()
    for key in ("momentum", "decay", *adam):
        c.const(key.upper(), c.f(getattr(t.given, key)))
    if summed is not None:
        why = "The loss is summed over this many images per optimizer step (not averaged)."
        c.const("SUMMED_IMAGES", num(summed), why)
    if same(t.params.lr, t.cfg_lr):
        return
    if t.ngpus > 1 and t.params.lr != 0:
        why = f"learning_rate x {t.ngpus}: darknet -gpus {t.ngpus} multiplies it."
    else:
        why = "learning_rate as a -Ofast build sees it (below float32's normal range)."
    c.const("LR", c.f(t.params.lr), why)
    c.lr = "LR"


def mapping(t: Run, c: LrCode | None = None) -> str:
    """How optimizer step i maps to darknet's batch b, as a sentence; with ``c``, also as
    the body's first line ``b = ...`` (and its constants)."""
    ipi, ips, n = t.images_per_iteration, t.images_per_step, t.ngpus
    uses = "Optimizer step i (0-based) uses darknet's batch b ="
    if t.trace:
        if c:
            _trace(c, t)
            c.line("b = gpu0_batch(step)")
        scratch = " from scratch" if t.scratch else ""
        return (
            f"Optimizer step i follows GPU 0's batch counter of a darknet run on "
            f"{n} GPUs{scratch} (it is not monotonic)."
        )
    if ips == ipi:
        if c:
            c.line("b = step + 1  # darknet's batch number: its k-th update uses b = k")
        return f"{uses} i + 1."
    if ips == ipi * n:
        if c:
            c.const("GPUS", num(n))
            c.line("b = (step + 1) * GPUS  # each step covers GPUS darknet iterations")
        return (
            f"{uses} (i + 1) * {n}: each step covers {n} darknet iterations, "
            f"as on {n} GPUs."
        )
    if c:
        c.const(
            "IMAGES_PER_STEP",
            num(ips),
            "Images one optimizer step consumes (torch batch x accumulation x ranks).",
        )
        c.const(
            "IMAGES_PER_ITERATION",
            num(ipi),
            "Images per darknet iteration (batch x subdivisions).",
        )
        c.line("b = (step + 1) * IMAGES_PER_STEP // IMAGES_PER_ITERATION")
    return (
        f"{uses} (i + 1) * {ips} // {ipi} "
        f"({images(ips)} per step, {ipi} per darknet iteration)."
    )


def _trace(c: LrCode, t: Run) -> None:
    p = t.params
    c.const("GPUS", num(t.ngpus))
    c.const("MAX_BATCHES", num(p.max_batches))
    split = p.fork == k.FORK_HANKAI and t.scratch and t.ngpus > 1 and p.burn_in != 0
    if p.fork == k.FORK_PJREDDIE:
        body = _TRACE_PJ
    elif split and p.burn_in < 0:  # the counter never equals burn_in: one GPU
        body = _TRACE_ONE
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
        body = _TRACE_C.format(start=start)
    c.engine += [_TRACE.format(body=body), _TRACE_LOOKUP]


# ----------------------------------------------------------------------------- flushing


def flush_matters(t: Run) -> bool:
    """Whether flush-to-zero can change any rate of ``t`` (False is proven, True is not):
    each check bounds the smallest non-zero result of the formula from below."""
    if not (t.flush and t.exact):
        return False
    p = t.params
    if not all(math.isfinite(x) for x in (p.lr, p.power, p.lr_min, *p.scales)):
        return True
    if p.fork == k.FORK_PJREDDIE and p.burn_in < 0:
        return True
    if p.burn_in > 0 and not burn_in.normal(p):
        return True
    return not module(p.policy).normal(p)
