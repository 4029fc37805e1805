"""Writing Python source ``ruff format`` leaves unchanged: literals, wrapped sequences,
imports, module layout."""

from __future__ import annotations

import keyword
import math
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from cfgsched.kernel.formulas import f32_decimal

#: Line length of the generated source (ruff's default).
LINE_LENGTH = 88
#: Characters a string literal of ours may hold (names, versions, schema names).
_SAFE_TEXT = re.compile(r"[A-Za-z0-9._/ -]*")
#: The strings a keyword argument may hold: ``type=`` names of MMEngine's configs.
_TYPES = frozenset(
    "LinearLR MultiStepLR ExponentialLR PolyLR CosineRestartLR OptimWrapper SGD Adam".split()
)


class CodegenError(ValueError):
    """The source cannot be generated as asked (a bad option or an unsafe value)."""


def safe_name(name: str) -> str:
    """``name``'s last path part (80 characters), any outside ``[A-Za-z0-9._-]`` as _."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", re.split(r"[\\/]", name)[-1])[:80] or "cfg"


def import_name(output: str | None, default: str) -> tuple[str, str]:
    """The name the usage imports ``output`` by, and a note when it is no module name."""
    if output in (None, "-"):
        return default, ""
    stem, dot, ext = re.split(r"[\\/]", output)[-1].rpartition(".")
    ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,59}", stem) and ext == "py" and dot
    if ok and not keyword.iskeyword(stem):
        return stem, ""
    return default, f"(save it as {default}.py: its file name is not a module name)"


def images(n: int) -> str:
    """``n images`` (``1 image``)."""
    return f"{n} image" if n == 1 else f"{n} images"


def num(x: object) -> str:
    """Source of an int or float that evaluates to exactly ``x`` (``math`` for NaN/inf)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise CodegenError(f"not a number: {type(x).__name__}")
    if isinstance(x, int):
        return str(int(x))
    x = float(x)
    if not math.isfinite(x):  # -math.nan: a NaN with its sign bit set
        sign = "-" if math.copysign(1.0, x) < 0 else ""
        return f"{sign}math.{'nan' if math.isnan(x) else 'inf'}"
    return repr(x)


def float32(x: float, exact: bool) -> str:
    """A float32 value: its shortest decimal d, f32(d) when needed (double: not exact)."""
    x = float(x)
    if not exact or not math.isfinite(x) or x == 0:
        return num(x)
    d = f32_decimal(x)
    return repr(d) if d == x else f"f32({d!r})"


def text(s: str) -> str:
    """A string literal of ours (``"..."``); refuses anything outside the safe alphabet."""
    if not _SAFE_TEXT.fullmatch(s):
        raise CodegenError(f"internal: unsafe text {s!r}")
    return f'"{s}"'


def literal(x: object) -> str:
    """Source of None, a bool, a number or a safe string."""
    if x is None or isinstance(x, bool):
        return repr(x)
    return text(x) if isinstance(x, str) else num(x)


def dict_source(name: str, d: dict[str, object], indent: int = 0) -> str:
    """``NAME = {...}`` one entry per line, nested dicts likewise (ruff's layout)."""
    pad = " " * (indent + 4)
    out = [f"{name} = {{" if name else "{"]
    for k, v in d.items():
        value = dict_source("", v, indent + 4) if isinstance(v, dict) else literal(v)
        out.append(f"{pad}{text(k)}: {value},")
    out.append(" " * indent + "}")
    return "\n".join(out)


def kwargs(d: dict[str, Any]) -> list[str]:
    """``key=value`` arguments (numbers, lists, tuples, nested dicts as ``dict(...)``)."""
    return [f"{key}={_kwarg(key, value)}" for key, value in d.items()]


def _kwarg(key: str, value: Any) -> str:
    if not key.isidentifier():
        raise CodegenError(f"internal: bad config key {key!r}")
    if isinstance(value, str) and (key != "type" or value not in _TYPES):
        raise CodegenError(f"internal: unexpected config string {value!r}")
    if isinstance(value, dict):
        return f"dict({', '.join(kwargs(value))})"
    if isinstance(value, list | tuple):
        items = ", ".join(num(v) for v in value)
        return f"[{items}]" if isinstance(value, list) else f"({items})"
    return literal(value)


def seq(items: Sequence[str], indent: int, prefix: str) -> str:
    """``prefix(items)`` (a tuple) on one line when it fits, else one item per line."""
    inner = ", ".join(items) + ("," if len(items) == 1 else "")
    one = f"{' ' * indent}{prefix}({inner})"
    if len(one) <= LINE_LENGTH or not items:
        return one
    body = "".join(f"{' ' * (indent + 4)}{it},\n" for it in items)
    return f"{' ' * indent}{prefix}(\n{body}{' ' * indent})"


