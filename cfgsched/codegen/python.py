"""The standalone Python module (``--format python`` / ``lightning``): ``CFGSCHED``, the
formula's helpers and constants, ``lr_at``, the scheduler and its builders."""

from __future__ import annotations

import math
import re
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from cfgsched import __version__
from cfgsched.codegen import source
from cfgsched.codegen.policy_text import LrCode, flush_matters, lr_code, mapping
from cfgsched.codegen.source import CodegenError, call, float32, literal
from cfgsched.layers import LayerRule
from cfgsched.module_record import MODULE_SCHEMA as MODULE_SCHEMA
from cfgsched.options import default_flush
from cfgsched.run import Run
from cfgsched.schedule import WARNING_CODES, NetSchedule

if TYPE_CHECKING:
    from cfgsched.adapters.approx import Fit

#: The darknet project behind each fork name.
FORK_PROJECTS = {
    "alexeyab": "AlexeyAB/darknet",
    "pjreddie": "pjreddie/darknet",
    "hankai": "hank-ai/darknet",
}
_CLASS = '''class DarknetScheduler(LRScheduler):
    """lr_at(last_epoch) x each group's initial lr / LEARNING_RATE (a closed form)."""

    def get_lr(self) -> list[float]:
        lr = lr_at(self.last_epoch)
{ret}'''

_RET_RATIO = """        return [
            lr if {same} else lr * (base / LEARNING_RATE)
            for base in self.base_lrs
        ]"""

#: build_scheduler's body for the class (the native one's below).
_BUILD_CLASS = """\
    if last_epoch != -1:  # resuming: a group without initial_lr starts from its lr
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
    scheduler = DarknetScheduler(optimizer, last_epoch)"""

#: Warns once when a group's lr is not LEARNING_RATE (cfgsched.DarknetLR's words).
_WARN = """{pad}lr = next((b for b in {lrs} if {differs}), None)
{pad}if lr is not None and not rescale:
{pad}    warnings.warn(
{pad}        f"the optimizer's lr {{lr:.6g}} is not the cfg's learning_rate "
{pad}        f"{{LEARNING_RATE:.6g}}: every LR is scaled by {{lr / LEARNING_RATE:.3g}}x"
{pad}        "; build the optimizer with lr=LEARNING_RATE or pass rescale=True",
{pad}        stacklevel=2,
{pad}    )
"""


def no_ratio(t: Run) -> bool:
    """No ratio to the cfg's learning_rate exists (0 or not finite)."""
    return t.cfg_lr == 0 or not math.isfinite(t.cfg_lr)


def versus_cfg(t: Run, lr: str, op: str) -> str:
    """``lr op LEARNING_RATE``, ``lr`` rounded to float32 first when exact."""
    return f"f32({lr}) {op} LEARNING_RATE" if t.exact else f"{lr} {op} LEARNING_RATE"


def warn_rescaled(t: Run, lrs: str, indent: int) -> str:
    """:data:`_WARN` on the initial lrs ``lrs`` ("" without a ratio)."""
    if no_ratio(t):
        return ""
    return _WARN.format(pad=" " * indent, lrs=lrs, differs=versus_cfg(t, "b", "!="))


_BUILD_NATIVE = """\
    for group in optimizer.param_groups:
        group["lr"] = group.get("initial_lr", group["lr"])
{construct}
    with warnings.catch_warnings():  # replaying steps without optimizer.step() warns
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(last_epoch + 1):
            scheduler.step()"""

