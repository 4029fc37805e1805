"""Multi-GPU counters and LRs against the golden ``mgpu_*`` traces (darknet's own rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfgsched
from cfgsched import NetSchedule, Policy
from cfgsched.kernel import mgpu as _kernel_mgpu
from cfgsched.multigpu import multigpu_trace
from cfgsched.run import advised_schedule, mgpu_config
from cfgsched.schedule import f32
from tests.golden import (
    DARKNET_CFGS,
    bits,
    float_to_bits,
    hex_to_bits,
    mgpu_cases,
    needs_golden,
)

TRACES = [
    (fork, case, data, t) for fork, case, data in mgpu_cases() for t in data["traces"]
]
IDS = [f"{fork}/{case}/n{t['ngpus']}/{t['variant']}" for fork, case, data, t in TRACES]


def cfg_text(data: dict[str, Any]) -> str:
    src = data["cfg_source"]
    if src["kind"] == "synthetic":
        return str(src["cfg_text"])
    path = DARKNET_CFGS / Path(src["file"]).name
    if not path.is_file():
        pytest.skip(f"real cfg {path} is absent")
    return path.read_text()


def trace_for(fork: str, data: dict[str, Any], t: dict[str, Any]):  # type: ignore[no-untyped-def]
    sched = cfgsched.parse(cfg_text(data), fork=fork)
    iterations = len(t["gpu0_batch_num"]) if t["truncated"] else None
    return multigpu_trace(
        sched, int(t["ngpus"]), scratch=t["variant"] == "scratch", iterations=iterations
    )


@needs_golden
@pytest.mark.parametrize(("fork", "case", "data", "t"), TRACES, ids=IDS)
def test_trace_matches_golden(
    fork: str, case: str, data: dict[str, Any], t: dict[str, Any]
) -> None:
    tr = trace_for(fork, data, t)
    want_b = np.asarray(t["gpu0_batch_num"], dtype=np.int64)
    assert tr.batches.dtype == np.int64 and tr.lr.dtype == np.float32
    np.testing.assert_array_equal(tr.batches, want_b)
    np.testing.assert_array_equal(bits(tr.lr), hex_to_bits(t["gpu0_lr_hex"]))
    np.testing.assert_array_equal(tr.phase, np.asarray(t["phase"]))
    np.testing.assert_array_equal(tr.iteration, np.asarray(t["wall_iteration"]))
    assert float_to_bits(tr.learning_rate) == float_to_bits(
        float(t["learning_rate_after_ngpus_scaling"])
    )
    if not t["truncated"]:
        assert len(tr) == int(t["loop_iterations"])
        assert tr.ended
    else:
        assert not tr.ended


@needs_golden
@pytest.mark.parametrize(("fork", "case", "data", "t"), TRACES, ids=IDS)
def test_incremental_counters_match_golden(
    fork: str, case: str, data: dict[str, Any], t: dict[str, Any]
) -> None:
    """mgpu_step, one iteration at a time: batch, seen and cur_iteration after each one."""
    sched = cfgsched.parse(cfg_text(data), fork=fork)
    cfg = mgpu_config(sched, int(t["ngpus"]), scratch=t["variant"] == "scratch")
    state = _kernel_mgpu.mgpu_start(cfg)
    got_b, got_seen, got_counter = [], [], []
    for _ in range(len(t["gpu0_batch_num"])):
        step = _kernel_mgpu.mgpu_step(cfg, state)
        assert step is not None
        b, state = step
        got_b.append(b)
        got_seen.append(state.seen)
        got_counter.append(state.counter)
    assert got_b == t["gpu0_batch_num"]
    assert got_seen == t["seen_over_B_after"]
    if fork != "pjreddie":
        assert got_counter == t["counter_after"]
    if not t["truncated"]:
        assert _kernel_mgpu.mgpu_step(cfg, state) is None


@needs_golden
def test_golden_traces_cover_forks_and_variants() -> None:
    assert {case for _, case, _, _ in TRACES} >= {
        "mgpu_steps_small",
        "mgpu_yolov4_head",
    }
    kinds = {(fork, int(t["ngpus"]), t["variant"]) for fork, _, _, t in TRACES}
    for fork in ("alexeyab", "pjreddie", "hankai"):
        for n in (1, 2, 4):
            assert (fork, n, "weights") in kinds
    assert ("hankai", 2, "scratch") in kinds and ("hankai", 4, "scratch") in kinds


# ------------------------------------------------------------------ hand-computed rules


def steps_small(fork: str, **kw: Any) -> NetSchedule:
    base = NetSchedule(
        fork=fork,
        policy=Policy.STEPS,
        policy_name="steps",
        learning_rate=f32(0.001),
        burn_in=100,
        max_batches=500,
        steps=(300, 400),
        scales=(f32(0.1), f32(0.1)),
    )
    return base.with_values(**kw) if kw else base


def test_pjreddie_closed_form() -> None:
    """docs/design.md §3 (multi-GPU): pjreddie evaluates loop iteration k at
    4n*floor((k-1)/4) + (k-1)%4 + 1."""
    for n in (1, 2, 3, 4, 8):
        tr = multigpu_trace(steps_small("pjreddie", max_batches=1000), n)
        k = np.arange(1, len(tr) + 1)
        want = 4 * n * ((k - 1) // 4) + (k - 1) % 4 + 1
        np.testing.assert_array_equal(tr.batches, want)
        last = int(tr.batches[-1])
        after = last + (
            4 * (n - 1) if last % 4 == 0 else 0
        )  # seen after the last iteration
        assert last <= 1000 <= after


def test_alexeyab_two_gpus_first_batches() -> None:
    """docs/design.md §3 (multi-GPU): on 2 GPUs GPU 0 sees 1, 3, 9, 7, 13, ... (non-monotonic)."""
    tr = multigpu_trace(steps_small("alexeyab"), 2, iterations=6)
    assert tr.batches.tolist() == [1, 3, 9, 7, 13, 11]
    assert tr.learning_rate == f32(0.002)
    one = multigpu_trace(steps_small("alexeyab"), 1)
    assert one.batches.tolist() == list(range(1, 501))


def test_hankai_does_not_scale_and_scratch_phases() -> None:
    tr = multigpu_trace(steps_small("hankai"), 4, scratch=True)
    assert tr.learning_rate == f32(0.001)
    phase1 = tr.batches[tr.phase == 1]
    assert phase1.tolist() == list(range(1, 101))  # one GPU until burn_in
    assert tr.batches[tr.phase == 2][0] == 101
    # scratch changes nothing for the C forks or on one GPU
    for fork in ("alexeyab", "pjreddie"):
        a = multigpu_trace(steps_small(fork), 4, scratch=True)
        b = multigpu_trace(steps_small(fork), 4)
        np.testing.assert_array_equal(a.batches, b.batches)
    assert set(
        multigpu_trace(steps_small("hankai"), 1, scratch=True).phase.tolist()
    ) == {1}


@given(
    fork=st.sampled_from(["alexeyab", "pjreddie", "hankai"]),
    n=st.integers(1, 8),
    max_batches=st.integers(0, 25000),
    burn_in=st.integers(0, 3000),
    scratch=st.booleans(),
    cut=st.none() | st.integers(0, 3000),
)
def test_fast_form_equals_incremental(
    fork: str, n: int, max_batches: int, burn_in: int, scratch: bool, cut: int | None
) -> None:
    cfg = mgpu_config(
        steps_small(fork, max_batches=max_batches, burn_in=burn_in), n, scratch=scratch
    )
    fast, phases, final = _kernel_mgpu.mgpu_batches(cfg, cut)
    state = _kernel_mgpu.mgpu_start(cfg)
    slow, slow_phases = [], []
    while cut is None or len(slow) < cut:
        step = _kernel_mgpu.mgpu_step(cfg, state)
        if step is None:
            break
        b, nxt = step
        slow.append(b)
        slow_phases.append(nxt.phase)
        state = nxt
    assert fast == slow
    assert phases == slow_phases
    assert final == state


def test_trace_iterations_cut_and_errors() -> None:
    s = steps_small("alexeyab")
    assert len(multigpu_trace(s, 2, iterations=0)) == 0
    assert len(multigpu_trace(s, 2, iterations=10_000)) == 250
    with pytest.raises(ValueError, match="ngpus"):
        multigpu_trace(s, 0)
    with pytest.raises(ValueError, match="iterations"):
        multigpu_trace(s, 2, iterations=-1)


def test_advised_schedule() -> None:
    s = steps_small("alexeyab").with_values(learning_rate=0.00261, burn_in=1000)
    adv = advised_schedule(s, 4)
    assert adv.learning_rate == float(np.float32(np.float32(0.00261) / np.float32(4)))
    assert adv.learning_rate == f32(0.00261) / 4  # a power of two: exact
    assert adv.burn_in == 4000
    assert adv.steps == s.steps and adv.max_batches == s.max_batches
    three = advised_schedule(s, 3)
    assert three.learning_rate == float(np.float32(np.float32(0.00261) / np.float32(3)))
    assert three.burn_in == 3000
    # on 4 GPUs alexeyab multiplies back: the trace's LR is f32(0.00261)
    assert multigpu_trace(adv, 4, iterations=1).learning_rate == f32(0.00261)
    with pytest.raises(ValueError):
        advised_schedule(s, 0)


def test_kernel_mgpu_is_standard_library_only() -> None:
    """The kernels stay free of cfgsched and third-party imports (stdlib only)."""
    import ast
    import sys

    src = Path(_kernel_mgpu.__file__).read_text()
    mods = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mods.add((node.module or "").split(".")[0])
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}, mods
