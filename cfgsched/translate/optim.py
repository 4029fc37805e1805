"""The optimizer that goes with a darknet schedule (darknet's update rule, DESIGN.md §6)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from cfgsched.schedule import NetSchedule

__all__ = ["build_optimizer", "decayed_parameter_names"]

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


def build_optimizer(
    model: nn.Module,
    schedule: NetSchedule,
    *,
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
    multipliers = {x.index: x.multiplier for x in schedule.layer_lrs}
    if layer_index is None and any(m != 1.0 for m in multipliers.values()):
        warnings.warn(
            "the cfg sets per-layer learning_rate multipliers; pass layer_index= to apply them",
            UserWarning,
            stacklevel=2,
        )
    decayed = decayed_parameter_names(model)
    groups: dict[tuple[bool, float, int | None], list[nn.Parameter]] = {}
    used_keys: set[str] = set()
    for name, p in _named_unique(model):
        layer = None
        if layer_index is not None:
            layer = _layer_of(name, layer_index)
            used_keys.update(
                k
                for k in layer_index
                if name == k or name.startswith(k + ".") or k == ""
            )
        mult = multipliers.get(layer, 1.0) if layer is not None else 1.0
        key = (name in decayed, mult, layer if mult != 1.0 else None)
        groups.setdefault(key, []).append(p)
    if layer_index is not None:
        unused = sorted(set(layer_index) - used_keys)
        if unused:
            raise ValueError(
                f"layer_index keys match no parameter: {', '.join(unused)}"
            )
    lr = schedule.learning_rate * lr_scale
    param_groups = [
        {
            "params": params,
            "lr": lr if mult == 1.0 else lr * mult,
            "weight_decay": schedule.decay * decay_scale if decay else 0.0,
            "darknet_layer": layer,
        }
        for (decay, mult, layer), params in groups.items()
    ]
    if schedule.adam:
        return torch.optim.Adam(
            param_groups, lr=lr, betas=(schedule.b1, schedule.b2), eps=schedule.eps
        )
    return torch.optim.SGD(
        param_groups, lr=lr, momentum=schedule.momentum, dampening=0.0, nesterov=False
    )


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
