"""Each fork's own rules for reading a darknet ``.cfg`` (docs/design.md, reading a cfg):
where it stops, a :class:`CfgError` naming line and key; where it silently surprises,
the same result and a :class:`CfgWarning`. Standard library only."""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

from cfgsched.errors import CfgError, CfgWarning
from cfgsched.files import read_cfg
from cfgsched.kernel.formulas import ctrunc_div, f32
from cfgsched.reader.keys import (
    HANKAI_COMMON_KEYS,
    HANKAI_DETECTORS,
    HANKAI_LAYER_KEYS,
    HANKAI_LAYER_NAMES,
    HANKAI_NET_ORDER,
    HANKAI_NET_WHEN,
    HANKAI_REQUIRED_KEYS,
    LAYER_TRAINING_KEYS,
    NET_KEYS,
    WEIGHTED_SECTIONS,
    did_you_mean,
)
from cfgsched.schedule import FORKS, LayerKeys, LayerLR, NetSchedule, Policy

__all__ = ["Entry", "Section", "load", "parse", "policies", "read_sections"]

T = TypeVar("T")

_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_FLT_MIN = 1.1754943508222875e-38
#: Values at or above this magnitude round to infinity in float32 (FLT_MAX + half an ulp).
_F32_OVERFLOW = 2**128 - 2**103

#: Characters each C fork's ``strip()`` removes from every line.
_C_STRIP = {"alexeyab": " \t\n\r", "pjreddie": " \t\n"}
#: Learning-rate keys that only some policies (or ``adam=1``) read.
_POLICY_KEYS = {*HANKAI_NET_WHEN, "learning_rate_min", "sgdr_cycle", "sgdr_mult"}
_DETECTION_SECTIONS = ("yolo", "region", "Gaussian_yolo", "detection")
#: Keys whose '#' is reported (P002) where they are read, not by :func:`_notes`.
_OWN_P002 = ("policy", "steps", "scales", "seq_scales")
_P002 = "'#' inside {}: C forks have no inline comments"
#: The words of all three forks (src/parser.c ``parse_net_options``, hankai
#: ``parse_net_section``) when policy=steps lacks steps or scales.
_NO_STEPS = "STEPS policy must have steps and scales in cfg file"


@dataclass(frozen=True)
class Entry:
    """A ``key=value`` line as the fork reads it; ``raw``: the line as in the file, ``value``
    None: a C-fork line without '=' (darknet stores NULL), ``num``: hankai's float32 of a
    value that looks numeric."""

    key: str
    value: str | None
    line: int
    raw: str
    num: float | None = field(default=None, compare=False, repr=False)


@dataclass
class Section:
    """A ``[name]`` header (``header`` as the fork reads it, ``raw`` as in the file) and
    the lines below it: ``items`` every entry, ``empties`` the ``key=`` lines without a
    value."""

    name: str
    header: str
    line: int
    raw: str
    items: list[Entry] = field(default_factory=list)
    empties: list[Entry] = field(default_factory=list)

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The entries with a value (not a C-fork line without '='), in file order."""
        return tuple(e for e in self.items if e.value is not None)

    def get(self, key: str) -> Entry | None:
        """The first entry with a value named ``key``, or None."""
        return next((e for e in self.entries if e.key == key), None)


# --- C and C++ number conversions ------------------------------------------------------

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
    """C ``atof``: the double of the longest valid prefix and the characters used."""
    start = len(s) - len(s.lstrip(_WS))
    if m := _HEX.match(s, start):
        try:
            value = float.fromhex(m.group(0).lstrip("+-"))
        except OverflowError:
            value = math.inf
    elif m := _INFNAN.match(s, start):
        value = math.nan if "nan" in m.group(0).lower() else math.inf
    elif m := _DEC.match(s, start):
        return float(m.group(0)), m.end()  # float() rounds overflow to inf
    else:
        return 0.0, 0
    return (-value if m.group(0).startswith("-") else value), m.end()


def c_atoi(s: str) -> tuple[int, int]:
    """C ``atoi`` (glibc: ``(int) strtol``): value and characters used; wraps like x86."""
    start = len(s) - len(s.lstrip(_WS))
    m = _INT.match(s, start)
    if m is None:
        return 0, 0
    v = max(_LONG_MIN, min(_LONG_MAX, _bounded_int(m.group(0)))) & 0xFFFFFFFF
    return (v - (1 << 32) if v >= (1 << 31) else v), m.end()


def _bounded_int(text: str) -> int:
    """int(text) for ``[+-]?digits`` of any length (huge values are clamped to ±2**64)."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    return sign * (1 << 64) if len(digits) > 21 else sign * int(digits)


