"""Writing pictures and video back out: a JPEG of the frame shown at a time (the HTML report's
thumbnails) and the whole video re-encoded with something painted on each frame (`--overlay`).

The reading side is `decode.py`'s; these open their own container, one seek per thumbnail or one
pass for the overlay, and never hold more than a frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .decode import EPS, Convert, NoFrames
from .errors import VideoDecodeError
from .video import close, reason, video_stream

if TYPE_CHECKING:
    import av
    import numpy as np


def _jpeg(rgb: np.ndarray, quality: int = 4) -> bytes:
    """A JPEG of an RGB array with FFmpeg's MJPEG encoder (qscale `quality`, 2 best)."""
    import av

    height, width = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2  # 4:2:0 wants even sides
    frame = av.VideoFrame.from_ndarray(rgb[:height, :width].copy(), format="rgb24")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"qmin": str(quality), "qmax": str(quality)}
    frame = frame.reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


def snapshots(source: str, times: Sequence[float], height: int = 72) -> list[bytes | None]:
    """A JPEG of the frame shown at each of `times` (seconds), upright, `height` pixels high;
    None where the video has no frame there. A seek per time: for a handful of thumbnails,
    not a pass over the whole video."""
    from .video import open_container

    out: list[bytes | None] = []
    container = open_container(source)
    try:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        tb = float(stream.time_base)
        origin = (stream.start_time or 0) * tb
        for t in times:
            container.seek(int((origin + t) / tb), stream=stream, backward=True, any_frame=False)
            shown = None
            for frame in container.decode(stream):
                if (
                    frame.pts is not None
                    and frame.pts * tb - origin > t + EPS
                    and shown is not None
                ):  # noqa: E501
                    break
                shown = frame
            if shown is None:
                out.append(None)
                continue
            k = (int(shown.rotation) // 90) % 4
            w, h = (shown.height, shown.width) if k % 2 else (shown.width, shown.height)
            out.append(_jpeg(_fixed((max(2, round(w / h * height)), height))(shown)))
    finally:
        close(container)
    return out


def _fixed(size: tuple[int, int]) -> Convert:
    """An upright RGB array of exactly `size` (width, height) from a frame."""
    import numpy as np

    def convert(frame: av.VideoFrame) -> np.ndarray:
        k = (int(frame.rotation) // 90) % 4
        out_w, out_h = (size[1], size[0]) if k % 2 else size
        rgb = frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="BILINEAR")
        return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb

    return convert


Paint = Callable[["np.ndarray", float], None]


def reencode(source: str, target: str, paint: Paint, crf: int = 20) -> int:
    """Write `source` again to `target` as H.264 (yuv420p) at its size and frame rate, each
    frame upright and passed through `paint(rgb, seconds)` first, which draws on it in place;
    the first audio stream is copied as it is. One frame at a time, so memory stays bounded
    for any length. The file appears at `target` only when complete. Returns the frames
    written."""
    import contextlib
    import tempfile
    from pathlib import Path

    path = Path(target)
    if not path.parent.is_dir():
        raise VideoDecodeError(f"{target}: its folder does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        written = _reencode(source, tmp, paint, crf)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return written


def _reencode(source: str, target: str, paint: Paint, crf: int) -> int:
    import av

    from .video import open_container

    container = open_container(source)
    written = 0
    try:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        tb = stream.time_base
        origin = (stream.start_time or 0) * float(tb)
        audio = container.streams.audio[0] if container.streams.audio else None
        first = next(iter(container.decode(stream)), None)
        if first is None:
            raise NoFrames(f"{source}: no frame decodes")
        k = (int(first.rotation) // 90) % 4
        w, h = (first.height, first.width) if k % 2 else (first.width, first.height)
        size = (w // 2 * 2, h // 2 * 2)
        convert = _fixed((w, h))
        container.seek(0)
        with av.open(target, "w") as output:
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            video = output.add_stream("libx264", rate=rate)
            video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
            video.codec_context.time_base = tb
            video.options = {"crf": str(crf), "preset": "veryfast"}
            copied = output.add_stream_from_template(audio) if audio is not None else None
            wanted = [stream] + ([audio] if audio is not None else [])
            for packet in container.demux(*wanted):
                if packet.stream is audio:
                    if packet.dts is not None and copied is not None:
                        packet.stream = copied
                        output.mux(packet)
                    continue
                for frame in _drain_packet(packet):
                    t = (frame.pts if frame.pts is not None else 0) * float(tb) - origin
                    rgb = convert(frame)[: size[1], : size[0]]
                    paint(rgb, t)
                    out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")  # fmt: skip # noqa: E501
                    out.pts, out.time_base = frame.pts, tb
                    output.mux(video.encode(out))
                    written += 1
            output.mux(video.encode(None))
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{source}: cannot re-encode it ({reason(e)})") from e
    finally:
        close(container)
    return written


def _drain_packet(packet: Any) -> list[Any]:
    import av

    try:
        return list(packet.decode())
    except av.error.InvalidDataError:  # a damaged packet: its frames are lost, not the video
        return []
