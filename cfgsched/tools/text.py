"""How numbers are written in reports: messages, tables and JSON."""

from __future__ import annotations

import math


def fmt(x: float) -> str:
    """A float32 value for messages: 6 significant digits, NaN/inf spelled out."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def json_float(x: float) -> float | str:
    """A float for JSON: NaN/±inf become the strings "nan"/"inf"/"-inf"."""
    return fmt(x) if not math.isfinite(x) else x


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images``, ``1,000 batches`` (``nouns``: an irregular plural)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"
