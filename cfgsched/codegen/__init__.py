"""Standalone code from a schedule: what ``cfgsched convert`` writes.

One emitter per output format (:mod:`cfgsched.codegen.python` for the Python and
Lightning modules, :mod:`cfgsched.codegen.json_doc` for JSON), darknet's formula per policy
in :mod:`cfgsched.codegen.formulas`. A generated module holds only what its cfg, fork,
policy and translation need, written out for a reader; it does not share code with the
library (the golden tests keep the two equal). Rule: no string from the cfg reaches the
source; only numbers (float32 values as ``f32(<shortest decimal>)``, exact), names and
text of cfgsched's own, and the cfg file name reduced to ``[A-Za-z0-9._-]``.
"""

from __future__ import annotations

from cfgsched.codegen.json_doc import JSON_SCHEMA, json_document
from cfgsched.codegen.python import MODULE_SCHEMA, python_module
from cfgsched.codegen.source import CodegenError, safe_name
from cfgsched.errors import NotExactError
from cfgsched.schedule import NetSchedule
from cfgsched.translation import Options

__all__ = [
    "FORMATS",
    "JSON_SCHEMA",
    "MODULE_SCHEMA",
    "STYLES",
    "CodegenError",
    "generate",
    "safe_name",
]

STYLES = ("class", "native")
FORMATS = ("python", "lightning", "json")


def generate(
    schedule: NetSchedule,
    options: Options | None = None,
    *,
    style: str = "class",
    fmt: str = "python",
    with_optimizer: bool = False,
) -> str:
    """The text of a standalone module (``fmt="python"``/``"lightning"``) or a JSON document
    for ``schedule`` translated by ``options`` (default :class:`Options`).

    ``style="native"`` builds the scheduler from torch built-ins and raises
    :class:`cfgsched.NotExactError` when none is exact. The Lightning format always
    includes ``build_optimizer``. Raises :class:`CodegenError` for a bad style or format.
    """
    if style not in STYLES:
        raise CodegenError(f"style must be one of {STYLES}, got {style!r}")
    if fmt not in FORMATS:
        raise CodegenError(f"format must be one of {FORMATS}, got {fmt!r}")
    if options is None:
        options = Options()
    if not isinstance(options, Options):
        raise CodegenError(f"options must be an Options, got {type(options).__name__}")
    try:
        if fmt == "json":
            return json_document(schedule, options, style=style)
        return python_module(
            schedule, options, style=style, fmt=fmt, with_optimizer=with_optimizer
        )
    except ValueError as exc:
        if isinstance(exc, NotExactError | CodegenError):
            raise
        raise CodegenError(str(exc)) from None
