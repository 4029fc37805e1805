"""Per-step cost of the framework formats, as ratios to the framework's own LR step.

:func:`bench_frameworks` returns rows shaped like ``tests/benchmarks/run.py``'s
(:class:`tests.benchmarks.run.Figure`):

- ``mmengine_step``: ``DarknetParamScheduler.step()`` (``--format mmengine`` of yolov4)
  vs MMEngine's ``MultiStepLR.step()``, both iteration based, on the same
  ``OptimWrapper`` with Ultralytics-like three parameter groups (target ≤ 1.5).
- ``ultralytics_step``: what ``attach()`` adds to one optimizer step (the torch step
  pre-hook and the batch-start callback of ``--format ultralytics`` of yolov4) vs
  Ultralytics' own per-batch LR update during its warmup (``np.interp`` of lr and
  momentum for each group, ``BaseTrainer._do_train`` of 8.4.190, reproduced here
  because Ultralytics needs its own venv) (target ≤ 1.5).
- ``ultralytics_hooked_step``: ``optimizer.step()`` of SGD on a small conv net with the
  pre-hook vs without it (the share of a real step; target ≤ 1.1).

Run alone: ``python -m tests.benchmarks.frameworks [--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
YOLOV4 = ROOT / "sample_cfgs" / "yolov4.cfg"


def _module(fmt: str) -> types.ModuleType:
    """yolov4's generated module of ``fmt``, loaded."""
    import cfgsched
    from cfgsched.codegen import generate

    text = generate(cfgsched.load(YOLOV4), fmt=fmt)
    module = types.ModuleType(f"bench_{fmt}")
    sys.modules[module.__name__] = module
    exec(compile(text, f"{module.__name__}.py", "exec"), module.__dict__)  # our code
    return module


def _per_call(fn: Callable[[], object], calls: int, repeats: int) -> list[float]:
    """Seconds per call of ``fn`` over ``calls`` calls, ``repeats`` times."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t0) / calls)
    return out


def _interleaved(
    ours: Callable[[], object], base: Callable[[], object], calls: int, repeats: int
) -> tuple[float, float]:
    """Median seconds per call of each, measured alternately (noise hits both)."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        a += _per_call(ours, calls, 1)
        b += _per_call(base, calls, 1)
    return statistics.median(a), statistics.median(b)


def _groups() -> list[dict[str, Any]]:
    """Three groups named as Ultralytics names them (weight, bn, bias)."""
    import torch

    return [
        {"params": [torch.nn.Parameter(torch.zeros(8))], "param_group": name}
        for name in ("weight", "bn", "bias")
    ]


