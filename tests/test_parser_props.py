"""Property tests of the reader: round-trips, formatting invariance, no stray exceptions."""

from __future__ import annotations

import dataclasses
import math
import re
import struct
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgsched.errors import CfgError
from cfgsched.kernel.formulas import f32
from cfgsched.reader.keys import (
    HANKAI_COMMON_KEYS,
    HANKAI_LAYER_KEYS,
    HANKAI_LAYER_NAMES,
    HANKAI_NET_WHEN,
    HANKAI_REQUIRED_KEYS,
    NET_KEYS,
)
from cfgsched.reader.parser import c_atof, c_atoi, hk_stof, parse, read_sections
from cfgsched.schedule import NetSchedule, Policy
from tests.golden import DARKNET_CFGS, needs_darknet_cfgs

ALL = ("alexeyab", "pjreddie", "hankai")
LAYER = "[convolutional]\nfilters=1\nsize=1\nstride=1\npad=1\nactivation=linear\n"

f32s = st.floats(min_value=f32(1e-6), max_value=100.0, width=32)
ints = st.integers(min_value=1, max_value=1_000_000)


def dec(x: float) -> str:
    """The exact decimal expansion of ``x`` (no exponent: hankai rejects ``e``)."""
    return format(Decimal(x), "f")


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    pol = draw(
        st.sampled_from(["constant", "step", "steps", "exp", "poly", "sigmoid", "sgdr"])
    )
    v: dict[str, Any] = {
        "policy": pol,
        "learning_rate": draw(f32s),
        "momentum": draw(f32s),
        "decay": draw(f32s),
        "power": draw(f32s),
        "burn_in": draw(st.integers(0, 5000)),
        "max_batches": draw(ints),
    }
    sub = draw(st.integers(1, 64))
    v["batch"], v["subdivisions"] = sub * draw(st.integers(1, 16)), sub
    if pol in ("step", "sigmoid"):
        v["step"] = draw(ints)
    if pol == "step":
        v["scale"] = draw(f32s)
    if pol in ("exp", "sigmoid"):
        v["gamma"] = draw(f32s)
    if pol == "steps":
        n = draw(st.integers(1, 6))
        v["steps"] = draw(st.lists(st.integers(-10, 10**6), min_size=n, max_size=n))
        v["scales"] = draw(st.lists(f32s, min_size=n, max_size=n))
    if pol == "sgdr":
        v["max_batches"] = draw(st.integers(1, 10**5))
        v["sgdr_cycle"] = draw(st.integers(1, 10**5))
        v["sgdr_mult"] = draw(st.integers(1, 4))
        v["learning_rate_min"] = draw(f32s)
    return v


def render(v: dict[str, Any]) -> str:
    lines = ["[net]", "width=416", "height=416", "channels=3"]
    for k, x in v.items():
        if isinstance(x, list):
            lines.append(
                f"{k}="
                + ",".join(dec(e) if isinstance(e, float) else str(e) for e in x)
            )
        elif isinstance(x, float):
            lines.append(f"{k}={dec(x)}")
        else:
            lines.append(f"{k}={x}")
    return "\n".join(lines) + "\n\n" + LAYER


@given(v=schedules(), fork=st.sampled_from(ALL))
def test_round_trip(v: dict[str, Any], fork: str) -> None:
    text = render(v)
    s = parse(text, fork=fork)
    pol = v["policy"]
    if fork == "pjreddie" and pol == "sgdr":
        assert s.policy is Policy.CONSTANT
        return
    assert s.policy_name == pol and s.policy.cfg_name == pol
    for k in ("learning_rate", "momentum", "decay", "power", "scale", "gamma"):
        if k in v:
            assert getattr(s, k) == v[k], k
    for k in ("burn_in", "max_batches", "step", "batch", "subdivisions"):
        if k in v:
            assert getattr(s, k) == v[k], k
    if pol == "steps":
        assert s.steps == tuple(v["steps"]) and s.scales == tuple(v["scales"])
    if pol == "sgdr":
        assert (s.sgdr_cycle, s.sgdr_mult) == (v["sgdr_cycle"], v["sgdr_mult"])
        assert s.learning_rate_min == v["learning_rate_min"]
    b, sub = v["batch"], v["subdivisions"]
    assert s.mini_batch == b // sub and s.images_per_iteration == b
    assert s.warnings == ()
    rendered = text.split("\n")
    read = [k for k in v if k in s.lines]
    assert read
    for k in read:
        assert rendered[s.lines[k] - 1].startswith(f"{k}="), k


