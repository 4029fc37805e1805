"""The cfg reader: each fork's own rules for reading a darknet ``.cfg`` (DESIGN.md §1).

Two levels:

* :func:`read_sections` splits a cfg into :class:`Section` objects holding
  :class:`Entry` objects exactly as the chosen fork sees them (used by ``lint`` and
  ``adjust``);
* :func:`parse` / :func:`load` turn the ``[net]`` section into a frozen
  :class:`~cfgsched.schedule.NetSchedule` holding every value as the fork stores it.

Where the fork crashes, stops or loops forever, a :class:`~cfgsched.errors.CfgError`
says so and names the line and key. Where the fork silently does something
surprising, the result reproduces it and carries a :class:`~cfgsched.errors.CfgWarning`.

Pure Python, standard library only.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cfgsched.errors import CfgError, CfgWarning
from cfgsched.files import read_cfg
from cfgsched.kernel.formulas import ctrunc_div, f32
from cfgsched.reader.keys import (
    HANKAI_COMMON_KEYS,
    HANKAI_DETECTORS,
    HANKAI_LAYER_KEYS,
    HANKAI_LAYER_NAMES,
    HANKAI_NET_WHEN,
    HANKAI_REQUIRED_KEYS,
    LAYER_TRAINING_KEYS,
    NET_KEYS,
    WEIGHTED_SECTIONS,
    did_you_mean,
)
from cfgsched.schedule import FORKS, LayerKeys, LayerLR, NetSchedule, Policy

if TYPE_CHECKING:
    from fractions import Fraction

__all__ = ["Entry", "Section", "load", "parse", "read_sections"]

_INT_MIN = -(1 << 31)
_INT_MAX = (1 << 31) - 1
_LONG_MIN = -(1 << 63)
_LONG_MAX = (1 << 63) - 1
_FLT_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
_FLT_MIN = 1.1754943508222875e-38
#: Values at or above this magnitude round to infinity in float32 (FLT_MAX + half an ulp).
_F32_OVERFLOW = 2**128 - 2**103

#: Characters each C fork's ``strip()`` removes from every line.
_C_STRIP = {"alexeyab": " \t\n\r", "pjreddie": " \t\n"}

#: Policy names per fork (case-sensitive).
_POLICIES: dict[str, Policy] = {p.cfg_name: p for p in Policy}

#: Learning-rate keys that only some policies (or ``adam=1``) read.
_POLICY_KEYS = (
    "step",
    "scale",
    "steps",
    "scales",
    "seq_scales",
    "gamma",
    "B1",
    "B2",
    "eps",
)
_SGDR_KEYS = ("learning_rate_min", "sgdr_cycle", "sgdr_mult")
_DETECTION_SECTIONS = ("yolo", "region", "Gaussian_yolo", "detection")


@dataclass(frozen=True)
class Entry:
    """One ``key=value`` line of a section, as the fork sees it.

    ``key``/``value``: C forks (``alexeyab``, ``pjreddie``) remove their whitespace
    characters everywhere in the line and split at the first ``=`` (so a ``#`` after a
    value stays part of it); ``hankai`` trims both and cuts the value at the first ``#``.
    ``line`` is 1-based; ``raw`` is the line exactly as in the file, without its ``\\n``
    (a CRLF file keeps its ``\\r``). Lines without ``=``, with an empty value, comments
    and blank lines are not entries. Duplicated keys give one entry each, in file order
    (C forks use the first; hankai stops on them, so there are none for hankai).
    """

    key: str
    value: str
    line: int
    raw: str


@dataclass(frozen=True)
class Section:
    """A ``[name]`` header and the entries below it, up to the next header.

    ``name`` is the text between the brackets as the fork sees it; ``line`` is the
    1-based line of the header and ``raw`` that line as in the file.
    """

    name: str
    line: int
    entries: tuple[Entry, ...]
    raw: str = ""

    def get(self, key: str) -> Entry | None:
        """The first entry named ``key`` (the one C forks use), or None."""
        for e in self.entries:
            if e.key == key:
                return e
        return None

    def keys(self) -> list[str]:
        """Entry keys in file order (duplicates included)."""
        return [e.key for e in self.entries]


# ---------------------------------------------------------------------------------------
# C number conversions


_WS = " \t\n\v\f\r"
_DEC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_HEX = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?",
    re.ASCII,
)
_INFNAN = re.compile(
    r"[+-]?(?:inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE | re.ASCII
)
_INT = re.compile(r"[+-]?\d+", re.ASCII)
_PLAIN_DEC = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)", re.ASCII)


def c_atof(s: str) -> tuple[float, int]:
    """C ``atof``: the double read from the longest valid prefix and the characters used.

    ``(0.0, 0)`` when no number starts the string (leading whitespace is skipped).
    """
    start = len(s) - len(s.lstrip(_WS))
    for rx in (_HEX, _INFNAN, _DEC):
        m = rx.match(s, start)
        if m is None:
            continue
        text = m.group(0)
        if rx is _HEX:
            neg = text.startswith("-")
            body = text.lstrip("+-")
            if "p" not in body.lower():
                body += "p0"
            try:
                value = float.fromhex(body)
            except OverflowError:
                value = math.inf
            return (-value if neg else value), m.end()
        if rx is _INFNAN:
            low = text.lower()
            neg = low.startswith("-")
            value = math.nan if "nan" in low else math.inf
            return (-value if neg else value), m.end()
        try:
            return float(text), m.end()
        except (OverflowError, ValueError):  # pragma: no cover - float() rounds to inf
            return math.inf, m.end()
    return 0.0, 0


def c_atoi(s: str) -> tuple[int, int]:
    """C ``atoi`` (glibc: ``(int) strtol``): value and characters used; wraps like x86."""
    start = len(s) - len(s.lstrip(_WS))
    m = _INT.match(s, start)
    if m is None:
        return 0, 0
    v = max(_LONG_MIN, min(_LONG_MAX, _bounded_int(m.group(0))))
    v &= 0xFFFFFFFF
    return (v - (1 << 32) if v >= (1 << 31) else v), m.end()


def _bounded_int(text: str) -> int:
    """int(text) for ``[+-]?digits`` of any length (huge values are clamped to ±2**64)."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 21:
        return sign * (1 << 64)
    return sign * int(digits)


