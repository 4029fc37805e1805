"""DarknetLR's contract: construction, stepping, groups, batch mapping, resume, pickling.

Expected values are computed here by hand with numpy float32 (independently of
cfgsched's kernel), from darknet's formulas in docs/design.md §3.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import cfgsched
from cfgsched import DarknetLR, NetSchedule, Policy
from cfgsched.options import Options
from cfgsched.run import translate
from cfgsched.schedule import f32

F32 = np.float32

#: yolov4.cfg's schedule: steps 400000,450000 × .1, burn_in 1000, power 4, lr .0013,
#: batch 64 / subdivisions 8 -> mini-batch 8, 64 images per iteration.
YOLOV4 = NetSchedule(
    fork="alexeyab",
    policy=Policy.STEPS,
    policy_name="steps",
    learning_rate=f32(0.0013),
    burn_in=1000,
    power=4.0,
    max_batches=500_500,
    steps=(400_000, 450_000),
    scales=(f32(0.1), f32(0.1)),
    batch=64,
    subdivisions=8,
    mini_batch=8,
)


def yolov4_lr(b: int) -> float:
    """darknet's float32 LR at batch b for YOLOV4, computed by hand with numpy."""
    lr = F32(0.0013)
    if b < 1000:
        x = F32(F32(b) / F32(1000))
        return float(F32(float(lr) * float(x) ** 4.0))
    r = lr
    for s in (400_000, 450_000):
        if s > b:
            break
        r = F32(r * F32(0.1))
    return float(r)


def model_opt(*lrs: float) -> torch.optim.SGD:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def lrs(opt: torch.optim.Optimizer) -> list[float]:
    return [float(g["lr"]) for g in opt.param_groups]


def run(opt: torch.optim.Optimizer, sched: Any, n: int) -> list[float]:
    """The group-0 LR used by each of n optimizer steps (optimizer.step() then step())."""
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_contract_at_construction_and_after_i_steps() -> None:
    opt = model_opt(0.0013)
    sched = DarknetLR(opt, YOLOV4)
    assert lrs(opt) == [yolov4_lr(1)]  # the first optimizer.step() uses b = 1
    got = run(opt, sched, 1200)
    assert got == [yolov4_lr(i + 1) for i in range(1200)]
    assert sched.last_epoch == 1200
    assert sched.darknet_batch() == 1201
    assert got[999] == float(F32(0.0013))  # b = 1000: burn-in over


def test_lr_is_darknets_float32_bits_for_both_spellings_of_learning_rate() -> None:
    for initial in (0.0013, f32(0.0013)):
        opt = model_opt(initial)
        DarknetLR(opt, YOLOV4, last_epoch=450_000 - 2)  # next step is b = 450000
        got = opt.param_groups[0]["lr"]
        want = F32(F32(F32(0.0013) * F32(0.1)) * F32(0.1))
        assert struct.pack("<d", got) == struct.pack("<d", float(want))


def test_group_multipliers() -> None:
    opt = model_opt(0.0013, 0.1 * 0.0013, 0.5 * f32(0.0013))
    sched = DarknetLR(opt, YOLOV4, rescale=True)
    assert sched.multipliers[0] == 1.0
    assert sched.multipliers[1] == pytest.approx(0.1, rel=1e-15)
    assert sched.multipliers[2] == pytest.approx(0.5 * f32(0.0013) / 0.0013, rel=1e-15)
    for b in (1, 500, 1000, 399_999, 400_000, 450_000):
        opt2 = model_opt(0.0013, 0.1 * 0.0013)
        DarknetLR(opt2, YOLOV4, last_epoch=b - 2, rescale=True)
        base, tenth = lrs(opt2)
        assert base == yolov4_lr(b)
        assert tenth == pytest.approx(0.1 * yolov4_lr(b), rel=1e-14)


