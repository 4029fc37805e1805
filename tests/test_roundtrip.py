"""``cfgsched convert … -o m.py`` then a plain ``cfgsched diff CFG --module m.py``: the
module records its translation, so diff checks it without repeated options, and every
option combination convert accepts passes (issue: one translation through every command).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from cfgsched.cli import main

ROOT = Path(__file__).resolve().parents[1]
YOLOV4 = ROOT / "sample_cfgs" / "yolov4.cfg"


def short_yolov4(tmp: Path) -> Path:
    """sample_cfgs/yolov4.cfg with a 20,000-batch run (steps moved along), for speed."""
    text = YOLOV4.read_text().replace("max_batches=500500", "max_batches=20000")
    text = text.replace("steps=400000,450000", "steps=16000,18000")
    assert "max_batches=20000" in text and "steps=16000,18000" in text
    cfg = tmp / "yolov4-short.cfg"
    cfg.write_text(text)
    return cfg


def weights(tmp: Path, iterations: int, images_per_iteration: int) -> Path:
    path = tmp / "last.weights"
    seen = iterations * images_per_iteration
    path.write_bytes(struct.pack("<iiiQ", 0, 2, 5, seen) + b"\0" * 16)
    return path


def roundtrip(cfg: Path, tmp: Path, *convert_args: str) -> str:
    module = tmp / "m.py"
    runner = CliRunner()
    res = runner.invoke(main, ["convert", str(cfg), "-o", str(module), "--force",
                               *convert_args])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["diff", str(cfg), "--module", str(module)])
    assert res.exit_code == 0, res.output
    assert "result: EQUAL" in res.stdout
    return res.stdout


def test_torch_batch_and_accumulation_on_yolov4(tmp_path: Path) -> None:
    """The README's most common migration, on the whole 500,500-batch run."""
    out = roundtrip(YOLOV4, tmp_path, "--torch-batch", "16", "--accumulate", "2")
    assert "compared 1,001,000 steps exhaustively" in out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--gpus", "4"],
        ["--gpus", "4", "--multigpu", "trace"],
        ["--gpus", "4", "--ideal"],
        ["--fork", "hankai"],
        ["--fork", "hankai", "--gpus", "2", "--multigpu", "trace", "--scratch"],
        ["--fork", "pjreddie", "--gpus", "2"],
        ["--torch-batch", "24", "--world-size", "2"],
        ["--keep-subnormals"],
        ["--double"],
        ["--style", "class", "--format", "lightning"],
    ],
    ids=" ".join,
)
def test_every_option_combination_round_trips(tmp_path: Path, args: list[str]) -> None:
    roundtrip(short_yolov4(tmp_path), tmp_path, *args)


def test_resume_from_weights_round_trips(tmp_path: Path) -> None:
    cfg = short_yolov4(tmp_path)
    w = weights(tmp_path, 5000, 64)  # yolov4: batch 64 = 64 images per iteration
    out = roundtrip(cfg, tmp_path, "--resume-from", str(w))
    # 5,000 iterations of 64 images done: the module starts at step 5000 (b = 5001)
    assert (
        "compared 15,000 steps exhaustively (i = 5000..19999, b = 5001..20000)" in out
    )


def test_contradicting_options_name_both_values(tmp_path: Path) -> None:
    cfg = short_yolov4(tmp_path)
    module = tmp_path / "m.py"
    runner = CliRunner()
    res = runner.invoke(main, ["convert", str(cfg), "-o", str(module), "--gpus", "4"])
    assert res.exit_code == 0
    res = runner.invoke(
        main, ["diff", str(cfg), "--module", str(module), "--gpus", "2"]
    )
    assert res.exit_code == 2
    (line,) = res.stderr.strip().splitlines()
    assert "ngpus" in line and "4" in line and "2" in line
