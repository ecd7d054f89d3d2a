"""Inputs (lists, globs, directories, stdin), time ranges, label control, probe, -v."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import vidcls
from vidcls.cli import app
from vidcls.cli.options import parse_time
from vidcls.errors import UsageError
from vidcls_dev.media import make_video, read_counter
from vidcls_dev.media_broken import make_audio_only, make_corrupt_packets, make_truncated


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    (root / "videos" / "deep").mkdir(parents=True)
    return {
        "root": root,
        "weights": tiny_weights,
        "a": make_video(root / "videos" / "a.mp4", n_frames=90, size=(160, 90)),
        "b": make_video(root / "videos" / "b.mkv", n_frames=90, size=(160, 90)),
        "c": make_video(root / "videos" / "deep" / "c.webm", n_frames=90, size=(160, 90)),
        "long": make_video(root / "long.mp4", n_frames=1200, fps=30, size=(160, 90), gop=30),
    }


def run(files, *args: str, input: str | bytes | None = None):
    return CliRunner().invoke(app, [*args, "--weights", str(files["weights"])], input=input)


def names(result) -> list[str]:
    records = json.loads(result.stdout)
    return [r["file"] for r in (records if isinstance(records, list) else [records])]


def test_from_list_on_stdin_skips_blanks_and_comments(files) -> None:
    listing = f"# my videos\n{files['a']}\n\n   \n{files['c']}\n# done\n"
    result = run(files, "predict", "--from-list", "-", "--json", input=listing)
    assert result.exit_code == 0, result.output
    assert names(result) == [str(files["a"]), str(files["c"])]


def test_from_list_file_with_a_missing_path_fails_only_that_one(files, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(f"{files['a']}\n{tmp_path / 'gone.mp4'}\n")
    result = run(files, "predict", "--from-list", str(listing), "--json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert "top_k" in records[0] and records[1]["error"].endswith("no such file")


def test_globs_and_directories(files) -> None:
    videos = files["root"] / "videos"
    result = run(files, "predict", str(videos / "*.m??"), "--json")  # quoted: expanded by vidcls
    assert names(result) == [str(files["a"]), str(files["b"])]
    result = run(files, "predict", str(videos), "--recursive", "--json")
    assert names(result) == [str(files["a"]), str(files["b"]), str(files["c"])]
    result = run(files, "predict", str(videos), "--json")
    assert result.exit_code == 2 and "is a directory (use --recursive" in result.stderr
    result = run(files, "predict", str(videos / "*.avi"))
    assert result.exit_code == 2 and "no file matches" in result.stderr


def test_stdin_and_from_list_cannot_share_stdin(files) -> None:
    result = run(files, "predict", "-", "--from-list", "-")
    assert result.exit_code == 2 and "cannot share stdin" in result.stderr


@pytest.mark.parametrize(
    "text, seconds",
    [("12.5", 12.5), ("90", 90.0), ("1:02.5", 62.5), ("01:02:03.250", 3723.25), ("0:00:07", 7.0)],
)
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text, "--start") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1:2:3:4", "ten", "-3"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_time(text, "--start")


def test_time_range_windows_stay_inside_and_times_stay_absolute(files) -> None:
    result = run(files, "segment", str(files["long"]), "--start", "0:10", "--end", "32.5", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["start"], record["end"], record["duration"]) == (10.0, 32.5, 40.0)
    windows = record["windows"]
    assert windows[0]["start"] == 10.0 and windows[-1]["end"] == 32.5
    assert all(10.0 <= w["start"] and w["end"] <= 32.5 for w in windows)
    assert record["segments"][0]["start"] == 10.0 and record["segments"][-1]["end"] == 32.5
    # the frames are the ones shown at those absolute times (found by seeking, not decoding all)
    inputs = list(vidcls.model_inputs(files["long"], start=10.0, end=32.5, mode="segment"))
    assert [round(s, 3) for s, _, _ in inputs] == [w["start"] for w in windows]
    start, _, x = inputs[0]
    counters = [read_counter(x[1, i].permute(1, 2, 0).numpy()) for i in range(8)]
    assert counters == [300, 336, 372, 409, 445, 482, 518, 555]
    # a range shorter than the span: one window, its frames past the range end repeat the last
    (only,) = list(vidcls.model_inputs(files["long"], start=20.0, end=22.0))
    counters = [read_counter(only[2][1, i].permute(1, 2, 0).numpy()) for i in range(8)]
    assert only[:2] == (20.0, 22.0) and counters == [600, 636, 659, 659, 659, 659, 659, 659]


def test_empty_range_is_an_error_for_that_file(files) -> None:
    result = run(files, "predict", str(files["a"]), "--start", "50", "--json")
    assert result.exit_code == 1 and "is empty" in json.loads(result.stdout)["error"]
    result = run(files, "predict", str(files["a"]), "--start", "5", "--end", "2")
    assert result.exit_code == 2 and "must come after --start" in result.stderr


def test_labels_file_renames_the_classes(files, tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text("\n".join(f"mine {i}" for i in range(400)) + "\n")
    result = run(files, "predict", str(files["a"]), "--labels", str(mine), "--json")
    top = json.loads(result.stdout)["top_k"]
    assert all(t["label"] == f"mine {t['index']}" for t in top)
    short = tmp_path / "short.txt"
    short.write_text("walk\nrun\n")
    result = run(files, "predict", str(files["a"]), "--labels", str(short))
    assert result.exit_code == 2
    assert f"{short} has 2 label(s) but the model has 400 classes" in result.stderr


def test_classes_restrict_and_renormalise(files, tmp_path: Path) -> None:
    result = run(
        files,
        "predict",
        str(files["a"]),
        "--classes",
        "label 3,label 7,label 9",
        "-k",
        "5",
        "--json",
    )  # noqa: E501
    record = json.loads(result.stdout)
    assert record["classes"] == ["label 3", "label 7", "label 9"]
    assert sorted(t["label"] for t in record["top_k"]) == ["label 3", "label 7", "label 9"]
    assert sum(t["score"] for t in record["top_k"]) == pytest.approx(1.0, abs=1e-5)
    listing = tmp_path / "classes.txt"
    listing.write_text("label 3\nlabel 7\n")
    from_file = run(files, "predict", str(files["a"]), "--classes", f"@{listing}", "--json")
    assert [t["label"] for t in json.loads(from_file.stdout)["top_k"]] != []
    table = run(files, "predict", str(files["a"]), "--classes", f"@{listing}", "-f", "table")
    assert "renormalised over 2 classes" in table.stdout
    wrong = run(files, "predict", str(files["a"]), "--classes", "label 3,lable 7")
    assert wrong.exit_code == 2 and "unknown class 'lable 7' (did you mean label 7" in wrong.stderr


def test_verbose_timings(files) -> None:
    result = run(files, "predict", str(files["a"]), "--json", "-v")
    line = next(x for x in result.stderr.splitlines() if x.startswith(str(files["a"])))
    assert all(f" {part} " in line for part in ("decode", "preprocess", "inference", "total"))


def test_probe(files, tmp_path: Path) -> None:
    rotated = make_video(
        tmp_path / "phone.mp4", n_frames=60, size=(90, 160), rotation=90, audio=True
    )
    odd = make_video(tmp_path / "odd.mkv", n_frames=30, size=(223, 127), pix_fmt="yuv444p")
    truncated = make_truncated(tmp_path / "cut.mp4")
    corrupt = make_corrupt_packets(tmp_path / "corrupt.mp4")
    audio = make_audio_only(tmp_path / "sound.m4a")
    paths = [rotated, odd, truncated, corrupt, audio]
    result = CliRunner().invoke(app, ["probe", *map(str, paths), "--json"])
    assert result.exit_code == 1
    phone, odd_r, cut, bad, sound = json.loads(result.stdout)
    assert (phone["width"], phone["height"], phone["coded_width"], phone["rotation"]) == (
        90,
        160,
        160,
        90,
    )
    assert phone["audio_streams"] == 1 and phone["frame_count"] == 60
    assert phone["duration"] == pytest.approx(2.0) and phone["fps"] == pytest.approx(30.0)
    assert phone["first_second_decodes"] and phone["last_second_decodes"]
    assert (odd_r["width"], odd_r["height"], odd_r["pix_fmt"]) == (223, 127, "yuv444p")
    assert cut["duration"] < cut["header_duration"] and cut["last_second_decodes"] is not None
    assert bad["frame_count"] == 150
    assert sound["type"] == "error" and "no video stream (audio only)" in sound["error"]
    table = CliRunner().invoke(app, ["probe", str(rotated), "-f", "table"], env={"COLUMNS": "200"})
    assert "90×160" in table.stdout and "yes" in table.stdout
