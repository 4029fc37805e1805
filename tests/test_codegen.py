"""The module ``cfgsched convert`` writes: standalone, exact, small, picklable, safe,
unchanged by ruff.

Exactness against darknet's own values is proven for every golden case in
``test_codegen_golden.py`` and against the library for every option in
``test_codegen_options.py``; here: the scheduler contract (pickle, ``state_dict`` with
``weights_only``, resume), the formats, what a module contains (and does not), its size,
its safety against hostile cfgs, and one run in a real, isolated interpreter.
"""

from __future__ import annotations

import ast
import io
import json
import math
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cfgsched
from cfgsched import NetSchedule, darknet_lr
from cfgsched.cli import main
from cfgsched.codegen import (
    JSON_SCHEMA,
    MODULE_SCHEMA,
    CodegenError,
    generate,
    safe_name,
)
from cfgsched.options import Options
from cfgsched.run import translate
from tests import modules
from tests.golden import float_to_bits

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
width=32
height=32
channels=3
"""
#: An input size for the [net]-only texts (darknet stops without one).
INPUT_SIZE = "width=32\nheight=32\nchannels=3\n"
#: Burn-in with power 1 and two steps: LinearLR chained with MultiStepLRs.
CHAINED = (
    "[net]\nbatch=64\nlearning_rate=0.5\nburn_in=8\npower=1\npolicy=steps\n"
    "steps=400,450\nscales=.5,.25\nmax_batches=500\n"
)
#: Names a module offers its user (all others must be used inside the module).
PUBLIC = {
    "CFGSCHED",
    "LAYERS",
    "attach_layers",
    "LEARNING_RATE",
    "MOMENTUM",
    "DECAY",
    "build_scheduler",
    "lr_at",
    "build_optimizer",
    "configure_optimizers",
}


def load(name: str, *, fork: str = "alexeyab") -> NetSchedule:
    return cfgsched.load(SAMPLES / name, fork=fork)


def bits(values: Any) -> list[int]:
    return [int(x) for x in np.asarray(values, dtype=np.float32).view(np.uint32)]


def loaded(text: str, name: str = "gen_codegen") -> Any:
    with modules.cfgsched_blocked():
        return modules.load(text, name)


# ----------------------------------------------------------------------- the contract


@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie", "hankai"])
def test_scheduler_pickles_and_resumes_from_state_dict(fork: str) -> None:
    """Pickled mid-run, or saved with torch.save and loaded with weights_only=True into a
    fresh scheduler: the rest of the run is unchanged and is darknet's."""
    schedule = load("yolov4.cfg", fork=fork)
    m = loaded(generate(schedule), f"gen_contract_{fork}")
    want = darknet_lr(schedule, np.arange(1, 1301))
    with modules.cfgsched_blocked():
        opt = modules.sgd(m)
        sched = m.build_scheduler(opt)
        first = []
        for _ in range(1000):
            first.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        clone = pickle.loads(pickle.dumps(sched))
        buf = io.BytesIO()
        torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        opt2 = modules.sgd(m)
        sched2 = m.build_scheduler(opt2)
        opt2.load_state_dict(state["opt"])
        sched2.load_state_dict(state["sched"])
        runs = []
        for o, s in ((clone.optimizer, clone), (opt2, sched2), (opt, sched)):
            run = []
            for _ in range(300):
                run.append(o.param_groups[0]["lr"])
                o.step()
                s.step()
            runs.append(run)
    assert type(sched).__name__ == "DarknetScheduler"
    assert bits(first) == bits(want[:1000])
    assert runs[0] == runs[1] == runs[2]
    assert bits(runs[2]) == bits(want[1000:])


def test_resume_with_last_epoch_and_tensor_lr() -> None:
    """last_epoch=k on a fresh optimizer: step k + 1 next; a Tensor lr is filled in place."""
    schedule = load("yolov4.cfg")
    m = loaded(generate(schedule), "gen_resume")
    with modules.cfgsched_blocked():
        resumed = modules.stepped(m, 5, last_epoch=399_996)
        w = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([w], lr=torch.tensor(m.LEARNING_RATE), momentum=0.9)
        m.build_scheduler(opt)
        lr0 = opt.param_groups[0]["lr"]
    assert bits(resumed) == bits(darknet_lr(schedule, np.arange(399_998, 400_003)))
    assert isinstance(lr0, torch.Tensor)
    assert float_to_bits(float(lr0)) == float_to_bits(float(darknet_lr(schedule, 1)))


