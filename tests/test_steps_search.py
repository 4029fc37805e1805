"""The steps policy in O(log len(steps)) equals darknet's linear loop; release-build
flush-to-zero exactly as x86 ``-Ofast`` rounds (values measured with gcc -Ofast)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgsched import NetSchedule, Policy
from cfgsched import policies as _policies
from cfgsched.kernel import formulas as K
from cfgsched.oracle import darknet_lr, params_lr
from cfgsched.policies import steps as _steps_policy
from tests.golden import bits, float_to_bits

FORKS = ("alexeyab", "pjreddie", "hankai")
M = 2.0**-126  # FLT_MIN


def darknet_steps_loop(p: K.Params, b: int, exact: bool, flush: bool) -> float:
    """darknet's loop as written in C (the reference): cfg order, stop at the first
    step > b; pjreddie compares the int step with an unsigned b."""
    r = (K.f32_ftz if flush else K.f32) if exact else (lambda x: x)
    rate = p.lr
    for s, sc in zip(p.steps, p.scales, strict=False):
        if (s % 2**64 if p.fork == K.FORK_PJREDDIE else s) > b:
            return rate
        rate = r(rate * sc)
    return rate


step_lists = st.lists(
    st.integers(-50, 300) | st.sampled_from([0, -(2**31), 2**31 - 1]), max_size=40
)
scale_values = st.sampled_from([0.1, 0.5, 2.0, 0.0, -1.0, 1e-10, 2.0**-63]) | st.floats(
    -3, 3, width=32
)


@st.composite
def steps_params(draw: st.DrawFn) -> K.Params:
    steps = draw(step_lists)
    n = len(steps) + draw(st.integers(-2, 2))
    scales = draw(st.lists(scale_values, min_size=max(0, n), max_size=max(0, n)))
    lr = draw(
        st.sampled_from([0.001, 1e-30, 2.0**-100, 1.0]) | st.floats(0, 1, width=32)
    )
    s = NetSchedule(fork=draw(st.sampled_from(FORKS))).with_values(
        policy=Policy.STEPS, learning_rate=lr, steps=tuple(steps), scales=tuple(scales)
    )
    return s.kernel_params()


def probes(p: K.Params) -> list[int]:
    """Every batch where the rate can change (each step and its neighbours) and beyond."""
    around = {x + d for x in p.steps for d in (-1, 0, 1)}
    return sorted({0, 1, 10**9, 2**63 - 1} | {x for x in around if 0 <= x < 2**63})


@settings(derandomize=True, max_examples=300, deadline=None)
@given(p=steps_params())
def test_search_equals_darknets_linear_loop(p: K.Params) -> None:
    """Unsorted, duplicated and negative steps, every fork, float32 / double / flush."""
    for exact, flush in ((True, False), (False, False), (True, True)):
        q = K.flushed(p) if flush else p
        for b in probes(p):
            want = darknet_steps_loop(q, b, exact, flush)
            got = _policies.rate(q, b, exact, flush)
            assert struct.pack("<d", got) == struct.pack("<d", want), (
                exact,
                flush,
                b,
                got,
                want,
            )


@settings(derandomize=True, max_examples=200, deadline=None)
@given(p=steps_params())
def test_vectorized_equals_kernel_with_flush(p: K.Params) -> None:
    """The oracle's search (int64 batches) equals the scalar kernel, flushed or not;
    ``params_lr`` flushes the scales itself (the kernel gets the flushed params)."""
    b = np.array([x for x in probes(p)], dtype=np.int64)
    for flush in (False, True):
        q = K.flushed(p) if flush else p
        want = [float_to_bits(_policies.rate(q, int(x), True, flush)) for x in b]
        assert bits(params_lr(p, b, flush=flush)).tolist() == want


def test_products_that_go_subnormal_are_flushed_in_darknets_order() -> None:
    """lr·0.01·0.01·… runs below FLT_MIN: flushed, it stays 0 after a scale 1e30."""
    s = NetSchedule(fork="alexeyab").with_values(
        policy=Policy.STEPS,
        learning_rate=1e-34,
        steps=(10, 20, 30, 40),
        scales=(1e-2, 1e-2, 1e-2, 1e30),
    )
    b = np.array([5, 15, 25, 35, 45])
    keep = darknet_lr(s, b, flush=False)
    ftz = darknet_lr(s, b, flush=True)
    assert (0 < keep[2:4]).all() and (keep[2:4] < M).all()  # 1e-38, 1e-40: subnormal
    assert keep[4] > 1e-11  # and the scale 1e30 brings it back
    assert ftz[:2].tolist() == keep[:2].tolist()
    assert ftz[2:].tolist() == [0.0, 0.0, 0.0]  # flushed, and 0·1e30 = 0
    assert darknet_lr(s, b).tolist() == ftz.tolist()  # alexeyab's default build flushes


# ---------------------------------------------------------------- x86 flush-to-zero rounding


@pytest.mark.parametrize(
    ("x", "want"),
    [
        # (exact value, float32 bits that gcc -Ofast on x86-64 gives for it)
        (M - 2.0**-151, 0x00800000),  # rounds (ties to even) to FLT_MIN: not tiny
        (M - 2.0**-152, 0x00800000),
        (M - 1.5 * 2.0**-151, 0),  # rounds to 24 bits below FLT_MIN: flushed ...
        (M - 2.0**-150, 0),  # ... although the subnormal rounding gives FLT_MIN
        (-(M - 2.0**-150), 0x80000000),  # the sign stays
        (M / 2, 0),
        (M, 0x00800000),
        (math.inf, 0x7F800000),
    ],
)
def test_f32_ftz_detects_tininess_after_rounding(x: float, want: int) -> None:
    assert float_to_bits(K.f32_ftz(x)) == want


def test_float_product_just_below_flt_min_is_flushed() -> None:
    """2⁻⁶³ · 2⁻⁶³(1 - 2⁻²⁴) = FLT_MIN - 2⁻¹⁵⁰: gcc -O0 gives FLT_MIN, -Ofast 0."""
    s = NetSchedule(fork="pjreddie").with_values(
        policy=Policy.STEPS,
        learning_rate=2.0**-63,
        steps=(1,),
        scales=(2.0**-63 * (1 - 2.0**-24),),
    )
    assert float_to_bits(darknet_lr(s, 1, flush=False)) == 0x00800000
    assert float_to_bits(darknet_lr(s, 1, flush=True)) == 0


@pytest.mark.parametrize(
    ("x", "y", "want"),
    [
        # glibc powf in a -Ofast build (x86-64); without flush-to-zero all give FLT_MIN
        (2.465197381781767e-32, 1.2000000476837158, 0),
        (5.743721729934979e-18, 2.200000286102295, 0),
        (2.2737367544323206e-13, 3.0, 0x00800000),
        (0.01, 20.0, 0),  # 1e-40 is subnormal
        (0.5, 2.0, 0x3E800000),
    ],
)
def test_powf_ftz(x: float, y: float, want: int) -> None:
    assert float_to_bits(K.powf_ftz(x, y)) == want


def test_hankai_flushes_powf_before_the_multiply() -> None:
    """hankai's burn-in: powf(0.01, 20) = 1e-40 is flushed, so lr·0 = 0 (not 0.03)."""
    s = NetSchedule(fork="hankai").with_values(
        learning_rate=3e38, burn_in=1000, power=20.0
    )
    keep = float(darknet_lr(s, 10, flush=False))
    assert keep == pytest.approx(3e38 * 1e-40, rel=1e-3)
    assert float(darknet_lr(s, 10, flush=True)) == 0.0
    assert float(darknet_lr(s, np.array([10]), flush=True)[0]) == 0.0
    assert float(darknet_lr(s, 10)) == keep  # hankai's default build keeps subnormals


