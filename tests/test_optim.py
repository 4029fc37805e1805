"""build_optimizer against darknet's update rule, computed by hand from per-image gradients.

darknet (all forks, docs/design.md §2), for B = batch images per iteration:
``dw += -decay·B·w`` (conv/connected weights only); ``w += (lr/B)·dw``; ``dw *= momentum``,
where ``dw`` starts as the **summed** negative gradient of the B images.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import cfgsched
from cfgsched import NetSchedule
from cfgsched.adapters.optim import build_optimizer, decayed_parameter_names

CFG = """[net]
batch=4
subdivisions=2
width=6
height=6
channels=3
learning_rate=0.05
momentum=0.9
decay=0.01
[convolutional]
filters=2
[convolutional]
learning_rate=0.1
filters=2
[connected]
output=3
learning_rate=2
"""


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(2)
        self.conv2 = nn.Conv2d(2, 2, 3, bias=True)
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def tiny() -> Tiny:
    torch.manual_seed(0)
    m = Tiny().double()
    m.bn.eval()  # per-image gradients must not depend on the other images of the batch
    with torch.no_grad():
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.bias.uniform_(-0.1, 0.1)
    return m


def image_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x[None]), y[None], reduction="sum")


def summed_gradients(
    model: nn.Module, xs: torch.Tensor, ys: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Sum over images of each image's own gradient (one backward per image)."""
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for x, y in zip(xs, ys, strict=True):
        model.zero_grad()
        image_loss(model, x, y).backward()
        for n, p in model.named_parameters():
            assert p.grad is not None
            total[n] += p.grad
    model.zero_grad()
    return total


def schedule() -> NetSchedule:
    return cfgsched.parse(CFG)


IGNORE_MULT = pytest.mark.filterwarnings("ignore:the cfg sets per-layer")


@IGNORE_MULT
def test_decay_only_on_conv_and_linear_weights() -> None:
    m = tiny()
    assert decayed_parameter_names(m) == {"conv.weight", "conv2.weight", "fc.weight"}
    opt = build_optimizer(m, schedule())
    by_param = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    s = schedule()
    for name, p in m.named_parameters():
        want = s.decay if name in ("conv.weight", "conv2.weight", "fc.weight") else 0.0
        assert by_param[id(p)] == want, name
    assert isinstance(opt, torch.optim.SGD)
    for g in opt.param_groups:
        assert g["momentum"] == s.momentum and g["dampening"] == 0 and not g["nesterov"]
        assert g["lr"] == s.learning_rate


@IGNORE_MULT
def test_two_sgd_steps_equal_hand_computed_darknet_update() -> None:
    s = schedule()
    batch, subdivisions = 4, 2
    assert s.images_per_iteration == batch
    model = tiny()
    opt = build_optimizer(model, s)
    lr, mom, decay = s.learning_rate, s.momentum, s.decay
    decayed = {"conv.weight", "conv2.weight", "fc.weight"}
    gen = torch.Generator().manual_seed(1)
    w = {n: p.detach().clone() for n, p in model.named_parameters()}
    dw = {n: torch.zeros_like(p) for n, p in w.items()}  # darknet's update buffers
    for _ in range(2):
        xs = torch.randn(batch, 3, 6, 6, generator=gen, dtype=torch.float64)
        ys = torch.randint(0, 3, (batch,), generator=gen)
        # darknet, by hand: summed negative gradient, decay·B on weights, lr/B, momentum
        grads = summed_gradients(model, xs, ys)
        for n in w:
            dw[n] += -grads[n]
            if n in decayed:
                dw[n] += -decay * batch * w[n]
            w[n] = w[n] + (lr / batch) * dw[n]
            dw[n] *= mom
        # torch: loss averaged over the batch, accumulated over subdivisions, one step
        mini = batch // subdivisions
        for k in range(subdivisions):
            sl = slice(k * mini, (k + 1) * mini)
            loss = sum(
                image_loss(model, x, y) for x, y in zip(xs[sl], ys[sl], strict=True)
            )
            (loss / batch).backward()  # type: ignore[operator]
        opt.step()
        opt.zero_grad()
        for n, p in model.named_parameters():
            torch.testing.assert_close(p.detach(), w[n], rtol=1e-12, atol=1e-14, msg=n)
    assert any(not torch.equal(dw[n], torch.zeros_like(dw[n])) for n in decayed)


