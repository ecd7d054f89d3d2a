"""Damaged input that still decodes is reported: a `warnings` list in the record and a line
`warning: FILE: sentence` on stderr, for predict, segment and probe; `--strict` makes such a
file fail. FFmpeg's own log never reaches stderr. Clean files get no warning.

Every damaged file is made here (vidcls_dev.media_broken), so each test knows what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidcls.cli import app
from vidcls.config import FileOptions
from vidcls.registry import get_spec
from vidcls.windows import open_windows
from vidcls_dev.media import VARIANTS, make_video
from vidcls_dev.media_broken import (
    make_bit_flips,
    make_cut_moov_at_end,
    make_fragmented_mp4,
    make_missing_gop,
    make_restarted_ts,
    make_streamed_mkv,
    make_truncated,
)

MOTION = ["--model", "motion-tiny", "--precision", "fp32", "-k", "1"]
# what FFmpeg prints itself: "[h264 @ 0x55d…] error while decoding MB 3 7, bytestream -5"
RAW_FFMPEG = re.compile(r"\[[\w-]+ @ 0x[0-9a-f]+\]")


def _jump(path: Path) -> Path:
    """A Matroska file whose frames' times leap 3 s after the first 2 s."""
    times = [i / 30 for i in range(60)] + [5 + i / 30 for i in range(60)]
    return make_video(path, times=times)


