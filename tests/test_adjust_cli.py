"""``cfgsched adjust``: values darknet cannot read, repeated keys, --rescale-steps."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import cfgsched
from cfgsched.cli import main

YOLOV4 = Path(__file__).resolve().parents[1] / "sample_cfgs" / "yolov4.cfg"


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["adjust", str(YOLOV4), *args])
    return res.exit_code, res.stdout, res.stderr


def test_gpus_advice_beyond_c_int_is_refused() -> None:
    code, out, err = run("--gpus", "3000000")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "cfgsched: error: --gpus 3000000: burn_in 1000 x 3000000 = 3000000000 is beyond "
        "darknet's int (2147483647): darknet would read another number"
    ]
    code, out, _ = run("--gpus", "2147483")  # 1000 x 2147483 = 2147483000 still fits
    assert code == 0 and "burn_in=2147483000" in out


def test_a_key_given_twice_says_so() -> None:
    code, _, err = run("--set", "learning_rate=0.1", "--set", "learning_rate=0.2")
    assert code == 2 and "--set learning_rate: given twice" in err
    code, _, err = run("--gpus", "4", "--set", "burn_in=10")
    assert code == 2 and "--set burn_in: also set by --gpus" in err


def test_rescale_steps_keeps_the_fractions() -> None:
    code, out, _ = run("--set", "max_batches=6000", "--rescale-steps")
    assert code == 0
    s = cfgsched.parse(out)
    old = cfgsched.load(YOLOV4)
    assert s.max_batches == 6000
    # round(s * 6000 / 500500), computed by hand: 4795.2 -> 4795, 5394.6 -> 5395
    assert s.steps == (4795, 5395)
    assert [round(x * 6000 / old.max_batches) for x in old.steps] == list(s.steps)
    assert (
        out.replace("max_batches=6000", "max_batches=500500").replace(
            "steps=4795,5395", "steps=400000,450000"
        )
        == YOLOV4.read_text()
    )


def test_rescale_steps_needs_a_new_max_batches() -> None:
    for args in (
        ["--rescale-steps"],
        ["--gpus", "2", "--rescale-steps"],
        ["--set", "max_batches=10", "--set", "steps=5", "--rescale-steps"],
    ):
        code, _, err = run(*args)
        assert code == 2 and len(err.strip().splitlines()) == 1, args