def test_images_per_step_mapping() -> None:
    """step i is at b = floor((i + 1)·T / images_per_iteration)."""
    for t in (16, 64, 96, 256):
        opt = model_opt(0.0013)
        sched = DarknetLR(opt, YOLOV4, images_per_step=t)
        got = run(opt, sched, 50)
        assert got == [yolov4_lr((i + 1) * t // 64) for i in range(50)]
    # torch batch 16 × accumulation 2 × world size 2 = one darknet iteration per step
    opt = model_opt(0.0013)
    sched = DarknetLR(opt, YOLOV4, images_per_step=16 * 2 * 2)
    assert run(opt, sched, 5) == [yolov4_lr(b) for b in range(1, 6)]


def test_ngpus_images_mode_scales_lr_where_the_fork_does() -> None:
    for fork, scaled in (("alexeyab", True), ("pjreddie", True), ("hankai", False)):
        s = YOLOV4.with_values(fork=fork)
        opt = model_opt(0.0013)
        DarknetLR(opt, s, ngpus=4, last_epoch=2000 - 1)  # step 2000 -> b = 8004
        base = F32(F32(0.0013) * F32(4)) if scaled else F32(0.0013)
        assert lrs(opt) == [float(base)]
        opt = model_opt(0.0013)
        sched = DarknetLR(opt, s, ngpus=4)
        assert sched.darknet_batch() == 4
        got = run(opt, sched, 3)
        x = [F32(F32(b) / F32(1000)) for b in (4, 8, 12)]
        if fork == "hankai":  # powf and a float multiply: compare loosely
            assert got == pytest.approx(
                [float(base) * float(v) ** 4 for v in x], rel=1e-6
            )
        else:
            assert got == [float(F32(float(base) * float(v) ** 4.0)) for v in x]


def test_trace_mode_is_non_monotonic_on_two_gpus() -> None:
    opt = model_opt(0.0013)
    sched = DarknetLR(opt, YOLOV4, ngpus=2, multigpu="trace")
    seen = []
    for _ in range(6):
        seen.append(sched.darknet_batch())
        opt.step()
        sched.step()
    assert seen == [1, 3, 9, 7, 13, 11]  # docs/design.md §3, alexeyab on 2 GPUs


def test_pickle_round_trip_continues_the_sequence() -> None:
    opt = model_opt(0.0013, 0.00013)
    sched = DarknetLR(opt, YOLOV4, rescale=True)
    run(opt, sched, 700)
    sched2 = pickle.loads(pickle.dumps(sched))
    assert isinstance(sched2, DarknetLR)
    assert run(sched2.optimizer, sched2, 600) == [
        yolov4_lr(b) for b in range(701, 1301)
    ]
    assert run(opt, sched, 600) == [yolov4_lr(b) for b in range(701, 1301)]


def test_state_dict_resume_mid_run_equals_uninterrupted(tmp_path: Path) -> None:
    full_opt = model_opt(0.0013)
    full = run(full_opt, DarknetLR(full_opt, YOLOV4), 2500)

    opt = model_opt(0.0013)
    sched = DarknetLR(opt, YOLOV4)
    first = run(opt, sched, 1100)
    path = tmp_path / "ckpt.pt"
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, path)

    ckpt = torch.load(path, weights_only=True)  # plain values only: no custom classes
    opt2 = model_opt(0.0013)
    sched2 = DarknetLR(opt2, YOLOV4)  # built before loading, as torch advises
    sched2.load_state_dict(ckpt["sched"])
    opt2.load_state_dict(ckpt["opt"])
    rest = run(opt2, sched2, 1400)
    assert first + rest == full
    assert full == [yolov4_lr(b) for b in range(1, 2501)]


def test_last_epoch_resume_equals_uninterrupted() -> None:
    opt = model_opt(0.0013)
    full = run(opt, DarknetLR(opt, YOLOV4), 1500)
    fresh = model_opt(0.0013)  # no initial_lr: DarknetLR takes the group's lr
    resumed = DarknetLR(fresh, YOLOV4, last_epoch=899)
    assert run(fresh, resumed, 600) == full[900:]


def test_deprecated_epoch_argument_jumps_in_closed_form() -> None:
    opt = model_opt(0.0013)
    sched = DarknetLR(opt, YOLOV4)
    with pytest.warns(UserWarning):
        sched.step(449_999)
    assert lrs(opt) == [yolov4_lr(450_000)]


def test_tensor_lr_group() -> None:
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=torch.tensor(0.0013, dtype=torch.float64))
    sched = DarknetLR(opt, YOLOV4)
    run(opt, sched, 10)
    assert float(opt.param_groups[0]["lr"]) == yolov4_lr(11)


