"""DarknetLR against the golden LR values printed by darknet's own C code (three forks).

The scheduler is driven like a training loop (``optimizer.step()`` then ``scheduler.step()``
on a real ``torch.optim.SGD``); step i must hold darknet's LR for batch b = i + 1.
Schedules are built from the golden ``parse.params`` (what the fork stored), so these tests
check the PyTorch translation independently of cfgsched's cfg reader.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cfgsched import NetSchedule, Policy, load, parse
from cfgsched.adapters.darknet_lr import DarknetLR
from cfgsched.options import Options
from cfgsched.schedule import f32
from tests.golden import (
    DARKNET_CFGS,
    EvalCase,
    case_ids,
    eval_cases,
    mgpu_cases,
    needs_golden,
)

pytestmark = needs_golden

OK_CASES = [c for c in eval_cases() if c.ok]
#: Cases short enough to step through every batch up to the largest listed one.
STEPPED = [c for c in OK_CASES if int(c.batches.max()) <= 100_000]
JUMPED = [c for c in OK_CASES if int(c.batches.max()) > 100_000]
YOLOV4 = [c for c in OK_CASES if c.case == "real_yolov4"]
F32_MIN_NORMAL = 2.0**-126


def schedule_of(case: EvalCase) -> NetSchedule:
    """The NetSchedule holding exactly the values the fork stored (golden ``parse.params``)."""
    p = case.params
    kw: dict[str, Any] = {
        "fork": case.fork,
        "policy": Policy(p["policy_enum"]),
        "learning_rate": f32(p["learning_rate"]),
        "burn_in": int(p["burn_in"]),
        "power": f32(p["power"]),
        "step": int(p["step"]),
        "scale": f32(p["scale"]),
        "gamma": f32(p["gamma"]),
        "max_batches": int(p["max_batches"]),
        "steps": tuple(int(s) for s in p["steps"]),
        "scales": tuple(f32(s) for s in p["scales"]),
        "mini_batch": int(p["net_batch_after_parse"]),
        "subdivisions": int(p["subdivisions"]),
    }
    if "sgdr_cycle" in p:
        kw["learning_rate_min"] = f32(p["learning_rate_min"])
        kw["sgdr_cycle"] = int(p["sgdr_cycle"])
        kw["sgdr_mult"] = int(p["sgdr_mult"])
    s = NetSchedule(**kw)
    assert s.images_per_iteration == p["batch_times_subdivisions"]
    return s


def lr_bits(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


def optimizer_for(s: NetSchedule) -> torch.optim.SGD:
    w = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([w], lr=s.learning_rate, momentum=0.9)


def expected(case: EvalCase, upto: int | None = None) -> dict[int, int]:
    """Listed batch b >= 1 -> golden float32 bits."""
    return {
        int(b): int(h)
        for b, h in zip(case.batches, case.lr_bits, strict=True)
        if b >= 1 and (upto is None or b <= upto)
    }


#: The golden data's build: -Ofast for all three forks, so flush-to-zero (hankai included).
GOLDEN_BUILD = Options(flush=True)


def step_through(s: NetSchedule, n_steps: int, **kw: Any) -> np.ndarray:
    """LR the optimizer holds for optimizer steps 0 .. n_steps-1 of a real training loop."""
    opt = optimizer_for(s)
    sched = DarknetLR(opt, s, GOLDEN_BUILD, **kw)
    group = opt.param_groups[0]
    out = np.empty(n_steps, dtype=np.float64)
    for i in range(n_steps):
        out[i] = group["lr"]
        opt.step()
        sched.step()
    return out


def assert_bits(case: EvalCase, got: dict[int, float], want: dict[int, int]) -> None:
    """Every listed batch has the golden bits (and the lr is a float32 value)."""
    bad = []
    for b, w in want.items():
        g = got[b]
        if lr_bits(g) != w or not (f32(g) == g or math.isnan(g)):
            bad.append((b, hex(lr_bits(g)), hex(w)))
    assert not bad, f"{case.id}: {len(bad)} batches differ, first {bad[:5]}"


@pytest.mark.parametrize("case", STEPPED, ids=case_ids(STEPPED))
def test_stepped_bit_exact(case: EvalCase) -> None:
    s = schedule_of(case)
    want = expected(case)
    lrs = step_through(s, max(want))
    assert_bits(case, {b: float(lrs[b - 1]) for b in want}, want)


@pytest.mark.parametrize("case", YOLOV4, ids=case_ids(YOLOV4))
def test_yolov4_every_step_of_training(case: EvalCase) -> None:
    """All 500,500 optimizer steps of yolov4.cfg; the listed batches up to max_batches."""
    s = schedule_of(case)
    assert s.max_batches == 500_500
    want = expected(case, upto=s.max_batches)
    lrs = step_through(s, s.max_batches)
    assert_bits(case, {b: float(lrs[b - 1]) for b in want}, want)
    # The whole run is piecewise constant after burn-in: lr, lr·0.1, lr·0.01 in float32.
    lr = s.learning_rate
    assert set(lrs[999:399_999].tolist()) == {lr}
    assert set(lrs[399_999:449_999].tolist()) == {f32(lr * f32(0.1))}
    assert set(lrs[449_999:].tolist()) == {f32(f32(lr * f32(0.1)) * f32(0.1))}


def jumped_lrs(
    s: NetSchedule, batches: list[int], **kw: Any
) -> tuple[dict[int, float], dict[int, float]]:
    """LR at batch b from a scheduler built with ``last_epoch = b - 2``, and at b + 1 after
    one more real ``optimizer.step()``/``scheduler.step()``."""
    at: dict[int, float] = {}
    after: dict[int, float] = {}
    for b in batches:
        opt = optimizer_for(s)
        sched = DarknetLR(opt, s, GOLDEN_BUILD, last_epoch=b - 2, **kw)
        at[b] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        after[b + 1] = opt.param_groups[0]["lr"]
    return at, after


@pytest.mark.parametrize("case", JUMPED, ids=case_ids(JUMPED))
def test_jumped_bit_exact(case: EvalCase) -> None:
    s = schedule_of(case)
    want = expected(case)
    at, after = jumped_lrs(s, sorted(want))
    assert_bits(case, at, want)
    # stepping once after the jump lands on the golden value of b + 1 where it is listed
    listed_after = {b: want[b] for b in after if b in want}
    assert len(listed_after) > 10
    assert_bits(case, after, listed_after)


def double_tolerance(s: NetSchedule, b: int) -> float:
    """Relative tolerance of ``exact=False`` (double) against darknet's float32 at batch b.

    1e-6 everywhere, except poly where darknet computes the base ``1 - f32(b/max_batches)``
    in float32: near and past max_batches that base cancels. With d ≤ 2^-24·(x + |1 - x|)
    the absolute rounding error of the base (x = b/mb), float32's base is off by a factor
    up to 1 + e, e = d / (|1 - x| - d), and the LR by (1 + e)^power.
    """
    tol = 1e-6
    if s.policy == Policy.POLY and b >= s.burn_in and s.max_batches > 0:
        x = b / s.max_batches
        d = 1.01 * 2.0**-24 * (x + abs(1.0 - x))
        if abs(1.0 - x) <= d:
            return math.inf
        e = d / (abs(1.0 - x) - d)
        tol = max(tol, (1.0 + e) ** abs(s.power) - 1.0 + 2.0**-22)
    return tol


@pytest.mark.parametrize("case", OK_CASES, ids=case_ids(OK_CASES))
def test_double_mode_close(case: EvalCase) -> None:
    """``exact=False`` is within 1e-6 relative, except poly cancellation and float32 underflow."""
    s = schedule_of(case)
    golden = case.lr_bits.view(np.float32).astype(np.float64)
    want = {
        int(b): float(g) for b, g in zip(case.batches, golden, strict=True) if b >= 1
    }
    got = jumped_lrs(s, sorted(want), exact=False, flush=None)[0]
    bad = []
    for b, g in want.items():
        v = got[b]
        if math.isnan(g) or math.isinf(g):
            assert lr_bits(v) == lr_bits(g) or (math.isnan(v) and math.isnan(g)), (
                b,
                v,
                g,
            )
            continue
        if abs(g) < F32_MIN_NORMAL:
            # darknet's float32 underflows (subnormal or flushed to 0): double keeps going
            assert abs(v) < F32_MIN_NORMAL, (b, v, g)
            continue
        if abs(v - g) > double_tolerance(s, b) * abs(g):
            bad.append((b, v, g, abs(v - g) / abs(g)))
    assert not bad, f"{case.id}: {bad[:5]}"


def test_double_mode_really_differs_on_poly() -> None:
    """The poly exception above is real: exact=False is not float32 near max_batches."""
    case = next(c for c in OK_CASES if c.id == "alexeyab/poly_p1_burnin1000")
    s = schedule_of(case)
    b = 9997
    i = list(case.batches).index(b)
    g = float(case.lr_bits.view(np.float32)[i])
    v = jumped_lrs(s, [b], exact=False, flush=None)[0][b]
    assert abs(v - g) / g > 1e-5  # float32 cancellation in 1 - f32(b/mb)
    assert abs(v - 3e-5) / 3e-5 < 1e-7  # double: lr·(1 - 9997/10000) = 0.01·3e-4


# --- multi-GPU traces ---------------------------------------------------------------

MGPU = [
    (fork, data, t)
    for fork, _case, data in mgpu_cases()
    for t in data["traces"]
    if fork == "hankai" or t["variant"] == "weights"
]
MGPU_IDS = [f"{f}/{d['case']}/n{t['ngpus']}-{t['variant']}" for f, d, t in MGPU]


def mgpu_schedule(fork: str, data: dict[str, Any]) -> NetSchedule:
    src = data["cfg_source"]
    if src["kind"] == "synthetic":
        return parse(src["cfg_text"], fork=fork, source=f"{data['case']}.cfg")
    return load(DARKNET_CFGS / Path(src["file"]).name, fork=fork)


@pytest.mark.parametrize(("fork", "data", "trace"), MGPU, ids=MGPU_IDS)
def test_multigpu_trace(fork: str, data: dict[str, Any], trace: dict[str, Any]) -> None:
    """GPU 0's batch and LR for every loop iteration of a darknet ``-gpus`` run."""
    s = mgpu_schedule(fork, data)
    n = int(trace["ngpus"])
    opt = optimizer_for(s)
    sched = DarknetLR(
        opt,
        s,
        GOLDEN_BUILD,
        ngpus=n,
        multigpu="trace",
        scratch=trace["variant"] == "scratch",
    )
    assert sched.translation.params.lr == f32(
        trace["learning_rate_after_ngpus_scaling"]
    )
    got_b, got_lr = [], []
    for _ in range(int(trace["loop_iterations"])):
        got_b.append(sched.darknet_batch())
        got_lr.append(lr_bits(opt.param_groups[0]["lr"]))
        opt.step()
        sched.step()
    assert got_b == trace["gpu0_batch_num"]
    assert got_lr == [int(h, 16) for h in trace["gpu0_lr_hex"]]


def test_multigpu_images_mode_uses_every_nth_batch() -> None:
    """multigpu='images': step i is darknet batch (i + 1)·n with the fork's LR × n."""
    case = next(c for c in OK_CASES if c.id == "alexeyab/steps_small_dense")
    s = schedule_of(case)
    want = expected(case)
    lrs = step_through(s, 300, ngpus=2)
    # alexeyab multiplies learning_rate by 2: the golden values are for the 1-GPU lr, so
    # compare with float32 products where the schedule is lr·scales (after burn-in)
    for i in range(300):
        b = 2 * (i + 1)
        if b >= s.burn_in and b in want:
            one_gpu = float(np.uint32(want[b]).view(np.float32))
            ratio = one_gpu / s.learning_rate
            assert lrs[i] == pytest.approx(
                f32(s.learning_rate * 2) * ratio, rel=1e-6
            ), b