_OPTIMIZER = '''def build_optimizer({args}) -> torch.optim.Optimizer:
{doc}

    Weight decay DECAY only on the weights of convolution and linear layers{more}."""
{layers}
{setup}    seen: set[int] = set()
    groups: dict[{key_type}, list[torch.nn.Parameter]] = {{}}
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                decay = name == "weight" and isinstance(module, {var})
                groups.setdefault({key}, []).append(param)
    param_groups = [
        {group}
        for {target}, params in groups.items()
    ]
{call}'''
#: build_optimizer's parts: (one group per decay, a group per decay and layer lr scale).
_OPTIMIZER_PARTS = {
    "args": (
        "model: torch.nn.Module",
        "\n    model: torch.nn.Module, layers: Any = None\n",
    ),
    "more": (
        "",
        "; layers (as\n    attach_layers takes them): each layer's lr times its lr_scale (LAYERS)",
    ),
    "setup": (
        "",
        "    rules = layer_parameters(layers)[1] if layers is not None else {}\n"
        "    scale = {p: rule[6] for p, rule in rules.items()}\n",
    ),
    "key_type": ("bool", "tuple[bool, float]"),
    "var": ("layers", "decayed"),
    "key": ("decay", "(decay, scale.get(param, 1.0))"),
    "target": ("decay", "(decay, s)"),
}

_LIGHTNING = '''def configure_optimizers(self: torch.nn.Module) -> dict[str, Any]:
    """LightningModule.configure_optimizers: the scheduler steps each optimizer step."""
{layers}    optimizer = build_optimizer(self{model})
{attach}    return {{
        "optimizer": optimizer,
        "lr_scheduler": {{
            "scheduler": build_scheduler(optimizer{rescale}),
            "interval": "step",
            "frequency": 1,
        }},
    }}'''
_LAYER_PARAMETERS = '''\
def layer_parameters(layers: Any) -> tuple[dict[int, list[Any]], dict[Any, Any]]:
    """The modules of each darknet layer number, and each parameter under a rule of
    LAYERS with its rule (a parameter of several layers belongs to the first).

    layers: modules indexed by darknet layer number, or a mapping number -> module(s).
    """
    items = layers.items() if isinstance(layers, Mapping) else enumerate(layers)
    modules = {
        int(j): [m] if isinstance(m, torch.nn.Module) else list(m)
        for j, m in items
        if m is not None
    }
    owner: dict[torch.nn.Parameter, int] = {}
    for j in sorted(modules):
        for module in modules[j]:
            for param in module.parameters():
                owner.setdefault(param, j)
    rules = {j: rule for rule in LAYERS for j in range(rule[0], rule[1] + 1)}
    return modules, {p: rules[j] for p, j in owner.items() if j in rules}'''

_EVAL_MODE = '''def eval_mode(module: torch.nn.Module, args: Any) -> None:
    """A forward pre-hook: darknet runs this batch-norm in inference mode."""
    module.training = False'''

_BN_SETUP = """    for first, last, *_, inference_bn in LAYERS:
        for j in range(first, last + 1) if inference_bn else ():
            for module in modules.get(j, []):
                for bn in module.modules():
                    if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                        bn.register_forward_pre_hook(eval_mode)
"""

#: The parts of the hook: the LayerRule field a part reads -> its code.
_HOOK_PARTS = {
    "updated": """\
            if not updated:  # darknet's update skips this layer
                p.grad = None
                continue""",
    "gradient_from": """\
            if gradient_from is None or k < gradient_from:  # decay, momentum act
                p.grad = torch.zeros_like(p) if p.grad is None else p.grad.zero_()""",
    "held": """\
            if k <= held:  # the update is held: the gradient piles up
                if p.grad is not None:
                    pile[p] = p.grad if p not in pile else pile[p].add_(p.grad)
                p.grad = None
            elif p in pile:  # the first update after the hold lands the pile
                lump = pile.pop(p)
                p.grad = lump if p.grad is None else p.grad.add_(lump)""",
}

_PILE = "    pile: dict[torch.nn.Parameter, torch.Tensor] = {}\n"
_ATTACH_LAYERS = '''def attach_layers(optimizer: Optimizer, layers: Any) -> Any:
    """Apply LAYERS before every optimizer step: a step pre-hook (returns its handle).

    layers: as layer_parameters takes them. Update k is 1-based, counted in each
    parameter group's "darknet_updates" (the optimizer's state_dict keeps it).
    """
    modules, rules = layer_parameters(layers)
SETUP{pile}    for group in optimizer.param_groups:
        group.setdefault("darknet_updates", 0)

    def before_step(optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        k = optimizer.param_groups[0]["darknet_updates"] + 1
        for group in optimizer.param_groups:
            group["darknet_updates"] = k
        for p, TARGET in rules.items():
PARTS

    return optimizer.register_step_pre_hook(before_step)'''

