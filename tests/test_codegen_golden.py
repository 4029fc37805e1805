"""Every loadable golden case: the generated module, loaded with cfgsched blocked, gives
darknet's float32 bits through ``lr_at`` and through its stepped ``build_scheduler``.

The golden values come from ``-Ofast`` builds of all three forks (flush-to-zero), so the
modules are generated with ``Options(flush=True)``. The scheduler is driven like a
training loop on a real ``torch.optim.SGD``: densely up to batch :data:`DENSE`, and at
every later golden batch b from ``build_scheduler(optimizer, last_epoch=b - 2)`` (resumed
there) followed by one step.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import cfgsched
from cfgsched.codegen import generate
from cfgsched.options import Options
from tests import modules
from tests.golden import (
    EvalCase,
    case_ids,
    eval_cases,
    float_to_bits,
    hex_to_bits,
    mgpu_cases,
    needs_golden,
)
from tests.test_multigpu import cfg_text

pytestmark = needs_golden

#: The cases cfgsched reads (a case whose fork stops has no LR values).
CASES = [c for c in eval_cases() if c.ok]
#: Batches stepped through one by one; later golden batches are reached by resuming.
DENSE = 1500
TRACES = [
    (fork, case, data, t) for fork, case, data in mgpu_cases() for t in data["traces"]
]
TRACE_IDS = [f"{f}/{c}/n{t['ngpus']}/{t['variant']}" for f, c, _, t in TRACES]


def golden(case: EvalCase) -> dict[int, int]:
    """Listed batch b >= 1 (update b uses it) -> darknet's float32 bits."""
    return {
        int(b): int(h)
        for b, h in zip(case.batches, case.lr_bits, strict=True)
        if b >= 1
    }


def module_name(case_id: str) -> str:
    return "gen_" + re.sub(r"\W", "_", case_id)


def through_scheduler(m: Any, want: dict[int, int]) -> dict[int, float]:
    """The lr the optimizer holds for each wanted batch b, stepped or resumed there."""
    dense = [b for b in want if b <= DENSE]
    got = dict(enumerate(modules.stepped(m, max(dense, default=0)), start=1))
    opt = modules.sgd(m)
    for b in sorted(set(want) - set(dense)):
        sched = m.build_scheduler(opt, last_epoch=b - 2)  # b - 1 steps done
        got[b] = float(opt.param_groups[0]["lr"])
        if b + 1 in want:
            opt.step()
            sched.step()
            got[b + 1] = float(opt.param_groups[0]["lr"])
    return got


def differences(
    got: dict[int, float], want: dict[int, int]
) -> list[tuple[int, str, str]]:
    return [
        (b, hex(float_to_bits(got[b])), hex(w))
        for b, w in want.items()
        if float_to_bits(got[b]) != w
    ]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_module_gives_golden_bits(case: EvalCase) -> None:
    schedule = cfgsched.parse(case.cfg_text, fork=case.fork, source=case.source)
    text = generate(schedule, Options(flush=True))
    want = golden(case)
    with modules.cfgsched_blocked():
        m = modules.load(text, module_name(case.id))
        by_lr_at = {b: m.lr_at(b - 1) for b in want}
        by_scheduler = through_scheduler(m, want)
    assert not differences(by_lr_at, want), differences(by_lr_at, want)[:5]
    assert not differences(by_scheduler, want), differences(by_scheduler, want)[:5]


@pytest.mark.parametrize(("fork", "case", "data", "t"), TRACES, ids=TRACE_IDS)
def test_trace_module_gives_golden_gpu0_bits(
    fork: str, case: str, data: dict[str, Any], t: dict[str, Any]
) -> None:
    """--multigpu trace: optimizer step i is GPU 0's loop iteration i + 1."""
    schedule = cfgsched.parse(cfg_text(data), fork=fork)
    n = int(t["ngpus"])
    options = Options(
        ngpus=n, multigpu="trace", scratch=t["variant"] == "scratch", flush=True
    )
    text = generate(schedule, options)
    want = hex_to_bits(t["gpu0_lr_hex"])
    with modules.cfgsched_blocked():
        m = modules.load(text, module_name(f"{fork}/{case}/{n}/{t['variant']}"))
        by_lr_at = [m.lr_at(i) for i in range(len(want))]
        by_scheduler = modules.stepped(m, len(want))
    np.testing.assert_array_equal(np.float32(by_lr_at).view(np.uint32), want)
    np.testing.assert_array_equal(np.float32(by_scheduler).view(np.uint32), want)


def test_every_fork_and_policy_was_checked() -> None:
    """The loop above really covered each fork's policies (not an empty parametrize)."""
    seen = {(c.fork, int(c.params["policy_enum"])) for c in CASES}
    for fork in ("alexeyab", "pjreddie", "hankai"):
        assert {(fork, p) for p in range(6)} <= seen  # constant .. sigmoid
    assert len(CASES) >= 140 and len(TRACES) >= 10


def test_blocker_blocks() -> None:
    """The block really refuses cfgsched, also from inside a function called later."""
    text = "def later():\n    import cfgsched.kernel.formulas\n"
    with modules.cfgsched_blocked():
        m = modules.load(text, "gen_blocker_probe")
        with pytest.raises(ImportError, match="cfgsched"):
            m.later()
        with pytest.raises(ImportError):
            modules.load("import cfgsched\n", "gen_blocker_probe2")
    import cfgsched.kernel.formulas  # restored afterwards

    assert cfgsched.kernel.formulas.f32(0.1) != 0.1