# (maker, the sentence expected in the warnings, as a pattern)
DAMAGED = {
    "flips.ts": (
        make_bit_flips,
        r"^\d+ of \d+ decoded frame\(s\) had errors that the decoder concealed; the first: "
        r"\[h264\] .+",
    ),
    "cut.mp4": (
        lambda p: make_truncated(p, n_frames=120),
        r"^the video ends at 1\.\d\d s but its header says 4\.00 s \(truncated\?\)$",
    ),
    "gop.ts": (make_missing_gop, r"^its timestamps leap forward 2\.0\d s at 1\.9\d s$"),
    "restart.ts": (make_restarted_ts, r"^its timestamps leap back 2\.9\d s at 2\.9\d s$"),
    "jump.mkv": (_jump, r"^its timestamps leap forward 3\.0\d s at 1\.9\d s$"),
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("damaged")
    for name, (make, _) in DAMAGED.items():
        make(folder / name)
    make_cut_moov_at_end(folder / "no-index.mp4")
    make_video(folder / "clean.mp4", n_frames=90)
    return folder


def _run(folder: Path, args: list[str]) -> tuple[int, str, list[str]]:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout, result.stderr.splitlines()


@pytest.mark.parametrize("name", list(DAMAGED))
@pytest.mark.parametrize("command", ["predict", "segment"])
def test_damage_is_in_the_record_and_on_stderr(damaged: Path, name: str, command: str) -> None:
    code, out, err = _run(damaged, [command, name, *MOTION, "--json"])
    assert code == 0, err
    record = json.loads(out)
    pattern = DAMAGED[name][1]
    assert any(re.match(pattern, w) for w in record["warnings"]), record["warnings"]
    stderr_warnings = [line for line in err if line.startswith("warning: ")]
    assert stderr_warnings == [f"warning: {name}: {w}" for w in record["warnings"]]
    assert record["top_k"] if command == "predict" else record["segments"]  # result kept


@pytest.mark.parametrize("name", list(DAMAGED))
def test_probe_reports_what_reading_the_packets_and_the_ends_shows(
    damaged: Path, name: str
) -> None:
    code, out, err = _run(damaged, ["probe", name, "--json"])
    assert code == 0
    record = json.loads(out)
    assert [f"warning: {name}: {w}" for w in record["warnings"]] == [
        line for line in err if line.startswith("warning: ")
    ]
    if name != "flips.ts":  # probe decodes only the ends; the flips may all lie between them
        assert any(re.match(DAMAGED[name][1], w) for w in record["warnings"]), record
    else:
        assert record["warnings"], "FFmpeg's errors while reading the ends are counted"


def test_a_cut_index_is_an_error_that_says_why(damaged: Path) -> None:
    code, out, err = _run(damaged, ["predict", "no-index.mp4", "clean.mp4", *MOTION, "-f", "jsonl"])
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["type"] == "error"
    assert "moov atom not found" in records[0]["error"]
    assert records[1]["type"] == "file" and records[1]["warnings"] == []
    assert f"error: {records[0]['error']}" in err


def test_strict_fails_damaged_files_and_keeps_the_others(damaged: Path) -> None:
    args = ["predict", "clean.mp4", "gop.ts", "cut.mp4", *MOTION, "-f", "jsonl", "--strict"]
    code, out, err = _run(damaged, args)
    assert code == 1
    records = {r["file"]: r for r in map(json.loads, out.splitlines())}
    assert records["clean.mp4"]["type"] == "file"
    for name in ("gop.ts", "cut.mp4"):
        assert records[name]["type"] == "error"
        assert records[name]["error"].startswith(f"{name}: ")
        assert records[name]["error"].endswith("(--strict)")
        assert f"error: {records[name]['error']}" in err
    code, out, _ = _run(damaged, ["probe", "gop.ts", "clean.mp4", "--json", "--strict"])
    assert code == 1
    assert [r["type"] for r in json.loads(out)] == ["error", "probe"]


def test_strict_is_part_of_the_run_key_only_when_on(damaged: Path) -> None:
    from vidcls.config import run_key

    loose, strict = FileOptions(), FileOptions(strict=True)
    assert run_key("m", "w", "fp32", None, loose) != run_key("m", "w", "fp32", None, strict)


@pytest.mark.parametrize("command", ["probe", "predict", "segment"])
def test_no_raw_ffmpeg_log_reaches_stderr(damaged: Path, command: str) -> None:
    """In a fresh process, as a user runs it: FFmpeg would print its errors on the bit-flipped
    stream straight to file descriptor 2; they become counted warnings instead."""
    extra = [] if command == "probe" else [*MOTION, "-v"]
    args = [sys.executable, "-m", "vidcls", command, "flips.ts", "--json", *extra]
    done = subprocess.run(args, cwd=damaged, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not RAW_FFMPEG.search(done.stderr), done.stderr
    assert "warning: flips.ts: " in done.stderr
    if command != "probe":  # -v summarises what FFmpeg said, a line a kind of message
        assert re.search(r"^flips\.ts: FFmpeg said \d+ × \[h264\] ", done.stderr, re.M)


def _clean_videos(folder: Path) -> list[Path]:
    paths = [make_video(folder / name, n_frames=45, **kwargs) for name, kwargs, *_ in VARIANTS]
    paths += [
        make_video(folder / "rotated.mp4", n_frames=45, rotation=90),
        make_video(folder / "vfr.mkv", times=[0, 0.04, 0.05, 0.2, 0.333, 0.5, 0.51, 1.0, 1.7]),
        make_video(folder / "audio.mp4", n_frames=45, audio=True),
        make_video(folder / "sixty.mp4", duration=1.5, fps=60),
        make_video(folder / "moov-last.mp4", n_frames=45, faststart=False),
        make_fragmented_mp4(folder / "fragmented.mp4", n_frames=45),
        make_streamed_mkv(folder / "streamed.mkv", n_frames=45),
    ]
    return paths


def test_clean_videos_get_no_warning(tmp_path: Path) -> None:
    spec = get_spec("motion-tiny")
    for path in _clean_videos(tmp_path):
        for mode in ("predict", "segment"):
            stream = open_windows(path, spec, FileOptions(mode=mode))
            for _ in stream:
                pass
            assert stream.facts().warnings == (), (path.name, mode)
    code, out, err = _run(tmp_path, ["probe", *sorted(p.name for p in tmp_path.iterdir()), "--json"])  # fmt: skip # noqa: E501
    assert code == 0, err
    assert all(r["warnings"] == [] for r in json.loads(out)), out
    assert not [line for line in err if line.startswith("warning:")]


def test_frames_the_index_lists_past_the_decoded_end_are_reported() -> None:
    """The sentences from plain facts: frames missing at the end, a leap counted many times."""
    from vidcls.decode import DecodeStats
    from vidcls.facts import warnings_of
    from vidcls.video import VideoInfo

    info = VideoInfo(
        file="x.mp4", container="mp4", codec="h264", pix_fmt="yuv420p", width=64, height=64,
        coded_width=64, coded_height=64, rotation=0, duration=10.0, fps=30.0, vfr=False,
        frame_count=300, audio_streams=0, seekable=True, header_duration=10.0,
    )  # fmt: skip
    stats = DecodeStats(frames=200, end_time=6.64, last_step=1 / 30, finished=True)
    assert warnings_of(info, stats) == (
        "the frames after 6.67 s did not decode (the index lists frames to 10.00 s)",
    )
    stats.finished = False  # stopped on purpose once every window was served: nothing missing
    assert warnings_of(info, stats) == ()
    info.jumps = [(1.0 + i, 2.5) for i in range(20)]
    assert warnings_of(info, stats) == (
        "its timestamps leap 20+ times, the first forward 2.50 s at 1.00 s",
    )