#: The fields of cfgsched.layers.LayerRule, in declaration order (LAYERS' tuples).
LAYER_FIELDS = tuple(f.name for f in fields(LayerRule))


def hook_parts(t: Run) -> list[str]:
    """The parts of attach_layers' hook the layer rules need ("bn": batch-norm)."""
    rules = t.layers
    need = {
        "updated": any(not r.updated for r in rules),
        "gradient_from": any(r.updated and r.gradient_from != 1 for r in rules),
        "held": any(r.updated and r.held for r in rules),
        "bn": any(r.inference_bn for r in rules),
    }
    return [k for k, v in need.items() if v]


def layer_blocks(t: Run, scaled: bool) -> list[str]:
    """``LAYERS``, ``layer_parameters`` and ``attach_layers`` as the run needs them."""
    if not t.layers:
        return []
    value = {"lr_scale": lambda x: float32(x, t.exact)}
    rows = [
        source.seq([value.get(f, literal)(getattr(r, f)) for f in LAYER_FIELDS], 0, "")
        for r in t.layers
    ]
    table = (
        "#: darknet's layer rules, one per run of layers (layers in none train normally):\n"
        f"#: ({', '.join(LAYER_FIELDS)}).\n{source.seq(rows, 0, 'LAYERS = ')}"
    )
    parts = hook_parts(t)
    if not parts:  # the rules only scale rates (build_optimizer)
        return [table, _LAYER_PARAMETERS] if scaled else [table]
    bn = "bn" in parts
    # the fields the hook reads, unpacked from each rule; the leading ones unused: *_
    names = ", ".join(f if f in parts else "_" for f in LAYER_FIELDS)
    attach = (
        _ATTACH_LAYERS.replace("SETUP", _BN_SETUP if bn else "")
        .replace("TARGET", "(" + re.sub(r"^(_, )+", "*_, ", names) + ")")
        .replace("PARTS", "\n".join(c for f, c in _HOOK_PARTS.items() if f in parts))
        .replace("{pile}", _PILE if "held" in parts else "")
    )
    return [table, _LAYER_PARAMETERS, *([_EVAL_MODE] if bn else []), attach]


def record(t: Run, fmt: str, style: str, summed: int | None = None) -> dict[str, Any]:
    """A module's ``CFGSCHED`` record (``summed``: a summed loss's images)."""
    sums = {} if summed is None else {"loss_reduction": "sum", "summed_images": summed}
    return {
        "schema": MODULE_SCHEMA,
        "version": __version__,
        "cfg": source.safe_name(t.given.source),
        "fork": t.given.fork,
        "format": fmt,
        "style": style,
        "options": t.options.to_record(),
        **sums,
    }


def python_module(
    t: Run,
    style: str,
    fmt: str,
    with_optimizer: bool,
    summed: int | None,
    output: str | None,
) -> str:
    """The standalone module (``output``: the file the usage imports)."""
    schedule, with_optimizer = t.given, with_optimizer or fmt == "lightning"
    code = lr_code(t, with_optimizer, summed)
    if style == "native":  # raises NotExactError first
        build, desc = native_build(t)
    else:
        build, desc = _class_build(t), "DarknetScheduler, a closed form"
    scaled = with_optimizer and any(r.lr_scale != 1 for r in t.layers)
    blocks = [
        *formula_blocks(t, code, fmt, style, summed),
        *build,
        *layer_blocks(t, scaled),
        *([_optimizer(schedule, summed, scaled)] if with_optimizer else []),
    ]
    name, note = source.import_name(output, "lr_schedule")
    # build_optimizer's own groups are scaled on purpose: its users pass rescale=True
    rescale = scaled or (summed is not None and not schedule.adam)
    layers = (scaled, bool(hook_parts(t)), rescale)
    if fmt == "lightning":
        blocks.append(_lightning(*layers))
    usage = _usage(fmt, with_optimizer, schedule.adam, name, note, *layers)
    text = source.module(_docstring(t, desc, summed, usage), blocks)
    if re.search(r"^\s*(?:import|from)\s+cfgsched\b", text, re.M):
        raise CodegenError("internal: generated module imports cfgsched")
    return text


