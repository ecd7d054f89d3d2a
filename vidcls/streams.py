"""A live source as the decoder sees it: one container that never seeks and goes on.

A stream URL, a camera or a named pipe is read once, as it comes, like standard input. What
differs is that it can stall, end and come back, and that its timestamps can jump (a sender that
restarts, a reconnection). `LiveContainer` stands in for the PyAV container `decode.pick_frames`
reads: its `demux` yields the packets of the current connection, reopens the source when it
stalls or ends (`reconnect` times), and rewrites the packets' timestamps so that the timeline
goes on across a jump, on the stream's clock (the next frame follows the last one) or the wall
clock (the time that really passed). Every jump is said once, as a warning. A `stop` event, or
`duration` seconds of timeline, ends the stream as if it had ended.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import video

_JUMP = 1.0  # seconds: a gap in decode time beyond this (and 10 frames), or going back, is a jump
_RETRY_PAUSE = 0.5  # seconds between attempts to reopen a source that refused

# Set to end every live source being read, as if it had ended (Ctrl-C, SIGTERM, `stop()`);
# cleared when a run starts.
STOP = threading.Event()
_reading = 0  # live sources being read now, in any thread


def reading() -> bool:
    """Whether a live source is being read: a stop would end it."""
    return _reading > 0


class LiveContainer:
    """The container of a live source (see the module's docstring)."""

    def __init__(
        self,
        name: str,
        reopen: Callable[[], Any],
        first: Any,
        *,
        reconnect: int = 0,
        clock: str = "stream",
        duration: float | None = None,
        stop: threading.Event | None = None,
        timeout: float | None = None,
    ) -> None:
        self.name = name
        self.timeout = timeout  # FFmpeg's, for each read: to say a stall in the user's words
        self.current = first
        self._reopen = reopen
        self.reconnects_left = reconnect
        self.reconnects = 0
        self.clock = clock
        self.duration = duration
        self.stop = stop or threading.Event()
        self.warnings: list[str] = []  # said as they happen, also kept for the file's facts
        self.said: Callable[[str], None] | None = None
        self.stopped_by: str | None = None  # "end", "timeout", "stop", "duration"
        self._offset = 0.0  # seconds added to the current connection's timestamps
        self._last: float | None = None  # timeline time (s) of the last packet's decode time
        self._step = 0.0
        self._first: float | None = None  # timeline time of the first packet
        self._wall0 = 0.0
        # (timeline seconds from the first packet, time.time() it arrived), for the lag
        self._arrivals: collections.deque[tuple[float, float]] = collections.deque(maxlen=4096)

    # what pick_frames and video.close read of a container
    @property
    def streams(self) -> Any:
        return self.current.streams

    @property
    def format(self) -> Any:
        return self.current.format

    def arrived(self, t: float) -> float | None:
        """When (time.time()) the first packet at or after `t` s of the timeline arrived; the
        latest packet's arrival when none is that late yet."""
        found = None
        for at, wall in reversed(self._arrivals):
            if at < t - 1e-3:
                break
            found = wall
        if found is None and self._arrivals:
            return self._arrivals[-1][1]
        return found

    def close(self) -> None:
        video.close(self.current)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.said is not None:
            self.said(message)

    def demux(self, _stream: Any = None) -> Iterator[Any]:
        """The packets of the source's video stream, across reconnections, until it ends."""
        global _reading
        _reading += 1
        try:
            yield from self._demux()
        finally:
            _reading -= 1

    def _demux(self) -> Iterator[Any]:
        restarted = False
        while True:
            stream = video.video_stream(self.current)
            self._stream = stream
            packets = self.current.demux(stream)
            failure = None
            while not self.stop.is_set():
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except Exception as e:  # a stalled or dropped source: FFmpeg's timeout or error
                    failure = self._failure(e)
                    break
                if not self._retime(packet, stream, restarted):
                    self.stopped_by = "duration"
                    return
                restarted = False
                yield packet
            if self.stop.is_set():
                self.stopped_by = "stop"
                return
            self.stopped_by = "timeout" if failure else "end"
            if not self._reconnect(failure):
                return
            restarted = True

    def _failure(self, e: Exception) -> str:
        """Why reading stopped; PyAV's timeout interrupts FFmpeg, which calls that an exit."""
        why = video.reason(e)
        if why == "Immediate exit requested" and self.timeout is not None:
            return f"timed out: nothing came for {self.timeout:g} s"
        return why

    def _reconnect(self, failure: str | None) -> bool:
        why = f"stopped ({failure})" if failure else "ended"
        while self.reconnects_left > 0 and not self.stop.is_set():
            self.reconnects_left -= 1
            self.reconnects += 1
            try:
                fresh = self._reopen()
            except Exception as e:
                self._warn(f"the source {why}; reconnecting failed ({video.reason(e)})")
                time.sleep(_RETRY_PAUSE)
                continue
            old, self.current = self.current, fresh
            try:
                video.close(old)
            except Exception:
                pass  # the connection that failed may not close cleanly; the new one is open
            self._warn(f"the source {why}; reconnected (attempt {self.reconnects})")
            return True
        if failure:
            self._warn(f"the source {why}; the results so far are kept")
        return False

    def _retime(self, packet: Any, stream: Any, restarted: bool) -> bool:
        """Shift the packet's timestamps onto the timeline; False once `duration` is reached."""
        ticks = packet.dts if packet.dts is not None else packet.pts
        if ticks is None or not packet.size:
            return True
        if self._first is None and not getattr(packet, "is_keyframe", True):
            return True  # joined mid-stream: the timeline starts where decoding can
        tb = float(stream.time_base)
        now = time.monotonic()
        t = ticks * tb + self._offset
        if self._first is None:
            self._first, self._wall0 = t, now
        elif restarted or t < self._last - _JUMP or t > self._last + max(_JUMP, 10 * self._step):  # type: ignore[operator]  # noqa: E501
            if self.clock == "wall":
                goal = self._first + (now - self._wall0)
            else:
                goal = self._last + self._step  # type: ignore[operator]
            shift = goal - t
            self._offset += shift
            if not restarted:
                self._warn(
                    f"the stream's time jumped by {-shift:+.3f} s at {goal - self._first:.3f} s; "
                    f"the timeline goes on on the {self.clock} clock"
                )
            t = goal
        else:
            if t > self._last:  # type: ignore[operator]
                self._step = t - self._last  # type: ignore[operator]
        self._last = t
        self._arrivals.append((t - self._first, time.time()))
        if self._offset:
            moved = round(self._offset / tb)
            packet.dts = None if packet.dts is None else packet.dts + moved
            packet.pts = None if packet.pts is None else packet.pts + moved
        return self.duration is None or t - self._first < self.duration
