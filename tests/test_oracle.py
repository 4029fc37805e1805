"""The vectorized oracle equals the scalar kernel bit for bit; hand-computed values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgsched import NetSchedule, Policy
from cfgsched import policies as _policies
from cfgsched.kernel import formulas as _kernel
from cfgsched.kernel.vector import near_boundary
from cfgsched.oracle import darknet_lr, darknet_lr_scalar
from cfgsched.policies import random as _random_policy
from cfgsched.schedule import f32
from tests.golden import bits, float_to_bits

FORKS = ("alexeyab", "pjreddie", "hankai")
NAN_BITS = 0xFFC00000


def kernel_bits(
    s: NetSchedule, b: np.ndarray, seed: int = 0, flush: bool = False
) -> np.ndarray:
    """The scalar kernel's bits (``flush``: on the fully flushed params, with flush)."""
    p = s.kernel_params(seed)
    if flush:
        p = _kernel.flushed(p)
    return np.array(
        [float_to_bits(_policies.rate(p, int(x), True, flush)) for x in b.ravel()],
        dtype=np.uint32,
    )


def assert_same(s: NetSchedule, b: np.ndarray, seed: int = 0) -> None:
    """Same bits as the kernel, or the same exception type where the kernel raises,
    with and without a release build's flush-to-zero."""
    for flush in (False, True):
        try:
            want = kernel_bits(s, b, seed, flush)
        except (ValueError, ZeroDivisionError) as exc:
            with pytest.raises(type(exc)):
                darknet_lr(s, b, seed=seed, flush=flush)
            continue
        got = bits(darknet_lr(s, b, seed=seed, flush=flush)).ravel()
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, [
            (flush, int(b.ravel()[i]), hex(int(got[i])), hex(int(want[i])))
            for i in bad[:5]
        ]


def sched(fork: str = "alexeyab", **kw: Any) -> NetSchedule:
    return NetSchedule(fork=fork).with_values(**kw)


# ------------------------------------------------------------------ hypothesis: == kernel

f32s = st.floats(-4, 4, allow_nan=False, width=32)
#: float32 values whose products go below the normal range (flush-to-zero territory)
tiny = st.sampled_from([1e-30, 1.2e-38, 2.0**-126, 2.0**-63, 1e-20]) | st.floats(
    2.0**-130, 2.0**-118, width=32
)
lrs = (
    st.sampled_from([0.001, 0.00261, 0.1, 1.0, 0.0, 3e38])
    | tiny
    | st.floats(0, 10, allow_nan=False, width=32)
)
powers = st.sampled_from([0.5, 1.0, 2.0, 4.0, 3.0, 0.0, -1.0, 1.5, 0.3]) | st.floats(
    -3, 8, allow_nan=False, width=32
)
gammas = st.sampled_from([0.999, 1.0001, 0.5, 0.1, -0.1, 10.0, 0.0, -2.0]) | f32s
scales_ = (
    st.sampled_from([0.1, 0.5, 2.0, 10.0, 0.0, 1.0, -0.5, 2.0**-63 * (1 - 2.0**-24)])
    | f32s
    | tiny
)


@st.composite
def schedules(draw: st.DrawFn) -> NetSchedule:
    policy = draw(st.sampled_from(list(Policy)))
    mult = draw(st.sampled_from([1, 2, 3]) | st.integers(-1, 5))
    n_steps = draw(st.integers(0, 6))
    steps = draw(st.lists(st.integers(-100, 12000), min_size=n_steps, max_size=n_steps))
    scales = draw(st.lists(scales_, min_size=max(0, n_steps - 1), max_size=n_steps + 1))
    return NetSchedule(fork=draw(st.sampled_from(FORKS))).with_values(
        policy=policy,
        learning_rate=draw(lrs),
        power=draw(powers),
        burn_in=draw(st.sampled_from([0, 1, 100, 1000]) | st.integers(-5, 3000)),
        step=draw(st.integers(-300, 5000).filter(bool)),
        scale=draw(scales_),
        gamma=draw(gammas),
        max_batches=draw(st.sampled_from([0, 1, 500, 10000]) | st.integers(0, 20000)),
        learning_rate_min=draw(st.sampled_from([0.0, 1e-5, 0.001, 0.5])),
        sgdr_cycle=draw(st.integers(-50, 3000).filter(bool)),
        sgdr_mult=mult,
        steps=tuple(steps),
        scales=tuple(scales),
    )


