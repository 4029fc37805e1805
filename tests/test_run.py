"""``cfgsched.run``: which optimizer steps a translated run trains, step <-> batch.

Expected values are brute-force searches over ``Run.batch`` and GPU 0's trace from
``cfgsched.kernel.mgpu``, never the closed forms under test.
"""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgsched.kernel.mgpu import MgpuConfig, mgpu_batches
from cfgsched.options import Options
from cfgsched.reader.parser import parse
from cfgsched.run import DEFAULT_SPAN, translate
from cfgsched.schedule import NetSchedule

DERANDOMIZED = settings(derandomize=True, max_examples=60, deadline=None)


def cfg(max_batches: int, batch: int, burn_in: int = 0) -> NetSchedule:
    return parse(
        f"[net]\nbatch={batch}\nsubdivisions=1\nlearning_rate=0.01\n"
        f"burn_in={burn_in}\npolicy=steps\nsteps={max(max_batches // 2, 1)}\n"
        f"scales=.1\nmax_batches={max_batches}\n"
        "width=32\nheight=32\nchannels=3\n"
    )


@DERANDOMIZED
@given(
    st.integers(1, 3000),
    st.integers(1, 128),
    st.integers(1, 400),
    st.integers(0, 3000),
)
def test_images_run_and_first_step(
    m: int, per_iter: int, per_step: int, b: int
) -> None:
    run = translate(cfg(m, per_iter), Options(images_per_step=per_step))
    t = run
    # the run: every step that starts before darknet's m·I images are used up
    assert (run.stop - 1) * per_step < m * per_iter <= run.stop * per_step
    assert run.start == 0 and run.steps == run.stop
    i = run.first_step(b)
    assert t.batch(i) >= b and (i == 0 or t.batch(i - 1) < b)