def _decimal_fraction(text: str) -> Fraction | None:
    """The exact value of ``-?digits[.digits]``, None when far outside float32 (very long
    fractions keep 200 significant digits and a sticky digit: the same float32)."""
    ip, _, fp = text.lstrip("-").partition(".")
    ip, z = ip.lstrip("0"), len(fp) - len(fp.lstrip("0"))
    if not ip and z == len(fp):
        return Fraction(0)
    if len(ip) > 40 or (not ip and z > 60):
        return None
    keep = 200 if ip else z + 200
    if len(fp) > keep:
        fp = fp[:keep] + ("1" if fp[keep:].strip("0") else "")
    q = Fraction(int(ip + fp), 10 ** len(fp))
    return -q if text.startswith("-") else q


def _f32_cast_int(x: float) -> int:
    """``static_cast<int>(float)`` on x86: truncation; out of range or NaN gives INT_MIN."""
    if math.isnan(x) or not (_INT_MIN <= math.trunc(x) <= _INT_MAX):
        return _INT_MIN
    return math.trunc(x)


def _nearest_f32(q: Fraction) -> float:
    """The float32 nearest to the exact rational ``q`` (ties to even), as ``strtof`` does."""
    if q == 0:
        return 0.0
    if abs(q) >= _F32_OVERFLOW:
        return math.inf if q > 0 else -math.inf
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    e = max(e - (a < Fraction(2) ** e) - 23, -149)  # 24 significant bits, or subnormal
    v = math.ldexp(round(a / Fraction(2) ** e), e)  # round(): ties to even
    return -v if q < 0 else v


def _f32_of_decimal(text: str) -> float | None:
    """The float32 nearest to ``text`` through the double; None where rounding twice
    could differ (a float32 midpoint, outside float32's normal range)."""
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
    """hankai's ``std::stof`` on ``-.0123456789``: the longest decimal prefix rounded once
    to float32; None where it throws (no number, overflow, non-zero below FLT_MIN)."""
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
    return None if math.isinf(v) or abs(v) < _FLT_MIN else v


def hk_stoi(s: str) -> int | None:
    """hankai's ``std::stoi`` on a run of ``-0123456789``; None where it throws."""
    m = _HK_INT.match(s)
    if m is None:
        return None
    v = _bounded_int(m.group(0))
    return v if _INT_MIN <= v <= _INT_MAX else None


# --- reading lines and sections --------------------------------------------------------


def _read_c(text: str, fork: str, source: str) -> list[Section]:
    table = str.maketrans("", "", _C_STRIP[fork])
    secs: list[Section] = []
    for n, raw in enumerate(text.removesuffix("\n").split("\n"), 1):
        s = raw.split("\0", 1)[0].translate(table)
        if not s or s[0] in "#;":
            continue
        if s[0] == "[":
            name = s[1:-1] if s.endswith("]") and len(s) > 1 else s[1:]
            secs.append(Section(name, s, n, raw))
            continue
        if not secs:
            why = f"darknet crashes here: text before the first [section]: {_stray(s)}"
            raise CfgError(source, n, None, why)
        eq = s.find("=")
        if eq < 0:
            secs[-1].items.append(Entry(s, None, n, raw))
        elif eq == len(s) - 1:
            secs[-1].empties.append(Entry(s[:eq], "", n, raw))
        else:
            secs[-1].items.append(Entry(s[:eq], s[eq + 1 :], n, raw))
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