def _decimal_fraction(text: str) -> Fraction | None:
    """The exact value of ``-?digits[.digits]``; None when it is far outside float32.

    Very long fractions keep 200 significant digits plus a sticky digit, which rounds to
    float32 exactly like the full string.
    """
    from fractions import Fraction

    neg = text.startswith("-")
    body = text.lstrip("-")
    ip, _, fp = body.partition(".")
    ip = ip.lstrip("0")
    if len(ip) > 40:
        return None
    if ip:
        keep = 200
    else:
        z = len(fp) - len(fp.lstrip("0"))
        if z == len(fp):
            return Fraction(0)
        if z > 60:
            return None
        keep = z + 200
    if len(fp) > keep:
        fp = fp[:keep] + ("1" if fp[keep:].strip("0") else "")
    q = Fraction(int(ip or "0")) + (Fraction(int(fp), 10 ** len(fp)) if fp else 0)
    return -q if neg else q


def _f32_cast_int(x: float) -> int:
    """``static_cast<int>(float)`` on x86: truncation; out of range or NaN gives INT_MIN."""
    if math.isnan(x) or not (_INT_MIN <= math.trunc(x) <= _INT_MAX):
        return _INT_MIN
    return math.trunc(x)


def _nearest_f32(q: Fraction) -> float:
    """The float32 nearest to the exact rational ``q`` (ties to even), as ``strtof`` does."""
    from fractions import Fraction

    if q == 0:
        return 0.0
    if abs(q) >= _F32_OVERFLOW:
        return math.inf if q > 0 else -math.inf
    d = float(q)
    a = f32(d)
    if math.isinf(a):  # d is the overflow threshold itself, q is just below it
        a = math.copysign(_FLT_MAX, d)
    bits = struct.unpack("<I", struct.pack("<f", a))[0]
    best = a
    for nb in (bits - 1, bits + 1):
        if not 0 <= nb < 0xFFFFFFFF:
            continue
        b = struct.unpack("<f", struct.pack("<I", nb))[0]
        if math.isinf(b) or math.isnan(b) or (b < 0) != (a < 0):
            continue
        da, db = abs(Fraction(best) - q), abs(Fraction(b) - q)
        if db < da or (db == da and nb % 2 == 0):
            best = b
    return best


def _f32_of_decimal(text: str) -> float | None:
    """The float32 nearest to the decimal ``text`` via the correctly rounded double, when
    that is provably the same (None: take the exact path). Rounding twice differs only
    when the double is a float32 midpoint itself (no midpoint lies between the decimal
    and its nearest double) or outside float32's normal range."""
    d = float(text)
    if not _FLT_MIN <= abs(d) < 2.0**127:
        return None
    bits = struct.unpack("<Q", struct.pack("<d", d))[0]
    if bits & 0x1FFFFFFF == 0x10000000:  # exactly halfway between two float32
        return None
    return f32(d)


_HK_FLOAT = re.compile(r"-?(?:\d+\.?\d*|\.\d+)", re.ASCII)
_HK_INT = re.compile(r"-?\d+", re.ASCII)


def hk_stof(s: str) -> float | None:
    """hankai's ``std::stof`` on a string of ``-.0123456789``; None where it throws.

    It reads the longest decimal prefix, rounded once to float32; it throws when no
    number starts the string or the value is out of float range (overflow, or a
    non-zero value below FLT_MIN, where ``strtof`` sets ERANGE).
    """
    m = _HK_FLOAT.match(s)
    if m is None:
        return None
    fast = _f32_of_decimal(m.group(0))
    if fast is not None:
        return fast
    q = _decimal_fraction(m.group(0))
    if q is None:
        return None
    if q == 0:
        return -0.0 if m.group(0).startswith("-") else 0.0
    v = _nearest_f32(q)
    if math.isinf(v) or (q != 0 and abs(v) < _FLT_MIN):
        return None
    return v


def hk_stoi(s: str) -> int | None:
    """hankai's ``std::stoi`` on a run of ``-0123456789``; None where it throws."""
    m = _HK_INT.match(s)
    if m is None:
        return None
    v = _bounded_int(m.group(0))
    return v if _INT_MIN <= v <= _INT_MAX else None


def _runs(value: str, chars: str) -> list[str]:
    """Maximal runs of ``chars`` in ``value`` (hankai's list element scanner)."""
    return re.findall("[" + re.escape(chars) + "]+", value)


# ---------------------------------------------------------------------------------------
# Reading lines and sections


@dataclass
class _Item:
    key: str
    value: str | None  # None: a C-fork line without '=' (darknet stores a NULL value)
    line: int
    raw: str
    num: float | None = None  # hankai: the float32 read when the value looks numeric


@dataclass
class _Sec:
    name: str
    header: str
    line: int
    raw: str
    items: list[_Item] = field(default_factory=list)
    empties: list[_Item] = field(default_factory=list)  # key= with nothing after it


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _read_c(text: str, fork: str, source: str) -> list[_Sec]:
    table = str.maketrans("", "", _C_STRIP[fork])
    secs: list[_Sec] = []
    for n, raw in enumerate(_split_lines(text), start=1):
        s = raw.split("\0", 1)[0].translate(table)
        if not s or s[0] in "#;":
            continue
        if s[0] == "[":
            name = s[1:-1] if s.endswith("]") and len(s) > 1 else s[1:]
            secs.append(_Sec(name, s, n, raw))
            continue
        if not secs:
            raise CfgError(
                source,
                n,
                None,
                f"darknet crashes here: text before the first [section]: {_stray(s)}",
            )
        eq = s.find("=")
        if eq < 0:
            secs[-1].items.append(_Item(s, None, n, raw))
        elif eq == len(s) - 1:
            secs[-1].empties.append(_Item(s[:eq], "", n, raw))
        else:
            secs[-1].items.append(_Item(s[:eq], s[eq + 1 :], n, raw))
    return secs


