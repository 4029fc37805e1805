"""cfgsched explain: phases, boundary LRs (golden), images/epochs, -gpus, JSON, CLI."""

from __future__ import annotations

import importlib
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
from cfgsched.options import Options
from cfgsched.reader.parser import parse
from cfgsched.run import translate
from cfgsched.tools.explain import SCHEMA, Explanation, explain, render
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


def ex(
    text: str,
    gpus: int = 1,
    fork: str = "alexeyab",
    options: Options | None = None,
    source: str = "t.cfg",
    **kw: object,
) -> Explanation:
    """Explain ``text`` parsed with ``fork`` (options: ``options`` or ``--gpus gpus``)."""
    run = translate(
        parse(text, fork=fork, source=source), options or Options(ngpus=gpus)
    )
    return explain(run, **kw)  # type: ignore[arg-type]


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
        assert p.step == (p.batch - 1 if p.batch > 0 else None)
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
    assert e.run.images_per_iteration == 64
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
    e = explain(translate(s))
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


def test_json_schema_and_nonfinite_points(tmp_path: Path) -> None:
    cfg = tmp_path / "p.cfg"
    cfg.write_text(net("policy=poly", "max_batches=0"))
    r = CliRunner().invoke(main, ["explain", str(cfg), "--json", "--at", "0,1"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["schema"] == SCHEMA == "cfgsched-explain/2"
    assert set(d) == {
        "schema", "source", "fork", "policy", "learning_rate", "burn_in", "power",
        "max_batches", "batch", "subdivisions", "images_per_iteration", "dataset_images",
        "translation", "phases", "points", "multigpu", "warnings", "layers",
    }  # fmt: skip
    # max_batches 0: NaN at b = 0, +inf after (golden poly_max_batches_0); no optimizer
    # step is evaluated at b = 0 (step i is at b = i + 1)
    assert d["points"] == [
        {"step": None, "batch": 0, "lr": "nan"},
        {"step": 0, "batch": 1, "lr": "inf"},
    ]
    assert {"W208"} <= {w["code"] for w in d["warnings"]}  # lint's findings
    assert set(d["phases"][0]) == {
        "kind", "batches", "step", "lr_first", "lr_last", "note"
    }  # fmt: skip
    assert d["translation"]["options"] == Options().to_record()
    assert d["translation"]["mapping"] == "b = i + 1"


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
    # each phase's first and last step: with -gpus 2 the steps land on even batches
    pts = d["points"]
    assert [p["batch"] for p in pts] == [2, 98, 100, 798, 800, 898, 900, 1000, 1002]
    assert [p["step"] for p in pts] == [p["batch"] // 2 - 1 for p in pts]


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
        {"step": 399999, "batch": 400000, "lr": f32(f32(0.0013) * f32(0.1))}
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


# ----------------------------------------------------------------------------- translation

YOLOV4 = Path(__file__).resolve().parents[1] / "sample_cfgs" / "yolov4.cfg"


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["explain", *args])
    return r.exit_code, r.output


def test_gpus_shows_the_lr_the_torch_run_trains_with() -> None:
    """issue 8: `explain yolov4.cfg --gpus 4 --at 1000` shows 0.0052 (alexeyab: LR x 4),
    at optimizer step 249 (b = 4(i + 1)); the phase table starts each phase at its step."""
    code, out = cli(str(YOLOV4), "--gpus", "4", "--at", "1000,999")
    assert code == 0, out
    assert "b=1,000  i=249  lr=0.0052" in out
    assert "b=  999  i=  -  lr=0.00517923" in out  # no step is evaluated at b = 999
    d = json.loads(cli(str(YOLOV4), "--gpus", "4", "--json", "--at", "1000")[1])
    assert d["points"] == [{"step": 249, "batch": 1000, "lr": f32(f32(0.0013) * 4)}]
    firsts = {p["kind"] + str(p["batches"]["first"]): p["step"] for p in d["phases"]}
    # the first step whose batch 4(i + 1) reaches each phase's first batch
    assert firsts == {
        "burn-in1": 0, "plateau1000": 249, "plateau400000": 99_999,
        "plateau450000": 112_499, "after-end500501": 125_125,
    }  # fmt: skip
    assert d["translation"]["learning_rate"] == f32(f32(0.0013) * 4)
    assert d["translation"]["options"]["ngpus"] == 4
    hk = json.loads(
        cli(str(YOLOV4), "--fork", "hankai", "--gpus", "4", "--json", "--at", "1000")[1]
    )
    assert hk["points"][0]["lr"] == f32(0.0013)  # hankai does not scale


def test_at_step_under_torch_batch_and_accumulation() -> None:
    """--torch-batch 16 --accumulate 2: 32 images per step, b = (i + 1)·32 // 64."""
    args = [str(YOLOV4), "--torch-batch", "16", "--accumulate", "2", "--json"]
    d = json.loads(cli(*args, "--at-step", "0,1,1999,2000", "--at", "1000,1001")[1])
    s = parse(YOLOV4.read_text())
    p = s.kernel_params()
    from cfgsched.policies import rate

    want_steps = [(0, 0), (1, 1), (1999, 1000), (2000, 1000)]
    assert d["points"][2:] == [
        {"step": i, "batch": b, "lr": rate(p, b)} for i, b in want_steps
    ]
    # --at b: the first step evaluated at b: (1999 + 1)·32 // 64 = 1000
    assert d["points"][:2] == [
        {"step": 1999, "batch": 1000, "lr": rate(p, 1000)},
        {"step": 2001, "batch": 1001, "lr": rate(p, 1001)},
    ]
    assert d["translation"]["images_per_step"] == 32
    assert d["translation"]["mapping"] == "b = (i + 1)*32 // 64 (32 images per step)"


def test_ideal_double_and_trace() -> None:
    text = YOLOV4.read_text()
    e = ex(text, options=Options(ngpus=4, ideal=True), at=[4000])
    # AlexeyAB's advice: lr / 4 (then x 4 by the fork), burn_in 4000
    assert [(p.kind, p.first, p.step) for p in e.phases][:2] == [
        ("burn-in", 1, 0),
        ("plateau", 4000, 999),
    ]
    assert e.points == (type(e.points[0])(4000, 999, f32(f32(f32(0.0013) / 4) * 4)),)
    d = ex(text, options=Options(exact=False), at=[333])
    want = f32(0.0013) * (333 / 1000) ** 4  # the float32 parameter, double arithmetic
    assert d.points[0].lr == want != f32(want)
    t = ex(text, options=Options(ngpus=2, multigpu="trace"), at_steps=[0, 1, 2, 3])
    # GPU 0's batch counter with 2 GPUs (DESIGN.md §3): 1, 3, 9, 7
    assert [p.batch for p in t.points] == [1, 3, 9, 7]
    assert t.run is not None and "trace" in t.run.mapping


def test_resume_shows_where_the_run_starts() -> None:
    e = ex(YOLOV4.read_text(), options=Options(resume_iteration=1234))
    assert (e.run.start, e.run.batch(e.run.start)) == (1234, 1235)
    assert "resumes at step i = 1,234 (darknet batch b = 1,235)" in __import__(
        "cfgsched.tools.explain", fromlist=["render"]
    ).render(e)


def test_numeric_options_are_bounded_one_line() -> None:
    for args, text in [
        (["--at", "100000000000000000000"], "--at"),
        (["--at-step", "100000000000000000000"], "--at-step"),
        (["--at-step", "9223372036854775807"], "beyond int64"),
        (["--at-step", "x"], "--at-step"),
        (["--at-step", "-3"], "--at-step"),
        (["--images", "100000000000000000000"], "--images"),
        (["--gpus", "100000000000000000000"], "--gpus"),
        (["--torch-batch", "100000000000000000000"], "--torch-batch"),
        (["--scratch"], "--scratch"),
        (["--ideal"], "--ideal"),
    ]:
        r = subprocess.run(
            [CFGSCHED, "explain", str(YOLOV4), *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert r.returncode == 2, (args, r.stderr)
        assert text in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            args,
            r.stderr,
        )
        assert "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- issue 15


YOLOV4_TEXT = YOLOV4.read_text()


def test_gpus_phase_lrs_are_the_steps_lrs() -> None:
    """--gpus 4: step 0 trains at b = 4 with learning_rate x 4, never at b = 1."""
    from cfgsched.oracle import darknet_lr_scalar

    e = ex(YOLOV4_TEXT, gpus=4)
    s = parse(YOLOV4_TEXT)
    trained = s.with_values(learning_rate=f32(s.learning_rate * 4))
    burn = e.phases[0]
    assert (burn.kind, burn.first, burn.step) == ("burn-in", 1, 0)
    assert burn.lr_first == darknet_lr_scalar(trained, 4)  # step 0's LR, 1.33e-12
    assert burn.lr_last == darknet_lr_scalar(trained, 996)  # step 248, the last in it
    assert burn.lr_first != darknet_lr_scalar(trained, 1)
    for p in e.phases:
        assert p.step is not None and p.lr_first is not None
        assert p.lr_first == darknet_lr_scalar(trained, 4 * (p.step + 1))
    assert all(pt.step is not None for pt in e.points)  # every point is a step's


def test_torch_batch_steps_at_batch_zero_are_a_phase() -> None:
    """--torch-batch 16 on batch=64: steps 0-2 are at b = 0 (LR 0), before burn-in."""
    e = ex(YOLOV4_TEXT, options=Options(images_per_step=16))
    first, burn = e.phases[0], e.phases[1]
    assert (first.first, first.last, first.step) == (0, 0, 0)
    assert first.lr_first == first.lr_last == 0.0
    assert (burn.kind, burn.first, burn.step) == ("burn-in", 1, 3)
    run = translate(parse(YOLOV4_TEXT), Options(images_per_step=16))
    for i in range(0, 8000, 7):  # every step belongs to the phase holding its batch
        b = run.batch(i)
        assert any(
            p.first <= b and (p.last is None or b <= p.last) and p.step is not None
            for p in e.phases
        ), i
    d = e.to_dict()["phases"][0]
    assert d["batches"]["images"] == [0, 0] and d["step"] == 0


def test_phase_without_a_step_shows_no_lr() -> None:
    """--gpus 4 with burn_in=2: burn-in is b = 1 only, which no step trains at."""
    text = net("burn_in=2", "max_batches=100", "policy=constant")
    e = ex(text, gpus=4)
    burn = e.phases[0]
    assert burn.kind == "burn-in" and burn.lr_first is None and burn.step is None
    assert "no optimizer step trains here" in burn.note
    row = next(r for r in render(e).splitlines() if r.strip().startswith("burn-in"))
    assert " - " in row and "no optimizer step" in row
    assert e.to_dict()["phases"][0]["lr_first"] is None


@pytest.mark.parametrize("power", ["inf", "-inf", "nan", "1e39"])
def test_non_finite_power_explains_without_traceback(power: str) -> None:
    text = net("burn_in=100", f"power={power}", "max_batches=1000", "policy=poly")
    for extra in ([], ["--json"], ["--at", "5"]):
        r = subprocess.run(
            [CFGSCHED, "explain", "-", *extra],
            input=text, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert "Traceback" not in r.stderr, (power, extra, r.stderr)
        assert r.returncode == 0, (power, extra, r.stderr)
        assert "--at" not in r.stderr


def test_help_points_to_the_json_schema_docs() -> None:
    r = CliRunner().invoke(main, ["explain", "--help"])
    assert r.exit_code == 0 and "docs/commands.md" in r.output
    assert "README" not in r.output
    docs = Path(__file__).resolve().parents[1] / "docs" / "commands.md"
    assert "cfgsched-explain/2" in docs.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["--gpus", "\u0663"],
        ["--gpus", "\uff14"],
        ["--torch-batch", "\U0001d7d1\U0001d7d4"],
        ["--torch-batch", "16", "--accumulate", "\u0662"],
        ["--images", "\uff15\uff10\uff10"],
        ["--at", "\u0663"],
        ["--at-step", "1,\uff15"],
        ["--gpus", "+4"],
    ],
)
def test_numeric_options_take_ascii_digits_only(args: list[str]) -> None:
    r = subprocess.run(
        [CFGSCHED, "explain", str(YOLOV4), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 2, (args, r.stdout[:200])
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert args[-2] in r.stderr


# ----------------------------------------------------------------------------- issue 14/15


def _stop_cfg(stop: int, at: int = 2) -> str:
    """Four conv layers; ``stopbackward=stop`` on layer ``at``."""
    layers = ""
    for k in range(4):
        layers += "\n[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
        layers += f"stopbackward={stop}\n" if k == at else ""
    head = "[net]\nbatch=8\nsubdivisions=1\nwidth=8\nheight=8\nchannels=3\n"
    return head + "learning_rate=0.01\nmax_batches=2000\npolicy=constant\n" + layers


def _layers(tmp_path: Path, text: str, *args: str) -> list[dict[str, object]]:
    cfg = tmp_path / "s.cfg"
    cfg.write_text(text)
    r = CliRunner().invoke(main, ["explain", str(cfg), "--json", *args])
    assert r.exit_code == 0, r.output
    keys = {"first", "last", "rule", "line", "gradient_from", "updated", "lr_scale"}
    doc = json.loads(r.output)["layers"]
    assert all(keys <= set(d) for d in doc)
    return [
        {k: d[k] for k in ("first", "last", "gradient_from", "updated")} for d in doc
    ]


@pytest.mark.parametrize(
    ("fork", "build", "want"),
    [
        ("alexeyab", "gpu", [(0, 2, 801, True)]),
        ("alexeyab", "cpu", [(0, 2, None, True)]),
        ("hankai", "gpu", [(0, 1, None, False), (2, 2, 801, True)]),
        ("pjreddie", "gpu", [(0, 2, None, True)]),
    ],
)
def test_explain_json_layers_stopbackward_800(
    tmp_path: Path, fork: str, build: str, want: list[tuple[object, ...]]
) -> None:
    """docs/design.md (DESIGN section 8): one stopbackward=800 at layer 2, per fork/build."""
    got = _layers(tmp_path, _stop_cfg(800), "--fork", fork, "--build", build)
    keys = ("first", "last", "gradient_from", "updated")
    assert got == [dict(zip(keys, w, strict=True)) for w in want]


def test_explain_says_the_layer_schedule_in_words() -> None:
    e = ex(_stop_cfg(800), options=Options(build="gpu"))
    text = render(e)
    line = _stop_cfg(800).splitlines().index("stopbackward=800") + 1
    assert (
        "layers 0-2 get no gradient in updates 1-800 (darknet's decay and momentum "
        f"still move them) (stopbackward, line {line})" in text
    )
    hk = render(ex(_stop_cfg(800), fork="hankai", options=Options()))
    assert "layers 0-1 get no gradient, are never updated" in hk
    assert "with batch-norm in inference mode (stopbackward" in hk


def test_explain_layer_rules_sample(tmp_path: Path) -> None:
    """sample_cfgs/layer-rules.cfg: stopbackward=30, dont_update=20, learning_rate=0.5."""
    cfg = Path(__file__).parents[1] / "sample_cfgs" / "layer-rules.cfg"
    text = render(ex(cfg.read_text(), source="l.cfg"))
    assert "layers 0-1 get no gradient in updates 1-30 (" in text
    assert "layer 2 skips updates 1-20" in text
    assert "land at update 21) (dont_update, line 33)" in text
    assert "layer 3 trains at 0.5 x the rate (learning_rate, line 40)" in text
    cpu = _layers(tmp_path, cfg.read_text(), "--build", "cpu")
    assert cpu[0] == {"first": 0, "last": 1, "gradient_from": None, "updated": True}
    assert "layer schedule" not in render(ex(net("max_batches=10")))
    assert ex(net("max_batches=10")).to_dict()["layers"] == []


def test_explain_header_escapes_the_file_name() -> None:
    for name in ("a\x1b[31mb.cfg", "evil\u202egfc.cfg"):
        head = render(ex(net("max_batches=10"), source=name)).splitlines()[0]
        assert head.isprintable() and "\x1b" not in head and "\u202e" not in head
        assert head.startswith(("a\\x1b[31mb.cfg:", "evil\\u202egfc.cfg:"))


def test_random_says_the_values_are_seeded_draws() -> None:
    text = render(ex(net("policy=random", "max_batches=100", "power=2")))
    assert "cfgsched's seeded draws, not darknet's rand()" in text.splitlines()[0]
    phase = next(p for p in ex(net("policy=random", "max_batches=100")).phases)
    assert "cfgsched's seeded draws, not darknet's rand()" in phase.note


def _count_translate(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every call of cfgsched.run.translate, whatever module named it (every
    module that names it is loaded first: one imported while the counter is in place
    would keep the counter after the test)."""
    from cfgsched import run as run_module

    for name in (
        "tools.diff",
        "tools.lint",
        "tools.explain",
        "tools.plot",
        "codegen",
        "adapters.approx",
        "adapters.native",
    ):
        importlib.import_module(f"cfgsched.{name}")
    for name in ("convert", "diff", "explain", "lint", "plot"):
        importlib.import_module(f"cfgsched.cli.{name}")

    calls: list[int] = []
    real = run_module.translate

    def counted(*a: object, **k: object) -> object:
        calls.append(1)
        return real(*a, **k)  # type: ignore[arg-type]

    for name, mod in list(sys.modules.items()):
        if name.startswith("cfgsched") and getattr(mod, "translate", None) is real:
            monkeypatch.setattr(mod, "translate", counted)
    return calls


@pytest.mark.parametrize(
    "args",
    [
        ["explain", "sample_cfgs/yolov4.cfg"],
        ["explain", "sample_cfgs/yolov4.cfg", "--gpus", "4", "--json"],
        ["diff", "tests/../sample_cfgs/classifier-poly.cfg", "--style", "native"],
    ],
)
def test_translate_once_per_command(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parents[1])
    calls = _count_translate(monkeypatch)
    r = CliRunner().invoke(main, args)
    assert r.exit_code in (0, 1), r.output
    assert len(calls) == 1, (args, len(calls))
