"""``cfgsched diff`` defects of issue 15 (items 8, 14, 15, 17, 19, 20, 22) and issue 13's
layering: each test failed before its fix.

Expected values come from the scalar kernel (``cfgsched.kernel.formulas.rate``).
"""

from __future__ import annotations

import importlib.util
import json
import py_compile
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cfgsched.cli import main
from cfgsched.options import Options
from tests.golden import ROOT

HEAD = "[net]\nbatch=64\nsubdivisions=8\nwidth=32\nheight=32\nchannels=3\n"
STEPS_CFG = HEAD + (
    "learning_rate=0.01\nburn_in=100\npolicy=steps\nsteps=600,800\nscales=.1,.1\n"
    "max_batches=1000\n"
)


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["diff", *args])


def cfg_file(tmp_path: Path, text: str = STEPS_CFG, name: str = "s.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def weights(tmp_path: Path, seen: int) -> Path:
    path = tmp_path / "last.weights"
    path.write_bytes(struct.pack("<iiiQ", 0, 2, 5, seen) + b"\0" * 16)
    return path


def convert(cfg: Path, out: Path, *args: str) -> None:
    res = CliRunner().invoke(main, ["convert", str(cfg), "-o", str(out), *args])
    assert res.exit_code == 0, res.output


def one_line_error(res: Any) -> str:
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    (line,) = res.output.strip().splitlines()
    return str(line)


# ----------------------------------------------------------------------------- item 14

#: A module off for 40 batches at one boundary: lr(b) of the plateau before step ``k``.
SHIFTED = """
    import torch
    from cfgsched import policies as _policies
    from cfgsched.reader.parser import load

    P = load({cfg!r}).kernel_params()
    S = {at}

    def lam(i):
        b = i + 1
        return _policies.rate(P, S - 1 if S <= b < S + 40 else b) / P.lr

    def build_scheduler(optimizer, last_epoch=-1):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lam, last_epoch=last_epoch)
"""


def test_sampled_mode_checks_every_boundary(tmp_path: Path) -> None:
    steps = [10_000 + 18_000 * k for k in range(160)]
    scales = ["0.5" if k % 2 == 0 else "2" for k in range(160)]
    text = HEAD + (
        "learning_rate=0.01\npolicy=steps\nmax_batches=3000000\n"
        f"steps={','.join(map(str, steps))}\nscales={','.join(scales)}\n"
    )
    cfg = cfg_file(tmp_path, text)
    mod = tmp_path / "m.py"
    record = {
        "schema": "cfgsched-module/1",
        "fork": "alexeyab",
        "options": Options().to_record(),
    }
    body = textwrap.dedent(SHIFTED.format(cfg=str(cfg), at=steps[150]))
    mod.write_text(f"CFGSCHED = {record!r}\n{body}")
    res = run(str(cfg), "--module", str(mod), "--json")
    rep = json.loads(res.stdout)
    assert res.exit_code == 1 and rep["coverage"] == "sampled", res.output
    first = rep["first_difference"]
    assert first["batch"] == steps[150] and first["got"] == 2 * first["expected"]
    assert rep["differing_ranges"][0]["count"] == 40
    assert "around each of 161 boundaries" in rep["coverage_note"]


# ----------------------------------------------------------------------------- item 15

EVIL = "open({marker!r}, 'w').close()\n"


def test_module_runs_the_checked_source_never_a_cached_pyc(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path)
    mod = tmp_path / "m.py"
    convert(cfg, mod)
    honest = mod.read_text()
    marker = tmp_path / "pyc-ran"
    mod.write_text(EVIL.format(marker=str(marker)) + honest)
    cached = importlib.util.cache_from_source(str(mod))
    mode = (
        py_compile.PycInvalidationMode.UNCHECKED_HASH
    )  # never compared with the source
    py_compile.compile(str(mod), cfile=cached, invalidation_mode=mode, doraise=True)
    mod.write_text(honest)
    res = run(str(cfg), "--module", str(mod))
    assert res.exit_code == 0, res.output
    assert not marker.exists()


# ----------------------------------------------------------------------------- item 17


def test_record_that_lies_about_resuming_is_different(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path)
    mod = tmp_path / "m.py"
    convert(cfg, mod, "--resume-from", str(weights(tmp_path, 700 * 64)))
    assert run(str(cfg), "--module", str(mod)).exit_code == 0
    text = mod.read_text()
    assert '"resume_iteration": 700' in text
    mod.write_text(text.replace('"resume_iteration": 700', '"resume_iteration": None'))
    res = run(str(cfg), "--module", str(mod), "--json")
    assert res.exit_code == 1, res.output
    first = json.loads(res.stdout)["first_difference"]
    assert (first["step"], first["batch"]) == (0, 1)  # the module starts at step 700


# ----------------------------------------------------------------------------- item 19

MEASURE = """
import sys, tracemalloc
tracemalloc.start()
from cfgsched.cli import main
sys.argv = ["cfgsched", "diff", sys.argv[1], "--module", sys.argv[2], "--gpus", "2"]
try:
    main()
finally:
    print("PEAK", tracemalloc.get_traced_memory()[1], file=sys.__stdout__)
"""


def test_record_of_a_large_module_is_read_in_bounded_memory(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path)
    mod = tmp_path / "big.py"
    convert(cfg, mod)
    table = ", ".join(str(400_000 + 7 * k) for k in range(300_000))
    mod.write_text(mod.read_text() + f"\nSTEPS = ({table},)\n")  # 2.4 MB of code
    res = subprocess.run(
        [sys.executable, "-c", MEASURE, str(cfg), str(mod)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 2 and "ngpus: 1 vs 2" in res.stderr, res.stderr
    peak = int(res.stdout.split("PEAK", 1)[1])  # bytes Python allocated at most
    # parsing the whole module took ~1.2 GB; the imports take ~20 MB
    assert peak < 300_000_000, f"peak {peak / 2**20:.0f} MiB"


# ----------------------------------------------------------------------------- item 20, 22


def test_resume_past_the_end_is_one_line(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path)
    far = weights(tmp_path, (1 << 64) - 1)
    line = one_line_error(
        run(str(cfg), "--torch-batch", "1", "--resume-from", str(far))
    )
    assert "s.cfg:12: max_batches:" in line and "past the end of the run" in line
    past = weights(tmp_path, 1200 * 64)
    line = one_line_error(run(str(cfg), "--resume-from", str(past)))
    assert "darknet iteration 1,200" in line and "past the end of the run" in line


def test_native_on_a_no_op_step_is_not_a_traceback(tmp_path: Path) -> None:
    text = (
        HEAD
        + "learning_rate=0.01\npolicy=steps\nsteps=100\nscales=1\nmax_batches=1000\n"
    )
    res = run(str(cfg_file(tmp_path, text)), "--style", "native")
    if res.exit_code != 0:  # works, or says why in one line
        line = one_line_error(res)
        assert "s.cfg: --style native: cfgsched.native_scheduler failed" in line


def test_names_with_escape_sequences_are_escaped(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path, name="a\x1b[31mb.cfg")
    for args in ([str(cfg)], [str(cfg), str(cfg), "--vs-gpus", "2"]):
        head = run(*args).stdout.splitlines()[0]
        assert "\x1b" not in head and "a\\x1b[31mb.cfg" in head


# ----------------------------------------------------------------------------- item 8


def test_random_policy_says_the_values_are_seeded_draws(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path, HEAD + "learning_rate=0.01\npolicy=random\npower=2\n"
                   "max_batches=1000\n")  # fmt: skip
    res = run(str(cfg))
    assert res.exit_code == 0, res.output
    assert "darknet C formula" not in res.stdout
    assert "cfgsched's seeded draws, not darknet's rand()" in res.stdout
    assert "seeded draws" in res.stdout.split("boundary", 1)[1].splitlines()[0]
    rep = json.loads(run(str(cfg), "--json").stdout)
    assert rep["expected"]["kind"] == "seeded draws"
    assert any("not darknet's" in n for n in rep["notes"])
    pair = json.loads(run(str(cfg), str(cfg), "--json").stdout)
    assert any("seeded draws" in n for n in pair["notes"])


# ----------------------------------------------------------------------------- issue 13


def test_diff_does_not_import_codegen() -> None:
    code = "import sys, cfgsched.tools.diff\n"
    code += "print(sorted(m for m in sys.modules if 'codegen' in m))"
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert res.stdout.strip() == "[]"


def test_options_that_clash_with_the_module_record_are_one_line(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path)
    module = tmp_path / "trace.py"
    convert(cfg, module, "--gpus", "2", "--multigpu", "trace")
    res = run(str(cfg), "--module", str(module), "--torch-batch", "16")
    assert res.exit_code == 2
    msg = one_line_error(res)
    assert "--multigpu trace follows darknet's own iterations: no --torch-batch" in msg