def _stray(s: str) -> str:
    """What the text ``s`` that a C fork found before any section is, in words."""
    if s.startswith("\ufeff"):
        return "a UTF-8 byte order mark (BOM) starts the file"
    if not s.strip("\r"):
        return (
            "a line holding only \\r, the blank line of a CRLF (Windows) file: "
            "pjreddie keeps \\r, so the line is not blank (save the file with LF ends)"
        )
    if "=" in s:
        return f"the key {_short(s.split('=', 1)[0])!r} is outside any section"
    return f"{_short(s)!r} is outside any section"


_HK_RX = re.compile(r"^\[([^\n\r]+)\]|^[ \t]*([^#= \t]+)[ \t]*=[ \t]*([^#]+)")
_HK_EMPTY = re.compile(r"^[ \t]*([^#= \t]+)[ \t]*=[ \t]*(?:#|$)")
_HK_TRIM = " \t\r\n\v\f"
_HK_NUM_CHARS = frozenset("-.0123456789")


def _read_hk(text: str, source: str) -> list[_Sec]:
    secs: list[_Sec] = []
    for n, raw in enumerate(_split_lines(text), start=1):
        line = raw.rstrip(" \t\r\n") or raw
        m = _HK_RX.search(line)
        if m is None:
            e = _HK_EMPTY.match(line)
            if e is not None and secs:
                secs[-1].empties.append(_Item(e.group(1), "", n, raw))
            continue
        if m.group(1) is not None:
            name = m.group(1)
            if name not in HANKAI_LAYER_NAMES:
                raise CfgError(
                    source,
                    n,
                    None,
                    f'hankai stops: layer name "{_short(name)}" is not supported',
                )
            secs.append(_Sec(name, "[" + name + "]", n, raw))
            continue
        if not secs:
            raise CfgError(
                source,
                n,
                None,
                "hankai stops: cannot add a configuration line without a section",
            )
        key = m.group(2).strip(_HK_TRIM)
        val = m.group(3).strip(_HK_TRIM)
        sec = secs[-1]
        for it in sec.items:
            if it.key == key:
                raise CfgError(
                    source,
                    n,
                    key,
                    f'hankai stops: duplicate key "{key}" in [{sec.name}] '
                    f"at lines #{it.line} and #{n}",
                )
        num = None
        if val and set(val) <= _HK_NUM_CHARS:
            num = hk_stof(val)
            if num is None:
                raise CfgError(
                    source,
                    n,
                    key,
                    f'hankai stops: failed to parse numeric value from "{_short(val)}"',
                )
        sec.items.append(_Item(key, val, n, raw, num))
    return secs


def _check_fork(fork: str) -> None:
    if fork not in FORKS:
        raise ValueError(f"unknown fork {fork!r}: choose one of {', '.join(FORKS)}")


def _read(text: str, fork: str, source: str) -> list[_Sec]:
    _check_fork(fork)
    if fork == "hankai":
        return _read_hk(text, source)
    return _read_c(text, fork, source)


def read_sections(
    text: str, *, fork: str = "alexeyab", source: str = "<string>"
) -> list[Section]:
    """Split ``text`` into sections and entries following ``fork``'s reading rules.

    Only the reading stage is done: the ``[net]`` values are not checked. Raises
    :class:`CfgError` where the fork stops while reading (C forks: text before the first
    section; hankai: an unknown section name, a duplicate key, a number ``std::stof``
    rejects, a key before any section) and ``ValueError`` for an unknown fork.
    Lines are split at ``\\n`` only; a C fork sees each line up to its first NUL.
    """
    out = []
    for s in _read(text, fork, source):
        entries = tuple(
            Entry(i.key, i.value, i.line, i.raw) for i in s.items if i.value is not None
        )
        out.append(Section(s.name, s.line, entries, s.raw))
    return out


# ---------------------------------------------------------------------------------------
# [net] parsing


def _short(value: str | None, limit: int = 40) -> str:
    """``value`` cut to ``limit`` characters for messages."""
    v = "" if value is None else value
    return v if len(v) <= limit else v[:limit] + "..."


def _col(raw: str) -> int:
    eq = raw.find("=")
    return eq + 2 if eq >= 0 else 1


