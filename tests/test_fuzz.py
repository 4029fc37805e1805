"""Fuzzing: mutated real cfgs and odd option values fed to the library and every command.

Invariants: no traceback, exit code 0, 1 or 2 only, every exit 2 prints one error line
(naming the file when the cfg is at fault; the cfg's ``warning:`` lines may come
first), no hang.

``make test`` runs a few dozen examples, the same ones on every run (the ``repeatable``
hypothesis profile in conftest.py); ``make fuzz`` draws ``CFGSCHED_FUZZ_EXAMPLES`` new
ones per test. No wall-clock limit: every input is bounded (cfgs are real cfgs with at
most four small mutations, option values come from bounded lists and integers), and the
commands run in a worker process whose CPU time per command is capped with
``RLIMIT_CPU`` (:data:`CPU_BUDGET`, far above any legitimate command): a command that
spins forever is killed and reported as a hang, however busy the machine is. A command
blocked without using CPU (a FIFO without writer) is not caught; no input here does that.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cfgsched
from cfgsched.cli import COMMANDS, main
from cfgsched.cli.kit import Count
from tests.golden import DARKNET_CFGS, ROOT

EXAMPLES = int(os.environ.get("CFGSCHED_FUZZ_EXAMPLES", "20"))
#: CPU seconds one command may use in the worker before it counts as a hang (the slowest
#: legitimate fuzzed command uses under 5 s; this is a safety net, not a benchmark).
CPU_BUDGET = 120

BASES: list[bytes] = [
    p.read_bytes() for p in sorted((ROOT / "sample_cfgs").glob("*.cfg"))
]
if DARKNET_CFGS.is_dir():
    BASES += [p.read_bytes() for p in sorted(DARKNET_CFGS.glob("*.cfg"))]
SAMPLE = ROOT / "sample_cfgs" / "yolov4.cfg"

FUZZ_KEYS = [
    "learning_rate", "burn_in", "power", "policy", "steps", "scales", "step", "scale",
    "gamma", "max_batches", "sgdr_cycle", "sgdr_mult", "learning_rate_min", "batch",
    "subdivisions", "momentum", "decay", "width", "height", "channels", "inputs",
    "max_batch",
]  # fmt: skip

ODD_VALUES = [
    "", "0", "-1", "-1000000", "2147483647", "2147483648", "4294967296", "1e308", "-1e308",
    "nan", "NaN", "inf", "-inf", "1e-45", "0x10", "1,2,3,", ",", ",,,", "1,,2", "３", "１e３",
    "\u00e9\u00e8", "'\"\"\"", "__import__('os')", "\\n", "9" * 400, "1." + "0" * 300 + "1",
    "steps", "sgdr", "poly", "sigmoid", "random", "exp", "step", "constant", "-0", "+5",
]  # fmt: skip


@st.composite
def mutated_cfg(draw: st.DrawFn) -> bytes:
    """A real cfg with one to four structural or value mutations."""
    lines = draw(st.sampled_from(BASES)).split(b"\n")
    kinds = ["delete", "duplicate", "swap", "value", "bytes", "insert_key", "truncate"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from([*kinds, "crlf"]))
        n = len(lines)
        i = draw(st.integers(0, max(0, n - 1)))
        if kind == "delete" and n > 1:
            del lines[i]
        elif kind == "duplicate" and n > 0:
            lines.insert(i, lines[i])
        elif kind == "swap" and n > 0:
            j = draw(st.integers(0, max(0, n - 1)))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind in ("value", "insert_key"):
            key = draw(st.sampled_from(FUZZ_KEYS)).encode()
            text = draw(st.sampled_from(ODD_VALUES) | st.text(max_size=30))
            line = key + b"=" + text.encode("utf-8", "replace")
            idx = next(
                (k for k, ln in enumerate(lines) if ln.split(b"=")[0].strip() == key),
                None,
            )
            if kind == "insert_key":
                lines.insert(i, line)
            elif idx is None:
                lines.insert(min(2, n), line)
            else:
                lines[idx] = line
        elif kind == "bytes":
            lines.insert(i, draw(st.binary(max_size=40)))
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
    b"\r\n[net]\r\nwidth=1\r\nheight=1\r\nchannels=1\r\n",
    b"[net]\npolicy=sgdr\nsgdr_cycle=0\nmax_batches=100000\n",
    b"[net]\npolicy=poly\nmax_batches=2147483647\n",
    b"[net]\npolicy=steps\nmax_batches=2147483647\nsteps=1,2147483646\nscales=.1,.1\n",
    b"[net]\nlearning_rate=" + b"9" * 5000 + b"\n",
    b"[net]\n" + b"a" * 200_000 + b"\n",
    b"\xff\xfe[\x00n\x00e\x00t\x00]\x00",
    b"\xef\xbb\xbf[net]\nlearning_rate=0.01\n",
]


# ----------------------------------------------------------------------------- checks
# These run inside the worker process (see _Worker); each returns None or a failure.


def _check_cli(args: list[str], cfg_name: str | None) -> str | None:
    """Run ``cfgsched *args`` in-process; ``cfg_name``: the file an exit 2 must name."""
    res = CliRunner().invoke(main, args, catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        return f"{args}: {type(res.exception).__name__}: {res.exception}"
    if res.exit_code not in (0, 1, 2):
        return f"{args}: exit code {res.exit_code}: {res.output[-500:]}"
    if "Traceback" in res.output:
        return f"{args}: a traceback in the output"
    if res.exit_code == 2:  # one error line, after the cfg's warnings if any
        err = [ln for ln in res.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in err if not ln.startswith("warning: ")]
        if len(errors) != 1 or err[-1] != errors[0]:
            return f"{args}: exit 2 with stderr lines {err[:4]}"
        if cfg_name is not None and cfg_name not in errors[0]:
            return f"{args}: the error does not name {cfg_name}: {errors[0]}"
    return None


def _check_library(data: bytes) -> str | None:
    """parse() raises only a one-line CfgError naming the source; darknet_lr is float32."""
    import numpy as np

    text = data.decode("utf-8", errors="replace")
    for fork in cfgsched.FORKS:
        try:
            sched = cfgsched.parse(text, fork=fork, source="fuzz.cfg")
        except cfgsched.CfgError as exc:
            if "fuzz.cfg" not in str(exc) or "\n" in str(exc):
                return f"{fork}: CfgError text {str(exc)!r}"
            continue
        last = max(0, sched.max_batches)
        b = np.array([0, 1, 2, 999, 1000, 1001, last, 2**31 - 1], dtype=np.int64)
        lr = cfgsched.darknet_lr(sched, b)
        if lr.dtype != np.float32 or lr.shape != b.shape:
            return f"{fork}: darknet_lr gave {lr.dtype} {lr.shape}"
    return None


def _spin() -> str | None:
    """Use CPU forever (proves that the worker's CPU cap catches hangs)."""
    n = 0
    while n >= 0:
        n += 1
    return None  # pragma: no cover


def _handle(req: dict[str, Any]) -> str | None:
    if req["kind"] == "cli":
        return _check_cli(req["args"], req["cfg_name"])
    if req["kind"] == "library":
        return _check_library(req["data"].encode("latin-1"))
    return _spin()


def serve() -> None:
    """The worker's loop: one JSON request per line on fd 0, one JSON reply on fd 1.

    Before each request the soft ``RLIMIT_CPU`` is raised to the CPU time used so far
    plus the request's budget, so a request that spins is killed by SIGXCPU.
    """
    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # commands that read fd 0 themselves see an empty stdin
    os.dup2(null, 1)  # and stray writes to fd 1 cannot corrupt the replies
    for line in requests:
        req = json.loads(line)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime) + 1
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (used + int(req["budget"]), hard))
        try:
            failure = _handle(req)
        except Exception:  # a failure of the check itself, reported with its traceback
            failure = traceback.format_exc()
        replies.write(json.dumps({"failure": failure}) + "\n")
        replies.flush()


