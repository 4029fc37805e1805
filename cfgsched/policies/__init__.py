"""darknet's learning-rate policies, one module each (:class:`base.PolicyModule`)."""

from __future__ import annotations

from cfgsched.kernel.formulas import (
    CONSTANT,
    EXP,
    FORK_PJREDDIE,
    POLY,
    RANDOM,
    SGDR,
    SIG,
    STEP,
    STEPS,
    U64,
    Params,
)
from cfgsched.policies import (
    burn_in,
    constant,
    exp,
    poly,
    random,
    sgdr,
    sigmoid,
    step,
    steps,
)
from cfgsched.policies.base import PolicyModule

#: Each policy's module, by darknet's enum value (:class:`cfgsched.schedule.Policy`).
MODULES: dict[int, PolicyModule] = {
    CONSTANT: constant,
    STEP: step,
    EXP: exp,
    POLY: poly,
    STEPS: steps,
    SIG: sigmoid,
    RANDOM: random,
    SGDR: sgdr,
}


def module(policy: int) -> PolicyModule:
    """The module of ``policy`` (darknet treats an unknown one as constant)."""
    return MODULES.get(policy, constant)


def in_burn_in(p: Params, b: int) -> bool:
    """``b < burn_in`` as the fork compares (pjreddie: unsigned, a negative one never ends)."""
    return b < (p.burn_in % U64 if p.fork == FORK_PJREDDIE else p.burn_in)


def rate(p: Params, b: int, exact: bool = True, flush: bool = False) -> float:
    """darknet's ``get_current_rate()`` at batch ``0 <= b < 2**64``: ``exact`` in the fork's
    float32 (else double), ``flush`` its flush-to-zero (inputs pre-flushed: ``flushed``)."""
    mod = burn_in if in_burn_in(p, b) else module(p.policy)
    return mod.rate(p, b, exact, flush)