def test_native_style_module() -> None:
    schedule = cfgsched.parse(STEPS_CFG, source="steps.cfg")
    text = generate(schedule, style="native")
    assert "MultiStepLR(" in text and "class " not in text
    m = loaded(text, "gen_native")
    with modules.cfgsched_blocked():
        opt = modules.sgd(m)
        sched = m.build_scheduler(opt)
        lrs = []
        for _ in range(500):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        resumed = modules.stepped(m, 79, last_epoch=420)
        by_lr_at = [m.lr_at(i) for i in range(500)]
    want = darknet_lr(schedule, np.arange(1, 501))
    assert type(sched).__name__ == "MultiStepLR"
    assert bits(lrs) == bits(want)  # float32-rounded equality (native's definition)
    assert bits(resumed) == bits(want[421:])
    assert by_lr_at == [float(x) for x in want]


def test_native_style_refused_when_not_exact() -> None:
    schedule = load("yolov4.cfg")
    for fmt in ("python", "json"):
        with pytest.raises(cfgsched.NotExactError, match="burn-in"):
            generate(schedule, style="native", fmt=fmt)
    doc = json.loads(generate(cfgsched.parse(STEPS_CFG), style="native", fmt="json"))
    assert doc["style"] == "native"


def test_lightning_module_and_optimizer_decay_rule() -> None:
    """configure_optimizers: darknet's SGD, decay exactly on the library's module types
    (cfgsched.adapters.optim, nn.Bilinear included), the scheduler stepped per step."""
    from cfgsched.adapters.optim import build_optimizer

    schedule = load("yolov4.cfg")
    text = generate(schedule, fmt="lightning")
    m = loaded(text, "gen_lightning")
    model = torch.nn.Sequential(
        torch.nn.BatchNorm2d(1),
        torch.nn.Conv2d(1, 2, 3),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 3),
        torch.nn.Bilinear(3, 3, 1),
    )
    with modules.cfgsched_blocked():
        conf = m.configure_optimizers(model)
        opt, ls = conf["optimizer"], conf["lr_scheduler"]
        lrs = []
        for _ in range(50):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            ls["scheduler"].step()
    ref = build_optimizer(model, schedule)
    assert sorted(conf) == ["lr_scheduler", "optimizer"]
    assert (ls["interval"], ls["frequency"]) == ("step", 1)
    assert [[id(p) for p in g["params"]] for g in opt.param_groups] == [
        [id(p) for p in g["params"]] for g in ref.param_groups
    ]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, schedule.decay]
    assert [g["weight_decay"] for g in ref.param_groups] == [0.0, schedule.decay]
    assert (opt.defaults["momentum"], opt.defaults["dampening"]) == (
        schedule.momentum,
        0.0,
    )
    assert bits(lrs) == bits(darknet_lr(schedule, np.arange(1, 51)))


def test_adam_optimizer() -> None:
    schedule = load("yolov4.cfg").with_values(adam=True, b1=0.8, b2=0.95, eps=1e-7)
    m = loaded(generate(schedule, with_optimizer=True), "gen_adam")
    with modules.cfgsched_blocked():
        opt = m.build_optimizer(torch.nn.Linear(2, 2))
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["betas"] == (schedule.b1, schedule.b2)
    assert opt.defaults["eps"] == schedule.eps


# ----------------------------------------------------------------------- the record


@pytest.mark.parametrize("fmt", ["python", "lightning"])
def test_record_rebuilds_the_translation(fmt: str) -> None:
    schedule = load("yolov4.cfg")
    options = Options(ngpus=4, ideal=True, images_per_step=96, resume_iteration=5000)
    m = loaded(generate(schedule, options, fmt=fmt), f"gen_record_{fmt}")
    assert m.CFGSCHED == {
        "schema": MODULE_SCHEMA,
        "version": cfgsched.__version__,
        "cfg": "yolov4.cfg",
        "fork": "alexeyab",
        "format": fmt,
        "style": "class",
        "options": options.to_record(),
    }
    again = translate(schedule, Options.from_record(m.CFGSCHED["options"]))
    assert [m.lr_at(i) for i in range(0, 400_000, 4999)] == [
        again.lr(i) for i in range(0, 400_000, 4999)
    ]


