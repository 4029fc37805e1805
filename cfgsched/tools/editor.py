"""The cfg editor of ``adjust`` and ``plot``'s what-ifs: only an edited ``[net]`` value's
text changes (an absent key goes after the last ``[net]`` entry with the file's line
ending), and the fork's own parser reads the result."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cfgsched.errors import CfgError
from cfgsched.kernel.formulas import HANKAI_GPUS
from cfgsched.reader.keys import NET_KEYS, did_you_mean
from cfgsched.reader.parser import c_atof, c_atoi, parse, policies, read_sections
from cfgsched.run import advised_schedule
from cfgsched.schedule import NetSchedule, f32
from cfgsched.weights import read_weights_header

#: Schedule keys ``adjust`` edits and the kind of value each takes.
KEY_KINDS: dict[str, str] = dict(
    pair.split(":")
    for pair in (
        "learning_rate:float momentum:float decay:float burn_in:int power:float "
        "policy:policy step:int scale:float gamma:float max_batches:int "
        "learning_rate_min:float sgdr_cycle:int sgdr_mult:int steps:ints scales:floats "
        "batch:int subdivisions:int time_steps:int adam:int B1:float B2:float eps:float"
    ).split()
)
_DECIMAL = frozenset("+-.0123456789")
_VALUE_FORMS = {
    "int": "an integer within C int range",
    "float": "a decimal number without exponent within float32 range",
    "ints": "a comma-separated list of integers within C int range",
    "floats": "a comma-separated list of decimals within float32 range",
}


@dataclass(frozen=True)
class Edit:
    """Set ``[net]`` key ``key`` to the cfg text ``value``."""

    key: str
    value: str


def check_key(key: str, value: str, fork: str) -> None:
    """CfgError (source ``--set``) unless ``key`` is a ``[net]`` schedule key ``fork``
    reads and ``value`` is one line."""
    known = [k for k in KEY_KINDS if k in NET_KEYS[fork]]
    if key not in known:
        near = did_you_mean(key, frozenset(known))
        hint = f"did you mean {near}? " if near else ""
        why = f"not a [net] schedule key {fork} reads ({hint}one of {', '.join(known)})"
        raise CfgError("--set", None, key, why)
    if any(c in value for c in "\r\n\0"):
        raise CfgError("--set", None, key, "value must be one line")


def _number(text: str, kind: str) -> bool:
    """Whether C reads all of ``text`` as a number of ``kind`` (the reader's ``atoi`` /
    ``atof``: ASCII digits only), in C int or float32 range; decimals without exponent."""
    if kind == "int":
        return c_atoi(text)[1] == len(text) > 0 and -(2**31) <= int(text) < 2**31
    if not (c_atof(text)[1] == len(text) > 0 and set(text) <= _DECIMAL):
        return False
    return math.isfinite(f32(float(text)))


def check_edit(key: str, value: str, fork: str) -> Edit:
    """Validate ``key=value`` for ``fork`` (adjust's strict value forms); ValueError
    (a CfgError for the key) says what is wrong."""
    key, value = key.strip(), value.strip()
    check_key(key, value, fork)
    kind = KEY_KINDS[key]
    if kind == "policy":
        ok, what = value in policies(fork), "one of " + ", ".join(policies(fork))
    else:
        one = kind.rstrip("s")
        parts = [p.strip() for p in value.split(",")] if kind != one else [value]
        value = ",".join(parts)
        ok = all(_number(p, one) for p in parts)
        what = _VALUE_FORMS[kind] + " (ASCII digits, as darknet's atoi/atof read them)"
    if not ok:
        raise ValueError(f"{key}={value!r}: the value must be {what}")
    return Edit(key, value)


def parse_set(item: str, fork: str) -> Edit:
    """A ``--set KEY=VALUE`` option as a validated :class:`Edit`."""
    key, eq, value = item.partition("=")
    if not eq:
        raise ValueError(f"--set {item!r}: expected KEY=VALUE")
    return check_edit(key, value, fork)


def rescale_steps(steps: Sequence[int], old_max: int, new_max: int) -> tuple[int, ...]:
    """``steps`` at the same fractions of ``new_max`` as of ``old_max``: exactly
    ``round(s · new_max / old_max)``, halves up; ValueError for ``old_max <= 0`` or a step
    outside C int range."""
    if old_max <= 0:
        raise ValueError(
            f"max_batches is {old_max}: the steps have no fractions to keep"
        )
    out = tuple((2 * s * new_max + old_max) // (2 * old_max) for s in steps)
    bad = [s for s in out if not -(2**31) <= s < 2**31]
    if bad:
        raise ValueError(f"rescaled step {bad[0]} is outside C int range")
    return out


def float_text(x: float) -> str:
    """Shortest positional decimal that reads back as the float32 ``x`` (no exponent)."""
    import numpy as np  # adjust --gpus only: `cfgsched --help` stays without numpy

    return str(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def gpu_edits(s: NetSchedule, gpus: int) -> list[Edit]:
    """AlexeyAB's advice for ``-gpus N``: learning_rate / N, burn_in x N (checked as a
    ``--set burn_in`` is: darknet's int)."""
    if s.fork == "hankai":
        why = f"{HANKAI_GPUS}, so the lr/N advice does not apply (use --set)"
        raise ValueError(f"--gpus: {why}")
    adv = advised_schedule(s, gpus)  # ValueError for gpus < 1
    edits = [Edit("learning_rate", float_text(adv.learning_rate))]
    if s.burn_in > 0:
        try:
            edits.append(check_edit("burn_in", str(adv.burn_in), s.fork))
        except ValueError as exc:
            raise ValueError(f"--gpus {gpus}: {exc}") from None
    return edits


def _replace_value(raw: str, value: str, fork: str) -> str:
    body, cr = (raw[:-1], "\r") if raw.endswith("\r") else (raw, "")
    start = len(body) - len(body[body.index("=") + 1 :].lstrip(" \t"))
    end = body.find("#", start) if fork == "hankai" else -1
    stop = max(start, len(body[: end if end >= 0 else len(body)].rstrip(" \t")))
    return body[:start] + value + body[stop:] + cr


@dataclass(frozen=True)
class Edited:
    """A cfg text after :func:`edit_text`: ``lines`` maps each 1-based line that holds an
    edit to its key; ``inserted`` lists the 1-based lines that were added (sorted)."""

    text: str
    lines: dict[int, str]
    inserted: tuple[int, ...]

    def original_line(self, line: int | None) -> int | None:
        """The line of the unedited text that ``line`` of the edited text was."""
        return None if line is None else line - sum(x < line for x in self.inserted)


def edit_text(text: str, edits: Sequence[Edit], *, fork: str, source: str) -> Edited:
    """``text`` with ``edits`` applied, unparsed: the first ``[net]`` entry of a key as
    ``fork`` reads it gets the value, an absent key goes after the last entry; CfgError
    for a key the fork does not read (:func:`check_key`), edited twice, or no section."""
    for e in edits:
        check_key(e.key, e.value, fork)
    keys = [e.key for e in edits]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        why = "set twice in one adjust (--gpus sets learning_rate and burn_in)"
        raise CfgError("--set", None, sorted(dup)[0], why)
    lines, sections = text.split("\n"), read_sections(text, fork=fork)
    if not sections:
        raise CfgError(source, None, None, "no [net] section to adjust")
    net, marks, added = sections[0], dict[int, str](), list[Edit]()
    for e in edits:
        if (entry := net.get(e.key)) is not None:
            lines[entry.line - 1] = _replace_value(entry.raw, e.value, fork)
            marks[entry.line] = e.key
        else:
            added.append(e)
    at = net.entries[-1].line if net.entries else net.line  # new lines go below it
    prev, eol = lines[at - 1], "\r" if "\r\n" in text else ""
    indent = prev[: len(prev) - len(prev.lstrip(" \t"))] if net.entries else ""
    block = [f"{indent}{e.key}={e.value}{eol}" for e in added]
    if block and at == len(lines):  # below the unterminated last line: ends the same
        lines[-1] += "" if prev.endswith("\r") else eol
        block[-1] = block[-1].removesuffix(eol)
    lines[at:at] = block
    marks.update((at + 1 + i, e.key) for i, e in enumerate(added))
    inserted = tuple(range(at + 1, at + 1 + len(added)))
    return Edited("\n".join(lines), marks, inserted)


def edit_schedule(
    text: str, edits: Sequence[Edit], *, fork: str, source: str, rescale: bool = False
) -> tuple[str, NetSchedule]:
    """``text`` with ``edits`` and the schedule ``fork`` reads from it (lines as in
    ``text``); ``rescale``: with a max_batches edit, steps keep their fractions
    (:func:`rescale_steps`). CfgError: a key the fork does not read, or an error of the
    edited text (on an edited line it names ``--set key=value``)."""
    base = parse(text, fork=fork, source=source)
    if not edits:
        return text, base
    edited = edit_text(text, edits, fork=fork, source=source)
    new = _read_edited(edited, edits, fork, source)
    keys = {e.key for e in edits}
    if rescale and "max_batches" in keys and base.steps:
        if "steps" in keys:
            why = "moves the cfg's steps: not with --steps or --set steps"
            raise CfgError("--rescale-steps", None, "steps", why)
        try:
            steps = rescale_steps(base.steps, base.max_batches, new.max_batches)
        except ValueError as exc:
            raise CfgError("--rescale-steps", None, "steps", str(exc)) from None
        edits = [*edits, Edit("steps", ",".join(map(str, steps)))]
        edited = edit_text(text, edits, fork=fork, source=source)
        new = _read_edited(edited, edits, fork, source)
    return edited.text, new


def _read_edited(
    edited: Edited, edits: Sequence[Edit], fork: str, source: str
) -> NetSchedule:
    """``edited`` as ``fork`` reads it, lines mapped back to the unedited text."""
    try:
        s = parse(edited.text, fork=fork, source=source)
    except CfgError as exc:
        if exc.line in edited.lines:
            e = next(x for x in edits if x.key == edited.lines[exc.line])
            where = f"--set {e.key}={e.value}"
            raise CfgError(where, None, exc.key, exc.message) from None
        line = edited.original_line(exc.line)
        raise CfgError(exc.source, line, exc.key, exc.message) from None
    warns = tuple(replace(w, line=edited.original_line(w.line)) for w in s.warnings)
    lines = {k: edited.original_line(v) or v for k, v in s.lines.items()}
    return replace(s, warnings=warns, lines=lines)


def resume_lines(before: NetSchedule, after: NetSchedule, weights: str) -> list[str]:
    """Where darknet resumes ``weights`` under each cfg and its LR for the next update:
    one line per cfg, for stderr."""
    import numpy as np  # the oracle's numpy: only with --resume-from

    from cfgsched.oracle import darknet_lr

    header = read_weights_header(weights, fork=before.fork)
    out = []
    for tag, s in (("before", before), ("after ", after)):
        it = int(header.iteration(s))
        lr = float(darknet_lr(s, np.array([it + 1], dtype=np.int64))[0])
        t = f"{tag}: resumes at iteration {it:,}; next update b={it + 1:,}: LR {lr:.6g}"
        end = f" -- training stops at once (max_batches {s.max_batches:,})"
        out.append(t + end if 0 < s.max_batches <= it else t)
    return out
