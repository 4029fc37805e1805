"""Errors and warnings shared by every part of cfgsched, and the escaping of their text."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: Unicode categories never shown raw: controls (ESC, newline, C1), format characters
#: (U+202E and the other bidi controls, zero-width ones), surrogates, U+2028/U+2029.
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def _escaped(c: str) -> str:
    if unicodedata.category(c) not in _UNSAFE:
        return c
    n = ord(c)
    return (
        f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
    )


def escape(text: str) -> str:
    """``text`` with control, bidi and separator characters escaped (one line, real order)."""
    if text.isprintable():  # no character of those categories: the common case
        return text
    return "".join(map(_escaped, text))


class CfgError(ValueError):
    """A cfg that darknet would crash on or refuse; names the source, line and key."""

    def __init__(
        self, source: str, line: int | None, key: str | None, message: str
    ) -> None:
        self.source, self.line, self.key, self.message = source, line, key, message
        super().__init__(self.oneline())

    def oneline(self) -> str:
        """``source:line: key: message`` on one line (parts that are unknown are left out)."""
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        what = f"{self.key}: " if self.key else ""
        return escape(f"{where}: {what}{self.message}".replace("\n", " "))


class NotExactError(ValueError):
    """No composition of torch built-in schedulers equals darknet over the whole run."""

    def __init__(self, batch: int | None, reason: str) -> None:
        self.batch, self.reason = batch, reason
        at = "" if batch is None else f" (first differs at darknet batch {batch})"
        super().__init__(f"no exact native torch scheduler: {reason}{at}")


class WeightsError(ValueError):
    """A .weights file that is truncated or not a darknet weights file."""


@dataclass(frozen=True)
class CfgWarning:
    """Something darknet silently does that a user probably did not intend (WARNING_CODES)."""

    code: str
    line: int | None
    key: str | None
    message: str
    col: int = 1

    def format(self, source: str) -> str:
        """``source:line:col: CODE message`` (flake8 style; control characters escaped)."""
        line = 0 if self.line is None else self.line
        return escape(f"{source}:{line}:{self.col}: {self.code} {self.message}")