def test_json_format() -> None:
    schedule = load("yolov4.cfg")
    options = Options(ngpus=4, resume_iteration=1000)
    doc = json.loads(generate(schedule, options, fmt="json"))
    assert doc["schema"] == JSON_SCHEMA and doc["version"] == cfgsched.__version__
    assert (doc["cfg"], doc["fork"], doc["format"], doc["style"]) == (
        "yolov4.cfg",
        "alexeyab",
        "json",
        "class",
    )
    assert Options.from_record(doc["options"]) == options
    sched = doc["schedule"]  # what the steps policy reads (issue 15 item 12)
    assert sched["policy"] == "steps" and sched["steps"] == list(schedule.steps)
    for key in ("learning_rate", "burn_in", "power", "momentum", "decay", "batch"):
        assert sched[key] == getattr(schedule, key), key
    t = doc["translation"]
    assert (sched["images_per_iteration"], t["images_per_step"]) == (64, 256)
    assert t["base_learning_rate"] == float(np.float32(schedule.learning_rate) * 4)
    assert (t["flush"], t["resume_step"]) == (True, 250)


def test_json_nonfinite_values_are_strings() -> None:
    s = cfgsched.parse(
        "[net]\nlearning_rate=nan\npolicy=poly\nmax_batches=10\n" + INPUT_SIZE
    )
    doc = json.loads(generate(s, fmt="json"))
    assert doc["schedule"]["learning_rate"] == "nan"
    assert doc["translation"]["base_learning_rate"] == "nan"


# ----------------------------------------------------------------------- what a module holds

#: (cfg or text, options, generate keywords): every policy, fork and emitter path.
VARIANTS: list[tuple[str, Options, dict[str, Any]]] = [
    ("yolov4.cfg", Options(), {}),
    ("yolov4.cfg", Options(), {"with_optimizer": True}),
    ("yolov4.cfg", Options(), {"fmt": "lightning"}),
    ("yolov4.cfg", Options(ngpus=4, multigpu="trace"), {}),
    ("hankai:yolov4.cfg", Options(ngpus=4, multigpu="trace", scratch=True), {}),
    ("pjreddie:yolov4.cfg", Options(ngpus=2, multigpu="trace"), {}),
    (
        "yolov4.cfg",
        Options(ngpus=4, ideal=True, images_per_step=96, resume_iteration=5000),
        {"with_optimizer": True},
    ),
    ("sgdr.cfg", Options(exact=False), {"fmt": "lightning"}),
    ("hankai:sgdr.cfg", Options(), {}),
    ("classifier-poly.cfg", Options(), {}),
    ("hankai:classifier-poly.cfg", Options(), {}),
    ("classifier-poly.cfg", Options(exact=False), {}),
    ("steps", Options(), {"style": "native", "with_optimizer": True}),
    ("steps", Options(resume_iteration=300), {"style": "native"}),
    (CHAINED, Options(), {"style": "native"}),
    (CHAINED, Options(ngpus=2, resume_iteration=300), {"style": "native"}),
    (
        "[net]\nlearning_rate=0.001\npolicy=exp\ngamma=0.5\nmax_batches=50\n",
        Options(),
        {"style": "native"},
    ),
    ("[net]\npolicy=exp\ngamma=0.999\n", Options(), {}),
    ("[net]\npolicy=exp\ngamma=1.01\n", Options(), {}),
    ("[net]\npolicy=step\nstep=100\nscale=0.5\nburn_in=10\n", Options(), {}),
    ("pjreddie:[net]\npolicy=step\nstep=-100\nscale=0.5\n", Options(), {}),
    ("[net]\npolicy=step\nstep=-100\nscale=0.5\n", Options(), {}),
    ("[net]\npolicy=sigmoid\ngamma=0.01\nstep=500\n", Options(), {}),
    ("hankai:[net]\npolicy=sigmoid\ngamma=0.01\nstep=500\n", Options(), {}),
    ("pjreddie:[net]\npolicy=sigmoid\ngamma=0.01\nstep=500\n", Options(), {}),
    (
        "[net]\npolicy=sgdr\nsgdr_cycle=100\nsgdr_mult=1\nmax_batches=1000\n",
        Options(),
        {},
    ),
    ("[net]\npolicy=random\npower=2\n", Options(seed=7), {}),
    ("[net]\npolicy=steps\nsteps=300,100,200\nscales=.5,.5,.5\n", Options(), {}),
    ("pjreddie:[net]\npolicy=steps\nsteps=10,-5,20\nscales=.5,.5,.5\n", Options(), {}),
    ("[net]\npolicy=poly\nmax_batches=0\npower=0.5\n", Options(), {}),
    ("[net]\npolicy=constant\nburn_in=100\npower=-1\n", Options(), {}),
    ("pjreddie:[net]\npolicy=constant\nburn_in=-3\n", Options(), {}),
    ("hankai:layer-rules.cfg", Options(), {"with_optimizer": True}),
    ("layer-rules.cfg", Options(exact=False), {"fmt": "lightning"}),
    ("[net]\nlearning_rate=0\npolicy=constant\n", Options(), {}),
]


