"""What one decoded file turned out to be, as plain data: the facts its record reports.

`FileFacts` is built once the window stream is done (`facts_of`), from what probing and
decoding found and from the windows' plan. It holds numbers and strings only, so it crosses
process and Ray boundaries as a dict and comes back equal (`as_dict` / `from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .video import truncated_below

if TYPE_CHECKING:
    from .clips import Plan
    from .decode import DecodeStats
    from .video import VideoInfo


@dataclass(frozen=True)
class FileFacts:
    file: str  # as given; "-" for standard input
    duration: float  # seconds from the first frame to the end of the last
    fps: float | None
    vfr: bool | None  # None: not indexed (standard input)
    rotation: int  # degrees a player turns the stored picture clockwise
    width: int  # as displayed
    height: int
    start: float  # the range classified
    end: float
    span: float  # seconds one window covers
    hop: float | None  # segment: seconds between windows
    crops: int
    frames_decoded: int
    corrupt_packets: int
    damage: tuple[str, ...] = ()  # sentences about damaged input that still decoded
    decode_seconds: float = 0.0
    convert_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["damage"] = list(self.damage)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileFacts:
        return cls(**{**data, "damage": tuple(data["damage"])})


def stream_duration(info: VideoInfo, stats: DecodeStats) -> float:
    """The indexed length of a file; from standard input, the last frame's time plus a frame."""
    if info.seekable and info.duration is not None:
        return info.duration
    step = 1 / info.fps if info.fps else stats.last_step
    return stats.end_time + step


def damage(info: VideoInfo, stats: DecodeStats) -> tuple[str, ...]:
    """What was wrong with a file that still decoded, one sentence each, naming the file."""
    found = []
    if stats.corrupt_packets:
        found.append(f"{info.file}: skipped {stats.corrupt_packets} corrupt packet(s)")
    claimed = info.header_duration
    actual = info.duration if info.seekable else (stats.end_time if stats.finished else None)
    if claimed and actual is not None and actual < truncated_below(claimed):
        found.append(
            f"{info.file}: the video ends at {actual:.2f} s but its header says {claimed:.2f} s "
            "(truncated?)"
        )
    return tuple(found)


def facts_of(info: VideoInfo, stats: DecodeStats, plan: Plan, crops: int) -> FileFacts:
    duration = stream_duration(info, stats)
    fps = info.fps
    if fps is None and stats.frames > 1 and stats.end_time > 0:
        fps = (stats.frames - 1) / stats.end_time
    width, height = stats.size or (info.width, info.height)
    return FileFacts(
        file=info.file,
        duration=duration,
        fps=fps,
        vfr=info.vfr,
        rotation=info.rotation if stats.rotation is None else stats.rotation,
        width=width,
        height=height,
        start=plan.start,
        end=plan.end if plan.end is not None else duration,
        span=plan.span,
        hop=plan.hop,
        crops=crops,
        frames_decoded=stats.frames,
        corrupt_packets=stats.corrupt_packets,
        damage=damage(info, stats),
        decode_seconds=stats.decode_seconds,
        convert_seconds=stats.convert_seconds,
    )
