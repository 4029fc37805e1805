"""Safe file reading and message text: regular files only, control characters escaped."""

from __future__ import annotations

import os
import stat

__all__ = ["escape", "read_regular"]

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {
    c: f"\\u{c:04x}" for c in (*range(0x80, 0xA0), 0x2028, 0x2029)
}


def escape(text: str) -> str:
    """``text`` with control characters (ESC, newline, CR, ...) written as ``\\xNN``, so a
    message stays one line and cannot drive the terminal."""
    return text.translate(_CONTROL)


def read_regular(path: str, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of the regular file ``path``.

    A FIFO, device, directory or socket raises ``OSError`` naming ``path`` without blocking
    (the file is opened non-blocking and checked before any read).
    """
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
