"""The optimizer that goes with a darknet schedule (darknet's update rule, DESIGN.md §6)."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cfgsched.layers import BUILDS, LayerRule, layer_states
from cfgsched.schedule import NetSchedule

__all__ = ["LayerWindows", "build_optimizer", "decayed_parameter_names"]

#: Optimizer -> {darknet layer: its modules}, kept for :class:`LayerWindows`.
_LAYER_MODULES: weakref.WeakKeyDictionary[Any, dict[int, list[nn.Module]]] = (
    weakref.WeakKeyDictionary()
)

#: Module types whose ``weight`` gets weight decay (darknet's convolutional/connected weights).
DECAYED_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd,
    nn.Linear,
    nn.Bilinear,
)


def decayed_parameter_names(model: nn.Module) -> set[str]:
    """Names of the conv/linear ``weight`` parameters (the only ones darknet decays)."""
    out: set[str] = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, DECAYED_MODULES) and isinstance(
            getattr(mod, "weight", None), nn.Parameter
        ):
            out.add(f"{mod_name}.weight" if mod_name else "weight")
    return out


def _layer_of(name: str, layer_index: Mapping[str, int]) -> int | None:
    """The darknet layer of parameter ``name``: its longest matching key (name or prefix)."""
    best: tuple[int, int] | None = None
    for key, index in layer_index.items():
        if name == key or name.startswith(key + ".") or key == "":
            if best is None or len(key) > best[0]:
                best = (len(key), index)
    return None if best is None else best[1]


def _named_unique(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            yield name, p


def _modules_by_layer(
    layers: Sequence[nn.Module | None] | Mapping[int, nn.Module | Iterable[nn.Module]],
) -> dict[int, list[nn.Module]]:
    """``layers`` (modules indexed by darknet layer, or layer -> module(s)) as lists."""
    items = layers.items() if isinstance(layers, Mapping) else enumerate(layers)
    out: dict[int, list[nn.Module]] = {}
    for j, mods in items:
        if mods is None:
            continue
        out[int(j)] = [mods] if isinstance(mods, nn.Module) else list(mods)
    return out


def _layer_profiles(schedule: NetSchedule) -> dict[int, tuple[Any, ...]]:
    """A key per layer under a rule: layers with equal keys train alike in every build,
    resume point and GPU count (their rules come from the same cfg lines)."""
    per_build = [layer_states(schedule, build=b) for b in BUILDS]
    own = {k.index: (k.dont_update, k.burnin_update) for k in schedule.layers}
    layers = set().union(*per_build)
    return {
        j: (*(s.get(j) and (s[j].rule, s[j].line, s[j].held) for s in per_build),
            own.get(j), *(s.get(j) and s[j].gradient_from for s in per_build))
        for j in layers
    }  # fmt: skip


def build_optimizer(
    model: nn.Module,
    schedule: NetSchedule,
    *,
    layers: Sequence[nn.Module | None]
    | Mapping[int, nn.Module | Iterable[nn.Module]]
    | None = None,
    layer_index: Mapping[str, int] | None = None,
    loss_reduction: str = "mean",
    summed_images: int | None = None,
) -> torch.optim.Optimizer:
    """``SGD`` (or ``Adam`` for ``adam=1``) with darknet's update semantics.

    SGD: ``lr=learning_rate``, ``momentum``, ``dampening=0``, ``nesterov=False``; Adam:
    ``betas=(B1, B2)``, ``eps``. Weight decay ``decay`` applies only to conv/linear weights
    (:func:`decayed_parameter_names`), not to biases or normalization parameters.

    **The loss must be the mean over the cfg's ``batch`` images** (darknet sums gradients
    over ``batch`` images and multiplies the rate by 1/batch): with ``subdivisions`` > 1,
    accumulate gradients over the ``subdivisions`` mini-batches, each loss divided by
    ``batch``, then step once (subdivisions = gradient accumulation).

    ``layer_index`` maps a parameter name, or a module-name prefix of it (``"backbone.0"``
    covers ``"backbone.0.weight"``; the longest key wins), to a darknet layer index
    (0-based, the ``[section]`` order after ``[net]``). A layer's own ``learning_rate=``
    multiplier then becomes its parameter group's lr = ``learning_rate × multiplier``,
    which ``DarknetLR`` keeps as a multiplier. Without ``layer_index`` the multipliers are
    not applied (a ``UserWarning`` says so when the cfg has any).

    ``loss_reduction="sum"``: the loss is summed over ``summed_images`` images (default: the
    cfg's batch × subdivisions; with DDP the images of one rank's step, since DDP averages
    over ranks). SGD then gets ``lr / N`` and weight decay ``decay × N``: the same update as
    darknet's on the mean (``DarknetLR`` keeps the 1/N as the groups' multiplier). Adam
    (darknet sums gradients too) keeps ``lr`` and gets weight decay ``decay × N``.
    """
    lr_scale, decay_scale = _reduction_scales(schedule, loss_reduction, summed_images)
    if layers is not None and layer_index is not None:
        raise ValueError("pass layers= or layer_index=, not both")
    multipliers = {x.index: x.multiplier for x in schedule.layer_lrs}
    mapped = layers is not None or layer_index is not None
    if not mapped and (schedule.layers or any(m != 1.0 for m in multipliers.values())):
        warnings.warn(
            "the cfg sets per-layer training keys (learning_rate, stopbackward, ...); "
            "pass layers= (or layer_index=) to apply them",
            UserWarning,
            stacklevel=2,
        )
    modules = _modules_by_layer(layers) if layers is not None else {}
    groups = _param_groups(model, schedule, modules, layer_index, mapped)
    lr = schedule.learning_rate * lr_scale
    param_groups = [
        {
            "params": [p for _, p in members],
            "lr": lr if mult == 1.0 else lr * mult,
            "weight_decay": schedule.decay * decay_scale if decay else 0.0,
            "darknet_layer": layer,
            "darknet_layers": sorted({j for j, _ in members}) if prof else None,
        }
        for (decay, mult, layer, prof), members in groups.items()
    ]
    opt: torch.optim.Optimizer
    if schedule.adam:
        opt = torch.optim.Adam(
            param_groups, lr=lr, betas=(schedule.b1, schedule.b2), eps=schedule.eps
        )
    else:
        opt = torch.optim.SGD(
            param_groups,
            lr=lr,
            momentum=schedule.momentum,
            dampening=0.0,
            nesterov=False,
        )
    _LAYER_MODULES[opt] = modules
    return opt


def _param_groups(
    model: nn.Module,
    schedule: NetSchedule,
    modules: dict[int, list[nn.Module]],
    layer_index: Mapping[str, int] | None,
    mapped: bool,
) -> dict[tuple[Any, ...], list[tuple[int | None, nn.Parameter]]]:
    """Parameters keyed by (decayed, lr multiplier, its layer if scaled, layer profile)."""
    multipliers = {x.index: x.multiplier for x in schedule.layer_lrs}
    layer_of = _parameter_layers(model, modules, layer_index)
    profiles = _layer_profiles(schedule) if mapped else {}
    decayed = decayed_parameter_names(model)
    groups: dict[tuple[Any, ...], list[tuple[int | None, nn.Parameter]]] = {}
    for name, p in _named_unique(model):
        layer = layer_of.get(id(p))
        mult = 1.0 if layer is None else multipliers.get(layer, 1.0)
        prof = None if layer is None else profiles.get(layer)
        key = (name in decayed, mult, layer if mult != 1.0 else None, prof)
        groups.setdefault(key, []).append((layer, p))
    return groups


def _parameter_layers(
    model: nn.Module,
    modules: dict[int, list[nn.Module]],
    layer_index: Mapping[str, int] | None,
) -> dict[int, int]:
    """``id(parameter)`` -> darknet layer, from ``layers=`` modules or ``layer_index``."""
    out: dict[int, int] = {}
    for j, mods in sorted(modules.items()):
        for m in mods:
            for p in m.parameters():
                out.setdefault(id(p), j)
    if layer_index is None:
        return out
    used: set[str] = set()
    for name, p in _named_unique(model):
        layer = _layer_of(name, layer_index)
        used.update(
            k for k in layer_index if name == k or name.startswith(k + ".") or k == ""
        )
        if layer is not None:
            out[id(p)] = layer
    unused = sorted(set(layer_index) - used)
    if unused:
        raise ValueError(f"layer_index keys match no parameter: {', '.join(unused)}")
    return out


class LayerWindows:
    """darknet's layer rules at every optimizer step, through a step pre-hook.

    Groups of :func:`build_optimizer` that carry ``darknet_layers`` get their rule at
    update k (``update()`` gives k, 1-based): inside a gradient window the gradient is
    zeroed, not dropped (decay and momentum act as in darknet); a never-updated group is
    skipped (gradient set to None); a held update stashes the gradient and lands the pile
    with the first allowed update. Batch-norm of layers darknet runs in inference mode is
    kept in eval mode by a forward pre-hook.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        states: Mapping[int, LayerRule],
        update: Any,
    ) -> None:
        self.update = update
        self.groups = [
            (g["params"], states[g["darknet_layers"][0]])
            for g in optimizer.param_groups
            if g.get("darknet_layers") and g["darknet_layers"][0] in states
        ]
        self.pile: dict[nn.Parameter, torch.Tensor] = {}
        self.handles = [optimizer.register_step_pre_hook(self.before_step)]
        for j, mods in _LAYER_MODULES.get(optimizer, {}).items():
            if j in states and states[j].inference_bn:
                for m in mods:
                    for bn in m.modules():
                        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
                            self.handles.append(
                                bn.register_forward_pre_hook(_eval_mode)
                            )

    @classmethod
    def attach(
        cls,
        optimizer: torch.optim.Optimizer,
        schedule: NetSchedule,
        update: Any,
        **kw: Any,
    ) -> LayerWindows | None:
        """The windows of ``schedule`` (``kw``: :func:`layer_states`'s options) on
        ``optimizer``, or None when no group carries a layer rule."""
        if not any(g.get("darknet_layers") for g in optimizer.param_groups):
            return None
        return cls(optimizer, layer_states(schedule, **kw), update)

    def before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """Apply each group's rule for the coming update."""
        k = self.update()
        for params, rule in self.groups:
            if not rule.updated:
                for p in params:
                    p.grad = None
                continue
            if rule.gradient_from is None or k < rule.gradient_from:
                for p in params:
                    p.grad = torch.zeros_like(p) if p.grad is None else p.grad.zero_()
            if k <= rule.held:
                for p in params:
                    if p.grad is not None:
                        old = self.pile.get(p)
                        self.pile[p] = p.grad if old is None else old.add_(p.grad)
                    p.grad = None
            elif self.pile:
                for p in params:
                    pile = self.pile.pop(p, None)
                    if pile is not None:
                        p.grad = pile if p.grad is None else p.grad.add_(pile)


def _eval_mode(module: nn.Module, args: Any) -> None:
    module.training = False


def _reduction_scales(
    schedule: NetSchedule, loss_reduction: str, summed_images: int | None
) -> tuple[float, float]:
    """``(lr factor, weight-decay factor)`` that keep darknet's update for this loss."""
    if loss_reduction not in ("mean", "sum"):
        raise ValueError(
            f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}"
        )
    if loss_reduction == "mean":
        if summed_images is not None:
            raise ValueError("summed_images applies to loss_reduction='sum' only")
        return 1.0, 1.0
    n = schedule.images_per_iteration if summed_images is None else summed_images
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"summed_images must be an integer >= 1, got {n!r}")
    return (1.0 if schedule.adam else 1.0 / n), float(n)
