"""One translation, one LR: every place that shows or runs a translated schedule agrees.

For generated schedules (all policies, all forks) × translation options (``-gpus`` count
and mode, hankai's scratch start, torch batch × accumulation × world size, AlexeyAB's
advice, double arithmetic, flushing, resume point), every source in :func:`sources` gives
the same float32 LR at every optimizer step checked: the first steps of the run, steps
around each boundary and the run's last steps.

To add a source (e.g. a generated module's ``lr_at`` and its stepped ``build_scheduler``),
append ``(name, function)`` to :func:`sources`: the function gets the schedule, the
options and the sorted 0-based steps (one or more contiguous windows) and returns one LR
per step, or None when it cannot express these options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgsched.adapters.darknet_lr import DarknetLR, DarknetScheduler
from cfgsched.boundaries import boundaries
from cfgsched.codegen import generate
from cfgsched.options import Options
from cfgsched.reader.parser import parse
from cfgsched.run import Run, advised_schedule, translate
from cfgsched.schedule import NetSchedule
from cfgsched.tools import explain, plot
from tests import modules

#: ``source(schedule, options, steps)``: the LR at each step, or None (not expressible).
Source = Callable[[NetSchedule, Options, list[int]], Sequence[float] | None]


def windows(steps: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of consecutive steps in the sorted ``steps``."""
    out: list[tuple[int, int]] = []
    for i in steps:
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def oracle_lrs(s: NetSchedule, o: Options, steps: list[int]) -> list[float]:
    """``Run.lrs``: the vectorized step -> batch -> LR path."""
    return translate(s, o).lrs(np.asarray(steps, dtype=np.int64)).tolist()


def explain_lrs(s: NetSchedule, o: Options, steps: list[int]) -> list[float]:
    """``explain --at-step`` (the library function behind it)."""
    return [p.lr for p in explain.points(translate(s, o), at_steps=steps)]


def plot_lrs(s: NetSchedule, o: Options, steps: list[int]) -> list[float]:
    """The plotted curve of ``plot --x steps`` over each window (one point per step)."""
    v = plot.Variant(s, "x", o)
    out: list[float] = []
    for a, z in windows(steps):
        (c, *_) = plot.plot_data([v], x="steps", first=a, last=z - 1).curves
        assert c.exact and c.start.tolist() == list(range(a, z))
        out += c.hi.tolist()
    return out


def stepped(
    make: Callable[[Any, int], Any], lr: float, steps: list[int]
) -> list[float]:
    """Build a scheduler on a real one-parameter SGD at the start of each window (as a run
    resumed there) and read the group's LR before each ``optimizer.step()``."""
    out: list[float] = []
    for a, z in windows(steps):
        w = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([w], lr=lr)
        if a > 0:
            opt.param_groups[0]["initial_lr"] = lr
        sched = make(opt, a - 1)
        for _ in range(a, z):
            out.append(opt.param_groups[0]["lr"])
            w.grad = torch.ones(1)
            opt.step()
            sched.step()
    return out


def scheduler_lrs(s: NetSchedule, o: Options, steps: list[int]) -> list[float]:
    """``DarknetScheduler(optimizer, translate(schedule, options))`` stepped for real."""
    t = translate(s, o)
    return stepped(lambda opt, last: DarknetScheduler(opt, t, last), t.cfg_lr, steps)


def darknet_lr_lrs(s: NetSchedule, o: Options, steps: list[int]) -> list[float] | None:
    """``DarknetLR`` built from its own keyword arguments, stepped for real (None when the
    options need one it does not have: an explicit flush choice)."""
    if o.flush is not None:
        return None
    trained = advised_schedule(s, o.ngpus) if o.ideal else s
    kw = dict(
        exact=o.exact, ngpus=o.ngpus, multigpu=o.multigpu,
        images_per_step=o.images_per_step, scratch=o.scratch, seed=o.seed,
    )  # fmt: skip

    def make(opt: Any, last: int) -> Any:
        return DarknetLR(opt, trained, last_epoch=last, **kw)  # type: ignore[arg-type]

    return stepped(make, translate(s, o).cfg_lr, steps)


