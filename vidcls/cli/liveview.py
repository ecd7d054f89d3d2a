"""The live view of a followed source on stderr: the current action, its score, the lag, the
drops, and a scrolling timeline of the last segments (segment) or windows (predict).

It is fed the run's events, the ones the writers get, and drawn by a Rich Live in `Session`;
stdout keeps the records. Labels and file names are untrusted, so everything is built from
`Text` pieces, never markup.
"""

from __future__ import annotations

import collections
import re
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..events import Event, Failed, FileDone, SegmentDone, WindowDone
from ..output.terminal import short_clock

ROWS = 8  # timeline lines kept on screen
# control characters in a label (an escape sequence) would drive the terminal
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class LiveView:
    """What the latest followed file is doing; `add` an event, render with `console.print` or
    a Rich Live (see the module's docstring)."""

    def __init__(self, mode: str, rows: int = ROWS) -> None:
        self.mode = mode
        self.file: str | None = None
        self.window: dict[str, Any] | None = None  # the latest window record
        self.windows = 0
        self.done = False  # the file ended: nothing to show until the next one
        # (start, end, label, score), oldest first
        self.timeline: collections.deque[tuple[float, float, str, float]] = collections.deque(
            maxlen=rows
        )

    def add(self, event: Event) -> bool:
        """Take in an event; whether the view changed."""
        if isinstance(event, WindowDone):
            if event.file != self.file:
                self._start(event.file)
            self.windows = event.done
            if event.record is None:  # a file that is not followed: a count only
                return True
            self.window = event.record
            if self.mode != "segment":
                self.timeline.append(_row(event.record))
            return True
        if isinstance(event, SegmentDone) and event.file == self.file:
            self.timeline.append(_row(event.record))
            return True
        if isinstance(event, (FileDone, Failed)) and event.file == self.file:
            self.done = True
            return True
        return False

    def _start(self, file: str) -> None:
        self.file, self.window, self.windows, self.done = file, None, 0, False
        self.timeline.clear()

    def __rich__(self) -> RenderableType:
        if self.file is None or self.done:
            return Group()  # no line at all: what is printed next is not drawn over
        return Group(self._header(), self._timeline())

    def _header(self) -> Text:
        # one line whatever the width: the timeline below keeps its place
        line = Text(_shown(self.file), style="bold", no_wrap=True, overflow="ellipsis")
        if self.window is None:
            return line.append(f"  {self.windows} window(s)", style="dim")
        best = self.window["top_k"][0]
        line.append("  now ", style="dim").append(_shown(best["label"]), style="bold cyan")
        line.append(f" {best['score']:.2f}")
        line.append(f"  {short_clock(self.window['start'])}–{short_clock(self.window['end'])}")
        facts = [f"{self.windows} window(s)"]
        if self.window.get("lag") is not None:
            facts.append(f"lag {self.window['lag']:.2f} s")
        if self.window.get("dropped") is not None:
            facts.append(f"dropped {self.window['dropped']}")
        return line.append("  " + " · ".join(facts), style="dim")

    def _timeline(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for _ in range(3):
            table.add_column(no_wrap=True)
        for start, end, label, score in self.timeline:
            span = Text(f"{short_clock(start)}–{short_clock(end)}", style="dim")
            table.add_row(span, Text(_shown(label)), Text(f"{score:.2f}"))
        return table


def _row(record: dict[str, Any]) -> tuple[float, float, str, float]:
    """A window's best label, or a segment's."""
    best = record["top_k"][0] if "top_k" in record else record
    return record["start"], record["end"], best["label"], best["score"]


def _shown(text: str) -> str:
    return _CONTROL.sub(" ", text)