def _read_hk(text: str, source: str) -> list[Section]:
    secs: list[Section] = []
    for n, raw in enumerate(text.removesuffix("\n").split("\n"), 1):
        line = raw.rstrip(" \t\r\n") or raw
        m = _HK_RX.search(line)
        if m is None:
            e = _HK_EMPTY.match(line)
            if e is not None and secs:
                secs[-1].empties.append(Entry(e.group(1), "", n, raw))
            continue
        if m.group(1) is not None:
            name = m.group(1)
            if name not in HANKAI_LAYER_NAMES:
                why = f'hankai stops: layer name "{_short(name)}" is not supported'
                raise CfgError(source, n, None, why)
            secs.append(Section(name, "[" + name + "]", n, raw))
            continue
        if not secs:
            why = "hankai stops: cannot add a configuration line without a section"
            raise CfgError(source, n, None, why)
        key, val, sec = m.group(2).strip(_HK_TRIM), m.group(3).strip(_HK_TRIM), secs[-1]
        if (it := _first(sec, key)) is not None:
            why = f'duplicate key "{key}" in [{sec.name}] at lines #{it.line} and #{n}'
            raise CfgError(source, n, key, "hankai stops: " + why)
        numeric = bool(val) and set(val) <= _HK_NUM_CHARS
        num = hk_stof(val) if numeric else None
        if numeric and num is None:
            why = f'hankai stops: failed to parse numeric value from "{_short(val)}"'
            raise CfgError(source, n, key, why)
        sec.items.append(Entry(key, val, n, raw, num))
    return secs


def read_sections(
    text: str, *, fork: str = "alexeyab", source: str = "<string>"
) -> list[Section]:
    """``text``'s sections and entries by ``fork``'s reading rules (values unchecked)."""
    if fork not in FORKS:
        raise ValueError(f"unknown fork {fork!r}: choose one of {', '.join(FORKS)}")
    return _read_hk(text, source) if fork == "hankai" else _read_c(text, fork, source)


def policies(fork: str) -> dict[str, Policy]:
    """The policies ``fork`` knows, by cfg name (pjreddie has no sgdr)."""
    return {p.cfg_name: p for p in Policy if p is not Policy.SGDR or fork != "pjreddie"}


def _short(value: str | None, limit: int = 40) -> str:
    """``value`` cut to ``limit`` characters for messages."""
    v = "" if value is None else value
    return v if len(v) <= limit else v[:limit] + "..."


def _first(sec: Section, key: str) -> Entry | None:
    return next((it for it in sec.items if it.key == key), None)


def _who(fork: str) -> str:
    return "hankai" if fork == "hankai" else "darknet"


# --- [net] and layer values ------------------------------------------------------------


