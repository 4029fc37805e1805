"""``cfgsched lint``: rules with stable codes that find darknet schedule traps.

Codes: ``P0xx`` are the reader's warnings (:data:`cfgsched.schedule.WARNING_CODES`),
``E1xx`` something that crashes or stops the chosen fork (every fork with ``fork="all"``),
``N1xx`` the same in a fork not chosen (a note: it does not fail the lint), ``W2xx``
schedule traps of the chosen fork, ``A3xx`` advice (darknet's rules of thumb, multi-GPU).
A finding is a :class:`cfgsched.errors.CfgWarning`, printed as ``path:line:col: CODE message``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import boundaries, sgdr_hangs
from cfgsched.errors import CfgError, CfgWarning
from cfgsched.kernel.formulas import ngpus_lr
from cfgsched.options import Options
from cfgsched.oracle import darknet_lr
from cfgsched.run import Run, advised_schedule, translate
from cfgsched.schedule import DEFAULT_FORK, FORKS, WARNING_CODES, NetSchedule, Policy
from cfgsched.tools.text import fmt

I64 = npt.NDArray[np.int64]
#: The translation options of a lint run, or how to make them from each parsed schedule.
OptionsFor = Options | Callable[[NetSchedule], Options] | None

#: JSON schema name of ``cfgsched lint --format json``.
SCHEMA = "cfgsched-lint/1"

#: Rule code -> one-line summary (the parser's ``P`` codes are in ``WARNING_CODES``).
RULES: dict[str, str] = {
    "E101": "alexeyab crashes or stops on this cfg",
    "E102": "pjreddie crashes or stops on this cfg",
    "E103": "hankai stops on this cfg",
    "N101": "alexeyab, not the fork linted, crashes or stops on this cfg (a note)",
    "N102": "pjreddie, not the fork linted, crashes or stops on this cfg (a note)",
    "N103": "hankai, not the fork linted, stops on this cfg (a note)",
    "W201": "steps not sorted: a step after a larger one applies only after that one",
    "W202": "duplicated step: its scale applies twice at the same batch",
    "W203": "step <= 0: scales the LR from the start (pjreddie: a negative step never applies)",
    "W204": "step inside burn-in: its scale shows only when burn-in ends",
    "W205": "step beyond max_batches: never reached in training",
    "W206": "scale or gamma > 1: the LR rises",
    "W207": "burn_in >= max_batches: burn-in longer than training",
    "W208": "max_batches <= 0: the detector trains 0 iterations, the classifier never stops",
    "W209": "steps far before max_batches: the LR is decayed for most of the run",
    "W210": "LR reaches 0 before training ends",
    "W211": "LR goes negative before training ends",
    "W212": "LR is NaN or infinite before training ends",
    "A301": "max_batches below darknet's rule of thumb max(6000, images, 2000 x classes)",
    "A302": "steps not at 80% and 90% of max_batches (darknet's rule of thumb)",
    "A303": "one image per iteration (batch=1): testing settings, not training ones",
    "A310": "-gpus N multiplies learning_rate by N: AlexeyAB advises lr/N and burn_in x N",
}

#: Every code lint can report, with its summary.
ALL_CODES: dict[str, str] = {**WARNING_CODES, **RULES}

#: Up to this many optimizer steps the LR rules check every step of the translated run.
EXHAUSTIVE_LIMIT = 4_000_000
#: The same for hankai poly/sigmoid, whose float powf/expf cost ~1 µs per batch.
EXHAUSTIVE_LIMIT_SLOW = 1_000_000
#: Above it they check the boundaries plus this many evenly spaced steps.
SAMPLE_SIZE = 1_000_000
#: Boundaries (burn-in end, steps, cycle ends) whose steps are sampled at most.
MAX_SAMPLED_BOUNDARIES = 30_000

_FORK_CODE = {"alexeyab": "E101", "pjreddie": "E102", "hankai": "E103"}


@dataclass(frozen=True)
class FileReport:
    """The findings of one cfg file, sorted by line, column and code."""

    path: str
    findings: tuple[CfgWarning, ...]

    def lines(self) -> list[str]:
        """One ``path:line:col: CODE message`` line per finding."""
        return [f.format(self.path) for f in self.findings]

    @property
    def failed(self) -> bool:
        """Whether a finding other than a note (``N1xx``) was made."""
        return any(not f.code.startswith("N") for f in self.findings)


def split_codes(values: Sequence[str]) -> list[str]:
    """``["E1,W2", "A3"]`` -> ``["E1", "W2", "A3"]``: validated ``--select``/``--ignore``
    prefixes (``W2`` = every W2xx); an unknown one raises ValueError."""
    out = []
    for raw in (part.strip() for v in values for part in v.split(",")):
        if raw and not any(code.startswith(raw.upper()) for code in ALL_CODES):
            raise ValueError(f"unknown rule code {raw!r} (see cfgsched lint --help)")
        if raw:
            out.append(raw.upper())
    return out


def lint_text(
    text: str,
    *,
    source: str = "<string>",
    fork: str = "alexeyab",
    images: int | None = None,
    gpus: int | None = None,
    options: OptionsFor = None,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    run: Run | None = None,
) -> FileReport:
    """Lint one cfg text: parse it with every fork, then run the rules for ``fork``.

    Another fork's stop is a note (``N1xx``); ``fork="all"`` makes every fork's stop an
    error and runs the other rules for the default fork. ``select``/``ignore`` are code
    prefixes; ``images`` is the dataset size (advice). ``options`` is the translation (or
    a function of the parsed schedule giving it): the LR rules check the LR its run trains
    with, the ``-gpus`` advice uses its GPU count. ``gpus`` is ``Options(ngpus=gpus)``.
    ``run``: the caller's translated run, which the LR rules then check (no translation).
    """
    from cfgsched.reader.parser import parse

    if fork not in (*FORKS, "all"):
        raise ValueError(f"unknown fork {fork!r} (one of {', '.join(FORKS)}, all)")
    linted = DEFAULT_FORK if fork == "all" else fork
    raw = text.split("\n")
    found: list[CfgWarning] = []
    chosen: NetSchedule | None = None
    for f in FORKS:
        try:
            s = parse(text, fork=f, source=source)
        except CfgError as exc:
            found.append(
                _fork_error(f, exc, raw, None if fork in (f, "all") else linted)
            )
            continue
        if f == linted:
            chosen = s
    if chosen is not None:
        found.extend(chosen.warnings)
        if options is None:
            opts = Options(ngpus=gpus or 1)
        else:
            opts = options if isinstance(options, Options) else options(chosen)
        found.extend(
            schedule_findings(chosen, raw, images=images, options=opts, run=run)
        )
    keep = [
        w
        for w in found
        if (select is None or any(w.code.startswith(p) for p in select))
        and not any(w.code.startswith(p) for p in ignore)
    ]
    unique = sorted(set(keep), key=lambda w: (w.line or 0, w.col, w.code, w.message))
    return FileReport(source, tuple(unique))


def to_json(reports: Sequence[FileReport]) -> str:
    """The ``--format json`` document (schema :data:`SCHEMA`)."""
    diagnostics = [{"path": r.path, **asdict(w)} for r in reports for w in r.findings]
    files = [r.path for r in reports]
    return json.dumps(
        {"schema": SCHEMA, "files": files, "diagnostics": diagnostics}, indent=2
    )


# ----------------------------------------------------------------------------- locating


def _content(raw: list[str], line: int | None) -> str:
    if line is None or not 1 <= line <= len(raw):
        return ""
    return raw[line - 1].rstrip("\r")


def key_col(raw: list[str], line: int | None) -> int:
    """1-based column of the first non-blank character of ``line``."""
    text = _content(raw, line)
    stripped = text.lstrip()
    return len(text) - len(stripped) + 1 if stripped else 1


def value_col(raw: list[str], line: int | None) -> int:
    """1-based column where the value after ``=`` starts (the key's column without ``=``)."""
    text = _content(raw, line)
    eq = text.find("=")
    if eq < 0:
        return key_col(raw, line)
    i = eq + 1
    while i < len(text) and text[i] in " \t":
        i += 1
    return i + 1


def list_elements(
    raw: list[str], line: int | None, fork: str, key: str
) -> list[tuple[str, int]]:
    """The elements of a ``steps``/``scales`` list as the fork splits them, with columns.

    Each element is ``(text without blanks, 1-based column)``; an empty text is an empty
    element (a trailing comma in C forks).
    """
    text = _content(raw, line)
    eq = text.find("=")
    if eq < 0:
        return []
    start = eq + 1
    value = text[start:]
    if fork == "hankai":
        value = value.split("#", 1)[0]
        pattern = r"[-0-9]+" if key == "steps" else r"[-.0-9]+"
        return [(m.group(), start + m.start() + 1) for m in re.finditer(pattern, value)]
    out = []
    pos = 0
    for part in value.split(","):
        lead = len(part) - len(part.lstrip())
        col = start + pos + (lead if part.strip() else 0) + 1
        out.append(("".join(part.split()), col))
        pos += len(part) + 1
    return out


def _net_line(raw: list[str]) -> int:
    for i, text in enumerate(raw, 1):
        if text.strip().startswith("["):
            return i
    return 1


def _at(
    s: NetSchedule, raw: list[str], code: str, key: str, msg: str, *, value: bool = True
) -> CfgWarning:
    line = s.line_of(key)
    if line is None:
        return CfgWarning(code, _net_line(raw), key, msg, 1)
    col = value_col(raw, line) if value else key_col(raw, line)
    return CfgWarning(code, line, key, msg, col)


def _fork_error(
    fork: str, exc: CfgError, raw: list[str], linted: str | None
) -> CfgWarning:
    """E10x for ``fork``'s stop, or the N10x note when the lint is for ``linted``."""
    col = 1
    if exc.line is not None:
        text = _content(raw, exc.line)
        if exc.key and exc.key in text:
            col = text.index(exc.key) + 1
        else:
            col = key_col(raw, exc.line)
    msg = (
        exc.message if exc.message.startswith(f"{fork} ") else f"{fork}: {exc.message}"
    )
    line = 1 if exc.line is None else exc.line
    code = _FORK_CODE[fork]
    if linted is not None:
        code = "N" + code[1:]
        msg += f" (note: linting for {linted}; --fork {fork} or --fork all checks it)"
    return CfgWarning(code, line, exc.key, msg, col)


# ----------------------------------------------------------------------------- evaluation


def boundary_steps(run: Run) -> I64:
    """The run's first and last two steps and the steps around each boundary (the first
    step at its batch, ±1), within the run."""
    lo, hi = run.start, run.stop
    s = run.schedule
    marks, _ = boundaries(s, 1, max(s.max_batches, 1), limit=MAX_SAMPLED_BOUNDARIES)
    pts = [lo, lo + 1, hi - 2, hi - 1]
    for m in marks:
        i = run.first_step(m.batch)
        pts += [i - 1, i, i + 1]
    arr = np.unique(np.asarray(pts, dtype=np.int64))
    return arr[(arr >= lo) & (arr < hi)]


def checked_steps(run: Run) -> tuple[I64, bool]:
    """The optimizer steps the LR rules check and whether that is every step of the run."""
    s = run.schedule
    count = run.steps
    slow = s.fork == "hankai" and s.policy in (Policy.POLY, Policy.SIG)
    if count <= (EXHAUSTIVE_LIMIT_SLOW if slow else EXHAUSTIVE_LIMIT):
        return np.arange(run.start, run.start + count, dtype=np.int64), True
    size = EXHAUSTIVE_LIMIT_SLOW // 4 if slow else SAMPLE_SIZE
    dense = np.linspace(run.start, run.stop - 1, size).astype(np.int64)
    return np.union1d(dense, boundary_steps(run)), False


# ----------------------------------------------------------------------------- rules


def schedule_findings(
    s: NetSchedule,
    raw: list[str],
    *,
    images: int | None = None,
    options: Options | None = None,
    run: Run | None = None,
) -> list[CfgWarning]:
    """The W2xx and A3xx findings for a parsed schedule (``raw`` = its lines); the LR
    rules check ``run``, else the run translated by ``options``."""
    o = Options() if options is None else options
    out: list[CfgWarning] = []
    pol = s.policy
    mb = s.max_batches
    if pol is Policy.STEPS:
        out.extend(_steps_findings(s, raw))
    if pol is Policy.STEP and s.scale > 1:
        out.append(
            _at(s, raw, "W206", "scale", f"scale {fmt(s.scale)} > 1: the LR rises")
        )
    if pol is Policy.EXP and s.gamma > 1:
        out.append(
            _at(s, raw, "W206", "gamma", f"gamma {fmt(s.gamma)} > 1: the LR grows")
        )
    if mb > 0 and s.burn_in >= mb:
        msg = f"burn_in {s.burn_in} >= max_batches {mb}: training ends inside burn-in"
        out.append(_at(s, raw, "W207", "burn_in", msg))
    if mb <= 0:
        msg = (
            f"max_batches {mb}: darknet's detector trains 0 iterations and its classifier"
            " never stops"
        )
        if pol is Policy.POLY and mb == 0:
            msg += "; poly's LR is NaN at b=0 and inf after"
        out.append(_at(s, raw, "W208", "max_batches", msg))
    if mb > 0 and not sgdr_hangs(s) and not (pol is Policy.STEP and s.step == 0):
        if pol is not Policy.RANDOM:
            out.extend(_lr_findings(s, raw, o, run))
    out.extend(_advice(s, raw, images=images, options=o))
    return out


def _columns(
    raw: list[str], line: int | None, fork: str, key: str, n: int
) -> tuple[list[int], set[int]]:
    """The columns of a list's ``n`` elements and the indices of the empty ones (every
    element at the value's column when the text does not split into them)."""
    els = list_elements(raw, line, fork, key)
    if len(els) != n if key == "steps" else len(els) < n:
        return [value_col(raw, line)] * n, set()
    return [c for _, c in els[:n]], {i for i, (t, _) in enumerate(els[:n]) if t == ""}


def _steps_findings(s: NetSchedule, raw: list[str]) -> list[CfgWarning]:
    """W201-W206 on each element of ``steps`` and ``scales``."""
    out = _Capped()
    sline, cline = s.line_of("steps"), s.line_of("scales")
    scol, skip = _columns(raw, sline, s.fork, "steps", len(s.steps))
    ccol, cskip = _columns(raw, cline, s.fork, "scales", len(s.scales))
    line = sline if sline is not None else _net_line(raw)
    seen: set[int] = set()
    biggest: int | None = None
    for i, st in enumerate(s.steps):
        if i in skip:
            continue
        for code, msg in _step_messages(s, i, st, seen, biggest):
            out.append(CfgWarning(code, line, "steps", msg, scol[i]))
        seen.add(st)
        biggest = st if biggest is None else max(biggest, st)
    cl = cline if cline is not None else _net_line(raw)
    for i, (st, sc) in enumerate(zip(s.steps, s.scales, strict=False)):
        if sc > 1 and i not in skip and i not in cskip:
            msg = f"scale {fmt(sc)} > 1 at step {st}: the LR rises"
            out.append(CfgWarning("W206", cl, "scales", msg, ccol[i]))
    return out.result()


def _step_messages(
    s: NetSchedule, i: int, st: int, seen: set[int], biggest: int | None
) -> Iterator[tuple[str, str]]:
    """W201-W205 for the ``i``-th step ``st`` (``seen``, ``biggest``: the steps before)."""
    if st in seen:
        yield (
            "W202",
            f"step {st} is listed twice: its scales apply together at batch {st}",
        )
    elif biggest is not None and st < biggest:
        yield (
            "W201",
            (
                f"step {st} comes after step {biggest}: darknet stops at the first step"
                f" above b, so this one applies only from batch {biggest}"
            ),
        )
    if st <= 0 and s.fork == "pjreddie" and st < 0:
        msg = f"step {st} < 0: pjreddie compares unsigned, so it never applies"
        if i + 1 < len(s.steps):
            msg += " and no later step does either (darknet stops at it)"
        yield "W203", msg
    elif st <= 0:
        yield "W203", f"step {st} <= 0: its scale applies from the first batch"
    elif st < s.burn_in:
        yield (
            "W204",
            (
                f"step {st} is inside burn-in (burn_in {s.burn_in}): its scale shows only"
                f" from batch {s.burn_in}"
            ),
        )
    if s.max_batches > 0 and st > s.max_batches:
        yield "W205", f"step {st} is beyond max_batches {s.max_batches}: never reached"


#: Findings listed per rule and key (a cfg with a million steps gets a summary line).
MAX_PER_RULE = 20


class _Capped:
    """Findings kept as they come: the first :data:`MAX_PER_RULE` of each code, then one
    line that counts the rest (memory and output stay bounded whatever the number of
    steps)."""

    def __init__(self) -> None:
        self.kept: list[CfgWarning] = []
        self.count: dict[str, int] = {}

    def append(self, w: CfgWarning) -> None:
        n = self.count[w.code] = self.count.get(w.code, 0) + 1
        if n <= MAX_PER_RULE:
            self.kept.append(w)

    def result(self) -> list[CfgWarning]:
        out: list[CfgWarning] = []
        for w in self.kept:
            out.append(w)
            more = self.count[w.code] - MAX_PER_RULE
            if more > 0 and sum(x.code == w.code for x in out) == MAX_PER_RULE:
                msg = (
                    f"{more:,} more {w.code} findings in this list"
                    f" (the first {MAX_PER_RULE} shown)"
                )
                out.append(CfgWarning(w.code, w.line, w.key, msg, w.col))
        return out


def _culprit(
    s: NetSchedule, b: int, bad: str, raw: list[str]
) -> tuple[str, int | None, int]:
    """``(key, line, col)`` most likely responsible for a bad LR at batch ``b``."""
    lr = s.learning_rate
    if lr == 0 or lr < 0 or not math.isfinite(lr):
        key = "learning_rate"
    elif b < s.burn_in:
        key = "power"
    elif s.policy is Policy.STEPS:
        cline = s.line_of("scales")
        cels = list_elements(raw, cline, s.fork, "scales")
        for i, sc in enumerate(s.scales):
            hit = (
                sc == 0
                if bad == "zero"
                else sc < 0
                if bad == "negative"
                else not math.isfinite(sc)
            )
            if hit and i < len(s.steps):
                col = cels[i][1] if i < len(cels) else value_col(raw, cline)
                return "scales", cline, col
        key = "scales"
    else:
        key = {
            Policy.STEP: "scale",
            Policy.EXP: "gamma",
            Policy.POLY: "power",
            Policy.SIG: "gamma",
            Policy.SGDR: "learning_rate_min",
        }.get(s.policy, "learning_rate")
    line = s.line_of(key)
    if line is None:
        key = "policy"
        line = s.line_of("policy")
    if line is None:
        return key, _net_line(raw), 1
    return key, line, value_col(raw, line)


def _lr_findings(
    s: NetSchedule, raw: list[str], o: Options, run: Run | None
) -> list[CfgWarning]:
    """W210-W212: the LR of ``run`` (else translated by ``o``; step i at its batch b)."""
    try:
        run = run or translate(s, o)
    except ValueError:  # e.g. no image per iteration: nothing to translate
        return []
    steps, every = checked_steps(run)
    if steps.size == 0:
        return []
    b, lr = _lrs(run, steps)
    how = (
        "every step checked"
        if every
        else f"checked {steps.size} boundary and sampled steps"
    )
    mb = s.max_batches
    out: list[CfgWarning] = []
    checks = (
        ("W210", "zero", "reaches 0"),
        ("W211", "negative", "goes negative"),
        ("W212", "nonfinite", "is not finite"),
    )
    for code, bad, what in checks:
        idx = np.flatnonzero(_bad(bad, b, lr, s))
        if idx.size == 0:
            continue
        k = int(idx[0])
        step, batch, value = int(steps[k]), int(b[k]), float(lr[k])
        if not every and k > 0:  # every step of the gap before the first bad sample
            gap = np.arange(int(steps[k - 1]) + 1, step + 1, dtype=np.int64)
            gb, glr = _lrs(run, gap)
            j = int(np.flatnonzero(_bad(bad, gb, glr, s))[0])
            step, batch, value = int(gap[j]), int(gb[j]), float(glr[j])
        key, line, col = _culprit(run.schedule, batch, bad, raw)
        msg = (
            f"LR {what} ({fmt(value)}) at batch {batch} (torch step {step}),"
            f" before training ends at max_batches {mb}; {idx.size} bad of"
            f" {steps.size} ({how})"
        )
        out.append(CfgWarning(code, line, key, msg, col))
    return out


def _lrs(run: Run, steps: I64) -> tuple[I64, npt.NDArray[np.floating]]:
    """Batches and LRs of ``steps`` under the run's translation."""
    with np.errstate(all="ignore"):
        b = run.batches(steps)
        return b, run.batch_lrs(b)


def _bad(
    bad: str, b: I64, lr: npt.NDArray[np.floating], s: NetSchedule
) -> npt.NDArray[np.bool_]:
    """Where the LR is ``bad`` (zero, negative, nonfinite); poly's 0 at max_batches is
    by design."""
    if bad == "zero":
        mask = lr == 0
        if s.policy is Policy.POLY:
            mask &= b < s.max_batches
        return np.asarray(mask)
    return np.asarray(lr < 0 if bad == "negative" else ~np.isfinite(lr))


def rule_of_thumb(s: NetSchedule, images: int | None) -> int | None:
    """darknet's advised minimum max_batches, or None without classes and images."""
    if s.classes is None and images is None:
        return None
    parts = [6000]
    if images is not None:
        parts.append(images)
    if s.classes is not None:
        parts.append(2000 * s.classes)
    return max(parts)


def _advice(
    s: NetSchedule, raw: list[str], *, images: int | None, options: Options
) -> list[CfgWarning]:
    out: list[CfgWarning] = []
    mb = s.max_batches
    need = rule_of_thumb(s, images)
    if need is not None and 0 < mb < need:
        why = ["6000"]
        if images is not None:
            why.append(f"images {images}")
        if s.classes is not None:
            why.append(f"2000 x {s.classes} classes")
        msg = f"max_batches {mb} is below darknet's rule of thumb max({', '.join(why)}) = {need}"
        out.append(_at(s, raw, "A301", "max_batches", msg))
    if s.policy is Policy.STEPS and mb > 0:
        w = _decayed(s, raw) or _steps_advice(s, raw)
        if w is not None:
            out.append(w)
    if s.images_per_iteration == 1:
        msg = (
            "1 image per iteration (batch=1, subdivisions=1): darknet's testing settings;"
            " train with e.g. batch=64"
        )
        out.append(_at(s, raw, "A303", "batch", msg, value=False))
    out.extend(_gpu_advice(s, raw, options))
    return out


def _drops(s: NetSchedule) -> list[int]:
    """The steps within the run whose scale lowers the LR."""
    mb = s.max_batches
    return [
        st for st, sc in zip(s.steps, s.scales, strict=False) if 0 < st <= mb and sc < 1
    ]


def _steps_advice(s: NetSchedule, raw: list[str]) -> CfgWarning | None:
    """A302: the drops are not at 80% and 90% of max_batches (darknet's rule of thumb)."""
    mb = s.max_batches
    fr = sorted({st / mb for st in _drops(s)})
    if any(abs(x - 0.8) <= 0.02 for x in fr) and any(abs(x - 0.9) <= 0.02 for x in fr):
        return None
    where = ", ".join(f"{x:.0%}" for x in fr[:6]) + (", ..." if len(fr) > 6 else "")
    rule = f"darknet's rule of thumb is 80% and 90% (steps={_rule_steps(mb)})"
    msg = (
        f"the LR drops at {where} of max_batches {mb}; {rule}"
        if fr
        else f"the LR never drops before max_batches {mb}; {rule}"
    )
    return _at(s, raw, "A302", "steps", msg)


def _rule_steps(mb: int) -> str:
    return f"{round(0.8 * mb)},{round(0.9 * mb)}"


def _decayed(s: NetSchedule, raw: list[str]) -> CfgWarning | None:
    """W209: after burn-in the LR is at most half its peak for over 2/3 of max_batches,
    as when steps were edited and max_batches forgotten (or the other way round)."""
    mb, start = s.max_batches, max(s.burn_in, 1)
    if start >= mb:
        return None
    inside = [x for x in s.steps if start < x < mb]
    marks = np.unique(np.asarray([start, *inside], dtype=np.int64))
    with np.errstate(all="ignore"):  # the LR is constant from each mark to the next
        lr = np.asarray(darknet_lr(s, marks), dtype=np.float64)
    peak = float(lr.max())
    if not (np.isfinite(lr).all() and peak > 0):
        return None
    low = lr <= peak / 2
    part = int(np.diff(np.append(marks, mb))[low].sum())
    if 3 * part <= 2 * mb:
        return None
    first = int(marks[low][0])
    fit = max(round(first / 0.8), round(max(_drops(s), default=first) / 0.9))
    msg = (
        f"the LR is at most half its peak from batch {first} on: {part / mb:.0%} of"
        f" max_batches {mb}; if the steps are right, max_batches={fit}; if max_batches"
        f" is right, steps={_rule_steps(mb)} (darknet's 80%/90% rule)"
    )
    return _at(s, raw, "W209", "steps", msg)


def _gpu_advice(s: NetSchedule, raw: list[str], o: Options) -> list[CfgWarning]:
    """A310 when a ``-gpus N`` run multiplies the LR and AlexeyAB's advice is not taken."""
    n = o.ngpus
    if n < 2 or o.ideal:
        return []
    scaled = ngpus_lr(s.kernel_params().fork, s.learning_rate, n)
    if scaled == s.learning_rate:  # hankai does not multiply
        return []
    a = advised_schedule(s, n)
    msg = (
        f"-gpus {n}: darknet trains with learning_rate x {n} = {fmt(scaled)};"
        f" AlexeyAB advises learning_rate={fmt(a.learning_rate)}"
        + (f" and burn_in={a.burn_in}" if s.burn_in > 0 else "")
        + f" (cfgsched adjust --gpus {n}, or --ideal)"
    )
    return [_at(s, raw, "A310", "learning_rate", msg)]