class _Net:
    """Collects values, warnings and line numbers while one ``[net]`` is parsed."""

    def __init__(self, fork: str, source: str, sec: _Sec) -> None:
        self.fork = fork
        self.source = source
        self.sec = sec
        self.warnings: list[CfgWarning] = []
        self.lines: dict[str, int] = {}
        self.used: set[int] = set()

    def warn(self, code: str, item: _Item | None, message: str) -> None:
        line = None if item is None else item.line
        key = None if item is None else item.key
        col = 1 if item is None else _col(item.raw)
        self.warnings.append(CfgWarning(code, line, key, message, col))

    def error(self, item: _Item | None, key: str | None, message: str) -> CfgError:
        return CfgError(self.source, None if item is None else item.line, key, message)

    # -- C forks -------------------------------------------------------------------
    def c_item(self, key: str) -> _Item | None:
        """``option_find``: the first line with this key (a bare key gives a NULL value)."""
        for it in self.sec.items:
            if it.key == key:
                self.lines.setdefault(key, it.line)
                return it
        return None

    def c_str(self, key: str) -> _Item | None:
        it = self.c_item(key)
        return it if (it is not None and it.value is not None) else None

    def c_int(self, key: str, default: int) -> int:
        it = self.c_str(key)
        if it is None or it.value is None:
            return default
        val = it.value
        v, used = c_atoi(val)
        m = _INT.match(val.lstrip(_WS))
        if m is not None and _bounded_int(m.group(0)) != v:
            self.warn(
                "P004",
                it,
                f"{key}={_short(val)} is out of int range: darknet reads {v}",
            )
        elif used < len(val):
            fv, fused = c_atof(val)
            if fused == len(val) and _PLAIN_DEC.fullmatch(val):
                if fv != v:
                    self.warn(
                        "P011",
                        it,
                        f"{key}={_short(val)} is an integer key: darknet uses {v}",
                    )
            else:
                bad = val[used] if used < len(val) else ""
                self.warn(
                    "P004",
                    it,
                    f"{key}={_short(val)} is read as {v} (atoi stops at {bad!r})",
                )
        return v

    def c_float(self, key: str, default: float) -> float:
        it = self.c_str(key)
        if it is None or it.value is None:
            return f32(default)
        v, used = c_atof(it.value)
        if used < len(it.value):
            rest = it.value[used:]
            self.warn(
                "P004",
                it,
                f"{key}={_short(it.value)} is read as {v!r} (atof stops at '{rest[0]}')",
            )
        return f32(v)

    # -- hankai --------------------------------------------------------------------
    def hk_item(self, key: str) -> _Item | None:
        for it in self.sec.items:
            if it.key == key:
                self.used.add(id(it))
                self.lines[key] = it.line
                return it
        return None

    def hk_num(self, key: str) -> tuple[_Item | None, float | None]:
        it = self.hk_item(key)
        if it is None:
            return None, None
        if it.num is None:
            raise self.error(
                it,
                key,
                f'hankai stops: key "{key}" should be numeric, found "{_short(it.value)}"',
            )
        return it, it.num

    def hk_int(self, key: str, default: int) -> int:
        it, v = self.hk_num(key)
        if it is None or v is None:
            return default
        if v != math.trunc(v):
            self.warn(
                "P011",
                it,
                f"{key}={_short(it.value)} is an integer key: hankai uses {math.trunc(v)}",
            )
        out = _f32_cast_int(v)
        if (
            it.value is not None
            and _HK_INT.fullmatch(it.value)
            and _bounded_int(it.value) != out
        ):
            self.warn(
                "P014",
                it,
                f"{key}={_short(it.value)} goes through float32 in hankai and becomes {out}",
            )
        return out

    def hk_float(self, key: str, default: float) -> float:
        it, v = self.hk_num(key)
        if it is None or v is None:
            return f32(default)
        return v


def _policy(net: _Net, item: _Item | None, name: str) -> Policy:
    fork = net.fork
    pol = _POLICIES.get(name)
    if pol is Policy.SGDR and fork == "pjreddie":
        pol = None
    if pol is None:
        if fork == "hankai":
            raise net.error(
                item,
                "policy",
                f'hankai stops: learning rate policy "{_short(name)}" is not supported',
            )
        net.warn(
            "P001", item, f"Couldn't find policy {_short(name)}, going with constant"
        )
        return Policy.CONSTANT
    if pol is Policy.RANDOM:
        net.warn("P008", item, "policy=random: darknet's draws are not reproducible")
    return pol


def _c_steps(net: _Net, pol: Policy) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """steps/scales(/seq_scales) as the C forks read them; CfgError where they crash."""
    fork = net.fork
    l_it = net.c_str("steps")
    p_it = net.c_str("scales")
    s_it = net.c_str("seq_scales") if fork == "alexeyab" else None
    if pol is Policy.STEPS and (l_it is None or p_it is None):
        missing = "steps" if l_it is None else "scales"
        pol_it = net.c_str("policy")
        raise net.error(
            pol_it if l_it is None else l_it,
            missing,
            f"darknet stops: STEPS policy must have steps and scales ({missing} missing)",
        )
    if l_it is None or l_it.value is None:
        return (), ()
    lv = l_it.value
    counted = lv.split("#", 1)[0] if fork == "alexeyab" else lv
    n = 1 + counted.count(",")
    lparts = lv.split(",")
    if "#" in lv:
        net.warn("P002", l_it, "'#' inside steps: C forks have no inline comments")

    def crash_if_short(it: _Item | None, key: str) -> list[str] | None:
        if it is None or it.value is None:
            return None
        parts = it.value.split(",")
        if len(parts) < n:
            blame_steps = lv.endswith(",") or ("#" in lv and fork == "pjreddie")
            bad = l_it if blame_steps else it
            why = ""
            if lv.endswith(","):
                why = " (trailing comma in steps)"
            elif "#" in lv and fork == "pjreddie":
                why = " (pjreddie also counts the commas after '#' in steps)"
            raise net.error(
                bad,
                "steps" if blame_steps else key,
                f"darknet crashes here: fewer {key} ({len(parts)}) than steps ({n}){why}",
            )
        if len(parts) > n:
            if key == "scales":
                net.warn(
                    "P006",
                    it,
                    f"more scales ({len(parts)}) than steps ({n}): extra ignored",
                )
        if "#" in it.value:
            net.warn("P002", it, f"'#' inside {key}: C forks have no inline comments")
        return parts

    pparts = crash_if_short(p_it, "scales")
    crash_if_short(s_it, "seq_scales")
    steps = tuple(c_atoi(lparts[i])[0] for i in range(n))
    if pparts is None:
        scales = tuple(1.0 for _ in range(n))
    else:
        scales = tuple(f32(c_atof(pparts[i])[0]) for i in range(n))
    if (
        n > 1
        and lv.endswith(",")
        and p_it is not None
        and (p_it.value or "").endswith(",")
    ):
        net.warn(
            "P007",
            l_it,
            "trailing comma in steps and scales: adds step 0 with scale 0 (LR 0)",
        )
    return steps, scales


