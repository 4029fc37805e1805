"""``cfgsched convert`` through click's CliRunner and as a real subprocess."""

from __future__ import annotations

import ast
import struct
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cfgsched.cli import main
from cfgsched.options import Options

ROOT = Path(__file__).resolve().parents[1]
YOLOV4 = ROOT / "sample_cfgs" / "yolov4.cfg"
CFGSCHED = Path(sys.executable).parent / "cfgsched"

BAD_CFG = (
    "[net]\nlearning_rate=0.1\npolicy=steps\nsteps=1,2\nscales=.1\n"
    "width=32\nheight=32\nchannels=3\n"
)
STEPS_CFG = (
    "[net]\nbatch=64\nsubdivisions=16\npolicy=steps\n"
    "steps=400,450\nscales=.1,.1\nmax_batches=500\n"
    "width=32\nheight=32\nchannels=3\n"
)


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["convert", *args], input=input)


def assert_one_line_error(res: Result, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("cfgsched: error: ")
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], (n, lines[0])


def module_constants(src: str) -> dict[str, object]:
    """Top-level ``NAME = <literal>`` assignments of a module (no execution)."""
    out: dict[str, object] = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = value
    return out


def test_stdout_by_default() -> None:
    res = invoke(str(YOLOV4))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith('"""darknet learning-rate schedule of yolov4.cfg')
    consts = module_constants(res.stdout)
    record = consts["CFGSCHED"]
    assert isinstance(record, dict)
    assert Options.from_record(record["options"]) == Options()
    assert (record["cfg"], record["fork"], record["format"]) == (
        "yolov4.cfg",
        "alexeyab",
        "python",
    )
    assert "RESUME_STEP" not in consts and consts["BURN_IN"] == 1000
    compile(res.stdout, "lr_schedule.py", "exec")
    assert res.stderr == ""


def test_dash_output_and_stdin_input() -> None:
    res = invoke("-", "-o", "-", input=YOLOV4.read_text())
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith('"""darknet learning-rate schedule of _stdin_ as')
    from_file = invoke(str(YOLOV4)).stdout
    assert res.stdout.replace("_stdin_", "yolov4.cfg") == from_file


def test_output_file_is_atomic_and_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "lr_schedule.py"
    res = invoke(str(YOLOV4), "-o", str(out))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    first = out.read_text()
    assert first == invoke(str(YOLOV4)).stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lr_schedule.py"
    ]  # no temp left

    # a file convert wrote is replaced without --force (docs/commands.md, -o FILE)
    res = invoke(str(YOLOV4), "-o", str(out), "--gpus", "2")
    assert res.exit_code == 0, res.stderr
    assert out.read_text() != first and "GPUs: 2" in out.read_text()

    # any other existing file needs --force
    mine = tmp_path / "train.py"
    mine.write_text("import lr_schedule\n")
    res = invoke(str(YOLOV4), "-o", str(mine))
    assert_one_line_error(res, str(mine), "--force")
    assert mine.read_text() == "import lr_schedule\n"

    res = invoke(str(YOLOV4), "-o", str(mine), "--force")
    assert res.exit_code == 0
    assert mine.read_text() == first.replace("from lr_schedule", "from train")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_schedule.py", "train.py"]


def test_failed_convert_leaves_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "lr.py"
    out.write_text("keep me\n")
    bad = tmp_path / "bad.cfg"
    bad.write_text(BAD_CFG)
    res = invoke(str(bad), "-o", str(out), "--force")
    assert_one_line_error(res, f"{bad}:5", "scales", "crashes")
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.cfg", "lr.py"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--ideal"], "--ideal"),
        (["--accumulate", "2"], "--torch-batch"),
        (["--scratch"], "--multigpu trace"),
        (["--multigpu", "trace", "--gpus", "2", "--torch-batch", "8"], "--torch-batch"),
        (["--resume-from", "/nonexistent/x.weights"], "x.weights"),
        (["--multigpu", "trace"], "--gpus"),
        (["--gpus", "2", "--multigpu", "trace", "--resume-from", "w"], "--resume-from"),
        (["--double", "--flush-subnormals"], "--double"),
    ],
)
def test_bad_options_exit_2(args: list[str], needle: str) -> None:
    assert_one_line_error(invoke(str(YOLOV4), *args), needle)


