"""Errors and warnings shared by every part of cfgsched."""

from __future__ import annotations

from dataclasses import dataclass

from cfgsched.files import escape


class CfgError(ValueError):
    """A cfg that darknet would crash on or refuse; names the source, line and key."""

    def __init__(
        self, source: str, line: int | None, key: str | None, message: str
    ) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.message = message
        super().__init__(self.oneline())

    def oneline(self) -> str:
        """``source:line: key: message`` on one line (parts that are unknown are left out)."""
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        what = f"{self.key}: " if self.key else ""
        return escape(f"{where}: {what}{self.message}".replace("\n", " "))


class NotExactError(ValueError):
    """No composition of torch built-in schedulers equals darknet over the whole run."""

    def __init__(self, batch: int | None, reason: str) -> None:
        self.batch = batch
        self.reason = reason
        at = "" if batch is None else f" (first differs at darknet batch {batch})"
        super().__init__(f"no exact native torch scheduler: {reason}{at}")


class WeightsError(ValueError):
    """A .weights file that is truncated or not a darknet weights file."""


@dataclass(frozen=True)
class CfgWarning:
    """Something darknet silently does that a user probably did not intend.

    ``code`` is stable (see ``cfgsched.schedule.WARNING_CODES``); ``line`` is 1-based.
    """

    code: str
    line: int | None
    key: str | None
    message: str
    col: int = 1

    def format(self, source: str) -> str:
        """``source:line:col: CODE message`` (flake8 style; control characters escaped)."""
        line = 0 if self.line is None else self.line
        return escape(f"{source}:{line}:{self.col}: {self.code} {self.message}")
