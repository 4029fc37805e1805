"""tools/editor.edit_text: edits land on the line the fork reads, with a line map."""

from __future__ import annotations

import pytest

from cfgsched.errors import CfgError
from cfgsched.reader.parser import parse
from cfgsched.tools.editor import Edit, edit_text


def test_replaced_and_inserted_lines_are_mapped() -> None:
    text = "[net]\r\nbatch=64\r\nlearning_rate=0.1\r\n[conv]\r\nx=1\r\n"
    ed = edit_text(
        text,
        [Edit("learning_rate", "0.2"), Edit("max_batches", "9")],
        fork="alexeyab",
        source="t",
    )
    assert ed.text == (
        "[net]\r\nbatch=64\r\nlearning_rate=0.2\r\nmax_batches=9\r\n[conv]\r\nx=1\r\n"
    )
    assert ed.lines == {3: "learning_rate", 4: "max_batches"} and ed.inserted == (4,)
    assert [ed.original_line(n) for n in (1, 3, 5, 6, None)] == [1, 3, 4, 5, None]


@pytest.mark.parametrize("fork", ["alexeyab", "pjreddie"])
def test_a_key_the_fork_does_not_read_is_not_edited(fork: str) -> None:
    """C forks strip only their own whitespace: `\\x0clearning_rate` is another key, so
    the edit inserts the key darknet reads (the old whitespace-splitting editor did not)."""
    size = "width=416\nheight=416\nchannels=3\n"
    text = f"[net]\n\x0clearning_rate=0.5\nmax_batches=10\n{size}"
    ed = edit_text(text, [Edit("learning_rate", "0.2")], fork=fork, source="t")
    assert ed.text == (
        f"[net]\n\x0clearning_rate=0.5\nmax_batches=10\n{size}learning_rate=0.2\n"
    )
    assert (
        parse(ed.text, fork=fork).learning_rate
        == parse(f"[net]\nlearning_rate=0.2\n{size}").learning_rate
    )


def test_first_of_duplicates_and_lines_split_at_newline_only() -> None:
    text = "[net]\nlearning_rate=0.1\u2028policy=steps\nlearning_rate=0.3\n"
    ed = edit_text(
        text,
        [Edit("learning_rate", "0.2"), Edit("policy", "poly")],
        fork="alexeyab",
        source="t",
    )
    assert ed.text == "[net]\nlearning_rate=0.2\nlearning_rate=0.3\npolicy=poly\n"
    assert ed.lines == {2: "learning_rate", 4: "policy"} and ed.inserted == (4,)


def test_no_section_and_duplicate_edits_are_errors() -> None:
    with pytest.raises(CfgError, match="no \\[net\\] section"):
        edit_text("", [Edit("batch", "1")], fork="alexeyab", source="t")
    with pytest.raises(CfgError, match="set twice"):
        edit_text(
            "[net]\n",
            [Edit("batch", "1"), Edit("batch", "2")],
            fork="alexeyab",
            source="t",
        )