def test_missing_cfg_exit_2(tmp_path: Path) -> None:
    assert_one_line_error(invoke(str(tmp_path / "nope.cfg")), "nope.cfg")


def test_native_not_exact_exit_1() -> None:
    res = invoke(str(YOLOV4), "--style", "native")
    assert res.exit_code == 1
    assert "burn-in" in res.stderr and "first differs at darknet batch 1" in res.stderr
    assert res.stdout == ""


def test_native_exact_exit_0(tmp_path: Path) -> None:
    cfg = tmp_path / "steps.cfg"
    cfg.write_text(STEPS_CFG)
    res = invoke(str(cfg), "--style", "native")
    assert res.exit_code == 0, res.stderr
    assert "MultiStepLR(optimizer, milestones=[399, 449]" in res.stdout


def test_warnings_go_to_stderr(tmp_path: Path) -> None:
    cfg = tmp_path / "w.cfg"
    cfg.write_text(
        "[net]\nlearning_rate=0.01\npolicy=stepz\nwidth=32\nheight=32\nchannels=3\n"
    )
    res = invoke(str(cfg))
    assert res.exit_code == 0
    assert "P001" in res.stderr and f"{cfg}:3" in res.stderr
    assert "stepz" not in res.stdout  # the cfg's string never reaches the module
    assert "Warning P001 (line 3)" in res.stdout


def write_weights(path: Path, seen: int) -> None:
    path.write_bytes(struct.pack("<3iQ", 0, 2, 5, seen) + b"\0" * 16)


def test_resume_from(tmp_path: Path) -> None:
    w = tmp_path / "yolov4_last.weights"
    write_weights(w, 64 * 123_456 + 3)
    res = invoke(str(YOLOV4), "--resume-from", str(w))
    assert res.exit_code == 0, res.stderr
    assert module_constants(res.stdout)["RESUME_STEP"] == 123_456
    assert "iteration 123456" in res.stderr
    # 2 GPUs, images mode: 2 darknet iterations per optimizer step
    res = invoke(str(YOLOV4), "--resume-from", str(w), "--gpus", "2")
    assert module_constants(res.stdout)["RESUME_STEP"] == 123_456 // 2
    # a truncated file is a one-line error naming it
    bad = tmp_path / "cut.weights"
    bad.write_bytes(b"\0" * 7)
    assert_one_line_error(invoke(str(YOLOV4), "--resume-from", str(bad)), "cut.weights")


def test_formats_and_torch_batch() -> None:
    res = invoke(
        str(YOLOV4), "--format", "json", "--torch-batch", "8", "--accumulate", "4"
    )
    assert res.exit_code == 0
    assert '"images_per_step": 32' in res.stdout
    res = invoke(str(YOLOV4), "--format", "lightning")
    assert "def configure_optimizers(self" in res.stdout
    assert "def build_optimizer(model" in res.stdout
    res = invoke(str(YOLOV4), "--gpus", "4", "--ideal")
    assert "learning_rate / 4 and burn_in x 4" in res.stdout
    consts = module_constants(res.stdout)
    assert consts["BURN_IN"] == 4000
    assert consts["CFGSCHED"]["options"] == Options(ngpus=4, ideal=True).to_record()  # type: ignore[index]