class _Net:
    """Values, warnings and lines read from one section by its fork's rules."""

    def __init__(self, fork: str, source: str, sec: Section) -> None:
        self.fork, self.source, self.sec = fork, source, sec
        self.hk = fork == "hankai"
        self.warnings: list[CfgWarning] = []
        self.lines: dict[str, int] = {}
        self.used: set[int] = set()

    def warn(self, code: str, item: Entry | None, message: str) -> None:
        line, key = (None, None) if item is None else (item.line, item.key)
        col = item.raw.find("=") + 2 if item is not None and "=" in item.raw else 1
        self.warnings.append(CfgWarning(code, line, key, message, col))

    def error(self, item: Entry | None, key: str | None, message: str) -> CfgError:
        return CfgError(self.source, None if item is None else item.line, key, message)

    def item(self, key: str) -> Entry | None:
        """The line the fork reads for ``key`` (C ``option_find``: the first), recorded."""
        it = _first(self.sec, key)
        if it is not None:
            self.used.add(id(it))
            self.lines.setdefault(key, it.line)
        return None if it is None or it.value is None else it

    def touch(self, after: str, before: str) -> None:
        """hankai reads the ``[net]`` keys between two others in ``parse_net_section`` as
        numbers (it stops on a non-numeric one); C forks: no-op."""
        span = HANKAI_NET_ORDER.index(after) + 1, HANKAI_NET_ORDER.index(before)
        for key in HANKAI_NET_ORDER[slice(*span)] if self.hk else ():
            self.hk_num(key)

    def hk_num(self, key: str) -> tuple[Entry | None, float | None]:
        it = self.item(key)
        if it is not None and it.num is None:
            why = f'hankai stops: key "{key}" should be numeric, found "{_short(it.value)}"'
            raise self.error(it, key, why)
        return it, None if it is None else it.num

    def note(self, code: str, it: Entry, why: str) -> None:
        """Warn ``code`` about how the fork reads the value of ``it``."""
        self.warn(code, it, f"{it.key}={_short(it.value)} {why}")

    def geti(self, key: str, default: int) -> int:
        """Integer ``key`` (C: ``atoi``; hankai: ``std::stof`` then a cast), with warnings."""
        it, num = self.hk_num(key) if self.hk else (self.item(key), None)
        if it is None or it.value is None:
            return default
        val = it.value
        if num is not None:  # hankai: the float32 cast to int
            v = _f32_cast_int(num)
            if num != (t := math.trunc(num)):
                self.note("P011", it, f"is an integer key: hankai uses {t}")
            if _HK_INT.fullmatch(val) and _bounded_int(val) != v:
                self.note("P014", it, f"goes through float32 in hankai and becomes {v}")
            return v
        (v, used), (fv, fused) = c_atoi(val), c_atof(val)
        m = _INT.match(val.lstrip(_WS))
        if m is not None and _bounded_int(m.group(0)) != v:
            self.note("P004", it, f"is out of int range: darknet reads {v}")
        elif used < len(val) and not (fused == len(val) and _PLAIN_DEC.fullmatch(val)):
            self.note("P004", it, f"is read as {v} (atoi stops at {val[used]!r})")
        elif used < len(val) and fv != v:
            self.note("P011", it, f"is an integer key: darknet uses {v}")
        return v

    def getf(self, key: str, default: float) -> float:
        """Float ``key`` as float32 (C: ``atof``; hankai: ``std::stof``), with warnings."""
        if self.hk:
            v = self.hk_num(key)[1]
            return f32(default) if v is None else v
        it = self.item(key)
        if it is None or it.value is None:
            return f32(default)
        v, used = c_atof(it.value)
        if used < len(it.value):
            self.note(
                "P004", it, f"is read as {v!r} (atof stops at '{it.value[used]}')"
            )
        return f32(v)


def _c_steps(net: _Net, pol: Policy) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """steps/scales(/seq_scales) as the C forks read them; CfgError where they crash."""
    l_it, p_it = net.item("steps"), net.item("scales")
    s_it = net.item("seq_scales") if net.fork == "alexeyab" else None
    if pol is Policy.STEPS and (l_it is None or p_it is None):
        missing = "steps" if l_it is None else "scales"
        why = f"darknet stops: {_NO_STEPS} ({missing} missing)"
        raise net.error(net.item("policy") if l_it is None else l_it, missing, why)
    if l_it is None or l_it.value is None:
        return (), ()
    lv = l_it.value
    n = 1 + (lv.split("#", 1)[0] if net.fork == "alexeyab" else lv).count(",")
    if "#" in lv:
        net.warn("P002", l_it, _P002.format("steps"))
    pparts = _c_list(net, p_it, "scales", l_it, n)
    _c_list(net, s_it, "seq_scales", l_it, n)
    steps = tuple(c_atoi(x)[0] for x in lv.split(",")[:n])
    scales = tuple(f32(c_atof(x)[0]) for x in (pparts or ["1"] * n)[:n])  # none: 1s

    if n > 1 and lv.endswith(",") and ((p_it and p_it.value) or "").endswith(","):
        why = "trailing comma in steps and scales: adds step 0 with scale 0 (LR 0)"
        net.warn("P007", l_it, why)
    return steps, scales


def _c_list(
    net: _Net, it: Entry | None, key: str, l_it: Entry, n: int
) -> list[str] | None:
    """The comma parts of ``key`` for ``n`` steps; CfgError where darknet reads past them."""
    if it is None or it.value is None:
        return None
    lv, parts = l_it.value or "", it.value.split(",")
    if len(parts) < n:
        pj_hash = "#" in lv and net.fork == "pjreddie"
        blame = lv.endswith(",") or pj_hash
        why = " (pjreddie also counts the commas after '#' in steps)" if pj_hash else ""
        why = " (trailing comma in steps)" if lv.endswith(",") else why
        msg = f"darknet crashes here: fewer {key} ({len(parts)}) than steps ({n}){why}"
        raise net.error(l_it if blame else it, "steps" if blame else key, msg)
    if len(parts) > n and key == "scales":
        why = f"more scales ({len(parts)}) than steps ({n}): extra ignored"
        net.warn("P006", it, why)
    if "#" in it.value:
        net.warn("P002", it, _P002.format(key))
    return parts


