"""darknet's per-layer rules: windows per fork and build, and every parameter's trajectory
against darknet's update written out here from the forks' C (update_network*,
backward_network*, parse_network_cfg*), never from cfgsched's code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import cfgsched
from cfgsched.layers import layer_rules
from cfgsched.reader.parser import Section, read_sections

CFG = Path(__file__).resolve().parents[1] / "sample_cfgs" / "layer-rules.cfg"
UPDATES = 40


def _cfg(text: str, n: int) -> str:
    return text.replace("stopbackward=30", f"stopbackward={n}")


def _yolov4_custom_like(n: int) -> str:
    """Facts of AlexeyAB cfg/yolov4-custom.cfg (read through a copy found with the search
    tool): ``stopbackward=800`` at layer 104, the last backbone layer; the other layers
    matter only by number, so 105 plain sections stand in for them."""
    body = "".join(
        "[convolutional]\nfilters=2\nsize=1\n"
        + (f"stopbackward={n}\n" if i == 104 else "")
        for i in range(106)
    )
    return "[net]\nwidth=32\nheight=32\nchannels=3\n" + body


# docs/design.md §3, layer rules: (fork, build, N) ->
# (k < L: gradient_from, updated), (L: gradient_from, updated)
TABLE = {
    ("alexeyab", "gpu", 1): ((None, False), (None, True)),
    ("alexeyab", "gpu", 800): ((801, True), (801, True)),
    ("alexeyab", "cpu", 1): ((None, False), (None, True)),
    ("alexeyab", "cpu", 800): ((None, True), (None, True)),
    ("hankai", "gpu", 1): ((None, False), (None, True)),
    ("hankai", "gpu", 800): ((None, False), (801, True)),
    ("hankai", "cpu", 1): ((None, False), (None, True)),
    ("hankai", "cpu", 800): ((None, False), (None, True)),
    ("pjreddie", "gpu", 1): ((None, True), (None, True)),
    ("pjreddie", "gpu", 800): ((None, True), (None, True)),
    ("pjreddie", "cpu", 1): ((None, True), (None, True)),
    ("pjreddie", "cpu", 800): ((None, True), (None, True)),
}


@pytest.mark.parametrize(("fork", "build", "n"), sorted(TABLE))
def test_yolov4_custom_windows(fork: str, build: str, n: int) -> None:
    s = cfgsched.parse(_yolov4_custom_like(n), fork=fork)
    by_layer = {
        j: r for r in layer_rules(s, build=build) for j in range(r.first, r.last + 1)
    }
    below, at = TABLE[(fork, build, n)]
    assert set(by_layer) == set(range(105))
    assert all(
        (by_layer[j].gradient_from, by_layer[j].updated) == below for j in range(104)
    )
    assert (by_layer[104].gradient_from, by_layer[104].updated) == at
    assert by_layer[0].inference_bn == (build == "gpu" and not below[1])


def test_resume_and_gpus_move_the_window() -> None:
    s = cfgsched.parse(_yolov4_custom_like(800))
    assert layer_rules(s, resume_iteration=500)[0].gradient_from == 301
    assert layer_rules(s, resume_iteration=900) == ()
    assert layer_rules(s, resume_iteration=900, clear=True)[0].gradient_from == 801
    assert layer_rules(s, ngpus=4)[0].gradient_from == 201  # GPU 0: 4 per update
    with pytest.raises(ValueError, match="build"):
        layer_rules(s, build="tpu")


# --- the trajectory proof -------------------------------------------------------------


def _model(sections: list[Section], channels: int) -> nn.ModuleList:
    """A module list built from the cfg's sections (a tiny cfg-driven port)."""
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    c = channels
    for sec in sections[1:]:
        get = {e.key: e.value for e in sec.entries}
        if sec.name == "convolutional":
            f, k, bn = int(get["filters"]), int(get["size"]), get.get("batch_normalize")
            conv = nn.Conv2d(c, f, k, padding=k // 2, bias=not bn)
            mods.append(nn.Sequential(conv, nn.BatchNorm2d(f)) if bn else conv)
            c = f
        elif sec.name == "avgpool":
            mods.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        elif sec.name == "connected":
            mods.append(nn.Linear(c, int(get["output"])))
        else:
            mods.append(nn.Identity())
    return nn.ModuleList(mods)


def _forward(model: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for m in model:
        x = m(x)
    return x


def _data(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(k)
    return torch.randn(4, 2, 4, 4, generator=g), torch.randn(4, 2, generator=g)


def _darknet_flags(
    s: cfgsched.NetSchedule, fork: str, gpu: bool, n_layers: int
) -> tuple[dict[int, dict[str, float]], set[int]]:
    """Per-layer keys and darknet's train=0 layers (parser.c last_stop_backward: the
    last ``== 1`` in alexeyab, the last nonzero in hankai darknet_cfg.cpp; pjreddie none)."""
    keys = {x.index: {**x.__dict__} for x in s.layers}
    stops = [
        j
        for j, k in keys.items()
        if k["stopbackward"] and (fork == "hankai" or k["stopbackward"] == 1)
    ]
    train0 = set(range(max(stops))) if stops and fork != "pjreddie" else set()
    return keys, train0


def _darknet_run(
    s: cfgsched.NetSchedule,
    fork: str,
    build: str,
    text: str = "",
    updates: int = UPDATES,
) -> list[list[torch.Tensor]]:
    """darknet's training written out from the C: backward top-down with its breaks, then
    ``update_network*`` layer by layer on the summed gradient (dw), weights per update."""
    gpu = build == "gpu"
    model = _model(read_sections(text or CFG.read_text(), fork=fork), 2)
    keys, train0 = _darknet_flags(s, fork, gpu, len(model))
    batch = s.images_per_iteration
    dw = {p: torch.zeros_like(p) for p in model.parameters()}
    out = []
    for k in range(1, updates + 1):
        cur = k - 1  # cur_iteration seen by update k's backward
        for j in train0:
            if gpu:
                model[j].eval()
        x, y = _data(k)
        loss = nn.functional.mse_loss(_forward(model, x), y)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        g = dict(zip(model.parameters(), grads, strict=True))
        model.train()
        backward = set()
        for i in reversed(range(len(model))):  # backward_network(_gpu)
            sb = keys.get(i, {}).get("stopbackward", 0)
            if sb and (not gpu or fork == "pjreddie" or sb == 1 or sb > cur):
                break
            if i not in train0:  # train=0 layers are onlyforward
                backward.add(i)
        for i, m in enumerate(model):
            for p in m.parameters():
                if i in backward:
                    dw[p] += -batch * g[p]  # summed negative gradient
        rate = (
            s.learning_rate * (k / s.burn_in) ** s.power
            if k < s.burn_in
            else s.learning_rate
        )
        for i, m in enumerate(model):  # update_network(_gpu)
            kk = keys.get(i, {})
            if i in train0:
                continue
            if gpu and fork != "pjreddie" and not kk.get("dont_update", 0) < k:
                continue
            lr = rate * kk.get("learning_rate", 1.0)
            with torch.no_grad():
                for name, p in m.named_parameters():
                    if name.endswith("weight") and p.dim() > 1:
                        dw[p] += -s.decay * batch * p
                    p += lr / batch * dw[p]
                    dw[p] *= s.momentum
        out.append([p.detach().clone() for p in model.parameters()])
    return out


def _torch_run(
    s: cfgsched.NetSchedule,
    fork: str,
    build: str,
    text: str = "",
    updates: int = UPDATES,
) -> list[list[torch.Tensor]]:
    """The same training through cfgsched's optimizer and scheduler."""
    model = _model(read_sections(text or CFG.read_text(), fork=fork), 2)
    opt = cfgsched.build_optimizer(model, s, layers=model)
    sched = cfgsched.DarknetLR(opt, s, build=build)
    out = []
    for k in range(1, updates + 1):
        x, y = _data(k)
        opt.zero_grad()
        nn.functional.mse_loss(_forward(model, x), y).backward()
        opt.step()
        sched.step()
        out.append([p.detach().clone() for p in model.parameters()])
    return out


@pytest.mark.parametrize("stop", [30, 1])
@pytest.mark.parametrize("build", ["gpu", "cpu"])
@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie", "hankai"])
def test_trajectory_matches_darknet(fork: str, build: str, stop: int) -> None:
    text = _cfg(CFG.read_text(), stop)
    s = cfgsched.parse(text, fork=fork, source=str(CFG))
    ours, theirs = _torch_run(s, fork, build), _darknet_run(s, fork, build)
    moved = 0
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        for i, (p, q) in enumerate(zip(a, b, strict=True)):
            assert torch.allclose(p, q, rtol=1e-5, atol=1e-6), (
                k,
                i,
                (p - q).abs().max(),
            )
        moved += 1
    assert moved == UPDATES


def test_scheduler_with_layer_rules_pickles_and_keeps_its_windows() -> None:
    import pickle

    s = cfgsched.parse(
        CFG.read_text(), source=str(CFG)
    )  # alexeyab: layer 0 waits to 31
    model = _model(read_sections(CFG.read_text()), 2)
    opt = cfgsched.build_optimizer(model, s, layers=model)
    sched = pickle.loads(pickle.dumps(cfgsched.DarknetLR(opt, s, build="gpu")))
    frozen = [model[0][0].weight, model[1].weight]  # layers 0 and 1 wait for update 31
    ids = {id(p) for p in frozen}
    k = next(i for i, g in enumerate(opt.param_groups) if id(g["params"][0]) in ids)
    params = sched.optimizer.param_groups[k]["params"]
    for g in sched.optimizer.param_groups:
        for p in g["params"]:
            p.grad = torch.ones_like(p)
    sched.optimizer.step()
    assert all(p.grad is not None and not p.grad.any() for p in params)


# --- real cfgs with stopbackward (facts only; upstream files are not copied) -----------

#: name -> (upstream path, where read, layer count, stopbackward layer, value).
#: Read with the search tool in pjreddie/darknet's stored history, which carries AlexeyAB's
#: commits; layers counted from 0 after [net], checked against the files' own route targets.
REAL = {
    # The last backbone layer (after "route -1,-16", before the neck): yolov4.cfg's 162
    # layers plus this one key. The older stored version 65506eb0 has no stopbackward.
    "yolov4-custom": (
        "cfg/yolov4-custom.cfg",
        "pjreddie/darknet@6cbb75d1",
        162,
        104,
        800,
    ),
    # The neck's last layer, "# 231" in the file; three heads of 4 layers follow.
    "yolov4-p5-frozen": (
        "cfg/yolov4-p5-frozen.cfg",
        "pjreddie/darknet@85c6278e",
        244,
        231,
        1,
    ),
}
#: Read and found without stopbackward: yolov3-tiny_occlusion_track, cd53paspp-gamma,
#: cspx-p7-mish_hp, yolov3-finetune (pjreddie/darknet); yolov4-tiny_contrastive and
#: yolov4-tiny-custom (fork copies). Not in the index: yolov4-csp-x-swish-frozen,
#: yolov4-p6-frozen, yolov4-csp-frozen; yolov4-sam-mish-csp-reorg-bfm is stored as an LFS
#: pointer only.


def _real_like(n_layers: int, at: int, value: int) -> str:
    """A cfg of our [net] with ``n_layers`` layers (1x1 convs, then avgpool and connected
    to the output) and ``stopbackward=value`` on layer ``at``."""
    net = CFG.read_text().split("[convolutional]", 1)[0]
    body = "".join(
        "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
        + (f"stopbackward={value}\n" if i == at else "")
        for i in range(n_layers - 2)
    )
    return net + body + "[avgpool]\n[connected]\noutput=2\nactivation=linear\n"


def _table(fork: str, build: str, n: int, at: int, n_layers: int) -> dict[int, tuple]:
    """docs/design.md §3 (layer rules), written out: layer -> (gradient_from, updated)
    for the layers that do not train normally."""
    gpu = build == "gpu"
    if fork == "pjreddie" or not gpu or n == 1:
        below = (None, fork == "pjreddie" or (fork == "alexeyab" and n > 1))
        return {j: below for j in range(at)} | {at: (None, True)}
    if fork == "alexeyab":
        return {j: (n + 1, True) for j in range(at + 1)}
    return {j: (None, False) for j in range(at)} | {at: (n + 1, True)}


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("build", ["gpu", "cpu"])
@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie", "hankai"])
def test_real_cfg_windows(fork: str, build: str, name: str) -> None:
    _, _, n_layers, at, value = REAL[name]
    s = cfgsched.parse(_real_like(n_layers, at, value), fork=fork)
    rules = _run_layers(s, build)
    got = {
        j: (r.gradient_from, r.updated)
        for r in rules
        for j in range(r.first, r.last + 1)
    }
    assert got == _table(fork, build, value, at, n_layers)


def _run_layers(s: cfgsched.NetSchedule, build: str) -> tuple:
    """What explain --json reports: the translated run's layer rules."""
    from cfgsched.options import Options
    from cfgsched.run import translate

    return translate(s, Options(build=build)).layers


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("build", ["gpu", "cpu"])
@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie", "hankai"])
def test_real_cfg_trajectory(fork: str, build: str, name: str) -> None:
    _, _, n_layers, at, value = REAL[name]
    value = min(value, 3)  # 800 scaled down: updates 1-3 in the window, 4-5 after it
    text = _real_like(n_layers, at, value)
    s = cfgsched.parse(text, fork=fork)
    ours = _torch_run(s, fork, build, text, 5)
    theirs = _darknet_run(s, fork, build, text, 5)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        for i, (p, q) in enumerate(zip(a, b, strict=True)):
            assert torch.allclose(p, q, rtol=1e-5, atol=1e-6), (k, i)