def variant_schedule(spec: str) -> NetSchedule:
    fork, _, rest = (
        spec.partition(":") if ":" in spec.split("\n")[0] else ("", "", spec)
    )
    fork = fork or "alexeyab"
    if rest == "steps":
        return cfgsched.parse(STEPS_CFG, fork=fork, source="steps.cfg")
    if rest.endswith(".cfg"):
        return load(rest, fork=fork)
    # darknet stops without an input size: give the [net]-only texts one, at the end
    rest += INPUT_SIZE
    if fork == "hankai":  # hank-ai also refuses a network without layers
        rest += "[maxpool]\n"
    return cfgsched.parse(rest, fork=fork, source="x.cfg")


def variant_text(i: int) -> str:
    spec, options, kw = VARIANTS[i]
    return generate(variant_schedule(spec), options, **kw)


VARIANT_IDS = [f"{i}-{s.splitlines()[0][:30]}" for i, (s, _, _) in enumerate(VARIANTS)]


@pytest.mark.parametrize("i", range(len(VARIANTS)), ids=VARIANT_IDS)
def test_every_top_level_name_is_used(i: int) -> None:
    """An AST scan: each function, class, constant and import is used by the module
    itself, unless it is one of the names the module offers (PUBLIC)."""
    tree = ast.parse(variant_text(i))
    defined: dict[str, ast.AST] = {}
    for node in tree.body:
        for name in top_level_names(node):
            defined[name] = node
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value  # type: ignore[assignment]
            if isinstance(root, ast.Name):
                used.add(root.id)
    unused = sorted(set(defined) - used - PUBLIC)
    assert not unused, unused
    assert {"CFGSCHED", "LEARNING_RATE", "MOMENTUM", "lr_at", "build_scheduler"} <= set(
        defined
    )