def _hk_list(it: Entry | None, chars: str, conv: Callable[[str], T | None]) -> list[T]:
    """hankai's list scanner: ``conv`` of each run of ``chars``, up to the first it rejects."""
    out: list[T] = []
    for run in re.findall("[" + re.escape(chars) + "]+", it.value or "") if it else ():
        v = conv(run)
        if v is None:
            break
        out.append(v)
    return out


def _hk_steps(net: _Net, pol: Policy) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """steps/scales as hankai reads them (``parse_net_section``)."""
    l_it, p_it = net.item("steps"), net.item("scales")
    net.item("seq_scales")
    steps = _hk_list(l_it, "-0123456789", hk_stoi)
    scales = _hk_list(p_it, "-.0123456789", hk_stof)
    if pol is Policy.STEPS and (not steps or not scales):
        it, key = (l_it, "steps") if not steps else (p_it, "scales")
        why = f"hankai stops: {_NO_STEPS} ({key} missing)"
        raise net.error(it or net.item("policy"), key, why)
    n = len(steps)
    if len(scales) > n and p_it is not None:
        why = f"more scales ({len(scales)}) than steps ({n}): extra ignored"
        net.warn("P006", p_it, why)

    if len(scales) < n and (p_it is not None or pol is Policy.STEPS):
        why = f"fewer scales ({len(scales)}) than steps ({n}): "
        why += "hankai pads with 0.0 (LR becomes 0)"
        net.warn("P013", p_it or l_it, why)
    return tuple(steps), tuple((scales + [0.0] * n)[:n])


def _batch(net: _Net, batch: int, subdivs: int, time_steps: int) -> tuple[int, int]:
    """(mini_batch, time_steps) after darknet's division and clamps; CfgError on SIGFPE."""
    sub_it = _first(net.sec, "subdivisions")
    if subdivs == 0:
        why = "darknet divides by zero (SIGFPE): subdivisions=0"
        raise net.error(sub_it, "subdivisions", why)
    mini = ctrunc_div(batch, subdivs) * time_steps
    if net.fork != "pjreddie":
        time_steps = max(time_steps, 1)
        mini = max(mini, 1, time_steps)
    if batch % subdivs != 0 or batch < subdivs:
        why = f"batch={batch} is not a multiple of subdivisions={subdivs}: "
        why += f"{mini * subdivs} images per iteration"
        net.warn("P009", sub_it or _first(net.sec, "batch"), why)
    return mini, time_steps


