"""Fuzzing: mutated real cfgs fed to the library and to every command.

Invariants: no traceback, exit code 0, 1 or 2 only, every exit 2 prints one line naming the
file, no hang. ``make fuzz`` runs many more examples (CFGSCHED_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cfgsched
from cfgsched.cli import main
from tests.golden import DARKNET_CFGS, ROOT

EXAMPLES = int(os.environ.get("CFGSCHED_FUZZ_EXAMPLES", "25"))
SECONDS_PER_RUN = 60

BASES: list[bytes] = [
    p.read_bytes() for p in sorted((ROOT / "sample_cfgs").glob("*.cfg"))
]
if DARKNET_CFGS.is_dir():
    BASES += [p.read_bytes() for p in sorted(DARKNET_CFGS.glob("*.cfg"))]

NET_KEYS = [
    "learning_rate", "burn_in", "power", "policy", "steps", "scales", "step", "scale",
    "gamma", "max_batches", "sgdr_cycle", "sgdr_mult", "learning_rate_min", "batch",
    "subdivisions", "momentum", "decay",
]  # fmt: skip

ODD_VALUES = [
    "", "0", "-1", "-1000000", "2147483647", "2147483648", "4294967296", "1e308", "-1e308",
    "nan", "NaN", "inf", "-inf", "1e-45", "0x10", "1,2,3,", ",", ",,,", "1,,2", "３", "１e３",
    "\u00e9\u00e8", "'\"\"\"", "__import__('os')", "\\n", "9" * 400, "1." + "0" * 300 + "1",
    "steps", "sgdr", "poly", "sigmoid", "random", "exp", "step", "constant", "-0", "+5",
]  # fmt: skip


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


@st.composite
def mutated_cfg(draw: st.DrawFn) -> bytes:
    """A real cfg with a few structural or value mutations."""
    lines = _lines(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                [
                    "delete",
                    "duplicate",
                    "swap",
                    "value",
                    "bytes",
                    "insert_key",
                    "truncate",
                    "crlf",
                ]
            )
        )
        n = len(lines)
        i = draw(st.integers(0, max(0, n - 1)))
        if kind == "delete" and n > 1:
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, max(0, n - 1)))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "value":
            key = draw(st.sampled_from(NET_KEYS)).encode()
            text = draw(st.sampled_from(ODD_VALUES) | st.text(max_size=30))
            val = text.encode("utf-8", "replace")
            idx = next(
                (k for k, ln in enumerate(lines) if ln.split(b"=")[0].strip() == key),
                None,
            )
            if idx is None:
                lines.insert(min(2, n), key + b"=" + val)
            else:
                lines[idx] = key + b"=" + val
        elif kind == "bytes":
            lines.insert(i, draw(st.binary(max_size=40)))
        elif kind == "insert_key":
            key = draw(st.sampled_from(NET_KEYS)).encode()
            lines.insert(i, key + b"=" + draw(st.sampled_from(ODD_VALUES)).encode())
        elif kind == "truncate":
            lines = lines[: max(0, i)]
        elif kind == "crlf":
            lines = [ln + b"\r" for ln in lines]
    return b"\n".join(lines)


SPECIAL = [
    b"",
    b"\x00\x01\x02\x03",
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    b"[net]\n",
    b"[net]\npolicy=sgdr\nsgdr_cycle=0\nmax_batches=100000\n",
    b"[net]\npolicy=poly\nmax_batches=2147483647\n",
    b"[net]\npolicy=steps\nmax_batches=2147483647\nsteps=1,2147483646\nscales=.1,.1\n",
    b"[net]\nlearning_rate=" + b"9" * 5000 + b"\n",
    b"[net]\n" + b"a" * 200_000 + b"\n",
    b"\xff\xfe[\x00n\x00e\x00t\x00]\x00",
    b"\xef\xbb\xbf[net]\nlearning_rate=0.01\n",
]


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"hang: more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def commands_for(path: Path, tmp: Path) -> list[list[str]]:
    p = str(path)
    return [
        ["explain", p, "--at", "1,1000,5000000"],
        ["lint", p],
        ["lint", p, "--fork", "hankai", "--format", "json"],
        ["convert", p, "-o", "-"],
        ["convert", p, "--fork", "pjreddie", "--format", "json"],
        ["diff", p, "--sampled"],
        ["adjust", p, "--gpus", "2", "-o", "-"],
    ]


def check_cli(args: list[str], path: Path) -> None:
    runner = CliRunner()
    with time_limit(SECONDS_PER_RUN):
        res = runner.invoke(main, args, catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"{args}: {type(res.exception).__name__}: {res.exception}")
    assert res.exit_code in (0, 1, 2), (args, res.exit_code, res.output[-500:])
    assert "Traceback" not in res.output
    if res.exit_code == 2:
        err = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(err) == 1, (args, err)
        assert path.name in err[0] or "-" == str(path), (args, err)


def check_library(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    for fork in cfgsched.FORKS:
        with time_limit(SECONDS_PER_RUN):
            try:
                sched = cfgsched.parse(text, fork=fork, source="fuzz.cfg")
            except cfgsched.CfgError as exc:
                assert "fuzz.cfg" in str(exc) and "\n" not in str(exc)
                continue
            import numpy as np

            b = np.array(
                [0, 1, 2, 999, 1000, 1001, sched.max_batches, 2**31 - 1], dtype=np.int64
            )
            lr = cfgsched.darknet_lr(sched, b)
            assert lr.dtype == np.float32 and lr.shape == b.shape


fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@fuzz_settings
@given(data=mutated_cfg())
def test_library_never_crashes(data: bytes) -> None:
    check_library(data)


@pytest.mark.parametrize(
    "data", SPECIAL, ids=[f"special{i}" for i in range(len(SPECIAL))]
)
def test_special_inputs(data: bytes, tmp_path: Path) -> None:
    check_library(data)
    path = tmp_path / "special.cfg"
    path.write_bytes(data)
    for args in commands_for(path, tmp_path):
        check_cli(args, path)


@fuzz_settings
@given(data=mutated_cfg())
def test_commands_never_crash(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "mutant.cfg"
    path.write_bytes(data)
    for args in commands_for(path, tmp):
        check_cli(args, path)


@settings(
    max_examples=max(3, EXAMPLES // 5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=mutated_cfg())
def test_plot_never_crashes(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("fuzzplot")
    path = tmp / "mutant.cfg"
    path.write_bytes(data)
    out = tmp / "out.png"
    check_cli(["plot", str(path), "-o", str(out), "--force"], path)
    leftovers = [
        p.name for p in tmp.iterdir() if p.name not in ("mutant.cfg", "out.png")
    ]
    assert leftovers == [], leftovers


HUGE = {
    "poly": "[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nchannels=3\n"
    "policy=poly\npower=4\nlearning_rate=0.01\nburn_in=1000\nmax_batches=2147483647\n"
    "\n[maxpool]\n",
    "sgdr": "[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nchannels=3\n"
    "policy=sgdr\nsgdr_cycle=1\nsgdr_mult=1\nlearning_rate=0.01\nmax_batches=2147483647\n"
    "\n[maxpool]\n",
}
TIME_BIN = Path("/usr/bin/time")
#: Peak RSS a command may reach on a 2^31-batch schedule (torch alone is ~300 MB).
MAX_RSS_MB = 1024


@pytest.mark.skipif(not TIME_BIN.exists(), reason="/usr/bin/time is not installed")
@pytest.mark.parametrize("policy", sorted(HUGE))
@pytest.mark.parametrize(
    "args",
    [
        ["explain", "{cfg}"],
        ["lint", "{cfg}"],
        ["convert", "{cfg}"],
        ["diff", "{cfg}"],
        ["plot", "{cfg}", "-o", "{out}"],
    ],
    ids=lambda a: a[0],
)
def test_huge_schedules_finish_in_bounded_memory(
    policy: str, args: list[str], tmp_path: Path
) -> None:
    """max_batches 2^31-1 (and a one-batch sgdr cycle): no hang, bounded peak memory."""
    import subprocess
    import sys

    cfg = tmp_path / f"huge-{policy}.cfg"
    cfg.write_text(HUGE[policy])
    out = tmp_path / "out.png"
    argv = [a.format(cfg=cfg, out=out) for a in args]
    cli = Path(sys.executable).parent / "cfgsched"
    res = subprocess.run(
        [str(TIME_BIN), "-f", "maxrss_kb=%M", str(cli), *argv],
        capture_output=True,
        text=True,
        timeout=SECONDS_PER_RUN * 2,
        check=False,
    )
    assert res.returncode in (0, 1), res.stderr[-1000:]
    rss_kb = int(res.stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    assert rss_kb / 1024 < MAX_RSS_MB, f"{argv[0]}: {rss_kb / 1024:.0f} MB"
