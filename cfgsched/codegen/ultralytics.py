"""``--format ultralytics``: darknet's exact schedule inside an Ultralytics training run.

The module holds ``lr_at(step)``, ``TRAIN_ARGS`` and ``attach(model)`` (their comments
and docstrings say what each does); ``--format ultralytics-hyp`` is :func:`hyp_yaml`.

Pinned facts of Ultralytics 8.4.190 (``ultralytics/engine/trainer.py``):
``accumulate = max(round(nbs / batch), 1)``, capped at the run's batches; the trainer steps
when ``ni - last_opt_step >= self.accumulate`` with ``last_opt_step = -1`` at every
``train()`` call; ``on_train_start`` runs after the optimizer is built and, on resume, after
its state is loaded; ``optimizer_step`` clips the gradient norm at 10, steps through the
AMP scaler and updates the EMA; ``build_optimizer`` gives SGD Nesterov momentum and puts
weight decay on the "weight" group only; ``save_model`` stores ``optimizer.state_dict()``
(custom group keys included) in ``last.pt``; detection losses are returned times the batch
size and accumulated batches are summed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cfgsched.adapters import ULTRALYTICS_VERSION
from cfgsched.codegen import source
from cfgsched.codegen.policy_text import lr_code
from cfgsched.codegen.python import (
    choices,
    comment,
    doc_head,
    fit_paragraphs,
    formula_blocks,
    written_by,
)
from cfgsched.codegen.source import CodegenError, images, num, safe_name
from cfgsched.run import Run

if TYPE_CHECKING:
    from cfgsched.adapters.approx import Fit

#: The first line of a hyp YAML, up to the cfg's name.
HYP_HEAD = "# Ultralytics hyperparameters approximating darknet's schedule of "

_LOSS_SCALE = """\
#: Ultralytics' loss is a mean times the batch size and accumulated batches add up: a
#: step's gradient is about IMAGES_PER_STEP times that of darknet's mean. The LR is
#: lr_at(step) / LOSS_SCALE{adam} and the weight decay DECAY * LOSS_SCALE: 1 keeps
#: darknet's LR values, IMAGES_PER_STEP gives darknet's step size per image.
LOSS_SCALE = {scale}
#: The key of the optimizer steps done in every parameter group (last.pt saves it).
COUNTER = "cfgsched_step\""""

_TRAIN_ARGS = """\
#: model.train(**TRAIN_ARGS, data=..., epochs=..., batch=B), B dividing IMAGES_PER_STEP.
TRAIN_ARGS = {{
    "optimizer": "{optimizer}",  # not "auto", which picks its own optimizer and lr0
    "lr0": LEARNING_RATE,  # attach() sets the LR before every optimizer step
    "lrf": 1.0,  # Ultralytics' per-epoch factor stays 1
    "cos_lr": False,
    "momentum": {momentum},
    "weight_decay": DECAY,
    "warmup_epochs": 0.0,  # no LR, momentum or accumulation ramp
    "warmup_momentum": {momentum},
    "warmup_bias_lr": 0.0,
    "nbs": IMAGES_PER_STEP,  # batch x accumulate: images per optimizer step
    "amp": False,  # a step the AMP scaler skips would not be counted
    "time": None,
}}"""

_CLASS = '''class DarknetSteps:
    """The callbacks attach() registers: darknet's LR at every optimizer step."""

    def __init__(self) -> None:
        self.accumulate = 1  # batches per optimizer step (Ultralytics' own choice)
        self.batches = 0  # batches per epoch
        self.batch = -1  # the current batch's index in its epoch

    def on_train_start(self, trainer: Any) -> None:
        """Check the run, set darknet's update rule, hook the optimizer."""
        optimizer = trainer.optimizer
        kind = type(optimizer).__name__
        if kind != "{optimizer}":
            raise ValueError(f"train with TRAIN_ARGS: optimizer {optimizer}, not {{kind}}")
        if trainer.args.warmup_epochs:
            raise ValueError("train with TRAIN_ARGS: warmup_epochs must be 0")
        self.accumulate = trainer.accumulate
        if trainer.batch_size * self.accumulate != IMAGES_PER_STEP:
            raise ValueError(
                f"batch {{trainer.batch_size}} x accumulate {{self.accumulate}} is not "
                f"IMAGES_PER_STEP = {{IMAGES_PER_STEP}}: use a batch that divides it"
            )
        done = {{group.get(COUNTER, {start}) for group in optimizer.param_groups}}
        if len(done) != 1:
            raise ValueError(f"the parameter groups disagree on the steps done: {{done}}")
        steps = done.pop()
        for group in optimizer.param_groups:
            group[COUNTER] = steps
{group_rules}
            if group.get("param_group") == "weight":
                group["weight_decay"] = DECAY * LOSS_SCALE
        optimizer.register_step_pre_hook(self.before_step)

    def on_train_epoch_start(self, trainer: Any) -> None:
        self.batches = len(trainer.train_loader)
        self.batch = -1

    def on_train_batch_start(self, trainer: Any) -> None:
        """Ultralytics steps once trainer.accumulate batches have passed since its last
        step: let it step at the end of each window of the whole run, and only there."""
        self.batch += 1
        seen = trainer.epoch * self.batches + self.batch + 1
        trainer.accumulate = 1 if seen % self.accumulate == 0 else math.inf

    @staticmethod
    def before_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        """A torch step pre-hook: each group gets the LR of the coming step."""
        step = optimizer.param_groups[0][COUNTER]
        lr = {lr}
        for group in optimizer.param_groups:
            group["lr"] = lr
            group[COUNTER] = step + 1'''