def _net_values(net: _Net) -> tuple[dict[str, object], dict[str, int]]:
    """The ``[net]`` values and input size in the fork's lookup order, with its stops
    (alexeyab/pjreddie ``parse_net_options``, hankai ``parse_net_section``)."""
    v: dict[str, object] = {"max_batches": net.geti("max_batches", 0)}
    batch = net.geti("batch", 1)
    v["learning_rate"] = net.getf("learning_rate", 0.001)
    if net.fork != "pjreddie":
        v["learning_rate_min"] = net.getf("learning_rate_min", 0.00001)
        v["sgdr_cycle"] = net.geti("sgdr_cycle", int(v["max_batches"]))  # type: ignore[call-overload]
        v["sgdr_mult"] = net.geti("sgdr_mult", 2)
    v["momentum"] = net.getf("momentum", 0.9)
    v["decay"] = net.getf("decay", 0.0001)
    subdivs, time_steps = net.geti("subdivisions", 1), net.geti("time_steps", 1)
    net.touch("time_steps", "weights_reject_freq")
    v["batch"], v["subdivisions"] = batch, subdivs
    v["mini_batch"], v["time_steps"] = _batch(net, batch, subdivs, time_steps)
    net.touch("try_fix_nan", "adam")
    v["adam"] = net.geti("adam", 0) != 0
    if v["adam"]:
        v["b1"], v["b2"] = net.getf("B1", 0.9), net.getf("B2", 0.999)
        v["eps"] = net.getf("eps", 0.000001)
    dims = {k: net.geti(k, 0) for k in ("height", "width", "channels")}
    product = dims["height"] * dims["width"] * dims["channels"]
    inputs = net.geti("inputs", product if net.hk else c_atoi(str(product))[0])
    net.touch("inputs", "power")
    con = _first(net.sec, "contrastive")
    if net.fork == "alexeyab":
        on = net.geti("contrastive", 0) != 0
    else:  # hankai: the float32 read; pjreddie has no contrastive
        on = net.hk and con is not None and _f32_cast_int(con.num or 0.0) != 0
    if on and (mini := ctrunc_div(batch, subdivs)) < 2:
        why = f"mini_batch (batch/subdivisions = {mini}) must be > 1"
        why = f"{_who(net.fork)} stops: {why} for contrastive loss"
        raise net.error(con, "contrastive", why)
    v["power"] = net.getf("power", 4)
    if not inputs and not all(dims.values()):  # every fork stops
        bad = [f"{k}=0" if k in net.lines else f"no {k}" for k in dims if not dims[k]]
        why = "No input parameters supplied: [net] needs width, height and channels, "
        why += f"or inputs ({', '.join(bad)})"
        raise CfgError(net.source, net.sec.line, None, f"{_who(net.fork)} stops: {why}")
    _policy_values(net, v)
    if net.hk:
        net.hk_num("show_receptive_field")
        unused = [it for it in net.sec.items if id(it) not in net.used]
        _hk_unused(net, unused, NET_KEYS["hankai"], HANKAI_NET_WHEN)
    return v, dims


def _policy_values(net: _Net, v: dict[str, object]) -> None:
    """policy, burn_in and the policy's own keys, in the fork's order."""
    it = net.item("policy")
    name = "constant" if it is None or it.value is None else it.value
    if it is not None and "#" in name:
        net.warn("P002", it, _P002.format("policy"))
    pol = policies(net.fork).get(name)
    if pol is None and net.hk:
        why = f'hankai stops: learning rate policy "{_short(name)}" is not supported'
        raise net.error(it, "policy", why)
    if pol is None:
        pol = Policy.CONSTANT
        why = f"Couldn't find policy {_short(name)}, going with constant"
        net.warn("P001", it, why)
    if pol is Policy.RANDOM:
        net.warn("P008", it, "policy=random: darknet's draws are not reproducible")
    v["policy"] = pol
    v["policy_name"], v["burn_in"] = name, net.geti("burn_in", 0)
    v["step"], v["scale"], v["gamma"] = 0, 0.0, 0.0
    if pol is Policy.STEP:
        v["step"] = net.geti("step", 1)
        v["scale"] = net.getf("scale", 1)
    elif pol in (Policy.STEPS, Policy.SGDR):  # pjreddie has no sgdr (constant)
        v["steps"], v["scales"] = (_hk_steps if net.hk else _c_steps)(net, pol)
    elif pol in (Policy.EXP, Policy.SIG):
        v["gamma"] = net.getf("gamma", 1)
        if pol is Policy.SIG:
            v["step"] = net.geti("step", 1)


def _hk_unused(
    net: _Net, unused: list[Entry], known: frozenset[str], when: dict[str, str]
) -> None:
    """hankai's ``find_unused_lines``: the alphabetically first unused key is fatal
    (``when``: conditions of keys read only sometimes; else a close spelling is named)."""
    if not unused:
        return
    it, name = min(unused, key=lambda i: i.key.encode()), net.sec.name
    guess = did_you_mean(it.key, known)
    hint = f"did you mean {guess}?" if guess else f"hankai has no such [{name}] key"
    hint = f"read only with {when[it.key]}" if it.key in when else hint
    why = f"config line #{it.line} from section [{name}] is unused or invalid"
    msg = f"hankai stops: {why}: {it.key}={_short(it.value)} ({hint})"
    raise CfgError(net.source, it.line, it.key, msg)