def call(head: str, args: Sequence[str], indent: int, tail: str = "") -> str:
    """``head(args)tail`` on one line, the arguments on one line, or one per line."""
    sp, pad = " " * indent, " " * (indent + 4)
    if len(one := f"{sp}{head}({', '.join(args)}){tail}") <= LINE_LENGTH:
        return one
    if len(mid := f"{pad}{', '.join(args)}") <= LINE_LENGTH:
        return f"{sp}{head}(\n{mid}\n{sp}){tail}"
    body = ""
    for a in args:
        m = re.fullmatch(r"(\w+=)\[(.*)\]", a)
        if len(pad + a) + 1 > LINE_LENGTH and m:
            items = "".join(f"{pad}    {x},\n" for x in m.group(2).split(", "))
            body += f"{pad}{m.group(1)}[\n{items}{pad}],\n"
        else:
            body += f"{pad}{a},\n"
    return f"{sp}{head}(\n{body}{sp}){tail}"


#: (pattern in the code, import line): what the code uses decides what is imported.
_IMPORTS: tuple[tuple[str, str, str], ...] = (
    (r"\bctypes\.", "import ctypes", ""),
    (r"\bfind_library\(", "ctypes.util", "find_library"),
    (r"\bmath\.", "import math", ""),
    (r"\bwarnings\.", "import warnings", ""),
    (r"\bbisect_right\(", "bisect", "bisect_right"),
    (r"\bIterator\[", "collections.abc", "Iterator"),
    (r"\bMapping\)", "collections.abc", "Mapping"),
    (r"\baccumulate\(", "itertools", "accumulate"),
    (r"\bislice\(", "itertools", "islice"),
    (r"\bAny\b", "typing", "Any"),
    (r"\btorch\.", "import torch", ""),
    (r"\bOptimizer\b", "torch.optim", "Optimizer"),
    (r"\bLRScheduler\b", "torch.optim.lr_scheduler", "LRScheduler"),
    (r"\b_ParamScheduler\b", "mmengine.optim.scheduler", "_ParamScheduler"),
    (r"\bINF\b", "mmengine.optim.scheduler.param_scheduler", "INF"),
    (r"\bPARAM_SCHEDULERS\b", "mmengine.registry", "PARAM_SCHEDULERS"),
    *(
        (rf"\b{name}\(", "torch.optim.lr_scheduler", name)
        for name in "ChainedScheduler ConstantLR ExponentialLR LinearLR MultiStepLR "
        "PolynomialLR StepLR".split()
    ),
)


def imports(code: str) -> str:
    """The import block ``code`` needs, in isort order."""
    code = re.sub(r"(?:^|\s)#.*$", "", code, flags=re.M)  # comments need no imports
    found: dict[str, list[str]] = {}
    for pattern, what, name in _IMPORTS:
        if re.search(pattern, code):
            found.setdefault(what, []).append(name)
    groups = []
    for third in (False, True):  # isort: the standard library, then mmengine and torch
        mods = [
            m for m in found if m.split()[-1].startswith(("mmengine", "torch")) == third
        ]
        lines = []
        for m in sorted(mods, key=lambda m: (not m.startswith("import "), m)):
            names = sorted(found[m], key=str.lower)  # isort: case-insensitive
            line = f"from {m} import {', '.join(names)}" if names[0] else m
            if len(line) > LINE_LENGTH:
                line = (
                    f"from {m} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
                )
            lines.append(line)
        groups += ["\n".join(lines)] if lines else []
    return "\n\n".join(groups)


def module(docstring: str, blocks: Sequence[str]) -> str:
    """A module: docstring, imports derived from the blocks, the blocks two lines apart."""
    if '"""' in docstring or "\\" in docstring:
        raise CodegenError("internal: docstring would not be a plain literal")
    body = "\n\n\n".join(b.strip("\n") for b in blocks if b.strip())
    head = f'"""{docstring.strip()}\n"""\n\n'
    imp = imports(body)
    return head + (imp + "\n\n" if imp else "") + body + "\n"


def wrap(paragraph: str, width: int = LINE_LENGTH, indent: str = "") -> list[str]:
    """Greedy word wrap of one paragraph (a ``- `` item continues two spaces in)."""
    cont = indent + ("  " if paragraph.startswith("- ") else "")
    lines = textwrap.wrap(
        paragraph,
        width,
        initial_indent=indent,
        subsequent_indent=cont,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [""]
