"""--ray: the corpus as a Ray Dataset on a local Ray with CPU actors gives the single-process output.

Needs the extra: pip install ".[test,ray]". Without Ray the whole module is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='--ray needs the extra: pip install ".[test,ray]"')
pytest.importorskip("ray.data", reason='--ray needs Ray Data: pip install ".[test,ray]"')

from typer.testing import CliRunner  # noqa: E402

from vidcls.cli import app  # noqa: E402
from vidcls.cli.app import _ray_default  # noqa: E402
from vidcls_dev.hf_models import save_hub_folder, tiny_timesformer  # noqa: E402
from vidcls_dev.media import make_video  # noqa: E402
from vidcls_dev.media_broken import make_corrupt_packets, make_text  # noqa: E402

LABELS = [f"label {i}" for i in range(400)]
SCORES = ("top_k", "segments", "windows")  # compared within 1e-5, the rest exactly


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # Ray's workers take the environment of the process that starts Ray: the test-only hook that
    # crashes the decoding of a file named "crash-me" must be set before
    os.environ["VIDCLS_TEST_DECODER_CRASH"] = "SIGSEGV:crash-me"
    try:
        ray.init(num_cpus=2, log_to_driver=False)
    finally:
        del os.environ["VIDCLS_TEST_DECODER_CRASH"]
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("cluster")
    model = tiny_timesformer(
        num_frames=8, image_size=224, num_labels=400, id2label=dict(enumerate(LABELS))
    )
    videos = [
        make_video(root / f"v{i}.mp4", n_frames=60 + 45 * i, size=(160, 90), content="square")
        for i in range(6)
    ]
    videos.append(make_video(root / "v6.mkv", n_frames=100, size=(90, 160), rotation=0))
    corrupt = make_corrupt_packets(root / "corrupt.mp4")
    broken = make_text(root / "broken.mp4")
    names = [*map(str, videos), str(corrupt), str(broken)]
    listing = root / "list.txt"
    listing.write_text("\n".join(names) + "\n")
    weights = save_hub_folder(model, root / "weights")
    return {"root": root, "weights": str(weights), "names": names, "list": str(listing),
            "corrupt": str(corrupt), "broken": str(broken)}  # fmt: skip


def vidcls(corpus, *args: str, weights: str | None = None):
    return CliRunner().invoke(app, [*args, "--weights", weights or corpus["weights"]])


def records(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def per_file(lines: list[dict]) -> dict[str, list[dict]]:
    """Each file's block of records, in the order they were written."""
    blocks: dict[str, list[dict]] = {}
    for r in lines:
        blocks.setdefault(r["file"], []).append(r)
    return blocks


def same_record(a: dict, b: dict) -> None:
    assert {k: v for k, v in a.items() if k not in SCORES} == {
        k: v for k, v in b.items() if k not in SCORES
    }
    for key in ("top_k",) if "top_k" in a else ():
        assert [t["index"] for t in a[key]] == [t["index"] for t in b[key]], a["file"]
        assert [t["score"] for t in a[key]] == pytest.approx([t["score"] for t in b[key]], abs=1e-5)
    if "score" in a:
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def same_output(ray_lines: list[dict], single_lines: list[dict]) -> None:
    """Same files, same window/segment structure in the same order per file, same numbers."""
    a, b = per_file(ray_lines), per_file(single_lines)
    assert a.keys() == b.keys()
    for name in a:
        assert [r["type"] for r in a[name]] == [r["type"] for r in b[name]], name
        for x, y in zip(a[name], b[name], strict=True):
            same_record(x, y)


@pytest.fixture(scope="module")
def single(corpus) -> dict[str, list[dict]]:
    """Single-process results of the corpus, predict and segment."""
    out = {}
    for mode, extra in (("predict", []), ("segment", ["--hop", "2"])):
        path = corpus["root"] / f"single-{mode}.jsonl"
        result = vidcls(corpus, mode, "--from-list", corpus["list"], *extra, "-o", str(path))
        assert result.exit_code == 1, result.output  # the broken file
        out[mode] = records(path)
    return out


