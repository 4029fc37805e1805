"""How numbers are written in reports: messages, tables and JSON."""

from __future__ import annotations

import math

import numpy as np


def fmt(x: float) -> str:
    """A float32 value for messages: 6 significant digits, NaN/inf spelled out."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def short(x: float) -> str:
    """Shortest text that reads back as the same float32 (0.1, not 0.100000001)."""
    v = np.float32(x)
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return np.format_float_positional(v, trim="-")
    return str(v)


def json_float(x: float) -> float | str:
    """A float for JSON: NaN/±inf become the strings "nan"/"inf"/"-inf"."""
    return fmt(x) if not math.isfinite(x) else x


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 image``, ``2 images``, ``1,000 batches`` (``nouns``: an irregular plural)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"
