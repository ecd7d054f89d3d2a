"""Which videos a command line names: paths, globs, directories, lists, and standard input."""

from __future__ import annotations

import glob
import re
import stat
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
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# HTTP(S) files can be read to their end like a local one; playlists and these protocols cannot
_LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "rtp", "tcp")
_PLAYLISTS = (".m3u8", ".m3u", ".mpd")


def is_url(name: str) -> bool:
    return bool(_URL.match(name))


def device_format(name: str) -> tuple[str, str | None]:
    """(what FFmpeg opens, the input format it implies): `v4l2:/dev/video0` and a character
    device are V4L2 cameras, as ffmpeg users spell them."""
    if name.startswith("v4l2:"):
        return name[len("v4l2:") :], "video4linux2"
    if _is_kind(name, stat.S_ISCHR):
        return name, "video4linux2"
    return name, None


def _is_kind(name: str, test: object) -> bool:
    if is_url(name) or name == "-":
        return False
    try:
        return bool(test(Path(name).stat().st_mode))  # type: ignore[operator]
    except OSError:
        return False


def is_live(name: str) -> bool:
    """Whether a source can only be read once, as it comes (like standard input): a stream URL
    or playlist, a camera, a named pipe. Such sources are followed by default."""
    if name == "-":
        return False
    if is_url(name):
        scheme = name.split(":", 1)[0].lower()
        path = name.split("?", 1)[0].lower()
        return scheme in _LIVE_SCHEMES or path.endswith(_PLAYLISTS)
    return name.startswith("v4l2:") or _is_kind(name, stat.S_ISCHR) or _is_kind(name, stat.S_ISFIFO)


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
        if item == "-" or is_url(item) or is_live(item):
            names.append(item)  # opened by FFmpeg as they are
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