def test_layer_multipliers_as_group_lrs() -> None:
    s = schedule()
    assert [(x.index, x.multiplier) for x in s.layer_lrs] == [
        (1, pytest.approx(0.1)),
        (2, 2.0),
    ]
    m = tiny()
    index = {"conv": 0, "bn": 0, "conv2": 1, "fc": 2}
    opt = build_optimizer(m, s, layer_index=index)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    want = {
        "conv.weight": s.learning_rate,
        "bn.weight": s.learning_rate,
        "bn.bias": s.learning_rate,
        "conv2.weight": s.learning_rate * s.layer_lrs[0].multiplier,
        "conv2.bias": s.learning_rate * s.layer_lrs[0].multiplier,
        "fc.weight": s.learning_rate * 2.0,
        "fc.bias": s.learning_rate * 2.0,
    }
    assert {n: lr_of[id(p)] for n, p in m.named_parameters()} == want
    # the longest key wins: a full parameter name overrides its module's prefix
    opt = build_optimizer(m, s, layer_index={**index, "fc.bias": 0})
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(m.fc.bias)] == s.learning_rate
    assert lr_of[id(m.fc.weight)] == s.learning_rate * 2.0
    with pytest.raises(ValueError, match="nope"):
        build_optimizer(m, s, layer_index={"nope": 1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_optimizer(m, s)
    assert any("layer_index" in str(w.message) for w in caught)


def test_multipliers_reach_darknet_lr_scheduler() -> None:
    """Layer multipliers hold through DarknetLR's steps (burn-in and a step drop)."""
    s = cfgsched.parse(CFG.replace("decay=0.01\n", "decay=0.01\npolicy=steps\n"
                                   "steps=3\nscales=.1\nburn_in=2\n"))  # fmt: skip
    m = tiny()
    opt = build_optimizer(m, s, layer_index={"conv": 0, "bn": 0, "conv2": 1, "fc": 2})
    sched = cfgsched.DarknetLR(opt, s)
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    f32 = np.float32
    lr = f32(0.05)
    # darknet by hand: b=1 burn-in lr*(1/2)^4; b=2 lr; b>=3 lr*0.1 (float32 product)
    want = [
        float(f32(float(lr) * (float(f32(1) / f32(2)) ** 4))),
        float(lr),
        float(f32(lr * f32(0.1))),
        float(f32(lr * f32(0.1))),
    ]
    for b, expected in enumerate(want, start=1):
        assert group_of[id(m.conv.weight)]["lr"] == expected, b
        assert group_of[id(m.fc.weight)]["lr"] == pytest.approx(2 * expected, rel=1e-7)
        opt.step()
        sched.step()


def test_adam_selected_with_betas_and_eps() -> None:
    s = cfgsched.parse(
        "[net]\nwidth=6\nheight=6\nchannels=3\nadam=1\nB1=0.8\nB2=0.99\neps=0.0001\n"
        "learning_rate=0.001\ndecay=0.0005\n[convolutional]\nfilters=2\n"
    )
    m = tiny()
    opt = build_optimizer(m, s)
    assert isinstance(opt, torch.optim.Adam)
    g = opt.param_groups[0]
    assert g["betas"] == (s.b1, s.b2) and s.b1 == pytest.approx(0.8)
    assert g["eps"] == s.eps and s.eps == pytest.approx(1e-4)
    decays = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays[id(m.conv.weight)] == s.decay and decays[id(m.bn.weight)] == 0.0


@IGNORE_MULT
@pytest.mark.parametrize("summed_images", [None, 2])
def test_summed_loss_step_equals_darknet_step_on_the_mean(
    summed_images: int | None,
) -> None:
    """Two SGD steps on a loss summed over N images (lr / N, decay × N) equal darknet's
    update, computed by hand from per-image gradients."""
    s = schedule()
    n = s.images_per_iteration if summed_images is None else summed_images
    model = tiny()
    opt = build_optimizer(model, s, loss_reduction="sum", summed_images=summed_images)
    assert all(g["lr"] == s.learning_rate / n for g in opt.param_groups)
    lr, mom, decay = s.learning_rate, s.momentum, s.decay
    decayed = {"conv.weight", "conv2.weight", "fc.weight"}
    gen = torch.Generator().manual_seed(3)
    w = {k: p.detach().clone() for k, p in model.named_parameters()}
    dw = {k: torch.zeros_like(p) for k, p in w.items()}
    for _ in range(2):
        xs = torch.randn(n, 3, 6, 6, generator=gen, dtype=torch.float64)
        ys = torch.randint(0, 3, (n,), generator=gen)
        grads = summed_gradients(model, xs, ys)
        for k in w:  # darknet with batch = n: lr/n on the summed gradient
            dw[k] += -grads[k]
            if k in decayed:
                dw[k] += -decay * n * w[k]
            w[k] = w[k] + (lr / n) * dw[k]
            dw[k] *= mom
        loss = sum(image_loss(model, x, y) for x, y in zip(xs, ys, strict=True))
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        opt.zero_grad()
        for k, p in model.named_parameters():
            torch.testing.assert_close(p.detach(), w[k], rtol=1e-12, atol=1e-14, msg=k)


@IGNORE_MULT
def test_summed_loss_group_multiplier_reaches_darknet_lr() -> None:
    s = schedule()
    opt = build_optimizer(tiny(), s, loss_reduction="sum")
    sched = cfgsched.DarknetLR(opt, s)
    want = float(cfgsched.darknet_lr(s, 1)) / s.images_per_iteration
    for g in opt.param_groups:  # the 1/N multiplier, to float32 precision
        assert g["lr"] == pytest.approx(want, rel=6e-8)
    assert sched.get_last_lr()[0] == opt.param_groups[0]["lr"]


def test_loss_reduction_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="loss_reduction"):
        build_optimizer(tiny(), schedule(), loss_reduction="avg")
    with pytest.raises(ValueError, match="summed_images"):
        build_optimizer(tiny(), schedule(), summed_images=4)
    with pytest.raises(ValueError, match="summed_images"):
        build_optimizer(tiny(), schedule(), loss_reduction="sum", summed_images=0)


@IGNORE_MULT
def test_adam_with_summed_loss_keeps_lr_and_scales_decay() -> None:
    s = schedule().with_values(adam=True)
    opt = build_optimizer(tiny(), s, loss_reduction="sum")
    assert isinstance(opt, torch.optim.Adam)
    decays = {g["weight_decay"] for g in opt.param_groups}
    assert decays == {0.0, s.decay * s.images_per_iteration}
    assert all(g["lr"] == s.learning_rate for g in opt.param_groups)
