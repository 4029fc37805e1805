"""The module ``cfgsched convert`` writes: standalone, exact, picklable, safe, ruff-formatted.

Generated modules are run in a subprocess where cfgsched cannot be imported (checked) and
compared with cfgsched's oracle (``darknet_lr``, ``multigpu_trace``).
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import cfgsched
from cfgsched import NetSchedule, darknet_lr, multigpu_trace
from cfgsched.cli import main
from cfgsched.codegen import JSON_SCHEMA, CodegenError, generate, safe_name
from tests.golden import GOLDEN, float_to_bits

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_cfgs"
RUFF = Path(sys.executable).parent / "ruff"

STEPS_CFG = """[net]
batch=64
subdivisions=16
learning_rate=0.001
momentum=0.9
decay=0.0005
policy=steps
steps=400,450
scales=.1,.1
max_batches=500
"""


def convert(
    tmp_path: Path, cfg: Path | str, *args: str, name: str = "lr_schedule.py"
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / name
    res = CliRunner().invoke(main, ["convert", str(cfg), "-o", str(out), *args])
    assert res.exit_code == 0, res.output
    return out


def write_cfg(tmp_path: Path, text: str, name: str = "net.cfg") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


PRELUDE = """
import json, os, pickle, sys
sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "cfgsched"))]
try:
    import cfgsched
    BLOCKED = False
except ImportError:
    BLOCKED = True
sys.path.insert(0, MODULE_DIR)
import torch
import lr_schedule as m


def run(opt, sched, n):
    out = []
    for _ in range(n):
        out.append(float(opt.param_groups[0]["lr"]))
        opt.step()
        sched.step()
    return out


def fresh():
    w = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([w], lr=m.LEARNING_RATE, momentum=0.9)
