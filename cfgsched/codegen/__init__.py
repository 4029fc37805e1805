"""What ``cfgsched convert`` writes, one emitter per format; no string of the cfg's
reaches the source (only numbers, our text and the file name made safe)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfgsched.codegen.json_doc import JSON_SCHEMA, json_document
from cfgsched.codegen.mmengine import mmengine_module, native_config
from cfgsched.codegen.python import MODULE_SCHEMA, python_module
from cfgsched.codegen.source import CodegenError, safe_name
from cfgsched.codegen.ultralytics import HYP_HEAD, hyp_yaml, ultralytics_module
from cfgsched.errors import CfgError, NotExactError
from cfgsched.files import read_regular
from cfgsched.module_record import read_record
from cfgsched.options import Options
from cfgsched.run import Run, translate
from cfgsched.schedule import NetSchedule

__all__ = [
    "FORMATS",
    "JSON_SCHEMA",
    "MODULE_SCHEMA",
    "STYLES",
    "CodegenError",
    "Generated",
    "generate",
    "render",
    "safe_name",
    "written_by_convert",
]

STYLES = ("class", "native")
FORMATS = ("python", "lightning", "json", "ultralytics", "ultralytics-hyp", "mmengine")
#: Longest run (optimizer steps, and darknet batches) an approximation is fitted over.
MAX_FIT_STEPS = 10_000_000
#: Formats whose optimizer a summed loss changes (``loss_reduction="sum"``).
SUMMED_FORMATS = ("python", "lightning", "ultralytics")


@dataclass(frozen=True)
class Generated:
    """The text to write and, for an approximation, the lines of its measured error."""

    text: str
    report: tuple[str, ...] = ()


def generate(schedule: NetSchedule, options: Options | None = None, **kw: Any) -> str:
    """:func:`render`'s text (an approximation's report left out)."""
    return render(schedule, options, **kw).text


def render(
    schedule: NetSchedule,
    options: Options | None = None,
    *,
    style: str = "class",
    fmt: str = "python",
    with_optimizer: bool = False,
    loss_reduction: str = "mean",
    summed_images: int | None = None,
    images: int | None = None,
    batch: int | None = None,
    output: str | None = None,
) -> Generated:
    """The text of ``fmt`` (:data:`FORMATS`) for ``schedule`` translated by ``options``;
    :class:`CodegenError` for a bad choice or no approximation."""
    options = _check(
        options,
        style,
        fmt,
        with_optimizer,
        loss_reduction,
        summed_images,
        images,
        batch,
    )
    try:
        t = translate(schedule, options)
        summed = None
        if loss_reduction == "sum":  # by default the images of a step (or batch)
            ips = t.images_per_step if fmt == "ultralytics" else t.images_per_iteration
            summed = summed_images or ips
        if fmt == "ultralytics-hyp" or (fmt == "mmengine" and style == "native"):
            return _approximation(t, fmt, images, batch)
        if fmt == "json":
            return Generated(json_document(t, style))
        if fmt == "ultralytics":
            return Generated(ultralytics_module(t, summed, output))
        if fmt == "mmengine":
            return Generated(mmengine_module(t, output))
        return Generated(python_module(t, style, fmt, with_optimizer, summed, output))
    except (NotExactError, CodegenError, CfgError):
        raise
    except ValueError as exc:
        raise CodegenError(str(exc)) from None


def _check(
    options: Options | None,
    style: str,
    fmt: str,
    with_optimizer: bool,
    summing: str,  # the loss reduction
    summed: int | None,
    images: int | None,
    batch: int | None,
) -> Options:
    """The options (default: ``Options()``); a bad choice is a :class:`CodegenError`
    naming convert's flags (the CLI's one-line error)."""
    if style not in STYLES:
        raise CodegenError(f"--style must be one of {STYLES}, got {style!r}")
    if fmt not in FORMATS:
        raise CodegenError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "ultralytics" and style == "native":
        raise CodegenError(
            "--format ultralytics has no --style native: --format ultralytics-hyp "
            "fits Ultralytics' own schedule (an approximation)"
        )
    if not isinstance(options, Options | None):
        raise CodegenError(f"options must be an Options, got {type(options).__name__}")
    if summing not in ("mean", "sum"):
        raise CodegenError(f"--loss-reduction must be mean or sum, got {summing!r}")
    if summed is not None and summing != "sum":
        raise CodegenError("--summed-images needs --loss-reduction sum")
    if summing == "sum" and fmt not in SUMMED_FORMATS:
        formats = ", ".join(SUMMED_FORMATS)
        raise CodegenError(f"--loss-reduction sum applies to --format {formats}")
    if summing == "sum" and fmt == "python" and not with_optimizer:
        raise CodegenError(
            "--loss-reduction sum changes build_optimizer: add --with-optimizer"
        )
    if summed is not None and (
        isinstance(summed, bool) or not isinstance(summed, int) or summed < 1
    ):
        raise CodegenError(f"--summed-images must be an integer >= 1, got {summed!r}")
    hyp = fmt == "ultralytics-hyp"
    if not hyp and (images is not None or batch is not None):
        what = "--images" if images is not None else "batch"
        raise CodegenError(f"{what} applies to --format ultralytics-hyp only")
    if hyp and images is None:
        raise CodegenError(
            "--format ultralytics-hyp needs --images N (the images in your training set)"
        )
    if hyp and batch is None:
        raise CodegenError(
            "--format ultralytics-hyp needs --torch-batch B (Ultralytics' batch; "
            "--accumulate A makes nbs = B x A)"
        )
    return options or Options()


def _approximation(
    t: Run, fmt: str, images: int | None, batch: int | None
) -> Generated:
    """The fitted configuration and its report (ValueError where none exists: approx
    refuses a run of max_batches 0, a trace run and a policy no built-in follows)."""
    from cfgsched.adapters import approx

    steps = t.params.max_batches * t.images_per_iteration // t.images_per_step
    if max(steps, t.params.max_batches) > MAX_FIT_STEPS:
        raise CodegenError(
            f"max_batches={t.params.max_batches}: a run of {steps:,} optimizer steps is "
            f"too long to fit (at most {MAX_FIT_STEPS:,})"
        )
    if fmt == "mmengine":
        fit = approx.fit_mmengine(t)
        return Generated(native_config(t, fit), tuple(fit.comment()))
    assert images is not None and batch is not None  # _check refused them missing
    fit = approx.fit_ultralytics(t, images=images, batch=batch)
    return Generated(hyp_yaml(t, fit), tuple(fit.comment()))


#: Largest file :func:`written_by_convert` reads (a larger one needs ``--force``).
MAX_OURS_BYTES = 1 << 20
#: Functions and classes a generated module defines at its top level.
_DEFINED = frozenset(
    "f32 c_pow c_exp c_div uniform gpu0_batches gpu0_batch lr_at build_scheduler "
    "build_optimizer configure_optimizers attach DarknetScheduler "
    "DarknetParamScheduler DarknetSteps param_scheduler optim_wrapper attach_layers "
    "layer_parameters eval_mode".split()
)


def written_by_convert(path: Path) -> bool:
    """Whether ``path`` is wholly a module, JSON document or hyp YAML convert writes."""
    try:
        raw = read_regular(str(path), MAX_OURS_BYTES)
        data = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if len(data) > MAX_OURS_BYTES:
        return False
    if data.startswith("{"):
        return _our_json(data)
    if data.startswith(HYP_HEAD):
        return all(
            re.fullmatch(r"#.*|[A-Za-z_]\w*: [\w.+-]+", line)
            for line in data.splitlines()
        )
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    try:  # a valid CFGSCHED record of schema MODULE_SCHEMA
        read_record(str(path), raw)
    except CfgError:
        return False
    doc = ast.get_docstring(tree, clean=False) or ""
    return "Written by cfgsched " in doc and all(_ours(node) for node in tree.body[1:])


def _our_json(data: str) -> bool:
    try:
        doc = json.loads(data)
    except ValueError:
        return False
    keys = {"schema", "version", "cfg", "fork", "format", "style", "options"}
    keys |= {"translation", "schedule"}
    return (
        isinstance(doc, dict)
        and doc.get("schema") in (JSON_SCHEMA, "cfgsched-translation/1")
        and keys <= set(doc) <= keys | {"boundaries", "loss_reduction", "summed_images"}
    )


def _ours(node: ast.stmt) -> bool:
    """An import, constant, ``LIBM`` setting, function or class convert writes."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return node.name in _DEFINED
    if isinstance(node, ast.AnnAssign):
        targets: list[ast.expr] = [node.target]
    else:
        targets = node.targets if isinstance(node, ast.Assign) else []
    names = [ast.unparse(t) for t in targets]
    return bool(names) and all(
        re.fullmatch(r"[A-Z][A-Z0-9_]*|LIBM\.\w+\.\w+", n) or n in _DEFINED
        for n in names
    )
