"""Output: every format vidcls writes, one row each in `FORMATS`, and the renderers for people.

A `Format` names its file extensions, the commands that write it and how to make its writer;
the lists of names and suffixes that options and messages use are derived from the table.
Writers consume the run's events (`vidcls.events`) and write where they are told: the command
line decides which stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import UsageError
from .files import open_output
from .writers import (
    ActivityNetWriter,
    CsvWriter,
    JsonlWriter,
    JsonWriter,
    SubtitleWriter,
    ThumosWriter,
    Writer,
)

__all__ = ["FORMATS", "Format", "Settings", "Writer", "format_for", "make_writer", "open_output"]

BOTH = ("predict", "segment")


@dataclass(frozen=True)
class Settings:
    """What a writer is told besides its stream: plain values the command line resolved."""

    mode: str  # the command: predict or segment
    durable: bool = False  # a JSON-lines results file, written a file's block at a time
    video_id: str = "stem"  # activitynet, thumos: how a file's path names its video
    multi_label: int = 1  # activitynet, thumos: the top K classes' own segments
    run: tuple[tuple[str, str], ...] = ()  # html: the run's facts, as (name, value)
    follow: bool = False  # records go out as they happen (live sources), each one flushed


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    modes: tuple[str, ...]  # the commands that write it
    make: Callable[[IO[str], Settings], Writer]


def _table(out: IO[str], settings: Settings) -> Writer:
    from rich.console import Console

    from .terminal import TableWriter

    console = Console(file=out, highlight=False)
    return TableWriter(console, sparklines=console.is_terminal)


def _jsonl(out: IO[str], settings: Settings) -> Writer:
    # a followed run's records go out as they happen, not a file's block at a time
    return JsonlWriter(out, settings.durable and not settings.follow)


def _csv(tab: bool) -> Callable[[IO[str], Settings], Writer]:
    return lambda out, s: CsvWriter(out, s.mode, tab=tab, follow=s.follow)


def _html(out: IO[str], settings: Settings) -> Writer:
    from .html import HtmlWriter

    return HtmlWriter(out, settings.run)


SEGMENT = ("segment",)
_ROWS = (
    Format("table", (".txt",), BOTH, _table),
    Format("json", (".json",), BOTH, lambda out, s: JsonWriter(out)),
    Format("jsonl", (".jsonl", ".ndjson"), BOTH, _jsonl),
    Format("csv", (".csv",), BOTH, _csv(tab=False)),
    Format("tsv", (".tsv",), BOTH, _csv(tab=True)),
    Format("srt", (".srt",), SEGMENT, lambda out, s: SubtitleWriter(out, False)),
    Format("vtt", (".vtt",), SEGMENT, lambda out, s: SubtitleWriter(out, True)),
    Format(
        "activitynet",
        (".activitynet.json",),
        SEGMENT,
        lambda out, s: ActivityNetWriter(out, s.video_id, s.multi_label),
    ),  # fmt: skip
    Format(
        "thumos",
        (".thumos.txt",),
        SEGMENT,
        lambda out, s: ThumosWriter(out, s.video_id, s.multi_label),
    ),  # fmt: skip # noqa: E501
    Format("html", (".html", ".htm"), SEGMENT, _html),
)
FORMATS: dict[str, Format] = {f.name: f for f in _ROWS}
EXTENSIONS: dict[str, str] = {ext: f.name for f in _ROWS for ext in f.extensions}


def format_for(path: str) -> str:
    """The format an output file's suffix names (the longest that matches: a.activitynet.json
    is activitynet, a.json json)."""
    name = Path(path).name.lower()
    matches = [ext for ext in EXTENSIONS if name.endswith(ext) and len(name) > len(ext)]
    suffix = max(matches, key=len) if matches else Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        raise UsageError(
            f"cannot tell the format of '{path}' from its extension ({known}); use --format"
        )
    return EXTENSIONS[suffix]


def check_format(fmt: str, mode: str) -> Format:
    """The format's row; unknown names and a format the command does not write are usage errors."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}' (use {', '.join(FORMATS)})")
    row = FORMATS[fmt]
    if mode not in row.modes:
        raise UsageError(f"--format {fmt} is for `vidcls {' or '.join(row.modes)}` only")
    return row


def make_writer(fmt: str, out: IO[str], settings: Settings) -> Writer:
    return check_format(fmt, settings.mode).make(out, settings)
