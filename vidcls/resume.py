"""Reading back a JSON-lines result file to resume a run that stopped.

Records are appended one file's block at a time (its windows and segments, then its file
record), flushed and fsynced. A run killed mid-write leaves at most one partial block; it and
any error records are dropped here, so the failed files run again and no file appears twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import UsageError


def _blocks(path: Path) -> tuple[list[list[bytes]], bool]:
    """Complete blocks (lines of one file, ending with its file record) and whether anything
    was dropped (a partial line, a block without its file record, errors, garbage)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    dropped = lines[-1] != b""  # the last line was cut short
    blocks: list[list[bytes]] = []
    pending: list[bytes] = []
    for raw in lines[:-1]:
        try:
            record = json.loads(raw)
            kind = record["type"] if isinstance(record, dict) else None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError):
            kind = None
        if kind in ("window", "segment"):
            pending.append(raw)
        elif kind == "file":
            blocks.append([*pending, raw])
            pending = []
        else:  # errors are retried; anything unreadable goes
            dropped = True
            pending = []
    return blocks, dropped or bool(pending)


def completed(path: str | Path, key: str) -> set[str]:
    """The files an earlier run finished with the same options (`key`); cleans the file first.

    A file that is not JSON lines written by vidcls is refused rather than rewritten.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    blocks, dropped = _blocks(path)
    if not blocks and dropped:
        head = path.read_bytes()[:200]
        if head and not head.lstrip().startswith(b"{"):
            raise UsageError(f"--resume: {path} is not a vidcls JSON-lines result file")
    if dropped:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            for block in blocks:
                f.write(b"\n".join(block) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    done = set()
    for block in blocks:
        record = json.loads(block[-1])
        if record.get("run_key") == key:
            done.add(record["file"])
    return done
