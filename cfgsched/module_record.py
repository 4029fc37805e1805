"""The ``CFGSCHED`` record of a generated module, read without running or parsing the module.

``convert`` writes the record (a literal dict, schema :data:`MODULE_SCHEMA`) near the top
of every module; ``diff --module`` reads it to know what the module was made for. Only the
record's own statement is parsed, so memory stays bounded for any module size.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
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
    """Line and text of the first top-level ``CFGSCHED =`` (or ``CFGSCHED: T =``)
    statement, found by tokenizing up to it (the file is never parsed whole)."""
    indent = depth = 0
    new_line, name_at, first = True, 0, 0
    try:
        for tok in tokenize.tokenize(io.BytesIO(data).readline):
            t, s = tok.type, tok.string
            if first and t in (tokenize.NEWLINE, tokenize.ENDMARKER):
                return first, "\n".join(_lines(data, first, tok.start[0]))
            indent += (t == tokenize.INDENT) - (t == tokenize.DEDENT)
            if t == tokenize.OP:
                depth += (s in "([{") - (s in ")]}")
                first = first or (name_at if s in ("=", ":") else 0)
            top = new_line and indent == 0 and t == tokenize.NAME
            name_at = tok.start[0] if top and s == "CFGSCHED" else 0
            new_line = t in (tokenize.NEWLINE, tokenize.ENCODING, tokenize.DEDENT) or (
                new_line and t in (tokenize.NL, tokenize.COMMENT)
            )
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError) as exc:
        msg = exc.args[0] if exc.args else type(exc).__name__
        raise CfgError(path, None, None, f"not valid Python: {msg}") from None
    return None


def _lines(data: bytes, first: int, last: int) -> list[str]:
    """Lines ``first .. last`` (1-based) of ``data``, decoded."""
    out = data.split(b"\n", last)[first - 1 : last]
    return [line.decode("utf-8", errors="replace") for line in out]


def read_record(path: str, data: bytes | None = None) -> ModuleRecord:
    """The ``CFGSCHED`` record of the module file ``path`` (or its bytes ``data``).

    No record, another schema, an unknown fork or invalid options raise a
    :class:`CfgError` naming the file; the module is never run.
    """
    data = module_bytes(path) if data is None else data
    found = _statement(data, path)
    if found is None:
        raise CfgError(
            path,
            None,
            None,
            f"no CFGSCHED record ({MODULE_SCHEMA}): diff --module checks modules written "
            "by cfgsched convert",
        )
    line, text = found
    if len(text) > MAX_RECORD_CHARS:
        raise CfgError(path, line, "CFGSCHED", f"over {MAX_RECORD_CHARS} characters")
    try:
        node = ast.parse(text).body[0]
        assert isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
        raw = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, AssertionError, RecursionError):
        raise CfgError(
            path, line, "CFGSCHED", "the record is not a literal dict"
        ) from None
    return _parse_record(path, line, raw)


def _clip(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_record(path: str, line: int, raw: Any) -> ModuleRecord:
    def bad(message: str) -> CfgError:
        return CfgError(path, line, "CFGSCHED", message)

    if not isinstance(raw, dict) or raw.get("schema") != MODULE_SCHEMA:
        got = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise bad(f"schema {_clip(got)}, expected {MODULE_SCHEMA!r}")
    fork = raw.get("fork")
    if fork not in FORKS:
        raise bad(f"fork {_clip(fork)} is not one of {', '.join(FORKS)}")
    try:
        options = Options.from_record(raw.get("options"))
    except (ValueError, TypeError) as exc:
        raise bad(f"options: {exc}") from None
    text = {k: raw.get(k, "") for k in ("version", "cfg", "format", "style")}
    if not all(isinstance(v, str) for v in text.values()):
        raise bad("version, cfg, format and style must be strings")
    return ModuleRecord(fork, options, **text)


def record_conflicts(
    record: Options, given: Options, names: Iterable[str], fork: str
) -> list[str]:
    """``name: record vs given`` for each option in ``names`` (the ones given on the command
    line) that contradicts the record; ``flush`` compares its effect on ``fork``."""
    wanted = set(names)
    if "flush" in wanted and record.flushes(fork) == given.flushes(fork):
        wanted.discard("flush")
    return [d for d in record.differences(given) if d.split(":", 1)[0] in wanted]
