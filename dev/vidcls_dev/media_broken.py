"""Broken and odd inputs for error-handling tests (PyAV only).

What PyAV 18.1 (FFmpeg 8.1) does with each, as pinned by tests/test_media.py:

* empty, random bytes, text named .mp4: ``av.open`` raises ``av.error.InvalidDataError``.
* PNG (also when named .mp4): opens as ``png_pipe`` with one video frame.
* audio only (.m4a, .wav): opens, ``container.streams.video`` is empty, so
  ``next(container.decode(video=0))`` raises a plain ``IndexError``.
* truncated MP4 (moov intact, mdat cut): opens; decoding yields the frames before the cut, and
  the packet at the cut raises ``InvalidDataError`` from ``packet.decode()``.
* truncated header (first 200 bytes): opens with a single ``data`` stream and no video stream.
* corrupt packets: opens; some ``packet.decode()`` calls raise ``InvalidDataError`` while most
  frames still come out. ``container.decode()`` stops at the first such error, so a reader must
  decode packet by packet to get past it. ``frame.is_corrupt`` stays False.
* moov at the end, read from a pipe: ``av.open`` succeeds (logging "partial file"), then the
  first demux raises ``InvalidDataError`` ("stream 0, offset 0x..: partial file"). Only when the
  mdat is larger than PyAV's 32 KiB I/O buffer: a smaller file still plays from a pipe because
  the seek back lands inside the buffer.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

from .media import encode_counter, grain_counter, make_video, top_level_atoms


class Unseekable(io.RawIOBase):
    """Read-only file object that cannot seek, like stdin on a pipe."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._buf.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _PipeWriter(io.RawIOBase):
    """Write-only, unseekable sink: makes muxers write the streaming form of a file."""

    def __init__(self, target: io.BufferedWriter) -> None:
        self._target = target

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:  # type: ignore[override]
        return self._target.write(data)


def unseekable(path: str | Path) -> Unseekable:
    """The file's bytes behind a non-seekable reader (simulated stdin)."""
    return Unseekable(Path(path).read_bytes())


def make_empty(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_random_bytes(path: str | Path, n_bytes: int = 1 << 20, seed: int = 0) -> Path:
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n_bytes, np.uint8).tobytes())
    return path


def make_text(path: str | Path) -> Path:
    """A text file, whatever the suffix (e.g. .mp4)."""
    path = Path(path)
    path.write_text("This is not a video.\n" * 40)
    return path