@pytest.mark.parametrize("mode", ["predict", "segment"])
def test_ray_gives_the_single_process_output(corpus, single, mode, tmp_path: Path) -> None:
    out = tmp_path / "ray.jsonl"
    extra = ["--hop", "2"] if mode == "segment" else []
    result = vidcls(corpus, mode, "--from-list", corpus["list"], *extra, "-o", str(out), "--ray")
    assert result.exit_code == 1, result.output  # one broken file; the others are fine
    assert "1 model actor(s) on cpu" in result.stderr
    assert f"{len(corpus['names']) - 1} ok, 1 failed, 0 skipped" in result.stderr
    assert f"error: {corpus['broken']}: not a video" in result.stderr
    assert f"warning: {corpus['corrupt']}: skipped" in result.stderr  # corrupt packets
    lines = records(out)
    same_output(lines, single[mode])
    errors = [r for r in lines if r["type"] == "error"]
    assert [e["file"] for e in errors] == [corpus["broken"]]
    if mode == "segment":
        windows = [r for r in lines if r["type"] == "window"]
        files = [r for r in lines if r["type"] == "file"]
        assert len(windows) == sum(f["num_windows"] for f in files) > len(files)


def test_rows_in_any_order_and_retried_rows(corpus, single, monkeypatch, tmp_path: Path) -> None:
    """Rows come back across files and windows in any order, some twice (a retried task)."""
    import random

    real = ray.data.Dataset.iter_rows

    def shuffled(self, *args, **kwargs):
        rows = list(real(self, *args, **kwargs))
        rows += rows[::3]
        random.Random(0).shuffle(rows)
        return iter(rows)

    monkeypatch.setattr(ray.data.Dataset, "iter_rows", shuffled)
    out = tmp_path / "shuffled.jsonl"
    result = vidcls(
        corpus, "segment", "--from-list", corpus["list"], "--hop", "2", "-o", str(out), "--ray"
    )
    assert result.exit_code == 1, result.output
    same_output(records(out), single["segment"])


def test_ray_failing_midway_then_resume(corpus, single, monkeypatch, tmp_path: Path) -> None:
    """A failure of Ray itself: the files not done are errors, and --resume finishes them."""
    real = ray.data.Dataset.iter_rows

    def failing(self, *args, **kwargs):
        rows = list(real(self, *args, **kwargs))
        ends = [i for i, r in enumerate(rows) if r["kind"] == "end"]
        yield from rows[: ends[1] + 1]  # two files are done
        raise RuntimeError("Traceback...\nray.exceptions.NodeDiedError: node 10.0.0.5 died")

    monkeypatch.setattr(ray.data.Dataset, "iter_rows", failing)
    out = tmp_path / "results.jsonl"
    names = corpus["names"][:5]
    result = vidcls(corpus, "predict", *names, "-o", str(out), "--ray")
    assert result.exit_code == 1, result.output
    assert "the Ray run stopped: ray.exceptions.NodeDiedError: node 10.0.0.5 died" in result.stderr
    assert "2 ok, 3 failed, 0 skipped" in result.stderr
    assert [r["type"] for r in records(out)] == ["file", "file", "error", "error", "error"]
    monkeypatch.undo()
    again = vidcls(corpus, "predict", *names, "-o", str(out), "--ray", "--resume")
    assert again.exit_code == 0 and "3 ok, 0 failed, 2 skipped" in again.stderr
    done = [r for r in records(out) if r["type"] == "file"]
    same_output(done, [r for r in single["predict"] if r["file"] in names])


