"""The command line: streams, formats and exit codes, with a random-weight model in hub layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import vidcls
from vidcls.cli import app
from vidcls_dev.media import make_video
from vidcls_dev.media_broken import make_empty, make_text


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    return {
        "weights": tiny_weights,
        "a": make_video(root / "a.mp4", n_frames=150, fps=30, size=(160, 120)),
        "b": make_video(root / "b.mkv", n_frames=330, fps=30, size=(160, 90)),
        "text": make_text(root / "notes.mp4"),
        "empty": make_empty(root / "empty.mp4"),
    }


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_predict_json_on_stdout_progress_on_stderr(files) -> None:
    result = run("predict", str(files["a"]), "--weights", str(files["weights"]), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["file"] == str(files["a"]) and record["model"] == "timesformer"
    assert record["num_windows"] == 1 and record["crops"] == 3 and len(record["top_k"]) == 5
    assert record["duration"] == pytest.approx(5.0)
    scores = [t["score"] for t in record["top_k"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert "loading timesformer" in result.stderr and "1 window(s) in" in result.stderr


def test_api_equals_the_cli_json(files) -> None:
    result = run(
        "predict", str(files["b"]), "--weights", str(files["weights"]), "-k", "3", "--json"
    )
    api = vidcls.predict(files["b"], "timesformer", weights=files["weights"], top_k=3)
    assert json.loads(result.stdout) == json.loads(json.dumps(api))
    result = run(
        "segment", str(files["b"]), "--weights", str(files["weights"]), "--hop", "4", "--json"
    )
    api = vidcls.segment(files["b"], "timesformer", weights=files["weights"], hop=4.0)
    assert json.loads(result.stdout) == json.loads(json.dumps(api))


def test_bad_files_get_error_records_and_the_good_one_an_answer(files) -> None:
    paths = [str(files["text"]), str(files["a"]), str(files["empty"])]
    result = run("predict", *paths, "--weights", str(files["weights"]), "--json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert [r["file"] for r in records] == paths
    assert "top_k" in records[1]
    assert records[0]["error"].startswith(f"{paths[0]}: not a video")
    assert records[2]["error"] == f"{paths[2]}: empty file"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {records[0]['error']}", f"error: {records[2]['error']}"]
    assert "Traceback" not in result.stderr


def test_jsonl_is_one_record_per_line(files) -> None:
    result = run(
        "predict", str(files["a"]), str(files["text"]), str(files["b"]),
        "--weights", str(files["weights"]), "--format", "jsonl",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert ["error" in r for r in records] == [False, True, False]


def test_segment_json(files) -> None:
    result = run(
        "segment", str(files["b"]), "--weights", str(files["weights"]), "--hop", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["hop"] == 2.0 and record["duration"] == pytest.approx(11.0)
    starts = [w["start"] for w in record["windows"]]
    assert starts == [0.0, 2.0, round(11 - 256 / 30, 3)]
    segments = record["segments"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(11.0)
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))
    # windows overlap (hop 2 < span), so by default no segment is shorter than two consecutive
    # windows, span + hop (unless it is the only one)
    span = 256 / 30
    assert record["min_duration"] == pytest.approx(span + 2, abs=1e-6)
    assert len(segments) == 1 or all(s["end"] - s["start"] >= span + 2 - 1e-3 for s in segments)


def test_segment_min_duration_zero_keeps_every_piece(files) -> None:
    args = ("segment", str(files["b"]), "--weights", str(files["weights"]), "--hop", "2")
    record = json.loads(run(*args, "--min-duration", "0", "--json").stdout)
    assert record["min_duration"] == 0.0
    segments = record["segments"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(11.0)
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))
    # nothing folded: at least as many segments as the default keeps (where boundaries land is
    # tests/test_segments.py's business)
    default = json.loads(run(*args, "--json").stdout)["segments"]
    assert len(default) <= len(segments)


def test_stdin(files) -> None:
    data = files["b"].read_bytes()
    result = run("predict", "-", "--weights", str(files["weights"]), "--json", input=data)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["file"] == "-" and record["frames_decoded"] == 330


def test_table_for_people(files) -> None:
    result = run(
        "predict", str(files["a"]), "--weights", str(files["weights"]), "--format", "table"
    )
    assert result.exit_code == 0
    record = vidcls.predict(files["a"], "timesformer", weights=files["weights"])
    assert (
        record["top_k"][0]["label"] in result.stdout and "1 window(s) × 3 crop(s)" in result.stdout
    )


def test_quiet_leaves_stderr_empty(files) -> None:
    result = run("predict", str(files["a"]), "--weights", str(files["weights"]), "--json", "-q")
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "A", "--model", "timesformer-xxl"], "unknown model 'timesformer-xxl'"),
        (["predict", "missing.mp4"], "no such file: missing.mp4"),
        (["predict", "A", "--clips", "zero"], "--clips takes 'all' or a positive number"),
        (["predict", "A", "--format", "yaml"], "unknown format 'yaml'"),
        (["predict", "A", "--crops", "2"], "--crops must be 1 or 3"),
        (["segment", "A", "--hop", "-1"], "0.001"),
        (["predict", "-", "-"], "'-' (standard input) can be given only once"),
    ],
)
def test_usage_errors_exit_2(files, args: list[str], message: str) -> None:
    args = [str(files["a"]) if a == "A" else a for a in args]
    result = run(*args, "--weights", str(files["weights"]))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""


def test_weights_errors_exit_1(files, tmp_path: Path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"junk" * 100)
    result = run("predict", str(files["a"]), "--weights", str(bad))
    assert result.exit_code == 1
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"error: {bad}: not a valid safetensors")
    )
