"""Output for people: Rich renderers of results, `vidcls models` and `vidcls probe`.

Results get a summary line per file and a table of the top-k with bars, or a timeline bar and
the segments. Every renderer prints to the console it is given.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..events import Event, FileDone
from ..records import ranked
from .writers import Writer, clock


def short_clock(seconds: float) -> str:
    text = clock(seconds)
    return text[3:] if text.startswith("00:") else text


class TableWriter(Writer):
    """For people: a summary line, top-k with bars, or a timeline and the segments."""

    def __init__(self, console: Console, sparklines: bool = False) -> None:
        super().__init__(console.file)
        self.console = console
        self.sparklines = sparklines

    def write(self, event: Event) -> None:
        if isinstance(event, FileDone):
            curves = event.curves if self.sparklines else None
            render_table(event.record, self.console, curves)


_TICKS = "▁▂▃▄▅▆▇█"


def sparkline(pieces: list[list[float]], probs: list[float], start: float, end: float, width: int) -> str:  # fmt: skip # noqa: E501
    """A class's probability over [start, end] in `width` cells, ▁ (0) to █ (1): each cell the
    time-weighted mean of the pieces it covers."""
    import numpy as np

    spans = np.asarray(pieces, dtype=np.float64).reshape(-1, 2)
    values = np.asarray(probs, dtype=np.float64)
    edges = np.linspace(start, end, width + 1)
    cells = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        overlap = (np.minimum(spans[:, 1], b) - np.maximum(spans[:, 0], a)).clip(0)
        total = overlap.sum()
        level = float((values * overlap).sum() / total) if total > 0 else 0.0
        cells.append(_TICKS[min(len(_TICKS) - 1, max(0, round(level * (len(_TICKS) - 1))))])
    return "".join(cells)


def sparklines(curves: dict[str, Any], start: float, end: float, width: int) -> list[Text]:
    """A sparkline per top class, its label after it."""
    lines = []
    for n, track in enumerate(curves["classes"][: curves["shown"]]):
        line = Text(sparkline(curves["pieces"], track["probs"], start, end, width), style=COLOURS[n % len(COLOURS)])  # fmt: skip # noqa: E501
        lines.append(line.append(" " + track["label"], style="default"))
    return lines


COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta",
           "bright_green", "bright_yellow", "bright_blue", "bright_red"]  # fmt: skip


def _summary(record: dict[str, Any]) -> str:
    parts = [
        f"[bold]{escape(record['file'])}[/]",
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
        f"{record['num_windows']} window(s) × {record['crops']} crop(s) · {escape(record['model'])}"
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


def render_table(
    record: dict[str, Any], console: Console, curves: dict[str, Any] | None = None
) -> None:
    console.print(_summary(record), highlight=False, soft_wrap=True)
    table = Table(box=None, pad_edge=False)
    if "segments" in record:
        if record["segments"]:
            width = max(10, min(console.width, 120) - 1)
            # a model with several heads has a timeline per head
            heads = list(dict.fromkeys(seg.get("head") for seg in record["segments"]))
            for head in heads:
                own = [seg for seg in record["segments"] if seg.get("head") == head]
                for line in timeline(own, record["start"], record["end"], width):
                    console.print(line, soft_wrap=True)
            if curves and curves["pieces"]:
                longest = max(len(c["label"]) for c in curves["classes"][: curves["shown"]])
                spark = max(10, width - min(longest, 30) - 1)
                for line in sparklines(curves, record["start"], record["end"], spark):
                    console.print(line, soft_wrap=True)
        headed = any("head" in seg for seg in record["segments"])
        for column, justify in (("start", "right"), ("end", "right"), ("action", "left"), ("score", "right")):  # fmt: skip # noqa: E501
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        if headed:
            table.add_column("head")
        for seg in record["segments"]:
            table.add_row(short_clock(seg["start"]), short_clock(seg["end"]), Text(seg["label"]), f"{seg['score']:.3f}", *([Text(seg["head"])] if headed else []))  # fmt: skip # noqa: E501
    else:
        headed = any("head" in item for item in record["top_k"])
        for column, justify in (("#", "right"), ("action", "left"), ("score", "right"), ("", "left")):  # fmt: skip # noqa: E501
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        if headed:
            table.add_column("head")
        for rank, item in ranked(record["top_k"]):
            bar = "█" * max(0, round(item["score"] * 20))
            head = [Text(item["head"])] if headed else []
            table.add_row(str(rank), Text(item["label"]), f"{item['score']:.3f}", f"[cyan]{bar}[/]", *head)  # fmt: skip # noqa: E501
    console.print(table)
    if record.get("classes"):
        console.print(f"scores renormalised over {len(record['classes'])} classes", style="dim")
    console.print()


MODEL_COLUMNS = ["name", "checkpoint", "frames×stride", "span", "input", "labels", "cached"]


def model_cells(rows: list[dict[str, Any]]) -> list[list[str]]:
    """One line of `vidcls models` per registry row (`ModelSpec.as_dict` plus "cached")."""
    return [
        [
            row["name"],
            row["repo"] or row.get("url") or f"bundled: {row['bundled']}",
            f"{row['num_frames']}×{row['frame_stride']} @{row['reference_fps']:g}",
            f"{row['span_seconds']:.2f} s",
            ("frame" if row["resize"] == "full" else f"{row['short_side']}")
            + f"→{row['crops']}×{row['crop']}"
            + (" bgr" if row["channel_order"] == "bgr" else "")
            + (" sym" if row["symmetries"] else ""),
            f"{row['labels']} ({row['num_classes']})",
            "yes" if row["cached"] else "no",
        ]
        for row in rows
    ]


def model_lines(rows: list[dict[str, Any]]) -> str:
    """For a pipe: one tab-separated line per model, header first, for grep, cut and awk."""
    return "".join("\t".join(line) + "\n" for line in [MODEL_COLUMNS, *model_cells(rows)])


def models_table(cells: list[list[str]], console: Console) -> Table:
    """The terminal's table; the checkpoint column only where it fits unfolded."""
    from rich import box
    from rich.measure import Measurement

    def build(keep: list[int]) -> Table:
        table = Table(
            title="vidcls models", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
            pad_edge=False, padding=(0, 1, 0, 0),
        )  # fmt: skip
        for i in keep:
            name = MODEL_COLUMNS[i]
            table.add_column(
                name, justify="right" if name == "span" else "left", no_wrap=name != "labels"
            )
        for line in cells:
            table.add_row(*(Text(line[i]) for i in keep))
        return table

    table = build(list(range(len(MODEL_COLUMNS))))
    wide = console.options.update_width(10_000)
    if Measurement.get(console, wide, table).maximum > console.width:
        table = build([i for i, name in enumerate(MODEL_COLUMNS) if name != "checkpoint"])
    return table