def test_help_has_a_worked_example_and_every_option_help() -> None:
    res = CliRunner().invoke(main, ["convert", "--help"])
    assert res.exit_code == 0
    assert "cfgsched convert yolov4.cfg -o lr_schedule.py" in res.stdout
    assert "scheduler = lr_schedule.build_scheduler(optimizer)" in res.stdout
    assert "momentum=lr_schedule.MOMENTUM" in res.stdout  # the cfg's momentum
    assert "weight_decay=lr_schedule.DECAY" in res.stdout  # issue 15 item 11
    from cfgsched.cli.convert import convert as command

    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, param.name
    names = {p.name for p in command.params}
    shared = {"gpus", "multigpu", "scratch", "torch_batch", "accumulate", "world_size"}
    assert shared | {"ideal", "double", "flush", "resume_from", "fmt"} <= names


@pytest.mark.skipif(not CFGSCHED.exists(), reason="console script not installed")
def test_real_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(CFGSCHED), "convert", str(YOLOV4)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == invoke(str(YOLOV4)).stdout
    out = tmp_path / "lr.py"
    proc = subprocess.run(
        [str(CFGSCHED), "convert", str(YOLOV4), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and out.exists()
    mine = tmp_path / "mine.py"
    mine.write_text("keep me\n")
    proc = subprocess.run(
        [str(CFGSCHED), "convert", str(YOLOV4), "-o", str(mine)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert mine.read_text() == "keep me\n"
    bad = tmp_path / "bad.cfg"
    bad.write_text(BAD_CFG)
    proc = subprocess.run(
        [str(CFGSCHED), "convert", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert f"{bad}:5" in proc.stderr
    proc = subprocess.run(
        [str(CFGSCHED), "convert", str(YOLOV4), "--style", "native"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1


def test_class_style_imports_neither_torch_nor_matplotlib() -> None:
    code = (
        "import sys; from cfgsched.cli import main\n"
        "try:\n    main(['convert', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch', 'matplotlib') if m in sys.modules]\n"
        "sys.stderr.write(repr(bad))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(YOLOV4)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stderr.strip() == "[]"
    assert proc.stdout.startswith('"""darknet')


def test_a_user_file_mentioning_cfgsched_is_not_replaced(tmp_path: Path) -> None:
    """Issue 15 item 16: only a file that is wholly a module cfgsched wrote (its record
    parses and its shape matches) is replaced without --force."""
    mine = tmp_path / "train.py"
    mine.write_text("import torch\n# Written by cfgsched 0.1\n# my work\n")
    res = invoke(str(YOLOV4), "-o", str(mine))
    assert_one_line_error(res, str(mine), "--force")
    assert mine.read_text() == "import torch\n# Written by cfgsched 0.1\n# my work\n"
    # a module convert wrote, then extended by the user with code of their own
    ours = tmp_path / "lr.py"
    assert invoke(str(YOLOV4), "-o", str(ours)).exit_code == 0
    edited = ours.read_text() + "\n\ndef train() -> None:\n    pass\n"
    ours.write_text(edited)
    assert_one_line_error(invoke(str(YOLOV4), "-o", str(ours)), "--force")
    assert ours.read_text() == edited
    # a record that does not parse
    broken = ours.read_text().replace('"schema": "cfgsched-module/1"', '"schema": x')
    ours.write_text(broken.replace("\n\ndef train() -> None:\n    pass\n", ""))
    assert_one_line_error(invoke(str(YOLOV4), "-o", str(ours)), "--force")
    # the JSON document and every format convert writes are replaced
    for fmt in ("json", "ultralytics", "mmengine", "lightning"):
        out = tmp_path / f"{fmt}.out"
        assert invoke(str(YOLOV4), "--format", fmt, "-o", str(out)).exit_code == 0
        res = invoke(str(YOLOV4), "--format", fmt, "-o", str(out), "--gpus", "2")
        assert res.exit_code == 0, (fmt, res.output)
    # a JSON file that merely has our schema line is not
    fake = tmp_path / "fake.json"
    fake.write_text('{"schema": "cfgsched-translation/1", "mine": 1}\n')
    assert_one_line_error(
        invoke(str(YOLOV4), "--format", "json", "-o", str(fake)), "--force"
    )