# ---------------------------------------------------------------- defaults per fork


@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie"])
def test_c_forks_default_build_flushes_exp_from_8003(fork: str) -> None:
    """issue 10: exp, gamma=0.99, lr=1e-3 is 0.0 from b = 8003 on in darknet."""
    s = NetSchedule(fork=fork).with_values(
        policy=Policy.EXP, gamma=0.99, learning_rate=1e-3
    )
    b = np.arange(7990, 8100)
    lr = darknet_lr(s, b)
    assert (lr[b < 8003] >= M).all()
    assert (lr[b >= 8003] == 0).all()
    assert float(darknet_lr(s, 8003)) == 0.0
    kept = darknet_lr(s, b, flush=False)
    assert (0 < kept[b >= 8003]).all() and (kept[b >= 8003] < M).all()


def test_hankai_default_build_keeps_subnormals() -> None:
    s = NetSchedule(fork="hankai").with_values(
        policy=Policy.EXP, gamma=0.99, learning_rate=1e-3
    )
    assert 0 < float(darknet_lr(s, 8003)) < M
    assert bits(darknet_lr(s, np.arange(8003, 8010))).tolist() == [
        float_to_bits(_policies.rate(s.kernel_params(), b)) for b in range(8003, 8010)
    ]
    assert float(darknet_lr(s, 8003, flush=True)) == 0.0


# ---------------------------------------------------------------- built once, searched


class CountingSteps(tuple[int, ...]):
    """A steps tuple that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[int]:
        type(self).walks += 1
        return super().__iter__()


def test_table_is_built_once_per_schedule() -> None:
    """10,000 rates of a 100,000-step schedule walk the steps once (the table build)."""
    steps: Any = CountingSteps(range(1, 100_001))
    p = K.Params(
        fork=K.FORK_ALEXEYAB,
        policy=Policy.STEPS,
        lr=1.0,
        power=4.0,
        burn_in=0,
        step=1,
        scale=1.0,
        gamma=1.0,
        max_batches=0,
        lr_min=0.0,
        sgdr_cycle=1,
        sgdr_mult=2,
        steps=steps,
        scales=(K.f32(0.5),) * 100_000,
    )
    CountingSteps.walks = 0
    got = [_policies.rate(p, b) for b in range(0, 100_000, 10)]
    assert CountingSteps.walks == 1
    assert got[:3] == [1.0, 2.0**-10, 2.0**-20]
    assert _steps_policy.steps_table(p, 1) is _steps_policy.steps_table(
        p._replace(power=1.0), 1
    )
    assert _steps_policy.steps_table(p, 1) is not _steps_policy.steps_table(
        p._replace(lr=2.0), 1
    )