_PROBE_FIELDS = ["container", "codec", "pix_fmt", "coded", "displayed", "rotation", "duration",
                 "fps", "vfr", "frames", "audio", "first 1 s", "last 1 s"]  # fmt: skip


def probe_table(records: list[dict[str, Any]]) -> Table:
    """`vidcls probe`'s table: a row per file, the error in its last column."""
    table = Table(title="vidcls probe", title_justify="left")
    table.add_column("file", overflow="fold")
    for f in _PROBE_FIELDS:
        table.add_column(f)
    yes = {True: "yes", False: "[red]no[/]", None: "?"}
    for r in records:
        if r["type"] == "error":
            error = Text(r["error"], style="red")
            table.add_row(Text(r["file"]), *([""] * (len(_PROBE_FIELDS) - 1)), error)
            continue
        table.add_row(
            Text(r["file"]), r["container"], r["codec"], str(r["pix_fmt"]),
            f"{r['coded_width']}×{r['coded_height']}", f"{r['width']}×{r['height']}",
            f"{r['rotation']}°", f"{r['duration']:.3f} s" if r["duration"] is not None else "?",
            f"{r['fps']:.3f}" if r["fps"] else "?", yes[r["vfr"]],
            str(r["frame_count"] or "?"), str(r["audio_streams"]),
            yes[r["first_second_decodes"]], yes[r["last_second_decodes"]],
        )  # fmt: skip
    return table


def eval_rows(report: dict[str, Any]) -> list[list[str]]:
    """`vidcls eval` as rows: a header of the thresholds, a row per class, mAP, then the
    average mAP and the share of annotated time labelled correctly."""
    thresholds = [f"{t:g}" for t in report["tiou"]]
    rows = [["class", "instances", *(f"AP@{t}" for t in thresholds)]]
    for label, entry in report["classes"].items():
        rows.append([label, str(entry["instances"]), *(f"{ap:.6f}" for ap in entry["AP"])])
    rows.append(["mAP", "", *(f"{m:.6f}" for m in report["mAP"])])
    rows.append(["average mAP", "", f"{report['average_mAP']:.6f}"])
    share = report["duration_correct"]
    rows.append(["duration labelled correctly", "", "" if share is None else f"{share:.6f}"])
    return rows


def eval_table(report: dict[str, Any]) -> Table:
    rows = eval_rows(report)
    title = (
        f"{report['videos']} video(s), {report['detections']} detection(s) · average mAP "
        f"{report['average_mAP']:.4f}"
    )
    table = Table(title=title, title_justify="left")
    for n, name in enumerate(rows[0]):
        table.add_column(name, justify="left" if n == 0 else "right")
    for row in rows[1:]:
        table.add_row(Text(row[0]), *row[1:], *([""] * (len(rows[0]) - len(row))))
    return table
