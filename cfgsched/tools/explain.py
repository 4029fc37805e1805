"""``cfgsched explain``: a schedule's phases, the LRs its torch run trains with, -gpus."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cfgsched.errors import CfgWarning, escape
from cfgsched.kernel.formulas import HANKAI_GPUS, ngpus_lr
from cfgsched.policies import burn_in, module
from cfgsched.policies.base import Explainer, Phase, same
from cfgsched.policies.random import DRAWS
from cfgsched.run import MAX_BATCH, TRACE_LIMIT, Run, advised_schedule
from cfgsched.schedule import Policy
from cfgsched.text import fmt, plain
from cfgsched.tools.lint import gpus_advice, layer_text

#: JSON schema name of ``cfgsched explain --json``.
SCHEMA = "cfgsched-explain/2"

#: Loop iterations of GPU 0's batch counter shown for ``--gpus``.
GPU0_ITERATIONS = 12

#: The schedule's values ``--json`` repeats.
_HEAD = "source fork policy learning_rate burn_in power max_batches batch subdivisions"
_HEAD += " images_per_iteration"


class PointError(ValueError):
    """A point that cannot be evaluated (the ``--at``/``--at-step`` value is at fault)."""


@dataclass(frozen=True)
class Point:
    """The LR at darknet batch ``batch`` and the first step evaluated there (or None)."""

    batch: int
    step: int | None
    lr: float


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
    """Everything ``cfgsched explain`` prints of ``run`` (:meth:`to_dict`: the JSON)."""

    run: Run
    dataset_images: int | None
    phases: tuple[Phase, ...]
    points: tuple[Point, ...]
    multigpu: MultiGpu | None
    warnings: tuple[CfgWarning, ...]

    def images(self, batch: int) -> int:
        """Images darknet has seen after update ``batch``."""
        return batch * self.run.images_per_iteration

    def epochs(self, batch: int) -> float | None:
        """Epochs after update ``batch`` (None without a dataset size)."""
        n = self.dataset_images
        return self.images(batch) / n if n else None

    def spans(self, p: Phase) -> dict[str, list[Any]]:
        """The images (and epochs, given a dataset size) before ``p`` and at its end."""
        ends = [max(p.first - 1, 0), p.last]
        out: dict[str, list[Any]] = {
            "images": [None if b is None else self.images(b) for b in ends]
        }
        if self.dataset_images:
            out["epochs"] = [None if b is None else self.epochs(b) for b in ends]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema ``cfgsched-explain/2``); LR NaN/inf are strings."""
        m, r = self.multigpu, self.run
        names = {"advised_lr": "advised_learning_rate"}
        head = _pick(r.given, *_HEAD.split())
        head["policy"] = r.given.policy.cfg_name
        doc = {"schema": SCHEMA, **head, "dataset_images": self.dataset_images}
        doc["translation"] = {
            "options": r.options.to_record(),
            "learning_rate": r.params.lr,
            "images_per_step": r.images_per_step,
            "start_step": r.start,
            "start_batch": r.batch(r.start),
            "mapping": r.mapping,
        }
        doc["phases"] = [
            {
                "kind": p.kind,
                "batches": {"first": p.first, "last": p.last, **self.spans(p)},
                **_pick(p, "step", "lr_first", "lr_last", "note"),
            }
            for p in self.phases
        ]
        doc["points"] = [_pick(p, "step", "batch", "lr") for p in self.points]
        doc["multigpu"] = m and {names.get(k, k): v for k, v in vars(m).items()}
        doc["layers"] = [x.to_dict() for x in r.layers]
        keys = ("line", "col", "code", "key", "message")
        doc["warnings"] = [_pick(w, *keys) for w in self.warnings]
        return {k: plain(v) for k, v in doc.items()}

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)


def _pick(x: object, *names: str) -> dict[str, Any]:
    """The attributes ``names`` of ``x`` as a dict."""
    return {k: getattr(x, k) for k in names}


def _lrs(run: Run, batches: Sequence[int]) -> list[float]:
    """The LR at each batch (NaN where darknet's sgdr search would never end)."""
    try:
        return list(run.batch_lrs(np.asarray(batches, dtype=np.int64)).tolist())
    except ValueError:  # a zero-length sgdr cycle: evaluate one by one
        return [math.nan] if len(batches) == 1 else [_lrs(run, [b])[0] for b in batches]


