"""Result writers, one per format. They write where they are told; cli.py decides the stream.

Each writer takes the pipeline's events as they arrive (`event`), error records (`error`) and a
final `close`. jsonl streams every record at once; json, srt and vtt need the whole run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import UsageError

FORMATS = ("table", "json", "jsonl", "csv", "tsv", "srt", "vtt")
SEGMENT_ONLY = ("srt", "vtt")
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
              ".tsv": "tsv", ".srt": "srt", ".vtt": "vtt", ".txt": "table"}  # fmt: skip


def format_for(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        raise UsageError(
            f"cannot tell the format of '{path}' from its extension ({known}); use --format"
        )
    return EXTENSIONS[suffix]


def clock(seconds: float, sep: str = ".") -> str:
    """HH:MM:SS.mmm (sep "," for SRT)."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def short_clock(seconds: float) -> str:
    text = clock(seconds)
    return text[3:] if text.startswith("00:") else text


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


class Writer:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def event(self, kind: str, record: dict[str, Any]) -> None:
        pass

    def error(self, file: str, message: str) -> None:
        pass

    def close(self) -> None:
        self.out.flush()


class JsonWriter(Writer):
    """One document per call: the record for one file, a list for several."""

    def __init__(self, out: IO[str]) -> None:
        super().__init__(out)
        self.records: list[dict[str, Any]] = []

    def event(self, kind: str, record: dict[str, Any]) -> None:
        if kind == "file":
            self.records.append(record)

    def error(self, file: str, message: str) -> None:
        self.records.append({"type": "error", "file": file, "error": message})

    def close(self) -> None:
        document: Any = self.records[0] if len(self.records) == 1 else self.records
        self.out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        super().close()


class JsonlWriter(Writer):
    """A record per line: window..., segment..., file (or error).

    To a terminal or pipe every record goes out at once. `durable` (a results file) holds a
    file's records until its file record and appends them as one block, flushed and fsynced, so
    a crash loses at most the files in flight and `--resume` can trust what is there.
    """

    def __init__(self, out: IO[str], durable: bool = False) -> None:
        super().__init__(out)
        self.durable = durable
        self.pending: dict[str, list[str]] = {}

    def _emit(self, file: str, record: dict[str, Any], last: bool = False) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        if not self.durable:
            self.out.write(line)
            self.out.flush()
            return
        block = self.pending.setdefault(file, [])
        block.append(line)
        if last:
            self.out.write("".join(self.pending.pop(file)))
            self.out.flush()
            os.fsync(self.out.fileno())

    def event(self, kind: str, record: dict[str, Any]) -> None:
        file = record["file"]
        if kind != "file":
            self._emit(file, record)
            return
        for segment in record.get("segments", ()):
            self._emit(file, {"type": "segment", "file": file, **segment})
        summary = {k: v for k, v in record.items() if k not in ("windows", "segments")}
        self._emit(file, summary, last=True)

    def error(self, file: str, message: str) -> None:
        self.pending.pop(file, None)
        self._emit(file, {"type": "error", "file": file, "error": message}, last=True)


class CsvWriter(Writer):
    """predict: a row per (file, rank); segment: a row per segment. tsv times in integer ms."""

    def __init__(self, out: IO[str], mode: str, tab: bool) -> None:
        super().__init__(out)
        self.tab = tab
        self.rows = csv.writer(out, delimiter="\t" if tab else ",", lineterminator="\n")
        if mode == "predict":
            self.header = ["file", "rank", "label", "index", "score", "error"]
        elif tab:
            self.header = ["file", "start_ms", "end_ms", "label", "index", "score", "error"]
        else:
            self.header = ["file", "start", "end", "label", "index", "score", "error"]
        self.rows.writerow(self.header)

    def _time(self, seconds: float) -> str:
        return str(int(round(seconds * 1000))) if self.tab else f"{seconds:.3f}"

    def event(self, kind: str, record: dict[str, Any]) -> None:
        if kind != "file":
            return
        name = record["file"]
        for rank, item in enumerate(record.get("top_k", ()), 1):
            self.rows.writerow([name, rank, item["label"], item["index"], item["score"], ""])
        for seg in record.get("segments", ()):
            start, end = self._time(seg["start"]), self._time(seg["end"])
            self.rows.writerow([name, start, end, seg["label"], seg["index"], seg["score"], ""])
        self.out.flush()

    def error(self, file: str, message: str) -> None:
        self.rows.writerow([file] + [""] * (len(self.header) - 2) + [message])


