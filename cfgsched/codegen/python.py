"""The standalone Python module (``--format python`` / ``lightning``) for one translation.

Layout: docstring, imports, the ``CFGSCHED`` record, ``f32`` and the other helpers the
formula needs, the constants, ``lr_at(step)`` (darknet's formula for this policy), then the
scheduler (a small closed-form ``LRScheduler``, or torch built-ins for ``style="native"``),
``build_scheduler`` and, on request, ``build_optimizer`` / ``configure_optimizers``.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cfgsched import __version__
from cfgsched.codegen import source
from cfgsched.codegen.policy_text import LrCode, flush_matters, lr_code
from cfgsched.codegen.source import (
    CodegenError,
    call,
    float32,
    images,
    num,
    safe_name,
)
from cfgsched.module_record import MODULE_SCHEMA as MODULE_SCHEMA
from cfgsched.options import Options, default_flush
from cfgsched.run import Run, translate
from cfgsched.schedule import WARNING_CODES, NetSchedule

if TYPE_CHECKING:
    from cfgsched.translate.native import NativePlan

#: The darknet project behind each fork name.
FORK_PROJECTS = {
    "alexeyab": "AlexeyAB/darknet",
    "pjreddie": "pjreddie/darknet",
    "hankai": "hank-ai/darknet",
}
_CLASS = '''class DarknetScheduler(LRScheduler):
    """lr_at(last_epoch) for each parameter group, times the group's initial lr /
    LEARNING_RATE (exactly 1 for a group created with LEARNING_RATE). A closed form of
    last_epoch: it pickles and its state_dict holds plain numbers only."""

    def get_lr(self) -> list[float]:
        """Each group's learning rate for the 0-based optimizer step last_epoch."""
        lr = lr_at(self.last_epoch)
{ret}'''

_RET_RATIO = """        return [
            lr if {same} else lr * (base / LEARNING_RATE)
            for base in self.base_lrs
        ]"""

_BUILD_CLASS = '''{head}
    """darknet's learning rate at every optimizer step.

    Right after this call the optimizer holds the LR of step 0 (darknet's first update);
    call scheduler.step() after each optimizer.step(). last_epoch=k resumes with k + 1
    optimizer steps done{resume}.
    """
    if last_epoch != -1:  # resuming: a group without initial_lr starts from its lr
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
    return DarknetScheduler(optimizer, last_epoch)'''

_BUILD_NATIVE = """{head}
{doc}
    for group in optimizer.param_groups:
        group["lr"] = group.get("initial_lr", group["lr"])
{construct}
    with warnings.catch_warnings():  # replaying steps without optimizer.step() warns
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(last_epoch + 1):
            scheduler.step()
    return scheduler"""

_OPTIMIZER = '''def build_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """{kind}, as darknet updates ({loss}).

    Weight decay DECAY only on the weights of convolution and linear layers."""
{layers}
    seen: set[int] = set()
    groups: dict[bool, list[torch.nn.Parameter]] = {{}}
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                decay = name == "weight" and isinstance(module, layers)
                groups.setdefault(decay, []).append(param)
    param_groups = [
        {{"params": params, "weight_decay": {decay} if decay else 0.0}}
        for decay, params in groups.items()
    ]
{call}'''

_LIGHTNING = '''def configure_optimizers(self: torch.nn.Module) -> dict[str, Any]:
    """LightningModule.configure_optimizers: the scheduler steps every optimizer step.

    In the class body: configure_optimizers = NAME.configure_optimizers
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


def record(
    schedule: NetSchedule,
    options: Options,
    fmt: str,
    style: str,
    summed: int | None = None,
) -> dict[str, Any]:
    """What a generated module records about itself (``CFGSCHED``; ``diff`` reads it).

    ``summed``: the loss is summed over that many images (the keys ``loss_reduction``
    and ``summed_images`` appear only then)."""
    out: dict[str, Any] = {
        "schema": MODULE_SCHEMA,
        "version": __version__,
        "cfg": safe_name(schedule.source),
        "fork": schedule.fork,
        "format": fmt,
        "style": style,
        "options": options.to_record(),
    }
    if summed is not None:
        out.update(loss_reduction="sum", summed_images=summed)
    return out


def python_module(
    schedule: NetSchedule,
    options: Options,
    *,
    style: str,
    fmt: str,
    with_optimizer: bool,
    summed: int | None = None,
    output: str | None = None,
) -> str:
    """The text of the standalone module (see the module docstring).

    ``summed``: build_optimizer is for a loss summed over that many images; ``output``:
    the file it is written to (the usage imports it by that name)."""
    t = translate(schedule, options)
    code = lr_code(t)
    if style == "native":  # raises NotExactError first
        build, desc = _native_build(schedule, options, t)
    else:
        build = _class_build(code, t)
        desc = "DarknetScheduler, a closed form"
    if fmt == "lightning":
        with_optimizer = True
    if summed is not None and not with_optimizer:
        raise CodegenError("a summed loss changes build_optimizer: add with_optimizer")
    update_constants(code, schedule, optimizer=with_optimizer, summed=summed)
    blocks = [
        source.dict_source("CFGSCHED", record(schedule, options, fmt, style, summed)),
        *code.blocks(),
        "\n".join(code.constants),
        *code.engine,
        code.lr_at(),
        *build,
    ]
    if with_optimizer:
        blocks.append(_optimizer(schedule, summed))
    name, note = source.import_name(output, "lr_schedule")
    if fmt == "lightning":
        blocks.append(_LIGHTNING.replace("NAME", name))
    doc = _docstring(
        schedule,
        t,
        options,
        fmt=fmt,
        with_optimizer=with_optimizer,
        desc=desc,
        summed=summed,
        usage=(name, note),
    )
    text = source.module(doc, blocks)
    if re.search(r"^\s*(?:import|from)\s+cfgsched\b", text, re.M):
        raise CodegenError("internal: generated module imports cfgsched")
    return text


def update_constants(
    code: LrCode, schedule: NetSchedule, *, optimizer: bool, summed: int | None = None
) -> None:
    """MOMENTUM and DECAY after LEARNING_RATE; Adam's B1, B2, EPS when the module builds
    or configures the optimizer; SUMMED_IMAGES for a summed loss."""
    extra = [
        f"MOMENTUM = {float32(schedule.momentum, code.exact)}",
        f"DECAY = {float32(schedule.decay, code.exact)}",
    ]
    if optimizer:
        if schedule.adam:
            extra += [
                f"B1 = {float32(schedule.b1, code.exact)}",
                f"B2 = {float32(schedule.b2, code.exact)}",
                f"EPS = {float32(schedule.eps, code.exact)}",
            ]
    if summed is not None:
        extra += [
            "#: The loss is summed over this many images per optimizer step (not averaged).",
            f"SUMMED_IMAGES = {num(summed)}",
        ]
    at = code.constants.index(
        next(c for c in code.constants if c.startswith("LEARNING_RATE ="))
    )
    code.constants[at + 1 : at + 1] = extra


def _class_build(code: LrCode, t: Run) -> list[str]:
    lr = t.cfg_lr
    if lr == 0 or not math.isfinite(lr):
        ret = "        return [lr] * len(self.base_lrs)  # no ratio to LEARNING_RATE exists"
    else:
        same = "f32(base) == LEARNING_RATE" if code.exact else "base == LEARNING_RATE"
        ret = _RET_RATIO.format(same=same)
    head, resume = _resume(t)
    return [_CLASS.format(ret=ret), _BUILD_CLASS.format(head=head, resume=resume)]


def _resume(t: Run) -> tuple[str, str]:
    """The ``def build_scheduler(...)`` line(s) and the docstring's note on resuming."""
    if not t.start:
        default, note = "-1", ""
    else:
        default = "RESUME_STEP - 1"
        note = "; by default RESUME_STEP steps are done (the .weights file)"
    args = f"optimizer: Optimizer, last_epoch: int = {default}"
    head = f"def build_scheduler({args}) -> LRScheduler:"
    if len(head) > source.LINE_LENGTH:
        head = f"def build_scheduler(\n    {args}\n) -> LRScheduler:"
    return head, note