def _hk_steps(net: _Net, pol: Policy) -> tuple[tuple[int, ...], tuple[float, ...]]:
    l_it = net.hk_item("steps")
    p_it = net.hk_item("scales")
    net.hk_item("seq_scales")
    steps: list[int] = []
    if l_it is not None and l_it.value:
        for run in _runs(l_it.value, "-0123456789"):
            v = hk_stoi(run)
            if v is None:
                break
            steps.append(v)
    scales: list[float] = []
    if p_it is not None and p_it.value:
        for run in _runs(p_it.value, "-.0123456789"):
            f = hk_stof(run)
            if f is None:
                break
            scales.append(f)
    if pol is Policy.STEPS and (not steps or not scales):
        missing = "steps" if not steps else "scales"
        it = l_it if not steps else p_it
        raise net.error(
            it or net.hk_item("policy"),
            missing,
            "hankai stops: STEPS policy must have steps and scales in cfg file",
        )
    n = len(steps)
    if len(scales) > n and p_it is not None:
        net.warn(
            "P006", p_it, f"more scales ({len(scales)}) than steps ({n}): extra ignored"
        )
    if len(scales) < n and (p_it is not None or pol is Policy.STEPS):
        net.warn(
            "P013",
            p_it or l_it,
            f"fewer scales ({len(scales)}) than steps ({n}): hankai pads with 0.0 (LR becomes 0)",
        )
    scales = (scales + [0.0] * n)[:n]
    return tuple(steps), tuple(scales)


def _batch(net: _Net, batch: int, subdivs: int, time_steps: int) -> tuple[int, int]:
    """(mini_batch, time_steps) after darknet's division and clamps; CfgError on SIGFPE.

    pjreddie keeps a zero mini-batch; it divides by it later (:func:`_pj_zero_batch`).
    """
    sub_it = _first(net.sec, "subdivisions")
    batch_it = _first(net.sec, "batch")
    if subdivs == 0:
        raise net.error(
            sub_it, "subdivisions", "darknet divides by zero (SIGFPE): subdivisions=0"
        )
    mini = ctrunc_div(batch, subdivs) * time_steps
    if net.fork != "pjreddie":
        if mini < 1:
            mini = 1
        if time_steps < 1:
            time_steps = 1
        if mini < time_steps:
            mini = time_steps
    if batch % subdivs != 0 or batch < subdivs:
        net.warn(
            "P009",
            sub_it or batch_it,
            f"batch={batch} is not a multiple of subdivisions={subdivs}: "
            f"{mini * subdivs} images per iteration",
        )
    return mini, time_steps


def _pj_zero_batch(net: _Net, v: dict[str, object]) -> None:
    """pjreddie divides by a zero mini-batch at its first batch count (after parsing)."""
    if net.fork != "pjreddie" or v["mini_batch"] != 0:
        return
    sub_it = _first(net.sec, "subdivisions")
    raise net.error(
        sub_it if sub_it is not None else _first(net.sec, "batch"),
        "subdivisions" if sub_it is not None else "batch",
        f"darknet divides by zero (SIGFPE): batch ({v['batch']}) / subdivisions "
        f"({v['subdivisions']}) * time_steps ({v['time_steps']}) is 0 images per mini-batch",
    )


def _check_contrastive(net: _Net, con: _Item | None, on: bool, mini: int) -> None:
    """alexeyab and hankai stop when ``contrastive`` is on with a mini-batch below 2."""
    if on and mini < 2:
        raise net.error(
            con,
            "contrastive",
            f"{_who(net.fork)} stops: mini_batch (batch/subdivisions = {mini}) "
            "must be > 1 for contrastive loss",
        )


def _check_inputs(net: _Net, dims: dict[str, int], inputs: int) -> None:
    """Every fork stops with "No input parameters supplied" when ``inputs`` is 0 and
    one of width, height, channels is 0 (inputs defaults to their product)."""
    if inputs or all(dims.values()):
        return
    bad = [
        f"{k}={v}" if k in net.lines else f"no {k}" for k, v in dims.items() if not v
    ]
    header = _Item(net.sec.name, None, net.sec.line, net.sec.raw)
    raise net.error(
        header,
        None,
        f"{_who(net.fork)} stops: No input parameters supplied: [net] needs width, "
        f"height and channels, or inputs ({', '.join(bad)})",
    )


def _who(fork: str) -> str:
    return "hankai" if fork == "hankai" else "darknet"


def _c_policy(net: _Net, v: dict[str, object]) -> None:
    """policy, burn_in and the policy's own keys, as a C fork reads them."""
    pol_it = net.c_str("policy")
    name = "constant" if pol_it is None or pol_it.value is None else pol_it.value
    if pol_it is not None and pol_it.value is not None and "#" in pol_it.value:
        net.warn("P002", pol_it, "'#' inside policy: C forks have no inline comments")
    pol = _policy(net, pol_it, name)
    v["policy"], v["policy_name"] = pol, name
    v["burn_in"] = net.c_int("burn_in", 0)
    v["step"], v["scale"], v["gamma"] = 0, 0.0, 0.0
    if pol is Policy.STEP:
        v["step"] = net.c_int("step", 1)
        v["scale"] = net.c_float("scale", 1)
    elif pol is Policy.STEPS or (pol is Policy.SGDR and net.fork == "alexeyab"):
        v["steps"], v["scales"] = _c_steps(net, pol)
    elif pol is Policy.EXP:
        v["gamma"] = net.c_float("gamma", 1)
    elif pol is Policy.SIG:
        v["gamma"] = net.c_float("gamma", 1)
        v["step"] = net.c_int("step", 1)


