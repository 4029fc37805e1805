"""``make bench``: speed and memory figures, each a ratio against a baseline of the same run.

Prints a table, writes ``tests/benchmarks/results.json`` and rewrites docs/performance.md's
Performance section. Every figure is the median of several runs. ``--quick`` shrinks every
size (used by the test suite to keep this script working; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "benchmarks" / "results.json"
README = ROOT / "docs" / "performance.md"
YOLOV4 = ROOT / "sample_cfgs" / "yolov4.cfg"
BEGIN, END = "<!-- section:performance -->", "<!-- /section:performance -->"


@dataclass
class Figure:
    """One benchmark: measured value, baseline, their ratio and the target it is held to."""

    name: str
    what: str
    value: str
    baseline: str
    ratio: float
    target: str
    ok: bool


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _run(cmd: list[str]) -> None:
    subprocess.run(
        cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def bench_cli_start(repeats: int) -> list[Figure]:
    """``cfgsched convert`` start-up vs ``import torch`` and vs an empty interpreter."""
    py = sys.executable
    cli = [py, "-m", "cfgsched", "convert", str(YOLOV4)]
    t_cli = median_time(lambda: _run(cli), repeats)
    t_torch = median_time(lambda: _run([py, "-c", "import torch"]), repeats)
    t_pass = median_time(lambda: _run([py, "-c", "pass"]), repeats)
    extra_ms = (t_cli - t_pass) * 1e3
    return [
        Figure(
            "cli_vs_torch",
            "`cfgsched convert yolov4.cfg` vs `python -c 'import torch'`",
            f"{t_cli * 1e3:.0f} ms",
            f"{t_torch * 1e3:.0f} ms",
            t_cli / t_torch,
            "≤ 0.10",
            t_cli / t_torch <= 0.10,
        ),
        Figure(
            "cli_vs_python",
            "`cfgsched convert yolov4.cfg` vs `python -c pass`",
            f"{t_cli * 1e3:.0f} ms (+{extra_ms:.0f} ms)",
            f"{t_pass * 1e3:.0f} ms",
            t_cli / t_pass,
            "≤ +100 ms",
            extra_ms <= 100.0,
        ),
    ]


def bench_oracle(repeats: int, n_vec: int, n_loop: int) -> list[Figure]:
    """Vectorized ``darknet_lr`` per value vs a scalar Python loop per value."""
    import numpy as np

    import cfgsched

    sched = cfgsched.load(str(YOLOV4))
    b = np.arange(1, n_vec + 1, dtype=np.int64)
    t_vec = median_time(lambda: cfgsched.darknet_lr(sched, b), repeats)
    loop_b = range(1, n_loop + 1)

    def loop() -> None:
        for x in loop_b:
            cfgsched.darknet_lr_scalar(sched, x)

    t_loop = median_time(loop, max(1, repeats // 2))
    ns_vec = t_vec / n_vec * 1e9
    ns_loop = t_loop / n_loop * 1e9
    speedup = ns_loop / ns_vec
    return [
        Figure(
            "oracle",
            f"`darknet_lr` over {n_vec:,} batches vs scalar loop over {n_loop:,}, per value",
            f"{ns_vec:.2f} ns/value",
            f"{ns_loop:.0f} ns/value",
            speedup,
            "≥ 100× and ≤ 10 ns/value",
            speedup >= 100 and ns_vec <= 10,
        )
    ]


def bench_step(repeats: int, n_steps: int) -> list[Figure]:
    """``DarknetLR.step()`` vs ``LambdaLR.step()`` with a closure, same optimizer."""
    import warnings

    import torch

    import cfgsched

    sched = cfgsched.load(str(YOLOV4))
    lr = sched.learning_rate

    def make_opt() -> torch.optim.Optimizer:
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)

    def run_ours() -> None:
        s = cfgsched.DarknetLR(make_opt(), sched)
        for _ in range(n_steps):
            s.step()

    def factor(i: int) -> float:
        return 1.0 if i + 1 >= 1000 else ((i + 1) / 1000) ** 4

    def run_lambda() -> None:
        s = torch.optim.lr_scheduler.LambdaLR(make_opt(), factor)
        for _ in range(n_steps):
            s.step()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # interleaved, so a change in the machine's load hits both alike
        pairs = [
            (median_time(run_ours, 1), median_time(run_lambda, 1))
            for _ in range(repeats)
        ]
    t_ours = statistics.median(p[0] for p in pairs)
    t_lambda = statistics.median(p[1] for p in pairs)
    return [
        Figure(
            "scheduler_step",
            f"`DarknetLR.step()` vs `LambdaLR.step()` (closure), {n_steps:,} steps",
            f"{t_ours / n_steps * 1e6:.2f} µs/step",
            f"{t_lambda / n_steps * 1e6:.2f} µs/step",
            t_ours / t_lambda,
            "≤ 1.25",
            t_ours / t_lambda <= 1.25,
        )
    ]


def bench_layer_hook(repeats: int, n_steps: int) -> list[Figure]:
    """A training step of the two-conv net with the layer-rule pre-hook (a stopbackward
    window over both layers) vs the same step without it."""
    import torch

    import cfgsched

    conv = "[convolutional]\nbatch_normalize=1\nfilters={}\nsize=3\n"
    text = "[net]\nwidth=16\nheight=16\nchannels=16\nbatch=8\n"
    text += conv.format(64) + conv.format(128) + "stopbackward=1000000\n"
    sched = cfgsched.parse(text)
    x = torch.randn(8, 16, 16, 16)

    def make(hooked: bool) -> Callable[[], None]:
        torch.manual_seed(0)
        net = torch.nn.ModuleList([
            torch.nn.Sequential(torch.nn.Conv2d(16, 64, 3), torch.nn.BatchNorm2d(64)),
            torch.nn.Sequential(torch.nn.Conv2d(64, 128, 3), torch.nn.BatchNorm2d(128)),
        ])  # fmt: skip
        opt = cfgsched.build_optimizer(net, sched, layers=net)
        if hooked:
            cfgsched.DarknetLR(opt, sched)

        def step() -> None:
            opt.zero_grad()
            net[1](net[0](x)).square().mean().backward()
            opt.step()

        return step

    ours, bare = make(True), make(False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t_ours = median_time(lambda: [ours() for _ in range(n_steps)], repeats)
        t_bare = median_time(lambda: [bare() for _ in range(n_steps)], repeats)
    finally:
        torch.set_num_threads(threads)
    return [
        Figure(
            "layer_hook_step",
            "training step with the layer-rule pre-hook vs without (two-conv net)",
            f"{t_ours / n_steps * 1e3:.3f} ms/step",
            f"{t_bare / n_steps * 1e3:.3f} ms/step",
            t_ours / t_bare,
            "≤ 1.1",
            t_ours / t_bare <= 1.1,
        )
    ]


def many_steps(n: int) -> Any:
    """A steps schedule with ``n`` steps (1 .. n, scale 0.99999 each; burn-in 1000)."""
    import cfgsched

    return cfgsched.NetSchedule(fork="alexeyab").with_values(
        policy=cfgsched.Policy.STEPS,
        learning_rate=0.001,
        burn_in=1000,
        max_batches=max(n, 400_000),
        steps=tuple(range(1, n + 1)),
        scales=(0.99999,) * n,
    )


def bench_steps_scaling(repeats: int, n_big: int, n_steps: int) -> list[Figure]:
    """Per-step cost of ``DarknetLR.step()`` and per-value cost of ``darknet_lr`` late in
    a run, on an ``n_big``-step schedule vs a 4-step one (O(log steps) per batch)."""
    import warnings

    import numpy as np
    import torch

    import cfgsched

    big, small = many_steps(n_big), many_steps(4)
    at = int(n_big * 0.9975)  # b ≈ 399,000 of 400,000

    def stepping(sched: Any) -> Callable[[], object]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.001)
        s = cfgsched.DarknetLR(opt, sched, last_epoch=at - 2)

        def run() -> None:
            for _ in range(n_steps):
                s.step()

        return run

    b = np.arange(at - n_steps, at + n_steps, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_big, run_small = stepping(big), stepping(small)
        t_big = median_time(run_big, repeats) / n_steps
        t_small = median_time(run_small, repeats) / n_steps
    v_big = median_time(lambda: cfgsched.darknet_lr(big, b), repeats) / b.size
    v_small = median_time(lambda: cfgsched.darknet_lr(small, b), repeats) / b.size
    # a binary search over n steps costs about log2(n) comparisons; 4 steps cost 2, and
    # numpy's vectorized comparisons make the few-steps baseline fast: O(log steps) allows
    # their ratio (linear would be n / 4 = 100,000x here)
    log_ratio = math.log2(n_big) / math.log2(4)
    return [
        Figure(
            "steps_scaling_step",
            f"`DarknetLR.step()` at b≈{at:,}: {n_big:,} steps vs 4 steps, per step",
            f"{t_big * 1e6:.2f} µs/step",
            f"{t_small * 1e6:.2f} µs/step",
            t_big / t_small,
            "≤ 3",
            t_big / t_small <= 3,
        ),
        Figure(
            "steps_scaling_oracle",
            f"`darknet_lr` near b≈{at:,}: {n_big:,} steps vs 4 steps, per value",
            f"{v_big * 1e9:.0f} ns/value",
            f"{v_small * 1e9:.0f} ns/value",
            v_big / v_small,
            f"≤ {log_ratio:.1f} (log2 {n_big:,} / log2 4: O(log steps))",
            v_big / v_small <= log_ratio,
        ),
    ]


def bench_diff(repeats: int, quick: bool) -> list[Figure]:
    """Exhaustive ``diff`` of yolov4 vs bare ``LambdaLR`` stepping for the same count."""
    import warnings

    import torch

    import cfgsched
    from cfgsched.tools import diff as diff_mod

    sched = cfgsched.load(str(YOLOV4))
    if quick:
        sched = sched.with_values(max_batches=2_000, burn_in=100, steps=(1_500, 1_800))
    steps = sched.max_batches

    def run_diff() -> None:
        report = diff_mod.diff_torch(sched, exhaustive=True)
        assert report.equal, "the class scheduler must be exact on yolov4"

    def run_lambda() -> None:
        opt = torch.optim.SGD(
            [torch.nn.Parameter(torch.zeros(1))], lr=sched.learning_rate
        )
        s = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0)
        for _ in range(steps):
            s.step()
            opt.param_groups[0]["lr"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_diff = median_time(run_diff, repeats)
        t_lambda = median_time(run_lambda, repeats)
    return [
        Figure(
            "diff_exhaustive",
            f"exhaustive `diff` of yolov4 ({steps:,} steps) vs bare `LambdaLR` stepping",
            f"{t_diff:.2f} s",
            f"{t_lambda:.2f} s",
            t_diff / t_lambda,
            "≤ 1.5",
            t_diff / t_lambda <= 1.5,
        )
    ]


_PLOT_CHILD = """
import io, sys, time, tracemalloc, resource
from cfgsched.tools import plot
n, traced = sys.argv[1], sys.argv[2] == "traced"
if traced:
    tracemalloc.start()
