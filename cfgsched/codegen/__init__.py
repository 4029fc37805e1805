"""Standalone code from a schedule: what ``cfgsched convert`` writes.

The generated Python module imports only torch and the standard library. Its scheduler is
not a second copy written by hand: the module is assembled from the source text of
:mod:`cfgsched.kernel.formulas`, :mod:`cfgsched.kernel.mgpu`, :mod:`cfgsched.kernel.position`
and :mod:`cfgsched.translate.scheduler` (intra-package imports removed), followed by the numbers of
this schedule. Rule: a string from the cfg is never pasted into source. Only numbers
(float32 values written as ``f32(<shortest decimal>)``, which round-trips exactly), names
and text of cfgsched's own, and the cfg file name reduced to ``[A-Za-z0-9._-]``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cfgsched import __version__
from cfgsched.kernel.formulas import f32
from cfgsched.kernel.position import (
    MULTIGPU_MODES,
    Translation,
    f32_decimal,
    resume_step,
)
from cfgsched.schedule import (
    FORKS,
    WARNING_CODES,
    NetSchedule,
    Policy,
    translation_for,
)

__all__ = ["FORMATS", "JSON_SCHEMA", "STYLES", "CodegenError", "generate", "safe_name"]

STYLES = ("class", "native")
FORMATS = ("python", "lightning", "json")
#: Schema name of the JSON format.
JSON_SCHEMA = "cfgsched-translation/1"
#: Modules whose source makes up the generated module, in this order.
EMBEDDED = (
    "cfgsched.kernel.formulas",
    "cfgsched.kernel.mgpu",
    "cfgsched.kernel.position",
    "cfgsched.translate.scheduler",
)
#: Line length the generated module is formatted for (``ruff format --line-length 100``).
LINE_LENGTH = 100
#: The darknet project behind each fork name.
FORK_PROJECTS = {
    "alexeyab": "AlexeyAB/darknet",
    "pjreddie": "pjreddie/darknet",
    "hankai": "hank-ai/darknet",
}
#: Names the template defines; none may clash with the embedded modules.
TEMPLATE_NAMES = (
    "LEARNING_RATE",
    "MOMENTUM",
    "DECAY",
    "ADAM",
    "B1",
    "B2",
    "EPS",
    "IMAGES_PER_ITERATION",
    "RESUME_STEP",
    "PARAMS",
    "TRANSLATION",
    "build_scheduler",
    "lr_at",
    "build_optimizer",
    "configure_optimizers",
)
_NATIVE_CLASSES = (
    "ConstantLR",
    "LinearLR",
    "MultiStepLR",
    "StepLR",
    "ExponentialLR",
    "PolynomialLR",
)
_NATIVE_KWARGS = (
    "factor",
    "start_factor",
    "end_factor",
    "total_iters",
    "milestones",
    "gamma",
    "step_size",
    "power",
)


class CodegenError(ValueError):
    """The module cannot be generated as asked (a bad option or an unsafe value)."""


def safe_name(name: str, limit: int = 80) -> str:
    """``name``'s last path part with every character outside ``[A-Za-z0-9._-]`` as ``_``."""
    base = re.split(r"[\\/]", name)[-1]
    out = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:limit]
    return out or "cfg"


# ----------------------------------------------------------------------------- numbers


