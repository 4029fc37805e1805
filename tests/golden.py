"""Access to the golden data in ../shared/golden (LR values printed by darknet's own C code)."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The shared data folder: ``../shared`` next to the checkout, or ``$CFGSCHED_SHARED``.
SHARED = Path(os.environ.get("CFGSCHED_SHARED") or ROOT.parent / "shared")
GOLDEN = SHARED / "golden"
DARKNET_CFGS = SHARED / "darknet_cfgs"
FORKS = ("alexeyab", "pjreddie", "hankai")

needs_golden = pytest.mark.skipif(
    not GOLDEN.is_dir(), reason=f"golden data folder {GOLDEN} is absent"
)
needs_darknet_cfgs = pytest.mark.skipif(
    not DARKNET_CFGS.is_dir(), reason=f"real cfg folder {DARKNET_CFGS} is absent"
)


@dataclass(frozen=True)
class EvalCase:
    """One ``<fork>/<case>.json`` evaluation file."""

    fork: str
    case: str
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.fork}/{self.case}"

    @property
    def ok(self) -> bool:
        return bool(self.data["parse"]["ok"])

    @property
    def cfg_text(self) -> str:
        src = self.data["cfg_source"]
        if src["kind"] == "synthetic":
            return str(src["cfg_text"])
        return (DARKNET_CFGS / Path(src["file"]).name).read_bytes().decode("utf-8")

    @property
    def source(self) -> str:
        src = self.data["cfg_source"]
        return str(src.get("file", f"{self.case}.cfg"))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.data["parse"]["params"])

    @property
    def batches(self) -> np.ndarray:
        return np.asarray(self.data["batches"], dtype=np.int64)

    @property
    def lr_bits(self) -> np.ndarray:
        return hex_to_bits(self.data["lr_hex"])

    def ftz_batches(self) -> set[int]:
        """Batches where -O0 differs from -Ofast (flush-to-zero subnormals only)."""
        diffs = self.data.get("crosscheck_O0", {}).get("differences") or {}
        return {int(k) for k in diffs}

    @property
    def o0_bits(self) -> np.ndarray:
        """``lr_hex`` of the same harness built with ``-O0`` (no flush-to-zero)."""
        out = self.lr_bits.copy()
        diffs = self.data.get("crosscheck_O0", {}).get("differences") or {}
        index = {int(b): i for i, b in enumerate(self.batches)}
        for b, diff in diffs.items():
            out[index[int(b)]] = int(diff["hex"], 16)
        return out


def hex_to_bits(values: list[str]) -> np.ndarray:
    """Golden ``lr_hex`` strings as uint32 float32 bit patterns."""
    return np.array([int(h, 16) for h in values], dtype=np.uint32)


def bits(lr: Any) -> np.ndarray:
    """float32 bit patterns of ``lr`` (array or scalar)."""
    return np.asarray(lr, dtype=np.float32).view(np.uint32)


def float_to_bits(x: float) -> int:
    """Bit pattern of a Python float rounded to float32."""
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


@cache
def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def eval_cases(fork: str | None = None) -> list[EvalCase]:
    """Every evaluation case (not ``mgpu_*``) of ``fork`` (or of all forks)."""
    if not GOLDEN.is_dir():
        return []
    out = []
    for f in FORKS if fork is None else (fork,):
        for path in sorted((GOLDEN / f).glob("*.json")):
            if not path.name.startswith("mgpu_"):
                out.append(EvalCase(f, path.stem, _load(path)))
    return out


def mgpu_cases() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(fork, case, data)`` for every multi-GPU trace file."""
    if not GOLDEN.is_dir():
        return
    for f in FORKS:
        for path in sorted((GOLDEN / f).glob("mgpu_*.json")):
            yield f, path.stem, _load(path)


def case_ids(cases: list[EvalCase]) -> list[str]:
    return [c.id for c in cases]
