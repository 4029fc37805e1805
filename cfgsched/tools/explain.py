"""``cfgsched explain``: a schedule in words: phases, boundary LRs, multi-GPU effect.

Batch numbers are darknet's ``b`` (update k uses ``b = k``); the matching torch step index
is ``i = b - 1``. Every LR is darknet's float32 value from the oracle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfgsched.boundaries import sgdr_hangs
from cfgsched.errors import CfgWarning
from cfgsched.schedule import NetSchedule, Policy, f32
from cfgsched.tools.lint import lint_text, lr_at
from cfgsched.tools.text import fmt

#: JSON schema name of ``cfgsched explain --json``.
SCHEMA = "cfgsched-explain/1"

#: With more plateaus or sgdr cycles than this, the middle ones are summarised.
MAX_LISTED = 8
_HEAD, _TAIL = 3, 2

#: Loop iterations of GPU 0's batch counter shown for ``--gpus``.
GPU0_ITERATIONS = 12

#: Forks whose ``-gpus N`` multiplies learning_rate by N.
MULTIPLYING_FORKS = ("alexeyab", "pjreddie")


@dataclass(frozen=True)
class Phase:
    """Batches ``first..last`` (inclusive; ``last`` None = open-ended) of one shape."""

    kind: str
    first: int
    last: int | None
    lr_first: float
    lr_last: float
    note: str


@dataclass(frozen=True)
class Point:
    """darknet's LR at batch ``batch`` (torch step ``batch - 1``)."""

    batch: int
    lr: float

    @property
    def step(self) -> int:
        """The 0-based torch ``optimizer.step()`` index that uses this LR."""
        return self.batch - 1


@dataclass(frozen=True)
class MultiGpu:
    """What ``-gpus N`` does with this fork and cfg."""

    gpus: int
    multiplies_lr: bool
    lr_used: float
    advised_lr: float | None
    advised_burn_in: int | None
    notes: tuple[str, ...]
    gpu0_batches: tuple[int, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """Everything ``cfgsched explain`` prints (see :meth:`to_dict` for the JSON schema)."""

    source: str
    fork: str
    policy: str
    learning_rate: float
    burn_in: int
    power: float
    max_batches: int
    batch: int
    subdivisions: int
    images_per_iteration: int
    dataset_images: int | None
    phases: tuple[Phase, ...]
    points: tuple[Point, ...]
    multigpu: MultiGpu | None
    warnings: tuple[CfgWarning, ...]

    def images(self, batch: int) -> int:
        """Images darknet has seen after update ``batch``."""
        return batch * self.images_per_iteration

    def epochs(self, batch: int) -> float | None:
        """Epochs after update ``batch`` (None without a dataset size)."""
        if not self.dataset_images:
            return None
        return self.images(batch) / self.dataset_images

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema ``cfgsched-explain/1``); LR NaN/inf are strings."""

        def span(first: int, last: int | None) -> dict[str, Any]:
            d: dict[str, Any] = {
                "first": first,
                "last": last,
                "images": [
                    self.images(first - 1),
                    None if last is None else self.images(last),
                ],
            }
            if self.dataset_images:
                d["epochs"] = [
                    self.epochs(first - 1),
                    None if last is None else self.epochs(last),
                ]
            return d

        mg = None
        if self.multigpu is not None:
            m = self.multigpu
            mg = {
                "gpus": m.gpus,
                "multiplies_lr": m.multiplies_lr,
                "lr_used": jnum(m.lr_used),
                "advised_learning_rate": None
                if m.advised_lr is None
                else jnum(m.advised_lr),
                "advised_burn_in": m.advised_burn_in,
                "notes": list(m.notes),
                "gpu0_batches": list(m.gpu0_batches),
            }
        return {
            "schema": SCHEMA,
            "source": self.source,
            "fork": self.fork,
            "policy": self.policy,
            "learning_rate": jnum(self.learning_rate),
            "burn_in": self.burn_in,
            "power": jnum(self.power),
            "max_batches": self.max_batches,
            "batch": self.batch,
            "subdivisions": self.subdivisions,
            "images_per_iteration": self.images_per_iteration,
            "dataset_images": self.dataset_images,
            "phases": [
                {
                    "kind": p.kind,
                    "batches": span(p.first, p.last),
                    "lr_first": jnum(p.lr_first),
                    "lr_last": jnum(p.lr_last),
                    "note": p.note,
                }
                for p in self.phases
            ],
            "points": [
                {"batch": p.batch, "step": p.step, "lr": jnum(p.lr)}
                for p in self.points
            ],
            "multigpu": mg,
            "warnings": [
                {
                    "line": w.line,
                    "col": w.col,
                    "code": w.code,
                    "key": w.key,
                    "message": w.message,
                }
                for w in self.warnings
            ],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)


def jnum(x: float) -> float | str:
    """A float for JSON: NaN/inf become ``"nan"``, ``"inf"``, ``"-inf"`` (as in golden)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _lr(s: NetSchedule, b: int) -> float:
    return float(lr_at(s, np.array([b], dtype=np.int64))[0])


