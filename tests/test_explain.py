"""cfgsched explain: phases, boundary LRs (golden), images/epochs, -gpus, JSON, CLI."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cfgsched.cli import main
from cfgsched.reader.parser import parse
from cfgsched.tools.explain import SCHEMA, Explanation, explain, explain_text
from tests.golden import (
    DARKNET_CFGS,
    EvalCase,
    bits,
    eval_cases,
    needs_darknet_cfgs,
    needs_golden,
)

CFGSCHED = str(Path(sys.executable).with_name("cfgsched"))
LAYERS = "\n[convolutional]\nfilters=16\nsize=3\nstride=1\npad=1\nactivation=leaky\n"


def f32(x: float) -> float:
    return float(np.float32(x))


def net(*lines: str) -> str:
    head = [
        "[net]",
        "batch=64",
        "subdivisions=8",
        "width=416",
        "height=416",
        "channels=3",
    ]
    return "\n".join([*head, *lines]) + "\n" + LAYERS


def ex(text: str, **kw: object) -> Explanation:
    return explain_text(text, source="t.cfg", **kw)  # type: ignore[arg-type]


def spans(e: Explanation) -> list[tuple[str, int, int | None]]:
    return [(p.kind, p.first, p.last) for p in e.phases]


OK_CASES = [
    c
    for c in eval_cases()
    if c.ok and c.data["parse"]["params"].get("policy") != "RANDOM"
]


def golden_at(case: EvalCase) -> dict[int, int]:
    return dict(zip(case.batches.tolist(), case.lr_bits.tolist(), strict=True))


@needs_golden
@pytest.mark.parametrize("case", OK_CASES, ids=[c.id for c in OK_CASES])
def test_points_and_phase_boundaries_match_golden(case: EvalCase) -> None:
    """--at b gives darknet's LR at b (bit for bit); every phase boundary LR that the golden
    data lists equals it."""
    gold = golden_at(case)
    ftz = case.ftz_batches()
    e = ex(case.cfg_text, fork=case.fork, at=list(gold))
    assert sorted(p.batch for p in e.points) == sorted(gold)
    for p in e.points:
        assert p.step == p.batch - 1
        if p.batch not in ftz:
            assert int(bits(p.lr)) == gold[p.batch], p.batch
    for ph in e.phases:
        for b, lr in ((ph.first, ph.lr_first), (ph.last, ph.lr_last)):
            if b is not None and b in gold and b not in ftz:
                assert int(bits(lr)) == gold[b], (ph.kind, b)


@needs_darknet_cfgs
def test_yolov4_phases_by_hand() -> None:
    e = ex((DARKNET_CFGS / "yolov4.cfg").read_text(), images=117266)
    assert spans(e) == [
        ("burn-in", 1, 999),
        ("plateau", 1000, 399999),
        ("plateau", 400000, 449999),
        ("plateau", 450000, 500500),
        ("after-end", 500501, None),
    ]
    lr = f32(0.0013)
    assert e.phases[0].lr_first == f32(lr * f32(1 / 1000) ** 4)
    assert e.phases[0].lr_last == f32(lr * f32(999 / 1000) ** 4)
    assert [p.lr_first for p in e.phases[1:4]] == [
        lr,
        f32(lr * f32(0.1)),
        f32(f32(lr * f32(0.1)) * f32(0.1)),
    ]
    assert e.images_per_iteration == 64
    assert e.images(999) == 63936 and e.epochs(500500) == pytest.approx(
        500500 * 64 / 117266
    )
    d = e.to_dict()
    assert d["phases"][0]["batches"]["images"] == [0, 63936]
    assert d["phases"][0]["batches"]["epochs"][1] == pytest.approx(63936 / 117266)
    assert d["phases"][-1]["batches"]["images"] == [500500 * 64, None]


def test_sgdr_cycles_by_hand() -> None:
    text = net(
        "learning_rate=0.01",
        "learning_rate_min=0.0001",
        "burn_in=200",
        "policy=sgdr",
        "sgdr_cycle=1000",
        "sgdr_mult=2",
        "max_batches=7000",
    )
    e = ex(text)
    assert spans(e) == [
        ("burn-in", 1, 199),
        ("cycle", 200, 1000),
        ("cycle", 1001, 3000),
        ("cycle", 3001, 7000),
        ("after-end", 7001, None),
    ]
    # the batch that ends a cycle gives exactly learning_rate_min; the next restarts near lr
    assert [p.lr_last for p in e.phases[1:4]] == [f32(0.0001)] * 3
    assert all(abs(p.lr_first - f32(0.01)) < 1e-7 for p in e.phases[2:4])


def test_many_cycles_are_summarised() -> None:
    text = net("policy=sgdr", "sgdr_cycle=10", "sgdr_mult=1", "max_batches=1000")
    e = ex(text)
    kinds = [p.kind for p in e.phases]
    assert kinds == ["cycle"] * 3 + ["summary"] + ["cycle"] * 2 + ["after-end"]
    summary = e.phases[3]
    assert (summary.first, summary.last) == (
        31,
        980,
    ) and "95 more cycles" in summary.note
    assert (e.phases[-2].first, e.phases[-2].last) == (991, 1000)


def test_huge_schedules_are_summarised_without_enumerating() -> None:
    big = 2**31 - 1
    e = ex(net("policy=sgdr", "sgdr_cycle=1", "sgdr_mult=1", f"max_batches={big}"))
    summary = next(p for p in e.phases if p.kind == "summary")
    assert (summary.first, summary.last) == (4, big - 2)
    assert f"{big - 5} more cycles" in summary.note
    assert [p.first for p in e.phases if p.kind == "cycle"] == [1, 2, 3, big - 1, big]
    # step: plateaus every 100 batches from burn_in 250 to 300000
    e = ex(
        net("policy=step", "step=100", "scale=0.9", "burn_in=250", "max_batches=300000")
    )
    assert spans(e) == [
        ("burn-in", 1, 249),
        ("plateau", 250, 299),
        ("plateau", 300, 399),
        ("plateau", 400, 499),
        ("plateau", 500, 599),
        ("summary", 600, 299899),
        (
            "plateau",
            299900,
            300000,
        ),  # the last two plateaus are both 0 (underflow): merged
        ("after-end", 300001, None),
    ]
    assert "2993 more plateaus" in e.phases[5].note
    assert e.phases[5].lr_first == f32(f32(0.001) * f32(0.9) ** 6)


@pytest.mark.parametrize(
    ("power", "word"), [("4", "rising again"), ("1", "negative"), ("0.5", "NaN")]
)
def test_poly_past_max_batches(power: str, word: str) -> None:
    e = ex(net("policy=poly", f"power={power}", "max_batches=1000"))
    assert spans(e) == [("decay", 1, 1000), ("after-end", 1001, None)]
    assert e.phases[0].lr_last == 0.0
    assert word in e.phases[-1].note
    after = e.phases[-1].lr_first
    if word == "negative":
        assert after < 0
    elif word == "NaN":
        assert np.isnan(after)
    else:
        assert after > 0


def test_step_policy_plateaus() -> None:
    e = ex(net("policy=step", "step=100", "scale=0.5", "max_batches=350"))
    assert spans(e) == [
        ("constant", 1, 99),
        ("plateau", 100, 199),
        ("plateau", 200, 299),
        ("plateau", 300, 350),
        ("after-end", 351, None),
    ]
    assert [p.lr_first for p in e.phases[:4]] == [f32(0.001 * 0.5**k) for k in range(4)]


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=5))
def test_steps_plateaus_are_constant_and_cover_training(steps: list[int]) -> None:
    scales = ",".join([".5"] * len(steps))
    text = net(
        "max_batches=6000",
        "policy=steps",
        f"steps={','.join(map(str, steps))}",
        f"scales={scales}",
    )
    s = parse(text, source="t.cfg")
    e = explain(s)
    phases = [p for p in e.phases if p.kind != "after-end"]
    assert phases[0].first == 1 and phases[-1].last == 6000
    for a, b in itertools.pairwise(phases):
        assert b.first == (a.last or 0) + 1 and a.lr_first != b.lr_first

    # independent: darknet's loop in cfg order, at the first and last batch of each phase
    def rate(b: int) -> float:
        r = f32(0.001)
        for st_ in steps:
            if st_ > b:
                break
            r = f32(r * f32(0.5))
        return r

    for p in phases:
        assert p.lr_first == rate(p.first) == rate(p.last or 0) == p.lr_last


def test_gpus_per_fork() -> None:
    text = net("learning_rate=0.0013", "burn_in=1000", "max_batches=10000")
    m = ex(text, gpus=4).multigpu
    assert m is not None and m.multiplies_lr and m.lr_used == f32(f32(0.0013) * 4)
    assert m.advised_lr == f32(f32(0.0013) / 4) and m.advised_burn_in == 4000
    h = ex(text, gpus=4, fork="hankai").multigpu
    assert h is not None and not h.multiplies_lr and h.lr_used == f32(0.0013)
    assert h.advised_lr is None and any("one GPU until burn_in" in n for n in h.notes)
    assert ex(text).multigpu is None
    # GPU 0's counter (DESIGN.md §3): pjreddie b = 4n*floor((k-1)/4) + ((k-1) mod 4) + 1
    ab = ex(text, gpus=2).multigpu
    assert ab is not None and list(ab.gpu0_batches[:5]) == [1, 3, 9, 7, 13]
    pj = ex(text, gpus=2, fork="pjreddie").multigpu
    assert pj is not None
    assert list(pj.gpu0_batches) == [
        8 * ((k - 1) // 4) + (k - 1) % 4 + 1 for k in range(1, 13)
    ]


def test_json_schema_and_nonfinite_points() -> None:
    e = ex(net("policy=poly", "max_batches=0"), at=[0, 1])
    d = json.loads(e.to_json())
    assert d["schema"] == SCHEMA == "cfgsched-explain/1"
    assert set(d) == {
        "schema", "source", "fork", "policy", "learning_rate", "burn_in", "power",
        "max_batches", "batch", "subdivisions", "images_per_iteration", "dataset_images",
        "phases", "points", "multigpu", "warnings",
    }  # fmt: skip
    # max_batches 0: NaN at b = 0, +inf after (golden poly_max_batches_0)
    assert d["points"] == [
        {"batch": 0, "step": -1, "lr": "nan"},
        {"batch": 1, "step": 0, "lr": "inf"},
    ]
    assert {"W208"} <= {w["code"] for w in d["warnings"]}
    assert set(d["phases"][0]) == {"kind", "batches", "lr_first", "lr_last", "note"}


# ----------------------------------------------------------------------------- CLI


def test_cli_text_and_json(tmp_path: Path) -> None:
    cfg = tmp_path / "a.cfg"
    cfg.write_text(
        net(
            "burn_in=100",
            "max_batches=1000",
            "policy=steps",
            "steps=800,900",
            "scales=.1,.1",
        )
    )
    r = CliRunner().invoke(
        main, ["explain", str(cfg), "--at", "1,100,800", "--images", "6400"]
    )
    assert r.exit_code == 0, r.output
    assert "burn-in" in r.output and "epochs" in r.output
    assert "b=800  i=799  lr=0.0001" in r.output
    r = CliRunner().invoke(main, ["explain", str(cfg), "--json", "--gpus", "2"])
    d = json.loads(r.output)
    assert r.exit_code == 0 and d["multigpu"]["gpus"] == 2
    assert [p["batch"] for p in d["points"]] == [
        1,
        99,
        100,
        799,
        800,
        899,
        900,
        1000,
        1001,
    ]


def test_cli_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "a.cfg"
    cfg.write_text(
        net("max_batches=1000", "policy=steps", "steps=800,900", "scales=.1")
    )
    r = CliRunner().invoke(main, ["explain", str(cfg)])
    assert r.exit_code == 2 and f"{cfg}:10:" in r.output and "scales" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["explain", str(cfg), "--fork", "hankai", "--at", "x"])
    assert r.exit_code == 2 and "--at" in r.output
    assert (
        CliRunner().invoke(main, ["explain", str(tmp_path / "no.cfg")]).exit_code == 2
    )
    good = tmp_path / "good.cfg"
    good.write_text(net("max_batches=1000"))
    for at in ("-1", str(2**63), ",", "1,x"):
        r = CliRunner().invoke(main, ["explain", str(good), "--at", at])
        assert (
            r.exit_code == 2 and "--at" in r.output and "Traceback" not in r.output
        ), at


@needs_darknet_cfgs
def test_subprocess_and_no_heavy_imports() -> None:
    cfg = str(DARKNET_CFGS / "yolov4.cfg")
    r = subprocess.run(
        [CFGSCHED, "explain", cfg, "--json", "--at", "400000"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["points"] == [
        {"batch": 400000, "step": 399999, "lr": f32(f32(0.0013) * f32(0.1))}
    ]
    code = (
        "import sys\nfrom cfgsched.cli import main\n"
        f"sys.argv = ['cfgsched', 'explain', {cfg!r}, '--gpus', '4']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert not {'torch', 'matplotlib'} & set(sys.modules), 'heavy import'\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
