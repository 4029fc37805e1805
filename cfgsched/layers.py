"""darknet's per-layer training rules per fork and build (docs/design.md, layer rules):
layers are the sections after ``[net]`` from 0, update k the k-th weight update (1-based)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from cfgsched.options import BUILDS
from cfgsched.schedule import LayerKeys, NetSchedule

__all__ = ["BUILDS", "LayerRule", "layer_rules", "layer_states"]


@dataclass(frozen=True)
class LayerRule:
    """What darknet does to layers ``first``..``last`` (key ``rule`` at ``line``):
    ``gradient_from`` the first update with their gradient (None: never); ``updated``: the
    update changes them at all; ``lr_scale``: ``learning_rate=``; updates 1..``held`` skipped
    (the pile lands at held + 1); ``inference_bn``: batch-norm in inference mode."""

    first: int
    last: int
    rule: str
    line: int
    gradient_from: int | None
    updated: bool
    lr_scale: float = 1.0
    held: int = 0
    inference_bn: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (explain ``--json``'s ``layers`` entries and the extras)."""
        return asdict(self)


def _line(keys: LayerKeys, key: str) -> int:
    return dict(keys.lines).get(key, keys.line)


def _last(
    layers: dict[int, LayerKeys], test: Callable[[LayerKeys], Any]
) -> LayerKeys | None:
    return max(
        (k for k in layers.values() if test(k)), key=lambda k: k.index, default=None
    )


def _gradient(
    j: int, by: dict[int, LayerKeys], fork: str, gpu: bool, start: int, g: int
) -> tuple[LayerKeys, int | None] | None:
    """The stopbackward withholding layer j's gradient and the first update with it, or None:
    CPU builds and pjreddie break the backward at any nonzero value (network.c
    ``backward_network``), alexeyab/hankai GPU at 1 or while it exceeds ``cur_iteration``,
    start + (k - 1)·g at update k (``backward_network_gpu``, ``train_network_waitkey``)."""
    stops = [k for i, k in by.items() if i >= j and k.stopbackward]
    if not stops:
        return None
    always = [k for k in stops if not gpu or fork == "pjreddie" or k.stopbackward == 1]
    if always:
        return max(always, key=lambda k: k.index), None
    cause = max(stops, key=lambda k: k.stopbackward)
    return cause, 1 + max(0, math.ceil((cause.stopbackward - start) / g))


def _state(
    j: int, by: dict[int, LayerKeys], s: NetSchedule, gpu: bool, start: int, g: int
) -> LayerRule | None:
    """Layer j's rule, or None when darknet trains it normally."""
    fork, own = s.fork, by.get(j)
    c = fork != "pjreddie"  # hankai and alexeyab: train=0, onlyforward, GPU rules
    rule = LayerRule(j, j, "", 0, 1, True, own.learning_rate if own else 1.0)
    # train=0 before the last stopbackward == 1 (alexeyab parser.c) / nonzero (hankai
    # darknet_cfg.cpp create_network): no update, onlyforward, GPU batch-norm inference.
    last = _last(
        by, lambda k: k.stopbackward == 1 if fork == "alexeyab" else k.stopbackward
    )
    if c and last is not None and j < last.index:
        line = _line(last, "stopbackward")
        return replace(rule, rule="stopbackward", line=line, gradient_from=None,
                       updated=False, inference_bn=gpu)  # fmt: skip
    # train_only_bn spreads down (parser.c set_train_only_bn); GPU update skips it.
    tob = _last(by, lambda k: k.train_only_bn)
    if gpu and c and tob is not None and j <= tob.index:
        line = _line(tob, "train_only_bn")
        return replace(
            rule, rule="train_only_bn", line=line, gradient_from=None, updated=False
        )
    grad = _gradient(j, by, fork, gpu, start, g)
    if grad is not None and grad[1] != 1:
        line = _line(grad[0], "stopbackward")
        rule = replace(rule, rule="stopbackward", line=line, gradient_from=grad[1])
    if own is not None and own.onlyforward and c:
        line = rule.line or _line(own, "onlyforward")
        rule = replace(
            rule, rule=rule.rule or "onlyforward", gradient_from=None, line=line
        )
    if own is not None and gpu and c:
        rule = _held(rule, own, s.burn_in, start, g)
    if own is not None and own.learning_rate == 0:
        rule = replace(rule, updated=False)
    if own is not None and not rule.rule and own.learning_rate != 1:
        rule = replace(rule, rule="learning_rate", line=_line(own, "learning_rate"))
    return rule if rule.rule else None


def _held(
    rule: LayerRule, own: LayerKeys, burn_in: int, start: int, g: int
) -> LayerRule:
    """``dont_update``/``burnin_update``: update_network_gpu skips the update while the
    iteration (start + k·g at update k) is <= dont_update or below burnin_update × burn_in."""
    held = max(0, (own.dont_update - start) // g) if own.dont_update else 0
    if own.burnin_update:
        held = max(held, math.ceil((own.burnin_update * burn_in - start) / g) - 1)
    if held <= 0:
        return rule
    key = "dont_update" if own.dont_update else "burnin_update"
    return replace(
        rule, held=held, rule=rule.rule or key, line=rule.line or _line(own, key)
    )


def layer_states(
    schedule: NetSchedule,
    *,
    build: str = "gpu",
    resume_iteration: int | None = None,
    clear: bool = False,
    ngpus: int = 1,
) -> dict[int, LayerRule]:
    """Each layer's rule for the layers darknet does not train normally: ``resume_iteration``
    (``clear``: ``-clear``) starts the counter; GPU 0's moves by ``ngpus`` (not pjreddie)."""
    if build not in BUILDS:
        raise ValueError(f"unknown build {build!r}: choose one of {', '.join(BUILDS)}")
    start = 0 if clear or resume_iteration is None else resume_iteration
    g = 1 if schedule.fork == "pjreddie" else ngpus
    by = {k.index: k for k in schedule.layers}
    states = (
        _state(j, by, schedule, build == "gpu", start, g)
        for j in range(max(by, default=-1) + 1)
    )
    return {r.first: r for r in states if r is not None}


def layer_rules(schedule: NetSchedule, **options: Any) -> tuple[LayerRule, ...]:
    """:func:`layer_states` (same ``options``) with runs of consecutive layers under the
    same rule merged: the ``layers`` list of ``explain --json``."""
    out: list[LayerRule] = []
    for j, r in sorted(layer_states(schedule, **options).items()):
        if out and out[-1].last == j - 1 and replace(out[-1], first=j, last=j) == r:
            out[-1] = replace(out[-1], last=j)
        else:
            out.append(r)
    return tuple(out)