def _check_run(net: _Net, v: dict[str, object]) -> None:
    """CfgError where the fork divides by zero or loops forever once training starts."""
    if net.fork == "pjreddie" and v["mini_batch"] == 0:
        key = "subdivisions" if _first(net.sec, "subdivisions") is not None else "batch"
        why = f"darknet divides by zero (SIGFPE): batch ({v['batch']}) / subdivisions "
        why += f"({v['subdivisions']}) * time_steps ({v['time_steps']}) is 0 images "
        raise net.error(_first(net.sec, key), key, why + "per mini-batch")

    if v["policy"] is Policy.STEP and v["step"] == 0:
        why = "darknet divides by zero: step=0 with policy=step"
        raise net.error(_first(net.sec, "step"), "step", why)
    if v["policy"] is not Policy.SGDR:
        return
    keys = ("sgdr_cycle", "sgdr_mult", "max_batches")
    cycle, mult, mb = (int(v[k]) for k in keys)  # type: ignore[call-overload]
    if cycle <= 0:
        it = _first(net.sec, "sgdr_cycle") or _first(net.sec, "max_batches")
        why = f"darknet would loop forever: sgdr_cycle must be > 0 (it is {cycle})"
        raise net.error(it, "sgdr_cycle", why)
    if mult <= 0 and mb > cycle:
        why = f"darknet would loop forever: sgdr_mult must be > 0 (it is {mult}) "
        why += f"once training passes the first cycle ({cycle} < max_batches {mb})"
        raise net.error(_first(net.sec, "sgdr_mult"), "sgdr_mult", why)


def _notes(net: _Net) -> None:
    """P002/P003/P005/P010/P012/P015 for the ``[net]`` lines (hankai: P003 only)."""
    for it in net.sec.empties:
        why = f"empty value: {_who(net.fork)} ignores line {it.line}, "
        net.warn("P003", it, why + f"{it.key} keeps its default")
    first: dict[str, Entry] = {}
    for it in net.sec.items if not net.hk else ():
        prev = first.setdefault(it.key, it)
        if prev.value is None:  # darknet finds that line first: no value, default used
            why = f"line {prev.line} without '=' ignored: {it.key} keeps its default"
            later = f"; line {it.line} is never read" if prev is not it else ""
            net.warn("P012", it, why + later)
        elif prev is not it:
            net.warn("P005", it, f"duplicate key {it.key}: line {prev.line} wins")
        elif "#" in (it.value or "") and it.key not in _OWN_P002:
            net.warn("P002", it, _P002.format(it.key))
        if prev is not it or it.value is None:
            continue
        if it.key not in NET_KEYS[net.fork]:
            net.warn("P015", it, _unknown_net_key(net.fork, it.key))
        elif it.key in _POLICY_KEYS and it.key not in net.lines:
            net.warn("P010", it, f"{it.key} is ignored by {net.fork} with this policy")


def _unknown_net_key(fork: str, key: str) -> str:
    """The P015 message: ``key`` is no ``[net]`` key of ``fork``; who reads it, or a guess."""
    others = [f for f in FORKS if f != fork and key in NET_KEYS[f]]
    guess = did_you_mean(key, NET_KEYS[fork])
    hint = f" (did you mean {guess}?)" if guess else ""
    if others:
        hint = f" ({' and '.join(others)} read{'s' if len(others) == 1 else ''} it)"
    return f"unknown [net] key {_short(key)}: {fork} never reads it{hint}"