def _after_end(run: Run, mb: int) -> Phase:
    (after,) = _lrs(run, [mb + 1])
    s = run.schedule
    note = "not trained: darknet stops at max_batches; if resumed,"
    if s.policy is not Policy.POLY:
        note += " the policy goes on"
    elif math.isfinite(s.power) and s.power == int(s.power):
        note += " poly's base goes negative, the LR is "
        note += "negative" if int(s.power) % 2 else "rising again"
    else:
        note += " poly's base goes negative" + ", the LR is NaN" * math.isfinite(
            s.power
        )
    return Phase("after-end", mb + 1, None, after, after, note)


def _ends(run: Run, p: Phase) -> tuple[int, int] | None:
    """The batches of the first and last steps in ``p`` (None: no step is)."""
    b0 = run.batch(run.first_step(p.first))
    if p.last is None:
        return b0, b0
    if b0 > p.last:
        return None
    b1 = run.batch(run.first_step(p.last + 1) - 1)
    return b0, b1 if p.first <= b1 <= p.last else b0


def _stepped(run: Run, p: Phase) -> Phase:
    """``p`` with its first step and the LRs of its first and last steps."""
    ends = _ends(run, p)
    if ends is None:
        note = f"{p.note}; " * bool(p.note) + "no optimizer step trains here"
        return replace(p, lr_first=None, lr_last=None, step=None, note=note)
    step = run.first_step(p.first)
    if same(p.lr_first, math.nan) and same(p.lr_last, math.nan):
        return replace(p, step=step)
    lo, hi = _lrs(run, ends)
    keep = p.last is None and not same(p.lr_first, p.lr_last)
    return replace(p, lr_first=lo, lr_last=p.lr_last if keep else hi, step=step)


def phases(run: Run) -> list[Phase]:
    """The phases of ``b = 1..max_batches`` and after, with their steps and LRs (steps at
    batch 0 first, as their own phase)."""
    s = run.schedule
    end = s.max_batches if s.max_batches > 0 else None
    out, start = [], 1
    x = Explainer(s, lambda batches: _lrs(run, batches))
    if s.burn_in > 1:
        out.append(burn_in.phase(x, end))
        start = s.burn_in
    if end is None or start <= end:
        out.extend(module(s.policy).phases(x, start, end))
    if end is not None:
        out.append(_after_end(run, end))
    if run.trace_too_long:
        return [replace(p, step=None) for p in out]
    if run.batch(run.start) == 0:
        (lr,) = _lrs(run, [0])
        note = "steps before darknet's first batch (b rounds down to 0)"
        out.insert(0, Phase("before-b1", 0, 0, lr, lr, note))
    return [_stepped(run, p) for p in out]


def multigpu(run: Run) -> MultiGpu:
    """The effect of ``-gpus N`` (``options.ngpus``) on this fork, and AlexeyAB's advice."""
    s, o, n, lr = run.given, run.options, run.options.ngpus, run.params.lr
    first = tuple(run.gpu0_batches(GPU0_ITERATIONS))
    counter = (
        f"GPU 0's batch counter advances about {n}x per loop iteration (weights synced"
        f" every 4 iterations): burn-in, steps and max_batches come about {n}x sooner"
        " in wall-clock iterations",
        f"GPU 0's batch b over the first {len(first)} loop iterations"
        f" ({'no weights file' if o.scratch else 'weights given'}):"
        f" {', '.join(map(str, first))}",
    )
    if ngpus_lr(run.params.fork, 1.0, 2) == 1.0:  # the fork's -gpus base-rate rule
        notes = (
            HANKAI_GPUS,
            "from scratch it trains on one GPU until burn_in, then restarts on all GPUs",
        )
        return MultiGpu(n, False, lr, None, None, notes + counter, first)
    a = advised_schedule(s, n)
    rate, advice = gpus_advice(s, n, lr, ideal=o.ideal)
    return MultiGpu(
        n, True, lr, a.learning_rate, a.burn_in, (rate, *counter, advice), first
    )


def points(
    run: Run, *, at: Sequence[int] = (), at_steps: Sequence[int] = ()
) -> list[Point]:
    """The LR at the batches ``at`` and the 0-based steps ``at_steps`` (else PointError)."""
    if not all(0 <= x <= MAX_BATCH for x in (*at, *at_steps)):
        raise PointError(f"batches and steps must be from 0 to {MAX_BATCH}")
    if at_steps and run.trace_too_long:
        why = f"--multigpu trace: more than {TRACE_LIMIT:,} loop iterations of GPU 0"
        raise PointError(why)
    step_batches = [run.batch(i) for i in at_steps]
    if any(b > MAX_BATCH for b in step_batches):
        raise PointError(f"a step's darknet batch is beyond int64 ({MAX_BATCH})")
    landing = [None if run.trace_too_long else run.landing_step(b) for b in at]
    out = list(map(Point, at, landing, _lrs(run, at)))
    return out + list(map(Point, step_batches, at_steps, _lrs(run, step_batches)))


