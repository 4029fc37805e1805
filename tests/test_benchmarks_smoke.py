"""The benchmark script keeps working (``--quick`` sizes; its figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.golden import ROOT


def test_bench_quick_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.run", "--quick", "--output", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads(out.read_text())
    names = [f["name"] for f in data["figures"]]
    assert names == [
        "cli_vs_torch",
        "cli_vs_python",
        "oracle",
        "scheduler_step",
        "layer_hook_step",
        "steps_scaling_step",
        "steps_scaling_oracle",
        "diff_exhaustive",
        "plot_time",
        "plot_memory",
        "mmengine_step",
        "ultralytics_step",
        "ultralytics_hooked_step",
    ]
    assert all(f["ratio"] > 0 for f in data["figures"])
    assert data["meta"]["quick"] is True