def _num(x: object) -> str:
    """Source of a number (int or float) that evaluates to exactly ``x``."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise CodegenError(f"not a number: {type(x).__name__}")
    if isinstance(x, int):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return '-float("nan")' if math.copysign(1.0, x) < 0 else 'float("nan")'
    if math.isinf(x):
        return '-float("inf")' if x < 0 else 'float("inf")'
    return repr(x)


def _f32(x: float) -> str:
    """A float32 value as ``f32(<shortest decimal>)`` (exact), else :func:`_num`."""
    x = float(x)
    if math.isfinite(x) and f32(x) == x and x != 0:
        d = f32_decimal(x)
        if f32(d) == x:
            return f"f32({d!r})"
    return _num(x)


def _seq(
    items: Sequence[str], indent: int, prefix: str, suffix: str, br: str = "()"
) -> str:
    """``prefix(items)suffix`` on one line when it fits, else one item per line (ruff style)."""
    o, c = br[0], br[1]
    inner = ", ".join(items)
    if len(items) == 1 and br == "()":
        inner += ","
    one = f"{' ' * indent}{prefix}{o}{inner}{c}{suffix}"
    if len(one) <= LINE_LENGTH or not items:
        return one
    pad = " " * (indent + 4)
    body = "".join(f"{pad}{it},\n" for it in items)
    return f"{' ' * indent}{prefix}{o}\n{body}{' ' * indent}{c}{suffix}"


# ----------------------------------------------------------------------------- embedding


#: ``import cfgsched...`` / ``from cfgsched... import`` at any indentation.
_CFGSCHED_IMPORT = re.compile(r"^[ \t]*(?:import|from)[ \t]+cfgsched\b", re.M)
#: The same, indented: inside a function, class or ``if`` block.
_NESTED_CFGSCHED_IMPORT = re.compile(r"^[ \t]+(?:import|from)[ \t]+cfgsched\b", re.M)


def _module_source(name: str) -> str:
    parts = name.split(".")
    if parts[0] != "cfgsched":
        raise CodegenError(f"cannot embed {name}: not a cfgsched module")
    path = Path(__file__).parent.parent.joinpath(*parts[1:-1], f"{parts[-1]}.py")
    return path.read_text(encoding="utf-8")


def _embedded() -> tuple[set[str], dict[str, set[str]], list[tuple[str, str]]]:
    """Imports (``import x`` names, ``from m import`` names) and ``(name, body)`` of every
    embedded module, without their docstrings, cfgsched imports and ``__all__``."""
    plain: set[str] = set()
    froms: dict[str, set[str]] = {}
    bodies: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for name in EMBEDDED:
        src = _module_source(name)
        tree = ast.parse(src)
        lines = src.splitlines()
        drop: set[int] = set()
        nested = _NESTED_CFGSCHED_IMPORT.search(src)
        if nested is not None:
            line = src.count("\n", 0, nested.start()) + 1
            raise CodegenError(f"{name}: cfgsched import inside a block at line {line}")
        for i, node in enumerate(tree.body):
            span = set(range(node.lineno - 1, (node.end_lineno or node.lineno)))
            if (
                i == 0
                and isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
            ):
                drop |= span
            elif isinstance(node, ast.Import):
                plain.update(
                    a.name if a.asname is None else f"{a.name} as {a.asname}"
                    for a in node.names
                )
                drop |= span
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if mod != "__future__" and not mod.startswith("cfgsched"):
                    froms.setdefault(mod, set()).update(
                        a.name if a.asname is None else f"{a.name} as {a.asname}"
                        for a in node.names
                    )
                drop |= span
            elif _assigns(node) == ["__all__"]:
                drop |= span
            else:
                text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                for target in _defines(node):
                    if target in TEMPLATE_NAMES:
                        raise CodegenError(
                            f"{name} defines {target}, a name the template uses"
                        )
                    if target in seen and seen[target] != text:
                        raise CodegenError(f"{name} redefines {target} differently")
                    if target in seen:
                        drop |= span
                    seen[target] = text
        kept = [ln for i, ln in enumerate(lines) if i not in drop]
        bodies.append((name, _tidy("\n".join(kept))))
    return plain, froms, bodies


def _is_torch(module: str) -> bool:
    return module == "torch" or module.startswith("torch.")


def _import_block(plain: set[str], froms: dict[str, set[str]]) -> str:
    """Standard library imports, a blank line, then torch imports (isort order)."""
    groups: list[str] = []
    for torch_group in (False, True):
        lines = [f"import {m}" for m in sorted(plain) if _is_torch(m) == torch_group]
        for m in sorted(froms):
            if _is_torch(m) != torch_group:
                continue
            names = sorted(froms[m])
            one = f"from {m} import {', '.join(names)}"
            if len(one) > LINE_LENGTH:
                one = (
                    f"from {m} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
                )
            lines.append(one)
        groups.append("\n".join(lines))
    return "\n\n".join(g for g in groups if g)


def _assigns(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _defines(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    return _assigns(node)


def _tidy(text: str) -> str:
    """Strip blank lines at both ends and collapse runs of more than two."""
    return re.sub(r"\n{4,}", "\n\n\n", text.strip("\n")) + "\n"


# ----------------------------------------------------------------------------- the template


def _options(
    schedule: NetSchedule,
    exact: bool,
    ngpus: int,
    multigpu: str,
    images_per_step: int | None,
    scratch: bool,
    seed: int,
) -> Translation:
    try:
        return translation_for(
            schedule,
            exact=exact,
            ngpus=ngpus,
            multigpu=multigpu,
            images_per_step=images_per_step,
            scratch=scratch,
            seed=seed,
        )
    except ValueError as exc:
        raise CodegenError(str(exc)) from None


def _params_source(t: Translation, schedule: NetSchedule) -> str:
    p = schedule.kernel_params(t.params.seed)
    lines = ["PARAMS = Params("]
    lines.append(f"    fork={_num(p.fork)},  # {FORKS[p.fork]}")
    lines.append(f"    policy={_num(p.policy)},  # {Policy(p.policy).name}")
    for key in ("lr", "power"):
        lines.append(f"    {key}={_f32(getattr(p, key))},")
    for key in ("burn_in", "step"):
        lines.append(f"    {key}={_num(getattr(p, key))},")
    for key in ("scale", "gamma"):
        lines.append(f"    {key}={_f32(getattr(p, key))},")
    lines.append(f"    max_batches={_num(p.max_batches)},")
    lines.append(f"    lr_min={_f32(p.lr_min)},")
    lines.append(f"    sgdr_cycle={_num(p.sgdr_cycle)},")
    lines.append(f"    sgdr_mult={_num(p.sgdr_mult)},")
    lines.append(_seq([_num(s) for s in p.steps], 4, "steps=", ","))
    lines.append(_seq([_f32(s) for s in p.scales], 4, "scales=", ","))
    lines.append(f"    seed={_num(p.seed)},")
    lines.append(")")
    return "\n".join(lines)


def _translation_source(t: Translation) -> str:
    mode = MULTIGPU_MODES[1 if t.trace else 0]
    ips = _num(t.images_per_step)
    return "\n".join(
        [
            "TRANSLATION = make_translation(",
            "    PARAMS,",
            "    IMAGES_PER_ITERATION,",
            f"    exact={t.exact!r},",
            f"    ngpus={_num(t.ngpus)},",
            f'    multigpu="{mode}",',
            f"    images_per_step={'None' if t.trace else ips},",
            f"    scratch={t.scratch!r},",
            ")",
        ]
    )


_BUILD_DEF = (
    "def build_scheduler(\n"
    "    optimizer: Optimizer, last_epoch: int = RESUME_STEP - 1\n"
    ") -> LRScheduler:"
)

_CLASS_BUILD = (
    _BUILD_DEF
    + '''
    """darknet's LR for every optimizer step (closed form, picklable).

    Right after this call the optimizer holds the LR of its next ``optimizer.step()``;
    call ``scheduler.step()`` after each ``optimizer.step()``. ``last_epoch=k`` resumes
    with k + 1 optimizer steps done. A parameter group's LR is darknet's times its initial
    lr / LEARNING_RATE.
    """
    return DarknetScheduler(optimizer, TRANSLATION, last_epoch)'''
)

_LR_AT = '''def lr_at(step: int) -> float:
    """darknet's LR for the 0-based optimizer step ``step`` (a group at LEARNING_RATE)."""
    return TRANSLATION.lr(step)'''

_OPTIMIZER = '''def build_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer darknet's update rule equals (average the loss over the cfg's batch).

    {kind}; weight decay DECAY only on the weights of
    convolution and linear layers (not on biases or normalization parameters).
    """
    decayed: list[torch.nn.Parameter] = []
    other: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    layers = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if name == "weight" and isinstance(module, layers):
                decayed.append(param)
            else:
                other.append(param)
    groups = [
        {{"params": decayed, "weight_decay": DECAY}},
        {{"params": other, "weight_decay": 0.0}},
    ]
    return {call}'''

_SGD = (
    "torch.optim.SGD(\n"
    "        groups, lr=LEARNING_RATE, momentum=MOMENTUM, dampening=0.0, nesterov=False\n"
    "    )"
)
_ADAM = "torch.optim.Adam(groups, lr=LEARNING_RATE, betas=(B1, B2), eps=EPS)"

_LIGHTNING = '''def configure_optimizers(self: torch.nn.Module) -> dict[str, Any]:
    """``LightningModule.configure_optimizers``: the scheduler steps once per optimizer step.

    Use it in the class body: ``configure_optimizers = lr_schedule.configure_optimizers``.
    """
    optimizer = build_optimizer(self)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {
            "scheduler": build_scheduler(optimizer),
            "interval": "step",
            "frequency": 1,
        },
    }'''


def _native_source(
    schedule: NetSchedule, t: Translation, horizon: int | None
) -> tuple[str, str]:
    """The native ``build_scheduler`` and a description of the torch schedulers it uses."""
    from cfgsched.translate.native import native_plan

    plan = native_plan(
        schedule,
        exact=t.exact,
        ngpus=t.ngpus,
        multigpu=MULTIGPU_MODES[1 if t.trace else 0],
        images_per_step=None if t.trace else t.images_per_step,
        horizon=horizon,
    )
    calls: list[str] = []
    names: list[str] = []
    for part in plan.parts:
        if part.name not in _NATIVE_CLASSES:
            raise CodegenError(f"unexpected native scheduler {part.name}")
        cls = _NATIVE_CLASSES[_NATIVE_CLASSES.index(part.name)]
        names.append(cls)
        args = ["optimizer"]
        for key, value in part.kwargs.items():
            if key not in _NATIVE_KWARGS:
                raise CodegenError(f"unexpected native argument {key}")
            k = _NATIVE_KWARGS[_NATIVE_KWARGS.index(key)]
            if isinstance(value, list | tuple):
                args.append(f"{k}=[{', '.join(_num(v) for v in value)}]")
            else:
                args.append(f"{k}={_num(value)}")
        calls.append(f"torch.optim.lr_scheduler.{cls}({', '.join(args)})")
    items = "".join(f"{' ' * 8}{c},\n" for c in calls)
    if any(len(f"{' ' * 8}{c},") > LINE_LENGTH for c in calls):
        items = "".join(_native_call_lines(c) for c in calls)
    src = (
        _BUILD_DEF
        + f'''
    """torch's built-in schedulers, proven equal to darknet for batches 1..{plan.horizon}.

    Right after this call the optimizer holds the LR of its next ``optimizer.step()``;
    call ``scheduler.step()`` after each ``optimizer.step()``. ``last_epoch=k`` resumes
    with k + 1 optimizer steps done (replayed: built-in schedulers are chainable).
    """
    for group in optimizer.param_groups:
        if "initial_lr" in group:
            group["lr"] = group["initial_lr"]
    parts: list[LRScheduler] = [
{items}    ]
    scheduler = parts[0]
    if len(parts) > 1:
        scheduler = torch.optim.lr_scheduler.ChainedScheduler(
            parts, optimizer=optimizer
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(last_epoch + 1):
            scheduler.step()
    return scheduler'''
    )
    chain = f"{' + '.join(names)} (chained)" if len(names) > 1 else names[0]
    desc = (
        f"{chain} (torch built-ins), proven equal for darknet batches 1..{plan.horizon}"
    )
    return src, desc


def _native_call_lines(call: str) -> str:
    head, _, rest = call.partition("(")
    args = rest[:-1].split(", ")
    joined: list[str] = []
    for a in args:  # rejoin list arguments split at their commas
        if joined and joined[-1].count("[") > joined[-1].count("]"):
            joined[-1] += ", " + a
        else:
            joined.append(a)
    out = f"{' ' * 8}{head}(\n"
    for a in joined:
        if len(f"{' ' * 12}{a},") <= LINE_LENGTH or "=[" not in a:
            out += f"{' ' * 12}{a},\n"
        else:
            key, _, values = a.partition("=[")
            vals = values[:-1].split(", ")
            out += f"{' ' * 12}{key}=[\n"
            out += "".join(f"{' ' * 16}{v},\n" for v in vals)
            out += f"{' ' * 12}],\n"
    return out + f"{' ' * 8}),\n"


def _choices(
    schedule: NetSchedule,
    t: Translation,
    *,
    ideal: bool,
    resume_batch: int | None,
    resume_at: int,
    style_desc: str,
) -> list[str]:
    """The docstring lines describing every translation choice (numbers and our words)."""
    ipi, ips = t.images_per_iteration, t.images_per_step
    out = [f"- Scheduler: {style_desc}."]
    out.append(
        "- Arithmetic: "
        + (
            "float32 exactly as darknet (bit for bit)."
            if t.exact
            else "double (the formulas without darknet's float32 rounding)."
        )
    )
    if t.trace:
        out.append(
            f"- Steps: optimizer step i follows GPU 0's batch counter of a darknet run on "
            f"{t.ngpus} GPUs{' from scratch' if t.scratch else ''} (non-monotonic)."
        )
    elif ips == ipi:
        out.append("- Steps: optimizer step i (0-based) uses darknet batch b = i + 1.")
    else:
        out.append(
            f"- Steps: optimizer step i (0-based) uses darknet batch "
            f"b = (i + 1) * {ips} // {ipi} ({ips} images per step, {ipi} per darknet iteration)."
        )
    if t.ngpus > 1:
        scaled = t.params.lr != t.cfg_lr
        out.append(
            f"- GPUs: {t.ngpus}; base LR "
            + (
                f"x {t.ngpus} as darknet does ({_plain(t.params.lr)})."
                if scaled
                else "not scaled."
            )
        )
    if ideal:
        out.append(
            f"- Ideal: learning_rate / {t.ngpus} and burn_in x {t.ngpus} (AlexeyAB's advice for "
            f"{t.ngpus} GPUs), so the run follows the one-GPU schedule."
        )
    if resume_batch is not None:
        out.append(
            f"- Resume: darknet iteration {resume_batch}; build_scheduler starts at optimizer "
            f"step {resume_at}."
        )
    for w in schedule.warnings:
        where = "" if w.line is None else f" (line {w.line})"
        text = WARNING_CODES.get(w.code)
        if text is not None:
            out.append(f"- Warning {w.code}{where}: {text}.")
        else:
            out.append(f"- Warning{where}: see cfgsched lint.")
    for layer in schedule.layer_lrs:
        out.append(
            f"- Layer {layer.index} has learning_rate multiplier {_plain(layer.multiplier)}: "
            "give its parameters a group with lr = LEARNING_RATE * that multiplier."
        )
    return out


def _plain(x: float) -> str:
    """A float for prose: the shortest decimal of a float32, else repr."""
    if math.isfinite(x) and f32(x) == x:
        return repr(f32_decimal(x))
    return repr(float(x)) if math.isfinite(x) else ("nan" if math.isnan(x) else repr(x))


def _wrap(text: str, indent: str = "") -> list[str]:
    """Greedy word wrap to 92 columns."""
    words = text.split(" ")
    lines: list[str] = []
    cur = indent
    for w in words:
        if cur.strip() and len(cur) + 1 + len(w) > 92:
            lines.append(cur.rstrip())
            cur = indent + ("  " if text.startswith("- ") else "") + w
        else:
            cur = f"{cur} {w}" if cur.strip() else f"{cur}{w}"
    lines.append(cur.rstrip())
    return lines


def _docstring(
    schedule: NetSchedule,
    t: Translation,
    *,
    fmt: str,
    with_optimizer: bool,
    choices: list[str],
) -> str:
    name = safe_name(schedule.source)
    fork = schedule.fork if schedule.fork in FORKS else FORKS[0]
    pol = schedule.policy.name
    lines = [
        f"darknet learning-rate schedule of {name} as a PyTorch scheduler.",
        "",
        f"Generated by cfgsched {__version__} from {name}, fork {fork} "
        f"({FORK_PROJECTS[fork]}), policy {pol}. Imports only torch and the standard library.",
        "",
        "Translation choices:",
        "",
    ]
    lines = [ln for first in lines for ln in (_wrap(first) if first else [""])]
    for c in choices:
        lines += _wrap(c)
    lines += ["", "Use it (import this file as lr_schedule):", ""]
    if fmt == "lightning":
        lines += [
            "    class Model(lightning.LightningModule):",
            "        configure_optimizers = lr_schedule.configure_optimizers",
        ]
    else:
        if with_optimizer:
            lines.append("    optimizer = lr_schedule.build_optimizer(model)")
        else:
            lines += [
                "    optimizer = torch.optim.SGD(",
                "        model.parameters(),",
                "        lr=lr_schedule.LEARNING_RATE,",
                "        momentum=lr_schedule.MOMENTUM,",
                "    )  # convert --with-optimizer adds darknet's weight decay rule",
            ]
        lines += [
            "    scheduler = lr_schedule.build_scheduler(optimizer)",
            "    # each step: loss.backward(); optimizer.step(); scheduler.step()",
        ]
    lines += [
        "",
        "The loss must be averaged over the cfg's batch of IMAGES_PER_ITERATION images",
        "(subdivisions = gradient accumulation). lr_at(i) is the LR of optimizer step i.",
    ]
    body = "\n".join(lines)
    if '"""' in body or "\\" in body:
        raise CodegenError("internal: docstring would not be a plain literal")
    return f'"""{body}\n"""'


