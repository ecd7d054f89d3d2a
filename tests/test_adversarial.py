"""Adversarial input (issue 26): every seek makes progress, every decode has a bound, absurd
headers are refused before they cost anything, and a crash of the decoding process in a
corpus run fails that file only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidcls import decode
from vidcls.cli import app
from vidcls.cli.options import DECODE_TIMEOUT, MAX_DURATION, MAX_PIXELS
from vidcls.cli.options import parse_time as seconds_of
from vidcls.config import FileOptions, run_key
from vidcls.errors import VideoDecodeError
from vidcls.video import LimitError, Limits, Stalled
from vidcls_dev.fuzz import ts_packets
from vidcls_dev.media import grain_counter, make_video
from vidcls_dev.media_broken import make_avi_bit_flips

MOTION = ["--model", "motion-tiny", "--precision", "fp32", "-k", "1", "--format", "json"]


def _run(args: list[str], stdin: bytes | None = None) -> tuple[int, str, list[str]]:
    result = CliRunner().invoke(app, args, input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr.splitlines()


def _one_error(lines: list[str]) -> str:
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, lines
    assert "internal error" not in errors[0]
    return errors[0]


# --- every seek makes progress ------------------------------------------------------------------
class _Packet:
    def __init__(self, pts: int, key: bool) -> None:
        self.pts = self.dts = pts
        self.is_keyframe = key
        self.size = 1
        self.duration = 1
        self.pos = pts

    def decode(self) -> list[_Frame]:
        return [_Frame(self.pts)]


class _Frame:
    def __init__(self, pts: int) -> None:
        self.pts = pts
        self.time = pts / 30
        self.is_corrupt = False
        self.rotation = 0
        self.width, self.height = 64, 48
        self.time_base = Fraction(1, 30)


class _Context:
    is_open = True
    options: dict[str, str] = {}
    skip_frame = "DEFAULT"
    thread_count = 0

    def flush_buffers(self) -> None:
        pass

    def decode(self, packet: None) -> list[_Frame]:
        return []


class _Stream:
    time_base = Fraction(1, 30)
    disposition = 0
    thread_type = "SLICE"

    def __init__(self) -> None:
        self.codec_context = _Context()


class _Streams:
    def __init__(self, stream: _Stream) -> None:
        self.video = [stream]


class _Container:
    """120 packets, a keyframe every 30, whose every seek lands back on the first packet (as a
    damaged index makes the demuxer do); `packets` overrides what demuxing yields."""

    def __init__(self, packets: list[_Packet] | None = None, endless: bool = False) -> None:
        self.packets = packets or [_Packet(i, i % 30 == 0) for i in range(120)]
        self.endless = endless
        self.at = 0
        self.seeks = 0
        self.stream = _Stream()
        self.streams = _Streams(self.stream)

    def demux(self, stream: _Stream):  # noqa: ANN201
        while self.endless or self.at < len(self.packets):
            packet = self.packets[self.at % len(self.packets)]
            self.at += 1
            yield packet

    def seek(self, target: int, **kwargs: object) -> None:
        self.seeks += 1
        if self.seeks > 50:
            raise AssertionError("the decoder keeps seeking back to the same place")
        self.at = 0


def _decode_planned(container: _Container, name: str) -> tuple[list, decode.DecodeStats]:
    """The frames the decoder yields for frames 95 and 100 of four 30-frame groups, and stats."""
    plan = decode.DecodePlan(wanted=[95, 100], keyframes=[0, 30, 60, 90])
    picking = decode.Picking(name, lambda f: None, plan=plan, threads="SLICE")  # type: ignore[arg-type,return-value]
    stats = decode.DecodeStats()
    watchdog = decode.Watchdog(name, 60.0, "decoding")
    frames = list(decode._decoded(container, container.stream, stats, picking, watchdog))  # type: ignore[arg-type]
    return frames, stats


def test_a_seek_that_lands_back_stops_jumping_and_decoding_goes_on() -> None:
    container = _Container()
    frames, stats = _decode_planned(container, "back.avi")
    assert container.seeks == 1 and stats.seek_failed
    # decoded on in order from where the seek landed, to the end, wanted frames included
    assert [f.pts for f in frames] == list(range(120))


def test_a_seek_that_lands_further_keeps_jumping() -> None:
    class Forward(_Container):
        def seek(self, target: int, **kwargs: object) -> None:
            self.seeks += 1
            self.at = target

    container = Forward()
    frames, stats = _decode_planned(container, "fine.avi")
    assert container.seeks == 1 and not stats.seek_failed
    assert frames[0].pts == 90  # the groups before the wanted frames were jumped over


def test_decoding_without_progress_fails_after_the_timeout() -> None:
    # a demuxer that yields the same packet for ever: no frame ever comes later than the last
    container = _Container([_Packet(5, True)], endless=True)
    picking = decode.Picking(
        "loop.mkv",
        lambda f: None,
        threads="SLICE",
        limits=Limits(decode_timeout=0.3),  # type: ignore[arg-type,return-value]
    )
    started = time.monotonic()
    with pytest.raises(Stalled, match=r"^loop\.mkv: decoding made no progress in 0\.3 s \(--decode-timeout\)"):  # fmt: skip # noqa: E501
        list(decode.pick_frames(container, [], picking, decode.DecodeStats()))  # type: ignore[arg-type]
    assert time.monotonic() - started < 10


# the seed that made the issue's hang: before the fix, `predict` looped in the keyframe jump
HANG_SEED = 28


def test_the_issues_bit_flipped_avi_finishes(tmp_path: Path) -> None:
    from vidcls.registry import get_spec
    from vidcls.windows import open_windows

    path = make_avi_bit_flips(tmp_path / "flips.avi", seed=HANG_SEED)
    # its damaged index sends the one jump back: jumping stops, decoding goes on in order
    stream = open_windows(path, get_spec("motion-tiny"), FileOptions())
    assert len(list(stream)) == 3
    assert stream.stats.seeks == 1 and stream.stats.seek_failed
    started = time.monotonic()
    command = [sys.executable, "-m", "vidcls", "predict", str(path), *MOTION]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 120
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["top_k"] and record["frames_decoded"] > 0
    assert any("concealed" in w for w in record["warnings"])  # the damage is still reported


# --- absurd headers are refused -----------------------------------------------------------------
@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("adv") / "clip.mp4", duration=2.0, size=(320, 180))


@pytest.mark.parametrize("command", ["probe", "predict"])
def test_a_frame_beyond_max_pixels_is_refused_naming_the_file_and_field(
    clip: Path, command: str
) -> None:
    args = [command, str(clip), "--max-pixels", "1000"]
    code, _, lines = _run(args + (MOTION if command == "predict" else []))
    assert code == 1
    assert _one_error(lines) == (
        f"error: {clip}: its header's frame size 320×180 is more than --max-pixels 1000 pixels"
    )


def test_a_frame_far_wider_than_tall_is_refused(tmp_path: Path) -> None:
    path = make_video(tmp_path / "strip.mkv", n_frames=10, size=(1040, 16))
    code, _, lines = _run(["predict", str(path), *MOTION])
    assert code == 1
    assert _one_error(lines) == (
        f"error: {path}: its header's frame size 1040×16 has one side more than 32 times the other"
    )


def test_size_limits() -> None:
    limits = Limits(max_pixels=1 << 28)
    limits.check_size("a", 16384, 8192, "size")
    limits.check_size("a", 0, 0, "size")  # not known yet
    with pytest.raises(LimitError, match=r"^a: size 16386×1024 is more than 16384 pixels a side$"):
        limits.check_size("a", 16386, 1024, "size")
    limits.check_size("a", 16384, 16384, "size")  # 2^28 pixels: the default allows it
    small = Limits(max_pixels=1 << 20)
    small.check_size("a", 2048, 512, "size")
    with pytest.raises(LimitError, match=r"^a: size 2048×514 is more than --max-pixels 1048576"):
        small.check_size("a", 2048, 514, "size")


def test_a_file_longer_than_max_duration_is_refused(clip: Path) -> None:
    code, _, lines = _run(["segment", str(clip), *MOTION, "--max-duration", "1.5"])
    assert code == 1
    assert _one_error(lines) == (
        f"error: {clip}: its packets span 2 s is more than --max-duration 1.5 s"
    )


@pytest.mark.parametrize(
    ("ticks", "error"),
    [
        # 2^33 - 1 ticks of 90 kHz (26.5 h): past the default --max-duration
        ((1 << 33) - 1, r"its packets span 95443\.\d+ s is more than --max-duration 86400 s$"),
        # 9.7 h: under it, but 60 frames cannot span that: a leap, not a video
        (3142757707, r"its timestamps span 34919\.\d+ s with only 60 frame\(s\), less than one "
                     r"every 10 s: they leap \(a damaged file\?\)$"),
    ],
)  # fmt: skip
def test_a_timestamp_leap_to_the_end_of_time_is_refused(
    tmp_path: Path, ticks: int, error: str
) -> None:
    """One PES timestamp of an MPEG-TS set far ahead: its windows would repeat one frame for
    hours (each a model run); refused in one line, before decoding."""
    path = make_video(tmp_path / "leap.ts", duration=2.0, size=(128, 96), gop=15)
    data = bytearray(path.read_bytes())
    heads = [p.start for p in ts_packets(bytes(data)) if data[p.start + 1] & 0x40
             and data[p.start + 4 : p.start + 7] == b"\x00\x00\x01"]  # fmt: skip
    pos = heads[-1] + 4 + 9
    data[pos : pos + 5] = bytes([
        0x21 | ((ticks >> 29) & 0x0E), (ticks >> 22) & 0xFF, ((ticks >> 14) & 0xFE) | 1,
        (ticks >> 7) & 0xFF, ((ticks << 1) & 0xFE) | 1,
    ])  # fmt: skip
    path.write_bytes(bytes(data))
    started = time.monotonic()
    code, _, lines = _run(["segment", str(path), *MOTION])
    assert time.monotonic() - started < 30
    assert code == 1
    assert re.match(rf"error: {re.escape(str(path))}: {error}", _one_error(lines)), lines


def test_standard_input_past_max_duration_stops(tmp_path: Path) -> None:
    path = make_video(tmp_path / "pipe.mkv", duration=3.0, size=(128, 96))
    args = ["predict", "-", *MOTION, "--max-duration", "2"]
    code, _, lines = _run(args, stdin=path.read_bytes())
    assert code == 1
    error = _one_error(lines)
    assert error.startswith("error: -: a frame at 2.")
    assert error.endswith("s is past --max-duration 2 s")


def test_a_zero_time_base_is_refused() -> None:
    from vidcls.video import _time_base

    with pytest.raises(LimitError, match=r"^x\.avi: the time base 0 in its header is zero$"):
        _time_base("x.avi", Fraction(0, 1))
    with pytest.raises(LimitError, match="is absurd"):
        _time_base("x.avi", Fraction(10**6, 1))
    assert _time_base("x.avi", Fraction(1, 90000)) == pytest.approx(1 / 90000)


def test_limits_are_options_with_the_documented_defaults() -> None:
    assert MAX_PIXELS == Limits.max_pixels == FileOptions().max_pixels
    assert seconds_of(MAX_DURATION, "x") == Limits.max_duration == FileOptions().max_duration
    assert DECODE_TIMEOUT == Limits.decode_timeout == FileOptions().decode_timeout
    with pytest.raises(Exception, match="--max-pixels must be positive"):
        FileOptions(max_pixels=0)
    code, _, lines = _run(["probe", "x.mp4", "--max-duration", "0"])
    assert code == 2 and lines[-1] == "error: --max-duration must be positive"


def test_limits_enter_the_run_key_only_when_changed() -> None:
    default = run_key("m", "w", "fp32", None, FileOptions())
    assert run_key("m", "w", "fp32", None, FileOptions(max_pixels=1 << 28)) == default
    for changed in ({"max_pixels": 1 << 20}, {"max_duration": 60.0}, {"decode_timeout": 5.0}):
        assert run_key("m", "w", "fp32", None, FileOptions(**changed)) != default  # type: ignore[arg-type]


def _with_limits(clip: Path, limits: Limits):  # noqa: ANN202
    """The clip's window stream, probed with the default limits and decoded with `limits`: as
    if its header had said less than its stream holds."""
    from vidcls.registry import get_spec
    from vidcls.windows import open_windows

    stream = open_windows(clip, get_spec("motion-tiny"), FileOptions())
    stream.limits = limits
    return stream


def test_the_decoder_refuses_a_picture_beyond_the_limits(clip: Path) -> None:
    """libavcodec's own guard (max_pixels): the decoder allocates no picture past the limit."""
    stream = _with_limits(clip, Limits(max_pixels=1000))
    with pytest.raises(VideoDecodeError, match=rf"^{clip}: no frame could be decoded$"):
        list(stream)
    assert stream.stats.frames == 0