def formula_blocks(
    t: Run, code: LrCode, fmt: str, style: str, summed: int | None, *doc: str
) -> list[str]:
    """CFGSCHED, the formula code and ``lr_at`` (``doc``: what its step counts)."""
    return [
        source.dict_source("CFGSCHED", record(t, fmt, style, summed)),
        *code.blocks(),
        "\n".join(code.constants),
        *code.engine,
        code.lr_at(*doc),
    ]


def _class_build(t: Run) -> list[str]:
    ret = _RET_RATIO.format(same=versus_cfg(t, "base", "=="))
    if no_ratio(t):
        ret = "        return [lr] * len(self.base_lrs)  # no ratio to LEARNING_RATE exists"
    what = (
        "darknet's LR at each optimizer step (step 0's at once); last_epoch=k: k + 1 "
        "steps done"
    )
    warn = warn_rescaled(t, "scheduler.base_lrs", 4)
    return [_CLASS.format(ret=ret), _build(t, what, _BUILD_CLASS, warn)]


def _build(t: Run, what: str, body: str, warn: str) -> str:
    """build_scheduler: ``body`` under its head and docstring (``what`` first), ``warn``."""
    default = "RESUME_STEP - 1" if t.start else "-1"
    args = [
        "optimizer: Optimizer",
        f"last_epoch: int = {default}",
        "rescale: bool = False",
    ]
    head = call("def build_scheduler", args, 0, " -> LRScheduler:")
    if t.start:
        what += "; by default RESUME_STEP steps are done (the .weights file)"
    what += (
        ". A group lr not LEARNING_RATE scales its LRs, warning unless rescale=True."
    )
    if no_ratio(t):
        what += " (no ratio to learning_rate 0 or not finite: rescale has no effect)."
    doc = source.wrap(what, width=source.LINE_LENGTH - 3, indent="    ")
    doc[0] = '    """' + doc[0].lstrip()
    doc[-1] += '"""'
    return "\n".join([head, *doc, body, f"{warn}    return scheduler"])


def native_build(t: Run) -> tuple[list[str], str]:
    """The native ``build_scheduler`` and a description of the built-ins it uses."""
    from cfgsched.adapters.native import native_plan

    plan = native_plan(t)
    names = [p.name for p in plan.parts]
    calls = [["optimizer", *source.kwargs(p.kwargs)] for p in plan.parts]
    if len(calls) == 1:
        construct = call(f"scheduler = {names[0]}", calls[0], 4)
    else:
        inner = "\n".join(
            call(n, a, 12, ",") for n, a in zip(names, calls, strict=True)
        )
        construct = f"    scheduler = ChainedScheduler(\n        [\n{inner}\n        ],"
        construct += "\n        optimizer=optimizer,\n    )"
    what = (
        f"torch's {' + '.join(names)}: after this call the optimizer holds step 0's LR; "
        "last_epoch=k resumes with k + 1 optimizer steps done, replayed"
    )
    warn = warn_rescaled(t, "lrs", 4)
    lrs = '    lrs = [group["initial_lr"] for group in optimizer.param_groups]\n'
    body = _BUILD_NATIVE.format(construct=construct)
    chain = f"{' + '.join(names)} (chained)" if len(names) > 1 else names[0]
    desc = f"torch's {chain}, proven equal for batches 1..{plan.horizon}"
    return [_build(t, what, body, warn and lrs + warn)], desc


