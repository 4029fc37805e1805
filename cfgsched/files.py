"""Safe file reading and message text: regular files only, control characters escaped."""

from __future__ import annotations

import os
import stat

from cfgsched.errors import escape

__all__ = ["escape", "read_regular"]


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
