"""The reader against darknet's own parse results (golden ``parse`` blocks, three forks).

Expected values come from the golden files: ``parse.params`` printed by the forks' C code,
``parse.messages`` (their stderr) and ``parse.result``; expected error lines are either
stated by the fork's own message ("line #12") or found in the cfg text by key.
"""

from __future__ import annotations

import re

import pytest

from cfgsched.errors import CfgError
from cfgsched.kernel.formulas import f32
from cfgsched.reader.parser import parse
from tests.golden import GOLDEN, EvalCase, case_ids, eval_cases, needs_golden

pytestmark = needs_golden

CASES = eval_cases()
OK = [c for c in CASES if c.ok]
FAILING = [c for c in CASES if not c.ok]

FLOAT_KEYS = ("learning_rate", "momentum", "decay", "power", "scale", "gamma")
INT_KEYS = ("burn_in", "step", "max_batches", "subdivisions", "time_steps")


def _line_of(text: str, pattern: str) -> int:
    """1-based number of the first line matching the regex ``pattern``."""
    for n, line in enumerate(text.split("\n"), start=1):
        if re.match(pattern, line):
            return n
    raise AssertionError(f"no line matches {pattern!r}")


def test_golden_folder_has_cases() -> None:
    assert GOLDEN.is_dir()
    assert len(OK) > 100 and len(FAILING) >= 15


@pytest.mark.parametrize("case", OK, ids=case_ids(OK))
def test_ok_case_values_equal_parse_params(case: EvalCase) -> None:
    s = parse(case.cfg_text, fork=case.fork, source=case.source)
    p = case.params
    assert s.fork == case.fork
    assert s.policy.name == p["policy"]
    assert int(s.policy) == p["policy_enum"]
    for key in FLOAT_KEYS:
        assert f32(getattr(s, key)) == f32(float(p[key])), key
        assert getattr(s, key) == f32(getattr(s, key)), f"{key} is not a float32 value"
    for key in INT_KEYS:
        assert getattr(s, key) == p[key], key
    assert list(s.steps) == p["steps"]
    assert [f32(x) for x in s.scales] == [f32(float(x)) for x in p["scales"]]
    assert len(s.steps) == p["num_steps"]
    assert s.mini_batch == p["net_batch_after_parse"]
    assert s.images_per_iteration == p["batch_times_subdivisions"]
    if "sgdr_cycle" in p:
        assert s.learning_rate_min == f32(float(p["learning_rate_min"]))
        assert s.sgdr_cycle == p["sgdr_cycle"]
        assert s.sgdr_mult == p["sgdr_mult"]


def _expected_codes(
    case: EvalCase, s_policy_line: int | None
) -> set[tuple[str, int | None, str]]:
    """Warnings that the fork's own stderr messages announce: (code, line, key)."""
    out: set[tuple[str, int | None, str]] = set()
    for msg in case.data["parse"]["messages"]:
        if msg.startswith("Couldn't find policy"):
            out.add(("P001", s_policy_line, "policy"))
        m = re.match(r"Config file error line (\d+), could parse: (\S+)", msg)
        if m:
            out.add(("P003", int(m.group(1)), m.group(2)))
        m = re.match(r'-> expected an integer for "(\w+)" on line #(\d+)', msg)
        if m:
            out.add(("P011", int(m.group(2)), m.group(1)))
    return out


@pytest.mark.parametrize("case", OK, ids=case_ids(OK))
def test_ok_case_warnings_match_fork_messages(case: EvalCase) -> None:
    text = case.cfg_text
    s = parse(text, fork=case.fork, source=case.source)
    policy_line = _line_of(text, r"\s*policy\s*=") if "policy" in s.lines else None
    expected = _expected_codes(case, policy_line)
    # The codes each fork announces on stderr; the others are silent there.
    announced = ("P011",) if case.fork == "hankai" else ("P001", "P003")
    got = {(w.code, w.line, w.key) for w in s.warnings if w.code in announced}
    assert got == expected
    for msg in case.data["parse"]["messages"]:
        m = re.match(r"Couldn't find policy (.*), going with constant", msg)
        if m:
            assert s.policy_name == m.group(1)
    for w in s.warnings:
        assert w.code.startswith("P") and w.line is not None and w.line >= 1


def _expected_failure(case: EvalCase) -> tuple[int | None, str | None, str]:
    """(line, key, word in the message) for a case the fork refuses."""
    text = case.cfg_text
    result = case.data["parse"]["result"]
    messages = " ".join(case.data["parse"]["messages"])
    word = {"SIGSEGV": "crashes", "SIGFPE": "divides by zero"}.get(
        result.split()[-1], "stops"
    )
    if "First section must be" in messages or 'layer name "Net"' in messages:
        return _line_of(text, r"\["), None, word
    m = re.search(r'layer name "(\w+)" is not supported', messages)
    if m:
        return _line_of(text, rf"\[{m.group(1)}\]"), None, word
    m = re.search(
        r"config line #(\d+) from section \[net\] is unused or invalid: (\w+)=",
        messages,
    )
    if m:
        return int(m.group(1)), m.group(2), word
    m = re.search(
        r'duplicate key "(\w+)" in \[net\] at lines #\d+ and #(\d+)', messages
    )
    if m:
        return int(m.group(2)), m.group(1), word
    m = re.search(r'key "(\w+)" on line #(\d+) should be numeric', messages)
    if m:
        return int(m.group(2)), m.group(1), word
    m = re.search(r'learning rate policy "\w+" is not supported', messages)
    if m:
        return _line_of(text, r"policy="), "policy", word
    case_key = {
        # C crashes: the key whose value makes darknet read past the end of a list.
        "steps_trailing_comma_steps_only": "steps",  # "steps=100,200,"
        "steps_fewer_scales": "scales",  # 3 steps, 2 scales
        "steps_comment_with_comma": "steps",  # pjreddie counts the comma after '#'
        "batch_less_than_subdivisions": "subdivisions",  # 8/16 = 0 images per mini-batch
    }[case.case]
    return _line_of(text, rf"{case_key}="), case_key, word


@pytest.mark.parametrize("case", FAILING, ids=case_ids(FAILING))
def test_failing_case_raises_cfg_error_at_the_line(case: EvalCase) -> None:
    line, key, word = _expected_failure(case)
    with pytest.raises(CfgError) as info:
        parse(case.cfg_text, fork=case.fork, source=case.source)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.line == line
    assert err.key == key
    assert err.source == case.source
    assert word in err.message
    if key is not None:
        assert key in err.message
    assert f"{case.source}:{line}" in str(err) or line is None


def test_silent_truncation_is_still_warned_in_c_forks() -> None:
    (case,) = [c for c in OK if c.id == "alexeyab/int_key_with_fraction"]
    s = parse(case.cfg_text, fork=case.fork)
    assert case.params["burn_in"] == 100 and "burn_in=100.7" in case.cfg_text
    assert ("P011", 9, "burn_in") in {(w.code, w.line, w.key) for w in s.warnings}


def test_expected_failure_table_covers_every_failing_case() -> None:
    for c in FAILING:
        _expected_failure(c)  # a KeyError here: a failing case the table does not know
    kinds = {c.data["parse"]["result"] for c in FAILING}
    assert {
        "killed by signal SIGSEGV",
        "killed by signal SIGFPE",
        "exit status 3",
    } <= kinds
