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
    assert all(name.startswith(".cfgsched-") for name in leftovers)


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


SIGTERM_WRITER = SLOW_WRITER.replace("time.sleep(0.01)", "time.sleep(0.05)")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_mid_write_clean_up(tmp_path: Path, sig: int) -> None:
    target = tmp_path / "out.py"
    target.write_text("previous content\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(sig)
    assert proc.wait() == 128 + sig
    assert target.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py"]


def test_cfg_reader_refuses_fifo_directory_and_device_without_blocking(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "pipe.cfg"
    os.mkfifo(fifo)
    for path in (str(fifo), str(tmp_path), "/dev/null"):
        with pytest.raises(OSError) as err:
            clikit.read_cfg_text(path)
        assert err.value.filename == path
        assert "regular file" in str(err.value.strerror) or "directory" in str(
            err.value.strerror
        )


def test_output_errors_name_the_users_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing_dir" / "x.py"
    with pytest.raises(clikit.UsageFailure) as err:
        with clikit.atomic_output(str(missing), force=False) as fh:
            fh.write("x")
    assert str(missing) in err.value.message and ".tmp" not in err.value.message
    with pytest.raises(clikit.UsageFailure, match="is a directory"):
        with clikit.atomic_output(str(tmp_path / "newdir") + "/", force=True):
            pass
    assert not (tmp_path / "newdir").exists()


def test_output_refuses_non_regular_targets_even_with_force(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (link, fifo, Path("/dev/null")):
        with pytest.raises(clikit.UsageFailure, match="not a regular file"):
            with clikit.atomic_output(str(target), force=True) as fh:
                fh.write("new")
    assert real.read_text() == "keep" and link.is_symlink()


def test_longest_legal_file_name_is_writable(tmp_path: Path) -> None:
    name = "n" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 3) + ".py"
    with clikit.atomic_output(str(tmp_path / name), force=False) as fh:
        fh.write("ok")
    assert (tmp_path / name).read_text() == "ok"


def test_new_file_created_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "race.py"
    with pytest.raises(clikit.UsageFailure, match="meanwhile"):
        with clikit.atomic_output(str(target), force=False) as fh:
            fh.write("mine")
            target.write_text("theirs")  # another process wins the race
    assert target.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.py"]


def test_own_outputs_are_replaced_without_force(tmp_path: Path) -> None:
    ours = clikit.made_by_cfgsched(b"Generated by cfgsched")
    mine = tmp_path / "lr.py"
    mine.write_text('"""Generated by cfgsched 0.1.0"""\n')
    with clikit.atomic_output(str(mine), force=False, ours=ours) as fh:
        fh.write("new")
    assert mine.read_text() == "new"
    theirs = tmp_path / "train.py"
    theirs.write_text("import cfgsched\n")
    with pytest.raises(clikit.UsageFailure, match="exists; use --force"):
        with clikit.atomic_output(str(theirs), force=False, ours=ours) as fh:
            fh.write("new")
    assert theirs.read_text() == "import cfgsched\n"


def test_binary_output_to_a_terminal_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    master, slave = os.openpty()
    try:
        tty = io.TextIOWrapper(io.FileIO(slave, "w", closefd=False))
        monkeypatch.setattr(sys, "stdout", tty)
        with pytest.raises(clikit.UsageFailure, match="terminal"):
            with clikit.atomic_output("-", force=False, binary=True) as fh:
                fh.write(b"\x89PNG")
    finally:
        os.close(master)
        os.close(slave)


def test_messages_escape_control_characters() -> None:
    err = clikit.fail("policy=\x1b[31mred\x07 and\nmore")
    assert err.message == "policy=\\x1b[31mred\\x07 and more"


SAMPLE = Path(__file__).resolve().parents[1] / "sample_cfgs" / "yolov4.cfg"


@pytest.mark.parametrize(
    ("redirect", "what"),
    [(">&-", "output"), ("<&-", "input")],
)
def test_closed_standard_streams_exit_2(redirect: str, what: str) -> None:
    cfg = "-" if what == "input" else str(SAMPLE)
    cmd = f'"{sys.executable}" -m cfgsched explain {cfg} {redirect}'
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip() == f"cfgsched: error: standard {what} is closed"


@pytest.mark.parametrize("command", ["explain", "convert"])
def test_ascii_locale_does_not_break_output(command: str) -> None:
    env = {**os.environ, "PYTHONUTF8": "0", "LC_ALL": "C", "PYTHONIOENCODING": ""}
    res = subprocess.run(
        [sys.executable, "-m", "cfgsched", command, str(SAMPLE)],
        capture_output=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert b"Traceback" not in res.stderr and res.stdout
    if (
        command == "convert"
    ):  # the module is plain ASCII, so it reaches any stdout intact
        compile(res.stdout.decode("ascii"), "lr_schedule.py", "exec")


def test_convert_replaces_its_own_output_but_no_other_file(tmp_path: Path) -> None:
    from cfgsched.cli import main

    out = tmp_path / "lr.py"
    runner = CliRunner()
    for extra in ([], ["--gpus", "2"], ["--format", "json"]):
        res = runner.invoke(main, ["convert", str(SAMPLE), "-o", str(out), *extra])
        assert res.exit_code == 0, res.output
    assert '"ngpus": 1' in out.read_text()  # the JSON replaced the --gpus 2 module
    mine = tmp_path / "train.py"
    mine.write_text("import lr  # Written by me\n")
    res = runner.invoke(main, ["convert", str(SAMPLE), "-o", str(mine)])
    assert res.exit_code == 2 and "exists; use --force" in res.output
    assert mine.read_text() == "import lr  # Written by me\n"


def test_cfg_text_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    from cfgsched.cli import main

    cfg = tmp_path / "esc.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\npolicy=st\x1b[31meps\x07\n")
    res = CliRunner().invoke(main, ["lint", str(cfg), "--select", "P001"], color=True)
    (line,) = res.stdout.splitlines()
    assert "\x1b" not in line and "\x07" not in line
    assert "st\\x1b[31meps\\x07" in line


def test_resume_from_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    from cfgsched.cli import main

    fifo = tmp_path / "last.weights"
    os.mkfifo(fifo)
    res = CliRunner().invoke(main, ["convert", str(SAMPLE), "--resume-from", str(fifo)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"cfgsched: error: {fifo}: cannot read weights file: not a regular file: "
        "cfgsched reads regular files (or - for stdin)"
    ]


def test_every_report_command_spells_json_the_same_way() -> None:
    from cfgsched.cli import main

    for cmd in (["lint"], ["explain"], ["diff", "--sampled"]):
        res = CliRunner().invoke(main, [*cmd, str(SAMPLE), "--json"])
        assert res.exit_code in (0, 1), res.output
        doc = __import__("json").loads(res.stdout)
        assert doc["schema"].startswith(f"cfgsched-{cmd[0]}/")
    for cmd, opt in (
        ("lint", "--json"), ("explain", "--json"), ("diff", "--json"),
        ("convert", "--format"), ("plot", "--format"),
    ):  # fmt: skip
        res = CliRunner().invoke(main, [cmd, "--help"])
        assert opt in res.output, (cmd, opt)


def test_every_option_of_every_command_has_help() -> None:
    from cfgsched.cli import COMMANDS, main

    ctx = click.Context(main)
    missing = [
        (name, p.opts)
        for name in COMMANDS
        for p in main.get_command(ctx, name).params  # type: ignore[union-attr]
        if isinstance(p, click.Option) and not (p.help or "").strip()
    ]
    assert missing == []


def _commands() -> dict[str, click.Command]:
    """Every command of the group (loaded as the group loads them)."""
    from cfgsched.cli import main

    ctx = click.Context(main)
    return {n: main.get_command(ctx, n) for n in main.list_commands(ctx)}  # type: ignore[misc]


def _numeric_options() -> list[tuple[str, str]]:
    """(command, option) for every whole-number option of every command."""
    return [
        (name, p.opts[0])
        for name, cmd in sorted(_commands().items())
        for p in cmd.params
        if isinstance(p, click.Option) and isinstance(p.type, clikit.Count)
    ]


def test_every_whole_number_option_is_read_in_ascii_digits_only() -> None:
    """issue 15 item 13: no command reads '٣' or '５' as a number (click's int() would);
    every integer option goes through kit.Count, and each refuses them with exit 2."""
    from cfgsched.cli import main

    for cmd in _commands().values():
        for p in cmd.params:
            assert not isinstance(p.type, (click.types.IntParamType, click.IntRange)), (
                cmd.name,
                p.name,
            )
    found = _numeric_options()
    assert {("plot", "--from"), ("diff", "--gpus"), ("lint", "--images")} <= set(found)
    for name, opt in found:
        for bad in ("٣", "５", "𝟑"):
            r = CliRunner().invoke(main, [name, "sample_cfgs/yolov4.cfg", opt, bad])
            assert r.exit_code == 2, (name, opt, bad, r.output)
            assert "ASCII digits" in r.output, (name, opt, r.output)