def test_a_decoded_frame_beyond_the_limits_is_refused(
    clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the decoder's guard the first decoded frame is checked as the header was."""
    monkeypatch.setattr(decode, "guard", lambda stream, limits: None)
    stream = _with_limits(clip, Limits(max_pixels=1000))
    with pytest.raises(LimitError) as e:
        list(stream)
    assert str(e.value) == (
        f"{clip}: its first decoded frame's size 320×180 is more than --max-pixels 1000 pixels"
    )
    assert stream.stats.frames == 1


# --- a crash of the decoding process fails its file only ----------------------------------------
def _two_workers(
    tmp_path: Path, middle: str, hook: str, *options: str, in_process: bool = False
) -> tuple[list[str], list[str], Path, subprocess.CompletedProcess, dict[str, dict]]:
    """Four small videos, the second named `middle`, through `predict --workers 2` with the
    decoder test hook set: the names, the command, the results file, the run, its records."""
    videos = [
        make_video(tmp_path / name, n_frames=30, size=(128, 96), content=grain_counter)
        for name in ("a.mp4", middle, "c.mp4", "d.mp4")
    ]
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable, "-m", "vidcls", "predict", *map(str, videos), *MOTION[:-2],
        "-o", str(out), "--workers", "2", *options,
    ]  # fmt: skip
    env = {**os.environ, "VIDCLS_TEST_DECODER_CRASH": hook}
    env["VIDCLS_DECODE_IN_PROCESS"] = "1" if in_process else ""
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    records = {r["file"]: r for r in map(json.loads, out.read_text().splitlines())}
    return list(map(str, videos)), command, out, done, records


