"""``cfgsched diff``: real torch schedulers against the C formula, and schedule vs schedule.

Expected values come from the scalar kernel (``cfgsched.kernel.formulas.rate``), never from the code
under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cfgsched.cli import main
from cfgsched.kernel import formulas as _kernel
from cfgsched.reader.parser import load, parse
from cfgsched.tools.diff import Tolerance, boundaries, diff_schedules, diff_torch
from tests.golden import DARKNET_CFGS, ROOT, needs_darknet_cfgs

CFGSCHED = str(ROOT / ".venv" / "bin" / "cfgsched")
SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = DARKNET_CFGS / "yolov4.cfg"


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["diff", *args], input=input)


def rate(path: Path | str, b: int, fork: str = "alexeyab") -> float:
    """darknet's LR at batch b from the scalar kernel (the independent reference)."""
    return _kernel.rate(load(str(path), fork=fork).kernel_params(), b)


def write_module(tmp_path: Path, body: str) -> str:
    path = tmp_path / "user_sched.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


OFF_BY_ONE = """
    import torch
    from cfgsched.kernel import formulas as _kernel
    from cfgsched.reader.parser import load

    P = load({cfg!r}).kernel_params()

    def build_scheduler(optimizer, last_epoch=-1):
        # the classic mistake: step i gets lr(b = i) instead of lr(b = i + 1)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda i: _kernel.rate(P, i) / P.lr, last_epoch=last_epoch
        )
"""

SCALED = """
    from cfgsched import DarknetLR
    from cfgsched.reader.parser import load

    S = load({cfg!r})

    class Scaled(DarknetLR):
        def get_lr(self):
            return [x * (1 + 1e-7) for x in super().get_lr()]

    def build_scheduler(optimizer, last_epoch=-1):
        return Scaled(optimizer, S, last_epoch=last_epoch)
"""


# ----------------------------------------------------------------------------- ours is exact


