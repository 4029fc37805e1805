"""The generated module under every translation option ``convert`` accepts equals the
library's translation: ``lr_at(i)`` and the stepped ``build_scheduler`` give
``cfgsched.run.translate(schedule, options).lr(i)`` at every step checked.

Modules are written by the real ``cfgsched convert`` command and loaded with cfgsched
blocked; the expected values come from the library (the kernel through
:meth:`cfgsched.run.Run.lrs`), never from the module.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import cfgsched
from cfgsched import NetSchedule
from cfgsched.cli import main
from cfgsched.codegen import generate
from cfgsched.options import Options
from cfgsched.run import translate
from tests import modules
from tests.test_oracle import schedules

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = SAMPLES / "yolov4.cfg"
#: exp with gamma 0.99 falls below float32's normal range from b = 8003 on.
EXP_CFG = (
    "[net]\nbatch=8\nlearning_rate=0.001\npolicy=exp\ngamma=0.99\nmax_batches=9000\n"
    "width=32\nheight=32\nchannels=3\n"
)
#: The README's tolerance for --double: 1e-6 relative (away from poly's end, subnormals).
DOUBLE_REL_TOL = 1e-6


def convert_module(
    tmp_path: Path, cfg: Path, *args: str, name: str = "gen_options"
) -> Any:
    """``cfgsched convert CFG ARGS -o FILE``, then the file loaded with cfgsched blocked."""
    out = tmp_path / f"{name}.py"
    res = CliRunner().invoke(main, ["convert", str(cfg), "-o", str(out), *args])
    assert res.exit_code == 0, res.output
    with modules.cfgsched_blocked():
        return modules.load(out.read_text(), name)


def checked_steps(t: Any, schedule: NetSchedule, dense: int = 1200) -> np.ndarray:
    """Steps 0..dense and the steps around every boundary of the run (in step units)."""
    ratio = t.images_per_iteration / t.images_per_step
    marks = [schedule.burn_in, *schedule.steps, schedule.max_batches]
    near = [int(b * ratio) + d for b in marks for d in range(-3, 4)]
    steps = [s for s in range(dense)] + near + [10**6, 10**7]
    return np.unique(np.array([s for s in steps if s >= 0], dtype=np.int64))


def assert_module_equals(m: Any, schedule: NetSchedule, options: Options) -> None:
    """lr_at and the scheduler (stepped from 0, resumed near each mark) == the library."""
    t = translate(schedule, options)
    steps = checked_steps(t, schedule)
    want = t.lrs(steps)
    got = np.array([m.lr_at(int(i)) for i in steps], dtype=want.dtype)
    assert_same(steps, got, want)
    first = steps[steps < 1200]
    with modules.cfgsched_blocked():
        lrs = modules.stepped(m, len(first), last_epoch=t.start - 1)
    want_run = t.lrs(t.start + np.arange(len(first)))
    assert_same(first, np.array(lrs, dtype=want.dtype), want_run)
    for i in steps[steps >= 1200][:40]:
        with modules.cfgsched_blocked():
            (lr,) = modules.stepped(m, 1, last_epoch=int(i) - 1)
        assert_same(np.array([i]), np.array([lr], want.dtype), want[steps == i])


def assert_same(steps: np.ndarray, got: np.ndarray, want: np.ndarray) -> None:
    width = np.uint32 if want.dtype == np.float32 else np.uint64
    bad = np.flatnonzero(got.view(width) != want.view(width))
    assert bad.size == 0, [(int(steps[i]), got[i], want[i]) for i in bad[:5]]


def weights_file(path: Path, seen: int) -> Path:
    """A .weights header (major 0, minor 2, revision 5: 64-bit seen) and a few bytes."""
    path.write_bytes(struct.pack("<3iQ", 0, 2, 5, seen) + b"\0" * 16)
    return path


CASES: list[tuple[str, tuple[str, ...], Options]] = [
    ("yolov4.cfg", (), Options()),
    (
        "yolov4.cfg",
        ("--torch-batch", "16", "--accumulate", "2"),
        Options(images_per_step=32),
    ),
    (
        "yolov4.cfg",
        ("--torch-batch", "8", "--accumulate", "2", "--world-size", "2"),
        Options(images_per_step=32),
    ),
    ("yolov4.cfg", ("--torch-batch", "96"), Options(images_per_step=96)),
    ("yolov4.cfg", ("--gpus", "4"), Options(ngpus=4)),
    (
        "yolov4.cfg",
        ("--gpus", "4", "--multigpu", "trace"),
        Options(ngpus=4, multigpu="trace"),
    ),
    ("yolov4.cfg", ("--gpus", "4", "--ideal"), Options(ngpus=4, ideal=True)),
    ("yolov4.cfg", ("--fork", "hankai"), Options()),
    (
        "yolov4.cfg",
        ("--fork", "hankai", "--gpus", "4", "--multigpu", "trace", "--scratch"),
        Options(ngpus=4, multigpu="trace", scratch=True),
    ),
    (
        "yolov4.cfg",
        ("--fork", "pjreddie", "--gpus", "2", "--multigpu", "trace"),
        Options(ngpus=2, multigpu="trace"),
    ),
    ("classifier-poly.cfg", ("--fork", "hankai"), Options()),
    ("classifier-poly.cfg", ("--keep-subnormals",), Options(flush=False)),
    ("sgdr.cfg", ("--gpus", "2"), Options(ngpus=2)),
    ("sgdr.cfg", ("--fork", "hankai", "--flush-subnormals"), Options(flush=True)),
]


@pytest.mark.parametrize(
    ("cfg", "args", "options"), CASES, ids=[" ".join((c, *a)) for c, a, _ in CASES]
)
def test_convert_options(
    tmp_path: Path, cfg: str, args: tuple[str, ...], options: Options
) -> None:
    path = SAMPLES / cfg
    fork = args[args.index("--fork") + 1] if "--fork" in args else "alexeyab"
    schedule = cfgsched.load(path, fork=fork)
    m = convert_module(tmp_path, path, *args)
    assert m.CFGSCHED["options"] == options.to_record()
    assert (m.CFGSCHED["fork"], m.CFGSCHED["cfg"]) == (fork, cfg)
    assert_module_equals(m, schedule, options)


def test_resume_from_weights(tmp_path: Path) -> None:
    """The default build_scheduler starts where darknet resumes the file (images mode)."""
    schedule = cfgsched.load(YOLOV4)
    w = weights_file(tmp_path / "last.weights", 399_990 * 64 + 5)
    for args, options, start in [
        ((), Options(resume_iteration=399_990), 399_990),
        (("--gpus", "2"), Options(ngpus=2, resume_iteration=399_990), 199_995),
        (
            ("--torch-batch", "48"),
            Options(images_per_step=48, resume_iteration=399_990),
            533_320,
        ),
    ]:
        m = convert_module(tmp_path, YOLOV4, "--resume-from", str(w), *args, "--force")
        assert m.CFGSCHED["options"] == options.to_record()
        assert translate(schedule, options).start == start == m.RESUME_STEP
        with modules.cfgsched_blocked():
            lrs = modules.stepped(m, 30)  # the default: resumed
        want = translate(schedule, options).lrs(start + np.arange(30))
        assert_same(start + np.arange(30), np.float32(lrs), want)
        assert_module_equals(m, schedule, options)


@pytest.mark.parametrize("flag", ["--flush-subnormals", "--keep-subnormals"])
def test_flush_choice_where_it_matters(tmp_path: Path, flag: str) -> None:
    """exp, gamma 0.99: from b = 8003 on darknet's -Ofast build gives 0, -O0 subnormals."""
    cfg = tmp_path / "exp.cfg"
    cfg.write_text(EXP_CFG)
    schedule = cfgsched.load(cfg)
    m = convert_module(tmp_path, cfg, flag)
    options = Options(flush=flag == "--flush-subnormals")
    assert_module_equals(m, schedule, options)
    late = m.lr_at(8100)
    assert (late == 0.0) == options.flush and 0 <= late < 2.0**-126