_MODULES: dict[tuple[str, Options], Any] = {}


def module_of(s: NetSchedule, o: Options) -> Any:
    """The module ``cfgsched convert`` writes for ``s`` and ``o``, imported with cfgsched
    blocked (it must stand alone)."""
    key = (s.source + repr(s.to_dict()), o)
    if key not in _MODULES:
        _MODULES[key] = modules.load(generate(s, o), f"agree_{len(_MODULES)}")
    return _MODULES[key]


def module_lr_at(s: NetSchedule, o: Options, steps: list[int]) -> list[float]:
    """The generated module's ``lr_at(step)``."""
    mod = module_of(s, o)
    return [mod.lr_at(i) for i in steps]


def module_scheduler_lrs(s: NetSchedule, o: Options, steps: list[int]) -> list[float]:
    """The generated module's ``build_scheduler`` stepped for real on a group created with
    its ``LEARNING_RATE``."""
    mod = module_of(s, o)
    return stepped(mod.build_scheduler, mod.LEARNING_RATE, steps)


def sources() -> list[tuple[str, Source]]:
    """Every LR source that must agree; the first is the reference."""
    return [
        ("Run.lrs", oracle_lrs),
        ("explain --at-step", explain_lrs),
        ("plot --x steps", plot_lrs),
        ("DarknetScheduler stepped", scheduler_lrs),
        ("DarknetLR stepped", darknet_lr_lrs),
        ("generated lr_at", module_lr_at),
        ("generated build_scheduler stepped", module_scheduler_lrs),
    ]


# ----------------------------------------------------------------------------- strategies

POLICIES = ("constant", "step", "steps", "exp", "poly", "sigmoid", "sgdr", "random")


@st.composite
def cfg_texts(draw: st.DrawFn) -> tuple[str, str]:
    """A ``[net]`` section (every policy) plus one layer, and the fork reading it."""
    fork = draw(st.sampled_from(("alexeyab", "pjreddie", "hankai")))
    policies = [p for p in POLICIES if not (fork == "pjreddie" and p == "sgdr")]
    policy = draw(st.sampled_from(policies))
    mb = draw(st.integers(1, 3000))
    lines = [
        f"batch={draw(st.sampled_from((1, 16, 64)))}",
        f"learning_rate={draw(st.sampled_from(('0.001', '0.0013', '0.01', '0.1')))}",
        f"burn_in={draw(st.integers(0, 400))}",
        f"power={draw(st.sampled_from(('1', '2', '4', '0.5')))}",
        f"max_batches={mb}",
        f"policy={policy}",
    ]
    if policy == "steps":
        steps = sorted(draw(st.lists(st.integers(1, mb + 50), min_size=1, max_size=4)))
        scales = [draw(st.sampled_from(("0.1", "0.5", "2"))) for _ in steps]
        lines += [f"steps={','.join(map(str, steps))}", f"scales={','.join(scales)}"]
    elif policy == "step":  # only the keys the policy reads (hankai stops on others)
        lines += [f"step={draw(st.integers(1, mb))}", "scale=0.5"]
    elif policy == "sigmoid":
        lines += [f"step={draw(st.integers(1, mb))}"]
        lines.append(f"gamma={draw(st.sampled_from(('0.01', '-0.02', '0.999')))}")
    elif policy == "exp":
        lines.append(f"gamma={draw(st.sampled_from(('0.999', '0.99', '1')))}")
    elif policy == "sgdr":
        lines += [f"sgdr_cycle={draw(st.integers(1, mb))}", "sgdr_mult=2"]
        lines.append("learning_rate_min=0.00001")
    head = "[net]\nwidth=32\nheight=32\nchannels=3\n"
    return head + "\n".join(lines) + "\n\n[maxpool]\nsize=2\nstride=2\n", fork