def top_level_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [t.id for t in targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []


@pytest.mark.parametrize("i", range(len(VARIANTS)), ids=VARIANT_IDS)
def test_every_variant_equals_the_translation(i: int) -> None:
    """The odd parameters above (overflowing pow, size_t wraps, unsorted steps, NaN) too."""
    spec, options, kw = VARIANTS[i]
    schedule = variant_schedule(spec)
    t = translate(schedule, options)
    m = loaded(variant_text(i), f"gen_variant_{i}")
    steps = [*range(0, 1200, 7), 3999, 10**5, 399_999, 10**7, 10**12]
    if t.trace:
        steps = steps[:-2]
    got = [m.lr_at(s) for s in steps]
    want = [t.lr(s) for s in steps]
    assert [float_to_bits(x) for x in got] == [float_to_bits(x) for x in want]
    n = 600
    if kw.get("style") == "native":  # proven for darknet's run, b <= max_batches
        n = sum(t.batch(t.start + k) <= schedule.max_batches for k in range(n))
    with modules.cfgsched_blocked():
        run = modules.stepped(m, n)  # from the module's default start
    # native: torch's lr rounded to float32 is darknet's (float32 values otherwise)
    want_run = [t.lr(t.start + k) for k in range(n)]
    assert [float_to_bits(x) for x in run] == [float_to_bits(x) for x in want_run]


def needs(spec: str, options: Options | None = None, **kw: Any) -> str:
    return generate(variant_schedule(spec), options, **kw)


def test_only_the_needed_code() -> None:
    """Trace engine only for --multigpu trace, the C library only for hank-ai's powf/expf
    in float32, f32 only for float32 arithmetic, flushing only where it changes a value,
    C's pow/exp only where Python's would raise."""
    plain = needs("yolov4.cfg")
    for absent in ("gpu0_batch", "LIBM", "ctypes.CDLL", "copysign", "c_pow", "c_exp"):
        assert absent not in plain, absent
    assert "gpu0_batches" in needs("yolov4.cfg", Options(ngpus=2, multigpu="trace"))
    assert "gpu0_batches" not in needs("yolov4.cfg", Options(ngpus=2))
    assert "LIBM.powf" in needs("hankai:classifier-poly.cfg")
    assert "LIBM.powf" in needs("hankai:yolov4.cfg")  # its burn-in calls powf
    assert "LIBM" not in needs("hankai:classifier-poly.cfg", Options(exact=False))
    sig = "[net]\npolicy=sigmoid\ngamma=0.01\nstep=500\n"
    assert "LIBM.expf" in needs("hankai:" + sig) and "powf" not in needs(
        "hankai:" + sig
    )
    assert "LIBM" not in needs("hankai:[net]\npolicy=steps\nsteps=10\nscales=.1\n")
    assert "def f32" not in needs("sgdr.cfg", Options(exact=False))
    assert "copysign" in needs(sig)  # alexeyab's release build flushes: 1e-39 -> 0
    assert "copysign" not in needs(sig, Options(flush=False))
    assert "copysign" not in needs("hankai:" + sig)  # hank-ai's build keeps subnormals
    assert "copysign" not in needs("classifier-poly.cfg")  # nothing is ever subnormal
    assert "c_exp" in needs(sig)  # exp(x) overflows for large b
    assert "c_pow" not in needs("[net]\npolicy=exp\ngamma=0.999\n")
    assert "c_pow" in needs("[net]\npolicy=exp\ngamma=1.01\n")
    assert "bisect_right(STEPS" in plain and "REACHED" not in plain
    assert "REACHED" in needs("[net]\npolicy=steps\nsteps=300,100\nscales=.5,.5\n")


def test_sizes() -> None:
    """yolov4 (burn-in plus two steps) <= 150 lines with its docstring; native <= 90
    (its build_scheduler warns about an lr other than LEARNING_RATE)."""
    counts = {
        name: len(generate(load(name)).splitlines())
        for name in ("yolov4.cfg", "classifier-poly.cfg", "sgdr.cfg")
    }
    assert max(counts.values()) <= 150, counts
    native = generate(cfgsched.parse(STEPS_CFG, source="steps.cfg"), style="native")
    assert len(native.splitlines()) <= 90


@pytest.mark.skipif(
    not RUFF.exists(), reason="ruff not installed next to the interpreter"
)
def test_ruff_format_and_check_leave_generated_modules_alone(tmp_path: Path) -> None:
    """A default ruff format changes nothing; ruff check (pyflakes, pycodestyle, bugbear,
    pyupgrade, isort) finds nothing."""
    texts = [variant_text(i) for i in range(len(VARIANTS))]
    texts += [
        generate_hostile(cfg, ODD_NAMES[i % len(ODD_NAMES)])
        for i, cfg in enumerate(HOSTILE)
    ]
    modules.assert_ruff_clean(texts, tmp_path)


def test_docstring_records_every_choice() -> None:
    s = load("yolov4.cfg")
    options = Options(ngpus=4, ideal=True, images_per_step=96, resume_iteration=5000)
    doc = ast.get_docstring(ast.parse(generate(s, options))) or ""
    for needle in (
        f"cfgsched {cfgsched.__version__}",
        "yolov4.cfg",
        "fork alexeyab",
        "b = (i + 1) * 96 // 64",
        "GPUs: 4",
        "learning_rate / 4 and burn_in x 4",
        "Resume: darknet iteration 5000",
        "momentum=MOMENTUM, weight_decay=DECAY",
        "scheduler = build_scheduler(optimizer)",
    ):
        assert needle in doc, needle
    assert "double" in (
        ast.get_docstring(ast.parse(generate(s, Options(exact=False)))) or ""
    )


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"style": "fancy"}, CodegenError),
        ({"fmt": "yaml"}, CodegenError),
        ({"options": {"ngpus": 2}}, CodegenError),
    ],
)
def test_bad_generate_arguments(kw: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        generate(load("yolov4.cfg"), **kw)


# ----------------------------------------------------------------------- hostile cfgs

HOSTILE = [
    '[net]\npolicy=steps"""\'\\n__import__("os").system("x")\nlearning_rate=0.01\n'
    + INPUT_SIZE,
    "[net]\nlearning_rate=1e400\nsteps=99999999999999999999,-5\nscales=nan,inf\npolicy=steps\n"
    + INPUT_SIZE,
    "[net]\nlearning_rate=-0.0\npower=-inf\nburn_in=-3\npolicy=poly\nmax_batches=2147483647\n"
    + INPUT_SIZE,
    '[net]\n# """ comment\nlearning_rate=0.001#\'\'\'\npolicy=sgdr#"""\nsgdr_cycle=7\n'
    + INPUT_SIZE
    + "[convolutional]\nlearning_rate=__import__\n[convolutional]\nlearning_rate=0.1\n",
    "[net]\nbatch="
    + "9" * 500
    + "\nlearning_rate="
    + "1" * 400
    + "\npolicy=exp\ngamma=0.999\n"
    + INPUT_SIZE,
]
ODD_NAMES = ['a"""b.cfg', "x\ny'z.cfg", "__import__('os').cfg", "ü ñ\\évil.cfg"]


def generate_hostile(text: str, source: str, **kw: Any) -> str:
    return generate(cfgsched.parse(text, source=source), **kw)


def module_shape(src: str) -> tuple[set[str], set[str], set[str], str]:
    """Node types, names/attributes, string constants (docstring apart), the docstring."""
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
            assert isinstance(node.value, int | float | str | bool | type(None)), (
                node.value
            )
            if isinstance(node.value, str) and node.value != doc:
                strings.add(node.value)
    return types, names, strings, doc


#: Node types, names and strings any module may hold (those of every variant above).
def _allowed() -> tuple[set[str], set[str], set[str]]:
    types, names, strings = set(), set(), set()
    for i in range(len(VARIANTS)):
        t, n, s, _ = module_shape(variant_text(i))
        types, names, strings = types | t, names | n, strings | s
    return types, names, strings


@pytest.mark.parametrize("opts", [{}, {"with_optimizer": True, "fmt": "lightning"}])
@pytest.mark.parametrize("cfg", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_cfg_only_our_names_and_strings(cfg: str, opts: dict[str, Any]) -> None:
    base_types, base_names, base_strings = _allowed()
    for name in ODD_NAMES:
        src = generate_hostile(cfg, name, **opts)
        types, names, strings, doc = module_shape(src)
        assert types <= base_types
        assert names <= base_names
        # the file name appears only reduced to [A-Za-z0-9._-]; nothing else of the cfg
        assert strings <= base_strings | {safe_name(name)}
        assert safe_name(name) in doc
        rest = doc.replace(safe_name(name), "NAME")
        for bad in ('"', "__import__", "\\", "system", "ü", "'''"):
            assert bad not in rest, (bad, doc)
        assert set(doc) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n.,:;()_-=*/+#'[]<>"
        )


@pytest.mark.parametrize("cfg", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_cfg_module_equals_translation(cfg: str) -> None:
    """NaN, infinities, huge and negative values: the module computes what the kernel does.

    Where the kernel's cpow(0, -inf) raises OverflowError (the third cfg's poly base is 0
    at b = max_batches, and where f32(b) rounds to it), C and the module give
    -0.0 * inf = NaN."""
    schedule = cfgsched.parse(cfg, source="x.cfg")
    t = translate(schedule)
    m = loaded(generate(schedule), "gen_hostile")
    for i in [*range(20), 998, 999, 10**5, 2**31 - 2, 2**31, 10**12]:
        try:
            want = t.lr(i)
        except OverflowError:
            assert math.isnan(m.lr_at(i))
            continue
        got = m.lr_at(i)
        assert float_to_bits(got) == float_to_bits(want) or (
            math.isnan(got) and math.isnan(want)
        ), (i, got, want)


def test_safe_name() -> None:
    assert safe_name('dir/a"""b\nc.cfg') == "a___b_c.cfg"
    assert safe_name("") == "cfg"
    assert safe_name("C:\\x\\yolo v4.cfg") == "yolo_v4.cfg"


def test_odd_file_name_through_convert(tmp_path: Path) -> None:
    cfg = tmp_path / 'we"""ird\nname.cfg'
    cfg.write_text(STEPS_CFG)
    out = tmp_path / "m.py"
    res = CliRunner().invoke(main, ["convert", str(cfg), "-o", str(out)])
    assert res.exit_code == 0, res.output
    m = loaded(out.read_text(), "gen_odd_name")
    assert m.CFGSCHED["cfg"] == "we___ird_name.cfg"
    assert "we___ird_name.cfg" in (m.__doc__ or "")


# ----------------------------------------------------------------------- a real interpreter

RUNNER = """
import json, os, sys
sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "cfgsched"))]
try:
    import cfgsched
    blocked = False
except ImportError:
    blocked = True
sys.path.insert(0, MODULE_DIR)
import torch
import lr_schedule
model = torch.nn.Linear(2, 1)
model(torch.ones(1, 2)).sum().backward()
BODY
print(json.dumps({"blocked": blocked, "lr": optimizer.param_groups[0]["lr"],
                  "momentum": optimizer.defaults["momentum"],
                  "lr_at": lr_schedule.lr_at(999)}))
"""


def test_readme_quickstart_in_an_isolated_interpreter(tmp_path: Path) -> None:
    """python -I, cfgsched not importable: the README's three lines run on the file
    convert wrote, and give darknet's values."""
    readme = (ROOT / "README.md").read_text()
    section = re.search(
        r"<!-- section:quickstart -->(.*?)<!-- /section:quickstart -->", readme, re.S
    )
    assert section
    blocks = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 3
    module = tmp_path / "lr_schedule.py"
    res = CliRunner().invoke(
        main, ["convert", str(SAMPLES / "yolov4.cfg"), "-o", str(module)]
    )
    assert res.exit_code == 0, res.output
    script = tmp_path / "runner.py"
    script.write_text(
        RUNNER.replace("MODULE_DIR", repr(str(tmp_path))).replace(
            "BODY", textwrap.dedent(blocks[0])
        )
    )
    proc = subprocess.run(
        [sys.executable, "-I", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    schedule = load("yolov4.cfg")
    assert out["blocked"] is True
    # one step done: the optimizer holds darknet's LR for b = 2
    assert float_to_bits(out["lr"]) == float_to_bits(float(darknet_lr(schedule, 2)))
    assert out["lr_at"] == float(darknet_lr(schedule, 1000))
    assert out["momentum"] == schedule.momentum


def test_generated_flush_rounds_at_the_hardware_edge() -> None:
    """The module's flushing f32 agrees with the kernel's x86 rule right at FLT_MIN
    (tininess after rounding to 24 bits), not only far below it."""
    from cfgsched.kernel.formulas import FLT_MIN, f32_ftz
    from cfgsched.options import Options
    from tests.modules import load

    s = cfgsched.parse(
        "[net]\nwidth=8\nheight=8\nchannels=3\npolicy=exp\ngamma=0.99\n"
        "learning_rate=0.001\nmax_batches=10000\n[convolutional]\n"
    )
    mod = load(generate(s, Options(flush=True)), "flush_edge")
    edge = [
        FLT_MIN,
        FLT_MIN - 2.0**-150,
        FLT_MIN - 2.0**-151,
        FLT_MIN - 2.0**-152,
        FLT_MIN - 2.0**-149,
        2.0**-140,
        -(FLT_MIN - 2.0**-152),
        3e-39,
        1.0,
    ]
    for x in edge:
        assert mod.f32(x) == f32_ftz(x) and math.copysign(
            1, mod.f32(x)
        ) == math.copysign(1, f32_ftz(x)), x
    assert (
        f32_ftz(FLT_MIN - 2.0**-150) == 0.0 and f32_ftz(FLT_MIN - 2.0**-152) == FLT_MIN
    )
