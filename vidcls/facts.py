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
    warnings: tuple[str, ...] = ()  # sentences about damaged input that still decoded
    ffmpeg_log: tuple[str, ...] = ()  # what FFmpeg said reading it, one line a kind, with -v
    decode_seconds: float = 0.0
    convert_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["warnings"] = list(self.warnings)
        data["ffmpeg_log"] = list(self.ffmpeg_log)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileFacts:
        lists = {k: tuple(data[k]) for k in ("warnings", "ffmpeg_log")}
        return cls(**{**data, **lists})


def stream_duration(info: VideoInfo, stats: DecodeStats) -> float:
    """The indexed length of a file; from standard input, the last frame's time plus a frame."""
    if info.seekable and info.duration is not None:
        return info.duration
    step = 1 / info.fps if info.fps else stats.last_step
    return stats.end_time + step


def warnings_of(info: VideoInfo, stats: DecodeStats) -> tuple[str, ...]:
    """What was wrong with a file that still decoded: plain sentences, the file not named (the
    stderr line adds it)."""
    found = [*_decode_errors(info, stats), *_time_leaps(info, stats)]
    claimed = info.header_duration
    actual = info.duration if info.seekable else (stats.end_time if stats.finished else None)
    if claimed and actual is not None and actual < truncated_below(claimed):
        found.append(
            f"the video ends at {actual:.2f} s but its header says {claimed:.2f} s (truncated?)"
        )
    elif info.unreadable_after is not None:
        found.append(f"the container cannot be read past {info.unreadable_after:.2f} s")
    found.extend(_missing_tail(info, stats))
    return tuple(found)


def _decode_errors(info: VideoInfo, stats: DecodeStats) -> list[str]:
    found = []
    if stats.corrupt_packets:
        found.append(f"skipped {stats.corrupt_packets} corrupt packet(s)")
    log = info.log.merged(stats.log)
    said = f"; the first: {log.first[0]}" if log.first else ""
    if stats.concealed_frames:
        found.append(
            f"{stats.concealed_frames} of {stats.frames} decoded frame(s) had errors that the "
            f"decoder concealed{said}"
        )
    elif log.count:
        found.append(f"FFmpeg reported {log.count} error(s) reading the file{said}")
    return found


def _time_leaps(info: VideoInfo, stats: DecodeStats) -> list[str]:
    # an indexed file's leaps come from its packets; decoded frames skip on purpose there
    jumps = info.jumps if info.seekable else stats.jumps
    if not jumps:
        return []
    at, by = jumps[0]
    first = f"{'forward' if by > 0 else 'back'} {abs(by):.2f} s at {at:.2f} s"
    if len(jumps) == 1:
        return [f"its timestamps leap {first}"]
    more = "+" if len(jumps) >= 20 else ""
    return [f"its timestamps leap {len(jumps)}{more} times, the first {first}"]


def _missing_tail(info: VideoInfo, stats: DecodeStats) -> list[str]:
    """Frames the index lists past the last one that decoded."""
    if not (info.seekable and stats.finished and info.duration and stats.frames):
        return []
    step = stats.last_step or (1 / info.fps if info.fps else 0.0)
    decoded = stats.end_time + step
    if info.duration - decoded <= max(0.25, 3 * step):
        return []
    return [
        f"the frames after {decoded:.2f} s did not decode (the index lists frames to "
        f"{info.duration:.2f} s)"
    ]


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
        warnings=warnings_of(info, stats),
        ffmpeg_log=_log_summary(info, stats),
        decode_seconds=stats.decode_seconds,
        convert_seconds=stats.convert_seconds,
    )


def _log_summary(info: VideoInfo, stats: DecodeStats) -> tuple[str, ...]:
    log = info.log.merged(stats.log)
    common = sorted(log.kinds.items(), key=lambda kv: -kv[1])[:5]
    return tuple(f"{n} × {kind}" for kind, n in common)
