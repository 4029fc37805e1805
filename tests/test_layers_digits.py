"""Issue 15 item 13: numbers are read with ASCII digits only, as C atoi/atof and
hankai's character set do; any other digit ends the number (with P004) or stops hankai."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfgsched
from cfgsched.errors import CfgError

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n{}\n[convolutional]\nfilters=2\n"

#: Decimal digits that are not ASCII (Arabic-Indic, fullwidth, mathematical bold, ...).
OTHER_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("learning_rate=٣", "learning_rate", 0.0),
        ("max_batches=５００", "max_batches", 0),
        ("learning_rate=𝟑", "learning_rate", 0.0),
        ("learning_rate=0.00١", "learning_rate", 0.0),
    ],
)
@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie"])
def test_issue_examples_read_as_c(fork: str, line: str, key: str, value: float) -> None:
    s = cfgsched.parse(NET.format(line), fork=fork)
    assert getattr(s, key) == value
    assert [w.code for w in s.warnings if w.key == key] == ["P004"]


@given(prefix=st.text("0123456789", max_size=3), digit=OTHER_DIGITS)
def test_any_non_ascii_digit_ends_the_number(prefix: str, digit: str) -> None:
    for fork in ("alexeyab", "pjreddie"):
        s = cfgsched.parse(NET.format(f"max_batches={prefix}{digit}7"), fork=fork)
        assert s.max_batches == (int(prefix) if prefix else 0)
        assert any(w.code == "P004" and w.key == "max_batches" for w in s.warnings)
    with pytest.raises(CfgError, match="should be numeric"):
        cfgsched.parse(NET.format(f"max_batches={prefix}{digit}7"), fork="hankai")


@given(digit=OTHER_DIGITS)
def test_layer_keys_too(digit: str) -> None:
    text = NET.format("") + f"stopbackward={digit}\n"
    s = cfgsched.parse(text, fork="alexeyab")
    assert s.layers[0].stopbackward == 0
    assert [w.code for w in s.warnings if w.key == "stopbackward"] == ["P004"]
