"""``cfgsched lint``: darknet schedule traps as :class:`CfgWarning` findings with stable
codes (P0xx reader, E1xx/N1xx fork stops, W2xx traps, A3xx advice)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from cfgsched.boundaries import boundaries
from cfgsched.errors import CfgError, CfgWarning
from cfgsched.kernel.formulas import ngpus_lr
from cfgsched.layers import LayerRule
from cfgsched.options import Options
from cfgsched.oracle import darknet_lr
from cfgsched.policies.sgdr import sgdr_hangs
from cfgsched.reader.parser import parse
from cfgsched.run import Run, advised_schedule, translate
from cfgsched.schedule import DEFAULT_FORK, FORKS, WARNING_CODES, NetSchedule, Policy
from cfgsched.text import fmt

I64 = npt.NDArray[np.int64]

#: JSON schema name of ``cfgsched lint --format json``.
SCHEMA = "cfgsched-lint/1"

#: lint's own codes (docs/lint-rules.md says what each one means; P codes: the parser's).
RULES = (
    "E101 E102 E103 N101 N102 N103 W201 W202 W203 W204 W205 W206 W207 W208 W209 W210"
    " W211 W212 W213 A301 A302 A303 A310"
).split()

#: Every code lint can report.
ALL_CODES = (*WARNING_CODES, *RULES)

#: Up to this many optimizer steps the LR rules check every step of the translated run.
EXHAUSTIVE_LIMIT = 4_000_000
#: The same for hankai poly/sigmoid, whose float powf/expf cost ~1 µs per batch.
EXHAUSTIVE_LIMIT_SLOW = 1_000_000
#: Above it they check the boundaries plus this many evenly spaced steps.
SAMPLE_SIZE = 1_000_000
#: Boundaries (burn-in end, steps, cycle ends) whose steps are sampled at most.
MAX_SAMPLED_BOUNDARIES = 30_000
#: Findings listed per rule and key (a cfg with a million steps gets a summary line).
MAX_PER_RULE = 20

#: The key most likely behind a bad LR after burn-in, per policy (else learning_rate).
_CULPRIT = {Policy.STEPS: "scales", Policy.STEP: "scale", Policy.EXP: "gamma"}
_CULPRIT |= {
    Policy.POLY: "power",
    Policy.SIG: "gamma",
    Policy.SGDR: "learning_rate_min",
}
#: W210-W212: code, what the LR does, where it does it (numpy or a float).
_LR_RULES: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("W210", "reaches 0", lambda v: v == 0),
    ("W211", "goes negative", lambda v: v < 0),
    ("W212", "is not finite", lambda v: ~np.isfinite(v)),
)


@dataclass(frozen=True)
class FileReport:
    """The findings of one cfg file, sorted by line, column and code."""

    path: str
    findings: tuple[CfgWarning, ...]

    @property
    def failed(self) -> bool:
        """Whether a finding other than a note (``N1xx``) was made."""
        return any(not f.code.startswith("N") for f in self.findings)


def split_codes(values: Sequence[str]) -> list[str]:
    """``["E1,W2", "A3"]`` -> ``["E1", "W2", "A3"]``; an unknown prefix raises ValueError."""
    out = [p.strip().upper() for v in values for p in v.split(",") if p.strip()]
    for raw in out:
        if not any(code.startswith(raw) for code in ALL_CODES):
            raise ValueError(f"unknown rule code {raw!r} (see cfgsched lint --help)")
    return out


def lint_text(
    text: str,
    *,
    source: str = "<string>",
    fork: str = "alexeyab",
    images: int | None = None,
    options: Options | Callable[[NetSchedule], Options] | None = None,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    run: Run | None = None,
) -> FileReport:
    """Lint one cfg text: parse it with every fork (another fork's stop is an N1xx note;
    ``fork="all"``: an error), then check ``run`` or the run translated with ``options``.
    ``select``/``ignore`` are code prefixes."""
    if fork not in (*FORKS, "all"):
        raise ValueError(f"unknown fork {fork!r} (one of {', '.join(FORKS)}, all)")
    linted = DEFAULT_FORK if fork == "all" else fork
    if run is not None and run.given.fork != linted:
        raise ValueError(f"run is of fork {run.given.fork}, the lint of {linted}")
    raw, found = text.split("\n"), list[CfgWarning]()
    chosen: NetSchedule | None = None
    for f in FORKS:
        try:
            s = parse(text, fork=f, source=source)
        except CfgError as exc:
            note = None if fork in (f, "all") else linted
            found.append(_fork_error(f, exc, raw, note))
            continue
        chosen = s if f == linted else chosen
    if chosen is not None:
        o = options(chosen) if callable(options) else options or Options()
        if run is None:
            with suppress(ValueError):  # nothing to translate
                run = translate(chosen, o)
        o = o if run is None else run.options
        found += [*chosen.warnings, *_findings(chosen, raw, images, run, o)]
    sel, ign = ("",) if select is None else tuple(select), tuple(ignore)
    keep = {w for w in found if w.code.startswith(sel) and not w.code.startswith(ign)}
    unique = sorted(keep, key=lambda w: (w.line or 0, w.col, w.code, w.message))
    return FileReport(source, tuple(unique))


def to_json(reports: Sequence[FileReport]) -> str:
    """The ``--format json`` document (schema :data:`SCHEMA`)."""
    diagnostics = [{"path": r.path, **asdict(w)} for r in reports for w in r.findings]
    files = [r.path for r in reports]
    doc = {"schema": SCHEMA, "files": files, "diagnostics": diagnostics}
    return json.dumps(doc, indent=2)


def _content(raw: list[str], line: int | None) -> str:
    return raw[line - 1].rstrip("\r") if line and 0 < line <= len(raw) else ""


def key_col(raw: list[str], line: int | None) -> int:
    """1-based column of the first non-blank character of ``line``."""
    text = _content(raw, line)
    return len(text) - len(text.lstrip()) + 1 if text.strip() else 1


def value_col(raw: list[str], line: int | None) -> int:
    """1-based column where the value after ``=`` starts (the key's column without ``=``)."""
    text = _content(raw, line)
    eq = text.find("=")
    if eq < 0:
        return key_col(raw, line)
    return len(text) + 1 - len(text[eq + 1 :].lstrip(" \t"))


def list_elements(
    raw: list[str], line: int | None, fork: str, key: str
) -> list[tuple[str, int]]:
    """``(text without blanks, 1-based column)`` of each list element as ``fork`` splits it."""
    text = _content(raw, line)
    start = text.find("=") + 1
    if not start:
        return []
    value = text[start:]
    if fork == "hankai":
        pattern = r"[-0-9]+" if key == "steps" else r"[-.0-9]+"
        found = re.finditer(pattern, value.split("#", 1)[0])
        return [(m.group(), start + m.start() + 1) for m in found]
    out, pos = [], start
    for part in value.split(","):
        lead = len(part) - len(part.lstrip()) if part.strip() else 0
        out.append(("".join(part.split()), pos + lead + 1))
        pos += len(part) + 1
    return out


def _net_line(raw: list[str]) -> int:
    return next((i for i, t in enumerate(raw, 1) if t.strip().startswith("[")), 1)


def _at(
    s: NetSchedule, raw: list[str], code: str, key: str, msg: str, *, value: bool = True
) -> CfgWarning:
    line = s.line_of(key)
    col = 1 if line is None else (value_col if value else key_col)(raw, line)
    return CfgWarning(code, line or _net_line(raw), key, msg, col)


def _fork_error(
    fork: str, exc: CfgError, raw: list[str], linted: str | None
) -> CfgWarning:
    """E10x for ``fork``'s stop, or the N10x note when the lint is for ``linted``."""
    text, key = _content(raw, exc.line), exc.key or ""
    col = (text.find(key) + 1 if key else 0) or key_col(raw, exc.line)
    msg = exc.message
    msg = msg if msg.startswith(f"{fork} ") else f"{fork}: {msg}"
    if linted is not None:
        msg += f" (note: linting for {linted}; --fork {fork} or --fork all checks it)"
    code = f"{'E' if linted is None else 'N'}10{FORKS.index(fork) + 1}"
    return CfgWarning(code, exc.line or 1, exc.key, msg, col)


def checked_steps(run: Run) -> tuple[I64, bool]:
    """The optimizer steps the LR rules check and whether that is every step of the run
    (else evenly spaced ones, the first and last two and each boundary's step ±1)."""
    s, lo, hi = run.schedule, run.start, run.stop
    slow = s.fork == "hankai" and s.policy in (Policy.POLY, Policy.SIG)
    if run.steps <= (EXHAUSTIVE_LIMIT_SLOW if slow else EXHAUSTIVE_LIMIT):
        return np.arange(lo, lo + run.steps, dtype=np.int64), True
    marks, _ = boundaries(s, 1, max(s.max_batches, 1), limit=MAX_SAMPLED_BOUNDARIES)
    pts = [lo, lo + 1, hi - 2, hi - 1]
    for m in marks:
        i = run.first_step(m.batch)
        pts += [i - 1, i, i + 1]
    size = EXHAUSTIVE_LIMIT_SLOW // 4 if slow else SAMPLE_SIZE
    dense = np.linspace(lo, hi - 1, size).astype(np.int64)
    arr = np.union1d(dense, np.asarray(pts, dtype=np.int64))
    return arr[(arr >= lo) & (arr < hi)], False


def _findings(
    s: NetSchedule, raw: list[str], images: int | None, run: Run | None, o: Options
) -> list[CfgWarning]:
    """The W2xx and A3xx findings of ``s`` (``run``: None when nothing translates)."""
    pol, mb = s.policy, s.max_batches
    out = _capped(_steps_findings(s, raw)) if pol is Policy.STEPS else []
    rises = {
        Policy.STEP: ("scale", s.scale, "rises"),
        Policy.EXP: ("gamma", s.gamma, "grows"),
    }
    key, value, verb = rises.get(pol, ("", 0.0, ""))
    if value > 1:
        out.append(_at(s, raw, "W206", key, f"{key} {fmt(value)} > 1: the LR {verb}"))
    if mb > 0 and s.burn_in >= mb:
        msg = f"burn_in {s.burn_in} >= max_batches {mb}: training ends inside burn-in"
        out.append(_at(s, raw, "W207", "burn_in", msg))
    if mb <= 0:
        msg = f"max_batches {mb}: darknet's detector trains 0 iterations and its"
        msg += " classifier never stops"
        if pol is Policy.POLY and mb == 0:
            msg += "; poly's LR is NaN at b=0 and inf after"
        out.append(_at(s, raw, "W208", "max_batches", msg))
    if run is not None:
        no_lr = sgdr_hangs(s) or (pol is Policy.STEP and s.step == 0)
        if mb > 0 and not no_lr and pol is not Policy.RANDOM:
            out += _lr_findings(run, raw)
        out += _layer_findings(run, raw)
    need = {"6000": 6000}
    if images is not None:
        need[f"images {images}"] = images
    if s.classes is not None:
        need[f"2000 x {s.classes} classes"] = 2000 * s.classes
    if len(need) > 1 and 0 < mb < max(need.values()):
        msg = f"max_batches {mb} is below darknet's rule of thumb"
        msg += f" max({', '.join(need)}) = {max(need.values())}"
        out.append(_at(s, raw, "A301", "max_batches", msg))
    if pol is Policy.STEPS and mb > 0:
        out += _decayed(s, raw) or _steps_advice(s, raw)
    if s.images_per_iteration == 1:
        msg = "1 image per iteration (batch=1, subdivisions=1): darknet's testing"
        msg += " settings; train with e.g. batch=64"
        out.append(_at(s, raw, "A303", "batch", msg, value=False))
    n, scaled = o.ngpus, ngpus_lr(s.kernel_params().fork, s.learning_rate, o.ngpus)
    if n > 1 and not o.ideal and scaled != s.learning_rate:  # hankai does not multiply
        msg = f"-gpus {n}: " + "; ".join(gpus_advice(s, n, scaled, ideal=False))
        out.append(_at(s, raw, "A310", "learning_rate", msg))
    return out


def gpus_advice(s: NetSchedule, n: int, lr: float, *, ideal: bool) -> tuple[str, str]:
    """``-gpus n`` on a fork that multiplies learning_rate (``lr``: the rate trained) and
    AlexeyAB's advice, in words (explain's -gpus notes and A310)."""
    a = advised_schedule(s, n)
    advice = f"AlexeyAB's advice for {n} GPUs: learning_rate={fmt(a.learning_rate)}"
    advice += f", burn_in={a.burn_in}" * (s.burn_in > 0)
    how = "--ideal: applied" if ideal else f"cfgsched adjust --gpus {n}, or --ideal"
    rate = f"{s.fork} multiplies learning_rate by {n}: it trains with {fmt(lr)}"
    return rate, f"{advice} ({how})"


def _columns(
    raw: list[str], line: int | None, fork: str, key: str, n: int
) -> tuple[list[int], set[int]]:
    """The columns of a list's ``n`` elements and the indices of the empty ones."""
    els = list_elements(raw, line, fork, key)
    if len(els) != n if key == "steps" else len(els) < n:
        return [value_col(raw, line)] * n, set()
    return [c for _, c in els[:n]], {i for i, (t, _) in enumerate(els[:n]) if t == ""}


def _steps_findings(s: NetSchedule, raw: list[str]) -> Iterator[CfgWarning]:
    """W201-W206 on each element of ``steps`` and ``scales``."""
    sline, cline = s.line_of("steps"), s.line_of("scales")
    scol, skip = _columns(raw, sline, s.fork, "steps", len(s.steps))
    ccol, cskip = _columns(raw, cline, s.fork, "scales", len(s.scales))
    seen: set[int] = set()
    top: int | None = None  # the largest step before
    sline, cline = sline or _net_line(raw), cline or _net_line(raw)
    for i, st in enumerate(s.steps):
        if i in skip:
            continue
        if st in seen:
            msg = f"step {st} is listed twice: its scales apply together at batch {st}"
            yield CfgWarning("W202", sline, "steps", msg, scol[i])
        elif top is not None and st < top:
            msg = f"step {st} comes after step {top}: darknet stops at the first step"
            msg += f" above b, so this one applies only from batch {top}"
            yield CfgWarning("W201", sline, "steps", msg, scol[i])
        if st < 0 and s.fork == "pjreddie":
            msg = f"step {st} < 0: pjreddie compares unsigned, so it never applies"
            later = " and no later step does either (darknet stops at it)"
            msg += later * (i + 1 < len(s.steps))
            yield CfgWarning("W203", sline, "steps", msg, scol[i])
        elif st <= 0:
            msg = f"step {st} <= 0: its scale applies from the first batch"
            yield CfgWarning("W203", sline, "steps", msg, scol[i])
        elif st < s.burn_in:
            msg = f"step {st} is inside burn-in (burn_in {s.burn_in}): its scale shows"
            msg += f" only from batch {s.burn_in}"
            yield CfgWarning("W204", sline, "steps", msg, scol[i])
        if 0 < s.max_batches < st:
            msg = f"step {st} is beyond max_batches {s.max_batches}: never reached"
            yield CfgWarning("W205", sline, "steps", msg, scol[i])
        seen.add(st)
        top = st if top is None else max(top, st)
        if i < len(s.scales) and s.scales[i] > 1 and i not in cskip:
            msg = f"scale {fmt(s.scales[i])} > 1 at step {st}: the LR rises"
            yield CfgWarning("W206", cline, "scales", msg, ccol[i])


def _capped(found: Iterable[CfgWarning]) -> list[CfgWarning]:
    """The first :data:`MAX_PER_RULE` findings of each code, then one counting the rest."""
    by_code: dict[str, list[CfgWarning]] = {}
    for w in found:
        by_code.setdefault(w.code, []).append(w)
    out = [w for ws in by_code.values() for w in ws[:MAX_PER_RULE]]
    for code, ws in by_code.items():
        if len(ws) > MAX_PER_RULE:
            more = f"{len(ws) - MAX_PER_RULE:,} more {code} findings in this list"
            more += f" (the first {MAX_PER_RULE} shown)"
            out.append(replace(ws[MAX_PER_RULE - 1], message=more))
    return out


def _culprit(
    s: NetSchedule, b: int, bad: Callable[[Any], Any], raw: list[str]
) -> tuple[str, int | None, int]:
    """``(key, line, col)`` most likely responsible for a ``bad`` LR at batch ``b``."""
    key = _CULPRIT.get(s.policy, "learning_rate")
    if s.learning_rate <= 0 or not math.isfinite(s.learning_rate):
        key = "learning_rate"
    elif b < s.burn_in:
        key = "power"
    elif s.policy is Policy.STEPS:
        line = s.line_of("scales")
        cols = [c for _, c in list_elements(raw, line, s.fork, "scales")]
        for i, sc in enumerate(s.scales[: len(s.steps)]):
            if bad(sc):
                return key, line, cols[i] if i < len(cols) else value_col(raw, line)
    line = s.line_of(key)
    if line is None:
        key, line = "policy", s.line_of("policy")
    return key, line or _net_line(raw), 1 if line is None else value_col(raw, line)


def _lr_findings(run: Run, raw: list[str]) -> list[CfgWarning]:
    """W210-W212: the LR of the translated run (step i at its batch b)."""
    steps, every = checked_steps(run)
    if steps.size == 0:
        return []
    b, lr, masks = _scan(run, steps)
    how = f"checked {steps.size} boundary and sampled steps"
    how = "every step checked" if every else how
    out = []
    for code, what, bad in _LR_RULES:
        idx = np.flatnonzero(masks[code])
        if idx.size == 0:
            continue
        k, at, bs, lrs = int(idx[0]), steps, b, lr
        if not every and k > 0:  # every step of the gap before the first bad sample
            at = np.arange(int(steps[k - 1]) + 1, int(steps[k]) + 1, dtype=np.int64)
            bs, lrs, gap = _scan(run, at)
            k = int(np.flatnonzero(gap[code])[0])
        step, batch = int(at[k]), int(bs[k])
        key, line, col = _culprit(run.schedule, batch, bad, raw)
        msg = (
            f"LR {what} ({fmt(float(lrs[k]))}) at batch {batch} (torch step {step}),"
            f" before training ends at max_batches {run.schedule.max_batches};"
            f" {idx.size} bad of {steps.size} ({how})"
        )
        out.append(CfgWarning(code, line, key, msg, col))
    return out


def _scan(run: Run, steps: I64) -> tuple[I64, npt.NDArray[np.floating], dict[str, Any]]:
    """Batches, LRs and where each LR rule fires at ``steps`` (poly's 0 at max_batches
    is by design)."""
    with np.errstate(all="ignore"):
        b = run.batches(steps)
        lr = run.batch_lrs(b)
        masks = {code: np.asarray(bad(lr)) for code, _, bad in _LR_RULES}
    if run.schedule.policy is Policy.POLY:
        masks["W210"] &= b < run.schedule.max_batches
    return b, lr, masks


def layer_text(r: LayerRule) -> str:
    """What darknet does to the layers of rule ``r``, in words (explain's layer schedule
    and W213)."""
    one, does = r.first == r.last, []
    if r.gradient_from != 1:
        upto = f" in updates 1-{r.gradient_from - 1}" if r.gradient_from else ""
        still = " (darknet's decay and momentum still move them)" * r.updated
        does.append(f"get{'s' * one} no gradient{upto}{still}")
    if not r.updated:
        does.append(f"{'is' if one else 'are'} never updated")
    if r.held:
        land = f"the gradients land at update {r.held + 1}"
        does.append(f"skip{'s' * one} updates 1-{r.held} ({land})")
    if r.lr_scale != 1:
        does.append(f"train{'s' * one} at {fmt(r.lr_scale)} x the rate")
    if r.inference_bn:
        does.append("with batch-norm in inference mode")
    who = f"layer {r.first}" if one else f"layers {r.first}-{r.last}"
    return f"{who} {', '.join(does)}"


def _layer_findings(run: Run, raw: list[str]) -> list[CfgWarning]:
    """W213 per layer rule of the run: PyTorch follows it only if given the layers."""
    out, where = [], f"{run.schedule.fork}, {run.options.build.upper()} build"
    for r in run.layers:
        msg = (
            f"{layer_text(r)} ({where}); the PyTorch run trains"
            f" {'it' if r.first == r.last else 'them'} normally unless it passes the"
            " layers: build_optimizer(..., layers=...) with DarknetLR, or the generated"
            " module's attach_layers"
        )
        out.append(CfgWarning("W213", r.line, r.rule, msg, key_col(raw, r.line)))
    return out


def _drops(s: NetSchedule) -> list[int]:
    """The steps within the run whose scale lowers the LR."""
    pairs = zip(s.steps, s.scales, strict=False)
    return [st for st, sc in pairs if 0 < st <= s.max_batches and sc < 1]


def _rule_steps(mb: int) -> str:
    return f"{round(0.8 * mb)},{round(0.9 * mb)}"


def _steps_advice(s: NetSchedule, raw: list[str]) -> list[CfgWarning]:
    """A302: the drops are not at 80% and 90% of max_batches (darknet's rule of thumb)."""
    mb = s.max_batches
    fr = sorted({st / mb for st in _drops(s)})
    if any(abs(x - 0.8) <= 0.02 for x in fr) and any(abs(x - 0.9) <= 0.02 for x in fr):
        return []
    where = ", ".join(f"{x:.0%}" for x in fr[:6]) + (", ..." if len(fr) > 6 else "")
    rule = f"darknet's rule of thumb is 80% and 90% (steps={_rule_steps(mb)})"
    drops = f"drops at {where} of" if fr else "never drops before"
    return [_at(s, raw, "A302", "steps", f"the LR {drops} max_batches {mb}; {rule}")]


def _decayed(s: NetSchedule, raw: list[str]) -> list[CfgWarning]:
    """W209: after burn-in the LR is at most half its peak for over 2/3 of max_batches."""
    mb, start = s.max_batches, max(s.burn_in, 1)
    if start >= mb:
        return []
    inside = [x for x in s.steps if start < x < mb]
    marks = np.unique(np.asarray([start, *inside], dtype=np.int64))
    with np.errstate(all="ignore"):  # the LR is constant from each mark to the next
        lr = np.asarray(darknet_lr(s, marks), dtype=np.float64)
    peak = float(lr.max())
    if not (np.isfinite(lr).all() and peak > 0):
        return []
    low = lr <= peak / 2
    part = int(np.diff(np.append(marks, mb))[low].sum())
    if 3 * part <= 2 * mb:
        return []
    first = int(marks[low][0])
    fit = max(round(first / 0.8), round(max(_drops(s), default=first) / 0.9))
    msg = (
        f"the LR is at most half its peak from batch {first} on: {part / mb:.0%} of"
        f" max_batches {mb}; if the steps are right, max_batches={fit}; if max_batches"
        f" is right, steps={_rule_steps(mb)} (darknet's 80%/90% rule)"
    )
    return [_at(s, raw, "W209", "steps", msg)]
