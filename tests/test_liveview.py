"""The live view of a followed source (issue 30): the current action, its score, the lag, the
drops and a scrolling timeline on stderr, drawn from the run's events; nothing at all when
stderr is not a terminal or with -q, so pipes keep their exact bytes.

The view is rendered into a Rich console that writes to a string as a terminal would.
"""

from __future__ import annotations

import io
import re

from rich.console import Console

from vidcls.cli.liveview import LiveView
from vidcls.cli.session import Session
from vidcls.events import Event, FileDone, SegmentDone, Timed, WindowDone

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _terminal(width: int = 100) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=width, color_system="truecolor"), out


def _screen(view: LiveView) -> str:
    console, out = _terminal()
    console.print(view)
    return ANSI.sub("", out.getvalue())


def _window(k: int, label: str, score: float, lag: float = 0.25, dropped: int = 0) -> WindowDone:
    record = {
        "type": "window", "file": "rtsp://cam/1", "start": k * 0.5, "end": k * 0.5 + 2.0,
        "top_k": [{"label": label, "index": k, "score": score}], "lag": lag, "dropped": dropped,
    }  # fmt: skip
    return WindowDone("rtsp://cam/1", k + 1, None, record)


def _segment(start: float, end: float, label: str, score: float) -> SegmentDone:
    record = {
        "type": "segment", "file": "rtsp://cam/1", "start": start, "end": end, "label": label,
        "index": 0, "score": score, "windows": 3, "final": True,
    }  # fmt: skip
    return SegmentDone("rtsp://cam/1", record)


def test_the_current_action_its_score_lag_and_drops_are_shown() -> None:
    view = LiveView("predict")
    for event in (_window(0, "waving", 0.41), _window(1, "clapping", 0.873, lag=0.31, dropped=2)):
        assert view.add(event)
    header = _screen(view).splitlines()[0]
    assert "rtsp://cam/1" in header
    assert "now clapping 0.87" in header, header
    assert "lag 0.31 s" in header and "dropped 2" in header and "2 window(s)" in header, header


def test_the_timeline_scrolls_the_oldest_line_out() -> None:
    view = LiveView("predict", rows=3)
    labels = ["alpha", "bravo", "charlie", "delta"]
    for k, label in enumerate(labels[:3]):
        view.add(_window(k, label, 0.5))
    assert all(label in _screen(view) for label in labels[:3])
    view.add(_window(3, "delta", 0.5))
    lines = _screen(view).splitlines()
    timeline = lines[1:]
    assert len(timeline) == 3, lines
    assert not any("alpha" in line for line in timeline), lines
    assert [line.split()[1] for line in timeline] == ["bravo", "charlie", "delta"], lines
    assert timeline[0].split()[0] == "00:00.500–00:02.500", timeline[0]


def test_segment_mode_shows_final_segments_on_the_timeline() -> None:
    view = LiveView("segment")
    view.add(_window(0, "waving", 0.6))
    view.add(_window(1, "waving", 0.7))
    assert _screen(view).splitlines()[1:] == []  # no segment is final yet
    view.add(_segment(0.0, 2.5, "waving", 0.65))
    view.add(_window(2, "jumping", 0.9))
    lines = _screen(view).splitlines()
    assert "now jumping 0.90" in lines[0], lines
    assert lines[1].split() == ["00:00.000–00:02.500", "waving", "0.65"], lines


def test_labels_and_names_are_shown_literally() -> None:
    view = LiveView("predict")
    view.add(_window(0, "[bold red]x", 0.5))
    view.add(_window(1, "[link=http://evil]y[/link] \x1b[2Jz", 0.5))
    console, out = _terminal()
    console.print(view)
    raw = out.getvalue()
    assert "\x1b[2J" not in raw  # a label's own escape sequence never reaches the terminal
    screen = ANSI.sub("", raw)
    assert "[bold red]x" in screen
    assert "[link=http://evil]y[/link]  [2Jz" in screen  # the escape itself became a space


def test_a_finished_file_leaves_no_line_behind() -> None:
    view = LiveView("predict")
    view.add(_window(0, "waving", 0.5))
    assert view.add(FileDone("rtsp://cam/1", {"type": "file"}))
    assert _screen(view) == ""
    view.add(WindowDone("b.ts", 1, None, None))  # the next file, not followed: a count
    assert _screen(view).strip() == "b.ts  1 window(s)"


def _scripted() -> list[Event]:
    return [
        _window(0, "waving", 0.6),
        _window(1, "waving", 0.7),
        _segment(0.0, 2.5, "waving", 0.65),
        _window(2, "[red]jumping", 0.9),
        _segment(2.5, 3.0, "[red]jumping", 0.9),
        FileDone("rtsp://cam/1", {"type": "file"}),
        Timed("rtsp://cam/1", 3, 0.1, 0.1, 0.1, 0.3),
    ]


def test_the_session_draws_the_view_and_passes_every_event_on() -> None:
    console, out = _terminal()
    session = Session(console, lambda message: None, quiet=False, verbose=False)
    events = _scripted()
    assert list(session._live(iter(events), "segment")) == events
    drawn = ANSI.sub("", out.getvalue())
    assert "now waving 0.70" in drawn and "now [red]jumping 0.90" in drawn, drawn
    assert "00:02.500–00:03.000  [red]jumping  0.90" in drawn, drawn


def test_no_view_off_a_terminal_or_with_quiet() -> None:
    out = io.StringIO()
    plain = Session(Console(file=out, width=100), lambda m: None, quiet=False, verbose=False)
    assert not plain.console.is_terminal
    console, quiet_out = _terminal()
    quiet = Session(console, lambda m: None, quiet=True, verbose=False)
    for session in (plain, quiet):
        events = _scripted()
        assert list(session._live(iter(events), "segment")) == events
    assert out.getvalue() == "" and quiet_out.getvalue() == ""