def _constant_pieces(
    s: NetSchedule, start: int, end: int | None, cuts: list[int]
) -> list[Phase]:
    """Plateaus between the change points ``cuts`` in ``start..end`` (equal LRs merged)."""
    cuts = sorted({c for c in cuts if c > start and (end is None or c <= end)})
    firsts = [start, *cuts]
    lrs = lr_at(s, np.asarray(firsts, dtype=np.int64)) if firsts else np.zeros(0)
    out: list[Phase] = []
    for i, (first, lr) in enumerate(zip(firsts, lrs, strict=True)):
        last = firsts[i + 1] - 1 if i + 1 < len(firsts) else end
        v = float(lr)
        if out and (
            out[-1].lr_first == v or (math.isnan(v) and math.isnan(out[-1].lr_first))
        ):
            p = out[-1]
            out[-1] = Phase(p.kind, p.first, last, p.lr_first, v, p.note)
            continue
        if not out:
            kind = "constant" if first == 1 or s.burn_in <= 1 else "plateau"
            note = "burn-in over, policy starts" if first > 1 else ""
        else:
            prev = out[-1].lr_first
            ratio = v / prev if prev not in (0.0,) and math.isfinite(prev) else math.nan
            kind = "plateau"
            by = f"x{fmt(f32(ratio))}" if math.isfinite(ratio) else f"LR {fmt(v)}"
            where = "step" if s.policy is Policy.STEPS else "at batch"
            note = f"{where} {first}: {by}"
        out.append(Phase(kind, first, last, v, v, note))
    return out


def _summarise(s: NetSchedule, phases: list[Phase], what: str) -> list[Phase]:
    if len(phases) <= MAX_LISTED:
        return phases
    head, mid, tail = phases[:_HEAD], phases[_HEAD:-_TAIL], phases[-_TAIL:]
    first, last = mid[0], mid[-1]
    note = f"{len(mid)} more {what} ({mid[0].note} ... {mid[-1].note})"
    return [
        *head,
        Phase("summary", first.first, last.last, first.lr_first, last.lr_last, note),
        *tail,
    ]


def _span_phase(s: NetSchedule, kind: str, a: int, z: int, note: str) -> Phase:
    lrs = lr_at(s, np.array([a, z], dtype=np.int64))
    return Phase(kind, a, z, float(lrs[0]), float(lrs[1]), note)


