"""darknet_lr against the golden data printed by darknet's own C code (all three forks)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from cfgsched import NetSchedule, Policy
from cfgsched.oracle import darknet_lr, darknet_lr_scalar
from cfgsched.schedule import f32
from tests.golden import (
    GOLDEN,
    EvalCase,
    bits,
    case_ids,
    eval_cases,
    float_to_bits,
    needs_golden,
)

pytestmark = needs_golden

OK_CASES = [c for c in eval_cases() if c.ok]


def schedule_from_params(fork: str, params: dict[str, Any]) -> NetSchedule:
    """A NetSchedule holding exactly the values the fork stored (golden ``parse.params``).

    Checking the oracle from these values as well as through the parser tells an oracle
    bug from a parser bug.
    """
    return NetSchedule(
        fork=fork,
        policy=Policy(int(params["policy_enum"])),
        learning_rate=f32(float(params["learning_rate"])),
        burn_in=int(params["burn_in"]),
        power=f32(float(params["power"])),
        step=int(params["step"]),
        scale=f32(float(params["scale"])),
        gamma=f32(float(params["gamma"])),
        max_batches=int(params["max_batches"]),
        learning_rate_min=f32(float(params.get("learning_rate_min", 1e-5))),
        sgdr_cycle=int(params.get("sgdr_cycle", 0)),
        sgdr_mult=int(params.get("sgdr_mult", 2)),
        steps=tuple(int(s) for s in params["steps"]),
        scales=tuple(f32(float(s)) for s in params["scales"]),
    )


def check_bits(case: EvalCase, got: np.ndarray, want: np.ndarray | None = None) -> None:
    """``got`` equals ``lr_hex`` (the -Ofast build) at every batch, no exception."""
    want = case.lr_bits if want is None else want
    bad = [
        (int(b), hex(int(g)), hex(int(w)))
        for b, g, w in zip(case.batches, got, want, strict=True)
        if g != w
    ]
    assert not bad, f"{case.id}: {len(bad)} mismatches, first {bad[:5]}"


#: The golden data's build: -Ofast for all three forks, so flush-to-zero (hankai included).
GOLDEN_BUILD = {"flush": True}


@pytest.mark.parametrize("case", OK_CASES, ids=case_ids(OK_CASES))
def test_vectorized_from_params(case: EvalCase) -> None:
    sched = schedule_from_params(case.fork, case.params)
    check_bits(case, bits(darknet_lr(sched, case.batches, **GOLDEN_BUILD)))


@pytest.mark.parametrize("case", OK_CASES, ids=case_ids(OK_CASES))
def test_scalar(case: EvalCase) -> None:
    """The scalar path, from the golden params (no parser) and end to end."""
    import cfgsched

    for sched in (
        schedule_from_params(case.fork, case.params),
        cfgsched.parse(case.cfg_text, fork=case.fork, source=case.source),
    ):
        got = np.array(
            [
                float_to_bits(darknet_lr_scalar(sched, int(b), **GOLDEN_BUILD))
                for b in case.batches
            ],
            dtype=np.uint32,
        )
        check_bits(case, got)


@pytest.mark.parametrize("case", OK_CASES, ids=case_ids(OK_CASES))
def test_end_to_end_through_parser(case: EvalCase) -> None:
    import cfgsched

    sched = cfgsched.parse(case.cfg_text, fork=case.fork, source=case.source)
    check_bits(case, bits(darknet_lr(sched, case.batches, **GOLDEN_BUILD)))
    # int32 and uint32 inputs give the same bits as int64
    if int(case.batches.max()) < 2**31:
        b32 = case.batches.astype(np.int32)
        check_bits(case, bits(darknet_lr(sched, b32, **GOLDEN_BUILD)))
    b32u = case.batches.astype(np.uint32)
    check_bits(case, bits(darknet_lr(sched, b32u, **GOLDEN_BUILD)))


@pytest.mark.parametrize("case", OK_CASES, ids=case_ids(OK_CASES))
def test_without_flush_equals_the_O0_build(case: EvalCase) -> None:
    """``flush=False`` is the same harness built with -O0 (``crosscheck_O0``): subnormal
    results kept; the fork's default build is the -Ofast one except for hankai."""
    sched = schedule_from_params(case.fork, case.params)
    check_bits(case, bits(darknet_lr(sched, case.batches, flush=False)), case.o0_bits)
    default = case.o0_bits if case.fork == "hankai" else case.lr_bits
    check_bits(case, bits(darknet_lr(sched, case.batches)), default)


def test_flush_to_zero_cases_are_checked() -> None:
    """sig_defaults (all three forks): -Ofast printed 0 where -O0 printed a subnormal."""
    cases = [c for c in OK_CASES if c.ftz_batches()]
    assert {c.case for c in cases} == {"sig_defaults"}
    assert {c.fork for c in cases} == {"alexeyab", "pjreddie", "hankai"}
    for c in cases:
        at = np.isin(c.batches, sorted(c.ftz_batches()))
        assert (c.lr_bits[at] == 0).all()
        assert ((c.o0_bits[at] > 0) & (c.o0_bits[at] < 0x00800000)).all()


def test_golden_cover_every_fork_and_policy() -> None:
    """The loop above really ran over every fork and every non-random policy."""
    seen = {(c.fork, int(c.params["policy_enum"])) for c in OK_CASES}
    for fork in ("alexeyab", "pjreddie", "hankai"):
        for pol in (
            Policy.CONSTANT,
            Policy.STEP,
            Policy.STEPS,
            Policy.EXP,
            Policy.POLY,
            Policy.SIG,
        ):
            assert (fork, int(pol)) in seen
    assert ("alexeyab", int(Policy.SGDR)) in seen and (
        "hankai",
        int(Policy.SGDR),
    ) in seen
    # every point the index lists (33,045 in the data set at hand) was loaded
    index = json.loads((GOLDEN / "index.json").read_text())
    listed = sum(
        r["n"] for c in index["cases"] for r in c["results"].values() if r.get("ok")
    )
    assert listed > 30000
    assert sum(len(c.batches) for c in OK_CASES) == listed