def bench_mmengine(calls: int, repeats: int) -> Any:
    """``DarknetParamScheduler.step()`` vs ``MultiStepLR.step()`` (by_epoch=False)."""
    import torch
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS

    from tests.benchmarks.run import Figure

    m = _module("mmengine")

    def built(cfg: dict[str, Any]) -> Callable[[], object]:
        groups = _groups()
        ow = OptimWrapper(torch.optim.SGD(groups, lr=m.LEARNING_RATE, momentum=0.9))
        sched = PARAM_SCHEDULERS.build(cfg, default_args=dict(optimizer=ow))
        ow.step()  # one update first, as in training (no gradients: a no-op)
        return sched.step  # type: ignore[no-any-return]

    multi = dict(type="MultiStepLR", by_epoch=False, milestones=[400_000], gamma=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours, base = _interleaved(
            built(dict(m.param_scheduler[0])), built(multi), calls, repeats
        )
    return Figure(
        "mmengine_step",
        "`DarknetParamScheduler.step()` vs MMEngine `MultiStepLR.step()`, 3 groups",
        f"{ours * 1e6:.2f} µs/step",
        f"{base * 1e6:.2f} µs/step",
        ours / base,
        "≤ 1.5",
        ours / base <= 1.5,
    )


def _ultralytics_warmup(groups: list[dict[str, Any]]) -> Callable[[], object]:
    """Ultralytics 8.4.190's per-batch warmup update of lr and momentum (its code)."""
    import numpy as np

    nw, state = 1000, {"ni": 0}
    warmup_bias_lr, momentum, warmup_momentum = 0.1, 0.937, 0.8

    def update() -> None:
        ni = state["ni"] = (state["ni"] + 1) % nw
        xi = [0, nw]
        for x in groups:
            x["lr"] = float(
                np.interp(
                    ni,
                    xi,
                    [
                        warmup_bias_lr if x.get("param_group") == "bias" else 0.0,
                        x["initial_lr"] * 1.0,
                    ],
                )
            )
            if "momentum" in x:
                x["momentum"] = float(np.interp(ni, xi, [warmup_momentum, momentum]))

    return update


def bench_ultralytics(calls: int, repeats: int) -> list[Any]:
    """attach()'s work per optimizer step vs Ultralytics' own warmup update; the
    hooked vs bare optimizer.step() of a small conv net."""
    import torch

    from tests.benchmarks.run import Figure

    m = _module("ultralytics")
    steps = m.DarknetSteps()
    steps.accumulate, steps.batches = 1, 1000
    trainer = types.SimpleNamespace(epoch=0, accumulate=1)
    groups = _groups()
    for g in groups:
        g.update(lr=m.LEARNING_RATE, initial_lr=m.LEARNING_RATE, momentum=0.9)
        g[m.COUNTER] = 0
    opt = types.SimpleNamespace(param_groups=groups)

    def ours() -> None:
        steps.on_train_batch_start(trainer)
        m.DarknetSteps.before_step(opt, (), {})
        if steps.batch >= 999:
            steps.batch = -1

    a, b = _interleaved(ours, _ultralytics_warmup(groups), calls, repeats)
    rows = [
        Figure(
            "ultralytics_step",
            "`attach()` per optimizer step (pre-hook + batch callback) vs Ultralytics' "
            "warmup LR update (its code, reproduced), 3 groups",
            f"{a * 1e6:.2f} µs/step",
            f"{b * 1e6:.2f} µs/step",
            a / b,
            "≤ 1.5",
            a / b <= 1.5,
        )
    ]
    hooked, bare = _small_net_steps(m, torch, max(calls // 20, 10), repeats)
    rows.append(
        Figure(
            "ultralytics_hooked_step",
            "SGD `optimizer.step()` of a two-conv net (83k parameters) with attach()'s "
            "pre-hook vs without",
            f"{hooked * 1e6:.1f} µs/step",
            f"{bare * 1e6:.1f} µs/step",
            hooked / bare,
            "≤ 1.1",
            hooked / bare <= 1.1,
        )
    )
    return rows


def _small_net_steps(
    m: types.ModuleType, torch: Any, calls: int, repeats: int
) -> tuple[float, float]:
    """Seconds per ``optimizer.step()`` with and without the pre-hook."""

    def make() -> Any:
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(16, 64, 3), torch.nn.BatchNorm2d(64),
            torch.nn.Conv2d(64, 128, 3), torch.nn.BatchNorm2d(128),
        )  # fmt: skip
        decay = [p for n, p in net.named_parameters() if n.endswith("0.weight")]
        decay += [p for n, p in net.named_parameters() if n.endswith("2.weight")]
        bias = [p for n, p in net.named_parameters() if n.endswith("bias")]
        bn = [p for p in net.parameters() if all(p is not q for q in decay + bias)]
        groups = [
            {"params": ps, "param_group": name, m.COUNTER: 0}
            for name, ps in (("weight", decay), ("bn", bn), ("bias", bias))
        ]
        opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9, nesterov=False)
        for p in net.parameters():
            p.grad = torch.full_like(p, 1e-6)
        return opt

    hooked, bare = make(), make()
    hooked.register_step_pre_hook(m.DarknetSteps.before_step)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core: less noise from other processes
    try:
        with torch.no_grad():
            return _interleaved(hooked.step, bare.step, calls, repeats)
    finally:
        torch.set_num_threads(threads)


def bench_frameworks(quick: bool = False) -> list[Any]:
    """Every figure of this file (``quick``: tiny sizes, for the smoke test)."""
    calls, repeats = (200, 1) if quick else (20_000, 15)
    return [bench_mmengine(calls, repeats), *bench_ultralytics(calls, repeats)]


def main(argv: list[str] | None = None) -> int:
    from tests.benchmarks.run import render_table

    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    print(render_table(bench_frameworks(quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