def _sgdr_cycles(s: NetSchedule, start: int, end: int | None) -> list[Phase]:
    if sgdr_hangs(s):
        return [
            Phase(
                "cycles",
                start,
                end,
                math.nan,
                math.nan,
                f"sgdr_cycle {s.sgdr_cycle}, sgdr_mult {s.sgdr_mult}: darknet hangs",
            )
        ]
    c = s.sgdr_cycle
    horizon = end if end is not None else start + 64 * c
    spans: list[tuple[int, int, int]] = []
    summary: Phase | None = None
    if s.sgdr_mult == 1:  # cycle k covers (k-1)c+1 .. kc: computed, never enumerated
        k0, k1 = max(1, -(-start // c)), max(1, -(-horizon // c))
        ks = list(range(k0, k1 + 1)) if k1 - k0 < MAX_LISTED else []
        if not ks:
            ks = [*range(k0, k0 + _HEAD), *range(k1 - _TAIL + 1, k1 + 1)]
            a, z = (k0 + _HEAD - 1) * c + 1, (k1 - _TAIL) * c
            n = k1 - k0 + 1 - _HEAD - _TAIL
            summary = _span_phase(s, "summary", a, z, f"{n} more cycles of {c} batches")
        spans = [(k, (k - 1) * c + 1, k * c) for k in ks]
    else:
        c0, cyc, k = 0, c, 1
        while c0 < horizon and cyc > 0:
            spans.append((k, c0 + 1, c0 + cyc))
            c0 += cyc
            cyc *= s.sgdr_mult
            k += 1
    out: list[Phase] = []
    for k, a, z in spans:
        a2, z2 = max(a, start), z if end is None else min(z, end)
        if a2 > z2:
            continue
        note = f"cycle {k}: {z - a + 1} batches, restart at {a}, lr_min at {z}"
        out.append(_span_phase(s, "cycle", a2, z2, note))
    if end is None and out:
        p = out[-1]
        out[-1] = Phase(
            p.kind, p.first, None, p.lr_first, p.lr_last, p.note + "; cycles go on"
        )
    if summary is not None:
        return [*out[:_HEAD], summary, *out[_HEAD:]]
    return _summarise(s, out, "cycles")


def _step_plateaus(s: NetSchedule, start: int, end: int | None) -> list[Phase]:
    st = s.step
    horizon = end if end is not None else start + 20 * st
    k0, k1 = start // st + 1, horizon // st  # cuts k*st inside (start, horizon]
    if k1 - k0 < 1000:
        pieces = _constant_pieces(s, start, end, [k * st for k in range(k0, k1 + 1)])
    else:
        head = _constant_pieces(
            s, start, (k0 + _HEAD) * st - 1, [k * st for k in range(k0, k0 + _HEAD)]
        )
        tail = _constant_pieces(s, (k1 - 1) * st, end, [k1 * st])
        a, z = (k0 + _HEAD) * st, (k1 - 1) * st - 1
        n = k1 - 1 - k0 - _HEAD
        note = f"{n} more plateaus: x{fmt(s.scale)} every {st} batches"
        tail = [
            Phase(
                "plateau",
                p.first,
                p.last,
                p.lr_first,
                p.lr_last,
                p.note if i else f"at batch {p.first}",
            )
            for i, p in enumerate(tail)
        ]
        pieces = [*head, _span_phase(s, "summary", a, z, note), *tail]
    if end is None and len(pieces) > 1:
        p = pieces[-1]
        pieces[-1] = Phase(
            p.kind, p.first, None, p.lr_first, p.lr_last, p.note + "; goes on"
        )
    return _summarise(s, pieces, "plateaus")


def phases(s: NetSchedule) -> list[Phase]:
    """The phases of the training range ``b = 1..max_batches`` and what comes after it."""
    mb = s.max_batches
    end: int | None = mb if mb > 0 else None
    out: list[Phase] = []
    start = 1
    if s.burn_in > 1:
        last = s.burn_in - 1 if end is None else min(s.burn_in - 1, end)
        lrs = lr_at(s, np.array([1, last], dtype=np.int64))
        note = f"lr x (b/{s.burn_in})^{fmt(s.power)}"
        out.append(Phase("burn-in", 1, last, float(lrs[0]), float(lrs[1]), note))
        start = s.burn_in
    if end is None or start <= end:
        out.extend(_policy_phases(s, start, end))
    if end is not None:
        after = _lr(s, mb + 1)
        note = "not trained: darknet stops at max_batches; if resumed,"
        if s.policy is Policy.POLY:
            if s.power == int(s.power):
                shape = "negative" if int(s.power) % 2 else "rising again"
            else:
                shape = "NaN"
            note += f" poly's base goes negative, the LR is {shape}"
        else:
            note += " the policy goes on"
        out.append(Phase("after-end", mb + 1, None, after, after, note))
    return out


def _policy_phases(s: NetSchedule, start: int, end: int | None) -> list[Phase]:
    pol = s.policy
    if pol is Policy.CONSTANT:
        return _constant_pieces(s, start, end, [])
    if pol is Policy.STEPS:
        return _constant_pieces(s, start, end, list(s.steps))
    if pol is Policy.STEP:
        if s.step <= 0:
            return [
                Phase(
                    "plateau",
                    start,
                    end,
                    math.nan,
                    math.nan,
                    "step <= 0: darknet fails",
                )
            ]
        return _step_plateaus(s, start, end)
    if pol is Policy.SGDR:
        return _sgdr_cycles(s, start, end)
    last = end if end is not None else start
    lrs = lr_at(s, np.array([start, last], dtype=np.int64))
    notes = {
        Policy.EXP: f"lr x {fmt(s.gamma)}^b",
        Policy.POLY: f"lr x (1 - b/{s.max_batches})^{fmt(s.power)}",
        Policy.SIG: f"lr / (1 + exp({fmt(s.gamma)} x (b - {s.step}))), half LR at b={s.step}",
        Policy.RANDOM: f"lr x U(0,1)^{fmt(s.power)}, redrawn every batch (not reproducible)",
    }
    kind = "random" if pol is Policy.RANDOM else "decay"
    return [Phase(kind, start, end, float(lrs[0]), float(lrs[1]), notes.get(pol, ""))]


def multigpu(s: NetSchedule, gpus: int) -> MultiGpu:
    """The effect of ``-gpus N`` on this fork, and AlexeyAB's advice."""
    mult = s.fork in MULTIPLYING_FORKS
    lr_used = f32(s.learning_rate * gpus) if mult else s.learning_rate
    notes = []
    if mult:
        notes.append(
            f"{s.fork} multiplies learning_rate by {gpus}: it trains with {fmt(lr_used)}"
        )
    else:
        notes.append(f"{s.fork} does not multiply learning_rate by the GPU count")
        notes.append(
            "from scratch it trains on one GPU until burn_in, then restarts on all GPUs"
        )
    notes.append(
        f"GPU 0's batch counter advances about {gpus}x per loop iteration (weights synced"
        " every 4 iterations): burn-in, steps and max_batches come about"
        f" {gpus}x sooner in wall-clock iterations"
    )
    first: tuple[int, ...] = ()
    if gpus > 1:
        from cfgsched.multigpu import multigpu_trace

        trace = multigpu_trace(s, gpus, iterations=GPU0_ITERATIONS)
        first = tuple(int(b) for b in trace.batches)
        notes.append(
            f"GPU 0's batch b over the first {len(first)} loop iterations (weights given):"
            f" {', '.join(map(str, first))}"
        )
    adv_lr: float | None = None
    adv_burn: int | None = None
    if mult and gpus > 1:
        adv_lr = f32(s.learning_rate / gpus)
        adv_burn = s.burn_in * gpus
        notes.append(
            f"AlexeyAB's advice for {gpus} GPUs: learning_rate={fmt(adv_lr)},"
            f" burn_in={adv_burn} (cfgsched adjust --gpus {gpus})"
        )
    return MultiGpu(gpus, mult, lr_used, adv_lr, adv_burn, tuple(notes), first)


def explain(
    s: NetSchedule,
    *,
    at: Sequence[int] | None = None,
    images: int | None = None,
    gpus: int | None = None,
    warnings: Sequence[CfgWarning] | None = None,
) -> Explanation:
    """Explain schedule ``s``; ``at`` lists batches to evaluate (default: phase bounds)."""
    ph = tuple(phases(s))
    if at:
        if any(b < 0 for b in at):
            raise ValueError("--at batches must be >= 0")
        batches = list(at)
    else:
        batches = sorted({b for p in ph for b in (p.first, p.last) if b is not None})
    lrs = lr_at(s, np.asarray(batches, dtype=np.int64)) if batches else np.zeros(0)
    pts = tuple(Point(b, float(x)) for b, x in zip(batches, lrs, strict=True))
    return Explanation(
        source=s.source,
        fork=s.fork,
        policy=s.policy.cfg_name,
        learning_rate=s.learning_rate,
        burn_in=s.burn_in,
        power=s.power,
        max_batches=s.max_batches,
        batch=s.batch,
        subdivisions=s.subdivisions,
        images_per_iteration=s.images_per_iteration,
        dataset_images=images,
        phases=ph,
        points=pts,
        multigpu=multigpu(s, gpus) if gpus else None,
        warnings=tuple(s.warnings if warnings is None else warnings),
    )


def explain_text(
    text: str,
    *,
    source: str = "<string>",
    fork: str = "alexeyab",
    at: Sequence[int] | None = None,
    images: int | None = None,
    gpus: int | None = None,
) -> Explanation:
    """Parse ``text`` with ``fork`` (CfgError if it fails) and explain it with lint's findings."""
    from cfgsched.reader.parser import parse

    s = parse(text, fork=fork, source=source)
    report = lint_text(text, source=source, fork=fork, images=images, gpus=gpus)
    return explain(s, at=at, images=images, gpus=gpus, warnings=report.findings)


def _n(x: int | None) -> str:
    return "" if x is None else f"{x:,}"


def _span(a: str, b: str) -> str:
    return f"{a} - {b}" if b else f"{a} -"


def render(e: Explanation) -> str:
    """Human-readable text: header, aligned phase table, points, multi-GPU, warnings."""
    out = [f"{e.source}: fork {e.fork}, policy {e.policy}"]
    bits = [f"learning_rate {fmt(e.learning_rate)}"]
    if e.burn_in > 0:
        bits.append(f"burn_in {e.burn_in} (power {fmt(e.power)})")
    bits.append(f"max_batches {e.max_batches:,}")
    out.append("  " + ", ".join(bits))
    per = f"  {e.images_per_iteration} images per iteration (batch {e.batch}, subdivisions"
    per += f" {e.subdivisions})"
    if e.dataset_images:
        per += f", dataset {e.dataset_images:,} images"
    out.append(per)
    out.append("")
    head = ["phase", "batches b", "images"]
    if e.dataset_images:
        head.append("epochs")
    head += ["LR first -> last", "note"]
    rows = [head]
    for p in e.phases:
        row = [
            p.kind,
            _span(_n(p.first), _n(p.last)),
            _span(
                _n(e.images(p.first - 1)),
                "" if p.last is None else _n(e.images(p.last)),
            ),
        ]
        if e.dataset_images:
            ep0 = e.epochs(p.first - 1) or 0.0
            ep1 = None if p.last is None else e.epochs(p.last)
            row.append(_span(f"{ep0:.2f}", "" if ep1 is None else f"{ep1:.2f}"))
        same = p.lr_first == p.lr_last or (
            math.isnan(p.lr_first) and math.isnan(p.lr_last)
        )
        lr = fmt(p.lr_first) if same else f"{fmt(p.lr_first)} -> {fmt(p.lr_last)}"
        row += [lr, p.note]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        out.append(
            "  "
            + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        )
    out.append("")
    out.append("  LR at batch b (torch step i = b - 1):")
    bw = max([len(f"{p.batch:,}") for p in e.points] or [1])
    iw = max([len(f"{p.step:,}") for p in e.points] or [1])
    for pt in e.points:
        out.append(f"    b={pt.batch:>{bw},}  i={pt.step:>{iw},}  lr={fmt(pt.lr)}")
    if e.multigpu is not None:
        out.append("")
        out.append(f"  -gpus {e.multigpu.gpus}:")
        out.extend(f"    {n}" for n in e.multigpu.notes)
    if e.warnings:
        out.append("")
        out.append("  warnings:")
        out.extend(f"    {w.format(e.source)}" for w in e.warnings)
    return "\n".join(out) + "\n"
