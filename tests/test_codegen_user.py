"""What a user of a generated module sees: DECAY everywhere, the import name from -o,
plain grammar, the JSON document's schedule and LR values, and the size of a module
for a cfg with a million steps (issue 15, items 11, 12 and 19)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import cfgsched
from cfgsched.cli import main
from cfgsched.codegen import generate
from cfgsched.options import Options
from cfgsched.run import translate
from tests import modules

ROOT = Path(__file__).resolve().parents[1]
YOLOV4 = ROOT / "sample_cfgs" / "yolov4.cfg"
HEAD = "[net]\nwidth=32\nheight=32\nchannels=3\n"
ONE_IMAGE = HEAD + "batch=1\nsubdivisions=1\nmax_batches=100\ndecay=0.0007\n"


def convert(*args: str) -> str:
    res = CliRunner().invoke(main, ["convert", *args])
    assert res.exit_code == 0, res.output
    return res.stdout


def docstring(src: str) -> str:
    return src.split('"""')[1]


@pytest.mark.parametrize(
    "args",
    [[], ["--style", "native"], ["--format", "ultralytics"], ["--format", "mmengine"]],
)
def test_every_module_carries_decay(tmp_path: Path, args: list[str]) -> None:
    """Item 11: DECAY is the cfg's decay without --with-optimizer, and the quick start
    builds the optimizer with it."""
    cfg = tmp_path / "c.cfg"
    cfg.write_text(ONE_IMAGE + "learning_rate=0.01\n")
    src = convert(str(cfg), *args)
    assert re.search(r"^DECAY = ", src, re.M)
    consts = modules.load(src, "gen_decay")
    assert consts.DECAY == cfgsched.parse(cfg.read_text()).decay
    if not args or args[0] == "--style":
        assert re.search(r"weight_decay=(\w+\.)?DECAY", docstring(src))


@pytest.mark.parametrize(
    ("fmt", "usage"),
    [
        ("python", "from my_sched import"),
        ("lightning", "import my_sched"),
        ("ultralytics", "import my_sched"),
        ("mmengine", 'imports=["my_sched"]'),
    ],
)
def test_docstring_imports_the_file_named_by_output(
    tmp_path: Path, fmt: str, usage: str
) -> None:
    """Item 12: the usage names the module -o wrote, not a fixed lr_schedule."""
    out = tmp_path / "my_sched.py"
    convert(str(YOLOV4), "--format", fmt, "-o", str(out))
    doc = docstring(out.read_text())
    assert usage in doc
    assert "lr_schedule" not in doc and "darknet_lr" not in doc


@pytest.mark.parametrize("name", ["my-sched.py", "class.py", "lr.txt", "ä.py"])
def test_a_name_python_cannot_import_is_not_pasted(tmp_path: Path, name: str) -> None:
    """A file name that is no module name is never written into the module: the
    docstring says how to import it instead."""
    out = tmp_path / name
    convert(str(YOLOV4), "-o", str(out))
    src = out.read_text(encoding="utf-8")
    stem = name.rsplit(".", 1)[0]
    assert not re.search(rf"(import|from) {re.escape(stem)}\b", src)
    assert "save it as lr_schedule.py" in " ".join(docstring(src).split())


def test_stdout_default_module_names() -> None:
    assert "from lr_schedule import" in convert(str(YOLOV4))
    assert "import darknet_lr" in convert(str(YOLOV4), "--format", "ultralytics")


def test_no_one_images(tmp_path: Path) -> None:
    """Item 12: "1 images" nowhere in what convert prints or writes."""
    cfg = tmp_path / "one.cfg"
    cfg.write_text(ONE_IMAGE + "policy=poly\n")
    weights = tmp_path / "w.weights"
    weights.write_bytes(
        np.array([0, 2, 0], "<i4").tobytes() + (5).to_bytes(8, "little")
    )
    for fmt in ("python", "ultralytics", "mmengine", "lightning"):
        for extra in ([], ["--resume-from", str(weights)]):
            res = CliRunner().invoke(
                main, ["convert", str(cfg), "--format", fmt, *extra]
            )
            assert res.exit_code == 0, res.output
            assert not re.search(r"\b1 images\b", res.stdout + res.stderr), fmt