batch_arrays = st.builds(
    lambda xs, dt: np.array(xs, dtype=dt),
    st.lists(
        st.integers(0, 30000) | st.sampled_from([0, 1, 2, 2**31 - 1, 10**9]),
        max_size=60,
    ),
    st.sampled_from([np.int64, np.int32, np.uint32, np.uint64]),
)


@given(s=schedules(), b=batch_arrays, seed=st.integers(0, 2**64))
def test_vectorized_equals_kernel(s: NetSchedule, b: np.ndarray, seed: int) -> None:
    if b.dtype == np.int32:
        b = b[b <= 2**31 - 1]
    assert_same(s, b, seed)


@given(s=schedules(), start=st.integers(0, 20000))
def test_dense_ranges_equal_kernel(s: NetSchedule, start: int) -> None:
    assert_same(s, np.arange(start, start + 300, dtype=np.int64))


@pytest.mark.parametrize("fork", FORKS)
@pytest.mark.parametrize(
    "policy",
    [Policy.POLY, Policy.EXP, Policy.SIG, Policy.SGDR, Policy.STEP, Policy.RANDOM],
)
def test_long_dense_run_equals_kernel(fork: str, policy: Policy) -> None:
    """20,000 consecutive batches (5,000 for hankai's slow powf/expf policies)."""
    s = sched(
        fork,
        policy=policy,
        learning_rate=0.00261,
        burn_in=1000,
        power=4.0,
        max_batches=20000,
        gamma=0.9997 if policy == Policy.EXP else 0.001,
        step=7000 if policy == Policy.SIG else 333,
        scale=0.7,
        sgdr_cycle=700,
        sgdr_mult=2,
    )
    n = 5000 if fork == "hankai" and policy in (Policy.POLY, Policy.SIG) else 20000
    assert_same(s, np.arange(n + 2))


class PerturbedNumpy:
    """numpy's pow/exp/cos off by a few ulps, like SIMD implementations can be."""

    def __init__(self) -> None:
        self.calls = {"power": 0, "exp": 0, "cos": 0}
        self.power_, self.exp_, self.cos_ = np.power, np.exp, np.cos

    def power(self, a: Any, b: Any) -> Any:
        self.calls["power"] += 1
        return self.power_(a, b) * (1 + 2.0**-50)

    def exp(self, a: Any) -> Any:
        self.calls["exp"] += 1
        return self.exp_(a) * (1 - 2.0**-50)

    def cos(self, a: Any) -> Any:
        self.calls["cos"] += 1
        return self.cos_(a) + 2.0**-51


