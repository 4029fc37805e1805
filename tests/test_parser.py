"""Unit tests of each reading rule, per fork (expected values computed by hand)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cfgsched.errors import CfgError
from cfgsched.kernel import formulas as _kernel
from cfgsched.reader.parser import Entry, Section, load, parse, read_sections
from cfgsched.schedule import WARNING_CODES, Policy
from tests.golden import DARKNET_CFGS, GOLDEN, needs_darknet_cfgs

f32 = _kernel.f32
C_FORKS = ("alexeyab", "pjreddie")
ALL = ("alexeyab", "pjreddie", "hankai")
LAYER = "\n[convolutional]\nfilters=1\nsize=1\nstride=1\npad=1\nactivation=linear\n"
HEAD = (
    "[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nchannels=3\n"  # lines 1-6
)


def cfg(*net_lines: str, head: str = HEAD, tail: str = LAYER) -> str:
    """A cfg whose [net] holds HEAD then ``net_lines`` (the first one is line 7)."""
    return head + "".join(line + "\n" for line in net_lines) + tail


def codes(s: object) -> list[tuple[str, int | None, str | None]]:
    return [(w.code, w.line, w.key) for w in s.warnings]  # type: ignore[attr-defined]


# --- forks, API --------------------------------------------------------------------


def test_unknown_fork_lists_the_forks() -> None:
    with pytest.raises(ValueError, match="alexeyab, pjreddie, hankai"):
        parse(cfg(), fork="darknet")
    with pytest.raises(ValueError, match="alexeyab"):
        read_sections(cfg(), fork="AlexeyAB")


def test_load_reads_bytes_and_names_the_source(tmp_path: Path) -> None:
    p = tmp_path / "x.cfg"
    p.write_bytes(cfg("learning_rate=0.0025", "policy=\xff").encode("latin-1"))
    s = load(p, fork="alexeyab")
    assert s.source == str(p) and s.learning_rate == f32(0.0025)
    assert s.policy_name == "\ufffd" and s.policy is Policy.CONSTANT
    with pytest.raises(CfgError) as info:
        load(str(p), fork="hankai")
    assert info.value.source == str(p) and info.value.line == 8


def test_defaults() -> None:
    for fork in ALL:
        s = parse(cfg(), fork=fork)
        assert s.learning_rate == f32(0.001) and s.momentum == f32(0.9)
        assert s.decay == f32(0.0001) and s.power == 4.0 and s.burn_in == 0
        assert s.policy is Policy.CONSTANT and s.policy_name == "constant"
        assert s.max_batches == 0 and (s.step, s.scale, s.gamma) == (0, 0.0, 0.0)
        assert s.batch == 64 and s.subdivisions == 16 and s.mini_batch == 4
        assert s.images_per_iteration == 64 and s.time_steps == 1
        if fork != "pjreddie":
            assert (
                s.learning_rate_min == f32(1e-5)
                and s.sgdr_mult == 2
                and s.sgdr_cycle == 0
            )


def test_lines_map_each_key_read() -> None:
    text = cfg(
        "learning_rate=0.01",
        "max_batches=500",
        "policy=steps",
        "steps=1,2",
        "scales=1,1",
    )
    for fork in ALL:
        s = parse(text, fork=fork)
        assert s.line_of("learning_rate") == 7 and s.line_of("policy") == 9
        assert s.line_of("steps") == 10 and s.line_of("scales") == 11
        assert s.line_of("batch") == 2 and s.line_of("gamma") is None


# --- whitespace, comments, CRLF, BOM -----------------------------------------------


def test_c_forks_remove_whitespace_everywhere() -> None:
    text = cfg(
        " learning_rate = 0 .0\t1 ",
        "policy = s t e p s",
        "steps = 1 0, 2 0",
        "scales=.5, .5",
    )
    for fork in C_FORKS:
        s = parse(text, fork=fork)
        assert s.learning_rate == f32(0.01)
        assert (
            s.policy is Policy.STEPS and s.steps == (10, 20) and s.scales == (0.5, 0.5)
        )
    with pytest.raises(CfgError, match="should be numeric") as info:
        parse(text, fork="hankai")
    assert info.value.line == 7 and info.value.key == "learning_rate"


def test_hankai_trims_and_cuts_inline_comments() -> None:
    text = cfg(
        "  learning_rate =  0.01   # tuned",
        "\tpolicy=steps#x",
        "steps=10 20",
        "scales=.5,.5,",
    )
    s = parse(text, fork="hankai")
    assert s.learning_rate == f32(0.01) and s.policy is Policy.STEPS
    assert s.steps == (10, 20) and s.scales == (0.5, 0.5) and s.warnings == ()


def test_comment_and_blank_lines_are_skipped() -> None:
    text = cfg("# learning_rate=9", "; learning_rate=8", "", "   ", "learning_rate=0.5")
    for fork in ALL:
        s = parse(text, fork=fork)
        assert s.learning_rate == 0.5 and s.line_of("learning_rate") == 11


def test_crlf_fails_only_in_pjreddie() -> None:
    text = cfg("learning_rate=0.002", "policy=poly").replace("\n", "\r\n")
    for fork in ("alexeyab", "hankai"):
        s = parse(text, fork=fork)
        assert s.policy is Policy.POLY and s.learning_rate == f32(0.002)
        assert s.line_of("policy") == 8
    with pytest.raises(
        CfgError, match=r"First section must be \[net\] or \[network\]"
    ) as info:
        parse(text, fork="pjreddie")
    assert info.value.line == 1 and "stops" in info.value.message


def test_utf8_bom_before_net() -> None:
    text = "\ufeff" + cfg()
    for fork in C_FORKS:
        with pytest.raises(CfgError, match="crashes") as info:
            parse(text, fork=fork)
        assert info.value.line == 1
    with pytest.raises(CfgError, match="without a section") as info:
        parse(text, fork="hankai")
    assert info.value.line == 2


def test_nul_bytes_end_a_c_line() -> None:
    s = parse(cfg("learning_rate=0.5\0garbage"), fork="alexeyab")
    assert s.learning_rate == 0.5 and s.warnings == ()


# --- sections --------------------------------------------------------------------


@pytest.mark.parametrize("fork", ALL)
def test_network_section_name_is_accepted(fork: str) -> None:
    s = parse(
        cfg("learning_rate=0.25", head=HEAD.replace("[net]", "[network]")), fork=fork
    )
    assert s.learning_rate == 0.25


@pytest.mark.parametrize("fork", ALL)
@pytest.mark.parametrize("first", ["[Net]", "[NET]", "[convolutional]"])
def test_first_section_must_be_net(fork: str, first: str) -> None:
    with pytest.raises(CfgError) as info:
        parse("# hi\n" + cfg(head=HEAD.replace("[net]", first)), fork=fork)
    assert info.value.line == 2 and "stops" in info.value.message


@pytest.mark.parametrize("fork", ALL)
def test_no_section_at_all(fork: str) -> None:
    with pytest.raises(CfgError, match="no sections"):
        parse("# only a comment\n\n", fork=fork)


def test_hankai_needs_a_layer_and_known_sections() -> None:
    with pytest.raises(CfgError, match="without layer sections"):
        parse(cfg(tail=""), fork="hankai")
    assert parse(cfg(tail=""), fork="alexeyab").learning_rate == f32(0.001)
    with pytest.raises(
        CfgError, match='layer name "detection" is not supported'
    ) as info:
        parse(cfg("", tail="[detection]\nclasses=2\n"), fork="hankai")
    assert info.value.line == 8


def test_key_before_first_section() -> None:
    text = "batch=1\n" + cfg()
    for fork in C_FORKS:
        with pytest.raises(CfgError, match="crashes"):
            parse(text, fork=fork)
    with pytest.raises(CfgError, match="without a section") as info:
        parse(text, fork="hankai")
    assert info.value.line == 1


# --- values ------------------------------------------------------------------------


def test_empty_value_keeps_default_with_p003() -> None:
    for fork in ALL:
        s = parse(cfg("burn_in=", "learning_rate=0.5"), fork=fork)
        assert s.burn_in == 0 and s.learning_rate == 0.5
        assert ("P003", 7, "burn_in") in codes(s)


def test_duplicates_first_wins_in_c_fatal_in_hankai() -> None:
    text = cfg("learning_rate=0.5", "momentum=0.8", "learning_rate=0.25")
    for fork in C_FORKS:
        s = parse(text, fork=fork)
        assert s.learning_rate == 0.5 and s.line_of("learning_rate") == 7
        assert ("P005", 9, "learning_rate") in codes(s)
    with pytest.raises(CfgError, match="duplicate key") as info:
        parse(text, fork="hankai")
    assert (info.value.line, info.value.key) == (9, "learning_rate")
    assert "#7 and #9" in info.value.message


def test_line_without_equals_shadows_a_later_key_in_c_forks() -> None:
    s = parse(cfg("learning_rate", "learning_rate=0.5"), fork="alexeyab")
    assert s.learning_rate == f32(0.001)
    assert [c for c, _, _ in codes(s)].count("P012") == 2


def test_atoi_prefix_and_fraction() -> None:
    text = cfg("burn_in=2e3", "max_batches=100.7", "learning_rate=1e-3")
    for fork in C_FORKS:
        s = parse(text, fork=fork)
        assert s.burn_in == 2 and s.max_batches == 100 and s.learning_rate == f32(0.001)
        assert ("P004", 7, "burn_in") in codes(s) and (
            "P011",
            8,
            "max_batches",
        ) in codes(s)
    # hankai reads learning_rate before burn_in (its parse_net_section order)
    with pytest.raises(
        CfgError, match='key "learning_rate" should be numeric, found "1e-3"'
    ):
        parse(text, fork="hankai")
    with pytest.raises(CfgError, match='key "burn_in" should be numeric, found "2e3"'):
        parse(cfg("burn_in=2e3"), fork="hankai")
    s = parse(cfg("max_batches=100.7", "burn_in=-3.9"), fork="hankai")
    assert s.max_batches == 100 and s.burn_in == -3
    assert ("P011", 7, "max_batches") in codes(s)


def test_atof_prefix_warns() -> None:
    s = parse(cfg("learning_rate=0.01abc", "momentum=.95"), fork="pjreddie")
    assert s.learning_rate == f32(0.01) and s.momentum == f32(0.95)
    assert ("P004", 7, "learning_rate") in codes(s)


def test_int_overflow_wraps_like_atoi() -> None:
    s = parse(cfg("max_batches=4294967297"), fork="alexeyab")
    assert s.max_batches == 1 and ("P004", 7, "max_batches") in codes(s)


def test_hankai_reads_ints_through_float32() -> None:
    s = parse(cfg("max_batches=16777217"), fork="hankai")
    assert s.max_batches == 16777216 and ("P014", 7, "max_batches") in codes(s)
    assert parse(cfg("max_batches=16777217"), fork="alexeyab").max_batches == 16777217


def test_hankai_number_characters() -> None:
    for bad in ("-", ".", "1e5", "0x10", "nan", "+1"):
        with pytest.raises(CfgError, match="hankai stops") as info:
            parse(cfg(f"learning_rate={bad}"), fork="hankai")
        assert info.value.line == 7 and info.value.key == "learning_rate"
    assert parse(cfg("learning_rate=1.5.7"), fork="hankai").learning_rate == 1.5
    assert parse(cfg("learning_rate=1-2"), fork="hankai").learning_rate == 1.0


def test_hankai_rounds_decimal_once_to_float32() -> None:
    # 1 + 2**-24 + 1e-40 in decimal: the double rounds to the tie 1 + 2**-24, then to
    # even (1.0); strtof sees the exact value above the tie and rounds up.
    text = format(1 + 2**-24, ".40f")[:-10] + "0000000001"
    assert (
        parse(cfg(f"learning_rate={text}"), fork="hankai").learning_rate == 1 + 2**-23
    )
    assert parse(cfg(f"learning_rate={text}"), fork="alexeyab").learning_rate == 1.0


def test_float_values_are_float32() -> None:
    for fork in ALL:
        s = parse(cfg("learning_rate=0.1", "momentum=0.949", "decay=0.0005"), fork=fork)
        assert s.learning_rate == 0.10000000149011612
        assert s.momentum == f32(0.949) and s.decay == f32(0.0005)


def test_c_forks_accept_inf_nan() -> None:
    s = parse(cfg("learning_rate=inf", "power=nan"), fork="alexeyab")
    assert s.learning_rate == math.inf and math.isnan(s.power)


# --- policies ----------------------------------------------------------------------


def test_policy_names_are_case_sensitive() -> None:
    for fork in C_FORKS:
        s = parse(cfg("policy=Steps"), fork=fork)
        assert s.policy is Policy.CONSTANT and s.policy_name == "Steps"
        assert ("P001", 7, "policy") in codes(s)
    with pytest.raises(CfgError, match='policy "Steps" is not supported') as info:
        parse(cfg("policy=Steps"), fork="hankai")
    assert info.value.line == 7


def test_sgdr_only_in_alexeyab_and_hankai() -> None:
    text = cfg("max_batches=3000", "policy=sgdr", "sgdr_cycle=1000")
    for fork in ("alexeyab", "hankai"):
        s = parse(text, fork=fork)
        assert s.policy is Policy.SGDR and s.sgdr_cycle == 1000 and s.sgdr_mult == 2
    s = parse(text, fork="pjreddie")
    assert s.policy is Policy.CONSTANT and ("P001", 8, "policy") in codes(s)
    # pjreddie reads sgdr_cycle with no policy: an unknown key there, not a policy key
    assert ("P015", 9, "sgdr_cycle") in codes(s)
    assert ("P010", 9, "sgdr_cycle") not in codes(s)


def test_sgdr_cycle_defaults_to_max_batches() -> None:
    s = parse(cfg("max_batches=4000", "policy=sgdr", "sgdr_mult=3"), fork="alexeyab")
    assert s.sgdr_cycle == 4000 and s.sgdr_mult == 3


def test_policy_hash_is_part_of_the_name_in_c_forks() -> None:
    s = parse(cfg("policy=poly#fast"), fork="alexeyab")
    assert s.policy is Policy.CONSTANT and s.policy_name == "poly#fast"
    assert {("P001", 7, "policy"), ("P002", 7, "policy")} <= set(codes(s))
    assert parse(cfg("policy=poly #fast"), fork="hankai").policy is Policy.POLY


def test_random_policy_warns() -> None:
    for fork in ALL:
        s = parse(cfg("policy=random"), fork=fork)
        assert s.policy is Policy.RANDOM and ("P008", 7, "policy") in codes(s)


def test_keys_read_depend_on_policy() -> None:
    text = cfg("policy=poly", "gamma=0.5", "step=10", "scale=0.5")
    for fork in C_FORKS:
        s = parse(text, fork=fork)
        assert (s.gamma, s.step, s.scale) == (0.0, 0, 0.0)
        assert {c for c, _, _ in codes(s)} >= {"P010"}
    with pytest.raises(CfgError, match=r"unused or invalid: gamma=0\.5") as info:
        parse(text, fork="hankai")
    assert info.value.line == 8  # alphabetically first unused key: gamma < scale < step
    s = parse(
        cfg("policy=sigmoid", "gamma=0.5", "step=10", "scale=0.5"), fork="alexeyab"
    )
    assert (s.gamma, s.step, s.scale) == (0.5, 10, 0.0)
    s = parse(cfg("policy=step", "gamma=0.5", "step=10", "scale=0.5"), fork="pjreddie")
    assert (s.gamma, s.step, s.scale) == (0.0, 10, 0.5)
    s = parse(cfg("policy=exp"), fork="hankai")
    assert s.gamma == 1.0


def test_adam_keys() -> None:
    s = parse(cfg("adam=1", "B1=0.8", "B2=0.99", "eps=0.0001"), fork="hankai")
    assert s.adam and (s.b1, s.b2, s.eps) == (f32(0.8), f32(0.99), f32(0.0001))
    s = parse(cfg("B1=0.8"), fork="alexeyab")
    assert not s.adam and s.b1 == f32(0.9) and ("P010", 7, "B1") in codes(s)


# --- steps / scales ----------------------------------------------------------------


def test_steps_basic_and_unsorted() -> None:
    for fork in ALL:
        s = parse(cfg("policy=steps", "steps=300,-1,300", "scales=.1,10,.5"), fork=fork)
        assert s.steps == (300, -1, 300) and s.scales == (f32(0.1), 10.0, 0.5)


def test_steps_without_scales_stops() -> None:
    for fork in ALL:
        with pytest.raises(
            CfgError, match="STEPS policy must have steps and scales"
        ) as info:
            parse(cfg("policy=steps", "steps=100"), fork=fork)
        assert info.value.key == "scales"


def test_trailing_comma_in_both_adds_a_zero_step_in_c_forks() -> None:
    text = cfg("policy=steps", "steps=100,200,", "scales=.5,.5,")
    for fork in C_FORKS:
        s = parse(text, fork=fork)
        assert s.steps == (100, 200, 0) and s.scales == (0.5, 0.5, 0.0)
        assert ("P007", 8, "steps") in codes(s)
    s = parse(text, fork="hankai")
    assert s.steps == (100, 200) and s.scales == (0.5, 0.5)


def test_fewer_scales_crash_in_c_pad_in_hankai() -> None:
    text = cfg("policy=steps", "steps=100,200,300", "scales=.5,.5")
    for fork in C_FORKS:
        with pytest.raises(
            CfgError, match=r"crashes here: fewer scales \(2\) than steps \(3\)"
        ) as i:
            parse(text, fork=fork)
        assert (i.value.line, i.value.key) == (9, "scales")
    s = parse(text, fork="hankai")
    assert s.scales == (0.5, 0.5, 0.0) and ("P013", 9, "scales") in codes(s)


def test_trailing_comma_in_steps_only_crashes_in_c() -> None:
    for fork in C_FORKS:
        with pytest.raises(CfgError, match="trailing comma") as info:
            parse(cfg("policy=steps", "steps=100,200,", "scales=.5,.5"), fork=fork)
        assert (info.value.line, info.value.key) == (8, "steps")


def test_extra_scales_ignored() -> None:
    for fork in ALL:
        s = parse(cfg("policy=steps", "steps=100", "scales=.5,.25"), fork=fork)
        assert s.scales == (0.5,) and ("P006", 9, "scales") in codes(s)


def test_hash_in_steps_alexeyab_stops_counting() -> None:
    text = cfg("policy=steps", "steps=100,200 # ,300", "scales=.5,.5")
    s = parse(text, fork="alexeyab")
    assert s.steps == (100, 200) and ("P002", 8, "steps") in codes(s)
    with pytest.raises(CfgError, match="crashes") as info:
        parse(text, fork="pjreddie")
    assert info.value.line == 8
    assert parse(text, fork="hankai").steps == (100, 200)


def test_seq_scales_shorter_than_steps_crashes_alexeyab() -> None:
    text = cfg("policy=steps", "steps=1,2", "scales=1,1", "seq_scales=1")
    with pytest.raises(CfgError, match="seq_scales") as info:
        parse(text, fork="alexeyab")
    assert info.value.line == 10
    assert parse(text, fork="pjreddie").steps == (1, 2)


def test_hankai_list_elements_are_runs() -> None:
    s = parse(
        cfg("policy=steps", "steps=1e5;7 x 9", "scales=.5 .5 , .25 1"), fork="hankai"
    )
    assert s.steps == (1, 5, 7, 9) and s.scales == (0.5, 0.5, 0.25, 1.0)
    s = parse(cfg("policy=steps", "steps=10,-,20", "scales=1,1"), fork="hankai")
    assert s.steps == (10,)  # a run that is not a number ends the list


def test_sgdr_scales_default_per_fork() -> None:
    text = cfg("max_batches=9000", "policy=sgdr", "sgdr_cycle=1000", "steps=4000,6000")
    assert parse(text, fork="alexeyab").scales == (1.0, 1.0)
    assert parse(text, fork="hankai").scales == (0.0, 0.0)
    assert parse(cfg("policy=sgdr", "max_batches=10"), fork="alexeyab").steps == ()


# --- batch / subdivisions ----------------------------------------------------------


def test_batch_not_divisible() -> None:
    for fork in ALL:
        s = parse(
            cfg(head=HEAD.replace("subdivisions=16", "subdivisions=6")), fork=fork
        )
        assert s.mini_batch == 10 and s.images_per_iteration == 60
        assert ("P009", 3, "subdivisions") in codes(s)


def test_batch_smaller_than_subdivisions() -> None:
    text = cfg(head=HEAD.replace("batch=64", "batch=8"))
    for fork in ("alexeyab", "hankai"):
        s = parse(text, fork=fork)
        assert s.mini_batch == 1 and s.images_per_iteration == 16 and s.batch == 8
    with pytest.raises(CfgError, match="divides by zero") as info:
        parse(text, fork="pjreddie")
    assert (info.value.line, info.value.key) == (3, "subdivisions")


@pytest.mark.parametrize("fork", ALL)
def test_zero_subdivisions(fork: str) -> None:
    with pytest.raises(CfgError, match="divides by zero"):
        parse(cfg(head=HEAD.replace("subdivisions=16", "subdivisions=0")), fork=fork)


def test_time_steps_multiply_the_mini_batch() -> None:
    s = parse(cfg("time_steps=3"), fork="alexeyab")
    assert s.mini_batch == 12 and s.time_steps == 3 and s.images_per_iteration == 192


# --- what makes the LR code crash or hang -----------------------------------------


@pytest.mark.parametrize("fork", ALL)
def test_step_zero_divides_by_zero(fork: str) -> None:
    with pytest.raises(
        CfgError, match="divides by zero: step=0 with policy=step"
    ) as info:
        parse(cfg("policy=step", "step=0"), fork=fork)
    assert (info.value.line, info.value.key) == (8, "step")
    assert parse(cfg("policy=step", "step=-5"), fork=fork).step == -5


@pytest.mark.parametrize("fork", ["alexeyab", "hankai"])
def test_sgdr_loops_forever(fork: str) -> None:
    with pytest.raises(CfgError, match="loop forever: sgdr_cycle must be > 0") as info:
        parse(cfg("max_batches=100", "policy=sgdr", "sgdr_cycle=0"), fork=fork)
    assert info.value.line == 9
    with pytest.raises(CfgError, match="sgdr_cycle must be > 0"):
        parse(cfg("policy=sgdr"), fork=fork)  # sgdr_cycle defaults to max_batches = 0
    with pytest.raises(CfgError, match="sgdr_mult must be > 0") as info:
        parse(
            cfg("max_batches=300", "policy=sgdr", "sgdr_cycle=100", "sgdr_mult=0"),
            fork=fork,
        )
    assert info.value.line == 10
    s = parse(
        cfg("max_batches=100", "policy=sgdr", "sgdr_cycle=100", "sgdr_mult=0"),
        fork=fork,
    )
    assert s.sgdr_mult == 0  # the second cycle is never reached
    assert (
        parse(cfg("policy=sgdr", "sgdr_cycle=0"), fork="pjreddie").policy
        is Policy.CONSTANT
    )


# --- layers ------------------------------------------------------------------------


def test_layer_learning_rates_and_classes() -> None:
    tail = (
        "\n[convolutional]\nfilters=1\nlearning_rate=0.1\n"
        "[maxpool]\nsize=2\n"
        "[convolutional]\nfilters=255\nlearning_rate=2\n"
        "[yolo]\nclasses=80\n[yolo]\nclasses=3\n"
    )
    for fork in ALL:
        s = parse(cfg(tail=tail), fork=fork)
        assert [(x.index, x.section, x.multiplier, x.line) for x in s.layer_lrs] == [
            (0, "convolutional", f32(0.1), 10),
            (2, "convolutional", 2.0, 15),
        ]
        assert s.classes == 80
    assert parse(cfg(), fork="alexeyab").classes is None


# --- read_sections -----------------------------------------------------------------


def test_read_sections_entries_per_fork() -> None:
    text = "[net]\r\n lr = 0.1 # x\r\n# c\r\nnovalue\r\nempty=\r\n[yolo]\nclasses = 2\n"
    secs = read_sections(text, fork="alexeyab")
    assert [s.name for s in secs] == ["net", "yolo"] and [s.line for s in secs] == [
        1,
        6,
    ]
    assert secs[0].entries == (Entry("lr", "0.1#x", 2, " lr = 0.1 # x\r"),)
    assert secs[0].raw == "[net]\r" and secs[1].get("classes") == Entry(
        "classes", "2", 7, "classes = 2"
    )
    hk = read_sections(text, fork="hankai")
    assert hk[0].entries == (Entry("lr", "0.1", 2, " lr = 0.1 # x\r"),)
    pj = read_sections(text, fork="pjreddie")
    assert pj[0].name == "net]\r" and pj[0].entries[0].value == "0.1#x\r"
    assert isinstance(secs[0], Section) and [e.key for e in secs[0].entries] == ["lr"]


def test_read_sections_keeps_duplicates_in_order() -> None:
    secs = read_sections("[net]\na=1\nb=2\na=3\n", fork="pjreddie")
    assert [(e.key, e.value, e.line) for e in secs[0].entries] == [
        ("a", "1", 2),
        ("b", "2", 3),
        ("a", "3", 4),
    ]
    assert secs[0].get("a") == Entry("a", "1", 2, "a=1")


def test_new_warning_codes_are_registered() -> None:
    text = cfg("policy=steps", "steps=1,2", "scales=1", "max_batches=16777217")
    s = parse(text, fork="hankai")
    assert {w.code for w in s.warnings} == {"P013", "P014"}
    assert all(w.code in WARNING_CODES for w in s.warnings)


# --- the real cfgs -----------------------------------------------------------------

# Files without a golden case: expectations from darknet_cfgs/README.md.
NOT_IN_GOLDEN = {
    "resnet152_trident.cfg": {
        "alexeyab": "SGDR",
        "pjreddie": "CONSTANT",
        "hankai": "SGDR",
    },
    "t1.test.cfg": {"alexeyab": "STEPS", "pjreddie": "STEPS", "hankai": None},
    "tiny-yolo-voc.cfg": {"alexeyab": "STEPS", "pjreddie": "STEPS", "hankai": "STEPS"},
    "yolov7.cfg": {"alexeyab": "STEPS", "pjreddie": "STEPS", "hankai": "STEPS"},
}


def _expected_real() -> dict[tuple[str, str], str | None]:
    out: dict[tuple[str, str], str | None] = {}
    for name, per_fork in NOT_IN_GOLDEN.items():
        for fork, pol in per_fork.items():
            out[(name, fork)] = pol
    index = json.loads((GOLDEN / "index.json").read_text())
    for case in index["cases"]:
        if case["kind"] != "real":
            continue
        data = json.loads((GOLDEN / "alexeyab" / f"{case['case']}.json").read_text())
        name = Path(data["cfg_source"]["file"]).name
        for fork, res in case["results"].items():
            out[(name, fork)] = res["policy"] if res["ok"] else None
    return out


@needs_darknet_cfgs
@pytest.mark.skipif(
    not GOLDEN.is_dir(), reason=f"golden data folder {GOLDEN} is absent"
)
def test_every_real_cfg_parses_or_fails_as_darknet_does() -> None:
    expected = _expected_real()
    files = sorted(p.name for p in DARKNET_CFGS.glob("*.cfg"))
    assert {name for name, _ in expected} == set(files)
    for name in files:
        for fork in ALL:
            want = expected[(name, fork)]
            if want is None:
                with pytest.raises(CfgError) as info:
                    load(DARKNET_CFGS / name, fork=fork)
                assert info.value.line is not None and "stops" in info.value.message
            else:
                s = load(DARKNET_CFGS / name, fork=fork)
                assert s.policy.name == want, (name, fork)


# --- hankai: section names and every section's keys (issue 10, fidelity 1) -----------

#: Names the older darknet parsers know but hank-ai's layer-name table does not.
HANKAI_UNKNOWN_NAMES = (
    "crop", "gru", "conv_lstm", "local", "activation", "history", "lrn",
    "normalization", "batchnorm", "implicit", "detection", "reorg", "deconvolutional",
    "Convolutional", " net ",
)  # fmt: skip
YOLO = "[yolo]\nmask=0\nanchors=10,13\nclasses=1\nnum=1\n"


@pytest.mark.parametrize("name", HANKAI_UNKNOWN_NAMES)
def test_hankai_stops_on_names_missing_from_its_table(name: str) -> None:
    tail = LAYER + f"[{name}]\nbad_key=1\n" + "[maxpool]\nsize=2\n"
    with pytest.raises(CfgError, match=f'layer name "{name}" is not supported') as info:
        parse(cfg(tail=tail), fork="hankai")
    assert (info.value.line, info.value.key) == (14, None)


def test_hankai_accepts_every_name_of_its_table_with_its_keys() -> None:
    tail = (
        "\n[conv]\nfilters=4\nsize=3\nstride_x=1\nstride_y=2\ncoordconv=1\n"
        "[max]\nsize=2\nmaxpool_depth=1\nout_channels=4\n"
        "[local_avg]\nsize=2\nstride=2\n[avg]\n[reorg3d]\nstride=2\nreverse=1\n"
        "[route]\nlayers=-1,-2\ngroups=2\ngroup_id=1\n[shortcut]\nfrom=-2\n"
        "weights_type=per_channel\n[scale_channels]\nfrom=-3\nscale_wh=1\n"
        "[sam]\nfrom=-4\n[upsample]\nstride=2\n[dropout]\nprobability=.1\n"
        "dropblock=1\n[conn]\noutput=10\n[crnn]\nhidden=4\n[rnn]\nlogistic=1\n"
        "[lstm]\noutput=3\n[soft]\ntemperature=2\n[cost]\ntype=sse\n"
        "[contrastive]\nyolo_layer=-1\ncontrastive_neg_max=3\n"
        "[Gaussian_yolo]\nuc_normalizer=1\nyolo_point=center\nclasses=1\n"
        "[yolo]\nbeta_nms=.6\nnew_coords=1\nembedding_layer=-2\nsim_thresh=.8\n"
        "[region]\nbias_match=1\nabsolute=1\nclassfix=-1\ncoords=4\n"
    )
    common = "".join(
        f"{k}=0\n"
        for k in (
            "clip", "onlyforward", "dont_update", "burnin_update", "stopbackward",
            "train_only_bn", "dontload", "dontloadscales", "learning_rate",
        )
    )  # fmt: skip
    s = parse(cfg(tail=tail + "[convolutional]\n" + common + "[yolo]\n"), fork="hankai")
    assert s.classes == 1


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("uc_normalizer", "did you mean iou_normalizer?"),  # Gaussian_yolo only
        ("beta1", "hankai has no such [yolo] key"),
        ("from", "hankai has no such [yolo] key"),
        ("show_details", "hankai has no such [yolo] key"),
        ("yolo_point", "hankai has no such [yolo] key"),
        ("ignore_tresh", "did you mean ignore_thresh?"),
    ],
)
def test_hankai_stops_on_keys_its_layer_parser_never_reads(key: str, hint: str) -> None:
    tail = LAYER + YOLO + f"{key}=1\n"
    text = cfg(tail=tail)
    with pytest.raises(CfgError) as info:
        parse(text, fork="hankai")
    err = info.value
    assert (err.line, err.key) == (19, key)
    assert f"config line #19 from section [yolo] is unused or invalid: {key}=1" in (
        err.message
    )
    assert err.message.endswith(f"({hint})")
    for fork in C_FORKS:  # the C forks only print "Unused field" for layers
        assert parse(text, fork=fork).classes == 1


def test_hankai_names_the_alphabetically_first_unused_key_of_a_section() -> None:
    tail = "\n[maxpool]\nzeta=1\nsize=2\nBeta=2\nalpha=3\n"
    with pytest.raises(CfgError) as info:
        parse(cfg(tail=tail), fork="hankai")
    # byte order: upper case sorts first ("Beta" < "alpha" < "zeta")
    assert (info.value.line, info.value.key) == (11, "Beta")


def test_hankai_order_of_stops() -> None:
    bad3 = "[maxpool]\nsize=2\nwrong=1\n"  # layer 3 at line 16, its unused key at 18
    head_layers = LAYER + "[maxpool]\nsize=2\n"
    # an unknown name later in the file stops first: it is found while reading
    text = cfg(tail=head_layers + bad3 + "[lrn]\nsize=5\n")
    with pytest.raises(CfgError, match='layer name "lrn"') as info:
        parse(text, fork="hankai")
    assert info.value.line == 19
    # the first unknown name in the file: [local] before [detection] (as in t1.test.cfg)
    text = cfg(tail=LAYER + "[local]\nfilters=1\n[detection]\nclasses=1\n")
    with pytest.raises(CfgError, match='layer name "local"') as info:
        parse(text, fork="hankai")
    assert info.value.line == 14
    # an unused [net] key stops before any layer problem
    text = cfg("max_crop=448", tail=head_layers + bad3 + "[empty]\n")
    with pytest.raises(CfgError, match="section \\[net\\]") as info:
        parse(text, fork="hankai")
    assert (info.value.line, info.value.key) == (7, "max_crop")
    # an unused key in layer 3 stops before [empty] in layer 4 (no layer of that type)
    text = cfg(tail=head_layers + bad3 + "[empty]\n")
    with pytest.raises(CfgError, match="section \\[maxpool\\]") as info:
        parse(text, fork="hankai")
    assert (info.value.line, info.value.key) == (18, "wrong")
    with pytest.raises(CfgError, match='layer type "empty" not recognized') as info:
        parse(cfg(tail=head_layers + "[empty]\n[silence]\n"), fork="hankai")
    assert (info.value.line, info.value.key) == (16, None)


@pytest.mark.parametrize("name", ["empty", "silence", "blank", "net", "network"])
def test_hankai_names_without_a_layer_type_stop_when_reached(name: str) -> None:
    with pytest.raises(
        CfgError, match=f'layer type "{name}" not recognized \\(layer 1\\)'
    ):
        parse(cfg(tail=LAYER + f"[{name}]\n"), fork="hankai")
    assert parse(cfg(tail=LAYER + f"[{name}]\n"), fork="alexeyab").batch == 64


@pytest.mark.parametrize("name", ["sam", "scale_channels"])
def test_hankai_sam_and_scale_channels_need_from(name: str) -> None:
    with pytest.raises(CfgError, match='expecting to find a key named "from"') as info:
        parse(cfg(tail=LAYER + f"[{name}]\nactivation=linear\n"), fork="hankai")
    assert (info.value.line, info.value.key) == (14, "from")


def test_hankai_checks_the_size_when_a_detector_is_last() -> None:
    for w, h, key, line in ((400, 416, "width", 4), (416, 16, "height", 5)):
        head = HEAD.replace("width=416", f"width={w}").replace(
            "height=416", f"height={h}"
        )
        for last in ("yolo", "region", "Gaussian_yolo"):
            with pytest.raises(CfgError, match="multiples of 32") as info:
                parse(
                    cfg(head=head, tail=LAYER + f"[{last}]\nclasses=1\n"), fork="hankai"
                )
            assert (info.value.line, info.value.key) == (line, key)
        # a detector that is not the last layer, or a C fork: no check
        s = parse(cfg(head=head, tail=LAYER + YOLO + "[maxpool]\n"), fork="hankai")
        assert s.classes == 1
        assert parse(cfg(head=head, tail=LAYER + YOLO), fork="alexeyab").classes == 1


def test_hankai_replaces_a_net_section_without_keys_by_the_next_one() -> None:
    text = "[net]\n# nothing\nempty=\n[convolutional]\nfilters=1\n[maxpool]\nsize=2\n"
    with pytest.raises(CfgError, match="holds no key") as info:
        parse(text, fork="hankai")
    assert info.value.line == 4 and "found '[convolutional]'" in info.value.message
    with pytest.raises(CfgError, match="without layer sections"):
        parse("[net]\n[convolutional]\nfilters=1\n", fork="hankai")


def test_unused_net_key_says_when_hankai_would_read_it() -> None:
    with pytest.raises(
        CfgError, match=r"steps=1,2 \(read only with policy=steps or sgdr\)"
    ):
        parse(cfg("policy=poly", "steps=1,2"), fork="hankai")
    with pytest.raises(CfgError, match=r"B1=0.5 \(read only with adam=1\)"):
        parse(cfg("B1=0.5"), fork="hankai")


# --- "No input parameters supplied" (issue 10, fidelity 2) ---------------------------

NO_SIZE = "[net]\nbatch=64\nsubdivisions=16\n"  # lines 1-3


@pytest.mark.parametrize("fork", ALL)
def test_no_input_parameters_supplied(fork: str) -> None:
    with pytest.raises(CfgError, match="No input parameters supplied") as info:
        parse(cfg("width=416", "height=416", head=NO_SIZE), fork=fork)
    assert (info.value.line, info.value.key) == (1, None)
    assert info.value.message.endswith("(no channels)")
    with pytest.raises(CfgError, match=r"\(width=0\)"):
        parse(cfg(head=HEAD.replace("width=416", "width=0")), fork=fork)
    assert parse(cfg("inputs=256", head=NO_SIZE), fork=fork).batch == 64
    with pytest.raises(CfgError, match=r"\(no height, no width, no channels\)"):
        parse(cfg("inputs=0", head=NO_SIZE), fork=fork)


@pytest.mark.parametrize("fork", ALL)
def test_no_input_parameters_comes_before_the_schedule_checks(fork: str) -> None:
    for lines in (("policy=steps", "steps=100"), ("policy=step", "step=0")):
        with pytest.raises(CfgError, match="No input parameters"):
            parse(cfg(*lines, head=NO_SIZE), fork=fork)
    # a zero subdivisions divides by zero earlier, while the [net] is read
    with pytest.raises(CfgError, match="divides by zero"):
        parse(cfg(head=NO_SIZE.replace("16", "0")), fork=fork)


def test_pjreddie_zero_mini_batch_is_reached_after_the_input_check() -> None:
    head = NO_SIZE.replace("batch=64", "batch=8")
    with pytest.raises(CfgError, match="No input parameters"):
        parse(cfg(head=head), fork="pjreddie")
    with pytest.raises(CfgError, match="0 images per mini-batch"):
        parse(cfg("inputs=10", head=head), fork="pjreddie")


def test_contrastive_needs_two_images_per_mini_batch() -> None:
    head = HEAD.replace("batch=64", "batch=16")  # 16 / 16 = 1 image per mini-batch
    for fork in ("alexeyab", "hankai"):
        with pytest.raises(CfgError, match="must be > 1 for contrastive") as info:
            parse(cfg("contrastive=1", head=head), fork=fork)
        assert (info.value.line, info.value.key) == (7, "contrastive")
    assert parse(cfg("contrastive=1"), fork="alexeyab").mini_batch == 4
    assert parse(cfg("contrastive=1", head=head), fork="pjreddie").mini_batch == 1


# --- text before the first section (issue 10, fidelity 4) ----------------------------


def test_a_lone_carriage_return_is_named_as_such() -> None:
    text = ("\n" + cfg()).replace("\n", "\r\n")
    with pytest.raises(CfgError) as info:
        parse(text, fork="pjreddie")
    assert info.value.line == 1
    assert "CRLF" in info.value.message and "BOM" not in info.value.message
    assert parse(text, fork="alexeyab").batch == 64
    with pytest.raises(CfgError, match="byte order mark"):
        parse("\ufeff" + cfg(), fork="alexeyab")
    with pytest.raises(CfgError, match="the key 'batch' is outside any section"):
        parse("batch=1\n" + cfg(), fork="pjreddie")


# --- unknown [net] keys: P015 (issue 10) ---------------------------------------------


@pytest.mark.parametrize("fork", C_FORKS)
def test_unknown_net_key_warns_with_a_guess(fork: str) -> None:
    s = parse(cfg("max_batch=1000", "Learning_Rate=0.1", "foo=1"), fork=fork)
    got = {(w.line, w.key): w.message for w in s.warnings if w.code == "P015"}
    assert got == {
        (7, "max_batch"): f"unknown [net] key max_batch: {fork} never reads it "
        "(did you mean max_batches?)",
        (8, "Learning_Rate"): f"unknown [net] key Learning_Rate: {fork} never reads it "
        "(did you mean learning_rate?)",
        (9, "foo"): f"unknown [net] key foo: {fork} never reads it",
    }
    assert s.max_batches == 0 and "P015" in WARNING_CODES


def test_unknown_net_key_names_the_forks_that_read_it() -> None:
    s = parse(cfg("mosaic=1", "notruth=1", "max_crop=448"), fork="pjreddie")
    assert [(w.key, w.message) for w in s.warnings if w.code == "P015"] == [
        ("mosaic", "unknown [net] key mosaic: pjreddie never reads it "
         "(alexeyab and hankai read it)"),
    ]  # fmt: skip
    s = parse(cfg("mosaic=1", "notruth=1", "max_crop=448"), fork="alexeyab")
    assert [(w.key, w.message) for w in s.warnings if w.code == "P015"] == [
        ("notruth", "unknown [net] key notruth: alexeyab never reads it "
         "(pjreddie reads it)"),
    ]  # fmt: skip
    with pytest.raises(
        CfgError, match=r"max_batch=1000 \(did you mean max_batches\?\)"
    ):
        parse(cfg("max_batch=1000"), fork="hankai")


def test_known_keys_of_other_policies_are_p010_not_p015() -> None:
    s = parse(cfg("policy=poly", "steps=1,2", "gamma=0.5", "duplicate=1", "duplicate=2"),
              fork="alexeyab")  # fmt: skip
    assert [(c, k) for c, _, k in codes(s) if c in ("P010", "P015")] == [
        ("P010", "steps"), ("P010", "gamma"), ("P015", "duplicate"),
    ]  # fmt: skip


# --- the real cfgs: where hankai stops -----------------------------------------------

#: (line, key) where hank-ai stops on each real cfg it refuses, read from the files:
#: the alphabetically first unused [net] key (max_crop < min_crop), the duplicated
#: momentum, the first section name missing from its table. Every other cfg loads.
HANKAI_REAL_STOPS: dict[str, tuple[int, str | None, str]] = {
    "csdarknet53-omega.cfg": (16, "max_crop", "unused or invalid: max_crop=448"),
    "darknet53.cfg": (14, "max_crop", "unused or invalid: max_crop=448"),
    "efficientnet-lite3.cfg": (33, "momentum", 'duplicate key "momentum"'),
    "extraction22k.cfg": (6, "max_crop", "unused or invalid: max_crop=320"),
    "t1.test.cfg": (103, None, 'layer name "detection" is not supported'),
    "yolo-voc.2.0.cfg": (206, None, 'layer name "reorg" is not supported'),
}


@needs_darknet_cfgs
def test_where_hankai_stops_on_the_real_cfgs() -> None:
    for path in sorted(DARKNET_CFGS.glob("*.cfg")):
        want = HANKAI_REAL_STOPS.get(path.name)
        if want is None:
            assert parse_ok(path), path.name
            continue
        with pytest.raises(CfgError) as info:
            load(path, fork="hankai")
        assert (info.value.line, info.value.key) == want[:2], path.name
        assert want[2] in info.value.message
        for fork in C_FORKS:  # the C forks load all of them
            assert load(path, fork=fork).source == str(path)


def parse_ok(path: Path) -> bool:
    """hankai loads ``path`` (its layer sections included)."""
    return load(path, fork="hankai").fork == "hankai"