def json_doc(cfg_text: str, *args: str) -> dict[str, object]:
    res = CliRunner().invoke(
        main, ["convert", "-", "--format", "json", *args], input=cfg_text
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_json_holds_what_the_policy_uses_and_its_boundary_lrs() -> None:
    """Item 12: only the keys the policy reads, images_per_iteration once, and the LR at
    each boundary (the first step trained, burn-in end, each step, max_batches)."""
    doc = json_doc(YOLOV4.read_text())
    text = json.dumps(doc)
    assert text.count('"images_per_iteration":') == 1
    sched = doc["schedule"]
    assert isinstance(sched, dict)
    for ignored in ("scale", "gamma", "b1", "b2", "eps", "sgdr_cycle", "step"):
        assert ignored not in sched, ignored
    assert sched["steps"] == [400000, 450000] and sched["decay"] > 0
    s = cfgsched.parse(YOLOV4.read_text())
    t = translate(s, Options())
    rows = doc["boundaries"]
    assert isinstance(rows, list)
    assert [r["batch"] for r in rows] == [1, 1000, 400000, 450000, 500500]
    for r in rows:
        assert r["lr"] == t.lr(r["step"]) and t.batch(r["step"]) == r["batch"]
    assert rows[1]["lr"] == s.learning_rate


def test_json_adam_and_step_keys() -> None:
    text = HEAD + "adam=1\nB1=0.8\npolicy=step\nstep=10\nscale=0.5\nmax_batches=30\n"
    doc = json_doc(text, "--gpus", "2")
    sched = doc["schedule"]
    assert isinstance(sched, dict)
    assert sched["b1"] == pytest.approx(0.8) and sched["scale"] == 0.5
    assert "steps" not in sched and "gamma" not in sched
    t = translate(cfgsched.parse(text), Options(ngpus=2))
    rows = doc["boundaries"]
    assert isinstance(rows, list)
    assert [(r["step"], r["lr"]) for r in rows] == [(i, t.lr(i)) for i in (0, 4, 9, 14)]


def million_step_cfg() -> str:
    """A 4 MiB cfg of 830,003 steps: a run of 750,000 equal steps, a run of 80,000
    evenly spaced ones with one scale, and three odd ones before them."""
    steps = [3, 7, 8, *[9] * 750_000, *range(100_000, 180_000)]
    scales = ["1", ".5", "2", *["1"] * 750_000, *[".99999"] * 80_000]
    return (
        HEAD
        + "learning_rate=0.01\nburn_in=5\npolicy=steps\nmax_batches=200000\n"
        + f"steps={','.join(map(str, steps))}\nscales={','.join(scales)}\n"
    )


def test_a_million_steps_make_a_small_exact_module() -> None:
    """Item 19: runs of evenly spaced steps with one scale are written as ranges; the
    module stays exact at every boundary, through lr_at and the stepped scheduler."""
    text = million_step_cfg()
    assert len(text) < 4 * 1024 * 1024
    s = cfgsched.parse(text, source="big.cfg")
    src = generate(s)
    assert len(src) < 8 * 1024, len(src)
    near = {
        b + d for b in (2, 3, 5, 7, 8, 9, 100_000, 140_001, 179_999) for d in (-2, -1)
    }
    edges = np.array(sorted(near | {199_999}), dtype=np.int64)
    want = translate(s).lrs(edges)
    with modules.cfgsched_blocked():
        m = modules.load(src, "gen_million")
        got = [m.lr_at(int(i)) for i in edges]
        opt = modules.sgd(m)
        stepped = []
        for i in edges:  # the scheduler resumed with i steps done holds step i's LR
            m.build_scheduler(opt, last_epoch=int(i) - 1)
            stepped.append(opt.param_groups[0]["lr"])
    np.testing.assert_array_equal(np.float32(got).view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(
        np.float32(stepped).view(np.uint32), want.view(np.uint32)
    )


@pytest.mark.parametrize(
    "kw",
    [{}, {"style": "native"}, {"fmt": "lightning"}, {"with_optimizer": True}],
    ids=["class", "native", "lightning", "with-optimizer"],
)
def test_another_optimizer_lr_warns_unless_rescale(kw: dict[str, Any]) -> None:
    """Item 7: build_scheduler on an optimizer whose lr is not LEARNING_RATE scales every
    LR: it warns once with both values and the ratio; rescale=True opts in."""
    import torch

    src = generate(cfgsched.parse(ONE_IMAGE + "learning_rate=0.01\n"), **kw)
    m = modules.load(src, f"gen_rescale_{'_'.join(map(str, kw.values()))}")
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.warns(UserWarning) as caught:
        m.build_scheduler(torch.optim.SGD(params, lr=0.1))
    (w,) = [c for c in caught if "rescale=True" in str(c.message)]
    assert (
        "lr 0.1 is not the cfg's learning_rate 0.01: every LR is scaled by 10x"
        in str(w.message)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.build_scheduler(torch.optim.SGD(params, lr=0.1), rescale=True)
        m.build_scheduler(torch.optim.SGD(params, lr=0.01))


@pytest.mark.parametrize("fmt", ["python", "lightning"])
def test_build_optimizers_own_scaling_does_not_warn(fmt: str) -> None:
    """A summed loss makes build_optimizer's lr LEARNING_RATE / N on purpose: the usage
    (and configure_optimizers) pass rescale=True, and that does not warn."""
    import torch

    src = generate(
        cfgsched.parse(ONE_IMAGE + "learning_rate=0.01\n"),
        fmt=fmt,
        with_optimizer=True,
        loss_reduction="sum",
        summed_images=8,
    )
    m = modules.load(src, f"gen_own_scale_{fmt}")
    model = torch.nn.Linear(2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if fmt == "lightning":
            m.configure_optimizers(model)
        else:
            assert "build_scheduler(optimizer, rescale=True)" in docstring(src)
            m.build_scheduler(m.build_optimizer(model), rescale=True)
    with pytest.warns(UserWarning, match="every LR is scaled by 0.125x"):
        m.build_scheduler(m.build_optimizer(model))
