"""Where results go: stdout, a JSON-lines file appended a block at a time, or a file that
appears only when complete. Writers are handed the stream; they never choose it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def open_output(
    path: str | None, stdout: IO[str], append_lines: str | None = None
) -> Iterator[IO[str]]:
    """stdout; or, for a JSON-lines file (`append_lines` "w" or "a"), the file itself, written
    a block at a time; or a temporary file beside `path` renamed over it only when the run
    completes. Either way an interrupted run never leaves a half-written result."""
    if path is None or path == "-":
        yield stdout
        return
    if append_lines is not None:
        with open(path, append_lines, encoding="utf-8") as f:
            yield f
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