"""


def run_isolated(module: Path, body: str) -> dict[str, Any]:
    """Run ``body`` (after PRELUDE) with ``python -I`` in the module's folder; its JSON."""
    script = module.parent / "runner.py"
    prelude = PRELUDE.replace("MODULE_DIR", repr(str(module.parent)))
    script.write_text(prelude + textwrap.dedent(body))
    if module.name != "lr_schedule.py":
        (module.parent / "lr_schedule.py").write_text(module.read_text())
    proc = subprocess.run(
        [sys.executable, "-I", str(script)],
        cwd=module.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("blocked") is True, "cfgsched was importable in the subprocess"
    return out


def bits(values: Any) -> list[int]:
    return [int(x) for x in np.asarray(values, dtype=np.float32).view(np.uint32)]


STEP_AND_PICKLE = """
opt = fresh()
sched = m.build_scheduler(opt)
first = run(opt, sched, N1)
clone = pickle.loads(pickle.dumps(sched))
after_pickle = run(clone.optimizer, clone, N2)
state = {"opt": opt.state_dict(), "sched": sched.state_dict()}
opt2 = fresh()
sched2 = m.build_scheduler(opt2)
sched2.load_state_dict(state["sched"])
opt2.load_state_dict(state["opt"])
after_state = run(opt2, sched2, N2)
uninterrupted = run(opt, sched, N2)
lr_at = {str(i): m.lr_at(i) for i in AT}
print(json.dumps({"blocked": BLOCKED, "first": first, "after_pickle": after_pickle,
                  "after_state": after_state, "uninterrupted": uninterrupted, "lr_at": lr_at}))
"""


def step_and_pickle(module: Path, n1: int, n2: int, at: list[int]) -> dict[str, Any]:
    body = (
        STEP_AND_PICKLE.replace("N1", str(n1))
        .replace("N2", str(n2))
        .replace("AT", repr(at))
    )
    return run_isolated(module, body)


@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie", "hankai"])
def test_generated_module_is_standalone_and_exact(tmp_path: Path, fork: str) -> None:
    cfg = SAMPLES / "yolov4.cfg"
    schedule = cfgsched.load(cfg, fork=fork)
    module = convert(tmp_path, cfg, "--fork", fork)
    at = [0, 998, 999, 399_998, 399_999, 449_999, 500_499]
    out = step_and_pickle(module, 1100, 300, at)
    want = darknet_lr(schedule, np.arange(1, 1401))
    assert bits(out["first"]) == bits(want[:1100])
    assert out["after_pickle"] == out["uninterrupted"] == out["after_state"]
    assert bits(out["after_state"]) == bits(want[1100:])
    assert [out["lr_at"][str(i)] for i in at] == [
        float(v) for v in darknet_lr(schedule, np.array(at) + 1)
    ]


def test_multigpu_trace_and_torch_batch_modules(tmp_path: Path) -> None:
    cfg = SAMPLES / "yolov4.cfg"
    schedule = cfgsched.load(cfg)
    trace = convert(tmp_path / "a", cfg, "--gpus", "2", "--multigpu", "trace")
    out = step_and_pickle(trace, 1300, 100, [0, 1, 2])
    t = multigpu_trace(schedule, 2, iterations=1400)
    assert bits(out["first"] + out["after_state"]) == bits(t.lr)
    # and the first 1300 iterations are what darknet's C code printed for GPU 0
    gold = json.loads((GOLDEN / "alexeyab" / "mgpu_yolov4_head.json").read_text())
    (n2,) = [tr for tr in gold["traces"] if tr["ngpus"] == 2]
    assert bits(out["first"]) == [int(h, 16) for h in n2["gpu0_lr_hex"][:1300]]

    ddp = convert(
        tmp_path / "b",
        cfg,
        "--torch-batch",
        "8",
        "--accumulate",
        "2",
        "--world-size",
        "2",
    )
    out = step_and_pickle(ddp, 500, 100, [0, 1, 2, 3])
    b = (np.arange(600) + 1) * 32 // schedule.images_per_iteration
    assert bits(out["first"] + out["after_state"]) == bits(darknet_lr(schedule, b))


def test_resume_from_weights_module(tmp_path: Path) -> None:
    cfg = SAMPLES / "yolov4.cfg"
    schedule = cfgsched.load(cfg)
    weights = tmp_path / "last.weights"
    seen = 399_990 * schedule.images_per_iteration
    weights.write_bytes(
        np.array([0, 2, 0], "<i4").tobytes() + np.array([seen], "<u8").tobytes()
    )
    module = convert(tmp_path, cfg, "--resume-from", str(weights))
    out = run_isolated(
        module,
        """
        opt = fresh()
        sched = m.build_scheduler(opt)
        print(json.dumps({"blocked": BLOCKED, "lrs": run(opt, sched, 20),
                          "resume": m.RESUME_STEP}))
        """,
    )
    assert out["resume"] == 399_990
    assert bits(out["lrs"]) == bits(darknet_lr(schedule, np.arange(399_991, 400_011)))


def test_native_style_module(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, STEPS_CFG)
    schedule = cfgsched.load(cfg)
    module = convert(tmp_path, cfg, "--style", "native")
    src = module.read_text()
    assert "torch.optim.lr_scheduler.MultiStepLR(" in src
    out = run_isolated(
        module,
        """
        opt = fresh()
        sched = m.build_scheduler(opt)
        name = type(sched).__name__
        lrs = run(opt, sched, 500)
        opt2 = fresh()
        resumed = run(opt2, m.build_scheduler(opt2, last_epoch=420), 79)
        print(json.dumps({"blocked": BLOCKED, "lrs": lrs, "resumed": resumed, "name": name}))
        """,
    )
    assert out["name"] == "MultiStepLR"
    want = darknet_lr(schedule, np.arange(1, 501))
    assert bits(out["lrs"]) == bits(
        want
    )  # float32-rounded equality (native's definition)
    assert bits(out["resumed"]) == bits(want[421:])


def test_native_style_refused_when_not_exact(tmp_path: Path) -> None:
    schedule = cfgsched.load(SAMPLES / "yolov4.cfg")
    with pytest.raises(cfgsched.NotExactError):
        generate(schedule, style="native")


def test_lightning_module(tmp_path: Path) -> None:
    cfg = SAMPLES / "yolov4.cfg"
    schedule = cfgsched.load(cfg)
    module = convert(tmp_path, cfg, "--format", "lightning")
    out = run_isolated(
        module,
        """
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
            torch.nn.Linear(8, 1),
        )
        conf = m.configure_optimizers(model)
        opt = conf["optimizer"]
        ls = conf["lr_scheduler"]
        groups = [[tuple(p.shape) for p in g["params"]] for g in opt.param_groups]
        decays = [g["weight_decay"] for g in opt.param_groups]
        print(json.dumps({"blocked": BLOCKED, "keys": sorted(conf), "ls_keys": sorted(ls),
                          "interval": ls["interval"], "frequency": ls["frequency"],
                          "groups": groups, "decays": decays, "momentum": opt.defaults["momentum"],
                          "dampening": opt.defaults["dampening"],
                          "lrs": run(opt, ls["scheduler"], 50)}))
        """,
    )
    assert out["keys"] == ["lr_scheduler", "optimizer"]
    assert out["ls_keys"] == ["frequency", "interval", "scheduler"]
    assert (out["interval"], out["frequency"]) == ("step", 1)
    # weight decay only on the conv and linear weights; biases and batch-norm without
    assert out["groups"] == [[[2, 1, 3, 3], [1, 8]], [[2], [2], [2], [1]]]
    assert out["decays"] == [schedule.decay, 0.0]
    assert (out["momentum"], out["dampening"]) == (schedule.momentum, 0.0)
    assert bits(out["lrs"]) == bits(darknet_lr(schedule, np.arange(1, 51)))


def test_json_format(tmp_path: Path) -> None:
    cfg = SAMPLES / "yolov4.cfg"
    schedule = cfgsched.load(cfg)
    out = convert(tmp_path, cfg, "--format", "json", "--gpus", "4", name="s.json")
    doc = json.loads(out.read_text())
    assert doc["schema"] == JSON_SCHEMA
    assert doc["cfgsched_version"] == cfgsched.__version__
    t = doc["translation"]
    assert (t["ngpus"], t["multigpu"], t["exact"]) == (4, "images", True)
    assert t["images_per_step"] == 4 * schedule.images_per_iteration
    assert t["base_learning_rate"] == float(
        np.float32(schedule.learning_rate) * np.float32(4)
    )
    assert NetSchedule.from_dict(doc["schedule"]) == schedule


def test_json_nonfinite_values_are_strings() -> None:
    s = cfgsched.parse("[net]\nlearning_rate=nan\npolicy=poly\nmax_batches=10\n")
    doc = json.loads(generate(s, fmt="json"))
    assert doc["schedule"]["learning_rate"] == "nan"


# --- safety: no cfg string reaches the source --------------------------------------

ADVERSARIAL = [
    '[net]\npolicy=steps"""\'\\n__import__("os").system("x")\nlearning_rate=0.01\n',
    "[net]\nlearning_rate=1e400\nsteps=99999999999999999999,-5\nscales=nan,inf\npolicy=steps\n",
    "[net]\nlearning_rate=-0.0\npower=-inf\nburn_in=-3\npolicy=poly\nmax_batches=2147483647\n",
    '[net]\n# """ comment\nlearning_rate=0.001#\'\'\'\npolicy=sgdr#"""\nsgdr_cycle=7\n'
    "[convolutional]\nlearning_rate=__import__\n[convolutional]\nlearning_rate=0.1\n",
    "[net]\nbatch="
    + "9" * 500
    + "\nlearning_rate="
    + "1" * 400
    + "\npolicy=exp\ngamma=0.999\n",
]
ODD_NAMES = ['a"""b.cfg', "x\ny'z.cfg", "__import__('os').cfg", "ü ñ\\évil.cfg"]


def module_shape(src: str) -> tuple[set[str], set[str], set[str], str]:
    """Node types, names/attributes, string constants (docstring apart), and the docstring."""
    tree = ast.parse(src)
    doc = ast.get_docstring(tree, clean=False) or ""
    types, names, strings = set(), set(), set()
    for node in ast.walk(tree):
        types.add(type(node).__name__)
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, ast.Constant):
            assert isinstance(
                node.value, int | float | str | bool | type(None) | type(...)
            ), node.value
            if isinstance(node.value, str) and node.value != doc:
                strings.add(node.value)
    return types, names, strings, doc