def _net_c(net: _Net) -> dict[str, object]:
    """The ``[net]`` values of a C fork, with its stops in its order."""
    v: dict[str, object] = {}
    alex = net.fork == "alexeyab"
    v["max_batches"] = net.c_int("max_batches", 0)
    batch = net.c_int("batch", 1)
    v["learning_rate"] = net.c_float("learning_rate", 0.001)
    if alex:
        v["learning_rate_min"] = net.c_float("learning_rate_min", 0.00001)
        v["sgdr_cycle"] = net.c_int("sgdr_cycle", int(v["max_batches"]))  # type: ignore[call-overload]
        v["sgdr_mult"] = net.c_int("sgdr_mult", 2)
    v["momentum"] = net.c_float("momentum", 0.9)
    v["decay"] = net.c_float("decay", 0.0001)
    subdivs = net.c_int("subdivisions", 1)
    time_steps = net.c_int("time_steps", 1)
    v["batch"], v["subdivisions"] = batch, subdivs
    v["mini_batch"], v["time_steps"] = _batch(net, batch, subdivs, time_steps)
    adam = net.c_int("adam", 0)
    v["adam"] = adam != 0
    if adam:
        v["b1"] = net.c_float("B1", 0.9)
        v["b2"] = net.c_float("B2", 0.999)
        v["eps"] = net.c_float("eps", 0.000001)
    dims = {k: net.c_int(k, 0) for k in ("height", "width", "channels")}
    product = c_atoi(str(dims["height"] * dims["width"] * dims["channels"]))[0]
    inputs = net.c_int("inputs", product)
    if alex:
        con = net.c_str("contrastive")
        on = net.c_int("contrastive", 0) != 0
        _check_contrastive(net, con, on, ctrunc_div(batch, subdivs))
    v["power"] = net.c_float("power", 4)
    _check_inputs(net, dims, inputs)
    _c_policy(net, v)
    _pj_zero_batch(net, v)
    return v


_HK_AUGMENT = (
    "flip", "blur", "gaussian_noise", "fog", "cutout", "mixup", "cutmix", "mosaic",
    "letter_box", "mosaic_bound", "contrastive", "contrastive_jit_flip",
    "contrastive_color", "label_smooth_eps", "resize_step", "attention", "adversarial_lr",
    "max_chart_loss", "angle", "aspect", "saturation", "exposure", "hue",
)  # fmt: skip
_HK_TRAINING = (
    "weights_reject_freq", "equidistant_point", "badlabels_rejection_percentage",
    "num_sigmas_reject_badlabels", "ema_alpha", "use_cuda_graph", "loss_scale",
    "dynamic_minibatch", "optimized_memory", "workspace_size_limit_MB",
)  # fmt: skip


def _hk_head(net: _Net) -> dict[str, object]:
    """hankai's ``parse_net_section`` up to the input size (its lookup order)."""
    h = net
    v: dict[str, object] = {}
    v["max_batches"] = h.hk_int("max_batches", 0)
    batch = h.hk_int("batch", 1)
    v["learning_rate"] = h.hk_float("learning_rate", 0.001)
    v["learning_rate_min"] = h.hk_float("learning_rate_min", 0.00001)
    v["sgdr_cycle"] = h.hk_int("sgdr_cycle", int(v["max_batches"]))  # type: ignore[call-overload]
    v["sgdr_mult"] = h.hk_int("sgdr_mult", 2)
    v["momentum"] = h.hk_float("momentum", 0.9)
    v["decay"] = h.hk_float("decay", 0.0001)
    subdivs = h.hk_int("subdivisions", 1)
    time_steps = h.hk_int("time_steps", 1)
    for k in ("track", "augment_speed", "sequential_subdivisions", "try_fix_nan"):
        h.hk_num(k)
    v["batch"], v["subdivisions"] = batch, subdivs
    v["mini_batch"], v["time_steps"] = _batch(net, batch, subdivs, time_steps)
    for k in _HK_TRAINING:
        h.hk_num(k)
    adam = h.hk_int("adam", 0)
    v["adam"] = adam != 0
    if adam:
        v["b1"] = h.hk_float("B1", 0.9)
        v["b2"] = h.hk_float("B2", 0.999)
        v["eps"] = h.hk_float("eps", 0.000001)
    return v


def _net_hk(net: _Net) -> tuple[dict[str, object], dict[str, int]]:
    """hankai's ``[net]`` values and input size, with its stops in its order (the
    unused-line check included)."""
    h = net
    v = _hk_head(net)
    dims = {k: h.hk_int(k, 0) for k in ("height", "width", "channels")}
    inputs = h.hk_int("inputs", dims["height"] * dims["width"] * dims["channels"])
    for k in _HK_AUGMENT:
        h.hk_num(k)
    con = _first(net.sec, "contrastive")
    on = con is not None and con.num is not None and _f32_cast_int(con.num) != 0
    batch, subdivs = int(v["batch"]), int(v["subdivisions"])  # type: ignore[call-overload]
    _check_contrastive(net, con, on, ctrunc_div(batch, subdivs))
    v["power"] = h.hk_float("power", 4)
    _check_inputs(net, dims, inputs)
    pol_it = h.hk_item("policy")
    name = "constant" if pol_it is None or pol_it.value is None else pol_it.value
    pol = _policy(net, pol_it, name)
    v["policy"], v["policy_name"] = pol, name
    v["burn_in"] = h.hk_int("burn_in", 0)
    v["step"], v["scale"], v["gamma"] = 0, 0.0, 0.0
    if pol is Policy.STEP:
        v["step"] = h.hk_int("step", 1)
        v["scale"] = h.hk_float("scale", 1)
    elif pol in (Policy.STEPS, Policy.SGDR):
        v["steps"], v["scales"] = _hk_steps(net, pol)
    elif pol is Policy.EXP:
        v["gamma"] = h.hk_float("gamma", 1)
    elif pol is Policy.SIG:
        v["gamma"] = h.hk_float("gamma", 1)
        v["step"] = h.hk_int("step", 1)
    h.hk_num("show_receptive_field")
    unused = [it for it in net.sec.items if id(it) not in net.used]
    _hk_unused(net.source, net.sec, unused, NET_KEYS["hankai"], HANKAI_NET_WHEN)
    return v, dims