@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie"])
def test_exact_even_if_numpy_transcendentals_are_a_few_ulps_off(
    fork: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    perturbed = PerturbedNumpy()
    for name in perturbed.calls:
        monkeypatch.setattr(np, name, getattr(perturbed, name))
    b = np.arange(0, 30000, dtype=np.int64)
    for policy, extra in [
        (Policy.POLY, {"power": 0.9}),
        (Policy.POLY, {"power": 4.0}),
        (Policy.EXP, {"gamma": 0.9999}),
        (Policy.SIG, {"gamma": 0.0007, "step": 15000}),
        (Policy.SGDR, {"sgdr_cycle": 1000, "learning_rate_min": 0.0}),
        (Policy.STEP, {"step": 7, "scale": 0.99}),
    ]:
        s = sched(
            fork, policy=policy, learning_rate=0.01, max_batches=30000, burn_in=800
        )
        assert_same(s.with_values(**extra), b)
    # the perturbed functions really were on the path being checked
    assert all(n > 0 for n in perturbed.calls.values()), perturbed.calls


def test_near_boundary_flags_what_it_must() -> None:
    one = np.float64(1.0)
    ulp = np.spacing(one)
    mid = 1.0 + 2.0**-24  # halfway between float32 1 and its successor
    z = np.array(
        [1.0, mid, mid + 100 * ulp, mid - 4000 * ulp, mid + 2**20 * ulp, 1e-39, 0.0]
    )
    assert near_boundary(z).tolist() == [
        False,
        True,
        True,
        True,
        False,
        True,
        False,
    ]


# ------------------------------------------------------------------ hand-computed values


@pytest.mark.parametrize("fork", FORKS)
def test_hand_values(fork: str) -> None:
    lr = f32(0.1)
    s = sched(fork, learning_rate=0.1)
    assert darknet_lr(s, 12345) == np.float32(0.1)  # constant
    # step: 0.1 * 0.5**(25 // 10)
    st_ = s.with_values(policy=Policy.STEP, step=10, scale=0.5)
    assert darknet_lr(st_, 25) == np.float32(lr * 0.25)
    assert darknet_lr(st_, 9) == np.float32(lr)
    # exp: gamma 0.5 at b=3 -> lr/8 exactly
    ex = s.with_values(policy=Policy.EXP, gamma=0.5)
    assert darknet_lr(ex, 3) == np.float32(lr / 8)
    # poly at max_batches is exactly 0, at b=0 exactly lr; power 1 halfway is lr/2
    po = s.with_values(policy=Policy.POLY, max_batches=1000, power=1.0)
    assert darknet_lr(po, np.array([0, 500, 1000])).tolist() == [lr, lr / 2, 0.0]
    # past max_batches: power 1 goes negative, power 2 rises again
    assert darknet_lr(po, 1500) == np.float32(-lr / 2)
    assert darknet_lr(po.with_values(power=2.0), 1500) == np.float32(lr / 4)
    # burn-in power 1: b = burn_in/2 -> lr/2, b = burn_in -> the policy
    bi = s.with_values(burn_in=100, power=1.0)
    assert darknet_lr(bi, np.array([0, 50, 100])).tolist() == [0.0, lr / 2, lr]
    # sigmoid at b == step: 1/(1+exp(0)) = 1/2
    sg = s.with_values(policy=Policy.SIG, step=300, gamma=0.05)
    assert darknet_lr(sg, 300) == np.float32(lr / 2)
    # steps in cfg order, duplicates twice, stop at the first step > b
    stp = s.with_values(
        policy=Policy.STEPS, steps=(10, 10, 5, 20), scales=(0.5, 0.5, 3, 0.5)
    )
    # b=9: steps[0]=10 > 9 stops the loop although steps[2]=5 <= 9
    # b=10..19: x0.5 (step 10), x0.5 (step 10 again), x3 (step 5), stop at 20 > b
    mid = f32(f32(f32(lr * f32(0.5)) * f32(0.5)) * f32(3))
    want = {0: lr, 9: lr, 10: mid, 15: mid, 19: mid, 20: f32(mid * f32(0.5))}
    b = np.array(sorted(want))
    assert darknet_lr(stp, b).tolist() == [want[int(x)] for x in b]


@pytest.mark.parametrize("fork", ["alexeyab", "hankai"])
def test_sgdr_cycle_end_is_lr_min(fork: str) -> None:
    s = sched(
        fork,
        policy=Policy.SGDR,
        learning_rate=0.01,
        learning_rate_min=0.0001,
        sgdr_cycle=1000,
        sgdr_mult=2,
    )
    lr_min = np.float32(f32(0.0001))
    # cycles [0,1000], (1000,3000], (3000,7000]: the end still belongs to the old cycle
    ends = np.array([1000, 3000, 7000])
    assert (darknet_lr(s, ends) == lr_min).all()
    assert (darknet_lr(s, ends + 1) > np.float32(0.0099)).all()  # restart near lr
    assert darknet_lr(s, 0) == np.float32(f32(0.01))
    mult1 = s.with_values(sgdr_mult=1)
    assert (darknet_lr(mult1, np.array([1000, 2000, 5000])) == lr_min).all()
    assert darknet_lr(mult1, 2500) == darknet_lr(mult1, 500)


def test_pjreddie_unsigned_semantics() -> None:
    stp = dict(
        policy=Policy.STEPS, learning_rate=0.01, steps=(-5, 100), scales=(10.0, 0.1)
    )
    b = np.array([0, 50, 100])
    # alexeyab: step -5 applies from b=0 (x10); pjreddie: never (negative = huge unsigned)
    ab = darknet_lr(sched("alexeyab", **stp), b)
    pj = darknet_lr(sched("pjreddie", **stp), b)
    x10 = f32(f32(0.01) * 10)  # 0.099999994, not f32(0.1)
    assert ab.tolist() == [x10, x10, f32(x10 * f32(0.1))]
    # pjreddie stops at the first step "greater" than b: -5 as unsigned, so b=100 too
    assert pj.tolist() == [f32(0.01)] * 3
    sig = dict(policy=Policy.SIG, learning_rate=0.01, step=1000)
    below = np.array([0, 999])
    assert (darknet_lr(sched("pjreddie", **sig, gamma=0.1), below) == 0).all()
    assert (
        darknet_lr(sched("pjreddie", **sig, gamma=-0.1), below) == np.float32(0.01)
    ).all()
    assert (darknet_lr(sched("alexeyab", **sig, gamma=0.1), below) > 0).all()


@pytest.mark.parametrize("fork", FORKS)
def test_nan_and_inf_regions(fork: str) -> None:
    half = sched(fork, policy=Policy.POLY, power=0.5, max_batches=1000)
    out = bits(darknet_lr(half, np.array([999, 1000, 1001, 5000])))
    assert out[1] == 0 and out[0] != 0
    assert out[2] == NAN_BITS and out[3] == NAN_BITS  # negative base, fractional power
    zero = sched(fork, policy=Policy.POLY, max_batches=0)
    out = bits(darknet_lr(zero, np.array([0, 1, 77])))
    assert out.tolist() == [NAN_BITS, 0x7F800000, 0x7F800000]
    assert float_to_bits(darknet_lr_scalar(zero, 0)) == NAN_BITS
    # a NaN parameter: NaN results go through the scalar kernel
    nanlr = NetSchedule(
        fork=fork, learning_rate=math.nan, policy=Policy.POLY, max_batches=10
    )
    assert_same(nanlr, np.arange(20))


@given(seed=st.integers(0, 2**64 - 1), b=st.lists(st.integers(0, 2**62), max_size=40))
def test_random_uniform_is_the_kernels(seed: int, b: list[int]) -> None:
    u = _random_policy.uniforms(seed, np.array(b, dtype=np.int64))
    assert u.tolist() == [_random_policy.uniform(seed, x) for x in b]
    assert ((u >= 0) & (u < 1)).all()


def test_random_policy_reproducible_per_seed() -> None:
    s = sched(policy=Policy.RANDOM, learning_rate=0.01, power=1.0)
    b = np.arange(1000)
    a = darknet_lr(s, b, seed=1)
    assert (a == darknet_lr(s, b, seed=1)).all()
    assert (a != darknet_lr(s, b, seed=2)).mean() > 0.99
    assert ((a >= 0) & (a <= np.float32(0.01))).all()
    assert 0.004 < float(a.mean()) < 0.006  # U(0,1) * lr


# ------------------------------------------------------------------ input handling


def test_input_kinds() -> None:
    s = sched(policy=Policy.POLY, max_batches=100, power=2.0)
    assert isinstance(darknet_lr(s, 10), np.float32)
    assert isinstance(darknet_lr(s, np.int64(10)), np.float32)
    assert isinstance(darknet_lr(s, np.array(10)), np.float32)
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = darknet_lr(s, grid)
    assert out.shape == (3, 4) and out.dtype == np.float32
    assert out[2, 3] == darknet_lr(s, 11)
    assert darknet_lr(s, np.array([], dtype=np.int64)).shape == (0,)
    assert isinstance(darknet_lr_scalar(s, 3), float)


def test_bad_inputs() -> None:
    s = sched()
    with pytest.raises(ValueError, match=">= 0"):
        darknet_lr(s, np.array([1, -1]))
    with pytest.raises(ValueError):
        darknet_lr(s, -1)
    with pytest.raises(ValueError):
        darknet_lr(s, np.array([2**63], dtype=np.uint64))
    with pytest.raises(TypeError):
        darknet_lr(s, np.array([1.0, 2.0]))
    with pytest.raises(TypeError):
        darknet_lr(s, np.array([True]))
    with pytest.raises(TypeError):
        darknet_lr_scalar(s, 1.5)  # type: ignore[arg-type]


def test_zero_step_and_zero_cycle_raise_like_the_kernel() -> None:
    step0 = sched(policy=Policy.STEP, step=0)
    with pytest.raises(ZeroDivisionError):
        darknet_lr(step0, np.array([1, 2]))
    with pytest.raises(ZeroDivisionError):
        darknet_lr_scalar(step0, 1)
    cyc0 = sched(policy=Policy.SGDR, sgdr_cycle=0)
    with pytest.raises(ValueError):
        darknet_lr(cyc0, np.array([0, 5]))
    with pytest.raises(ValueError):
        darknet_lr_scalar(cyc0, 5)


def test_modules_do_not_import_torch_or_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cfgsched.oracle, cfgsched.multigpu, cfgsched.weights, cfgsched.kernel.mgpu;"
        "bad = [m for m in ('torch', 'matplotlib') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
