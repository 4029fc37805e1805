"""native_scheduler: torch built-ins only where exact, otherwise NotExactError.

References are independent of cfgsched.adapters.native: the golden LR bits printed by darknet's C
code, and ``cfgsched.kernel.formulas.rate`` (verified bit for bit against every golden point).
Every returned scheduler is driven for real (``optimizer.step()``, ``scheduler.step()``).
"""

from __future__ import annotations

import itertools
import math
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import LinearLR, LRScheduler, PolynomialLR

import cfgsched
from cfgsched import NetSchedule, NotExactError
from cfgsched.adapters.native import (
    MAX_PARTS,
    REL_TOL,
    native_plan,
    native_scheduler,
)
from cfgsched.options import Options
from cfgsched.policies import rate
from cfgsched.schedule import f32
from tests.golden import EvalCase, case_ids, eval_cases, float_to_bits, needs_golden

OK_CASES = [c for c in eval_cases() if c.ok]
STEPPED_MAX = 100_000


def make_optimizer(*lrs: float) -> torch.optim.SGD:
    """SGD with one single-tensor parameter group per lr."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def drive(sched: LRScheduler, steps: int) -> list[list[float]]:
    """The lr of every group for each of ``steps`` optimizer steps (training-loop order)."""
    opt = sched.optimizer
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # optimizer.step() is skipped after the first step
        for i in range(steps):
            out.append([float(g["lr"]) for g in opt.param_groups])
            if i == 0:
                opt.step()
            sched.step()
    return out


def schedule(text: str, fork: str = "alexeyab") -> NetSchedule:
    """A schedule from ``[net]`` lines (plus one layer section, which hankai requires)."""
    return cfgsched.parse(
        "[net]\nwidth=8\nheight=8\nchannels=3\n"
        + text
        + "\n[convolutional]\nfilters=1\n",
        fork=fork,
    )


def kernel_lr(
    s: NetSchedule, b: int, *, lr: float | None = None, exact: bool = True
) -> float:
    p = s.kernel_params()
    if lr is not None:
        p = p._replace(lr=lr)
    return rate(p, b, exact)


# ------------------------------------------------------------------------------ golden


@needs_golden
@pytest.mark.parametrize("case", OK_CASES, ids=case_ids(OK_CASES))
def test_golden_exact_or_refused(case: EvalCase) -> None:
    """Every golden case: a native scheduler equal at every listed batch, or NotExactError
    (under the golden data's build: -Ofast, flush-to-zero, for all three forks)."""
    s = cfgsched.parse(case.cfg_text, fork=case.fork, source=case.source)
    horizon = int(case.batches.max())
    opt = make_optimizer(s.learning_rate)
    try:
        sched = native_scheduler(opt, s, flush=True, horizon=horizon)
    except NotExactError as e:
        assert e.reason
        assert e.batch is not None and 0 <= e.batch <= horizon
        # the reported batch is inside the run and the message names it
        assert f"batch {e.batch}" in str(e)
        return
    want = {
        int(b): int(h, 16)
        for b, h in zip(case.batches, case.data["lr_hex"], strict=True)
        if b >= 1
    }
    if horizon <= STEPPED_MAX:
        got = drive(sched, horizon)
        for b, bits in want.items():
            assert float_to_bits(got[b - 1][0]) == bits, f"b={b}"
    else:  # resume at each listed batch (the resume path is checked against stepping below)
        for b, bits in want.items():
            o = make_optimizer(s.learning_rate)
            native_scheduler(o, s, flush=True, horizon=horizon, last_epoch=b - 2)
            assert float_to_bits(o.param_groups[0]["lr"]) == bits, f"b={b}"


@needs_golden
def test_golden_has_both_outcomes() -> None:
    """The golden set exercises both branches (not every case refused, not all accepted)."""
    exact = refused = 0
    for case in OK_CASES:
        s = cfgsched.parse(case.cfg_text, fork=case.fork, source=case.source)
        try:
            native_plan(s, flush=True, horizon=int(case.batches.max()))
            exact += 1
        except NotExactError:
            refused += 1
    # the README's figures: a case that regresses to "refused" shows here
    assert (exact, refused) == (49, 93)


# ------------------------------------------------------------------------------ exact forms


def assert_matches_kernel(
    sched: LRScheduler,
    s: NetSchedule,
    steps: int,
    *,
    batch_of: object = None,
    lr: float | None = None,
    multipliers: Sequence[float] = (1.0,),
) -> None:
    got = drive(sched, steps)
    for i, row in enumerate(got):
        b = (i + 1) if batch_of is None else batch_of(i)  # type: ignore[operator]
        want = kernel_lr(s, b, lr=lr)
        for m, have in zip(multipliers, row, strict=True):
            assert f32(have) == f32(want if m == 1.0 else want * m), (i, b, m)


def test_steps_unsorted_duplicate_and_nonpositive() -> None:
    s = schedule(
        "learning_rate=0.01\npolicy=steps\nsteps=-5,300,200,300,700\n"
        "scales=10,.5,.1,.3,2\nmax_batches=900\n"
    )
    sched = native_scheduler(make_optimizer(s.learning_rate), s)
    assert_matches_kernel(sched, s, 900)


def test_yolov4_like_without_burn_in_is_one_multisteplr() -> None:
    s = schedule(
        "learning_rate=0.0013\npolicy=steps\nsteps=4000,4500\nscales=.1,.1\nmax_batches=5005\n"
    )
    plan = native_plan(s)
    assert [p.name for p in plan.parts] == ["MultiStepLR"]
    # optimizer step i is darknet batch i + 1: darknet step s is milestone s - 1
    assert plan.parts[0].kwargs["milestones"] == [3999, 4499]
    assert_matches_kernel(native_scheduler(make_optimizer(s.learning_rate), s), s, 5005)


def test_step_policy_and_exp_are_exact() -> None:
    s = schedule(
        "learning_rate=0.1\npolicy=step\nstep=70\nscale=.9\nmax_batches=2000\n"
    )
    assert_matches_kernel(native_scheduler(make_optimizer(s.learning_rate), s), s, 2000)
    e = schedule("learning_rate=0.01\npolicy=exp\ngamma=0.9995\nmax_batches=4000\n")
    names = [p.name for p in native_plan(e).parts]
    assert names == ["MultiStepLR", "ExponentialLR"]
    assert_matches_kernel(native_scheduler(make_optimizer(e.learning_rate), e), e, 4000)


def test_burn_in_power_2_power_of_two_is_exact() -> None:
    s = schedule(
        "learning_rate=0.001\nburn_in=512\npower=2\npolicy=steps\nsteps=3000\n"
        "scales=.1\nmax_batches=4000\n"
    )
    plan = native_plan(s)
    assert [p.name for p in plan.parts] == ["LinearLR", "LinearLR", "MultiStepLR"]
    assert_matches_kernel(native_scheduler(make_optimizer(s.learning_rate), s), s, 4000)


def test_multi_gpu_images_and_images_per_step() -> None:
    s = schedule(
        "batch=64\nsubdivisions=8\nlearning_rate=0.001\npolicy=steps\nsteps=1000,1500\n"
        "scales=.1,.1\nmax_batches=2000\n"
    )
    sched = native_scheduler(make_optimizer(s.learning_rate), s, ngpus=2)
    # alexeyab multiplies the rate by the GPU count; step i is darknet batch (i + 1)·2
    assert_matches_kernel(
        sched, s, 1000, batch_of=lambda i: 2 * (i + 1), lr=f32(s.learning_rate * 2)
    )
    sched = native_scheduler(make_optimizer(s.learning_rate), s, images_per_step=48)
    assert_matches_kernel(sched, s, 2600, batch_of=lambda i: (i + 1) * 48 // 64)
    hk = schedule(
        "learning_rate=0.001\npolicy=steps\nsteps=10\nscales=.5\nmax_batches=40\n",
        fork="hankai",
    )
    # hankai does not multiply the rate
    assert_matches_kernel(
        native_scheduler(make_optimizer(hk.learning_rate), hk, ngpus=4),
        hk,
        10,
        batch_of=lambda i: 4 * (i + 1),
    )


def test_group_multipliers() -> None:
    s = schedule(
        "learning_rate=0.01\npolicy=steps\nsteps=50,80\nscales=.1,.2\nmax_batches=100\n"
    )
    # groups made from the cfg value as written (0.01·m); multiplier = group lr / 0.01,
    # the group's lr is darknet's float32 rate times it (DarknetLR's convention)
    opt = make_optimizer(0.01, 0.001, 0.05)
    sched = native_scheduler(opt, s)
    assert_matches_kernel(sched, s, 100, multipliers=(1.0, 0.001 / 0.01, 0.05 / 0.01))


def test_resume_with_last_epoch_equals_stepping() -> None:
    s = schedule(
        "learning_rate=0.001\nburn_in=64\npower=2\npolicy=steps\nsteps=100,150\n"
        "scales=.1,.1\nmax_batches=200\n"
    )
    ref_opt = make_optimizer(s.learning_rate)
    ref = native_scheduler(ref_opt, s)
    lrs = drive(ref, 200)
    for k in (0, 5, 62, 63, 64, 98, 99, 150, 180):
        o = make_optimizer(s.learning_rate)
        resumed = native_scheduler(o, s, last_epoch=k)
        assert o.param_groups[0]["lr"] == lrs[k + 1][0], (
            k
        )  # same double, not only float32
        o2 = make_optimizer(s.learning_rate)
        stepped = native_scheduler(o2, s)
        drive(stepped, k + 1)
        assert resumed.state_dict() == stepped.state_dict()


def test_options_value_and_resume_iteration() -> None:
    """One Options value, as DarknetLR takes it; resume_iteration starts where the
    translation resumes (here 2 darknet iterations per step: iteration 120 is step 60)."""
    s = schedule(
        "learning_rate=0.001\npolicy=steps\nsteps=100,150\nscales=.1,.1\nmax_batches=200\n"
    )
    opts = Options(images_per_step=2 * s.images_per_iteration)
    ref = drive(native_scheduler(make_optimizer(s.learning_rate), s, opts), 100)
    same = native_scheduler(
        make_optimizer(s.learning_rate), s, images_per_step=opts.images_per_step
    )
    assert drive(same, 100) == ref
    o = make_optimizer(s.learning_rate)
    resumed = native_scheduler(o, s, opts, resume_iteration=120)
    assert resumed.last_epoch == 60
    assert o.param_groups[0]["lr"] == ref[60][0]
    assert drive(resumed, 39) == ref[60:99]


def test_steps_needing_a_long_chain_are_refused() -> None:
    """100 steps with 100 distinct scales: every candidate needs > MAX_PARTS chained
    schedulers (each step() would step them all); refused at the first drop."""
    steps = ",".join(str(100 * k) for k in range(1, 101))
    scales = ",".join(f"0.{99 - k % 90:02d}1" for k in range(100))
    s = schedule(f"policy=steps\nsteps={steps}\nscales={scales}\nmax_batches=20000\n")
    assert len(set(s.scales)) > MAX_PARTS
    with pytest.raises(NotExactError, match=f"more than {MAX_PARTS} chained") as e:
        native_plan(s)
    assert e.value.batch == 100
    # the first MAX_PARTS drops alone have a native form (one MultiStepLR per change)
    short = native_plan(s, horizon=100 * MAX_PARTS)
    assert len(short.parts) == MAX_PARTS


def test_scale_one_steps_need_no_scheduler() -> None:
    """1,000 steps, all scale 1 but three: only the three drops become milestones."""
    scales = ["1"] * 1000
    for k in (99, 499, 899):
        scales[k] = ".5"
    steps = ",".join(str(10 * (k + 1)) for k in range(1000))
    s = schedule(
        f"policy=steps\nsteps={steps}\nscales={','.join(scales)}\nmax_batches=10000\n"
    )
    plan = native_plan(s)
    assert [(p.name, p.kwargs["milestones"]) for p in plan.parts] == [
        ("MultiStepLR", [999, 4999, 8999])
    ]
    assert_matches_kernel(
        native_scheduler(make_optimizer(s.learning_rate), s), s, 10000
    )


def test_release_build_flush_is_part_of_exactness() -> None:
    """exp to b = 10,000: alexeyab's release build flushes from b = 8003 on, which
    ExponentialLR cannot follow; with flush=False (or hankai's build) it is exact."""
    text = "learning_rate=0.001\npolicy=exp\ngamma=0.99\nmax_batches=10000\n"
    with pytest.raises(NotExactError) as e:
        native_plan(schedule(text))
    assert e.value.batch == 8003
    native_plan(schedule(text), flush=False)
    native_plan(schedule(text, fork="hankai"))


def test_checkpoint_restore_mid_run() -> None:
    s = schedule("learning_rate=0.02\npolicy=exp\ngamma=0.999\nmax_batches=300\n")
    opt = make_optimizer(s.learning_rate)
    sched = native_scheduler(opt, s)
    full = drive(sched, 300)
    opt1 = make_optimizer(s.learning_rate)
    s1 = native_scheduler(opt1, s)
    drive(s1, 120)
    ckpt = pickle.loads(
        pickle.dumps({"opt": opt1.state_dict(), "sched": s1.state_dict()})
    )
    opt2 = make_optimizer(s.learning_rate)
    s2 = native_scheduler(opt2, s)
    opt2.load_state_dict(ckpt["opt"])
    s2.load_state_dict(ckpt["sched"])
    rest = drive(s2, 180)
    assert rest == full[120:]


def test_exact_false_accepts_linear_burn_in() -> None:
    text = (
        "learning_rate=0.001\nburn_in=500\npower=1\npolicy=steps\nsteps=800\nscales=.1\n"
        "max_batches=1000\n"
    )
    s = schedule(text)
    with pytest.raises(NotExactError) as ei:
        native_plan(s)
    assert ei.value.batch == 1
    sched = native_scheduler(make_optimizer(s.learning_rate), s, exact=False)
    got = drive(sched, 1000)
    for i, (have,) in enumerate(got):
        want = kernel_lr(s, i + 1, exact=False)
        assert abs(have - want) <= REL_TOL * abs(want)


# ------------------------------------------------------------------------------ refusals


def real_linear_lr(lr: float, burn_in: int, steps: int) -> list[float]:
    """What torch's own LinearLR gives for a darknet power-1 burn-in (b = i + 1)."""
    opt = make_optimizer(lr)
    return [
        row[0]
        for row in drive(
            LinearLR(opt, start_factor=1 / burn_in, total_iters=burn_in - 1), steps
        )
    ]


@pytest.mark.parametrize(("burn_in", "first_bad"), [(500, 1), (512, 12)])
def test_linear_burn_in_refused_where_linearlr_rounds_differently(
    burn_in: int, first_bad: int
) -> None:
    s = schedule(f"learning_rate=0.001\nburn_in={burn_in}\npower=1\nmax_batches=2000\n")
    with pytest.raises(NotExactError) as ei:
        native_plan(s)
    assert ei.value.batch == first_bad
    assert "LinearLR" in ei.value.reason
    # independent check with torch's real LinearLR: equal before, different at first_bad
    torch_lrs = real_linear_lr(s.learning_rate, burn_in, first_bad)
    for b in range(1, first_bad + 1):
        same = f32(torch_lrs[b - 1]) == kernel_lr(s, b)
        assert same == (b < first_bad), b


def test_burn_in_power_4_refused_at_batch_1() -> None:
    s = cfgsched.load("sample_cfgs/yolov4.cfg")
    with pytest.raises(NotExactError) as ei:
        native_scheduler(make_optimizer(s.learning_rate), s)
    assert ei.value.batch == 1
    assert "power=4" in ei.value.reason


def test_poly_exact_until_max_batches_then_clamps() -> None:
    s = schedule("learning_rate=0.5\npolicy=poly\npower=1\nmax_batches=1024\n")
    sched = native_scheduler(make_optimizer(s.learning_rate), s)
    assert any(
        isinstance(x, PolynomialLR) for x in getattr(sched, "_schedulers", [sched])
    )
    assert_matches_kernel(sched, s, 1024)
    with pytest.raises(NotExactError) as ei:
        native_plan(s, horizon=1100)
    assert ei.value.batch == 1025
    assert "PolynomialLR stays at 0" in ei.value.reason
    assert kernel_lr(s, 1025) < 0  # darknet's power-1 poly goes negative


def test_poly_float32_cancellation_refused() -> None:
    s = schedule("learning_rate=0.1\npolicy=poly\npower=4\nmax_batches=10000\n")
    with pytest.raises(NotExactError) as ei:
        native_plan(s)
    assert ei.value.batch is not None and 1 <= ei.value.batch <= 10000
    # poly in double (exact=False) is what PolynomialLR computes
    native_plan(s, exact=False)


@pytest.mark.parametrize(
    ("text", "batch", "word"),
    [
        (
            "policy=sgdr\nlearning_rate=0.01\nsgdr_cycle=100\nmax_batches=1000\n",
            100,
            "sgdr",
        ),
        ("policy=random\nmax_batches=100\n", 1, "random"),
        ("policy=sigmoid\ngamma=0.05\nstep=400\nmax_batches=1000\n", None, "sigmoid"),
        (
            "policy=exp\ngamma=0.999\nburn_in=512\npower=2\nmax_batches=1000\n",
            512,
            "exp with burn-in",
        ),
        (
            "policy=poly\nburn_in=512\npower=2\nmax_batches=1000\n",
            512,
            "poly with burn-in",
        ),
    ],
)
def test_refusals(text: str, batch: int | None, word: str) -> None:
    s = schedule(text)
    with pytest.raises(NotExactError) as ei:
        native_scheduler(make_optimizer(s.learning_rate), s)
    assert word in ei.value.reason
    if batch is not None:
        assert ei.value.batch is not None and ei.value.batch <= batch
    else:
        b = ei.value.batch
        assert b is not None and kernel_lr(s, b) != kernel_lr(s, b - 1)


def test_sgdr_cycle_end_is_learning_rate_min() -> None:
    s = schedule("policy=sgdr\nlearning_rate=0.01\nsgdr_cycle=100\nmax_batches=1000\n")
    assert (
        kernel_lr(s, 100) == s.learning_rate_min
    )  # why no warm-restart scheduler matches


def test_trace_refused_where_counter_goes_back() -> None:
    s = schedule("policy=steps\nsteps=500\nscales=.1\nmax_batches=1000\n")
    with pytest.raises(NotExactError) as ei:
        native_plan(s, ngpus=2, multigpu="trace")
    assert "multigpu='trace'" in ei.value.reason
    trace = cfgsched.multigpu_trace(s, 2)
    seq = [int(b) for b in trace.batches]
    back = next(b for a, b in itertools.pairwise(seq) if b < a)
    assert ei.value.batch == back  # alexeyab with 2 GPUs runs 1, 3, 9, 7, ...
    native_plan(s, ngpus=1, multigpu="trace")  # one GPU: the trace is 1, 2, 3, ...


def test_max_batches_zero_needs_horizon() -> None:
    s = schedule("policy=steps\nsteps=10\nscales=.1\n")
    with pytest.raises(NotExactError) as ei:
        native_plan(s)
    assert ei.value.batch is None
    native_plan(s, horizon=20)


def test_plan_source_builds_the_same_scheduler() -> None:
    s = schedule(
        "learning_rate=0.01\npolicy=steps\nsteps=50,80\nscales=.1,.2\nmax_batches=100\n"
    )
    plan = native_plan(s)
    opt = make_optimizer(s.learning_rate)
    built = eval(plan.source(), {"torch": torch, "optimizer": opt})
    assert drive(built, 100) == drive(
        native_scheduler(make_optimizer(s.learning_rate), s), 100
    )


# ------------------------------------------------------------------------------ property


@settings(max_examples=40, deadline=None)
@given(
    policy=st.sampled_from(["constant", "steps", "step", "exp", "poly"]),
    burn_in=st.sampled_from([0, 0, 8, 16, 30]),
    power=st.sampled_from([1, 2, 4]),
    lr=st.sampled_from(["0.001", "0.0013", "0.5", "0.1"]),
    ngpus=st.sampled_from([1, 2]),
    steps=st.lists(st.integers(-3, 140), min_size=1, max_size=3),
    scale=st.sampled_from(["0.1", "0.5", "2", "0.96"]),
    fork=st.sampled_from(["alexeyab", "pjreddie", "hankai"]),
)
def test_never_silently_different(
    policy: str,
    burn_in: int,
    power: int,
    lr: str,
    ngpus: int,
    steps: list[int],
    scale: str,
    fork: str,
) -> None:
    keys = {
        "steps": f"steps={','.join(map(str, steps))}\nscales={','.join([scale] * len(steps))}\n",
        "step": f"step=17\nscale={scale}\n",
        "exp": "gamma=0.99\n",
        "poly": "",
        "constant": "",
    }
    text = (
        f"learning_rate={lr}\nburn_in={burn_in}\npower={power}\npolicy={policy}\n"
        f"{keys[policy]}max_batches=128\n"
    )
    try:
        s = schedule(text, fork)
    except cfgsched.CfgError:
        return
    try:
        sched = native_scheduler(make_optimizer(s.learning_rate), s, ngpus=ngpus)
    except NotExactError as e:
        assert e.batch is None or 0 <= e.batch <= 128
        return
    base = (
        s.learning_rate
        if fork == "hankai" or ngpus == 1
        else f32(s.learning_rate * ngpus)
    )
    for i, (have,) in enumerate(drive(sched, 128 // ngpus)):
        want = kernel_lr(s, (i + 1) * ngpus, lr=base)
        assert f32(have) == want or (math.isnan(want) and math.isnan(have)), (
            i,
            have,
            want,
        )


NOOP_STEP = (
    "[net]\nwidth=32\nheight=32\nchannels=3\nlearning_rate=0.01\nmax_batches=200\n"
    "policy=steps\nsteps=100\nscales=1\n"
)


def test_a_no_op_step_is_a_constant(tmp_path: Path) -> None:
    """Issue 15 item 20: steps=100, scales=1 changes nothing: ConstantLR, and convert and
    diff --style native both work (they raised IndexError / ValueError)."""
    from click.testing import CliRunner

    from cfgsched.cli import main

    s = cfgsched.parse(NOOP_STEP)
    plan = native_plan(s)
    assert [p.name for p in plan.parts] == ["ConstantLR"]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=s.learning_rate)
    sched = native_scheduler(opt, s)
    for _ in range(150):
        assert opt.param_groups[0]["lr"] == s.learning_rate
        opt.step()
        sched.step()
    cfg = tmp_path / "noop.cfg"
    cfg.write_text(NOOP_STEP)
    res = CliRunner().invoke(main, ["convert", str(cfg), "--style", "native"])
    assert res.exit_code == 0, res.output
    assert "ConstantLR(optimizer, factor=1.0, total_iters=0)" in res.stdout
    res = CliRunner().invoke(main, ["diff", str(cfg), "--style", "native"])
    assert res.exit_code == 0, res.output