_SGD_RULES = """            group["nesterov"] = False  # darknet's momentum is plain"""
_ADAM_RULES = """            group["betas"] = (B1, B2)
            group["eps"] = EPS"""

_ATTACH = '''def attach(model: Any) -> DarknetSteps:
    """Register darknet's schedule on an ultralytics.YOLO model, before model.train();
    again on the YOLO object that resumes."""
    steps = DarknetSteps()
    model.add_callback("on_train_start", steps.on_train_start)
    model.add_callback("on_train_epoch_start", steps.on_train_epoch_start)
    model.add_callback("on_train_batch_start", steps.on_train_batch_start)
    return steps'''


def ultralytics_module(t: Run, summed: int | None, output: str | None) -> str:
    """The text of the module (see the module docstring); ``summed`` sets LOSS_SCALE
    (None: 1, darknet's LR values)."""
    code = lr_code(t)
    code.const(  # Ultralytics' nbs, unless the formula already defines it
        "IMAGES_PER_STEP",
        num(t.images_per_step),
        "Images per optimizer step: Ultralytics' batch x accumulate (its nbs).",
    )
    adam = t.given.adam
    optimizer = "Adam" if adam else "SGD"
    cls = _CLASS.format(
        optimizer=optimizer,
        start="RESUME_STEP" if t.start else "0",
        group_rules=_ADAM_RULES if adam else _SGD_RULES,
        lr="lr_at(step)  # Adam's step does not scale with the loss"
        if adam
        else "lr_at(step) / LOSS_SCALE",
    )
    scale = num(1 if summed is None else summed)
    blocks = [
        *formula_blocks(t, code, "ultralytics", "class", summed),
        _LOSS_SCALE.format(scale=scale, adam=" (Adam: lr_at(step))" if adam else ""),
        _TRAIN_ARGS.format(optimizer=optimizer, momentum="B1" if adam else "MOMENTUM"),
        cls,
        _ATTACH,
    ]
    return source.module(_docstring(t, output), blocks)


_USAGE = """    from ultralytics import YOLO
    import NAME  # this file NOTE
    model = YOLO("yolov8n.yaml")
    NAME.attach(model)
    model.train(**NAME.TRAIN_ARGS, data="data.yaml", epochs=100, batch=BATCH)
    # after an interruption: attach to the YOLO object that resumes
    model = YOLO("runs/detect/train/weights/last.pt")
    NAME.attach(model)
    model.train(resume=True)"""


def _docstring(t: Run, output: str | None) -> str:
    schedule = t.given
    module, note = source.import_name(output, "darknet_lr")
    ips = t.images_per_step
    batch = next(b for b in (16, 8, 4, 2, 1) if ips % b == 0)
    momentum = "Adam (adam=1), betas B1, B2" if schedule.adam else "plain momentum"
    intro = (
        f"{written_by(t, 'attach() sets it before every optimizer step')} "
        f"Tested with Ultralytics {ULTRALYTICS_VERSION} in one process. Imports only the "
        "standard library; CFGSCHED records the translation."
    )
    same = (
        "The same as darknet: the LR of every optimizer step in every parameter group "
        "(biases included), across epochs and after resume=True; "
        f"{momentum} (no Nesterov), weight decay on conv and linear weights only; one "
        f"step per IMAGES_PER_STEP = {images(ips)}, as batch x Ultralytics' accumulate "
        "(round(nbs / batch): the batch must divide IMAGES_PER_STEP), in the accumulation "
        "windows of an uninterrupted run."
    )
    differ = (
        "Not the same: the model, data pipeline and loss functions are Ultralytics' (its "
        "loss scale: see LOSS_SCALE, which convert --loss-reduction sum sets to "
        "IMAGES_PER_STEP). Ultralytics also clips the gradient norm at 10 and validates "
        "and saves an EMA of the weights. Layer learning_rate multipliers of the cfg are "
        "not applied."
    )
    title = "darknet learning-rate schedule of {} for Ultralytics (exact)."
    lines = doc_head(t, title, intro)
    usage = _USAGE.replace("BATCH", str(batch)).replace("NAME", module)
    lines += [usage.replace(" NOTE", f" {note}" if note else ""), ""]
    lines += [*source.wrap(same), "", *source.wrap(differ)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- hyp yaml


def hyp_yaml(t: Run, fit: Fit) -> str:
    """``--format ultralytics-hyp``: the fitted train arguments as YAML, the measured
    error in comments (an approximation; never called exact)."""
    desc = "Ultralytics' own schedule fitted to darknet's rate"
    use = (
        'Use: model.train(cfg="hyp.yaml", data="data.yaml") with a dataset of the size '
        "it was fitted for; the values replace Ultralytics' defaults."
    )
    intro, report = fit_paragraphs(t, fit, desc, use)
    lines = [f"{HYP_HEAD}{safe_name(t.given.source)}.", "#"]
    for p in [intro, *choices(t), *report]:
        lines += comment(p)
    for key, value in fit.hyp.items():
        if not key.isidentifier():
            raise CodegenError(f"internal: bad hyp key {key!r}")
        lines.append(f"{key}: {_yaml_value(value)}")
    return "\n".join(lines) + "\n"


def _yaml_value(value: object) -> str:
    """A YAML 1.1 scalar PyYAML reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value in ("SGD", "Adam") or isinstance(value, int):
        return str(value)
    if not isinstance(value, float):
        raise CodegenError(f"internal: unexpected hyp value {value!r}")
    if not math.isfinite(value):
        return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[repr(value)]
    mantissa, e, exp = repr(value).partition("e")
    if e and "." not in mantissa:
        mantissa += ".0"  # YAML 1.1 reads 1e-05 as a string
    return mantissa + e + exp
