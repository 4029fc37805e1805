"""The ``CFGSCHED`` record (a literal dict) that ``convert`` writes near the top of every
module and ``diff --module`` reads: only the record's statement is parsed, nothing is run."""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from tokenize import COMMENT, DEDENT, ENCODING, NL
from typing import Any

from cfgsched.errors import CfgError
from cfgsched.files import read_regular
from cfgsched.options import Options
from cfgsched.schedule import FORKS

#: Schema name of the ``CFGSCHED`` record in a generated module.
MODULE_SCHEMA = "cfgsched-module/1"
#: Largest module file read (bytes).
MAX_MODULE_BYTES = 16 * 1024 * 1024
#: Largest record statement parsed (characters); generated records are about 600.
MAX_RECORD_CHARS = 64 * 1024
_RECORD = (["CFGSCHED", "="], ["CFGSCHED", ":"])
_SKIP = (NL, COMMENT, DEDENT, ENCODING)  # an INDENT starts an indented line


@dataclass(frozen=True)
class ModuleRecord:
    """A module's ``CFGSCHED`` record: fork, translation options and provenance."""

    fork: str
    options: Options
    version: str = ""
    cfg: str = ""
    format: str = ""
    style: str = ""


def module_bytes(path: str) -> bytes:
    """The bytes of the regular file ``path`` (at most :data:`MAX_MODULE_BYTES`)."""
    try:
        data = read_regular(path, MAX_MODULE_BYTES)
    except OSError as exc:
        raise CfgError(path, None, None, exc.strerror or "cannot read") from None
    if len(data) > MAX_MODULE_BYTES:
        raise CfgError(path, None, None, f"larger than {MAX_MODULE_BYTES} bytes")
    return data


def _statement(data: bytes, path: str) -> tuple[int, str] | None:
    """Line and text of the first top-level ``CFGSCHED =`` (or ``CFGSCHED: T =``)."""
    head: list[tokenize.TokenInfo] = []  # the first two tokens of the logical line
    try:
        for tok in tokenize.tokenize(io.BytesIO(data).readline):
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if [t.string for t in head] in _RECORD and head[0].start[1] == 0:
                    first, last = head[0].start[0], tok.start[0]
                    text = b"\n".join(data.split(b"\n", last)[first - 1 : last])
                    return first, text.decode("utf-8", errors="replace")
                head = []
            elif tok.type not in _SKIP and len(head) < 2:
                head.append(tok)
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError) as exc:
        msg = exc.args[0] if exc.args else type(exc).__name__
        raise CfgError(path, None, None, f"not valid Python: {msg}") from None
    return None


def read_record(path: str, data: bytes | None = None) -> ModuleRecord:
    """The record of the module file ``path`` (or its bytes ``data``); a missing or
    invalid one is a :class:`CfgError` naming the file."""
    found = _statement(module_bytes(path) if data is None else data, path)
    if found is None:
        raise CfgError(
            path, None, None, f"no CFGSCHED record ({MODULE_SCHEMA}): diff --module "
            "checks modules written by cfgsched convert",
        )  # fmt: skip
    line, text = found

    def bad(message: str) -> CfgError:
        return CfgError(path, line, "CFGSCHED", message)

    if len(text) > MAX_RECORD_CHARS:
        raise bad(f"over {MAX_RECORD_CHARS} characters")
    try:
        node = ast.parse(text).body[0]
        assert isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
        raw = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, AssertionError, RecursionError):
        raise bad("the record is not a literal dict") from None
    if not isinstance(raw, dict) or raw.get("schema") != MODULE_SCHEMA:
        got = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise bad(f"schema {clip(got)}, expected {MODULE_SCHEMA!r}")
    if raw.get("fork") not in FORKS:
        raise bad(f"fork {clip(raw.get('fork'))} is not one of {', '.join(FORKS)}")
    try:
        options = Options.from_record(raw.get("options"))
    except (ValueError, TypeError) as exc:
        raise bad(f"options: {exc}") from None
    about = {k: raw.get(k, "") for k in ("version", "cfg", "format", "style")}
    if not all(isinstance(v, str) for v in about.values()):
        raise bad("version, cfg, format and style must be strings")
    return ModuleRecord(raw["fork"], options, **about)


def clip(x: Any, limit: int = 60) -> str:
    """``repr(x)``, at most ``limit`` characters (a failing repr shows the type)."""
    try:
        text = repr(x)
    except Exception:  # a user object whose repr fails
        text = f"<{type(x).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