def _comparable(s: NetSchedule, keep_lines: bool) -> dict[str, Any]:
    d = dataclasses.asdict(s)
    d["warnings"] = [
        (w["code"], w["key"]) + ((w["line"],) if keep_lines else ())
        for w in d["warnings"]
    ]
    if not keep_lines:
        d.pop("lines")
        d["layer_lrs"] = [(x["index"], x["multiplier"]) for x in d["layer_lrs"]]
    return d


def _insert_ws(line: str, fork: str, where: list[int], pads: list[str]) -> str:
    if fork == "hankai":
        key, _, val = line.partition("=")
        return pads[0] + key + pads[1] + "=" + pads[2] + val + pads[3]
    chars = list(line)
    for pos, pad in zip(where, pads, strict=False):
        chars.insert(pos % (len(chars) + 1), pad)
    return "".join(chars)


@given(
    v=schedules(),
    fork=st.sampled_from(ALL),
    where=st.lists(st.integers(0, 200), min_size=4, max_size=4),
    pads=st.lists(st.text(" \t", min_size=0, max_size=3), min_size=4, max_size=4),
)
def test_whitespace_inside_lines_changes_nothing(
    v: dict[str, Any], fork: str, where: list[int], pads: list[str]
) -> None:
    text = render(v)
    lines = text.split("\n")
    spaced = [
        _insert_ws(x, fork, where, pads) if "=" in x and not x.startswith("[") else x
        for x in lines
    ]
    a = parse(text, fork=fork)
    b = parse("\n".join(spaced), fork=fork)
    assert _comparable(a, True) == _comparable(b, True)


@given(
    v=schedules(),
    fork=st.sampled_from(ALL),
    extra=st.lists(
        st.tuples(
            st.integers(1, 40),
            st.sampled_from(["", "   ", "\t", "# x=1", "#policy=poly", "; c"]),
        ),
        max_size=6,
    ),
)
def test_comment_and_blank_lines_change_only_line_numbers(
    v: dict[str, Any], fork: str, extra: list[tuple[int, str]]
) -> None:
    text = render(v)
    lines = text.split("\n")
    for pos, filler in extra:
        lines.insert(min(pos, len(lines) - 1), filler)
    a = parse(text, fork=fork)
    b = parse("\n".join(lines), fork=fork)
    assert _comparable(a, False) == _comparable(b, False)


@given(v=schedules(), fork=st.sampled_from(["alexeyab", "hankai"]))
def test_crlf_changes_nothing(v: dict[str, Any], fork: str) -> None:
    text = render(v)
    a = parse(text, fork=fork)
    b = parse(text.replace("\n", "\r\n"), fork=fork)
    assert _comparable(a, True) == _comparable(b, True)


@given(v=schedules())
def test_crlf_fails_pjreddie(v: dict[str, Any]) -> None:
    with pytest.raises(CfgError, match="First section"):
        parse(render(v).replace("\n", "\r\n"), fork="pjreddie")


@given(text=st.text(max_size=400), fork=st.sampled_from(ALL))
def test_arbitrary_text_raises_only_cfg_error(text: str, fork: str) -> None:
    try:
        parse(text, fork=fork)
    except CfgError as e:
        assert e.message and (e.line is None or e.line >= 1)
    try:
        secs = read_sections(text, fork=fork)
    except CfgError as e:
        assert e.message
    else:
        lines = text.split("\n")
        for sec in secs:
            for entry in sec.entries:
                assert lines[entry.line - 1] == entry.raw and entry.value