def _layers(
    net: _Net, secs: list[Section], dims: dict[str, int]
) -> tuple[tuple[LayerKeys, ...], int | None]:
    """Every layer's training keys and the first detection layer's classes; hankai's
    ``create_network`` checks each layer, then the size a detector as last layer needs."""
    layers: list[LayerKeys] = []
    classes: int | None = None
    training = LAYER_TRAINING_KEYS[net.fork]
    kind: str | None = ""
    for idx, s in enumerate(secs[1:]):
        lay = _Net(net.fork, net.source, s)
        kind = HANKAI_LAYER_NAMES.get(s.name, "") if net.hk else ""
        if kind is None:
            why = f'layer type "{_short(s.name)}" not recognized (layer {idx}): '
            why += "the name is in its table but it builds no layer of that type"
            raise CfgError(net.source, s.line, None, "hankai stops: " + why)
        for key in HANKAI_REQUIRED_KEYS.get(kind, ()):
            if _first(s, key) is None:
                why = f"section [{s.name}] at line {s.line} was expecting to find a "
                why += f'key named "{key}" but it does not exist'
                raise CfgError(net.source, s.line, key, "hankai stops: " + why)
        # the training keys, read as [net]'s (hankai stops on non-numbers)
        ints: dict[str, Any] = {k: lay.geti(k, 0) for k in training if _first(s, k)}
        lr = lay.getf("learning_rate", 1)
        wtype = _first(s, "weights_type")
        weights = s.name in WEIGHTED_SECTIONS or (
            s.name == "shortcut" and wtype is not None and wtype.value != "none"
        )
        lines = tuple(sorted(lay.lines.items(), key=lambda kv: kv[1]))
        head = (idx, s.name, s.line, weights)
        if lines:  # a layer without training keys is left out
            layers.append(LayerKeys(*head, **ints, learning_rate=lr, lines=lines))
        if kind:
            known = HANKAI_LAYER_KEYS[kind] | HANKAI_COMMON_KEYS
            _hk_unused(lay, [it for it in s.items if it.key not in known], known, {})
        net.warnings.extend(lay.warnings)
        c = _first(s, "classes")
        if classes is None and s.name in _DETECTION_SECTIONS and c and c.value:
            n = c.num if net.hk else c_atoi(c.value)[0]  # hankai: the float32 cast
            classes = None if n is None else _f32_cast_int(n)
    for key in ("width", "height") if kind in HANKAI_DETECTORS else ():
        if dims[key] < 32 or dims[key] % 32:
            it = _first(net.sec, key) or Entry(key, None, net.sec.line, net.sec.raw)
            why = f"the last layer is [{secs[-1].name}], so the network width and "
            why += f"height must be multiples of 32 and at least 32 ({key}={dims[key]})"
            raise net.error(it, key, "hankai stops: " + why)
    return tuple(layers), classes


def _network_sections(fork: str, source: str, secs: list[Section]) -> list[Section]:
    """The sections the fork builds a network from, after its first-section checks
    (hankai replaces a ``[net]`` holding no key by the next section, then needs a layer
    section and a ``[net]``/``[network]`` first)."""
    if not secs:
        msg = "darknet stops: the config file has no sections"
        raise CfgError(source, None, None, msg)
    why = ""
    if fork == "hankai":
        while len(secs) > 1 and not secs[0].items:
            why = f" (the [{secs[0].name}] at line {secs[0].line} holds no key, so "
            why += "hankai took the next section in its place)"
            secs = secs[1:]
        if len(secs) < 2:
            msg = "hankai stops: cannot create a network without layer sections"
            raise CfgError(source, None, None, msg)
    first = secs[0]  # hankai's header is "[" + its name + "]"
    if first.header not in ("[net]", "[network]"):
        msg = f"{_who(fork)} stops: First section must be [net] or [network], "
        raise CfgError(source, first.line, None, msg + f"found {first.header!r}{why}")
    return secs


def parse(
    text: str, *, fork: str = "alexeyab", source: str = "<string>"
) -> NetSchedule:
    """A cfg's schedule read as ``fork`` does (CfgError where it stops; module doc)."""
    secs = _network_sections(
        fork, source, read_sections(text, fork=fork, source=source)
    )
    net = _Net(fork, source, secs[0])
    v, dims = _net_values(net)
    _notes(net)
    layers, classes = _layers(net, secs, dims)
    _check_run(net, v)
    lrs = [(x, dict(x.lines).get("learning_rate")) for x in layers]
    v.update(fork=fork, source=source, lines=dict(net.lines), classes=classes)
    v.update(layers=layers, warnings=tuple(net.warnings))
    v["layer_lrs"] = tuple(
        LayerLR(x.index, x.section, x.learning_rate, n) for x, n in lrs if n
    )
    return NetSchedule(**v)  # type: ignore[arg-type]


def load(path: str | os.PathLike[str], *, fork: str = "alexeyab") -> NetSchedule:
    """:func:`parse` the file at ``path`` (see :func:`cfgsched.files.read_cfg`)."""
    text, source = read_cfg(path)  # regular files up to 4 MiB, paths only
    return parse(text, fork=fork, source=source)