@pytest.mark.parametrize("where", ["child", "worker"])
def test_a_decoder_crash_in_a_worker_fails_that_file_and_the_run_goes_on(
    tmp_path: Path, where: str
) -> None:
    """A worker decodes in a child process of its own: the crash takes that child only. Where
    the worker decodes itself (VIDCLS_DECODE_IN_PROCESS=1) it takes the worker, which is replaced
    and its read-ahead files go back in the queue: the same records either way."""
    videos, command, out, done, records = _two_workers(
        tmp_path, "crash-me.mp4", "SIGSEGV:crash-me", in_process=where == "worker"
    )
    assert done.returncode == 1
    crashed = videos[1]
    assert records[crashed]["type"] == "error"
    assert records[crashed]["error"] == (
        f"{crashed}: the process decoding it died (SIGSEGV); the run went on without it"
    )
    assert all(records[v]["type"] == "file" for v in videos if v != crashed)
    assert f"error: {crashed}: the process decoding it died (SIGSEGV)" in done.stderr
    # --resume takes the crashed file for a failed one: it runs again, and only it
    again = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["file"] for r in lines) == sorted(videos)
    assert all(r["type"] == "file" for r in lines)


def test_a_decoder_crash_in_a_local_corpus_run_fails_that_file_only(tmp_path: Path) -> None:
    """Without workers a corpus decodes in a child process: the crash takes that child only."""
    videos = [
        make_video(tmp_path / name, n_frames=30, size=(128, 96), content=grain_counter)
        for name in ("a.mp4", "abort-me.mp4", "c.mp4")
    ]
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable, "-m", "vidcls", "predict", *map(str, videos), *MOTION[:-2], "-o", str(out)
    ]  # fmt: skip
    env = {**os.environ, "VIDCLS_TEST_DECODER_CRASH": "SIGABRT:abort-me"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in records] == list(map(str, videos))  # in order, none lost
    assert [r["type"] for r in records] == ["file", "error", "file"]
    assert records[1]["error"] == (
        f"{videos[1]}: the process decoding it died (SIGABRT); the run went on without it"
    )
    # the same results as decoding in this process
    env["VIDCLS_DECODE_IN_PROCESS"] = "1"
    env["VIDCLS_TEST_DECODER_CRASH"] = ""
    inside = tmp_path / "inside.jsonl"
    command[command.index(str(out))] = str(inside)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    here = [json.loads(line) for line in inside.read_text().splitlines()]
    for kept, same in zip(records[::2], here[::2], strict=True):
        assert kept["top_k"] == same["top_k"]