def _hk_unused(
    source: str,
    sec: _Sec,
    unused: list[_Item],
    known: frozenset[str],
    when: dict[str, str],
) -> None:
    """hankai's ``find_unused_lines``: the alphabetically first unused key is fatal.

    ``known``: every key this section kind reads; ``when``: conditions of those it reads
    only sometimes (named in the message, as is a close spelling of an unknown key).
    """
    if not unused:
        return
    it = min(unused, key=lambda i: i.key.encode())
    if it.key in when:
        hint = f"read only with {when[it.key]}"
    else:
        guess = did_you_mean(it.key, known)
        hint = (
            f"did you mean {guess}?"
            if guess
            else f"hankai has no such [{sec.name}] key"
        )
    raise CfgError(
        source,
        it.line,
        it.key,
        f"hankai stops: config line #{it.line} from section [{sec.name}] is unused or "
        f"invalid: {it.key}={_short(it.value)} ({hint})",
    )


def _hk_layer(source: str, idx: int, s: _Sec) -> str:
    """One pass of hankai's layer loop over section ``s``; returns the layer kind."""
    kind = HANKAI_LAYER_NAMES.get(s.name)
    if kind is None:
        raise CfgError(
            source,
            s.line,
            None,
            f'hankai stops: layer type "{_short(s.name)}" not recognized (layer {idx}): '
            "the name is in its table but it builds no layer of that type",
        )
    for key in HANKAI_REQUIRED_KEYS.get(kind, ()):
        if _first(s, key) is None:
            raise CfgError(
                source,
                s.line,
                key,
                f"hankai stops: section [{s.name}] at line {s.line} was expecting to "
                f'find a key named "{key}" but it does not exist',
            )
    _layer_keys(_Net("hankai", source, s), idx)  # its stops on a non-numeric value
    known = HANKAI_LAYER_KEYS[kind] | HANKAI_COMMON_KEYS
    _hk_unused(source, s, [it for it in s.items if it.key not in known], known, {})
    return kind


def _hk_layers(net: _Net, secs: list[_Sec], dims: dict[str, int]) -> None:
    """hankai's ``create_network`` after ``[net]``: each layer in order, then the
    network size a detector as last layer needs (multiples of 32, at least 32)."""
    kind = ""
    for idx, s in enumerate(secs[1:]):
        kind = _hk_layer(net.source, idx, s)
    if kind not in HANKAI_DETECTORS:
        return
    for key in ("width", "height"):
        size = dims[key]
        if size < 32 or size % 32:
            it = _first(net.sec, key) or _Item(key, None, net.sec.line, net.sec.raw)
            raise net.error(
                it,
                key,
                f"hankai stops: the last layer is [{secs[-1].name}], so the network "
                f"width and height must be multiples of 32 and at least 32 ({key}={size})",
            )


def _check_lr_code(net: _Net, v: dict[str, object]) -> None:
    """CfgError where the fork's LR code divides by zero or loops forever."""
    pol = v["policy"]
    if pol in (Policy.STEP,) and v["step"] == 0:
        it = _first(net.sec, "step")
        raise net.error(it, "step", "darknet divides by zero: step=0 with policy=step")
    if pol is Policy.SGDR:
        cycle = int(v["sgdr_cycle"])  # type: ignore[call-overload]
        mult = int(v["sgdr_mult"])  # type: ignore[call-overload]
        mb = int(v["max_batches"])  # type: ignore[call-overload]
        if cycle <= 0:
            it = _first(net.sec, "sgdr_cycle") or _first(net.sec, "max_batches")
            raise net.error(
                it,
                "sgdr_cycle",
                f"darknet would loop forever: sgdr_cycle must be > 0 (it is {cycle})",
            )
        if mult <= 0 and mb > cycle:
            raise net.error(
                _first(net.sec, "sgdr_mult"),
                "sgdr_mult",
                f"darknet would loop forever: sgdr_mult must be > 0 (it is {mult}) "
                f"once training passes the first cycle ({cycle} < max_batches {mb})",
            )


def _first(sec: _Sec, key: str) -> _Item | None:
    for it in sec.items:
        if it.key == key:
            return it
    return None


def _c_notes(net: _Net) -> None:
    """P002/P003/P005/P010/P012/P015 for the ``[net]`` lines of a C fork."""
    read = set(net.lines)
    for it in net.sec.empties:
        net.warn(
            "P003",
            it,
            f"Config file error line {it.line}, could parse: {it.key} (default kept)",
        )
    first: dict[str, _Item] = {}
    for it in net.sec.items:
        prev = first.get(it.key)
        if prev is not None:
            if prev.value is None:
                net.warn(
                    "P012",
                    it,
                    f"{it.key} on line {it.line} is never read: line {prev.line} has the same "
                    "key without '=' and darknet finds that one first (default used)",
                )
            else:
                net.warn("P005", it, f"duplicate key {it.key}: line {prev.line} wins")
            continue
        first[it.key] = it
        if it.value is None:
            net.warn("P012", it, f"line without '=' ignored: {it.key}")
            continue
        if "#" in it.value and it.key not in (
            "policy",
            "steps",
            "scales",
            "seq_scales",
        ):
            net.warn(
                "P002", it, f"'#' inside {it.key}: C forks have no inline comments"
            )
        if it.key not in NET_KEYS[net.fork]:
            net.warn("P015", it, _unknown_net_key(net.fork, it.key))
        elif (it.key in _POLICY_KEYS or it.key in _SGDR_KEYS) and it.key not in read:
            net.warn("P010", it, f"{it.key} is ignored by {net.fork} with this policy")


