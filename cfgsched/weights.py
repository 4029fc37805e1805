"""The header of a darknet ``.weights`` file: version and ``seen`` (where a run resumes)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cfgsched.errors import WeightsError
from cfgsched.files import read_regular
from cfgsched.schedule import DEFAULT_FORK, FORKS, NetSchedule

#: Version numbers above this are taken as "not a darknet weights file" (real files: 0.1, 0.2).
MAX_VERSION = 0xFFFF


@dataclass(frozen=True)
class WeightsHeader:
    """``major``, ``minor``, ``revision`` (int32), ``seen`` (images trained on so far),
    ``header_bytes`` (16 or 20: where the weights start), ``seen_is_64bit`` (else 32 bits)."""

    major: int
    minor: int
    revision: int
    seen: int
    header_bytes: int
    seen_is_64bit: bool

    def iteration(self, schedule: NetSchedule) -> int:
        """The batch number a run resumes at: ``seen //`` the *current* cfg's images per
        iteration (changing ``batch`` or ``subdivisions`` moves the run; ``-clear``: 0)."""
        return self.seen // schedule.images_per_iteration


def seen_is_64bit(major: int, minor: int, fork: str = DEFAULT_FORK) -> bool:
    """Whether darknet reads ``seen`` as uint64: ``major*10 + minor >= 2`` (pjreddie also
    requires ``major < 1000`` and ``minor < 1000``), else as a 32-bit int."""
    pjreddie_limit = fork != "pjreddie" or (major < 1000 and minor < 1000)
    return major * 10 + minor >= 2 and pjreddie_limit


def read_weights_header(
    path: str | os.PathLike[str], *, fork: str = DEFAULT_FORK
) -> WeightsHeader:
    """The header of the ``.weights`` file at ``path`` as ``fork`` reads it; a missing,
    unreadable or truncated file or a version outside 0..65535 raises WeightsError."""
    if fork not in FORKS:
        raise ValueError(f"unknown fork {fork!r}: choose one of {', '.join(FORKS)}")
    name = os.fspath(path)
    try:  # regular files only: a FIFO or a device is refused, never waited on
        head = read_regular(name, 19)  # the 20 header bytes (limit + 1)
    except FileNotFoundError:
        raise WeightsError(f"{name}: no such weights file") from None
    except OSError as exc:
        why = f"cannot read weights file: {exc.strerror or exc}"
        raise WeightsError(f"{name}: {why}") from None
    if len(head) < 12:
        why = f"truncated weights file: {len(head)} bytes, the version alone needs 12"
        raise WeightsError(f"{name}: {why}")
    major, minor, revision = struct.unpack("<3i", head[:12])
    if not all(0 <= v <= MAX_VERSION for v in (major, minor, revision)):
        raise WeightsError(
            f"{name}: not a darknet weights file (version {major}.{minor}.{revision} "
            f"read from its first 12 bytes {head[:12].hex()})"
        )
    wide = seen_is_64bit(major, minor, fork)
    size = 20 if wide else 16
    if len(head) < size:
        why = f"{len(head)} bytes, the header of version {major}.{minor}.{revision}"
        raise WeightsError(f"{name}: truncated weights file: {why} needs {size}")

    # 4 bytes are a uint32 (alexeyab, hankai) or an int that pjreddie stores in its
    # size_t counter (a negative one wraps)
    kind = "<Q" if wide else "<i" if fork == "pjreddie" else "<I"
    seen = int(struct.unpack(kind, head[12:size])[0]) % (1 << 64)
    return WeightsHeader(major, minor, revision, seen, size, wide)