def write_weights(path: Path, seen: int, major: int = 0, minor: int = 2) -> None:
    wide = major * 10 + minor >= 2
    head = struct.pack("<3i", major, minor, 0) + struct.pack(
        "<Q" if wide else "<I", seen
    )
    path.write_bytes(head + np.zeros(8, dtype=np.float32).tobytes())


def test_from_weights_starts_where_darknet_resumes(tmp_path: Path) -> None:
    weights = tmp_path / "yolov4_last.weights"
    write_weights(
        weights, seen=64 * 400_123 + 17
    )  # iteration 400123 (+ a partial batch)
    opt = model_opt(0.0013)
    sched = DarknetLR.from_weights(opt, YOLOV4, weights)
    assert sched.darknet_batch() == 400_124  # darknet's next update
    assert lrs(opt) == [yolov4_lr(400_124)]
    assert run(opt, sched, 3) == [yolov4_lr(b) for b in (400_124, 400_125, 400_126)]
    # changing batch moves the run in the schedule, as in darknet (32 images per iteration)
    small = YOLOV4.with_values(mini_batch=4)
    sched = DarknetLR.from_weights(model_opt(0.0013), small, weights)
    assert sched.darknet_batch() == (64 * 400_123 + 17) // 32 + 1
    # 4 GPUs in images mode: 4 darknet iterations per optimizer step
    sched = DarknetLR.from_weights(model_opt(0.0013), YOLOV4, weights, ngpus=4)
    assert sched.darknet_batch() == (400_123 // 4 + 1) * 4
    # an old (v0.1) header has a 32-bit seen
    old = tmp_path / "old.weights"
    write_weights(old, seen=64 * 5000, major=0, minor=1)
    assert (
        DarknetLR.from_weights(model_opt(0.0013), YOLOV4, old).darknet_batch() == 5001
    )


def test_from_weights_refuses_another_resume_point(tmp_path: Path) -> None:
    weights = tmp_path / "w.weights"
    write_weights(weights, seen=64 * 10)
    with pytest.raises(TypeError):
        DarknetLR.from_weights(model_opt(0.0013), YOLOV4, weights, last_epoch=3)
    with pytest.raises(TypeError):
        DarknetLR.from_weights(model_opt(0.0013), YOLOV4, weights, resume_iteration=3)
    with pytest.raises(ValueError, match="resume_iteration"):
        DarknetLR.from_weights(
            model_opt(0.0013), YOLOV4, weights, Options(resume_iteration=3)
        )
    sched = DarknetLR.from_weights(model_opt(0.0013), YOLOV4, weights, Options(ngpus=2))
    assert sched.options == Options(ngpus=2, resume_iteration=10)
    assert sched.translation.start == 5 and sched.darknet_batch() == 12


@pytest.mark.parametrize(
    "kw",
    [
        {"multigpu": "ddp"},
        {"ngpus": 0},
        {"images_per_step": 0},
        {"multigpu": "trace", "ngpus": 2, "images_per_step": 64},
        {"scratch": True},
    ],
)
def test_bad_options(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DarknetLR(model_opt(0.0013), YOLOV4, **kw)


def test_step_cost_does_not_grow_with_the_steps() -> None:
    """Stepping a 100,000-step schedule, early or late, walks its steps once (the table
    build at construction): each step is a binary search, not a scan."""
    from tests.test_steps_search import CountingSteps

    steps: Any = CountingSteps(range(1, 100_001))
    s = YOLOV4.with_values(burn_in=0)
    s = dataclasses.replace(s, steps=steps, scales=(f32(0.9999),) * 100_000)
    for last_epoch in (-1, 99_000):
        CountingSteps.walks = 0
        opt = model_opt(0.0013)
        sched = DarknetLR(opt, s, last_epoch=last_epoch)
        run(opt, sched, 500)
        assert CountingSteps.walks <= 1
        b = sched.darknet_batch()
        assert opt.param_groups[0]["lr"] == float(cfgsched.darknet_lr(s, b))


# ------------------------------------------------------------------ one Options value


def test_options_value_and_keywords_build_one_translation() -> None:
    opts = Options(ngpus=2, images_per_step=128)
    a = DarknetLR(model_opt(0.0013), YOLOV4, opts)
    b = DarknetLR(model_opt(0.0013), YOLOV4, ngpus=2, images_per_step=128)
    assert a.options == b.options == opts
    assert a.translation == b.translation == translate(YOLOV4, opts)
    # keywords override the value's fields
    c = DarknetLR(model_opt(0.0013), YOLOV4, opts, ngpus=4)
    assert c.options == Options(ngpus=4, images_per_step=128)
    with pytest.raises(TypeError, match="gpus"):
        DarknetLR(model_opt(0.0013), YOLOV4, gpus=2)
    with pytest.raises(TypeError, match="Options"):
        DarknetLR(model_opt(0.0013), YOLOV4, {"ngpus": 2})  # type: ignore[arg-type]


def test_resume_iteration_starts_after_those_images() -> None:
    opt = model_opt(0.0013)
    sched = DarknetLR(opt, YOLOV4, resume_iteration=400_123)
    assert sched.translation.start == 400_123
    assert sched.darknet_batch() == 400_124
    assert run(opt, sched, 2) == [yolov4_lr(400_124), yolov4_lr(400_125)]
    # 32 images per optimizer step: 64·400,123 images are 800,246 steps
    half = DarknetLR(
        model_opt(0.0013), YOLOV4, resume_iteration=400_123, images_per_step=32
    )
    assert half.last_epoch == 800_246 and half.darknet_batch() == 400_123
    # last_epoch, when given, wins
    given = DarknetLR(model_opt(0.0013), YOLOV4, resume_iteration=400_123, last_epoch=9)
    assert given.darknet_batch() == 11


@pytest.mark.parametrize(
    ("fork", "flushed"), [("alexeyab", True), ("pjreddie", True), ("hankai", False)]
)
def test_release_build_flush_default_per_fork(fork: str, flushed: bool) -> None:
    """exp, gamma=0.99, lr=1e-3: darknet's release build gives 0.0 from b = 8003 on
    (alexeyab, pjreddie); hankai's default CMake build keeps the subnormal values."""
    s = NetSchedule(fork=fork).with_values(
        policy=Policy.EXP, gamma=0.99, learning_rate=1e-3
    )
    opt = model_opt(s.learning_rate)
    sched = DarknetLR(opt, s, last_epoch=8000)  # next step is b = 8002
    assert run(opt, sched, 1)[0] >= 2.0**-126
    lr = run(opt, sched, 3)
    assert (lr == [0.0] * 3) == flushed
    assert all(0 < x < 2.0**-126 for x in lr) != flushed
    other = DarknetLR(model_opt(s.learning_rate), s, flush=not flushed, last_epoch=8001)
    assert (other.get_last_lr()[0] == 0.0) != flushed


def test_import_cfgsched_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, cfgsched; cfgsched.DarknetLR; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"  # DarknetLR needs torch: loaded on first access
    code = "import sys, cfgsched; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_state_dict_is_plain_data() -> None:
    opt = model_opt(0.0013)
    sched = DarknetLR(opt, YOLOV4, ngpus=2)
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["translation"]["options"]["ngpus"] == 2
    assert state["translation"]["schedule"]["steps"] == [400_000, 450_000]
    assert state["options"] == Options(ngpus=2).to_record()
    again = DarknetLR(model_opt(0.0013), YOLOV4)
    again.load_state_dict(state)
    assert again.options == Options(ngpus=2)
    assert again.translation == sched.translation


def test_from_weights_reads_the_header_as_the_fork_does(tmp_path: Path) -> None:
    """pjreddie reads a 32-bit seen when major >= 1000; alexeyab reads 64 bits."""
    weights = tmp_path / "odd.weights"
    weights.write_bytes(struct.pack("<3iII", 1000, 0, 0, 64 * 777, 1) + b"\0" * 8)
    pj = DarknetLR.from_weights(
        model_opt(0.0013), YOLOV4.with_values(fork="pjreddie"), weights
    )
    assert pj.darknet_batch() == 778
    ab = DarknetLR.from_weights(model_opt(0.0013), YOLOV4, weights)
    assert ab.darknet_batch() == 777 + (1 << 32) // 64 + 1


def test_trace_past_the_end_of_darknets_loop() -> None:
    """darknet's 2-GPU loop ends at max_batches; after that b grows by 2 per step."""
    s = YOLOV4.with_values(max_batches=1000, burn_in=100)
    opt = model_opt(0.0013)
    sched = DarknetLR(opt, s, ngpus=2, multigpu="trace")
    batches = []
    for _ in range(520):
        batches.append(sched.darknet_batch())
        opt.step()
        sched.step()
    n = len(cfgsched.multigpu_trace(s, 2).batches)
    assert n == 500  # the counter grows by 2 per loop iteration up to max_batches
    last = batches[n - 1]
    assert batches[n:] == [last + 2 * (k + 1) for k in range(520 - n)]


# ------------------------------------------------------------------ torch's public API


def test_every_step_goes_through_torchs_step_and_get_lr() -> None:
    """No private fast path: ``step()`` is torch's own, so a subclass's ``get_lr`` (the
    public hook) decides every step's LR, and ``get_last_lr()`` is torch's record."""

    class Halved(DarknetLR):
        def get_lr(self) -> list[float | torch.Tensor]:
            return [lr / 2 for lr in super().get_lr()]

    opt = model_opt(0.0013)
    sched = Halved(opt, YOLOV4, last_epoch=1998)  # b = 2000 onwards: plateau at lr
    used = run(opt, sched, 5)
    assert used == [yolov4_lr(2000 + i) / 2 for i in range(5)]
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]
    assert type(sched).step is torch.optim.lr_scheduler.LRScheduler.step


# ------------------------------------------------------------------ silent LR scaling


def test_an_optimizer_lr_other_than_the_cfgs_warns_once_naming_the_ratio() -> None:
    """SGD(lr=0.1) on yolov4 (0.0013) trains at 76.9x darknet's LR: said once."""
    import warnings

    with pytest.warns(UserWarning) as record:
        DarknetLR(model_opt(0.1, 0.1), YOLOV4)
    (w,) = [r for r in record if "learning_rate" in str(r.message)]
    msg = str(w.message)
    assert all(
        x in msg for x in ("lr 0.1 ", "learning_rate 0.0013", "76.9x", "rescale")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DarknetLR(model_opt(0.1), YOLOV4, rescale=True)  # the user opted in
        DarknetLR(model_opt(0.0013), YOLOV4)
        DarknetLR(model_opt(f32(0.0013)), YOLOV4, last_epoch=5)
        # build_optimizer's groups are scaled on purpose (lr / N for a summed loss)
        model = torch.nn.Linear(2, 2)
        opt = cfgsched.build_optimizer(model, YOLOV4, loss_reduction="sum")
        DarknetLR(opt, YOLOV4)