def generate_module(text: str, source: str, **kw: Any) -> str:
    return generate(cfgsched.parse(text, source=source), **kw)


@pytest.mark.parametrize("opts", [{}, {"with_optimizer": True, "fmt": "lightning"}])
@pytest.mark.parametrize("cfg", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_cfg_only_our_names_and_strings(
    cfg: str, opts: dict[str, Any]
) -> None:
    base_types, base_names, base_strings, _ = module_shape(
        generate_module(STEPS_CFG, "base.cfg", **opts)
    )
    for name in ODD_NAMES:
        src = generate_module(cfg, name, **opts)
        types, names, strings, doc = module_shape(src)
        assert types <= base_types
        assert names <= base_names
        assert strings <= base_strings | {"inf", "nan"}  # float("inf"), float("nan")
        # the file name appears only reduced to [A-Za-z0-9._-]; nothing else of the cfg
        assert safe_name(name) in doc
        rest = doc.replace(safe_name(name), "NAME")
        for bad in ('"', "__import__", "\\", "system", "ü", "'''"):
            assert bad not in rest, (bad, doc)
        assert set(doc) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n.,:;()_-=*/+#'[]<>"
        )


@pytest.mark.parametrize("cfg", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_numbers_round_trip_exactly(tmp_path: Path, cfg: str) -> None:
    """The module's PARAMS equal the parsed schedule's numbers, NaN and infinity included."""
    schedule = cfgsched.parse(cfg, source="x.cfg")
    path = tmp_path / "gen_numbers.py"
    path.write_text(generate(schedule))
    ns: dict[str, Any] = {"__name__": "gen_numbers"}
    exec(compile(path.read_text(), str(path), "exec"), ns)  # our own generated code
    got, want = ns["PARAMS"], schedule.kernel_params()
    for g, w in zip(got, want, strict=True):
        if isinstance(w, tuple):
            assert len(g) == len(w)
            pairs = list(zip(g, w, strict=True))
        else:
            pairs = [(g, w)]
        for a, b in pairs:
            if isinstance(b, float) and math.isnan(b):
                assert math.isnan(a) and math.copysign(1, a) == math.copysign(1, b)
            else:
                assert (
                    a == b
                    and type(a) is type(b)
                    and math.copysign(1, a) == math.copysign(1, b)
                )
    assert ns["LEARNING_RATE"] == schedule.learning_rate or math.isnan(
        schedule.learning_rate
    )


def test_safe_name() -> None:
    assert safe_name('dir/a"""b\nc.cfg') == "a___b_c.cfg"
    assert safe_name("") == "cfg"
    assert safe_name("C:\\x\\yolo v4.cfg") == "yolo_v4.cfg"


def test_odd_file_name_through_convert(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, STEPS_CFG, name='we"""ird\nname.cfg')
    module = convert(tmp_path, cfg)
    doc = ast.get_docstring(ast.parse(module.read_text())) or ""
    assert "we___ird_name.cfg" in doc


# --- formatting ---------------------------------------------------------------------

FORMAT_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("yolov4.cfg", {}),
    ("yolov4.cfg", {"with_optimizer": True}),
    ("yolov4.cfg", {"fmt": "lightning"}),
    ("yolov4-4gpu.cfg", {"ngpus": 4, "multigpu": "trace"}),
    (
        "yolov4.cfg",
        {"ngpus": 4, "ideal": True, "images_per_step": 96, "resume_batch": 5000},
    ),
    ("sgdr.cfg", {"exact": False}),
    ("classifier-poly.cfg", {}),
]