_ATOMS = st.sampled_from(
    [
        "[net]", "[network]", "[yolo]", "[Net]", "learning_rate=", "policy=", "steps=",
        "scales=", "sgdr_cycle=", "sgdr_mult=", "step=", "max_batches=", "batch=",
        "subdivisions=", "burn_in=", "gamma=", "=", ",", "#", ";", " ", "\t", "\r", "\n",
        "\0", "\ufeff", "0", "1", "-1", ".5", "1e5", "2e-3", "0x1p3", "nan", "inf",
        "99999999999999999999", "-", ".", "constant", "steps", "sgdr", "poly", "step",
        "sigmoid", "exp", "random", "classes=", "learning_rate=0", "width=1\nheight=1\n"
        "channels=1\n", "[convolutional]\n",
    ]
)  # fmt: skip


@given(parts=st.lists(_ATOMS, max_size=60), fork=st.sampled_from(ALL))
def test_cfg_like_text_raises_only_cfg_error(parts: list[str], fork: str) -> None:
    text = "".join(parts)
    try:
        s = parse(text, fork=fork)
    except CfgError as e:
        assert e.message
        return
    assert isinstance(s.policy, Policy)
    assert s.learning_rate != s.learning_rate or s.learning_rate == f32(s.learning_rate)


def _real_lines() -> list[str]:
    return (DARKNET_CFGS / "yolov4-tiny.cfg").read_text().split("\n")


@needs_darknet_cfgs
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["del", "dup", "swap", "junk"]),
            st.integers(0, 400),
            st.text(),
        ),
        max_size=8,
    ),
    fork=st.sampled_from(ALL),
)
def test_mutated_real_cfg_raises_only_cfg_error(
    ops: list[tuple[str, int, str]], fork: str
) -> None:
    lines = _real_lines()
    for op, i, junk in ops:
        i %= len(lines)
        if op == "del" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = (i * 7 + 3) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = lines[i][: len(junk)] + junk
    try:
        parse("\n".join(lines), fork=fork)
    except CfgError:
        pass


def _f32_neighbours(x: float) -> list[float]:
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    out = []
    for nb in (bits - 1, bits + 1):
        if 0 <= nb <= 0xFFFFFFFF:
            y = struct.unpack("<f", struct.pack("<I", nb))[0]
            if math.isfinite(y):
                out.append(y)
    return out


@given(st.from_regex(r"-?[0-9]{1,25}\.[0-9]{0,40}", fullmatch=True))
def test_hankai_stof_rounds_to_the_nearest_float32(text: str) -> None:
    v = hk_stof(text)
    q = Fraction(text)
    if v is None:
        assert abs(q) >= Fraction(2**128 - 2**103) or 0 < abs(q) < Fraction(2) ** -126
        return
    assert v == f32(v)
    err = abs(Fraction(v) - q)
    for y in _f32_neighbours(v):
        assert err <= abs(Fraction(y) - q)


@given(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from(["", "x", ".5", "e3"]),
)
def test_c_atoi_wraps_to_int32(n: int, tail: str) -> None:
    v, used = c_atoi(f"{n}{tail}")
    assert used == len(str(n))
    assert v == (n + 2**31) % 2**32 - 2**31


@given(st.floats(allow_nan=False), st.sampled_from(["", "#", ",1", "abc"]))
def test_c_atof_reads_repr_prefix(x: float, tail: str) -> None:
    v, used = c_atof(repr(x) + tail)
    assert v == x and used == len(repr(x))


# --- which keys each fork reads (issue 10) -------------------------------------------

_IDENTS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
_ANY_LAYER_KEY = sorted(set().union(*HANKAI_LAYER_KEYS.values(), HANKAI_COMMON_KEYS))
_BUILT = sorted(n for n, kind in HANKAI_LAYER_NAMES.items() if kind is not None)
HEAD = "[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nchannels=3\n"


