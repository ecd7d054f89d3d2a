"""Corpus runs: a results file appended per file, --resume after crashes, workers, shards."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidcls_dev.media import make_video
from vidcls_dev.media_broken import make_text


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> dict:
    root = tmp_path_factory.mktemp("corpus")
    videos = [
        make_video(root / f"v{i:02d}.mp4", n_frames=45 + 3 * i, size=(160, 90)) for i in range(20)
    ]
    listing = root / "list.txt"
    listing.write_text("\n".join(map(str, videos)) + "\n")
    return {"root": root, "weights": tiny_weights,
            "videos": [str(v) for v in videos], "list": listing}  # fmt: skip


def vidcls(corpus, *args: str, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "vidcls", *args, "--weights", str(corpus["weights"])]
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def _live_sigint() -> None:
    # a background job (`pytest ... &`, nohup) inherits SIGINT ignored, and Python then installs
    # no KeyboardInterrupt handler: restore the default a terminal's Ctrl-C meets
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(corpus, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "vidcls", *args, "--weights", str(corpus["weights"])]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_live_sigint
    )


def records(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def by_file(path: Path) -> dict[str, dict]:
    files = [r for r in records(path) if r["type"] == "file"]
    result = {r["file"]: r for r in files}
    assert len(result) == len(files), "a file appears twice"
    return result


def same_results(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        ta, tb = a[name]["top_k"], b[name]["top_k"]
        assert [t["index"] for t in ta] == [t["index"] for t in tb], name
        assert [t["score"] for t in ta] == pytest.approx([t["score"] for t in tb], abs=1e-5)


@pytest.fixture(scope="module")
def reference(corpus) -> dict[str, dict]:
    """An uninterrupted single-process run over the whole list."""
    out = corpus["root"] / "reference.jsonl"
    result = vidcls(corpus, "predict", "--from-list", str(corpus["list"]), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "20 ok, 0 failed, 0 skipped" in result.stderr
    return by_file(out)


def wait_for(path: Path, files: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text().count('"type":"file"') >= files:
            return
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.02)
    raise AssertionError("no progress")


def test_sigkill_midway_then_resume(corpus, reference, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    run = start(
        corpus, "predict", "--from-list", str(corpus["list"]), "-o", str(out), "--batch-size", "3"
    )  # noqa: E501
    wait_for(out, 4, run)
    run.kill()
    run.wait()
    done = by_file(out)
    assert 4 <= len(done) < 20
    with open(out, "a") as f:  # what a kill in the middle of a write leaves behind
        f.write('{"type":"window","file":"half')
    resumed = vidcls(
        corpus, "predict", "--from-list", str(corpus["list"]), "-o", str(out), "--resume"
    )  # noqa: E501
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done)} skipped" in resumed.stderr
    same_results(by_file(out), reference)  # every file exactly once, every record parses


def test_resume_never_duplicates_and_respects_options(corpus, reference, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    first = vidcls(corpus, "predict", *corpus["videos"][:5], "-o", str(out))
    assert first.returncode == 0
    again = vidcls(corpus, "predict", *corpus["videos"][:5], "-o", str(out), "--skip-existing")
    assert again.returncode == 0 and "0 ok, 0 failed, 5 skipped" in again.stderr
    assert len(records(out)) == 5
    other = vidcls(corpus, "predict", *corpus["videos"][:5], "-o", str(out), "--resume", "-k", "3")
    assert "5 ok, 0 failed, 0 skipped" in other.stderr  # different options: not the same result
    assert len(records(out)) == 10


def test_bad_files_error_then_retry_on_resume(corpus, tmp_path: Path) -> None:
    bad = make_text(tmp_path / "broken.mp4")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{corpus['videos'][0]}\n{bad}\n{corpus['videos'][1]}\n")
    out = tmp_path / "results.jsonl"
    result = vidcls(corpus, "predict", "--from-list", str(listing), "-o", str(out))
    assert result.returncode == 1 and "2 ok, 1 failed, 0 skipped" in result.stderr
    assert [r["type"] for r in records(out)] == ["file", "error", "file"]
    again = vidcls(corpus, "predict", "--from-list", str(listing), "-o", str(out), "--resume")
    assert again.returncode == 1 and "0 ok, 1 failed, 2 skipped" in again.stderr
    kinds = sorted((r["file"], r["type"]) for r in records(out))
    assert kinds == sorted(
        [(corpus["videos"][0], "file"), (str(bad), "error"), (corpus["videos"][1], "file")]
    )  # noqa: E501


def test_sigint_stops_cleanly_and_resume_finishes(corpus, reference, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    run = start(
        corpus, "segment", "--from-list", str(corpus["list"]), "-o", str(out), "--batch-size", "3"
    )  # noqa: E501
    wait_for(out, 3, run)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "interrupted" in stderr
    lines = records(out)  # valid JSON lines, whole blocks only
    assert lines[-1]["type"] == "file"
    resumed = vidcls(
        corpus, "segment", "--from-list", str(corpus["list"]), "-o", str(out), "--resume"
    )  # noqa: E501
    assert resumed.returncode == 0
    files = by_file(out)
    assert sorted(files) == sorted(corpus["videos"])
    windows = [r for r in records(out) if r["type"] == "window"]
    assert len(windows) == sum(f["num_windows"] for f in files.values())


def test_workers_give_the_single_process_results(corpus, reference, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    bad = make_text(tmp_path / "broken.mp4")
    listing = tmp_path / "list.txt"
    listing.write_text(corpus["list"].read_text() + f"{bad}\n")
    result = vidcls(
        corpus, "predict", "--from-list", str(listing), "-o", str(out), "--workers", "2"
    )
    assert result.returncode == 1, result.stderr
    assert "starting 2 worker(s) on cpu, cpu" in result.stderr
    assert "20 ok, 1 failed, 0 skipped" in result.stderr  # the broken file stopped nobody
    same_results(by_file(out), reference)
    errors = [r for r in records(out) if r["type"] == "error"]
    assert [e["file"] for e in errors] == [str(bad)]


def test_shards_concatenate_to_the_full_result(corpus, reference, tmp_path: Path) -> None:
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.jsonl"
        result = vidcls(
            corpus,
            "predict",
            "--from-list",
            str(corpus["list"]),
            "--shard",
            f"{i}/3",
            "-o",
            str(part),
        )  # noqa: E501
        assert result.returncode == 0, result.stderr
        parts.append(part.read_text())
    assert [p.count("\n") for p in parts] == [7, 7, 6]
    full = tmp_path / "full.jsonl"
    full.write_text("".join(parts))
    same_results(by_file(full), reference)
    bad = vidcls(corpus, "predict", "--from-list", str(corpus["list"]), "--shard", "3/3")
    assert bad.returncode == 2 and "I must be in 0..N-1" in bad.stderr


def test_resume_needs_a_jsonl_file(corpus) -> None:
    result = vidcls(corpus, "predict", corpus["videos"][0], "--resume", "--json")
    assert result.returncode == 2 and "-o FILE.jsonl" in result.stderr


def test_next_file_decodes_while_the_current_one_runs(corpus, monkeypatch) -> None:
    import torch

    import vidcls.windows
    from vidcls.config import FileOptions, Runtime
    from vidcls.core import run
    from vidcls.events import FileDone
    from vidcls.loading import LoadedModel
    from vidcls.registry import get_spec

    class Slow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(3, 4)

        def forward(self, video: torch.Tensor) -> torch.Tensor:
            time.sleep(0.3)
            return self.head(video.mean(dim=(1, 3, 4)))

    log: list[tuple[str, str]] = []
    real_open = vidcls.windows.open_windows

    def logged_open(name, *args, **kwargs):
        log.append(("open", Path(name).name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(vidcls.windows, "open_windows", logged_open)
    loaded = LoadedModel(Slow().eval(), get_spec("timesformer"), ["a", "b", "c", "d"], "test")
    names = corpus["videos"][:3]
    for event in run(loaded, names, FileOptions(), Runtime(batch_size=3), "key"):
        if isinstance(event, FileDone):
            log.append(("done", Path(event.file).name))
    assert log.index(("open", "v01.mp4")) < log.index(("done", "v00.mp4"))
    assert log.index(("open", "v02.mp4")) < log.index(("done", "v01.mp4"))


def test_the_core_takes_a_queues_names_one_at_a_time(corpus) -> None:
    """A worker's names come from a queue shared with the other workers: the core must take the
    next only when it needs it, or the first worker takes every file and the rest sit idle."""
    from vidcls.api import _prepare
    from vidcls.core import run
    from vidcls.events import FileDone

    loaded, options, runtime, key = _prepare("motion-tiny", "predict", {"precision": "fp32"})
    videos = corpus["videos"][:3]
    taken: list[str] = []

    def names():
        for name in videos:
            taken.append(name)
            yield name

    seen = []
    for event in run(loaded, names(), options, runtime, key, overlap=False):
        if isinstance(event, FileDone):
            seen.append((event.file, len(taken)))
    assert seen == [(videos[0], 1), (videos[1], 2), (videos[2], 3)]