class _Worker:
    """A child Python process running :func:`serve`, restarted after it dies."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.log: IO[bytes] | None = None

    def _start(self) -> subprocess.Popen[str]:
        self.log = tempfile.TemporaryFile()
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return subprocess.Popen(
            [sys.executable, "-c", "from tests.test_fuzz import serve; serve()"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def run(self, budget: int = CPU_BUDGET, **request: Any) -> str | None:
        """Send ``request``; its failure text, or None when every invariant held."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({**request, "budget": budget}) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if reply:
            failure: str | None = json.loads(reply)["failure"]
            return failure
        code = self.proc.wait()
        self.proc = None
        shown = {k: v for k, v in request.items() if k != "data"}
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            return f"hang: {shown} used more than {budget} s of CPU"
        assert self.log is not None
        self.log.seek(0)
        return f"worker died ({code}) on {shown}: {self.log.read()[-800:]!r}"

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def worker() -> Iterator[_Worker]:
    w = _Worker()
    yield w
    w.close()


def test_the_worker_reports_a_command_that_spins(worker: _Worker) -> None:
    assert (
        worker.run(budget=1, kind="spin")
        == "hang: {'kind': 'spin'} used more than 1 s of CPU"
    )
    assert worker.run(kind="library", data="[net]\n") is None  # restarted