@DERANDOMIZED
@given(
    st.sampled_from(["alexeyab", "pjreddie", "hankai"]),
    st.integers(2, 6),
    st.integers(1, 1500),
    st.integers(0, 200),
    st.booleans(),
    st.integers(1, 1600),
)
def test_trace_run_and_first_step(
    fork: str, n: int, m: int, burn_in: int, scratch: bool, b: int
) -> None:
    s = cfg(m, 64, burn_in).with_values(fork=fork)
    run = translate(s, Options(ngpus=n, multigpu="trace", scratch=scratch))
    code = ("alexeyab", "pjreddie", "hankai").index(fork)
    seq = mgpu_batches(MgpuConfig(code, n, m, burn_in, scratch))[0]
    assert run.stop == len(seq)
    i = run.first_step(b)
    # brute force over darknet's trace (and past it, n batches per step)
    batches = [run.batch(k) for k in range(len(seq) + b // n + 2)]
    want = next(k for k, x in enumerate(batches) if x >= b)
    assert i == want


@DERANDOMIZED
@given(st.sampled_from(["alexeyab", "hankai"]), st.integers(2, 8), st.integers(1, 5000))
def test_gpus_run_is_darknets_loop_count(fork: str, n: int, m: int) -> None:
    # darknet -gpus n (alexeyab, hankai) loops while its counter, n per loop, is below m
    s = cfg(m, 64).with_values(fork=fork)
    code = ("alexeyab", "pjreddie", "hankai").index(fork)
    loops = len(mgpu_batches(MgpuConfig(code, n, m))[0])
    assert translate(s, Options(ngpus=n)).stop == loops


def test_resume_and_zero_max_batches() -> None:
    run = translate(cfg(1000, 64), Options(images_per_step=16, resume_iteration=300))
    assert run.start == 300 * 64 // 16 and run.stop == 4000 and run.steps == 2800
    zero = translate(cfg(0, 64))
    assert zero.stop == DEFAULT_SPAN and "max_batches is 0" in zero.note
    ideal = translate(cfg(1000, 64, burn_in=100), Options(ngpus=4, ideal=True))
    assert ideal.schedule.burn_in == 400  # the schedule trained: AlexeyAB's advice


def test_options_bound_every_integer_with_a_value_error() -> None:
    """Records like ``"ngpus": 2**70`` are refused clearly, never by an OverflowError."""
    import pytest

    from cfgsched.options import OptionError

    for kw, word in [
        ({"ngpus": 2**70}, "ngpus must be <="),
        ({"ngpus": 0}, "ngpus must be >= 1"),
        ({"resume_iteration": 2**100}, "resume_iteration must be <="),
        ({"resume_iteration": -1}, "resume_iteration must be >= 0"),
        ({"images_per_step": 2**63}, "images_per_step must be <="),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": 2**64}, "seed must be <="),
    ]:
        with pytest.raises(OptionError, match=word):
            Options(**kw)
        with pytest.raises(ValueError, match=word):
            Options.from_record({**Options().to_record(), **kw})
    with pytest.raises(TypeError):
        Options(ngpus=True)
    msg = "{scratch} needs {trace}"
    err = OptionError(msg)
    assert str(err) == "scratch needs multigpu='trace'"
    assert err.worded({"scratch": "--scratch"}) == "--scratch needs multigpu='trace'"


def test_run_round_trips_as_plain_data() -> None:
    s = cfg(1000, 64, burn_in=100)
    run = translate(s, Options(ngpus=4, ideal=True, images_per_step=96))
    again = type(run).from_dict(run.to_dict())
    assert again == run and again.schedule.burn_in == 400
    assert [again.lr(i) for i in range(50)] == [run.lr(i) for i in range(50)]


def test_landing_step_is_the_first_step_at_exactly_b() -> None:
    run = translate(cfg(1000, 64), Options(ngpus=4))
    assert run.landing_step(8) == 1 and run.landing_step(7) is None
    trace = translate(cfg(1000, 64), Options(ngpus=3, multigpu="trace"))
    seq = [trace.batch(i) for i in range(trace.stop + 5)]
    for b in range(1, 1020):
        want = next((i for i, x in enumerate(seq) if x == b), None)
        if want is not None or b <= max(seq[: trace.stop]):
            assert trace.landing_step(b) == want, b


# ------------------------------------------------------------------ translate() once per run

SMALL_CFG = (
    "[net]\nbatch=64\nsubdivisions=16\nlearning_rate=0.001\nburn_in=100\npower=1\n"
    "max_batches=1200\npolicy=steps\nsteps=800,1000\nscales=.1,.1\n"
    "width=32\nheight=32\nchannels=3\n"
)


def _case(name: str, *args: str) -> Any:
    return pytest.param(list(args), id=" ".join(args) or name)


@pytest.mark.parametrize(
    "args",
    [
        *(
            _case("convert", "convert", "--format", fmt)
            for fmt in ("python", "lightning", "json", "ultralytics", "mmengine")
        ),
        _case(
            "approx",
            "convert",
            "--format",
            "ultralytics-hyp",
            "--images",
            "5000",
            "--torch-batch",
            "16",
        ),
        _case("native", "convert", "--style", "native"),
        _case("convert", "convert", "--format", "mmengine", "--style", "native"),
        _case("convert", "convert", "--gpus", "2", "--multigpu", "trace"),
        _case("diff", "diff"),
        _case("diff", "diff", "--gpus", "2"),
        _case("module", "diff", "--module"),
        _case("plot", "plot", "--format", "csv"),
        _case("plot", "plot", "--format", "png", "--gpus", "1", "--gpus", "2"),
        _case("plot", "plot", "--format", "png", "--vs", "torch"),
        _case("plot", "plot", "--format", "png", "--vs", "mmengine"),
        _case("explain", "explain"),
        _case("explain", "explain", "--json"),
        _case("lint", "lint"),
    ],
)
def test_every_command_translates_each_run_once(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``translate`` is wrapped by a counter wherever the library imported it; each
    (schedule, options) a command handles is translated at most once."""
    from click.testing import CliRunner

    from cfgsched.cli import main

    cfg = (
        tmp_path / "small.cfg"
    )  # torch's LinearLR warm-up is not darknet's: no burn-in
    cfg.write_text(
        SMALL_CFG.replace(
            "burn_in=100", "burn_in=0" if "native" in args else "burn_in=100"
        )
    )
    if args[-1] == "--module":
        module = tmp_path / "lr_schedule.py"
        res = CliRunner().invoke(main, ["convert", str(cfg), "-o", str(module)])
        assert res.exit_code in ((0, 1) if args[0] == "lint" else (0,)), res.output
        args = [*args, str(module)]
    elif args[0] == "plot":
        args = [*args, "-o", str(tmp_path / f"out.{args[args.index('--format') + 1]}")]
    users = ("tools.diff", "tools.plot", "tools.explain", "tools.lint", "codegen")
    users += ("adapters.approx", "adapters.native")
    for name in (*users, *(f"cli.{c}" for c in ("convert", "diff", "explain", "lint"))):
        importlib.import_module(f"cfgsched.{name}")  # every user of translate, loaded
    calls = Counter[tuple[str, Options]]()

    def counting(real: Any) -> Any:
        def count(schedule: NetSchedule, options: Options | None = None) -> Any:
            calls[repr(schedule), options or Options()] += 1
            return real(schedule, options)

        return count

    # every binding of cfgsched.run.translate (another test may have re-imported the
    # package, leaving modules that hold an older copy of the same function)
    for mod in list(sys.modules.values()):
        f = getattr(mod, "translate", None)
        if (getattr(mod, "__name__", "") or "").startswith("cfgsched") and (
            getattr(f, "__module__", None) == "cfgsched.run"
            and getattr(f, "__name__", None) == "translate"
        ):
            monkeypatch.setattr(mod, "translate", counting(f))
    res = CliRunner().invoke(main, [args[0], str(cfg), *args[1:]])
    assert res.exit_code in ((0, 1) if args[0] == "lint" else (0,)), res.output
    assert calls, "the command translated nothing: the counter is not wired"
    twice = {opts: n for (_, opts), n in calls.items() if n > 1}
    assert not twice, f"translated more than once: {twice}"


@pytest.mark.parametrize(
    ("fork", "words"),
    [
        ("alexeyab", "-gpus 4: learning_rate × 4"),
        ("pjreddie", "-gpus 4: learning_rate × 4"),
        ("hankai", "-gpus 4: hankai does not multiply learning_rate by the GPU count"),
    ],
)
def test_notes_say_what_gpus_does_to_the_rate(fork: str, words: str) -> None:
    text = "[net]\nbatch=64\nlearning_rate=0.01\nmax_batches=100\nwidth=32\nheight=32\n"
    s = parse(text + "channels=3\n\n[maxpool]\n", fork=fork)
    run = translate(s, Options(ngpus=4))
    assert run.notes["gpus"] == words
    assert (run.params.lr == s.learning_rate) == (fork == "hankai")  # the rule worded
    assert "gpus" not in translate(s).notes