def _constants(schedule: NetSchedule, t: Translation, resume_at: int) -> str:
    lines = [
        "#: The cfg's learning_rate (float32). A group at this lr gets darknet's LR exactly.",
        f"LEARNING_RATE = {_f32(schedule.learning_rate)}",
        f"MOMENTUM = {_f32(schedule.momentum)}",
        f"DECAY = {_f32(schedule.decay)}",
        f"ADAM = {bool(schedule.adam)!r}",
        f"B1 = {_f32(schedule.b1)}",
        f"B2 = {_f32(schedule.b2)}",
        f"EPS = {_f32(schedule.eps)}",
        "#: Images per darknet iteration (batch × subdivisions after darknet's integer division).",
        f"IMAGES_PER_ITERATION = {_num(t.images_per_iteration)}",
        "#: Optimizer steps already done when build_scheduler() starts (a resumed run).",
        f"RESUME_STEP = {_num(resume_at)}",
    ]
    return "\n".join(lines)


def generate(
    schedule: NetSchedule,
    *,
    style: str = "class",
    fmt: str = "python",
    with_optimizer: bool = False,
    exact: bool = True,
    ngpus: int = 1,
    multigpu: str = "images",
    images_per_step: int | None = None,
    scratch: bool = False,
    ideal: bool = False,
    resume_batch: int | None = None,
    seed: int = 0,
    horizon: int | None = None,
) -> str:
    """The text of a standalone module (``fmt="python"``/``"lightning"``) or a JSON document.

    Options are :class:`cfgsched.DarknetLR`'s. ``ideal``: apply AlexeyAB's advice for
    ``ngpus`` GPUs first (learning_rate / n, burn_in × n; needs ``ngpus > 1``) so the run
    follows the one-GPU schedule. ``resume_batch``: the darknet iteration a ``.weights``
    file resumes at; ``build_scheduler``'s default ``last_epoch`` then starts there.
    ``style="native"`` emits torch built-ins and raises :class:`cfgsched.NotExactError`
    when none is exact (``horizon``: last darknet batch to prove, default max_batches).
    The Lightning format always includes ``build_optimizer``.
    """
    if style not in STYLES:
        raise CodegenError(f"style must be one of {STYLES}, got {style!r}")
    if fmt not in FORMATS:
        raise CodegenError(f"format must be one of {FORMATS}, got {fmt!r}")
    if ideal:
        if ngpus < 2:
            raise CodegenError(
                "ideal needs ngpus > 1 (it is AlexeyAB's advice for n GPUs)"
            )
        from cfgsched.multigpu import advised_schedule

        schedule = advised_schedule(schedule, ngpus)
    t = _options(schedule, exact, ngpus, multigpu, images_per_step, scratch, seed)
    resume_at = 0
    if resume_batch is not None:
        try:
            resume_at = resume_step(t, resume_batch)
        except ValueError as exc:
            raise CodegenError(str(exc)) from None
    if style == "native":  # raises NotExactError first, whatever the format
        build, desc = _native_source(schedule, t, horizon)
    else:
        build = _CLASS_BUILD
        desc = "DarknetScheduler, darknet's closed form (cfgsched's own code, copied below)"
    if fmt == "json":
        return _json(schedule, t, style, ideal, resume_batch, resume_at)
    if fmt == "lightning":
        with_optimizer = True
    choices = _choices(
        schedule,
        t,
        ideal=ideal,
        resume_batch=resume_batch,
        resume_at=resume_at,
        style_desc=desc,
    )
    plain, froms, bodies = _embedded()
    if style == "native":
        plain |= {"warnings", "torch"}
    if with_optimizer:
        plain.add("torch")
    if fmt == "lightning":
        froms.setdefault("typing", set()).add("Any")
    blocks: list[str] = [
        _docstring(
            schedule, t, fmt=fmt, with_optimizer=with_optimizer, choices=choices
        ),
        "from __future__ import annotations",
        _import_block(plain, froms),
    ]
    for name, body in bodies:
        blocks.append(
            f"# --- {name}: cfgsched's own code, verbatim ---\n{body.rstrip()}"
        )
    blocks.append(
        "# --- this schedule ---\n"
        + _constants(schedule, t, resume_at)
        + "\n\n"
        + _params_source(t, schedule)
        + "\n\n"
        + _translation_source(t)
    )
    blocks.append(build)
    blocks.append(_LR_AT)
    if with_optimizer:
        call = _ADAM if schedule.adam else _SGD
        kind = (
            "Adam (adam=1 in the cfg)"
            if schedule.adam
            else "SGD with momentum, dampening 0"
        )
        blocks.append(_OPTIMIZER.format(kind=kind, call=call))
    if fmt == "lightning":
        blocks.append(_LIGHTNING)
    text = blocks[0] + "\n\n" + blocks[1] + "\n\n" + blocks[2] + "\n\n\n"
    text += "\n\n\n".join(blocks[3:]) + "\n"
    _check(text)
    return text


