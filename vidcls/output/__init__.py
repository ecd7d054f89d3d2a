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
from .writers import CsvWriter, JsonlWriter, JsonWriter, SubtitleWriter, Writer

__all__ = ["FORMATS", "Format", "Writer", "format_for", "make_writer", "open_output"]

BOTH = ("predict", "segment")


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    modes: tuple[str, ...]  # the commands that write it
    make: Callable[[IO[str], str, bool], Writer]  # (stream, mode, durable) -> writer


def _table(out: IO[str], mode: str, durable: bool) -> Writer:
    from rich.console import Console

    from .terminal import TableWriter

    return TableWriter(Console(file=out, highlight=False))


_ROWS = (
    Format("table", (".txt",), BOTH, _table),
    Format("json", (".json",), BOTH, lambda out, mode, durable: JsonWriter(out)),
    Format(
        "jsonl", (".jsonl", ".ndjson"), BOTH, lambda out, mode, durable: JsonlWriter(out, durable)
    ),  # fmt: skip # noqa: E501
    Format("csv", (".csv",), BOTH, lambda out, mode, durable: CsvWriter(out, mode, tab=False)),
    Format("tsv", (".tsv",), BOTH, lambda out, mode, durable: CsvWriter(out, mode, tab=True)),
    Format("srt", (".srt",), ("segment",), lambda out, mode, durable: SubtitleWriter(out, False)),
    Format("vtt", (".vtt",), ("segment",), lambda out, mode, durable: SubtitleWriter(out, True)),
)
FORMATS: dict[str, Format] = {f.name: f for f in _ROWS}
EXTENSIONS: dict[str, str] = {ext: f.name for f in _ROWS for ext in f.extensions}


def format_for(path: str) -> str:
    """The format an output file's suffix names."""
    suffix = Path(path).suffix.lower()
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


def make_writer(fmt: str, mode: str, out: IO[str], durable: bool = False) -> Writer:
    return check_format(fmt, mode).make(out, mode, durable)
