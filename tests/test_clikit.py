"""Output is written atomically; input errors are one line; cfg reading limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cfgsched.cli import kit as clikit
from cfgsched.errors import CfgError

SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from cfgsched.cli.kit import atomic_output
    with atomic_output(sys.argv[1], force=True) as fh:
        for i in range(200):
            fh.write("new line %d\\n" % i)
            fh.flush()
            if i == 0:
                print("started", flush=True)
            time.sleep(0.01)
    """
)


def test_kill_mid_write_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.py"
    target.write_text("previous content\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_text() == "previous content\n"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "out.py"]
    assert all(name.startswith(".out.py.") for name in leftovers)


def test_completed_write_replaces_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with clikit.atomic_output(str(target), force=True) as fh:
        fh.write("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_refuses_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(clikit.UsageFailure, match="exists; use --force"):
        with clikit.atomic_output(str(target), force=False) as fh:
            fh.write("new")
    assert target.read_text() == "old"


def test_error_inside_block_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with clikit.atomic_output(str(target), force=False) as fh:
            fh.write("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_read_cfg_text_rejects_binary_and_huge(tmp_path: Path) -> None:
    binary = tmp_path / "x.weights"
    binary.write_bytes(b"[net]\nbatch=1\n\x00\x01\x02")
    with pytest.raises(CfgError) as err:
        clikit.read_cfg_text(str(binary))
    assert err.value.line == 3 and str(binary) in str(err.value)
    huge = tmp_path / "huge.cfg"
    huge.write_bytes(b"#" * (clikit.MAX_CFG_BYTES + 1))
    with pytest.raises(CfgError, match="larger than"):
        clikit.read_cfg_text(str(huge))


def test_read_cfg_text_keeps_bad_utf8_as_replacement(tmp_path: Path) -> None:
    path = tmp_path / "latin1.cfg"
    path.write_bytes(b"[net]\n# caf\xe9\nbatch=1\n")
    text, source = clikit.read_cfg_text(str(path))
    assert source == str(path)
    assert "caf\ufffd" in text


def test_one_line_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    @click.command()
    @clikit.one_line_errors
    def cmd() -> None:
        raise CfgError("a.cfg", 7, "steps", "darknet crashes here:\nfewer scales")

    @click.command()
    @clikit.one_line_errors
    def missing() -> None:
        open(os.path.join(tmp_path, "nope.cfg")).close()

    res = CliRunner().invoke(cmd, [])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "cfgsched: error: a.cfg:7: steps: darknet crashes here: fewer scales"
    ]
    res = CliRunner().invoke(missing, [])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "nope.cfg" in lines[0] and "Traceback" not in res.output


def test_new_file_gets_umask_mode_and_replaced_file_keeps_its_mode(
    tmp_path: Path,
) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "new.png"
        with clikit.atomic_output(str(target), force=False, binary=True) as fh:
            fh.write(b"x")
        assert target.stat().st_mode & 0o777 == 0o644
        target.chmod(0o600)
        with clikit.atomic_output(str(target), force=True, binary=True) as fh:
            fh.write(b"y")
        assert target.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