def _unknown_net_key(fork: str, key: str) -> str:
    """The P015 message: ``key`` is no ``[net]`` key of ``fork``; who reads it, or a guess."""
    others = [f for f in FORKS if f != fork and key in NET_KEYS[f]]
    if others:
        hint = f" ({' and '.join(others)} read{'s' if len(others) == 1 else ''} it)"
    else:
        guess = did_you_mean(key, NET_KEYS[fork])
        hint = f" (did you mean {guess}?)" if guess else ""
    return f"unknown [net] key {_short(key)}: {fork} never reads it{hint}"


def _layer_keys(lay: _Net, idx: int) -> LayerKeys | None:
    """The per-layer training keys of section ``lay.sec`` (layer ``idx``) as the fork
    reads them, numbers as in ``[net]`` (C: atoi/atof, hankai: through float32); None
    when the section has none of them."""
    s, hk = lay.sec, lay.fork == "hankai"
    ints = {
        k: (lay.hk_int(k, 0) if hk else lay.c_int(k, 0))
        for k in LAYER_TRAINING_KEYS[lay.fork]
        if _first(s, k) is not None
    }
    lr = lay.hk_float("learning_rate", 1) if hk else lay.c_float("learning_rate", 1)
    if not lay.lines:
        return None
    wtype = _first(s, "weights_type")
    weights = s.name in WEIGHTED_SECTIONS or (
        s.name == "shortcut" and wtype is not None and wtype.value != "none"
    )
    lines = tuple(sorted(lay.lines.items(), key=lambda kv: kv[1]))
    return LayerKeys(
        idx, s.name, s.line, weights, **ints, learning_rate=lr, lines=lines
    )


def _layers(net: _Net, secs: list[_Sec]) -> tuple[tuple[LayerKeys, ...], int | None]:
    """Every layer's training keys (warnings go to ``net``) and the first detection
    layer's classes."""
    layers: list[LayerKeys] = []
    classes: int | None = None
    for idx, s in enumerate(secs[1:]):
        lay = _Net(net.fork, net.source, s)
        keys = _layer_keys(lay, idx)
        net.warnings.extend(lay.warnings)
        if keys is not None:
            layers.append(keys)
        c = _first(s, "classes")
        if classes is None and s.name in _DETECTION_SECTIONS and c and c.value:
            if net.fork == "hankai":
                classes = _f32_cast_int(c.num) if c.num is not None else None
            else:
                classes = c_atoi(c.value)[0]
    return tuple(layers), classes


def _network_sections(fork: str, source: str, secs: list[_Sec]) -> list[_Sec]:
    """The sections the fork builds a network from, after its first-section checks.

    hankai replaces a ``[net]`` holding no key by the next section (its reader keeps
    the network section while it is empty), then needs a layer section and a
    ``[net]``/``[network]`` first.
    """
    if not secs:
        raise CfgError(
            source, None, None, "darknet stops: the config file has no sections"
        )
    dropped: _Sec | None = None
    if fork == "hankai":
        while len(secs) > 1 and not secs[0].items:
            dropped, secs = secs[0], secs[1:]
        if len(secs) < 2:
            raise CfgError(
                source,
                None,
                None,
                "hankai stops: cannot create a network without layer sections",
            )
    first = secs[0]
    ok = (
        first.name in ("net", "network")
        if fork == "hankai"
        else first.header in ("[net]", "[network]")
    )
    if not ok:
        why = ""
        if dropped is not None:
            why = (
                f" (the [{dropped.name}] at line {dropped.line} holds no key, so "
                "hankai took the next section in its place)"
            )
        raise CfgError(
            source,
            first.line,
            None,
            f"{_who(fork)} stops: First section must be [net] or [network], "
            f"found {first.header!r}{why}",
        )
    return secs


def parse(
    text: str, *, fork: str = "alexeyab", source: str = "<string>"
) -> NetSchedule:
    """Read a cfg's ``[net]`` schedule the way ``fork`` does.

    Raises :class:`CfgError` where the fork would crash, stop or loop forever (the
    message says which; hankai's checks of the layer sections included), ``ValueError``
    for an unknown fork. Everything the fork does silently but surprisingly is
    reproduced and listed in ``NetSchedule.warnings``.
    """
    secs = _network_sections(fork, source, _read(text, fork, source))
    net = _Net(fork, source, secs[0])
    if fork == "hankai":
        v, dims = _net_hk(net)
        for it in secs[0].empties:
            net.warn(
                "P003",
                it,
                f"empty value: hankai ignores line {it.line}, {it.key} keeps its default",
            )
        _hk_layers(net, secs, dims)
    else:
        v = _net_c(net)
        _c_notes(net)
    _check_lr_code(net, v)
    layers, classes = _layers(net, secs)
    lrs = tuple(
        LayerLR(x.index, x.section, x.learning_rate, dict(x.lines)["learning_rate"])
        for x in layers
        if "learning_rate" in dict(x.lines)
    )
    v.update(
        layers=layers,
        fork=fork,
        warnings=tuple(net.warnings),
        lines=dict(net.lines),
        source=source,
        layer_lrs=lrs,
        classes=classes,
    )
    return NetSchedule(**v)  # type: ignore[arg-type]


def load(path: str | os.PathLike[str], *, fork: str = "alexeyab") -> NetSchedule:
    """:func:`parse` the file at ``path`` (UTF-8, undecodable bytes replaced; see
    :func:`cfgsched.files.read_cfg` for the limits)."""
    _check_fork(fork)
    text, source = read_cfg(path)  # regular files up to 4 MiB, paths only
    return parse(text, fork=fork, source=source)