def test_double_within_readme_tolerance(tmp_path: Path) -> None:
    schedule = cfgsched.load(YOLOV4)
    m = convert_module(tmp_path, YOLOV4, "--double")
    options = Options(exact=False)
    assert_module_equals(m, schedule, options)  # the double translation, exactly
    steps = np.arange(0, 600_000, 997, dtype=np.int64)
    exact = translate(schedule, Options()).lrs(steps)
    got = np.array([m.lr_at(int(i)) for i in steps])
    rel = np.abs(got - exact.astype(np.float64)) / exact.astype(np.float64)
    assert rel.max() <= DOUBLE_REL_TOL and rel.max() > 0


def test_group_multipliers(tmp_path: Path) -> None:
    """lr = LEARNING_RATE (or the cfg's decimal 0.0013) gets darknet's value exactly; other
    groups scale with lr / LEARNING_RATE like the library's scheduler (within a float32
    rounding of the ratio's reference)."""
    import torch

    from cfgsched.adapters.darknet_lr import DarknetLR

    schedule = cfgsched.load(YOLOV4)
    m = convert_module(tmp_path, YOLOV4)
    lrs = (0.0013, m.LEARNING_RATE * 0.1, 0.01)
    with modules.cfgsched_blocked():
        opt = modules.sgd(m, lrs)
        sched = m.build_scheduler(opt, rescale=True)  # the ratios are meant
        got = []
        for _ in range(1100):
            got.append([float(g["lr"]) for g in opt.param_groups])
            opt.step()
            sched.step()
    ref_opt = torch.optim.SGD(
        [
            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": x}
            for x in (m.LEARNING_RATE, *lrs)
        ]
    )
    ref = DarknetLR(ref_opt, schedule)
    want = []
    for _ in range(1100):
        want.append([float(g["lr"]) for g in ref_opt.param_groups])
        ref_opt.step()
        ref.step()
    g, w = np.array(got), np.array(want)
    assert (g[:, :2] == w[:, :2]).all()  # multiplier exactly 1
    assert np.allclose(g[:, 2:], w[:, 2:], rtol=1e-7, atol=0)


