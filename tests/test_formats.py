"""Every output format parsed back, atomic --output, and the JSON schema pinned."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import vidcls
from vidcls.cli import app
from vidcls_dev.hf_models import LABELS
from vidcls_dev.media import make_video
from vidcls_dev.media_broken import make_text


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    return {
        "weights": tiny_weights,
        "a": make_video(root / "a.mp4", n_frames=360, fps=30, size=(160, 120)),
        "b": make_video(root / "b.mkv", n_frames=150, fps=25, size=(160, 90)),
        "bad": make_text(root / "bad.mp4"),
    }


def run(files, *args: str, input: str | bytes | None = None):
    result = CliRunner().invoke(app, [*args, "--weights", str(files["weights"])], input=input)
    return result


def test_jsonl_streams_windows_segments_then_the_file(files) -> None:
    result = run(files, "segment", str(files["a"]), str(files["bad"]), "--hop", "2", "-f", "jsonl")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [r["type"] for r in records]
    n_windows = kinds.count("window")
    n_segments = kinds.count("segment")
    assert kinds == ["window"] * n_windows + ["segment"] * n_segments + ["file", "error"]
    file_record = records[n_windows + n_segments]
    assert file_record["num_windows"] == n_windows == 3
    assert "windows" not in file_record and "segments" not in file_record  # streamed already
    assert records[-1] == {
        "type": "error",
        "file": str(files["bad"]),
        "error": records[-1]["error"],
    }


def test_json_is_one_document(files) -> None:
    one = run(files, "segment", str(files["a"]), "--hop", "2", "--json")
    record = json.loads(one.stdout)
    assert record["type"] == "file" and len(record["windows"]) == 3 and record["segments"]
    many = run(files, "predict", str(files["a"]), str(files["b"]), "--json")
    assert [r["file"] for r in json.loads(many.stdout)] == [str(files["a"]), str(files["b"])]


def test_csv_and_tsv_have_headers_and_parse(files) -> None:
    result = run(files, "predict", str(files["a"]), str(files["bad"]), "-f", "csv", "-k", "3")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["file", "rank", "label", "index", "score", "error"]
    assert [r["rank"] for r in rows[:3]] == ["1", "2", "3"]
    assert all(r["label"] in LABELS and 0 < float(r["score"]) < 1 for r in rows[:3])
    assert rows[3]["file"] == str(files["bad"]) and rows[3]["error"].startswith(str(files["bad"]))
    seg = run(files, "segment", str(files["a"]), "--hop", "2", "-f", "tsv")
    rows = list(csv.DictReader(io.StringIO(seg.stdout), delimiter="\t"))
    assert list(rows[0]) == ["file", "start_ms", "end_ms", "label", "index", "score", "error"]
    assert rows[0]["start_ms"] == "0" and rows[-1]["end_ms"] == "12000"  # integer milliseconds
    assert all(re.fullmatch(r"\d+", r["start_ms"] + r["end_ms"]) for r in rows)
    seg_csv = run(files, "segment", str(files["a"]), "--hop", "2", "-f", "csv")
    assert list(csv.DictReader(io.StringIO(seg_csv.stdout)))[-1]["end"] == "12.000"


def check_subtitles(text: str, vtt: bool) -> list[tuple[str, str, str]]:
    """A small checker: header, numbering, HH:MM:SS,mmm (or .mmm) timings, blank-line blocks."""
    sep = r"\." if vtt else ","
    stamp = rf"(\d{{2}}:\d{{2}}:\d{{2}}{sep}\d{{3}})"
    blocks = text.split("\n\n")
    if vtt:
        assert blocks.pop(0) == "WEBVTT"
    assert text.endswith("\n") and not text.endswith("\n\n\n")
    cues = []
    for n, block in enumerate(b for b in blocks if b.strip()):
        lines = block.strip("\n").split("\n")
        if not vtt:
            assert lines.pop(0) == str(n + 1)
        m = re.fullmatch(rf"{stamp} --> {stamp}", lines[0])
        assert m, lines[0]
        assert len(lines) == 2 and re.fullmatch(r".+ \(\d\.\d\d\)", lines[1])
        cues.append((m.group(1), m.group(2), lines[1]))
    assert all(a[1] == b[0] for a, b in zip(cues, cues[1:], strict=False))  # they tile
    return cues


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles(files, fmt: str) -> None:
    result = run(files, "segment", str(files["a"]), "--hop", "2", "-f", fmt)
    assert result.exit_code == 0, result.output
    cues = check_subtitles(result.stdout, fmt == "vtt")
    sep = "." if fmt == "vtt" else ","
    assert cues[0][0] == f"00:00:00{sep}000" and cues[-1][1] == f"00:00:12{sep}000"


def test_subtitles_are_for_segment_and_one_video(files) -> None:
    predict = run(files, "predict", str(files["a"]), "-f", "srt")
    assert predict.exit_code == 2 and "for `vidcls segment` only" in predict.stderr
    two = run(files, "segment", str(files["a"]), str(files["b"]), "-f", "vtt")
    assert two.exit_code == 2 and "subtitles of one video" in two.stderr


@pytest.mark.parametrize(
    "suffix, check",
    [
        (".json", lambda t: json.loads(t)["type"] == "file"),
        (".jsonl", lambda t: [json.loads(x)["type"] for x in t.splitlines()][-1] == "file"),
        (".csv", lambda t: t.startswith("file,start,end,label")),
        (".tsv", lambda t: t.startswith("file\tstart_ms")),
        (".srt", lambda t: t.startswith("1\n00:00:00,000 --> ")),
        (".vtt", lambda t: t.startswith("WEBVTT\n\n00:00:00.000 --> ")),
    ],
)
def test_output_file_format_follows_the_suffix(files, tmp_path: Path, suffix: str, check) -> None:
    target = tmp_path / f"result{suffix}"
    result = run(files, "segment", str(files["a"]), "--hop", "2", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and check(target.read_text())
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_unknown_output_suffix_is_a_usage_error(files, tmp_path: Path) -> None:
    result = run(files, "predict", str(files["a"]), "-o", str(tmp_path / "out.xml"))
    assert result.exit_code == 2 and "cannot tell the format" in result.stderr


def test_output_is_atomic_when_the_run_dies(files, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("previous results\n")
    import vidcls.core
    from vidcls.events import FileDone

    real = vidcls.core.run

    def dies_after_the_first_file(*args, **kwargs):
        for event in real(*args, **kwargs):
            yield event
            if isinstance(event, FileDone):
                raise KeyboardInterrupt

    monkeypatch.setattr(vidcls.core, "run", dies_after_the_first_file)
    result = run(files, "predict", str(files["a"]), str(files["b"]), "-o", str(target))
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert target.read_text() == "previous results\n"  # untouched, never half-written
    assert list(tmp_path.iterdir()) == [target]
    monkeypatch.setattr(vidcls.core, "run", real)
    result = run(files, "predict", str(files["a"]), str(files["b"]), "-o", str(target))
    assert result.exit_code == 0 and len(json.loads(target.read_text())) == 2


# The JSON schema (README "Output"), pinned: changing it means a new schema_version.
FILE_FIELDS = {
    "type", "schema_version", "vidcls_version", "file", "model", "weights", "duration", "fps",
    "vfr", "rotation", "width", "height", "start", "end", "span", "num_windows", "crops",
    "frames_decoded", "corrupt_packets", "warnings", "classes", "run_key",
}  # fmt: skip


def test_schema_is_pinned(files) -> None:
    predict = vidcls.predict(files["a"], "timesformer", weights=files["weights"])
    assert set(predict) == FILE_FIELDS | {"top_k"} and predict["schema_version"] == 1
    assert set(predict["top_k"][0]) == {"label", "index", "score"}
    seg = vidcls.segment(files["a"], "timesformer", weights=files["weights"], hop=2.0)
    assert set(seg) == FILE_FIELDS | {"hop", "min_duration", "windows", "segments"}
    assert set(seg["windows"][0]) == {"start", "end", "top_k"}
    assert set(seg["segments"][0]) == {"start", "end", "label", "index", "score", "windows"}
    lines = run(files, "segment", str(files["a"]), str(files["bad"]), "--hop", "2", "-f", "jsonl")
    by_type = {}
    for line in lines.stdout.splitlines():
        record = json.loads(line)
        by_type.setdefault(record["type"], set(record))
    assert by_type["window"] == {"type", "file", "start", "end", "top_k"}
    assert by_type["segment"] == {
        "type",
        "file",
        "start",
        "end",
        "label",
        "index",
        "score",
        "windows",
    }
    assert by_type["file"] == FILE_FIELDS | {"hop", "min_duration"}
    assert by_type["error"] == {"type", "file", "error"}


def test_labels_and_file_names_never_become_terminal_markup(files, tmp_path: Path) -> None:
    # a checkpoint's labels and a file's name are untrusted: Rich must print them as they are
    video = tmp_path / "[bold]clip.mp4"
    video.write_bytes(files["a"].read_bytes())
    labels = tmp_path / "labels.txt"
    names = [f"[red]label {i}" for i in range(len(LABELS))]
    labels.write_text("\n".join(names) + "\n")
    for mode in ("predict", "segment"):
        result = run(files, mode, str(video), "--labels", str(labels), "-f", "table", "-k", "2")
        assert result.exit_code == 0, result.output
        assert "[bold]clip.mp4" in result.stdout
        assert re.search(r"\[red\]label \d+", result.stdout), result.stdout
    broken = tmp_path / "[red]broken.mp4"
    broken.write_text("not a video")
    probed = CliRunner().invoke(app, ["probe", str(broken), str(video), "-f", "table"])
    assert "[red]broken" in probed.stdout.replace("\n", "").replace("│", "").replace(" ", "")
