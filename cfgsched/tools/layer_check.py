"""``diff --module``'s check of a generated module's layer rules (``LAYERS``,
``attach_layers``) against the run's and the library's :class:`LayerWindows`."""

from __future__ import annotations

from dataclasses import astuple, replace
from typing import Any

from cfgsched.module_record import clip
from cfgsched.run import Run
from cfgsched.tools.stepping import describe, merged

#: Updates checked on each side of every window edge.
HALO = 2


def check_layers(names: dict[str, Any], run: Run) -> str:
    """Why the module (its top-level ``names``) does not apply ``run``'s layer rules ("" when
    it does): ``LAYERS`` must equal ``run.layers`` and ``attach_layers`` must move a tiny
    model as ``LayerWindows`` does over the updates around every window edge."""
    want = tuple(astuple(r) for r in run.layers)
    got = names.get("LAYERS")
    if got is None and not want:
        return ""
    if got != want:
        if not isinstance(got, tuple) or len(got) != len(want):
            return (
                f"LAYERS {clip(got)} does not hold this run's {len(want)} layer rules"
            )
        i = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
        return f"LAYERS[{i}] is {clip(got[i], 80)}, this run's rule is {want[i]}"
    edges = {1} | {r.gradient_from or 1 for r in run.layers}
    edges |= {r.held + 1 for r in run.layers}
    if not any(r.inference_bn or not r.updated for r in run.layers) and edges == {1}:
        return ""  # the rules only scale rates: no window to apply
    attach = names.get("attach_layers")
    if not callable(attach):
        return (
            "the run has layer windows, the module no attach_layers(optimizer, layers)"
        )
    try:
        return _trajectories(attach, run, sorted(edges))
    except Exception as exc:  # the module's hook failed
        return f"attach_layers failed: {describe(exc)}"


def _trajectories(attach: Any, run: Run, edges: list[int]) -> str:
    """Both hooks over each window (fresh models and optimizers at its start): the first
    tensor that differs after an update, as a one-line reason ("" when none)."""
    import torch

    from cfgsched.adapters.optim import LayerWindows, build_optimizer

    states = {
        j: replace(r, first=j, last=j)
        for r in run.layers
        for j in range(r.first, r.last + 1)
    }
    count, k = max(r.last for r in run.layers) + 1, [0]
    for first, stop in merged([(max(1, e - HALO), e + HALO + 1) for e in edges]):
        k[0] = first - 1
        lib, mod = _model(count), _model(count)
        sides = [
            (m, build_optimizer(m, run.schedule, layers=list(m))) for m in (lib, mod)
        ]
        LayerWindows(sides[0][1], states, lambda: k[0])
        attach(sides[1][1], list(mod))
        for group in sides[1][1].param_groups:
            group["darknet_updates"] = first - 1
        for update in range(first, stop):
            k[0] = update
            gen = torch.Generator().manual_seed(update)
            x = torch.randn(8, 1, generator=gen)
            grads = [torch.randn(1, 1, generator=gen) for _ in range(count)]
            for model, opt in sides:
                with torch.no_grad():
                    for layer in model:
                        layer(x)
                for layer, g in zip(model, grads, strict=True):
                    layer[0].weight.grad = g.clone()
                opt.step()
            theirs = mod.state_dict()
            for name, want in lib.state_dict().items():
                got = theirs[name]
                if got.shape != want.shape or not bool((got == want).all()):
                    return (
                        f"attach_layers differs from cfgsched's layer windows after update "
                        f"{update}: layer {name.split('.')[0]}'s {name.split('.')[-1]} is "
                        f"{clip(got.flatten().tolist())}, not {clip(want.flatten().tolist())}"
                    )
    return ""


def _model(count: int) -> Any:
    """Layers ``0..count-1``: each a 1x1 linear weight (decayed) and a batch-norm."""
    import torch
    from torch import nn

    model = nn.ModuleList()
    for j in range(count):
        linear = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            linear.weight.fill_(1.0 - j / (2 * count))
        model.append(nn.Sequential(linear, nn.BatchNorm1d(1, affine=False)))
    return model
