"""Which videos a command line names: paths, globs, directories, lists, and standard input."""

from __future__ import annotations

import glob
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from .errors import UsageError

VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
    ".flv", ".wmv", ".3gp", ".ogv", ".gif", ".dv", ".mxf", ".vob",
}  # fmt: skip
_GLOB = re.compile(r"[*?\[]")


def read_list(lines: Iterable[str]) -> list[str]:
    """One path per line; blank lines and lines starting with # are ignored."""
    paths = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            paths.append(line)
    return paths


def _directory(path: Path, recursive: bool) -> list[str]:
    if not recursive:
        raise UsageError(f"{path}: is a directory (use --recursive to classify the videos in it)")
    found = sorted(
        str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    if not found:
        raise UsageError(
            f"{path}: no video files found (looked for {', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    return found


def expand(
    videos: list[str],
    from_list: str | None = None,
    recursive: bool = False,
    stdin: IO[str] | None = None,
    check_exists: bool = True,
) -> list[str]:
    """The video paths, in order, without duplicates. '-' (video bytes on stdin) stays as is.

    Globs are expanded here too, so quoted patterns work and behave the same on every shell.
    Paths from --from-list are taken as they are: a missing one fails with the others running.
    """
    names: list[str] = []
    for item in videos:
        if item == "-":
            names.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            names.extend(_directory(path, recursive))
        elif path.exists():
            names.append(item)
        elif _GLOB.search(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise UsageError(f"no file matches '{item}'")
            for match in matches:
                names.extend(_directory(Path(match), True) if Path(match).is_dir() else [match])
        elif check_exists:
            raise UsageError(f"no such file: {item}")
        else:
            names.append(item)
    if from_list is not None:
        if from_list == "-":
            if "-" in names:
                raise UsageError("--from-list - and a video on stdin (-) cannot share stdin")
            names.extend(read_list(stdin or sys.stdin))
        else:
            try:
                with open(from_list, encoding="utf-8") as f:
                    names.extend(read_list(f))
            except OSError as e:
                raise UsageError(f"--from-list {from_list}: cannot read it ({e.strerror})") from e
    if names.count("-") > 1:
        raise UsageError("'-' (standard input) can be given only once")
    if not names:
        raise UsageError("no videos given")
    return list(dict.fromkeys(names))