def explain(
    run: Run,
    *,
    at: Sequence[int] | None = None,
    at_steps: Sequence[int] | None = None,
    images: int | None = None,
    warnings: Sequence[CfgWarning] | None = None,
) -> Explanation:
    """Explain ``run`` at ``at``/``at_steps`` (default: each phase's first and last step)."""
    ph = tuple(phases(run))
    if not at and not at_steps:
        ends = [e for p in ph if p.lr_first is not None and (e := _ends(run, p))]
        at = sorted({b for e in ends for b in e})
    pts = tuple(points(run, at=at or (), at_steps=at_steps or ()))
    gpus = multigpu(run) if run.ngpus > 1 else None
    found = run.given.warnings if warnings is None else warnings
    return Explanation(run, images, ph, pts, gpus, tuple(found))


def _n(x: int | None) -> str:
    return "" if x is None else f"{x:,}"


def _span(a: str, b: str) -> str:
    return f"{a} - {b}" if b else f"{a} -"


def _header(e: Explanation) -> list[str]:
    r, s = e.run, e.run.given
    out = [f"{escape(s.source)}: fork {s.fork}, policy {s.policy.cfg_name}"]
    if s.policy is Policy.RANDOM:
        out[0] += f" (every LR below: {DRAWS})"
    lr = f"  learning_rate {fmt(s.learning_rate)}"
    burn = f", burn_in {s.burn_in} (power {fmt(s.power)})" * (s.burn_in > 0)
    out.append(f"{lr}{burn}, max_batches {s.max_batches:,}")
    per = f"  {s.images_per_iteration} images per iteration"
    per += f" (batch {s.batch}, subdivisions {s.subdivisions})"
    if e.dataset_images:
        per += f", dataset {e.dataset_images:,} images"
    out.append(per)
    notes = r.notes
    run = [f"base LR {fmt(r.params.lr)}", notes["mapping"], notes.get("double")]
    out.append(f"  torch run: {', '.join(filter(None, run))}")
    out.extend(f"  {n}" for k, n in notes.items() if k == "resume")
    return out


def _phase_row(e: Explanation, p: Phase) -> list[str]:
    spans = e.spans(p)
    row = [
        p.kind,
        _span(_n(p.first), _n(p.last)),
        ("-" if p.lr_first is None else "?") if p.step is None else f"{p.step:,}",
        _span(*map(_n, spans["images"])),
    ]
    if e.dataset_images:
        row.append(_span(*("" if x is None else f"{x:.2f}" for x in spans["epochs"])))
    if p.lr_first is None or p.lr_last is None:
        return [*row, "-", p.note]
    lr = fmt(p.lr_first)
    lr += "" if same(p.lr_first, p.lr_last) else f" -> {fmt(p.lr_last)}"
    return [*row, lr, p.note]


def _table(e: Explanation) -> list[str]:
    head = ["phase", "batches b", "from step i", "images"]
    head += ["epochs"] * bool(e.dataset_images) + ["LR first -> last", "note"]
    rows = [head, *(_phase_row(e, p) for p in e.phases)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def _points(e: Explanation) -> list[str]:
    out = ["  LR at batch b and optimizer step i (i=- : no step is evaluated at b):"]
    steps = ["-" if p.step is None else f"{p.step:,}" for p in e.points]
    bw = max([len(f"{p.batch:,}") for p in e.points] or [1])
    iw = max([len(i) for i in steps] or [1])
    for pt, i in zip(e.points, steps, strict=True):
        out.append(f"    b={pt.batch:>{bw},}  i={i:>{iw}}  lr={fmt(pt.lr)}")
    return out


def render(e: Explanation) -> str:
    """Human-readable text: header, phase table, points, layers, multi-GPU, warnings."""
    out = [*_header(e), "", *_table(e), "", *_points(e)]
    if e.run.layers:
        out += ["", "  layer schedule (other layers train normally):"]
        out.extend(
            f"    {layer_text(r)} ({r.rule}, line {r.line})" for r in e.run.layers
        )
    if e.multigpu is not None:
        out += ["", f"  -gpus {e.multigpu.gpus}:"]
        out.extend(f"    {n}" for n in e.multigpu.notes)
    if e.warnings:
        out += ["", "  warnings:"]
        out.extend(f"    {w.format(e.run.given.source)}" for w in e.warnings)
    return "\n".join(out) + "\n"