def test_which_runs_decode_in_a_child_process(tmp_path: Path, monkeypatch) -> None:
    from vidcls.drivers.local import decodes_apart

    monkeypatch.delenv("VIDCLS_DECODE_IN_PROCESS", raising=False)
    files = [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert decodes_apart(files)
    assert not decodes_apart(files[:1])  # one file: nothing to protect
    assert not decodes_apart([*files, "-"])  # standard input cannot be handed over
    assert not decodes_apart([*files, "udp://127.0.0.1:5000"])  # Ctrl-C must reach it
    assert not decodes_apart([*files, "v4l2:/dev/video0"])
    monkeypatch.setenv("VIDCLS_DECODE_IN_PROCESS", "1")
    assert not decodes_apart(files)


def test_a_decoder_that_never_returns_in_a_corpus_run_is_stopped(tmp_path: Path) -> None:
    """A native call that never returns cannot be interrupted where it runs: the parent hears
    nothing from the decoding child past 2 × --decode-timeout + 5 s, stops it, and goes on."""
    from vidcls.windows import silence_limit

    videos = [
        make_video(tmp_path / name, n_frames=30, size=(128, 96), content=grain_counter)
        for name in ("a.mp4", "hang-me.mp4", "c.mp4")
    ]
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable, "-m", "vidcls", "predict", *map(str, videos), *MOTION[:-2],
        "-o", str(out), "--decode-timeout", "1",
    ]  # fmt: skip
    env = {**os.environ, "VIDCLS_TEST_DECODER_CRASH": "HANG:hang-me"}
    env.pop("VIDCLS_DECODE_IN_PROCESS", None)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["type"] for r in records] == ["file", "error", "file"]
    assert records[1]["error"] == (
        f"{videos[1]}: the process decoding it said nothing for {silence_limit(1):g} s "
        "(--decode-timeout): a call into FFmpeg never returned; it was stopped and the run went "
        "on without it"
    )


