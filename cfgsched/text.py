"""How numbers are written in reports: messages, tables and JSON."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def fmt(x: float) -> str:
    """A float32 value for messages: 6 significant digits, NaN/inf spelled out."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def plain(x: Any) -> Any:
    """``x`` for JSON: dataclasses as dicts, tuples as lists, NaN/±inf as the strings
    "nan"/"inf"/"-inf"."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        x = dataclasses.asdict(x)
    if isinstance(x, float):
        return fmt(x) if not math.isfinite(x) else x
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return [plain(v) for v in x] if isinstance(x, (list, tuple)) else x


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images``, ``1,000 batches`` (``nouns``: an irregular plural)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"