def _native_build(
    schedule: NetSchedule, options: Options, t: Run
) -> tuple[list[str], str]:
    """The native ``build_scheduler`` and a description of the built-ins it uses."""
    plan = native_plan_for(schedule, options, t)
    calls = [
        (part.name, ["optimizer", *(f"{k}={_native_value(v)}" for k, v in kw.items())])
        for part in plan.parts
        for kw in [part.kwargs]
    ]
    if len(calls) == 1:
        construct = call(f"scheduler = {calls[0][0]}", calls[0][1], 4)
    else:
        inner = [call(name, args, 12) + "," for name, args in calls]
        construct = (
            "    scheduler = ChainedScheduler(\n        [\n"
            + "\n".join(inner)
            + "\n        ],\n        optimizer=optimizer,\n    )"
        )
    names = [n for n, _ in calls]
    head, resume = _resume(t)
    doc = source.wrap(
        f"torch's {' + '.join(names)}: after this call the optimizer holds step 0's LR; "
        f"last_epoch=k resumes with k + 1 optimizer steps done, replayed{resume}.",
        width=source.LINE_LENGTH - 3,
        indent="    ",
    )
    doc[0] = '    """' + doc[0].lstrip()
    build = _BUILD_NATIVE.format(
        head=head, doc="\n".join(doc) + '"""', construct=construct
    )
    chain = f"{' + '.join(names)} (chained)" if len(names) > 1 else names[0]
    return [build], f"torch's {chain}, proven equal for batches 1..{plan.horizon}"