def test_a_decoder_that_never_returns_in_a_worker_is_stopped(tmp_path: Path) -> None:
    """With --workers too: the worker's decoding child is stopped, the worker goes on."""
    from vidcls.windows import silence_limit

    videos, _, _, done, records = _two_workers(
        tmp_path, "hang-me.mp4", "HANG:hang-me", "--decode-timeout", "1"
    )
    assert done.returncode == 1, done.stderr
    assert sorted(records) == sorted(videos)
    hung = videos[1]
    assert records[hung]["error"] == (
        f"{hung}: the process decoding it said nothing for {silence_limit(1):g} s "
        "(--decode-timeout): a call into FFmpeg never returned; it was stopped and the run went "
        "on without it"
    )
    assert all(records[v]["type"] == "file" for v in videos if v != hung)


def test_a_decoding_child_that_raised_goes_on_with_the_next_file(
    tmp_path: Path, monkeypatch
) -> None:
    """An unexpected error ends its file in the parent (raised again there); the child stays and
    decodes the next file whole (Ray keeps one child for all the files of its worker)."""
    import vidcls
    from vidcls.config import FileOptions
    from vidcls.windows import Closed, DecodeChild, Decoded

    bad, good = (
        make_video(tmp_path / name, n_frames=30, size=(128, 96), content=grain_counter)
        for name in ("raise-me.mp4", "good.mp4")
    )
    monkeypatch.setenv("VIDCLS_TEST_DECODER_CRASH", "RAISE:raise-me")  # the child inherits it
    child = DecodeChild(vidcls.get_spec("motion-tiny"), FileOptions())
    try:
        with pytest.raises(RuntimeError, match="the test hook raised"):
            list(child.items(str(bad)))
        items = list(child.items(str(good)))
    finally:
        child.close()
    assert any(isinstance(i, Decoded) for i in items) and isinstance(items[-1], Closed)
