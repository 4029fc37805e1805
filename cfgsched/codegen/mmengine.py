"""``--format mmengine``: darknet's schedule for MMEngine (and so MMDetection) configs.

``style="class"``: the exact module (its docstrings say how it is used); ``"native"``:
built-ins fitted by :func:`cfgsched.adapters.approx.fit_mmengine` (an approximation).

Pinned facts of MMEngine 0.10.7: ``ParamSchedulerHook.after_train_iter`` steps every
``by_epoch=False`` scheduler after each iteration; the Runner builds the schedulers
(default ``end`` = max iterations) before it loads a checkpoint, then calls
``load_state_dict``; ``OptimWrapper.update_params`` divides the loss by
``accumulative_counts`` and steps every ``accumulative_counts`` iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cfgsched.adapters import MMENGINE_VERSION
from cfgsched.codegen import source
from cfgsched.codegen.policy_text import LrCode, lr_code
from cfgsched.codegen.python import (
    comment,
    doc_head,
    fit_paragraphs,
    formula_blocks,
    no_ratio,
    record,
    versus_cfg,
    warn_rescaled,
    written_by,
)
from cfgsched.codegen.source import call, images, kwargs, num, text
from cfgsched.kernel.formulas import f32_decimal
from cfgsched.run import Run
from cfgsched.schedule import NetSchedule

if TYPE_CHECKING:
    from cfgsched.adapters.approx import Fit

_CLASS = '''@PARAM_SCHEDULERS.register_module(force=True)  # a second import is harmless
class DarknetParamScheduler(_ParamScheduler):
    """lr_at(k) after k optimizer updates, in each group times its initial lr /
    LEARNING_RATE (exactly 1 for a group created with LEARNING_RATE).

    Iteration based: MMEngine's ParamSchedulerHook calls step() after every iteration,
    and the LR moves on only when the optimizer has updated since (MMEngine counts its
    step() calls in optimizer._global_step), so with accumulative_counts > 1 update k
    still uses lr_at(k - 1). last_step=k - 1 resumes with k updates done. A group lr
    not LEARNING_RATE scales its LRs, warning unless rescale=True.
    """

    def __init__(
        self,
        optimizer: Any,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = False,
        verbose: bool = False,
        rescale: bool = False,
    ) -> None:
        if by_epoch or begin != 0:
            raise ValueError("DarknetParamScheduler needs by_epoch=False and begin=0")
        if last_step != -1:  # resuming: a group without initial_lr starts from its lr
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.updates = {start}last_step + 1  # optimizer updates done
        self.counted = -1  # the optimizer's _global_step when step() last looked
        self.ratios: list[float] = []  # each group's initial lr / LEARNING_RATE
        super().__init__(optimizer, "lr", begin, end, last_step, by_epoch, verbose){warn}

    def step(self) -> None:
        """Count the optimizer updates since the last call, then set the LR."""
        self.updates += self.optimizer._global_step - self.counted
        self.counted = self.optimizer._global_step
        super().step()

    def _get_value(self) -> list[float]:
        if not self.ratios:
{ratios}
        lr = lr_at(self.updates)
        return [lr * ratio for ratio in self.ratios]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the count (this run's optimizer counts from -1) and set its LR."""
        super().load_state_dict(state_dict)
        self.counted = self.optimizer._global_step
        groups = self.optimizer.param_groups
        self._last_value = self._get_value()
        for group, lr in zip(groups, self._last_value, strict=True):
            group["lr"] = lr'''

_RATIOS = """            self.ratios = [
                1.0 if {same} else base / LEARNING_RATE
                for base in self.base_values
            ]"""

_RATIOS_ONE = (
    "            self.ratios = [1.0] * len(self.base_values)  # LEARNING_RATE has none"
)

_CONFIG = """#: The config's param_scheduler (by_epoch=False: the Runner reads it for its end).
param_scheduler = [dict(type="DarknetParamScheduler", by_epoch=False)]
{about}
{wrapper}"""

_RESUME = (
    "Resuming (resume=True) restores the scheduler's state_dict. MMEngine {v} loads "
    "checkpoints with torch.load's default, which torch 2.6 and later make "
    "weights_only: set the environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 to "
    "resume (for checkpoints you trust)."
)


def mmengine_module(t: Run, output: str | None) -> str:
    """The text of the exact module (``style="class"``)."""
    schedule, code = t.given, lr_code(t)
    ratios = _RATIOS.format(same=versus_cfg(t, "base", "=="))
    ratios = _RATIOS_ONE if no_ratio(t) else ratios
    warn = warn_rescaled(t, "self.base_values", 8)
    warn = warn and "\n" + warn.rstrip("\n")
    start = "RESUME_STEP + " if t.start else ""
    kind = "Adam" if schedule.adam else "SGD with plain momentum"
    about = (
        f"darknet's optimizer: {kind}, weight decay on conv and linear weights, not on "
        "norms and biases; train_dataloader batch_size x accumulative_counts x GPUs = "
        f"{images(t.images_per_step)} (MMEngine averages the loss over them, as darknet "
        "does)."
    )
    config = _CONFIG.format(
        about="\n".join(comment(about, "#:")), wrapper="\n".join(_wrapper(schedule))
    )
    doc = "after ``step`` optimizer updates (0-based)"
    blocks = formula_blocks(t, code, "mmengine", "class", None, doc)
    cls = _CLASS.format(start=start, ratios=ratios, warn=warn)
    return source.module(_docstring(t, code, output), [*blocks, cls, config])


def _wrapper(
    schedule: NetSchedule, indent: int = 0, show: Callable[[str], str] = str
) -> list[str]:
    """``optim_wrapper = dict(...)``: darknet's optimizer and decay rule; ``show`` turns
    a constant's name into the text written for it."""
    opt = [f"type={text('Adam' if schedule.adam else 'SGD')}"]
    opt.append(f"lr={show('LEARNING_RATE')}")
    if schedule.adam:
        opt += [f"betas=({show('B1')}, {show('B2')})", f"eps={show('EPS')}"]
    else:
        opt.append(f"momentum={show('MOMENTUM')}")
    opt.append(f"weight_decay={show('DECAY')}")
    pad = " " * indent
    return [
        f"{pad}optim_wrapper = dict(",
        f"{pad}    type={text('OptimWrapper')},",
        *call("optimizer=dict", opt, indent + 4, ",").splitlines(),
        f"{pad}    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),",
        f"{pad})",
    ]


def _docstring(t: Run, code: LrCode, output: str | None) -> str:
    intro = (
        f"{written_by(t, 'DarknetParamScheduler, a closed form')} Importing "
        "this file registers DarknetParamScheduler in MMEngine's PARAM_SCHEDULERS "
        f"(tested with MMEngine {MMENGINE_VERSION}); CFGSCHED records the translation."
    )
    lines = doc_head(
        t, "darknet learning-rate schedule of {} for MMEngine (exact).", intro
    )
    module, note = source.import_name(output, "darknet_lr")
    where = f"this file importable, e.g. next to it{note and ' ' + note[1:-1]}"
    lines += [*source.wrap(f"In the config ({where}):"), ""]
    lines += [
        f'    custom_imports = dict(imports=["{module}"], allow_failed_imports=False)',
        '    param_scheduler = [dict(type="DarknetParamScheduler", by_epoch=False)]',
    ]

    def show(name: str) -> str:  # the value of a constant, as the config writes it
        value = t.cfg_lr if name == "LEARNING_RATE" else getattr(t.given, name.lower())
        return num(f32_decimal(value) if code.exact else value)

    lines += [*_wrapper(t.given, 4, show), ""]
    return "\n".join([*lines, *source.wrap(_RESUME.format(v=MMENGINE_VERSION))])


# ----------------------------------------------------------------------------- native


def native_config(t: Run, fit: Fit) -> str:
    """The approximation (``style="native"``): a config snippet of built-ins, the
    measured error in the docstring and as comments above ``param_scheduler``."""
    desc = "MMEngine's built-in schedulers fitted to darknet's rate"
    use = (
        "Paste param_scheduler and optim_wrapper into the config (no custom_imports "
        "needed)."
    )
    intro, report = fit_paragraphs(t, fit, desc, use)
    title = "MMEngine built-ins approximating darknet's schedule of {} (not exact)."
    lines = doc_head(t, title, intro)
    for r in report:
        lines += source.wrap(r)
    comments = [line for r in report for line in comment(r)]
    scheds = [call("dict", kwargs(s), 4, ",") for s in fit.schedulers]
    body = "\n".join(["param_scheduler = [", *scheds, "]"])
    if not fit.schedulers:
        body = "param_scheduler: list[dict] = []  # the constant LR needs none"
    blocks = [
        source.dict_source("CFGSCHED", record(t, "mmengine", "native")),
        "\n".join([*comments, body]),
        call("optim_wrapper = dict", kwargs(fit.optim_wrapper), 0),
    ]
    return source.module("\n".join(lines), blocks)