def _optimizer(schedule: NetSchedule, summed: int | None, scaled: bool) -> str:
    """build_optimizer, as cfgsched.adapters.optim.build_optimizer builds it."""
    import torch

    from cfgsched.adapters.optim import DECAYED_MODULES

    names = [
        f"torch.nn.{c.__name__}"
        if getattr(torch.nn, c.__name__, None) is c
        else f"{c.__module__}.{c.__qualname__}"
        for c in DECAYED_MODULES
    ]
    kind = "Adam (adam=1)" if schedule.adam else "SGD, momentum MOMENTUM"
    lr, decay, loss = "LEARNING_RATE", "DECAY", "the loss must be the batch mean"
    if summed is not None:
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
    doc = source.wrap(f"{kind}, as darknet updates ({loss}).", 85, "    ")
    doc[0] = '    """' + doc[0].lstrip()
    weight = f'"weight_decay": {decay} if decay else 0.0'
    group = f'{{"params": params, {weight}}}'
    if scaled:
        rows = ['"params": params', f'"lr": {lr} * s', weight]
        group = "{\n" + "".join(f"{'':12}{r},\n" for r in rows) + "        }"
    parts = {k: v[scaled] for k, v in _OPTIMIZER_PARTS.items()}
    return _OPTIMIZER.format(
        **parts,
        group=group,
        doc="\n".join(doc),
        layers=source.seq(names, 4, f"{parts['var']} = "),
        call=call(head, ["param_groups", f"lr={lr}", *args], 4),
    )


# ----------------------------------------------------------------------------- docstring


def choices(t: Run) -> list[str]:
    """The docstring's list of the other translation choices and the cfg's warnings."""
    schedule, options, n, out = t.given, t.options, t.ngpus, []
    if n > 1:
        scaled = t.params.lr != t.cfg_lr
        how = f"x {n} as darknet does" if scaled else "not scaled (hank-ai)"
        out.append(f"- GPUs: {n}; learning_rate {how}.")
    if options.ideal:
        out.append(
            f"- Ideal: learning_rate / {n} and burn_in x {n} first (AlexeyAB's "
            f"advice for {n} GPUs), so the run follows the one-GPU schedule."
        )
    if t.start:
        out.append(
            f"- Resume: darknet iteration {options.resume_iteration}; build_scheduler() "
            f"starts after optimizer step {t.start - 1}."
        )
    below = "results below float32's normal range are"
    if t.flush and flush_matters(t):
        out.append(f"- Release build (-Ofast): {below} 0.")
    elif t.exact and not t.flush and default_flush(schedule.fork):
        if flush_matters(replace(t, flush=True)):
            out.append(f"- Debug build: {below} kept.")
    for w in schedule.warnings:
        where = "" if w.line is None else f" (line {w.line})"
        text = WARNING_CODES.get(w.code)  # every text is non-empty
        what = f" {w.code}{where}: {text}" if text else f"{where}: see cfgsched lint"
        out.append(f"- Warning{what}.")
    out += [
        f"- Layer {layer.index} has a learning_rate multiplier: give its parameters "
        "a group with lr = LEARNING_RATE times it."
        for layer in schedule.layer_lrs
    ]
    return out


def _docstring(t: Run, desc: str, summed: int | None, usage: list[str]) -> str:
    name, ipi = source.safe_name(t.given.source), t.images_per_iteration
    note = f"The loss is the mean over the cfg's batch of {source.images(ipi)}"
    note += " (subdivisions = accumulation)."
    if summed is not None:  # build_optimizer's docstring says how it compensates
        note = (
            f"The loss is summed over SUMMED_IMAGES = {source.images(summed)} per step."
        )
    intro = (
        f"{written_by(t, desc)} {note} Imports only torch and the standard "
        f"library; CFGSCHED records the translation for cfgsched diff {name} --module "
        "FILE."
    )
    title = "darknet learning-rate schedule of {} as a PyTorch scheduler."
    return "\n".join(doc_head(t, title, intro) + usage)