def test_resume_runs_only_the_rest_on_ray(corpus, single, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    first = vidcls(corpus, "segment", *corpus["names"][:3], "--hop", "2", "-o", str(out))
    assert first.exit_code == 0, first.output  # single process: the run key is the same on Ray
    with open(out, "a") as f:  # what a kill in the middle of a write leaves behind
        f.write('{"type":"window","file":"half')
    result = vidcls(
        corpus, "segment", "--from-list", corpus["list"], "--hop", "2", "-o", str(out),
        "--resume", "--ray",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "resuming: 3 file(s) already done" in result.stderr
    assert f"{len(corpus['names']) - 4} ok, 1 failed, 3 skipped" in result.stderr
    for name in corpus["names"][:3]:
        assert f"{name}: " not in result.stderr  # not processed again
    same_output(records(out), single["segment"])  # every file once, nothing duplicated


def test_address_from_a_subprocess_and_model_errors(corpus, single, tmp_path: Path) -> None:
    """`--ray auto` joins the running cluster from another process, as on a cluster's head."""
    out = tmp_path / "auto.jsonl"
    command = [sys.executable, "-m", "vidcls", "predict", *corpus["names"][:4], "-o", str(out),
               "--weights", corpus["weights"], "--ray", "auto"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "connecting to Ray at auto" in result.stderr and result.stdout == ""
    expected = [r for r in single["predict"] if r["file"] in corpus["names"][:4]]
    same_output(records(out), expected)
    missing = vidcls(corpus, "predict", corpus["names"][0], "--ray", weights="nowhere")
    assert missing.exit_code == 1
    assert "error: a Ray model actor failed: nowhere: no such file or folder" in missing.stderr
    unknown = vidcls(corpus, "predict", corpus["names"][0], "--ray", "--classes", "label 1,nope")
    assert unknown.exit_code == 2 and "unknown class 'nope'" in unknown.stderr


def test_ray_usage_errors(corpus, monkeypatch) -> None:
    video = corpus["names"][0]
    mixed = vidcls(corpus, "predict", video, "--ray", "--workers", "2")
    assert mixed.exit_code == 2 and "--ray does not mix with --gpus or --workers" in mixed.stderr
    stdin = vidcls(corpus, "predict", "-", "--ray")
    assert stdin.exit_code == 2 and "stdin (-) cannot be sent to Ray" in stdin.stderr
    monkeypatch.setitem(sys.modules, "ray.data", None)  # as if the extra were not installed
    absent = vidcls(corpus, "predict", video, "--ray")
    assert absent.exit_code == 2 and 'pip install "vidcls[ray]"' in absent.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", "--ray"], ["predict", "--ray", ""]),
        (["predict", "--ray", "a.mp4"], ["predict", "--ray", "", "a.mp4"]),
        (["predict", "--ray", "-k", "3"], ["predict", "--ray", "", "-k", "3"]),
        (["predict", "--ray", "auto", "a.mp4"], ["predict", "--ray", "auto", "a.mp4"]),
        (["segment", "--ray", "ray://head:10001"], ["segment", "--ray", "ray://head:10001"]),
        (["predict", "--ray", "10.0.0.5:6379"], ["predict", "--ray", "10.0.0.5:6379"]),
        (["predict", "--ray=auto"], ["predict", "--ray=auto"]),
        (["predict", "--", "--ray"], ["predict", "--", "--ray"]),
    ],
)
def test_ray_takes_an_optional_address(args: list[str], expected: list[str]) -> None:
    assert _ray_default(args) == expected


def test_a_decoder_crash_on_ray_fails_that_file_and_the_run_goes_on(corpus, tmp_path: Path) -> None:
    crash = make_video(tmp_path / "crash-me.mp4", n_frames=60, size=(160, 90), content="square")
    names = [corpus["names"][0], str(crash), corpus["names"][1]]
    out = tmp_path / "ray.jsonl"
    result = vidcls(corpus, "predict", *names, "-o", str(out), "--ray")
    assert result.exit_code == 1, result.output
    lines = {r["file"]: r for r in records(out)}
    assert lines[str(crash)]["type"] == "error"
    assert lines[str(crash)]["error"] == (
        f"{crash}: the process decoding it died (SIGSEGV); the run went on without it"
    )
    assert [lines[n]["type"] for n in names[::2]] == ["file", "file"]
