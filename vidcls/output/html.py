"""The HTML report of `segment`: one self-contained page for all files of the run.

Per file: the timeline as coloured segments (hover: label, times, score), the probability curves
of the top classes (SVG), a strip of thumbnails (one frame per segment, inlined JPEG, handed in
by the command line through `attach`), and the facts of the file and the run. Nothing is loaded
from anywhere: the page's Content-Security-Policy allows no requests, and it has no script.
Every name and label is untrusted text and goes through `html.escape`.
"""

from __future__ import annotations

import base64
import html
from typing import IO, Any

from .. import __version__
from ..events import Event, Failed, FileDone
from .writers import Writer, clock

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip

_WIDTH = 960  # the SVGs' drawing width in user units; they scale with the page
_CURVE_HEIGHT = 120

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 6px;word-break:break-all}
section.file{background:#fff;border:1px solid #ddd;border-radius:6px;padding:14px;margin:14px 0}
.facts{color:#555;font-size:12px;margin:4px 0 10px}.facts span{margin-right:14px}
.warn{color:#a40;font-size:12px}.error{color:#b00}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,sans-serif}
rect.segment:hover{stroke:#000;stroke-width:2}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.strip{display:flex;gap:6px;overflow-x:auto;margin-top:8px}
.strip figure{margin:0;font-size:11px;color:#444;flex:none}
.strip img{display:block;height:72px;border-radius:3px}
table.run{font-size:12px;border-collapse:collapse}table.run td{padding:1px 10px 1px 0}
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def short(seconds: float) -> str:
    text = clock(seconds)
    return text[3:] if text.startswith("00:") else text


class HtmlWriter(Writer):
    """Gathers the files' records and curves; writes the page at the end."""

    wants_frames = True

    def __init__(self, out: IO[str], run: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(out)
        self.run = run
        self.files: list[FileDone | Failed] = []
        self.thumbnails: dict[str, list[bytes | None]] = {}

    def write(self, event: Event) -> None:
        if isinstance(event, (FileDone, Failed)):
            self.files.append(event)

    def attach(self, file: str, jpegs: list[bytes | None]) -> None:
        self.thumbnails[file] = jpegs

    def close(self) -> None:
        self.out.write(page(self.files, self.thumbnails, self.run))
        super().close()


def page(
    files: list[FileDone | Failed],
    thumbnails: dict[str, list[bytes | None]],
    run: tuple[tuple[str, str], ...],
) -> str:
    colours: dict[str, str] = {}
    sections = []
    for event in files:
        if isinstance(event, Failed):
            sections.append(
                f'<section class="file failed" data-file="{esc(event.file)}"><h2>'
                f'{esc(event.file)}</h2><p class="error">{esc(event.message)}</p></section>'
            )
        else:
            sections.append(_file(event, thumbnails.get(event.file, []), colours))
    facts = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in run)
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>vidcls timeline</title><style>{_STYLE}</style></head><body>"
        f'<h1>vidcls timeline</h1><table class="run">{facts}'
        f"<tr><td>vidcls</td><td>{esc(__version__)}</td></tr></table>"
        + "".join(sections)
        + "</body></html>\n"
    )


def _colour(label: str, colours: dict[str, str]) -> str:
    return colours.setdefault(label, PALETTE[len(colours) % len(PALETTE)])


def _file(event: FileDone, jpegs: list[bytes | None], colours: dict[str, str]) -> str:
    record = event.record
    start, end = float(record["start"]), float(record["end"])
    segments = record.get("segments", [])
    facts = [
        ("model", record["model"]), ("weights", record["weights"]),
        ("duration", short(record["duration"])), ("range", f"{short(start)}–{short(end)}"),
        ("size", f"{record['width']}×{record['height']}"),
        ("windows", f"{record['num_windows']} × {record['crops']} crop(s)"),
        ("span", f"{record['span']:g} s"), ("hop", f"{record.get('hop', 0):g} s"),
        ("min duration", f"{record.get('min_duration', 0):g} s"),
    ]  # fmt: skip
    spans = "".join(f"<span>{esc(k)}: <b>{esc(v)}</b></span>" for k, v in facts)
    warnings = "".join(f'<div class="warn">warning: {esc(w)}</div>' for w in record["warnings"])
    parts = [
        f'<section class="file" data-file="{esc(record["file"])}">',
        f'<h2>{esc(record["file"])}</h2><div class="facts">{spans}</div>{warnings}',
        _timeline(segments, start, end, colours),
    ]
    if event.curves and event.curves["pieces"]:
        parts.append(_curves(event.curves, start, end, colours))
    if any(jpegs):
        parts.append(_strip(segments, jpegs))
    parts.append("</section>")
    return "".join(parts)


def _x(t: float, start: float, end: float) -> float:
    return round((t - start) / max(end - start, 1e-9) * _WIDTH, 2)


def _hover(seg: dict[str, Any]) -> str:
    return f"{seg['label']} · {short(seg['start'])}–{short(seg['end'])} · score {seg['score']:.3f}"


def _axis(start: float, end: float, y: int) -> str:
    ticks = []
    for n in range(11):
        t = start + (end - start) * n / 10
        x = _x(t, start, end)
        anchor = "start" if n == 0 else ("end" if n == 10 else "middle")
        ticks.append(
            f'<line x1="{x}" x2="{x}" y1="{y}" y2="{y + 4}" stroke="#999"/>'
            f'<text x="{x}" y="{y + 15}" text-anchor="{anchor}" fill="#666">{esc(short(t))}</text>'
        )
    return "".join(ticks)


def _timeline(segments: list[dict[str, Any]], start: float, end: float, colours: dict[str, str]) -> str:  # fmt: skip # noqa: E501
    rects = []
    for n, seg in enumerate(segments):
        x0, x1 = _x(seg["start"], start, end), _x(seg["end"], start, end)
        colour = _colour(seg["label"], colours)
        label = ""
        if x1 - x0 > 7 * len(seg["label"]) + 8:  # the label only where it fits
            label = (
                f'<text x="{round((x0 + x1) / 2, 2)}" y="27" text-anchor="middle" fill="#fff" '
                f'pointer-events="none">{esc(seg["label"])}</text>'
            )
        rects.append(
            f'<g><rect class="segment" data-index="{n}" data-start="{seg["start"]}" '
            f'data-end="{seg["end"]}" data-label="{esc(seg["label"])}" '
            f'data-score="{seg["score"]}" x="{x0}" y="8" width="{round(x1 - x0, 2)}" '
            f'height="32" fill="{colour}"><title>{esc(_hover(seg))}</title></rect>{label}</g>'
        )
    return (
        f'<svg class="timeline" viewBox="-30 0 {_WIDTH + 38} 62" role="img" '
        f'aria-label="timeline">{"".join(rects)}{_axis(start, end, 42)}</svg>'
    )


def _curves(curves: dict[str, Any], start: float, end: float, colours: dict[str, str]) -> str:
    height = _CURVE_HEIGHT
    grid = "".join(
        f'<line x1="0" x2="{_WIDTH}" y1="{round(height * (1 - v), 2)}" y2="{round(height * (1 - v), 2)}" stroke="#eee"/>'  # noqa: E501
        f'<text x="-2" y="{round(height * (1 - v) + 4, 2)}" text-anchor="end" fill="#999">{v:g}</text>'  # noqa: E501
        for v in (0, 0.5, 1)
    )  # fmt: skip
    paths, legend = [], []
    for track in curves["classes"][: curves["shown"]]:
        colour = _colour(track["label"], colours)
        points = []
        for (a, b), p in zip(curves["pieces"], track["probs"], strict=True):
            y = round(height * (1 - p), 2)
            points.append(f"{_x(a, start, end)},{y} {_x(b, start, end)},{y}")
        peak = max(track["probs"], default=0.0)
        paths.append(
            f'<polyline class="curve" data-label="{esc(track["label"])}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}">'
            f"<title>{esc(track['label'])} (peak {peak:.3f})</title></polyline>"
        )
        legend.append(f'<span><i style="background:{colour}"></i>{esc(track["label"])}</span>')
    return (
        f'<svg class="curves" viewBox="-30 -6 {_WIDTH + 38} {height + 30}" role="img" '
        f'aria-label="probability of the top classes">{grid}{"".join(paths)}'
        f"{_axis(start, end, height)}</svg>"
        f'<div class="legend">{"".join(legend)}</div>'
    )


def _strip(segments: list[dict[str, Any]], jpegs: list[bytes | None]) -> str:
    figures = []
    for seg, jpeg in zip(segments, jpegs, strict=False):
        if jpeg is None:
            continue
        data = base64.b64encode(jpeg).decode("ascii")
        figures.append(
            f'<figure><img class="thumb" alt="{esc(seg["label"])}" title="{esc(_hover(seg))}" '
            f'src="data:image/jpeg;base64,{data}"><figcaption>{esc(short(seg["start"]))} '
            f"{esc(seg['label'])}</figcaption></figure>"
        )
    return f'<div class="strip">{"".join(figures)}</div>'
