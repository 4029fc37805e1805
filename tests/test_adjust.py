"""cfgsched adjust: only the intended bytes change; validation; resume point; CLI."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cfgsched.cli import main
from cfgsched.errors import CfgError
from cfgsched.reader.parser import parse
from cfgsched.tools.editor import Edit, check_edit, edit_schedule, float_text
from tests.golden import DARKNET_CFGS, needs_darknet_cfgs

CFGSCHED = str(Path(sys.executable).with_name("cfgsched"))
INPUT = "width=416\nheight=416\nchannels=3\n"  # [net] must say its input size
LAYERS = "\n[convolutional]\nfilters=16\nsize=3\nstride=1\npad=1\nactivation=leaky\n"


def f32(x: float) -> float:
    return float(np.float32(x))


def changed(old: str, new: str) -> list[int]:
    """0-based indexes of lines (split at \\n, so \\r stays) that differ; same line count."""
    a, b = old.split("\n"), new.split("\n")
    assert len(a) == len(b)
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


def apply_edits(text: str, edits: list[Edit], *, fork: str, source: str) -> str:
    """The edited text (the editor reads it back with the fork: CfgError if it breaks)."""
    return edit_schedule(text, edits, fork=fork, source=source)[0]


def line_index(text: str, prefix: str) -> int:
    return next(i for i, ln in enumerate(text.split("\n")) if ln.startswith(prefix))


def weights(path: Path, seen: int) -> Path:
    """A darknet .weights header, version 0.2.0 (uint64 seen), and one float of weights."""
    path.write_bytes(struct.pack("<3iQ", 0, 2, 0, seen) + struct.pack("<f", 0.5))
    return path


@needs_darknet_cfgs
def test_gpus_changes_only_lr_and_burn_in() -> None:
    text = (DARKNET_CFGS / "yolov4.cfg").read_text()
    r = CliRunner().invoke(
        main, ["adjust", str(DARKNET_CFGS / "yolov4.cfg"), "--gpus", "4"]
    )
    assert r.exit_code == 0, r.output
    new = r.stdout
    lr_i, burn_i = line_index(text, "learning_rate"), line_index(text, "burn_in")
    assert changed(text, new) == sorted([lr_i, burn_i])
    lines = new.split("\n")
    assert lines[lr_i] == "learning_rate=0.000325" and lines[burn_i] == "burn_in=4000"
    s = parse(new)
    assert s.learning_rate == f32(f32(0.0013) / 4) and s.burn_in == 4000


@needs_darknet_cfgs
def test_crlf_spacing_and_insertion_preserved(tmp_path: Path) -> None:
    text = (DARKNET_CFGS / "yolov4.cfg").read_text().replace("\n", "\r\n")
    src = tmp_path / "crlf.cfg"
    src.write_bytes(text.encode())
    out = tmp_path / "out.cfg"
    args = ["adjust", str(src), "--set", "max_batches=6000", "--set", "sgdr_mult=3"]
    r = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert r.exit_code == 0, r.output
    new = out.read_bytes().decode()
    old_lines, new_lines = text.split("\n"), new.split("\n")
    mb = line_index(text, "max_batches")
    assert new_lines[mb] == "max_batches = 6000\r"  # key spelling and spaces kept
    # inserted after the last [net] entry (mosaic=1), with CRLF; nothing else moves
    last = line_index(text, "mosaic=1")
    assert new_lines[last + 1] == "sgdr_mult=3\r"
    assert new_lines[: last + 1][:mb] == old_lines[:mb]
    assert new_lines[mb + 1 : last + 1] == old_lines[mb + 1 : last + 1]
    assert new_lines[last + 2 :] == old_lines[last + 1 :]
    assert new.count("\r\n") == text.count("\r\n") + 1 and "\n" not in new.replace(
        "\r\n", ""
    )
    # refuses to overwrite without --force, then does with it
    r = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    assert CliRunner().invoke(main, [*args, "-o", str(out), "--force"]).exit_code == 0


def test_indentation_and_hankai_comment_kept() -> None:
    text = "[net]\n  batch=64\n  learning_rate = 0.01   # base LR\nwidth=8\nheight=8\nchannels=3\n"
    text += LAYERS
    new = apply_edits(text, [Edit("learning_rate", "0.005")], fork="hankai", source="t")
    assert changed(text, new) == [2]
    assert new.split("\n")[2] == "  learning_rate = 0.005   # base LR"
    # C forks read '#...' as part of the value: it is replaced with it
    new = apply_edits(
        text, [Edit("learning_rate", "0.005")], fork="alexeyab", source="t"
    )
    assert new.split("\n")[2] == "  learning_rate = 0.005"


def test_insert_into_net_without_trailing_newline() -> None:
    text = "[net]\r\nbatch=64\r\nwidth=416\r\nheight=416\r\nchannels=3"
    new = apply_edits(text, [Edit("max_batches", "100")], fork="alexeyab", source="t")
    assert new == text + "\r\nmax_batches=100"


def test_first_occurrence_is_edited() -> None:
    text = "[net]\nmomentum=0.9\ndecay=0.1\nmomentum=0.8\n" + INPUT + LAYERS
    new = apply_edits(text, [Edit("momentum", "0.95")], fork="alexeyab", source="t")
    assert changed(text, new) == [1] and parse(new).momentum == f32(0.95)


@pytest.mark.parametrize(
    ("key", "value", "fork", "words"),
    [
        ("foo", "1", "alexeyab", "not a [net] schedule key"),
        ("sgdr_cycle", "100", "pjreddie", "not a [net] schedule key"),
        ("learning_rate", "abc", "alexeyab", "decimal"),
        ("learning_rate", "1e-3", "alexeyab", "without exponent"),
        ("max_batches", "2e3", "alexeyab", "integer"),
        ("policy", "sgdr", "pjreddie", "one of"),
        ("steps", "100,x", "alexeyab", "integers"),
        ("max_batches", "2147483648", "alexeyab", "C int range"),
        ("scales", ".1,1" + "0" * 40, "alexeyab", "float32 range"),
    ],
)
def test_bad_keys_and_values_are_refused(
    key: str, value: str, fork: str, words: str
) -> None:
    with pytest.raises(ValueError) as info:
        check_edit(key, value, fork)
    assert words in str(info.value)


def test_edit_that_breaks_the_cfg_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "a.cfg"
    src.write_text("[net]\nbatch=64\npolicy=poly\nmax_batches=1000\n" + INPUT + LAYERS)
    out = tmp_path / "out.cfg"
    r = CliRunner().invoke(
        main, ["adjust", str(src), "--set", "policy=steps", "-o", str(out)]
    )
    assert r.exit_code == 2 and str(src) in r.output and "would not load" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()
    with pytest.raises(CfgError):
        apply_edits(
            src.read_text(), [Edit("policy", "steps")], fork="alexeyab", source="a"
        )


def test_cli_option_errors(tmp_path: Path) -> None:
    src = tmp_path / "a.cfg"
    src.write_text("[net]\nbatch=64\nlearning_rate=0.001\n" + INPUT + LAYERS)
    for args in (
        [],
        ["--set", "nokey"],
        ["--set", "foo=1"],
        ["--gpus", "2", "--set", "learning_rate=0.1"],
        ["--gpus", "2", "--fork", "hankai"],
    ):
        r = CliRunner().invoke(main, ["adjust", str(src), *args])
        assert r.exit_code == 2, args
        assert r.stdout == "" and len(r.output.strip().splitlines()) == 1, args


def test_float_text_reads_back_exactly() -> None:
    for x in (0.000325, 1e-7, 0.00065249996, 123456.78):
        t = float_text(f32(x))
        assert "e" not in t and f32(float(t)) == f32(x)


def test_resume_from_weights_prints_lr_before_and_after(tmp_path: Path) -> None:
    src = tmp_path / "poly.cfg"
    src.write_text(
        "[net]\nbatch=64\nsubdivisions=1\nlearning_rate=0.1\npolicy=poly\npower=4\n"
        "max_batches=1000\n" + INPUT + LAYERS
    )
    w = weights(tmp_path / "last.weights", seen=1000 * 64)
    r = subprocess.run(
        [
            CFGSCHED,
            "adjust",
            str(src),
            "--set",
            "max_batches=2000",
            "--resume-from",
            str(w),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "max_batches=2000" in r.stdout
    before, after = r.stderr.strip().splitlines()
    # resumes at iteration 1000 = seen / 64; next update uses b = 1001
    lr_b = f32(f32(0.1) * f32(1 - f32(f32(1001) / f32(1000))) ** 4)
    lr_a = f32(f32(0.1) * f32(1 - f32(f32(1001) / f32(2000))) ** 4)
    assert (
        "iteration 1,000" in before
        and "stops at once" in before
        and f"{lr_b:.6g}" in before
    )
    assert (
        "iteration 1,000" in after and "stops" not in after and f"{lr_a:.6g}" in after
    )
    r = CliRunner().invoke(
        main,
        ["adjust", str(src), "--set", "power=1", "--resume-from", str(tmp_path / "no")],
    )
    assert r.exit_code == 2 and "no such weights file" in r.output


@needs_darknet_cfgs
def test_subprocess_stdin_stdout_and_no_heavy_imports() -> None:
    data = (DARKNET_CFGS / "yolov4-tiny.cfg").read_bytes()
    r = subprocess.run(
        [CFGSCHED, "adjust", "-", "--gpus", "4"],
        input=data,
        capture_output=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    old, new = data.decode().split("\n"), r.stdout.decode().split("\n")
    diff = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert diff == [
        ("learning_rate=0.00261", "learning_rate=0.0006525"),
        ("burn_in=1000", "burn_in=4000"),
    ]
    code = (
        "import sys\nfrom cfgsched.cli import main\n"
        f"sys.argv = ['cfgsched', 'adjust', {str(DARKNET_CFGS / 'yolov4.cfg')!r}, '--gpus', '2']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert not {'torch', 'matplotlib'} & set(sys.modules), 'heavy import'\n"
    )
    r2 = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert r2.returncode == 0, r2.stderr


# ----------------------------------------------------------------------------- hypothesis

REAL = [
    "yolov4.cfg",
    "yolov3.cfg",
    "yolov4-tiny.cfg",
    "yolo-voc.2.0.cfg",
    "resnet152_trident.cfg",
]
INT_KEYS = ["burn_in", "max_batches", "sgdr_cycle", "step"]
FLOAT_KEYS = ["learning_rate", "momentum", "decay", "power", "learning_rate_min"]


@needs_darknet_cfgs
@given(
    st.sampled_from(REAL),
    st.dictionaries(
        st.sampled_from(INT_KEYS + FLOAT_KEYS),
        st.integers(1, 10**6),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_random_edits_change_only_their_lines(
    name: str, picks: dict[str, int], crlf: bool
) -> None:
    text = (DARKNET_CFGS / name).read_text()
    if crlf:
        text = text.replace("\n", "\r\n")
    edits = [
        Edit(k, str(v) if k in INT_KEYS else f"0.{v:06d}")
        for k, v in sorted(picks.items())
    ]
    new = apply_edits(text, edits, fork="alexeyab", source=name)
    old_lines, new_lines = text.split("\n"), new.split("\n")
    before = parse(text)
    present = [e for e in edits if before.line_of(e.key) is not None]
    absent = [e for e in edits if before.line_of(e.key) is None]
    assert len(new_lines) == len(old_lines) + len(absent)
    # the inserted lines come right after the last [net] entry, in edit order
    net_end = next(
        i for i, ln in enumerate(old_lines) if i > 0 and ln.strip().startswith("[")
    )
    last_entry = max(
        i
        for i in range(net_end)
        if "=" in old_lines[i] and not old_lines[i].lstrip().startswith("#")
    )
    inserted = new_lines[last_entry + 1 : last_entry + 1 + len(absent)]
    assert inserted == [f"{e.key}={e.value}" + ("\r" if crlf else "") for e in absent]
    rest = new_lines[: last_entry + 1] + new_lines[last_entry + 1 + len(absent) :]
    targets = {before.line_of(e.key) - 1 for e in present}  # type: ignore[operator]
    for i, (a, b) in enumerate(zip(old_lines, rest, strict=True)):
        if i in targets:
            assert a.split("=")[0] == b.split("=")[0] and a.endswith(
                "\r"
            ) == b.endswith("\r")
        else:
            assert a == b
    after = parse(new)
    read = {"burn_in", "max_batches", "learning_rate", "momentum", "decay", "power"}
    if after.policy.name == "SGDR":
        read |= {"sgdr_cycle", "learning_rate_min"}
    for e in edits:
        if e.key not in read:
            continue  # read only by other policies: the schedule keeps darknet's 0
        got = getattr(after, e.key)
        assert got == (int(e.value) if e.key in INT_KEYS else f32(float(e.value)))


def test_missing_or_binary_cfg_exits_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["adjust", str(tmp_path / "none.cfg"), "--gpus", "2"])
    assert r.exit_code == 2 and "none.cfg" in r.output
    nul = tmp_path / "nul.cfg"
    nul.write_bytes(b"[net]\nbatch=64\0\n")
    r = CliRunner().invoke(main, ["adjust", str(nul), "--gpus", "2"])
    assert r.exit_code == 2 and "NUL" in r.output and r.stdout == ""


def test_undecodable_bytes_survive(tmp_path: Path) -> None:
    src = tmp_path / "latin1.cfg"
    data = b"# caf\xe9\n[net]\nbatch=64\nlearning_rate=0.001\n"
    data += (INPUT + LAYERS).encode()
    src.write_bytes(data)
    out = tmp_path / "out.cfg"
    r = CliRunner().invoke(
        main, ["adjust", str(src), "--set", "burn_in=10", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == data.replace(
        b"channels=3\n", b"channels=3\nburn_in=10\n"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [("learning_rate", "٣"), ("max_batches", "５００"), ("power", "𝟑"),
     ("learning_rate", "0.00١"), ("steps", "100,２00")],
)  # fmt: skip
def test_non_ascii_digits_are_refused_as_c_reads_them(
    key: str, value: str, tmp_path: Path
) -> None:
    """C's atoi/atof read ASCII digits only: darknet would train with 0 (issue 15 item 13)."""
    with pytest.raises(ValueError, match="ASCII digits"):
        check_edit(key, value, "alexeyab")
    src = tmp_path / "a.cfg"
    src.write_text("[net]\nbatch=64\nlearning_rate=0.001\n" + INPUT + LAYERS)
    r = CliRunner().invoke(main, ["adjust", str(src), "--set", f"{key}={value}"])
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert "ASCII digits" in r.output and len(r.output.strip().splitlines()) == 1