@given(
    name=st.sampled_from(_BUILT),
    key=st.sampled_from(_ANY_LAYER_KEY) | _IDENTS,
)
def test_hankai_layer_keys_are_read_or_fatal(name: str, key: str) -> None:
    kind = HANKAI_LAYER_NAMES[name]
    assert kind is not None
    need = "".join(f"{k}=-1\n" for k in HANKAI_REQUIRED_KEYS.get(kind, ()) if k != key)
    text = HEAD + LAYER + f"[{name}]\n{need}{key}=1\n"
    line = 14 + need.count("\n")  # LAYER: lines 7-12; [name]: 13; then need, key
    if key in HANKAI_LAYER_KEYS[kind] | HANKAI_COMMON_KEYS:
        assert parse(text, fork="hankai").batch == 64
        return
    with pytest.raises(CfgError, match="unused or invalid") as info:
        parse(text, fork="hankai")
    assert (info.value.line, info.value.key) == (line, key)
    assert parse(text, fork="alexeyab").batch == 64


HEAD_KEYS = ("batch", "subdivisions", "width", "height", "channels", "policy")
_NET_KEYS_ALL = sorted(set().union(*NET_KEYS.values()) - set(HEAD_KEYS))


@given(key=st.sampled_from(_NET_KEYS_ALL) | _IDENTS, fork=st.sampled_from(ALL))
def test_unknown_net_keys_are_p015_in_c_forks_and_fatal_in_hankai(
    key: str, fork: str
) -> None:
    if key in HEAD_KEYS:  # already in HEAD: a duplicate, tested elsewhere
        return
    text = HEAD + f"{key}=1\n\n" + LAYER
    unknown = key not in NET_KEYS[fork]
    if fork == "hankai":
        if unknown or key in HANKAI_NET_WHEN:
            with pytest.raises(CfgError, match="unused or invalid") as info:
                parse(text, fork=fork)
            assert (info.value.line, info.value.key) == (7, key)
        else:
            assert parse(text, fork=fork).line_of(key) == 7
        return
    p015 = [
        (w.line, w.key) for w in parse(text, fork=fork).warnings if w.code == "P015"
    ]
    assert p015 == ([(7, key)] if unknown else [])


_DIM = st.none() | st.integers(0, 5)


@given(
    h=_DIM,
    w=_DIM,
    c=_DIM,
    inputs=st.none() | st.integers(0, 100),
    fork=st.sampled_from(ALL),
)
def test_no_input_parameters_exactly_when_darknet_says_so(
    h: int | None, w: int | None, c: int | None, inputs: int | None, fork: str
) -> None:
    given_ = {"height": h, "width": w, "channels": c, "inputs": inputs}
    lines = [f"{k}={v}" for k, v in given_.items() if v is not None]
    text = "[net]\nbatch=64\nsubdivisions=16\n" + "\n".join(lines) + "\n\n" + LAYER
    dims = [v or 0 for v in (h, w, c)]
    value = inputs if inputs is not None else dims[0] * dims[1] * dims[2]
    if value == 0 and not all(dims):
        with pytest.raises(CfgError, match="No input parameters supplied") as info:
            parse(text, fork=fork)
        assert info.value.line == 1
    else:
        assert parse(text, fork=fork).mini_batch == 4


@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(
            lambda d: format(d, "f")
        ),
        st.integers(-(10**12), 10**12).map(str),
        st.floats(width=32, allow_nan=False, allow_infinity=False).map(
            lambda x: format(x, ".60f").rstrip("0").rstrip(".") or "0"
        ),
    )
)
def test_hankai_float_fast_path_equals_exact_rounding(text: str) -> None:
    """``stof`` through the correctly rounded double agrees with exact rational rounding
    whenever the fast path answers (it declines float32 midpoints and subnormals)."""
    from fractions import Fraction

    from cfgsched.reader.parser import _f32_of_decimal, _nearest_f32

    m = re.match(r"-?(?:\d+\.?\d*|\.\d+)", text)
    if m is None:
        return
    fast = _f32_of_decimal(m.group(0))
    if fast is not None:
        assert fast == _nearest_f32(Fraction(m.group(0)))
