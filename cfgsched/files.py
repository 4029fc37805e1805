"""Safe file reading: regular files only, bounded; cfg text checked once for every reader."""

from __future__ import annotations

import os
import stat

from cfgsched.errors import CfgError, escape

__all__ = ["MAX_CFG_BYTES", "cfg_text", "escape", "read_cfg", "read_regular"]

#: Largest cfg file cfgsched reads (bytes); real cfgs are well under 100 KB.
MAX_CFG_BYTES = 4 * 1024 * 1024


def cfg_text(data: bytes, source: str) -> str:
    """A cfg's bytes as text (bad UTF-8: U+FFFD); too large or a NUL byte: CfgError."""
    if len(data) > MAX_CFG_BYTES:
        why = f"file larger than {MAX_CFG_BYTES} bytes: not a cfg"
        raise CfgError(source, None, None, why)
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise CfgError(source, line, None, "NUL byte: this is a binary file, not a cfg")
    return data.decode("utf-8", errors="replace")


def read_cfg(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(text, source name)`` of the regular cfg file at ``path`` (else OSError, without
    blocking); a path not str or PathLike (an int is a file descriptor) raises TypeError."""
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(name, str):
        why = f"expected a path (str or os.PathLike), got {type(path).__name__}"
        raise TypeError(why)
    return cfg_text(read_regular(name, MAX_CFG_BYTES), name), name


def read_regular(path: str, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of the regular file ``path``; anything else raises
    ``OSError`` naming ``path`` without blocking (opened non-blocking, checked first)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise OSError(
                0, f"{kind}: cfgsched reads regular files (or - for stdin)", path
            )
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, path) from None
        raise
    finally:
        os.close(fd)