@needs_darknet_cfgs
def test_yolov4_exhaustive_equal_json() -> None:
    res = run(str(YOLOV4), "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["schema"] == "cfgsched-diff/1"
    assert rep["equal"] is True and rep["exit_code"] == 0
    assert rep["coverage"] == "exhaustive"
    assert rep["steps_compared"] == 500_500
    assert rep["steps"] == [0, 500_499] and rep["batches"] == [1, 500_500]
    assert rep["max_abs_error"] == 0 and rep["max_ulp_error"] == 0
    assert rep["first_difference"] is None and rep["differing_ranges"] == []
    rows = {r["batch"]: r for r in rep["boundaries"]}
    # every boundary ±1: burn-in end, both steps, max_batches (+1 is after training)
    assert set(rows) == {
        b + d for b in (1000, 400_000, 450_000, 500_500) for d in (-1, 0, 1)
    }
    for b, r in rows.items():
        assert r["step"] == b - 1
        assert r["expected"] == rate(YOLOV4, b) == r["got"]
        assert r["in_training"] == (b <= 500_500)
    assert rows[400_000]["expected"] == _kernel.f32(
        _kernel.f32(0.0013) * _kernel.f32(0.1)
    )


def test_sample_equal_as_subprocess() -> None:
    res = subprocess.run(
        [CFGSCHED, "diff", str(SAMPLES / "sgdr.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "result: EQUAL within 0ulp" in res.stdout
    assert "exhaustively" in res.stdout
    assert "Traceback" not in res.stderr


@needs_darknet_cfgs
@pytest.mark.parametrize(
    "name",
    ["t1.test.cfg", "tiny-yolo-voc.cfg", "resnet152_trident.cfg", "yolo-voc.2.0.cfg"],
)
def test_real_cfgs_equal(name: str) -> None:
    rep = diff_torch(load(str(DARKNET_CFGS / name)))
    assert rep.equal, rep.format_text()
    assert rep.max_ulp_error == 0


@needs_darknet_cfgs
def test_large_run_is_sampled_by_default_and_says_so() -> None:
    sched = load(str(DARKNET_CFGS / "yolov4-tiny.cfg"))  # max_batches 2,000,200
    rep = diff_torch(sched)
    assert rep.coverage == "sampled" and rep.equal
    assert "2,000,200 steps is more than 2,000,000" in rep.coverage_note
    assert 10_000 < rep.steps_compared < 300_000
    assert {r.batch for r in rep.rows} >= {1_600_000, 1_800_000, 2_000_200}
    for r in rep.rows:
        assert r.expected == _kernel.rate(sched.kernel_params(), r.batch) == r.got


def test_multi_gpu_images_mapping() -> None:
    sched = load(str(SAMPLES / "yolov4-4gpu.cfg"))
    rep = diff_torch(sched, ngpus=4)
    assert rep.equal, rep.format_text()
    assert rep.steps_compared == 500_500 // 4
    lr4 = _kernel.f32(sched.learning_rate * 4)  # alexeyab multiplies by the GPU count
    p = sched.kernel_params()._replace(lr=lr4)
    for r in rep.rows:
        assert r.batch == (r.step + 1) * 4
        assert r.expected == _kernel.rate(p, r.batch)


def test_no_call_order_warning_from_torch() -> None:
    sched = parse("[net]\nlearning_rate=0.1\npolicy=exp\ngamma=0.99\nmax_batches=50\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = diff_torch(sched)
    assert rep.equal


# ----------------------------------------------------------------------------- wrong ones


@needs_darknet_cfgs
def test_off_by_one_module_is_different(tmp_path: Path) -> None:
    mod = write_module(tmp_path, OFF_BY_ONE.format(cfg=str(YOLOV4)))
    res = run(str(YOLOV4), "--module", mod, "--json")
    assert res.exit_code == 1, res.output
    rep = json.loads(res.stdout)
    assert rep["equal"] is False and rep["got"]["kind"] == "module"
    first = rep["first_difference"]
    assert (first["step"], first["batch"]) == (0, 1)
    assert (
        first["expected"] == rate(YOLOV4, 1) and first["got"] == rate(YOLOV4, 0) == 0.0
    )
    # lr(b=i) differs from lr(b=i+1) through burn-in and at each step batch, nowhere else
    ranges = [(r["first_batch"], r["last_batch"]) for r in rep["differing_ranges"]]
    assert ranges == [(1, 1000), (400_000, 400_000), (450_000, 450_000)]
    assert rep["steps_compared"] == 500_500


@needs_darknet_cfgs
def test_off_by_one_found_by_sampled_mode(tmp_path: Path) -> None:
    mod = write_module(tmp_path, OFF_BY_ONE.format(cfg=str(YOLOV4)))
    res = run(str(YOLOV4), "--module", mod, "--sampled")
    assert res.exit_code == 1, res.output
    assert "sampled steps" in res.output
    assert "b = 400000  (1 step)" in res.output


def test_tolerance_ulp_and_relative(tmp_path: Path) -> None:
    cfg = SAMPLES / "sgdr.cfg"
    mod = write_module(tmp_path, SCALED.format(cfg=str(cfg)))
    assert run(str(cfg), "--module", mod).exit_code == 1
    assert run(str(cfg), "--module", mod, "--tolerance", "2ulp").exit_code == 0
    assert run(str(cfg), "--module", mod, "--tolerance", "1e-6").exit_code == 0
    assert run(str(cfg), "--module", mod, "--tolerance", "1e-8").exit_code == 1
    rep = json.loads(run(str(cfg), "--module", mod, "--json").stdout)
    assert 0.8 < rep["max_ulp_error"] <= 2 and rep["max_rel_error"] == pytest.approx(
        1e-7
    )


def test_tolerance_parsing() -> None:
    assert Tolerance.parse("0ulp") == Tolerance("ulp", 0.0, "0ulp")
    assert Tolerance.parse("3 ulps").value == 3.0
    assert Tolerance.parse("1e-6") == Tolerance("rel", 1e-6, "1e-6")
    for bad in ("abc", "-1", "nan", "1xulp"):
        with pytest.raises(ValueError):
            Tolerance.parse(bad)


# ----------------------------------------------------------------------------- native


def test_native_not_exact_exits_1_with_reason() -> None:
    res = run(str(SAMPLES / "yolov4.cfg"), "--style", "native")
    assert res.exit_code == 1
    assert "no exact native torch scheduler" in res.output
    assert "first differs at darknet batch 1" in res.output
    assert "Traceback" not in res.output


def test_native_exact_case_is_stepped_and_equal(tmp_path: Path) -> None:
    cfg = tmp_path / "steps.cfg"
    cfg.write_text(
        "[net]\nlearning_rate=0.01\npolicy=steps\nsteps=300,600\nscales=.1,.5\nmax_batches=1000\n"
    )
    res = run(str(cfg), "--style", "native", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["got"]["kind"] == "native" and rep["steps_compared"] == 1000
    rows = {r["batch"]: r for r in rep["boundaries"]}
    want = _kernel.f32(
        _kernel.f32(_kernel.f32(0.01) * _kernel.f32(0.1)) * _kernel.f32(0.5)
    )
    assert rows[600]["expected"] == rate(cfg, 600) == want
    # torch's running product in double is within half a float32 ulp: 0 ulp once rounded
    assert _kernel.f32(rows[600]["got"]) == want and rows[600]["ulp_error"] == 0


# ----------------------------------------------------------------------------- two schedules


def test_two_cfgs_compare_batch_by_batch() -> None:
    a, b = SAMPLES / "yolov4.cfg", SAMPLES / "yolov4-4gpu.cfg"
    res = run(str(a), str(b), "--json")
    assert res.exit_code == 1
    rep = json.loads(res.stdout)
    assert rep["expected"]["label"] == "yolov4.cfg (alexeyab)"
    assert rep["got"]["label"] == "yolov4-4gpu.cfg (alexeyab)"
    assert rep["first_difference"]["batch"] == 1
    assert rep["first_difference"]["expected"] == rate(a, 1)
    assert rep["first_difference"]["got"] == rate(b, 1)
    labels = {r["label"] for r in rep["boundaries"]}
    assert {"A: burn_in end", "B: burn_in end", "steps[0] ×0.1"} <= labels


def test_two_forks_list_where_they_differ() -> None:
    cfg = SAMPLES / "sgdr.cfg"
    res = run(str(cfg), "--fork", "pjreddie", "--fork", "alexeyab", "--json")
    assert res.exit_code == 1
    rep = json.loads(res.stdout)
    first = next(
        b
        for b in range(1, 7001)
        if rate(cfg, b, "pjreddie") != rate(cfg, b, "alexeyab")
    )
    assert first == 200  # burn-in is shared; pjreddie has no sgdr (constant) after it
    assert rep["first_difference"]["batch"] == first
    assert rep["differing_ranges"][0]["first_batch"] == first
    text = run(str(cfg), "--fork", "pjreddie", "--fork", "alexeyab").output
    assert "A = sgdr.cfg (pjreddie)  vs  B = sgdr.cfg (alexeyab)" in text


def test_same_fork_twice_is_equal_and_gpu_scaling_per_fork() -> None:
    cfg = str(SAMPLES / "yolov4.cfg")
    assert run(cfg, "--fork", "alexeyab", "--fork", "alexeyab").exit_code == 0
    # hankai does not multiply the LR by the GPU count; alexeyab does
    assert run(cfg, "--fork", "hankai", "--gpus", "1", "--gpus", "4").exit_code == 0
    a = load(cfg)
    rep = diff_schedules(a, a, gpus=(1, 4))
    assert not rep.equal
    row = next(r for r in rep.rows if r.batch == 1001)
    assert (
        row.got == _kernel.f32(a.learning_rate * 4) and row.expected == a.learning_rate
    )


def test_boundaries_of_sgdr_and_step() -> None:
    sg = load(str(SAMPLES / "sgdr.cfg"))
    marks, cut = boundaries(sg, 1, 7000)
    assert [(m.batch, m.kind) for m in marks] == [
        (200, "burn_in"),
        (1000, "sgdr"),
        (3000, "sgdr"),
        (7000, "sgdr"),
        (7000, "max_batches"),
    ]
    assert cut == 0
    for m in marks:
        if m.kind == "sgdr":
            assert _kernel.rate(sg.kernel_params(), m.batch) == sg.learning_rate_min
    st = parse("[net]\npolicy=step\nstep=100\nscale=.5\nmax_batches=1000\n")
    marks, cut = boundaries(st, 1, 1000, limit=5)
    assert [m.batch for m in marks] == [100, 200, 300, 400, 500] and cut >= 1


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    res = run(str(tmp_path / "missing.cfg"))
    assert res.exit_code == 2 and "missing.cfg" in res.output
    assert len(res.output.strip().splitlines()) == 1
    bad = tmp_path / "bad.cfg"
    bad.write_text("[net]\npolicy=steps\nsteps=100,200\nscales=.1\nmax_batches=10\n")
    res = run(str(bad))
    assert (
        res.exit_code == 2
        and f"{bad}:4: scales:" in res.output
        and "crash" in res.output
    )
    assert len(res.output.strip().splitlines()) == 1
    res = run(str(SAMPLES / "sgdr.cfg"), "--tolerance", "lots")
    assert res.exit_code == 2 and "--tolerance" in res.output
    empty = write_module(tmp_path, "x = 1\n")
    res = run(str(SAMPLES / "sgdr.cfg"), "--module", empty)
    assert res.exit_code == 2 and "build_scheduler" in res.output
    res = run(
        str(SAMPLES / "sgdr.cfg"), str(SAMPLES / "yolov4.cfg"), "--style", "native"
    )
    assert res.exit_code == 2
    assert "Traceback" not in res.output


def test_stdin_cfg() -> None:
    text = (SAMPLES / "sgdr.cfg").read_text()
    res = run("-", "--json", input=text)
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["expected"]["source"] == "<stdin>" and rep["steps_compared"] == 7000


def test_diff_does_not_import_matplotlib() -> None:
    code = (
        "import sys\n"
        "from cfgsched.cli import main\n"
        f"sys.argv = ['cfgsched', 'diff', {str(SAMPLES / 'sgdr.cfg')!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('EXIT', code, 'matplotlib' in sys.modules)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert "EXIT 0 False" in res.stdout, res.stdout + res.stderr


def test_help_has_worked_example() -> None:
    res = run("--help")
    assert res.exit_code == 0
    assert "cfgsched diff sample_cfgs/yolov4.cfg" in res.output
    assert "Exit status" in res.output