def make_png(path: str | Path, size: tuple[int, int] = (64, 48)) -> Path:
    """Single PNG image (counter 0); the bytes are PNG whatever the suffix."""
    path = Path(path)
    width, height = size
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="image2pipe") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        frame = av.VideoFrame.from_ndarray(encode_counter(0, width, height), format="rgb24")
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    path.write_bytes(buffer.getvalue())
    return path


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """Audio-only file: AAC for .m4a/.mp4/.aac-in-mkv, 16-bit PCM for .wav."""
    path = Path(path)
    wav = path.suffix.lower() == ".wav"
    rate = 48000
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le" if wav else "aac", rate=rate)
        stream.layout = "mono"
        chunk = 1024
        total = int(seconds * rate)
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            wave = 0.1 * np.sin(2 * np.pi * 440 * (start + np.arange(n)) / rate)
            if wav:
                frame = av.AudioFrame.from_ndarray(
                    (wave * 32767).astype(np.int16)[None], format="s16", layout="mono"
                )
            else:
                frame = av.AudioFrame.from_ndarray(
                    wave.astype(np.float32)[None], format="fltp", layout="mono"
                )
            frame.sample_rate = rate
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_truncated(path: str | Path, n_frames: int = 60, keep: float = 0.5) -> Path:
    """Faststart MP4 cut at ``keep`` of its bytes: header intact, media data cut."""
    path = Path(path)
    make_video(path, n_frames=n_frames, faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_truncated_header(path: str | Path, n_bytes: int = 200) -> Path:
    """Only the first ``n_bytes`` of a faststart MP4 (ftyp and part of moov)."""
    path = Path(path)
    make_video(path, n_frames=30, faststart=True)
    path.write_bytes(path.read_bytes()[:n_bytes])
    return path


def make_corrupt_packets(
    path: str | Path, n_frames: int = 150, spots: int = 4, spot_bytes: int = 300, seed: int = 0
) -> Path:
    """Counter MP4 (keyframe every 30) with random bytes written over ``spots`` places in mdat.

    The spots are spread over the last three quarters of mdat, away from the header, so the
    container still opens and decoding recovers at the next keyframe.
    """
    path = Path(path)
    make_video(path, n_frames=n_frames, gop=30, faststart=True)
    data = bytearray(path.read_bytes())
    _, offset, size = next(a for a in top_level_atoms(path) if a[0] == "mdat")
    rng = np.random.default_rng(seed)
    start, stop = offset + size // 4, offset + size - spot_bytes
    for pos in np.linspace(start, stop, spots).astype(int):
        data[pos : pos + spot_bytes] = rng.integers(0, 256, spot_bytes, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def make_moov_at_end(path: str | Path, n_frames: int = 20) -> Path:
    """MP4 with moov after an mdat well over 32 KiB, so it cannot be read from a pipe."""
    return make_video(path, n_frames=n_frames, content=grain_counter, faststart=False)


def make_streamed_mkv(path: str | Path, n_frames: int = 60, **kwargs) -> Path:
    """Matroska written to a pipe: no seek-back, so no duration, no cues (index)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part.mkv")
    make_video(tmp, n_frames=n_frames, **kwargs)
    # Remux packets into the pipe; the encoder output itself is unaffected by the sink.
    with av.open(str(tmp)) as src, path.open("wb") as sink:
        with av.open(_PipeWriter(sink), "w", format="matroska") as out:
            mapping = {s.index: out.add_stream_from_template(s) for s in src.streams}
            for packet in src.demux():
                if packet.size == 0:  # demux() ends with an empty flush packet
                    continue
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
    tmp.unlink()
    return path


def make_fragmented_mp4(path: str | Path, n_frames: int = 60, **kwargs) -> Path:
    """Fragmented MP4 (empty moov + moof/mdat pairs), the kind that can be read from a pipe."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part.mp4")
    make_video(tmp, n_frames=n_frames, **kwargs)
    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    with av.open(str(tmp)) as src, av.open(str(path), "w", container_options=options) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.size == 0:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    tmp.unlink()
    return path


def make_bit_flips(
    path: str | Path, flips: int = 400, seconds: float = 8.0, size: tuple[int, int] = (640, 360),
    seed: int = 1,
) -> Path:  # fmt: skip
    """A textured MPEG-TS (keyframe every second) with `flips` single bits flipped at random
    places past its first 2 KB: the decoder conceals errors in many frames and FFmpeg logs them."""
    path = Path(path)
    make_video(path, duration=seconds, fps=30, size=size, content=grain_counter, gop=30)
    return _flip_bits(path, flips, seed)


def make_avi_bit_flips(
    path: str | Path, flips: int = 300, seconds: float = 5.0, seed: int = 1
) -> Path:
    """A 5-s MPEG-4 AVI (320×180, a keyframe every 12 frames) with `flips` single bits flipped
    at random places past its first 2 KB, the index at its end included (issue 26: with some
    seeds the damaged index sent every seek back to the keyframe it left)."""
    path = Path(path)
    make_video(path, duration=seconds, fps=30, size=(320, 180), content=grain_counter, gop=12)
    return _flip_bits(path, flips, seed)


def _flip_bits(path: Path, flips: int, seed: int) -> Path:
    """Flip `flips` seeded single bits of a file past its first 2 KB (its header stays readable)."""
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for pos in rng.integers(2048, len(data), flips):
        data[pos] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(data))
    return path


def make_cut_moov_at_end(path: str | Path, n_frames: int = 60, keep: float = 0.6) -> Path:
    """An MP4 whose index (moov) follows the media data, cut at `keep` of its bytes: the index
    is gone, so nothing says where the frames are."""
    path = Path(path)
    make_video(path, n_frames=n_frames, content=grain_counter, faststart=False)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _remux(src_path: Path, path: Path, keep) -> None:
    """Copy the video packets for which keep(packet) is true into `path` (same container)."""
    with av.open(str(src_path)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size == 0 or not keep(packet):
                continue
            packet.stream = stream
            out.mux(packet)


def make_missing_gop(path: str | Path, seconds: float = 6.0, gop_seconds: float = 2.0) -> Path:
    """An MPEG-TS with the second group of pictures (a keyframe and what depends on it) cut
    out, as a lossy link or a bad splice leaves it: the timestamps leap `gop_seconds`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part.ts")
    make_video(tmp, duration=seconds, fps=30, gop=round(30 * gop_seconds), bframes=False)
    with av.open(str(tmp)) as src:
        tb = float(src.streams.video[0].time_base)
    lost = (gop_seconds, 2 * gop_seconds)  # seconds from the first frame
    first: list[float] = []

    def keep(packet) -> bool:
        t = packet.pts * tb
        first.append(first[0] if first else t)
        return not (lost[0] - 1e-3 <= t - first[0] < lost[1] - 1e-3)

    _remux(tmp, path, keep)
    tmp.unlink()
    return path


def make_restarted_ts(path: str | Path, seconds: float = 3.0) -> Path:
    """Two MPEG-TS recordings concatenated byte for byte, as a restarted recorder leaves them:
    the second one's timestamps start again from the beginning."""
    path = Path(path)
    parts = [path.with_name(f"{path.name}.{i}.ts") for i in (0, 1)]
    for part in parts:
        make_video(part, duration=seconds, fps=30, gop=30)
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    for part in parts:
        part.unlink()
    return path
