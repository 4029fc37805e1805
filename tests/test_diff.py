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

from cfgsched import policies as _policies
from cfgsched.cli import main
from cfgsched.kernel import formulas as _kernel
from cfgsched.options import Options
from cfgsched.reader.parser import load, parse
from cfgsched.tools.diff import Tolerance, boundaries, diff_schedules, diff_torch
from tests.golden import DARKNET_CFGS, ROOT, needs_darknet_cfgs

SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = DARKNET_CFGS / "yolov4.cfg"


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["diff", *args], input=input)


def rate(path: Path | str, b: int, fork: str = "alexeyab") -> float:
    """darknet's LR at batch b from the scalar kernel (the independent reference)."""
    return _policies.rate(load(str(path), fork=fork).kernel_params(), b)


def record(
    fork: str = "alexeyab",
    options: Options | dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A CFGSCHED record as cfgsched convert writes it."""
    rec: dict[str, Any] = {
        "schema": "cfgsched-module/1",
        "version": "0.1.0",
        "cfg": "x.cfg",
        "fork": fork,
        "format": "python",
        "style": "class",
        "options": options
        if isinstance(options, dict)
        else (options or Options()).to_record(),
    }
    rec.update(extra)
    return rec


def write_module(
    tmp_path: Path,
    body: str,
    rec: dict[str, Any] | None = None,
    name: str = "user_sched.py",
) -> str:
    """A module file: the record (unless ``rec`` is ``{}``) then ``body``."""
    path = tmp_path / name
    head = "" if rec == {} else f"CFGSCHED = {rec or record()!r}\n"
    path.write_text(head + textwrap.dedent(body))
    return str(path)


OFF_BY_ONE = """
    import torch
    from cfgsched import policies as _policies
    from cfgsched.reader.parser import load

    P = load({cfg!r}).kernel_params()

    def build_scheduler(optimizer, last_epoch=-1):
        # the classic mistake: step i gets lr(b = i) instead of lr(b = i + 1)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda i: _policies.rate(P, i) / P.lr, last_epoch=last_epoch
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
        [sys.executable, "-m", "cfgsched", "diff", str(SAMPLES / "sgdr.cfg")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
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
    assert {r.batch for r in rep.boundaries} >= {1_600_000, 1_800_000, 2_000_200}
    for r in rep.boundaries:
        assert r.expected == _policies.rate(sched.kernel_params(), r.batch) == r.got


def test_multi_gpu_images_mapping() -> None:
    sched = load(str(SAMPLES / "yolov4-4gpu.cfg"))
    rep = diff_torch(sched, Options(ngpus=4))
    assert rep.equal, rep.format_text()
    assert rep.steps_compared == 500_500 // 4
    lr4 = _kernel.f32(sched.learning_rate * 4)  # alexeyab multiplies by the GPU count
    p = sched.kernel_params()._replace(lr=lr4)
    for r in rep.boundaries:
        assert r.batch == (r.step + 1) * 4
        assert r.expected == _policies.rate(p, r.batch)


def test_no_call_order_warning_from_torch() -> None:
    sched = parse(
        "[net]\nlearning_rate=0.1\npolicy=exp\ngamma=0.99\nmax_batches=50\n"
        "width=416\nheight=416\nchannels=3\n"
    )
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
        "width=416\nheight=416\nchannels=3\n"
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
    assert run(cfg, "--fork", "hankai", "--gpus", "1", "--vs-gpus", "4").exit_code == 0
    assert run(cfg, "--gpus", "1", "--vs-gpus", "4").exit_code == 1
    a = load(cfg)
    rep = diff_schedules(a, a, (Options(), Options(ngpus=4)))
    assert not rep.equal
    row = next(r for r in rep.boundaries if r.batch == 1001)
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
            assert _policies.rate(sg.kernel_params(), m.batch) == sg.learning_rate_min
    st = parse(
        "[net]\npolicy=step\nstep=100\nscale=.5\nmax_batches=1000\nwidth=416\nheight=416\nchannels=3\n"
    )
    marks, cut = boundaries(st, 1, 1000, limit=5)
    assert [m.batch for m in marks] == [100, 200, 300, 400, 500] and cut >= 1


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    res = run(str(tmp_path / "missing.cfg"))
    assert res.exit_code == 2 and "missing.cfg" in res.output
    assert len(res.output.strip().splitlines()) == 1
    bad = tmp_path / "bad.cfg"
    bad.write_text(
        "[net]\npolicy=steps\nsteps=100,200\nscales=.1\nmax_batches=10\nwidth=416\nheight=416\nchannels=3\n"
    )
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
    assert len(res.output.strip().splitlines()) == 1
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


# ----------------------------------------------------------------------------- translations

STEPS_CFG = (
    "[net]\nbatch=64\nsubdivisions=8\nwidth=32\nheight=32\nchannels=3\n"
    "learning_rate=0.01\nburn_in=100\npolicy=steps\nsteps=600,800\nscales=.1,.1\n"
    "max_batches=1000\n\n[maxpool]\nsize=2\nstride=2\n"
)


def steps_cfg(tmp_path: Path, text: str = STEPS_CFG, name: str = "s.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_torch_batch_mapping_rows_show_step_and_batch() -> None:
    sched = parse(STEPS_CFG)  # 64 images per iteration
    rep = diff_torch(sched, Options(images_per_step=48))
    assert rep.equal, rep.format_text()
    # the run: steps i with i·48 < 1000·64 images, i.e. ⌈64000 / 48⌉ = 1334 steps
    assert rep.steps_compared == 1334 and rep.steps[1] == 1333
    assert rep.batches[1] == 1334 * 48 // 64 == 1000
    p = sched.kernel_params()
    for r in rep.boundaries:
        assert r.batch == (r.step + 1) * 48 // 64
        assert r.expected == _policies.rate(p, r.batch) == r.got
    # the row at a step boundary is the first step whose batch reaches the step
    first = next(r for r in rep.boundaries if r.label == "steps[0] ×0.1")
    assert first.batch >= 600 and (first.step * 48 // 64) < 600
    text = rep.format_text()
    assert "i = 0..1333, b = 0..1000" in text
    assert (
        "optimizer step i at darknet batch b = (i + 1)*48 // 64 (48 images per step)"
        in text
    )


def test_gpus_run_length_is_darknets_loop_count() -> None:
    # darknet -gpus 4 with max_batches 1002 runs while its counter is below 1002: 251 loops
    sched = parse(STEPS_CFG.replace("max_batches=1000", "max_batches=1002"))
    rep = diff_torch(sched, Options(ngpus=4))
    assert rep.equal and rep.steps_compared == 251 and rep.batches[1] == 1004


def test_resume_compares_the_rest_of_the_run() -> None:
    sched = parse(STEPS_CFG)
    rep = diff_torch(sched, Options(resume_iteration=700, images_per_step=32))
    assert rep.equal, rep.format_text()
    assert rep.steps[0] == 700 * 64 // 32 == 1400
    assert rep.steps_compared == 2000 - 1400
    assert "resumes at step i = 1,400 (darknet batch b = 700)" in rep.notes
    assert min(r.step for r in rep.boundaries) >= 1400  # no row before the resume point


def test_trace_mapping_follows_gpu0() -> None:
    from cfgsched.kernel.mgpu import MgpuConfig, mgpu_batches

    sched = parse(STEPS_CFG)
    rep = diff_torch(sched, Options(ngpus=2, multigpu="trace"))
    assert rep.equal, rep.format_text()
    seq = mgpu_batches(MgpuConfig(0, 2, 1000, 100))[0]
    assert rep.steps_compared == len(seq)
    p = sched.kernel_params()._replace(lr=_kernel.f32(sched.learning_rate * 2))
    for r in rep.boundaries:
        if r.step < len(seq):
            assert r.batch == seq[r.step] and r.expected == _policies.rate(p, r.batch)


def test_ideal_and_flush_follow_the_translation() -> None:
    exp = parse(
        "[net]\nlearning_rate=0.001\npolicy=exp\ngamma=0.99\nmax_batches=9000\n"
        "width=416\nheight=416\nchannels=3\n"
    )
    # release builds flush: the LR is 0 from b = 8003 on, in both sides
    rep = diff_torch(exp)
    assert rep.equal
    assert _policies.rate(exp.kernel_params(), 8003, True, True) == 0.0
    keep = diff_torch(exp, Options(flush=False))
    assert keep.equal
    ideal = diff_torch(parse(STEPS_CFG), Options(ngpus=4, ideal=True))
    assert ideal.equal
    burn = next(r for r in ideal.boundaries if r.label == "burn_in end")
    assert burn.batch == 400  # burn_in × 4


def test_cli_translation_options_match_library() -> None:
    cfg = str(SAMPLES / "sgdr.cfg")
    res = run(cfg, "--torch-batch", "16", "--accumulate", "2", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["expected"]["options"]["images_per_step"] == 32
    assert rep["got"]["options"] == rep["expected"]["options"]
    s = load(cfg)
    n = -(-s.max_batches * s.images_per_iteration // 32)
    assert rep["steps_compared"] == n
    res = run(cfg, "--accumulate", "2")
    assert res.exit_code == 2 and "--torch-batch" in res.output


def test_double_uses_double_tolerance(tmp_path: Path) -> None:
    cfg = steps_cfg(tmp_path, STEPS_CFG.replace("steps", "poly", 1))
    res = run(str(cfg), "--double", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["tolerance"] == {"kind": "rel", "value": 1e-9}
    # a float32 module recorded as double differs by more than 1e-9 relative
    body = f"""
        from cfgsched.reader.parser import load
        from cfgsched.adapters.darknet_lr import DarknetScheduler
        from cfgsched.options import Options
        from cfgsched.run import translate

        def build_scheduler(optimizer, last_epoch=-1):
            t = translate(load({str(cfg)!r}), Options())
            return DarknetScheduler(optimizer, t, last_epoch)
    """
    mod = write_module(tmp_path, body, record(options=Options(exact=False)))
    res = run(str(cfg), "--module", mod)
    assert res.exit_code == 1 and "DIFFERENT beyond 1e-9" in res.output


def test_pair_rejects_step_mapping_options() -> None:
    a, b = str(SAMPLES / "yolov4.cfg"), str(SAMPLES / "yolov4-4gpu.cfg")
    res = run(a, b, "--torch-batch", "16")
    assert res.exit_code == 2 and "batch by batch" in res.output
    with pytest.raises(ValueError, match="batch by batch"):
        s = load(a)
        diff_schedules(s, s, (Options(), Options(images_per_step=16)))
    res = run(a, "--gpus", "1", "--gpus", "4")
    assert res.exit_code == 2 and "--vs-gpus" in res.output


# ----------------------------------------------------------------------------- module records

SELF_TRANSLATED = """
    from cfgsched.reader.parser import load
    from cfgsched.adapters.darknet_lr import DarknetScheduler
    from cfgsched.options import Options
    from cfgsched.run import translate

    def build_scheduler(optimizer, last_epoch=None):  # None: where the record resumes
        o = Options.from_record(CFGSCHED["options"])
        t = translate(load({cfg!r}, fork=CFGSCHED["fork"]), o)
        return DarknetScheduler(optimizer, t, t.start - 1 if last_epoch is None else last_epoch)
"""


@pytest.mark.parametrize(
    ("fork", "options"),
    [
        ("alexeyab", Options(images_per_step=32)),
        ("alexeyab", Options(ngpus=4)),
        ("alexeyab", Options(ngpus=2, multigpu="trace")),
        ("pjreddie", Options(ngpus=4, ideal=True)),
        ("hankai", Options(ngpus=2, multigpu="trace", scratch=True)),
        ("alexeyab", Options(resume_iteration=500)),
        ("alexeyab", Options(exact=False)),
    ],
)
def test_plain_module_diff_uses_the_record(
    tmp_path: Path, fork: str, options: Options
) -> None:
    cfg = steps_cfg(tmp_path)
    body = SELF_TRANSLATED.format(cfg=str(cfg))
    mod = write_module(tmp_path, body, record(fork, options))
    res = run(str(cfg), "--module", mod, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["got"]["options"] == options.to_record()
    assert rep["expected"]["fork"] == fork and rep["got"]["kind"] == "module"
    # the same code with another translation differs from the record: not trivial
    if options.ngpus > 1 or options.images_per_step:
        alt = body.replace('Options.from_record(CFGSCHED["options"])', "Options()")
        path = write_module(tmp_path, alt, record(fork, options), name="alt.py")
        assert run(str(cfg), "--module", path).exit_code == 1
    plain = write_module(tmp_path, body, record(fork), name="plain.py")
    assert run(str(cfg), "--module", plain).exit_code == 0


def test_options_contradicting_the_record_exit_2(tmp_path: Path) -> None:
    cfg = steps_cfg(tmp_path)
    mod = write_module(
        tmp_path, SELF_TRANSLATED.format(cfg=str(cfg)), record(options=Options(ngpus=4))
    )
    assert run(str(cfg), "--module", mod, "--gpus", "4").exit_code == 0
    res = run(str(cfg), "--module", mod, "--gpus", "2")
    assert res.exit_code == 2
    line = res.output.strip()
    assert len(line.splitlines()) == 1
    assert "ngpus: 4 vs 2" in line and "user_sched.py" in line
    res = run(str(cfg), "--module", mod, "--double")
    assert res.exit_code == 2 and "exact: True vs False" in res.output
    # alexeyab's release build flushes: --flush-subnormals agrees with flush=None there
    ok = run(str(cfg), "--module", mod, "--flush-subnormals")
    assert ok.exit_code == 0
    res = run(str(cfg), "--module", mod, "--keep-subnormals")
    assert res.exit_code == 2 and "flush: None vs False" in res.output
    res = run(str(cfg), "--module", mod, "--fork", "hankai")
    assert res.exit_code == 2 and "fork alexeyab" in res.output
    res = run(str(cfg), "--module", mod, "--style", "native")
    assert res.exit_code == 2


@pytest.mark.parametrize(
    ("rec", "expect"),
    [
        ({}, "no CFGSCHED record"),
        (record(schema="cfgsched-module/0"), "schema 'cfgsched-module/0'"),
        (record(fork="darknet"), "fork 'darknet'"),
        (record(options={"schema": "x"}), "options:"),
        (record(options={**Options().to_record(), "ngpus": 0}), "ngpus must be >= 1"),
        (record(options={**Options().to_record(), "speed": 3}), "speed"),
        (record(version=3), "must be strings"),
    ],
)
def test_module_without_valid_record_is_not_imported(
    tmp_path: Path, rec: dict[str, Any], expect: str
) -> None:
    marker = tmp_path / "imported"
    body = f"open({str(marker)!r}, 'w').close()\ndef build_scheduler(o, last_epoch=-1): pass\n"
    mod = write_module(tmp_path, body, rec)
    res = run(str(SAMPLES / "sgdr.cfg"), "--module", mod)
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert expect in res.output and "user_sched.py" in res.output
    assert not marker.exists()


def test_record_that_is_not_literal_or_not_python(tmp_path: Path) -> None:
    cfg = str(SAMPLES / "sgdr.cfg")
    mod = tmp_path / "m.py"
    mod.write_text("CFGSCHED = dict(schema='cfgsched-module/1')\n")
    res = run(cfg, "--module", str(mod))
    assert (
        res.exit_code == 2
        and "m.py:1: CFGSCHED: the record is not a literal dict" in res.output
    )
    mod.write_text("def (:\n")
    res = run(cfg, "--module", str(mod))
    assert res.exit_code == 2 and "not valid Python" in res.output
    res = run(cfg, "--module", str(tmp_path / "missing.py"))
    assert res.exit_code == 2 and "missing.py" in res.output
    fifo = tmp_path / "fifo.py"
    import os

    os.mkfifo(fifo)
    res = run(cfg, "--module", str(fifo))  # never blocks: not a regular file
    assert res.exit_code == 2 and "not a regular file" in res.output


ADVERSARIES = {
    "import_raises": ("raise RuntimeError('boom')\n", "importing the module failed"),
    "import_exits": ("import sys\nsys.exit(7)\n", "sys.exit(7)"),
    "no_builder": ("x = 1\n", "defines no build_scheduler"),
    "builder_raises": (
        "def build_scheduler(optimizer, last_epoch=-1):\n    raise KeyError('k')\n",
        "KeyError",
    ),
    "wrong_signature": (
        "def build_scheduler(optimizer):\n    return None\n",
        "unexpected keyword argument 'last_epoch'",
    ),
    "returns_none": (
        "def build_scheduler(optimizer, last_epoch=-1):\n    return None\n",
        "returned NoneType",
    ),
    "non_numeric_lr": (
        "import torch\n"
        "def build_scheduler(optimizer, last_epoch=-1):\n"
        "    s = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)\n"
        "    optimizer.param_groups[0]['lr'] = 'fast'\n"
        "    return s\n",
        "lr at step 0 is 'fast', not a number",
    ),
    "step_raises": (
        "class S:\n"
        "    def __init__(self, o):\n        self.n = 0\n"
        "    def step(self):\n"
        "        self.n += 1\n"
        "        if self.n == 5:\n            raise ZeroDivisionError('at 5')\n"
        "def build_scheduler(optimizer, last_epoch=-1):\n    return S(optimizer)\n",
        "scheduler.step() failed at optimizer step 4",
    ),
    "step_exits": (
        "import sys\n"
        "class S:\n    def step(self):\n        sys.exit(3)\n"
        "def build_scheduler(optimizer, last_epoch=-1):\n    return S()\n",
        "sys.exit(3)",
    ),
}


@pytest.mark.parametrize("case", sorted(ADVERSARIES))
def test_hostile_modules_exit_2_with_one_line(tmp_path: Path, case: str) -> None:
    body, expect = ADVERSARIES[case]
    mod = write_module(tmp_path, body)
    code = (
        "import sys\nfrom cfgsched.cli import main\n"
        f"sys.argv = ['cfgsched', 'diff', {str(SAMPLES / 'sgdr.cfg')!r}, '--module', {mod!r}]\n"
        "main()\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout == "" and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "user_sched.py" in lines[0] and expect in lines[0], lines


def test_module_print_does_not_corrupt_json(tmp_path: Path) -> None:
    cfg = steps_cfg(tmp_path)
    body = "print('hello from the module')\n" + textwrap.dedent(
        SELF_TRANSLATED.format(cfg=str(cfg))
    )
    mod = write_module(tmp_path, body)
    res = run(str(cfg), "--module", mod, "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["equal"] is True


def test_help_says_module_code_runs() -> None:
    out = " ".join(run("--help").output.split())
    assert "imports FILE, which runs its code" in out
    assert "--torch-batch" in out and "--resume-from" in out and "--vs-gpus" in out


# ----------------------------------------------------------------------------- hostile cfgs


def test_negative_lr_and_subdivisions(tmp_path: Path) -> None:
    neg = steps_cfg(tmp_path, STEPS_CFG.replace("0.01", "-0.01"), "neg.cfg")
    res = run(str(neg), "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert (
        rep["boundaries"][0]["got"] < 0
    )  # torch's SGD would refuse it; darknet trains
    sub = steps_cfg(tmp_path, STEPS_CFG.replace("subdivisions=8", "subdivisions=-8"))
    res = run(str(sub))
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "s.cfg" in res.output
    res = run(str(neg), "--gpus", "9223372036854775807")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1


def test_plot_vs_torch_on_negative_lr(tmp_path: Path) -> None:
    neg = steps_cfg(tmp_path, STEPS_CFG.replace("0.01", "-0.01"), "neg.cfg")
    out = tmp_path / "neg.png"
    res = CliRunner().invoke(main, ["plot", str(neg), "--vs", "torch", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0