@st.composite
def option_sets(draw: st.DrawFn, max_batches: int) -> Options:
    """A valid translation option set (every field of :class:`Options` varies)."""
    ngpus = draw(st.sampled_from((1, 1, 2, 4)))
    trace = ngpus > 1 and draw(st.booleans())
    exact = draw(st.booleans())
    kw: dict[str, Any] = {
        "ngpus": ngpus,
        "exact": exact,
        "multigpu": "trace" if trace else "images",
        "scratch": trace and draw(st.booleans()),
        "ideal": ngpus > 1 and draw(st.booleans()),
        "flush": draw(st.sampled_from((None, True, False))) if exact else None,
        "seed": draw(st.integers(0, 3)),
    }
    if not trace:
        if draw(st.booleans()):
            t, a, w = (draw(st.integers(1, n)) for n in (128, 4, 4))
            kw["images_per_step"] = t * a * w
        kw["resume_iteration"] = draw(
            st.sampled_from((None, 0)) | st.integers(1, max_batches)
        )
    return Options(**kw)


def checked_steps(t: Run) -> list[int]:
    """The first steps of the run, a window around each boundary, the run's last steps."""
    n, start, s = t.stop, t.start, t.schedule
    marks = [b.batch for b in boundaries(s, 1, s.max_batches, limit=8)[0]]
    around = [t.first_step(b) for b in marks]
    picked = set(range(start, start + 40))
    for i in [*around, n - 1]:
        picked.update(range(max(i - 3, start), i + 4))
    return sorted(picked)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.data())
def test_every_source_gives_the_same_float32_lr(data: st.DataObject) -> None:
    text, fork = data.draw(cfg_texts())
    s = parse(text, fork=fork, source="gen.cfg")
    o = data.draw(option_sets(s.max_batches))
    t = translate(s, o)
    steps = checked_steps(t)
    ref_name, ref_source = sources()[0]
    ref = np.asarray(ref_source(s, o, steps), dtype=np.float32)
    assert ref.size == len(steps)
    for name, source in sources()[1:]:
        got = source(s, o, steps)
        if got is None:
            continue
        g = np.asarray(got, dtype=np.float32)
        bad = np.flatnonzero(~((g == ref) | (np.isnan(g) & np.isnan(ref))))
        assert bad.size == 0, (
            f"{name} vs {ref_name} at step {steps[bad[0]]}: {g[bad[0]]!r} != "
            f"{ref[bad[0]]!r} ({o})"
        )


def test_windows_and_sources_are_what_the_docstring_says() -> None:
    assert windows([0, 1, 2, 5, 6, 9]) == [(0, 3), (5, 7), (9, 10)]
    names = [n for n, _ in sources()]
    assert names[0] == "Run.lrs" and len(set(names)) == len(names)


@pytest.mark.parametrize(
    "options",
    [
        Options(ngpus=4),
        Options(images_per_step=32),
        Options(ngpus=4, multigpu="trace"),
        Options(ngpus=4, ideal=True),
        Options(resume_iteration=1234),
        Options(exact=False),
    ],
    ids=["gpus4", "torch-batch32", "trace", "ideal", "resume", "double"],
)
def test_yolov4_sources_agree(options: Options) -> None:
    """The issue's round trips on yolov4.cfg, every source, around every boundary."""
    from pathlib import Path

    cfg = Path(__file__).resolve().parents[1] / "sample_cfgs" / "yolov4.cfg"
    s = parse(cfg.read_text(), source=str(cfg))
    t = translate(s, options)
    steps = checked_steps(t)
    ref = np.asarray(oracle_lrs(s, options, steps), dtype=np.float32)
    for name, source in sources()[1:]:
        got = source(s, options, steps)
        if got is not None:
            assert np.array_equal(np.asarray(got, dtype=np.float32), ref), name
