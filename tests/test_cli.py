"""The ``cfgsched`` group: version, help, shell completion, one-line usage errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cfgsched import __version__
from cfgsched.cli import COMMANDS, main
from cfgsched.errors import CfgError, escape
from tests.golden import ROOT

#: Unicode categories a message must never carry raw (controls, format and bidi
#: characters, surrogates, line and paragraph separators).
UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
CFGSCHED = Path(sys.executable).parent / "cfgsched"


def run(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CFGSCHED), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
        check=False,
    )


def test_version_and_module_entry_point() -> None:
    res = run("--version")
    assert (
        res.returncode == 0 and res.stdout.strip() == f"cfgsched, version {__version__}"
    )
    mod = subprocess.run(
        [sys.executable, "-m", "cfgsched", "--version"], capture_output=True, text=True
    )
    assert mod.returncode == 0 and __version__ in mod.stdout


def test_help_lists_every_command_with_an_example() -> None:
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in res.output
        sub = CliRunner().invoke(main, [name, "--help"])
        assert sub.exit_code == 0, name
        assert "Example" in sub.output and f"cfgsched {name}" in sub.output, name


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["convert", "--bogus", "sample_cfgs/yolov4.cfg"], "cfgsched convert"),
        (["convert"], "cfgsched convert"),
        (["lint", "sample_cfgs/yolov4.cfg", "--format", "xml"], "cfgsched lint"),
        (["frobnicate"], "cfgsched"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], where: str) -> None:
    res = run(*args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"{where}: error: ")
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_shell_completion_lists_commands_and_options() -> None:
    res = run(env={"_CFGSCHED_COMPLETE": "bash_complete", "COMP_WORDS": "cfgsched co",
                   "COMP_CWORD": "1"})  # fmt: skip
    assert res.returncode == 0 and "plain,convert" in res.stdout.split()
    res = run(env={"_CFGSCHED_COMPLETE": "bash_complete",
                   "COMP_WORDS": "cfgsched convert --for", "COMP_CWORD": "2"})  # fmt: skip
    assert {"plain,--fork", "plain,--format", "plain,--force"} <= set(
        res.stdout.split()
    )
    res = run(env={"_CFGSCHED_COMPLETE": "bash_source"})
    assert (
        res.returncode == 0
        and "complete" in res.stdout
        and "_cfgsched_completion" in res.stdout
    )


@given(st.text())
def test_escape_leaves_no_control_format_or_bidi_character(text: str) -> None:
    """Every Cc, Cf (U+202E and the other bidi controls), surrogate and line/paragraph
    separator is written as a backslash escape; everything else is kept."""
    out = escape(text)
    assert not any(unicodedata.category(c) in UNSAFE for c in out)
    if all(unicodedata.category(c) not in UNSAFE for c in text):
        assert out == text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("evil\u202egfc.cfg", "evil\\u202egfc.cfg"),  # right-to-left override
        ("a\u2066b\u2069\u200f\u061c", "a\\u2066b\\u2069\\u200f\\u061c"),
        ("\x1b]0;title\x07\x1b[2J", "\\x1b]0;title\\x07\\x1b[2J"),
        ("\x85\x9b31m", "\\x85\\x9b31m"),  # C1 next line / CSI
        ("\ufeff\u200b\U000e0041", "\\ufeff\\u200b\\U000e0041"),
        ("é 日本 cfg", "é 日本 cfg"),
    ],
)
def test_escape_examples(raw: str, shown: str) -> None:
    assert escape(raw) == shown
    assert CfgError(raw, 3, "steps", raw).oneline() == f"{shown}:3: steps: {shown}"


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux /proc")
def test_ctrl_c_exits_130_as_shells_do() -> None:
    """A real SIGINT while ``lint -`` waits on a stdin pipe that never closes: exit 130
    (scripts read 1 as "findings"), one line on stderr, no traceback."""
    proc = subprocess.Popen(
        [str(CFGSCHED), "lint", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        # a shell's background job (CI may run the suite as one) ignores SIGINT, and a
        # child would inherit that: give it the default disposition, as a terminal does
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wchan = Path(f"/proc/{proc.pid}/wchan")
        deadline = time.monotonic() + 60  # a guard, not a speed target
        while "pipe" not in wchan.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        assert proc.stdin is not None
        proc.stdin.close()
    assert proc.returncode == 130, err
    assert out == b"" and err.decode().strip() == "Aborted!"
