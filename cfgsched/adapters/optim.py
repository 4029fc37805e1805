"""The optimizer that goes with a darknet schedule (darknet's update rule, docs/design.md)."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cfgsched.layers import BUILDS, LayerRule, layer_states
from cfgsched.schedule import NetSchedule

__all__ = ["LayerWindows", "build_optimizer", "decayed_parameter_names"]

#: ``layers=`` of build_optimizer: modules indexed by darknet layer, or layer -> module(s).
Layers = Sequence[nn.Module | None] | Mapping[int, nn.Module | Iterable[nn.Module]]

#: Optimizer -> {darknet layer: its modules}, kept for :class:`LayerWindows`.
_LAYER_MODULES: weakref.WeakKeyDictionary[Any, dict[int, list[nn.Module]]] = (
    weakref.WeakKeyDictionary()
)

#: Module types whose ``weight`` gets weight decay (darknet's convolutional/connected weights).
DECAYED_MODULES = (nn.modules.conv._ConvNd, nn.Linear, nn.Bilinear)


def decayed_parameter_names(model: nn.Module) -> set[str]:
    """Names of the conv/linear ``weight`` parameters (the only ones darknet decays)."""
    return {
        f"{name}.weight" if name else "weight"
        for name, mod in model.named_modules()
        if isinstance(mod, DECAYED_MODULES)
        and isinstance(getattr(mod, "weight", None), nn.Parameter)
    }


def _named_unique(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            yield name, p


def _layer_profiles(schedule: NetSchedule) -> dict[int | None, tuple[Any, ...]]:
    """A key per layer: equal keys train alike in every build, resume point and GPU count."""
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
    layers: Layers | None = None,
    layer_index: Mapping[str, int] | None = None,
    loss_reduction: str = "mean",
    summed_images: int | None = None,
) -> torch.optim.Optimizer:
    """``SGD`` (``Adam`` for ``adam=1``) with darknet's update rule, decay on conv/linear
    weights only; the loss is the mean over the cfg's ``batch`` images (accumulate the
    ``subdivisions`` mini-batches). ``layers`` (modules indexed by darknet layer, or layer ->
    module(s)) or ``layer_index`` (parameter name or module prefix -> layer, longest key wins)
    apply each layer's ``learning_rate=`` and group the layers under a rule for DarknetLR.
    ``loss_reduction="sum"`` over ``summed_images`` (default batch × subdivisions): SGD gets
    ``lr / N``, both decay ``decay × N``."""
    lr_scale, decay_scale = _reduction_scales(schedule, loss_reduction, summed_images)
    if layers is not None and layer_index is not None:
        raise ValueError("pass layers= or layer_index=, not both")
    mapped = layers is not None or layer_index is not None
    own = schedule.layers or any(x.multiplier != 1 for x in schedule.layer_lrs)
    if own and not mapped:  # per-layer keys that no layer mapping can apply
        warnings.warn(
            "the cfg sets per-layer training keys (learning_rate, stopbackward, ...); "
            "pass layers= (or layer_index=) to apply them",
            stacklevel=2,
        )
    modules, layer_of = _parameter_layers(model, layers, layer_index)
    multipliers = {x.index: x.multiplier for x in schedule.layer_lrs}
    profiles = _layer_profiles(schedule) if mapped else {}
    decayed = decayed_parameter_names(model)
    groups: dict[tuple[Any, ...], list[tuple[int | None, nn.Parameter]]] = {}
    for name, p in _named_unique(model):
        j = layer_of.get(id(p))
        mult = 1.0 if j is None else multipliers.get(j, 1.0)
        key = (name in decayed, mult, j if mult != 1.0 else None, profiles.get(j))
        groups.setdefault(key, []).append((j, p))
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
        betas = (schedule.b1, schedule.b2)
        opt = torch.optim.Adam(param_groups, lr=lr, betas=betas, eps=schedule.eps)
    else:
        opt = torch.optim.SGD(param_groups, lr=lr, momentum=schedule.momentum)
    _LAYER_MODULES[opt] = modules
    return opt


def _parameter_layers(
    model: nn.Module, layers: Layers | None, layer_index: Mapping[str, int] | None
) -> tuple[dict[int, list[nn.Module]], dict[int, int]]:
    """``layers`` as layer -> modules, and ``id(parameter)`` -> darknet layer (``layers=``:
    the lowest holding it)."""
    items = layers.items() if isinstance(layers, Mapping) else enumerate(layers or ())
    modules = {
        int(j): [mods] if isinstance(mods, nn.Module) else list(mods)
        for j, mods in items
        if mods is not None
    }
    out = {
        id(p): j
        for j, mods in sorted(modules.items(), reverse=True)
        for m in mods
        for p in m.parameters()
    }
    index, used = dict(layer_index or {}), set()
    for name, p in _named_unique(model) if index else ():
        keys = [k for k in index if k in ("", name) or name.startswith(k + ".")]
        used.update(keys)
        if keys:
            out[id(p)] = index[max(keys, key=len)]
    unused = sorted(set(index) - used)
    if unused:
        raise ValueError(f"layer_index keys match no parameter: {', '.join(unused)}")
    return modules, out


class LayerWindows:
    """darknet's layer rules before every optimizer step (update k = ``update()``): inside a
    gradient window gradients are zeroed, not dropped; a never-updated group is skipped; held
    updates pile up and land together; inference-mode batch-norm is kept in eval mode."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        states: Mapping[int, LayerRule],
        update: Callable[[], int],
    ) -> None:
        self.update, self.optimizer = update, optimizer
        self.groups = [
            (g["params"], states[g["darknet_layers"][0]])
            for g in optimizer.param_groups
            if g.get("darknet_layers") and g["darknet_layers"][0] in states
        ]
        self.pile: dict[nn.Parameter, torch.Tensor] = {}
        self.handles = [optimizer.register_step_pre_hook(self.before_step)]
        for j, mods in _LAYER_MODULES.get(optimizer, {}).items():
            for m in mods if j in states and states[j].inference_bn else ():
                self.handles += [
                    bn.register_forward_pre_hook(_eval_mode)
                    for bn in m.modules()
                    if isinstance(bn, nn.modules.batchnorm._BatchNorm)
                ]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "handles"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled (with its optimizer): the step pre-hook on that optimizer again."""
        self.__dict__.update(state)
        self.handles = [self.optimizer.register_step_pre_hook(self.before_step)]

    def before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """Apply each group's rule for the coming update."""
        k = self.update()
        for params, rule in self.groups:
            for p in params:
                if not rule.updated:
                    p.grad = None
                    continue
                if rule.gradient_from is None or k < rule.gradient_from:
                    p.grad = torch.zeros_like(p) if p.grad is None else p.grad.zero_()
                if k <= rule.held:
                    if p.grad is not None:
                        old = self.pile.get(p)
                        self.pile[p] = p.grad if old is None else old.add_(p.grad)
                    p.grad = None
                elif (pile := self.pile.pop(p, None)) is not None:
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
    if loss_reduction == "mean" and summed_images is not None:
        raise ValueError("summed_images applies to loss_reduction='sum' only")
    if loss_reduction == "mean":
        return 1.0, 1.0
    n = schedule.images_per_iteration if summed_images is None else summed_images
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"summed_images must be an integer >= 1, got {n!r}")
    return (1.0 if schedule.adam else 1.0 / n), float(n)
