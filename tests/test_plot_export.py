"""``cfgsched plot -o X.csv|X.json`` and ``--tensorboard``: the LR series of a run.

Expected values come from the oracle (``darknet_lr`` on a schedule, golden-tested on its
own) or the scalar kernel, and the step -> batch mapping is written out in each test;
TensorBoard files are read back by TensorBoard's own ``EventAccumulator``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgsched import policies as _policies
from cfgsched.cli import main
from cfgsched.kernel import formulas as _kernel
from cfgsched.options import Options
from cfgsched.oracle import darknet_lr
from cfgsched.reader.parser import load
from cfgsched.tools import export
from cfgsched.tools.plot_choices import OUTPUT_MARKERS
from tests.golden import ROOT

SAMPLES = ROOT / "sample_cfgs"
YOLOV4 = SAMPLES / "yolov4.cfg"
SGDR = SAMPLES / "sgdr.cfg"
f32 = _kernel.f32


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["plot", *args], input=input)


def read_csv(text: str) -> tuple[list[str], list[str], list[list[str]]]:
    """(comment lines, header, rows) of an exported CSV."""
    lines = text.splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    table = list(csv.reader(body))
    return comments, table[0], table[1:]


def exact(text: str, want: float) -> bool:
    """``text`` reads back as ``want`` exactly (as a double, hence as its float32)."""
    got = float(text)
    return got == want or (math.isnan(got) and math.isnan(want))


# ----------------------------------------------------------------------------- CSV and JSON


def test_csv_has_every_step_of_the_translated_run(tmp_path: Path) -> None:
    """--torch-batch 16 on yolov4 (batch 64): step i is at b = (i + 1)·16 // 64; every
    LR is darknet's float32 value, written so that it reads back exactly."""
    out = tmp_path / "lr.csv"
    res = run(str(YOLOV4), "--torch-batch", "16", "--images", "1000", "--to", "3000",
              "-o", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    comments, header, rows = read_csv(out.read_text())
    assert comments[0].startswith(f"# {export.SERIES_SCHEMA}: ")
    assert header == ["step", "batch", "epoch", "lr"]
    # the run's first step to the last step at b <= 3000 (12003·16 // 64 = 3000)
    steps = np.array([int(r[0]) for r in rows])
    assert np.array_equal(steps, np.arange(0, 12_003))
    batches = np.array([int(r[1]) for r in rows])
    assert np.array_equal(batches, (steps + 1) * 16 // 64)
    want = darknet_lr(load(str(YOLOV4)), batches)
    assert all(exact(r[3], float(w)) for r, w in zip(rows, want, strict=True))
    sched = load(str(YOLOV4))
    for k in (3, 3999, len(rows) - 1):  # the scalar kernel agrees on a few rows
        assert float(rows[k][3]) == _policies.rate(
            sched.kernel_params(), int(batches[k])
        )
    assert all(
        float(r[2]) == b * 64 / 1000
        for r, b in zip(rows, batches.tolist(), strict=True)
    )
    options = json.loads(comments[1].removeprefix("# options: "))
    assert options == Options(images_per_step=16).to_record()
    assert "full: every optimizer step" in comments[2]


def test_whole_run_starts_at_step_0_and_epoch_is_empty_without_images(
    tmp_path: Path,
) -> None:
    out = tmp_path / "lr.csv"
    assert run(str(SGDR), "--torch-batch", "48", "-o", str(out)).exit_code == 0
    comments, _, rows = read_csv(out.read_text())
    assert any("epoch: empty (pass --images N" in c for c in comments)
    # the run: steps whose batch (i + 1)·48 // 64 is at most max_batches 7000
    n = (7001 * 64 - 1) // 48
    assert [int(r[0]) for r in rows] == list(range(n))
    assert rows[0][1] == "0" and rows[0][3] == "0.0"  # b = 0: burn-in gives 0
    assert int(rows[-1][1]) == 7000 and all(r[2] == "" for r in rows)


def test_json_schema_options_and_special_values(tmp_path: Path) -> None:
    """poly with max_batches 0: darknet's LR is NaN at b = 0 and inf after (0/0, x/0);
    JSON spells them "nan" and "inf"."""
    cfg = tmp_path / "p.cfg"
    cfg.write_text(
        "[net]\nbatch=64\nsubdivisions=1\nwidth=8\nheight=8\nchannels=3\n"
        "policy=poly\nlearning_rate=0.01\nmax_batches=0\n\n[maxpool]\n"
    )
    out = tmp_path / "lr.json"
    res = run(str(cfg), "--torch-batch", "16", "--x", "steps", "--to", "9",
              "--images", "640", "-o", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert next(iter(doc)) == "schema" and doc["schema"] == "cfgsched-lr-series/1"
    assert doc["cfg"] == str(cfg) and doc["fork"] == "alexeyab"
    assert doc["options"] == Options(images_per_step=16).to_record()
    assert doc["resolution"] == "full" and doc["columns"] == list(export.FULL_COLUMNS)
    rows = doc["rows"]
    assert [r[0] for r in rows] == list(range(10))
    assert [r[1] for r in rows] == [(i + 1) * 16 // 64 for i in range(10)]
    assert [r[3] for r in rows] == ["nan"] * 3 + ["inf"] * 7
    assert rows[4][2] == 1 * 64 / 640  # step 4: b = 1


def test_double_arithmetic_is_written_as_doubles(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    assert run(str(YOLOV4), "--double", "--to", "999", "-o", str(out)).exit_code == 0
    rows = json.loads(out.read_text())["rows"]
    sched = load(str(YOLOV4))
    want = [_policies.rate(sched.kernel_params(), b, False) for b in range(1, 1000)]
    assert [r[3] for r in rows] == want  # double values, not rounded to float32
    assert any(w != float(f32(w)) for w in want)


def test_envelope_beyond_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More steps than EXPORT_LIMIT: one row per figure column, min/max of its steps."""
    monkeypatch.setattr(export, "EXPORT_LIMIT", 50_000)
    out = tmp_path / "e.csv"
    res = run(str(YOLOV4), "--torch-batch", "32", "--to", "100000", "-o", str(out))
    assert res.exit_code == 0, res.output
    comments, header, rows = read_csv(out.read_text())
    assert header == list(export.ENVELOPE_COLUMNS)
    assert any(
        c.startswith("# resolution: envelope: more than 50,000") for c in comments
    )
    first = np.array([int(r[0]) for r in rows])
    last = np.array([int(r[1]) for r in rows])
    assert first[0] == 0 and np.array_equal(first[1:], last[:-1] + 1)  # tiles 0..
    steps = np.arange(first[0], last[-1] + 1)
    b = (steps + 1) * 32 // 64
    assert last[-1] == 200_000 and b[-1] == 100_000  # 200,001·32 // 64
    full = darknet_lr(load(str(YOLOV4)), b)
    offs = first - first[0]
    assert [float(r[6]) for r in rows] == np.minimum.reduceat(full, offs).tolist()
    assert [float(r[7]) for r in rows] == np.maximum.reduceat(full, offs).tolist()
    assert [int(r[2]) for r in rows] == ((first + 1) * 32 // 64).tolist()
    doc = tmp_path / "e.json"
    assert run(str(YOLOV4), "--torch-batch", "32", "--to", "100000", "-o",
               str(doc)).exit_code == 0  # fmt: skip
    data = json.loads(doc.read_text())
    assert data["resolution"] == "envelope" and len(data["rows"]) == len(rows)


def test_outputs_replace_their_own_files_only(tmp_path: Path) -> None:
    for ext in ("csv", "json"):
        out = tmp_path / f"lr.{ext}"
        assert run(str(SGDR), "--to", "10", "-o", str(out)).exit_code == 0
        res = run(str(SGDR), "--to", "20", "-o", str(out))  # our own file: replaced
        assert res.exit_code == 0, res.output
        assert "19,20," in out.read_text() or "[19, 20," in out.read_text()
        theirs = tmp_path / f"theirs.{ext}"
        theirs.write_text("step,lr\n0,0.1\n" if ext == "csv" else '{"schema": "x"}\n')
        res = run(str(SGDR), "-o", str(theirs))
        assert res.exit_code == 2 and "--force" in res.output
        assert run(str(SGDR), "-o", str(theirs), "--force").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lr.csv", "lr.json", "theirs.csv", "theirs.json",
    ]  # fmt: skip


def test_format_option_stdout_and_conflicts(tmp_path: Path) -> None:
    res = run(str(SGDR), "--to", "3", "-o", "-", "--format", "csv")
    assert res.exit_code == 0
    _, header, rows = read_csv(res.stdout)
    assert header == ["step", "batch", "epoch", "lr"] and len(rows) == 3
    assert (
        run(str(SGDR), "-o", str(tmp_path / "x.txt"), "--format", "json").exit_code == 0
    )
    assert json.loads((tmp_path / "x.txt").read_text())["rows"][0][:2] == [0, 1]
    cases = [
        ([str(SGDR), "-o", str(tmp_path / "x.png"), "--format", "csv"],
         "the extension says png, --format says csv"),
        ([str(SGDR), "--gpus", "1", "--gpus", "2", "-o",
          str(tmp_path / "two.csv")], "holds one curve"),
        ([str(SGDR), "--vs", "torch", "-o", str(tmp_path / "vs.csv")],
         "--vs overlays a figure"),
        ([str(SGDR), "--vs", "mmengine", "--tensorboard", str(tmp_path / "tb")],
         "not with --tensorboard alone"),
        ([str(SGDR), "--tensorboard", str(tmp_path / "tb"), "--tensorboard-tag", " "],
         "--tensorboard-tag: must not be empty"),
    ]  # fmt: skip
    for args, text in cases:
        res = run(*args)
        assert res.exit_code == 2 and text in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_format_default_name_and_stdin_source(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "cfgsched", "plot", "-", "--format", "json"],
        input=SGDR.read_text(), cwd=tmp_path, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "lr_schedule.json").read_text())
    assert doc["cfg"] == "<stdin>" and len(doc["rows"]) == 7000


def test_export_does_not_import_matplotlib(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom cfgsched.cli import main\n"
        f"sys.argv = ['cfgsched', 'plot', {str(SGDR)!r}, '-o', {str(tmp_path / 'a.csv')!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('EXIT', code, 'matplotlib' in sys.modules, 'torch' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert "EXIT 0 False False" in res.stdout, res.stdout + res.stderr


# ----------------------------------------------------------------------------- TensorBoard


def tb_scalars(folder: Path, tag: str) -> list[Any]:
    """Every scalar of ``tag`` in ``folder``, read by TensorBoard's own loader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return list(acc.Scalars(tag))


def test_tensorboard_scalars_read_back_exactly(tmp_path: Path) -> None:
    """Each scalar is darknet's float32 LR at its step; forward-filled they give the LR
    of every step of the run (burn-in changes at every batch, steps cut it twice)."""
    pytest.importorskip("tensorboard")
    folder = tmp_path / "runs" / "darknet"
    res = run(str(YOLOV4), "--torch-batch", "16", "--tensorboard", str(folder),
              "--tensorboard-tag", "lr/pg0")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "lr_schedule.png").exists()  # no figure asked for
    events = tb_scalars(folder, "lr/pg0")
    steps = np.array([e.step for e in events])
    values = np.array([e.value for e in events])
    # the whole run: every step that starts before darknet's 500,500 × 64 images are used up
    assert steps[0] == 0 and steps[-1] == -(-500_500 * 64 // 16) - 1 == 2_001_999
    assert np.all(np.diff(steps) > 0)
    all_steps = np.arange(steps[-1] + 1)
    want = darknet_lr(load(str(YOLOV4)), (all_steps + 1) * 16 // 64).astype(np.float64)
    assert np.array_equal(values, want[steps])  # exact float32 values
    filled = values[np.searchsorted(steps, all_steps, side="right") - 1]
    assert np.array_equal(filled, want)
    assert len(events) < 3000  # the runs of equal LR cost two scalars each
    # a re-run replaces its own event file: one file, the same scalars
    assert run(str(YOLOV4), "--torch-batch", "16", "--tensorboard", str(folder),
               "--tensorboard-tag", "lr/pg0").exit_code == 0  # fmt: skip
    assert len(list(folder.iterdir())) == 1
    assert [e.step for e in tb_scalars(folder, "lr/pg0")] == steps.tolist()


def test_tensorboard_envelope_and_figure_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    monkeypatch.setattr(export, "EXPORT_LIMIT", 1000)
    folder = tmp_path / "tb"
    res = run(str(SGDR), "--tensorboard", str(folder), "-o", str(tmp_path / "f.png"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "f.png").exists()
    lo, hi = tb_scalars(folder, "darknet/lr_min"), tb_scalars(folder, "darknet/lr_max")
    full = darknet_lr(load(str(SGDR)), np.arange(1, 7001))
    first = np.array([e.step for e in lo])
    assert first[0] == 0 and [e.step for e in hi] == first.tolist()
    assert [e.value for e in lo] == np.minimum.reduceat(full, first).tolist()
    assert [e.value for e in hi] == np.maximum.reduceat(full, first).tolist()


BLOCK_TENSORBOARD = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Block())
from cfgsched.cli import main
sys.argv = ["cfgsched", "plot", *sys.argv[1:]]
main()
"""


def test_tensorboard_not_installed_is_one_line_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "tb"
    res = subprocess.run(
        [sys.executable, "-c", BLOCK_TENSORBOARD, str(SGDR), "--tensorboard",
         str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == (
        "cfgsched: error: --tensorboard needs the tensorboard package: "
        "pip install 'cfgsched[tensorboard]'"
    )
    assert not folder.exists()


# ----------------------------------------------------------------------------- run ends


@st.composite
def chunked_series(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    """LR values with long and short runs (NaN included) and chunk sizes."""
    pool = [0.0, 0.1, 0.5, float("nan"), float("inf"), 1e-3]
    runs = draw(st.lists(st.tuples(st.sampled_from(pool), st.integers(1, 6)),
                         min_size=1, max_size=20))  # fmt: skip
    values = [v for v, n in runs for _ in range(n)]
    sizes = draw(st.lists(st.integers(1, 7), min_size=1, max_size=30))
    return sizes, values


@settings(derandomize=True, max_examples=200)
@given(chunked_series(), st.integers(0, 10))
def test_run_ends_keep_first_and_last_step_of_every_run(
    case: tuple[list[int], list[float]], start: int
) -> None:
    sizes, values = case
    lr = np.asarray(values, dtype=np.float32)
    steps = np.arange(start, start + lr.size, dtype=np.int64)
    cuts, k = [], 0
    while k < lr.size:
        n = sizes[len(cuts) % len(sizes)]
        cuts.append((k, min(k + n, lr.size)))
        k += n

    def chunks() -> Any:
        for a, b in cuts:
            yield steps[a:b], steps[a:b], None, lr[a:b]

    parts = list(export.run_ends(chunks))
    kept = np.concatenate([p[0] for p in parts])
    vals = np.concatenate([p[1] for p in parts])
    # expected: index k is kept when it differs from a neighbour (or is an end)
    same = [(a == b) or (math.isnan(a) and math.isnan(b))
            for a, b in zip(lr[:-1].tolist(), lr[1:].tolist(), strict=True)]  # fmt: skip
    want = [k for k in range(lr.size)
            if k in (0, lr.size - 1) or not same[k - 1] or not same[k]]  # fmt: skip
    assert kept.tolist() == [start + k for k in want]
    filled = vals[np.searchsorted(kept, steps, side="right") - 1]
    assert np.array_equal(filled, lr, equal_nan=True)


def test_float_texts_round_trip() -> None:
    v = np.array([f32(0.0013), f32(1e-30), 0.0, np.nan, np.inf, -np.inf], np.float32)
    out = io.StringIO()
    s = export.LRSeries(
        cfg="x", fork="alexeyab", options={}, resolution="full", rows=v.size,
        chunks=lambda: iter([(np.arange(v.size), np.arange(v.size), None, v)]),
        images=None, images_per_iteration=1,
    )  # fmt: skip
    export.write_csv(out, s)
    _, _, rows = read_csv(out.getvalue())
    assert [r[3] for r in rows][3:] == ["nan", "inf", "-inf"]
    for r, want in zip(rows, v.tolist(), strict=True):
        assert exact(r[3], want)
    assert rows[0][3] == repr(float(f32(0.0013))) == "0.0013000000035390258"
    assert any(m in out.getvalue().encode() for m in OUTPUT_MARKERS)  # plot replaces it