def native_plan_for(schedule: NetSchedule, options: Options, t: Run) -> NativePlan:
    """torch built-ins proven equal to ``t`` over the run, else :class:`NotExactError`."""
    from cfgsched.translate.native import plan_for

    base = (
        t
        if options.flush is None
        else translate(schedule, replace(options, flush=None))
    )
    plan = plan_for(base)
    _check_native_flush(base, t, plan.steps)
    return plan


def _native_value(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(num(v) for v in value) + "]"
    return num(value)


def _check_native_flush(base: Run, t: Run, steps: int) -> None:
    """native_plan proves the fork's default build; a different flush must not matter."""
    if base.flush == t.flush or not flush_matters(t if t.flush else base):
        return
    import numpy as np

    from cfgsched.errors import NotExactError

    idx = np.arange(max(steps, 0), dtype=np.int64)
    b = t.batches(idx)
    want, proven = t.batch_lrs(b), base.lrs(idx)
    bad = np.flatnonzero(want.view(np.uint32) != proven.view(np.uint32))
    if bad.size:
        raise NotExactError(
            int(b[bad[0]]),
            "the native form is proven for the fork's default build only",
        )


def _optimizer(schedule: NetSchedule, summed: int | None) -> str:
    """build_optimizer: decay on the module types of cfgsched.translate.optim, no other;
    for a loss summed over N images SGD's lr / N (Adam's lr unchanged) and decay x N
    (the rule of cfgsched.translate.optim.build_optimizer)."""
    from cfgsched.translate.optim import DECAYED_MODULES

    names = [_torch_name(cls) for cls in DECAYED_MODULES]
    layers = source.seq(names, 4, "layers = ")
    kind = "Adam (adam=1)" if schedule.adam else "SGD, momentum MOMENTUM"
    lr = "LEARNING_RATE"
    if summed is None:
        loss, decay = "the loss must be the batch mean", "DECAY"
    else:
        decay = "DECAY * SUMMED_IMAGES"
        loss = "for a loss summed over SUMMED_IMAGES images: decay x SUMMED_IMAGES"
        if not schedule.adam:
            lr = "LEARNING_RATE / SUMMED_IMAGES"
            loss += ", lr / SUMMED_IMAGES"
    if schedule.adam:
        head, args = "return torch.optim.Adam", ["betas=(B1, B2)", "eps=EPS"]
    else:
        head = "return torch.optim.SGD"
        args = ["momentum=MOMENTUM", "dampening=0.0", "nesterov=False"]
    ctor = call(head, ["param_groups", f"lr={lr}", *args], 4)
    return _OPTIMIZER.format(
        kind=kind, loss=loss, layers=layers, decay=decay, call=ctor
    )


def _torch_name(cls: type) -> str:
    """``torch.nn.Linear`` for a public torch.nn class, else its full dotted path."""
    import torch

    if getattr(torch.nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    if not cls.__module__.startswith("torch."):
        raise CodegenError(f"not a torch module type: {cls.__module__}")
    return f"{cls.__module__}.{cls.__qualname__}"


# ----------------------------------------------------------------------------- docstring


def _mapping_text(t: Run) -> str:
    """How optimizer step i maps to darknet's batch b, as a sentence."""
    ipi, ips = t.images_per_iteration, t.images_per_step
    if t.trace:
        scratch = " from scratch" if t.scratch else ""
        return (
            f"Optimizer step i follows GPU 0's batch counter of a darknet run on "
            f"{t.ngpus} GPUs{scratch} (it is not monotonic)."
        )
    if ips == ipi:
        return "Optimizer step i (0-based) uses darknet's batch b = i + 1."
    if ips == ipi * t.ngpus:
        return (
            f"Optimizer step i (0-based) uses darknet's batch b = (i + 1) * {t.ngpus}: "
            f"each step covers {t.ngpus} darknet iterations, as on {t.ngpus} GPUs."
        )
    return (
        f"Optimizer step i (0-based) uses darknet's batch b = (i + 1) * {ips} // {ipi} "
        f"({images(ips)} per step, {ipi} per darknet iteration)."
    )


def _choices(schedule: NetSchedule, t: Run, options: Options) -> list[str]:
    """The docstring's list of the other translation choices and the cfg's warnings."""
    out = []
    if t.ngpus > 1:
        scaled = t.params.lr != t.cfg_lr
        out.append(
            f"- GPUs: {t.ngpus}; learning_rate "
            + (f"x {t.ngpus} as darknet does." if scaled else "not scaled (hank-ai).")
        )
    if options.ideal:
        out.append(
            f"- Ideal: learning_rate / {t.ngpus} and burn_in x {t.ngpus} first (AlexeyAB's "
            f"advice for {t.ngpus} GPUs), so the run follows the one-GPU schedule."
        )
    if t.start:
        out.append(
            f"- Resume: darknet iteration {options.resume_iteration}; build_scheduler() "
            f"starts after optimizer step {t.start - 1}."
        )
    if t.flush and flush_matters(t):
        out.append(
            "- Release build (-Ofast): results below float32's normal range are 0."
        )
    elif (
        t.exact
        and not t.flush
        and default_flush(schedule.fork)
        and flush_matters(replace(t, flush=True))
    ):
        out.append("- Debug build: results below float32's normal range are kept.")
    for w in schedule.warnings:
        where = "" if w.line is None else f" (line {w.line})"
        text = WARNING_CODES.get(w.code)
        out.append(
            f"- Warning {w.code}{where}: {text}."
            if text is not None
            else f"- Warning{where}: see cfgsched lint."
        )
    for layer in schedule.layer_lrs:
        out.append(
            f"- Layer {layer.index} has a learning_rate multiplier: give its parameters "
            "a group with lr = LEARNING_RATE times it."
        )
    return out


def _docstring(
    schedule: NetSchedule,
    t: Run,
    options: Options,
    *,
    fmt: str,
    with_optimizer: bool,
    desc: str,
    summed: int | None,
    usage: tuple[str, str],
) -> str:
    name = safe_name(schedule.source)
    intro = (
        f"{written_by(schedule, t, desc)} Imports only torch and the standard library; "
        f"CFGSCHED records the translation for cfgsched diff {name} --module FILE."
    )
    lines = [f"darknet learning-rate schedule of {name} as a PyTorch scheduler.", ""]
    lines += [*source.wrap(intro), ""]
    lines += choice_lines(schedule, t, options)
    lines += _usage(fmt, with_optimizer, schedule.adam, *usage)
    if summed is None:
        note = (
            f"The loss is the mean over the cfg's batch of "
            f"{images(t.images_per_iteration)} (subdivisions = accumulation)."
        )
    else:
        note = (
            f"The loss is summed over SUMMED_IMAGES = {images(summed)} per optimizer "
            "step: build_optimizer divides SGD's LR by it and multiplies weight decay by "
            "it, which gives darknet's update on the mean."
        )
    lines += ["", *source.wrap(note)]
    return "\n".join(lines)


def written_by(
    schedule: NetSchedule, t: Run, desc: str, *, formula: bool = True
) -> str:
    """The docstring's first sentences: cfgsched version, fork, policy, arithmetic
    (``formula``: the module computes darknet's formula), ``desc`` and how optimizer
    steps map to darknet's batches."""
    fork = schedule.fork if schedule.fork in FORK_PROJECTS else "alexeyab"
    arith = "float32, bit for bit" if t.exact else "double, not bit-exact"
    how = f" in darknet's formula ({arith})" if formula else ""
    return (
        f"Written by cfgsched {__version__} for fork {fork} ({FORK_PROJECTS[fork]}), "
        f"policy {schedule.policy.name.lower()}{how}: {desc}. {_mapping_text(t)}"
    )


def choice_lines(schedule: NetSchedule, t: Run, options: Options) -> list[str]:
    """The docstring's wrapped list of translation choices and cfg warnings, then a blank
    line (nothing when there are none)."""
    lines: list[str] = []
    for c in _choices(schedule, t, options):
        lines += source.wrap(c)
    return [*lines, ""] if lines else []


def _usage(
    fmt: str, with_optimizer: bool, adam: bool, name: str, note: str
) -> list[str]:
    """The usage example, importing this file as ``name`` (``note``: how to save it)."""
    first = [f"    import {name}  # this file {note}".rstrip()]
    if fmt == "lightning":
        return [
            *first,
            "    class Model(lightning.LightningModule):",
            f"        configure_optimizers = {name}.configure_optimizers",
        ]
    if with_optimizer:
        first.append(f"    optimizer = {name}.build_optimizer(model)")
        build = f"{name}.build_scheduler"
    else:
        names = "DECAY, LEARNING_RATE, MOMENTUM, build_scheduler"
        first = [f"    from {name} import {names}  # this file {note}".rstrip()]
        if len(first[0]) > source.LINE_LENGTH:
            first = [
                f"    from {name} import (  # this file",
                f"        {names},",
                "    )",
            ]
            first += [f"    # {note}"] if note else []
        first += [
            "    optimizer = torch.optim.SGD(",
            "        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, "
            "weight_decay=DECAY",
            "    )"
            + ("  # adam=1: convert --with-optimizer builds Adam" if adam else ""),
        ]
        build = "build_scheduler"
    return [
        *first,
        f"    scheduler = {build}(optimizer)",
        "    # each step: loss.backward(); optimizer.step(); scheduler.step()",
    ]
