"""Bounds a new user and an adversary hit: adjust values darknet cannot read, repeated
keys, --rescale-steps; lint output bounded for a cfg with thousands of steps."""

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
        "cfgsched: error: --gpus 3000000: burn_in='3000000000': the value must be an "
        "integer within C int range (ASCII digits, as darknet's atoi/atof read them)"
    ]
    code, out, _ = run("--gpus", "2147483")  # 1000 x 2147483 = 2147483000 still fits
    assert code == 0 and "burn_in=2147483000" in out


def test_a_key_given_twice_says_so() -> None:
    code, _, err = run("--set", "learning_rate=0.1", "--set", "learning_rate=0.2")
    assert code == 2 and "--set: learning_rate: set twice in one adjust" in err
    code, _, err = run("--gpus", "4", "--set", "burn_in=10")
    assert code == 2 and "--set: burn_in: set twice in one adjust (--gpus sets" in err


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


def test_lint_lists_a_rule_at_most_twenty_times_then_counts_the_rest(
    tmp_path: Path,
) -> None:
    """A cfg with 5,000 steps inside burn-in, each listed twice: W204 and W202 each show
    their first 20 findings and one line counting the rest (bounded output and memory)."""
    steps = ",".join(str(1 + i % 2500) for i in range(5000))
    cfg = tmp_path / "many.cfg"
    cfg.write_text(
        "[net]\nwidth=32\nheight=32\nchannels=3\nburn_in=3000\nmax_batches=10000\n"
        f"policy=steps\nsteps={steps}\nscales={','.join(['1'] * 5000)}\n"
    )
    res = CliRunner().invoke(main, ["lint", str(cfg), "--select", "W202,W204"])
    lines = res.stdout.strip().splitlines()
    w204 = [x for x in lines if " W204 " in x]
    w202 = [x for x in lines if " W202 " in x]
    (more204,) = [x for x in w204 if "more W204" in x]
    (more202,) = [x for x in w202 if "more W202" in x]
    assert len(w204) == 21 and more204.endswith(
        "W204 4,980 more W204 findings in this list (the first 20 shown)"
    )
    assert len(w202) == 21 and "2,480 more W202 findings" in more202