def written_by(t: Run, desc: str, *, formula: bool = True) -> str:
    """The docstring's first sentences: cfgsched version, fork, policy, ``desc``."""
    schedule = t.given
    fork = schedule.fork if schedule.fork in FORK_PROJECTS else "alexeyab"
    arith = "float32, bit for bit" if t.exact else "double, not bit-exact"
    how = f" in darknet's formula ({arith})" if formula else ""
    return (
        f"Written by cfgsched {__version__} for fork {fork} ({FORK_PROJECTS[fork]}), "
        f"policy {schedule.policy.name.lower()}{how}: {desc}. {mapping(t)}"
    )


def doc_head(t: Run, title: str, intro: str) -> list[str]:
    """A docstring's ``title`` ({}: the cfg's name), ``intro``, the translation choices
    wrapped and a blank line after them (none without choices)."""
    title = title.format(source.safe_name(t.given.source))
    lines = [line for c in choices(t) for line in source.wrap(c)]
    return [title, "", *source.wrap(intro), "", *lines, *([""] if lines else [])]


def fit_paragraphs(t: Run, fit: Fit, desc: str, use: str) -> tuple[str, list[str]]:
    """An approximation's intro (``desc``, then ``use``) and its measured error."""
    return f"{written_by(t, desc, formula=False)} {use}", [
        f"- {r}" for r in fit.comment()
    ]


def comment(paragraph: str, mark: str = "#") -> list[str]:
    """``paragraph`` as wrapped comment lines starting with ``mark`` and a space."""
    width = source.LINE_LENGTH - len(mark) - 1
    return [f"{mark} {line}".rstrip() for line in source.wrap(paragraph, width)]


def _lightning(scaled: bool, hook: bool, rescale: bool) -> str:
    """configure_optimizers; with layer rules it reads ``self.darknet_layers``."""
    layers = "    layers = self.darknet_layers  # the modules by darknet layer number\n"
    return _LIGHTNING.format(
        layers=layers if scaled or hook else "",
        model=", layers" if scaled else "",
        attach="    attach_layers(optimizer, layers)\n" if hook else "",
        rescale=", rescale=True" if rescale else "",
    )


def _usage(
    fmt: str, with_optimizer: bool, adam: bool, name: str, note: str, *flags: bool
) -> list[str]:
    """The usage example importing this file as ``name`` (flags: scaled, hook, rescale)."""
    scaled, hook, own_scale = flags
    first = [f"    import {name}  # this file {note}".rstrip()]
    if fmt == "lightning":
        mention = "        # self.darknet_layers: the modules by darknet layer number"
        return [
            *first,
            "    class Model(lightning.LightningModule):",
            f"        configure_optimizers = {name}.configure_optimizers",
            *([mention] if scaled or hook else []),
        ]
    layers = ["    layers = model.module_list  # the modules by darknet layer number"]
    layers = layers if scaled or hook else []
    of = f"{name}." if with_optimizer else ""
    if with_optimizer:
        first += [
            *layers,
            f"    optimizer = {of}build_optimizer(model{', layers' * scaled})",
        ]
    else:
        names = (
            f"DECAY, LEARNING_RATE, MOMENTUM, {'attach_layers, ' * hook}build_scheduler"
        )
        first = [f"    from {name} import {names}  # this file {note}".rstrip()]
        if len(first[0]) > source.LINE_LENGTH:
            first = [
                f"    from {name} import (  # this file",
                f"        {names},",
                "    )",
            ]
            first += [f"    # {note}"] if note else []
        adam_note = "  # adam=1: convert --with-optimizer builds Adam" if adam else ""
        first += [
            "    optimizer = torch.optim.SGD(",
            "        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, "
            "weight_decay=DECAY",
            f"    ){adam_note}",
            *layers,
        ]
    first += [f"    {of}attach_layers(optimizer, layers)"] if hook else []
    rescale = ", rescale=True" if own_scale else ""
    last = f"    scheduler = {of}build_scheduler(optimizer{rescale})"
    step = "# step it after each optimizer.step()"
    gap = "\n    " if len(f"{last}  {step}") > source.LINE_LENGTH else "  "
    return [*first, f"{last}{gap}{step}"]
