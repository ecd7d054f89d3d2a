"""Writers for results. They write where they are told; cli.py decides the stream."""

from __future__ import annotations

import json
from typing import IO, Any

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "jsonl")


def clock(seconds: float) -> str:
    """H:MM:SS.mmm, or M:SS.mmm under an hour."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}" if h else f"{m}:{s:02d}.{ms:03d}"


def write_json(records: list[dict[str, Any]], out: IO[str]) -> None:
    """One JSON document: the record itself for one file, a list for several."""
    document: Any = records[0] if len(records) == 1 else records
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    out.flush()


def write_jsonl(record: dict[str, Any], out: IO[str]) -> None:
    """One record per line, flushed so a reader downstream sees it at once."""
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    out.flush()


def _summary(record: dict[str, Any]) -> str:
    parts = [
        f"[bold]{record['file']}[/]",
        f"{clock(record['duration'])}",
        f"{record['width']}×{record['height']}",
        f"{record['fps']:.3g} fps" if record.get("fps") else "fps unknown",
    ]
    if record.get("vfr"):
        parts.append("VFR")
    if record.get("rotation"):
        parts.append(f"rotated {record['rotation']}°")
    parts.append(
        f"{record['num_windows']} window(s) × {record['crops']} crop(s) · {record['model']}"
    )
    return " · ".join(parts)


def render_table(record: dict[str, Any], console: Console) -> None:
    """A result for people: top-k for predict, the segments for segment."""
    console.print(_summary(record), highlight=False, soft_wrap=True)
    if "segments" in record:
        table = Table(box=None, pad_edge=False)
        table.add_column("start", justify="right")
        table.add_column("end", justify="right")
        table.add_column("action")
        table.add_column("score", justify="right")
        for seg in record["segments"]:
            table.add_row(
                clock(seg["start"]), clock(seg["end"]), seg["label"], f"{seg['score']:.3f}"
            )
    else:
        table = Table(box=None, pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("action")
        table.add_column("score", justify="right")
        table.add_column("")
        for rank, item in enumerate(record["top_k"], 1):
            bar = "█" * max(0, round(item["score"] * 20))
            table.add_row(str(rank), item["label"], f"{item['score']:.3f}", f"[cyan]{bar}[/]")
    console.print(table)
    console.print()