@pytest.mark.skipif(
    not RUFF.exists(), reason="ruff not installed next to the interpreter"
)
def test_ruff_format_leaves_generated_modules_unchanged(tmp_path: Path) -> None:
    files = []
    for i, (name, kw) in enumerate(FORMAT_VARIANTS):
        p = tmp_path / f"m{i}.py"
        p.write_text(generate(cfgsched.load(SAMPLES / name), **kw))
        files.append(p)
    steps = cfgsched.parse(STEPS_CFG, source="steps.cfg")
    (tmp_path / "native.py").write_text(
        generate(steps, style="native", with_optimizer=True)
    )
    files.append(tmp_path / "native.py")
    for i, cfg in enumerate(ADVERSARIAL):
        p = tmp_path / f"adv{i}.py"
        p.write_text(generate_module(cfg, ODD_NAMES[i % len(ODD_NAMES)]))
        files.append(p)
    proc = subprocess.run(
        [str(RUFF), "format", "--isolated", "--diff", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_docstring_records_every_choice() -> None:
    s = cfgsched.load(SAMPLES / "yolov4.cfg")
    src = generate(
        s, ngpus=4, ideal=True, images_per_step=96, resume_batch=5000, exact=False
    )
    doc = ast.get_docstring(ast.parse(src)) or ""
    for needle in (
        f"cfgsched {cfgsched.__version__}",
        "yolov4.cfg",
        "fork alexeyab",
        "double",
        "b = (i + 1) * 96 // 64",
        "GPUs: 4",
        "learning_rate / 4 and burn_in x 4",
        "Resume: darknet iteration 5000",
        "build_scheduler(optimizer)",
    ):
        assert needle in doc, needle


def test_generated_module_matches_library_scheduler_source() -> None:
    """The module carries cfgsched's own scheduler code, not a rewritten copy."""
    src = generate(cfgsched.load(SAMPLES / "yolov4.cfg"))
    core = (ROOT / "cfgsched" / "translate" / "scheduler.py").read_text()
    cls = core[core.index("class DarknetScheduler") :]
    assert cls.strip() in src
    rate = (ROOT / "cfgsched" / "kernel" / "formulas.py").read_text()
    fn = rate[rate.index("def rate(") :]
    assert fn.strip() in src


@pytest.mark.parametrize(
    "kw",
    [
        {"style": "fancy"},
        {"fmt": "yaml"},
        {"ideal": True},
        {"multigpu": "trace", "images_per_step": 3},
        {"multigpu": "trace", "ngpus": 2, "resume_batch": 10},
    ],
)
def test_bad_generate_options(kw: dict[str, Any]) -> None:
    with pytest.raises(CodegenError):
        generate(cfgsched.load(SAMPLES / "yolov4.cfg"), **kw)


def test_readme_quickstart_lines_run(tmp_path: Path) -> None:
    """The README's three lines of use, run against a converted module in isolation."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = re.search(
        r"<!-- section:quickstart -->(.*?)<!-- /section:quickstart -->", readme, re.S
    )
    assert section
    blocks = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 3
    module = convert(tmp_path, SAMPLES / "yolov4.cfg")
    body = (
        "import lr_schedule\n"
        "model = torch.nn.Linear(2, 1)\n"
        "model(torch.ones(1, 2)).sum().backward()\n"
        + blocks[0]
        + "print(json.dumps({'blocked': BLOCKED, 'lr': optimizer.param_groups[0]['lr'],"
        " 'momentum': optimizer.defaults['momentum']}))\n"
    )
    out = run_isolated(module, body)
    schedule = cfgsched.load(SAMPLES / "yolov4.cfg")
    # one step done: the next is b = 2, whose value darknet's C code printed
    gold = json.loads((GOLDEN / "alexeyab" / "real_yolov4.json").read_text())
    assert float_to_bits(out["lr"]) == int(gold["lr_hex"][gold["batches"].index(2)], 16)
    assert out["momentum"] == schedule.momentum


def test_json_native_is_checked_too() -> None:
    with pytest.raises(cfgsched.NotExactError):
        generate(cfgsched.load(SAMPLES / "yolov4.cfg"), style="native", fmt="json")
    doc = json.loads(generate(cfgsched.parse(STEPS_CFG), style="native", fmt="json"))
    assert doc["style"] == "native"