t0 = time.perf_counter()
opts = {"policy": ["poly"], "learning_rate": ["0.01"], "max_batches": [n]}
data = plot.plot_data(plot.build_variants([], options=opts))
plot.save(plot.draw(data), io.BytesIO(), "png")
dt = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1] if traced else 0
try:  # VmHWM: this process's own peak (ru_maxrss would include the parent's before exec)
    with open("/proc/self/status") as fh:
        rss = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM")) * 1024
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(dt, peak, rss)
"""


def _plot_once(n: int, traced: bool = False) -> tuple[float, int, int]:
    """(seconds, traced peak bytes or 0, max RSS bytes) of one plot in a fresh process."""
    res = subprocess.run(
        [sys.executable, "-c", _PLOT_CHILD, str(n), "traced" if traced else "plain"],
        check=True,
        capture_output=True,
        text=True,
    )
    dt, peak, rss = res.stdout.split()
    return float(dt), int(peak), int(rss)


def bench_plot(repeats: int, n_big: int, n_small: int) -> list[Figure]:
    """Plot of an ``n_big``-batch poly schedule vs an ``n_small`` one; peak memory."""
    big = [_plot_once(n_big) for _ in range(repeats)]
    small = [_plot_once(n_small) for _ in range(repeats)]
    t_big = statistics.median(x[0] for x in big)
    t_small = statistics.median(x[0] for x in small)
    traced_mb = _plot_once(n_big, traced=True)[1] / 2**20
    rss_mb = max(x[2] for x in big) / 2**20
    rss_small_mb = max(x[2] for x in small) / 2**20
    return [
        Figure(
            "plot_time",
            f"plot of {n_big:,} batches vs {n_small:,} batches",
            f"{t_big:.2f} s",
            f"{t_small:.2f} s",
            t_big / t_small,
            "≤ 2.0",
            t_big / t_small <= 2.0,
        ),
        Figure(
            "plot_memory",
            f"peak memory of the {n_big:,}-batch plot (process peak RSS; traced numpy/Python)",
            f"{rss_mb:.0f} MB RSS, {traced_mb:.0f} MB traced",
            f"{rss_small_mb:.0f} MB RSS at {n_small:,}",
            rss_mb / rss_small_mb,
            "≤ 300 MB",
            rss_mb <= 300,
        ),
    ]


def render_table(figures: list[Figure]) -> str:
    """Markdown table of ``figures``."""
    rows = [
        "| benchmark | measured | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        met = "yes" if f.ok else "**no**"
        rows.append(
            f"| {f.what} | {f.value} | {f.baseline} | {f.ratio:.3g} | {f.target} | {met} |"
        )
    return "\n".join(rows)


def update_readme(table: str, meta: dict[str, Any]) -> None:
    """Replace the Performance section of docs/performance.md with ``table``."""
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = (
        "\nWritten by `make bench` (`tests/benchmarks/run.py`); each figure is the median of "
        "several runs, as a ratio against a baseline measured in the same run, on "
        f"{meta['machine']} ({meta['cpus']} cores), Python {meta['python']}, "
        f"{meta['date']}.\n\n{table}\n"
    )
    README.write_text(head + BEGIN + body + END + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from tests.benchmarks.frameworks import bench_frameworks

    """Run every benchmark; print the table; write results.json and the README section."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test only)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)
    q = args.quick
    figures: list[Figure] = []
    figures += bench_cli_start(1 if q else 15)
    figures += bench_oracle(
        1 if q else 5, 20_000 if q else 10_000_000, 2_000 if q else 100_000
    )
    figures += bench_step(1 if q else 5, 2_000 if q else 50_000)
    figures += bench_layer_hook(1 if q else 7, 3 if q else 100)
    figures += bench_steps_scaling(
        1 if q else 5, 2_000 if q else 400_000, 500 if q else 5_000
    )
    figures += bench_diff(1 if q else 3, q)
    figures += bench_plot(1 if q else 3, 50_000 if q else 10_000_000, 10_000)
    figures += bench_frameworks(q)
    meta = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "quick": q,
    }
    table = render_table(figures)
    print(table)
    tmp_out = args.output.with_suffix(".json.tmp")
    tmp_out.write_text(
        json.dumps({"meta": meta, "figures": [asdict(f) for f in figures]}, indent=2)
        + "\n"
    )
    os.replace(tmp_out, args.output)
    if not (q or args.no_readme):
        update_readme(table, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