# ------------------------------------------------------------------------ cfg fuzzing


def commands_for(path: Path) -> list[list[str]]:
    """The commands each fuzzed cfg goes through."""
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


def _data(data: bytes) -> str:
    return data.decode("latin-1")


fuzz_settings = settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@fuzz_settings
@given(data=mutated_cfg())
@example(  # found by make fuzz: a negative max_batches (the check asked for b = -1)
    data=b"[net]\nwidth=8\nheight=8\nchannels=3\npolicy=poly\nmax_batches=-1\n"
    b"[convolutional]\nfilters=1\n"
)
def test_library_never_crashes(worker: _Worker, data: bytes) -> None:
    assert worker.run(kind="library", data=_data(data)) is None


@pytest.mark.parametrize(
    "data", SPECIAL, ids=[f"special{i}" for i in range(len(SPECIAL))]
)
def test_special_inputs(worker: _Worker, data: bytes, tmp_path: Path) -> None:
    assert worker.run(kind="library", data=_data(data)) is None
    path = tmp_path / "special.cfg"
    path.write_bytes(data)
    for args in commands_for(path):
        assert worker.run(kind="cli", args=args, cfg_name=path.name) is None


@fuzz_settings
@given(data=mutated_cfg())
def test_commands_never_crash(
    worker: _Worker, data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "mutant.cfg"
    path.write_bytes(data)
    for args in commands_for(path):
        assert worker.run(kind="cli", args=args, cfg_name=path.name) is None


@settings(
    max_examples=max(3, EXAMPLES // 5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=mutated_cfg())
def test_plot_never_crashes(
    worker: _Worker, data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("fuzzplot")
    path = tmp / "mutant.cfg"
    path.write_bytes(data)
    args = ["plot", str(path), "-o", str(tmp / "out.png"), "--force"]
    assert worker.run(kind="cli", args=args, cfg_name=path.name) is None
    leftovers = [
        p.name for p in tmp.iterdir() if p.name not in ("mutant.cfg", "out.png")
    ]
    assert leftovers == [], leftovers


# --------------------------------------------------------------------- option fuzzing

_NUMBERS = st.sampled_from(
    [
        "0", "1", "2", "-1", "3", "1.5", "", "abc", "nan", "inf", "-inf", "1e308",
        "2147483647", "2147483648", "4294967296", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "100000000000000000000",
        "0x10", "1_000", " 7", "٣",
    ]
) | st.integers(-(2**70), 2**70).map(str)  # fmt: skip
_LIST = st.lists(_NUMBERS, max_size=4).map(",".join) | st.sampled_from(
    [",", "1,,2", "1,2,", "1 2", "9223372036854775807,-1"]
)
_CODES = st.sampled_from(["", ",", "E1", "W2,A3", "Z9", "P015", "e103", "W", "E1,,W2"])
_TOLERANCES = st.sampled_from(
    [
        "0ulp",
        "1ulp",
        "-1ulp",
        "1e-7",
        "-1",
        "nan",
        "inf",
        "",
        "ulp",
        "99999999999999999999ulp",
    ]
)
_TITLES = st.sampled_from(["lr", "", "a" * 300, "%s %d", "\x1b[31m", "é\u2028x"])
_TAGS = st.sampled_from(["darknet/lr", "/", "../x", "a b", "."]) | _TITLES
_SETS = st.builds(
    "{}={}".format,
    st.sampled_from([*FUZZ_KEYS, "", "[net]", "x y", "max_crop"]),
    st.sampled_from(ODD_VALUES) | _NUMBERS,
) | st.sampled_from(["=", "x", "learning_rate", "=1"])

#: Option value strategies by option name (options not named here: by click type).
VALUES: dict[str, st.SearchStrategy[str]] = {
    "at": _LIST,
    "at_step": _LIST,
    "opt_steps": _LIST,
    "opt_scales": _LIST,
    "opt_policy": st.sampled_from(["steps", "sgdr", "Steps", "", "poly#x", "random"]),
    "sets": _SETS,
    "select": _CODES,
    "ignore": _CODES,
    "tolerance": _TOLERANCES,
    "title": _TITLES,
    # a fresh folder, the -o file's path, a missing folder (created), the empty path
    "tb_dir": st.sampled_from(["{tb}", "{out}", "{missing}", ""]),
    "tb_tag": _TAGS,
    "weights": st.sampled_from(["{cfg}", "{missing}", os.devnull]),
    "resume_from": st.sampled_from(["{cfg}", "{missing}", os.devnull]),
}
#: Options the fuzz leaves out, with the reason.
SKIPPED = {
    "output": "set per command: stdout, or a file in a temporary folder",
    "force": "always given with a file output",
    "show": "opens a window",
    "module": "runs the Python file it names",
}
#: The fixed part of each command line (``{cfg}``/``{out}`` filled in per example).
FIXED: dict[str, list[str]] = {
    "adjust": ["{cfg}", "-o", "-"],
    "convert": ["{cfg}", "-o", "-"],
    "diff": ["{cfg}", "--sampled"],
    "explain": ["{cfg}"],
    "lint": ["{cfg}"],
    "plot": ["{cfg}", "-o", "{out}", "--force"],
}


def _command(name: str) -> click.Command:
    cmd = main.get_command(click.Context(main), name)
    assert cmd is not None
    return cmd


def _options(name: str) -> list[click.Option]:
    return [
        p
        for p in _command(name).params
        if isinstance(p, click.Option) and p.name not in SKIPPED
    ]


def _values(opt: click.Option) -> st.SearchStrategy[str] | None:
    """Odd values for ``opt``; None for a flag (it takes none)."""
    if opt.is_flag:
        return None
    if opt.name in VALUES:
        return VALUES[opt.name]
    if isinstance(opt.type, click.Choice):
        return st.sampled_from([*map(str, opt.type.choices), "nope"])
    if opt.name is not None and opt.name.startswith("opt_"):
        return st.sampled_from(ODD_VALUES) | _NUMBERS  # a [net] value given by plot
    assert isinstance(
        opt.type, (click.types.IntParamType, click.types.FloatParamType, Count)
    ), f"no fuzz values for {opt.name} ({opt.type}): add it to VALUES or SKIPPED"
    return _NUMBERS


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command with its fixed arguments and one to three fuzzed options."""
    name = draw(st.sampled_from(sorted(COMMANDS)))
    args = [name, *FIXED[name]]
    for opt in draw(st.lists(st.sampled_from(_options(name)), min_size=1, max_size=3)):
        flag = max(opt.opts, key=len)
        values = _values(opt)
        if values is None:  # a flag, or either side of an on/off pair
            args.append(draw(st.sampled_from([flag, *opt.secondary_opts])))
        else:
            args += [flag, draw(values)]
    return args


#: Command lines the fuzz found failing (tracebacks, late writes), fixed since: each must exit 0,
#: 1 or 2, with one error line (naming the cfg variant) on an exit 2.
FIXED_FAILURES: list[list[str]] = [
    ["diff", "{cfg}", "--sampled", "--gpus", "100000000000000000000"],
    ["diff", "{cfg}", "--sampled", "--gpus", "9223372036854775807"],
    ["diff", "{cfg}", "--style", "native", "--gpus", "9223372036854775807"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--to", "100000000000000000000"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--to", "9223372036854775807"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--learning-rate", "-0.01", "--vs",
     "torch"],
    ["diff", "{neg_lr}", "--sampled"],
    ["diff", "{neg_subdivisions}", "--sampled"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--subdivisions", "-1"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--set", "subdivisions=-1"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--subdivisions", "-1", "--vs", "torch"],
    ["plot", "{neg_subdivisions}", "-o", "{out}", "--force"],
    ["explain", "{neg_subdivisions}"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--tensorboard", "{out}"],
    ["plot", "{cfg}", "-o", "{out}", "--force", "--tensorboard", "{tb}", "--vs",
      "ultralytics-hyp"],
]  # fmt: skip

#: Placeholder -> (line of sample_cfgs/yolov4.cfg, its replacement).
CFG_VARIANTS = {
    "{neg_lr}": ("learning_rate=0.0013", "learning_rate=-0.01"),
    "{neg_subdivisions}": ("subdivisions=8", "subdivisions=-8"),
}


def _fill(args: list[str], tmp: Path) -> list[str]:
    """``args`` with the placeholders replaced by files in ``tmp``."""
    names = {
        "{cfg}": SAMPLE,
        "{out}": tmp / "out.png",
        "{missing}": tmp / "no",
        "{tb}": tmp / "tb",
    }
    for key, (old, new) in CFG_VARIANTS.items():
        if key in args:
            names[key] = tmp / "variant.cfg"
            names[key].write_text(SAMPLE.read_text().replace(old, new, 1))
    return [str(names[a]) if a in names else a for a in args]


def _variant_name(args: list[str]) -> str | None:
    """The file name an exit 2 must give: the cfg variant's, if ``args`` names one."""
    return "variant.cfg" if args[1] in CFG_VARIANTS else None


@settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(args=command_lines())
@example(  # found by make fuzz: a warning line before the one error line
    args=["plot", "{cfg}", "-o", "{out}", "--force", "--learning-rate", "", "--from",
          "2147483647"]
)  # fmt: skip
@example(args=["explain", "{cfg}", "--at", "9223372036854775807,-1"])
@example(args=["convert", "{cfg}", "-o", "-", "--gpus", "9223372036854775807"])
def test_options_never_crash(
    worker: _Worker, args: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    full = _fill(args, tmp_path_factory.mktemp("opts"))
    assert worker.run(kind="cli", args=full, cfg_name=None) is None


@pytest.mark.parametrize("args", FIXED_FAILURES, ids=" ".join)
def test_fixed_failures_stay_fixed(
    worker: _Worker, args: list[str], tmp_path: Path
) -> None:
    full = _fill(args, tmp_path)
    assert worker.run(kind="cli", args=full, cfg_name=_variant_name(args)) is None


def test_every_option_is_fuzzed_or_skipped_for_a_reason() -> None:
    assert sorted(FIXED) == sorted(COMMANDS)
    for name in COMMANDS:
        for p in _command(name).params:
            if isinstance(p, click.Option) and p.name not in SKIPPED:
                _values(p)  # an AssertionError names an option without fuzz values


# ------------------------------------------------------------------- huge schedules

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


def _cpu_cap() -> None:
    """In the child: at most :data:`CPU_BUDGET` CPU seconds (SIGXCPU after)."""
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_BUDGET, CPU_BUDGET + 5))


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
    """max_batches 2^31-1 (and a one-batch sgdr cycle): bounded CPU, bounded peak memory."""
    cfg = tmp_path / f"huge-{policy}.cfg"
    cfg.write_text(HUGE[policy])
    out = tmp_path / "out.png"
    argv = [a.format(cfg=cfg, out=out) for a in args]
    cli = Path(sys.executable).parent / "cfgsched"
    res = subprocess.run(
        [str(TIME_BIN), "-f", "maxrss_kb=%M", str(cli), *argv],
        capture_output=True,
        text=True,
        preexec_fn=_cpu_cap,
        check=False,
    )
    assert res.returncode in (0, 1), res.stderr[-1000:]
    rss_kb = int(res.stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    assert rss_kb / 1024 < MAX_RSS_MB, f"{argv[0]}: {rss_kb / 1024:.0f} MB"