# --------------------------------------------------------------------- property test


@st.composite
def translations(draw: st.DrawFn) -> tuple[NetSchedule, Options]:
    schedule = draw(schedules())
    o = draw(
        st.builds(
            dict,
            exact=st.booleans(),
            flush=st.sampled_from([None, True, False]),
            ngpus=st.sampled_from([1, 2, 3, 4]),
            trace=st.booleans(),
            scratch=st.booleans(),
            images_per_step=st.sampled_from([None, 1, 7, 64, 100, 1000]),
            ideal=st.booleans(),
            resume_iteration=st.sampled_from([None, 0, 5, 1234]),
            seed=st.integers(0, 2**32),
        )
    )
    trace = o.pop("trace")
    if o["flush"] and not o["exact"]:
        o["flush"] = None
    if trace:
        o.update(multigpu="trace", images_per_step=None, resume_iteration=None)
    else:
        o["scratch"] = False
    if o["ngpus"] < 2:
        o["ideal"] = False
    return schedule, Options(**o)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    pair=translations(),
    extra=st.lists(
        st.integers(0, 3 * 10**5) | st.sampled_from([10**6, 10**9]), max_size=8
    ),
)
def test_module_equals_translation(
    pair: tuple[NetSchedule, Options], extra: list[int]
) -> None:
    """Random schedules (every policy and fork, odd parameters) x random options."""
    schedule, options = pair
    t = translate(schedule, options)
    text = generate(schedule, options)
    with modules.cfgsched_blocked():
        m = modules.load(text, "gen_property")
    marks = [
        0,
        schedule.burn_in,
        schedule.step,
        schedule.max_batches,
        schedule.sgdr_cycle,
    ]
    steps = sorted(
        {
            max(0, s + d)
            for s in [*marks, *schedule.steps, *extra]
            for d in (-2, -1, 0, 1)
        }
    )
    for i in [*range(40), *steps]:
        try:
            want = t.lr(i)
        except (ValueError, ZeroDivisionError, OverflowError):
            with pytest.raises(Exception):  # noqa: B017 (darknet loops or divides by 0)
                m.lr_at(i)
            continue
        got = m.lr_at(i)
        assert struct.pack("<d", got) == struct.pack("<d", want) or (
            math.isnan(got)
            and math.isnan(want)
            and math.copysign(1, got) == math.copysign(1, want)
        ), (i, got, want)
    with modules.cfgsched_blocked():
        lrs = modules.stepped(m, 12, last_epoch=t.start - 1)
    for k, lr in enumerate(lrs):
        want = t.lr(t.start + k)
        assert lr == want or (math.isnan(lr) and math.isnan(want)), (k, lr, want)
