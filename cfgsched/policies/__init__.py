"""darknet's learning-rate policies, one module each (:class:`base.PolicyModule`)."""

from __future__ import annotations

from cfgsched.kernel.formulas import FORK_PJREDDIE, U64, Params
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

#: Each policy's module in darknet's enum order (:class:`cfgsched.schedule.Policy`).
MODULES: tuple[PolicyModule, ...] = (
    constant,
    step,
    exp,
    poly,
    steps,
    sigmoid,
    random,
    sgdr,
)


def module(policy: int) -> PolicyModule:
    """The module of ``policy`` (darknet treats an unknown one as constant)."""
    return MODULES[policy] if 0 <= policy < len(MODULES) else constant


def rate(p: Params, b: int, exact: bool = True, flush: bool = False) -> float:
    """darknet's ``get_current_rate()`` at batch ``0 <= b < 2**64``: ``exact`` in the fork's
    float32 (else double), ``flush`` its flush-to-zero (inputs pre-flushed: ``flushed``)."""
    # pjreddie compares b < burn_in unsigned: a negative burn_in never ends
    burn = p.burn_in % U64 if p.fork == FORK_PJREDDIE else p.burn_in
    return (burn_in if b < burn else module(p.policy)).rate(p, b, exact, flush)