def _check(text: str) -> None:
    """Refuse to return source that imports cfgsched (tests parse every variant)."""
    if _CFGSCHED_IMPORT.search(text):
        raise CodegenError("internal: generated module imports cfgsched")


def _finite(x: Any) -> Any:
    """JSON-safe: non-finite floats as the strings "nan", "inf", "-inf"."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _json(
    schedule: NetSchedule,
    t: Translation,
    style: str,
    ideal: bool,
    resume_batch: int | None,
    resume_at: int,
) -> str:
    doc = {
        "schema": JSON_SCHEMA,
        "cfgsched_version": __version__,
        "style": style,
        "translation": {
            "exact": t.exact,
            "ngpus": t.ngpus,
            "multigpu": MULTIGPU_MODES[1 if t.trace else 0],
            "scratch": t.scratch,
            "ideal": ideal,
            "images_per_iteration": t.images_per_iteration,
            "images_per_step": None if t.trace else t.images_per_step,
            "step_to_batch": (
                "gpu0_trace"
                if t.trace
                else "b = (i + 1) * images_per_step // images_per_iteration"
            ),
            "base_learning_rate": t.params.lr,
            "resume_batch": resume_batch,
            "resume_step": resume_at,
        },
        "schedule": schedule.to_dict(),
    }
    import json

    return json.dumps(_finite(doc), indent=2, allow_nan=False) + "\n"