class SubtitleWriter(Writer):
    """SRT or WebVTT cues of the merged segments, "label (score)" as the text."""

    def __init__(self, out: IO[str], vtt: bool) -> None:
        super().__init__(out)
        self.vtt = vtt
        self.segments: list[dict[str, Any]] = []

    def event(self, kind: str, record: dict[str, Any]) -> None:
        if kind == "file":
            self.segments.extend(record["segments"])

    def close(self) -> None:
        sep = "." if self.vtt else ","
        blocks = ["WEBVTT\n"] if self.vtt else []
        for n, seg in enumerate(self.segments, 1):
            cue = f"{clock(seg['start'], sep)} --> {clock(seg['end'], sep)}"
            text = f"{seg['label']} ({seg['score']:.2f})"
            blocks.append(f"{cue}\n{text}\n" if self.vtt else f"{n}\n{cue}\n{text}\n")
        self.out.write("\n".join(blocks))
        super().close()


class TableWriter(Writer):
    """For people: a summary line, top-k with bars, or a timeline and the segments."""

    def __init__(self, console: Console) -> None:
        super().__init__(console.file)
        self.console = console

    def event(self, kind: str, record: dict[str, Any]) -> None:
        if kind == "file":
            render_table(record, self.console)


COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta",
           "bright_green", "bright_yellow", "bright_blue", "bright_red"]  # fmt: skip


def _summary(record: dict[str, Any]) -> str:
    parts = [
        f"[bold]{record['file']}[/]",
        short_clock(record["duration"]),
        f"{record['width']}×{record['height']}",
        f"{record['fps']:.3g} fps" if record.get("fps") else "fps unknown",
    ]
    if record.get("vfr"):
        parts.append("VFR")
    if record.get("rotation"):
        parts.append(f"rotated {record['rotation']}°")
    if record["start"] > 0 or record["end"] < record["duration"]:
        parts.append(f"range {short_clock(record['start'])}–{short_clock(record['end'])}")
    parts.append(
        f"{record['num_windows']} window(s) × {record['crops']} crop(s) · {record['model']}"
    )
    return " · ".join(parts)


def timeline(segments: list[dict[str, Any]], start: float, end: float, width: int) -> list[Text]:
    """A one-line coloured bar of the segments across `width` cells, and its legend."""
    colour: dict[str, str] = {}
    for seg in segments:
        colour.setdefault(seg["label"], COLOURS[len(colour) % len(COLOURS)])
    bar = Text()
    length = max(end - start, 1e-9)
    for cell in range(width):
        t = start + (cell + 0.5) * length / width
        seg = next((s for s in segments if s["start"] <= t < s["end"]), segments[-1])
        bar.append("█", style=colour[seg["label"]])
    legend = Text()
    for label, style in colour.items():
        legend.append("■ ", style=style).append(label + "  ")
    return [bar, legend]


def render_table(record: dict[str, Any], console: Console) -> None:
    console.print(_summary(record), highlight=False, soft_wrap=True)
    table = Table(box=None, pad_edge=False)
    if "segments" in record:
        if record["segments"]:
            width = max(10, min(console.width, 120) - 1)
            for line in timeline(record["segments"], record["start"], record["end"], width):
                console.print(line, soft_wrap=True)
        for column, justify in (("start", "right"), ("end", "right"), ("action", "left"), ("score", "right")):  # fmt: skip # noqa: E501
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for seg in record["segments"]:
            table.add_row(short_clock(seg["start"]), short_clock(seg["end"]), seg["label"], f"{seg['score']:.3f}")  # fmt: skip # noqa: E501
    else:
        for column, justify in (("#", "right"), ("action", "left"), ("score", "right"), ("", "left")):  # fmt: skip # noqa: E501
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for rank, item in enumerate(record["top_k"], 1):
            bar = "█" * max(0, round(item["score"] * 20))
            table.add_row(str(rank), item["label"], f"{item['score']:.3f}", f"[cyan]{bar}[/]")
    console.print(table)
    if record.get("classes"):
        console.print(f"scores renormalised over {len(record['classes'])} classes", style="dim")
    console.print()


def make_writer(fmt: str, mode: str, out: IO[str], durable: bool = False) -> Writer:
    if fmt in SEGMENT_ONLY and mode != "segment":
        raise UsageError(f"--format {fmt} is for `vidcls segment` only")
    if fmt == "json":
        return JsonWriter(out)
    if fmt == "jsonl":
        return JsonlWriter(out, durable)
    if fmt in ("csv", "tsv"):
        return CsvWriter(out, mode, fmt == "tsv")
    if fmt in SEGMENT_ONLY:
        return SubtitleWriter(out, fmt == "vtt")
    if fmt == "table":
        return TableWriter(Console(file=out, highlight=False))
    raise UsageError(f"unknown format '{fmt}' (use {', '.join(FORMATS)})")
