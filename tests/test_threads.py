"""--threads and --decode-threads: they reach torch and libavcodec; bad counts are usage errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import vidcls
from vidcls import decode
from vidcls.cli import app
from vidcls.config import FileOptions, Runtime, apply_threads
from vidcls.errors import UsageError
from vidcls.windows import open_windows
from vidcls_dev.media import make_video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("threads") / "a.mp4", n_frames=90, size=(160, 120))


@pytest.fixture(autouse=True)
def keep_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def codec_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread count of every decoder vidcls starts, as libavcodec was given it."""
    seen: list[int] = []
    start = decode._start

    def spy(container: Any, picking: decode.Picking) -> Any:
        stream = start(container, picking)
        seen.append(stream.codec_context.thread_count)
        return stream

    monkeypatch.setattr(decode, "_start", spy)
    return seen


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_the_options_reach_torch_and_the_decoder(video, tiny_weights, codec_threads) -> None:
    other = 1 if torch.get_num_threads() != 1 else 2
    for command in ("predict", "segment"):
        codec_threads.clear()
        torch.set_num_threads(4)
        result = run(
            command, str(video), "--weights", str(tiny_weights), "--json", "-v",
            "--threads", str(other), "--decode-threads", "3",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"threads: torch {other}, decoder 3" in result.stderr
        assert torch.get_num_threads() == other
        assert codec_threads == [3]


def test_without_the_options_the_automatic_counts_hold(video, tiny_weights, codec_threads) -> None:
    torch.set_num_threads(1)
    result = run("predict", str(video), "--weights", str(tiny_weights), "--json", "-v")
    assert result.exit_code == 0, result.output
    # torch keeps what the process has; the decoder gets the automatic count
    assert f"threads: torch 1, decoder {decode.frame_threads()}" in result.stderr
    assert codec_threads == [decode.frame_threads()]


def test_the_api_options_reach_torch_and_the_decoder(video, tiny_weights, codec_threads) -> None:
    torch.set_num_threads(3)
    record = vidcls.predict(video, "timesformer", weights=tiny_weights, threads=1, decode_threads=2)
    assert record["num_windows"] >= 1
    assert torch.get_num_threads() == 1 and codec_threads == [2]
    loaded = vidcls.load_model("timesformer", weights=tiny_weights)
    vidcls.segment(video, loaded, threads=2, decode_threads=1)
    assert torch.get_num_threads() == 2 and codec_threads[-1] == 1


def test_the_window_stream_passes_decode_threads_on(video, codec_threads) -> None:
    spec = vidcls.get_spec("timesformer")
    assert sum(1 for _ in open_windows(video, spec, FileOptions(decode_threads=5))) >= 1
    assert codec_threads == [5]


def test_apply_threads_leaves_torch_alone_when_automatic() -> None:
    torch.set_num_threads(1)
    assert apply_threads(Runtime()) == 1 and torch.get_num_threads() == 1
    assert apply_threads(Runtime(threads=2)) == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize(
    "option, value", [("--threads", "0"), ("--threads", "x"), ("--decode-threads", "-1"),
                      ("--decode-threads", "2000"), ("--threads", "1.5")],
)  # fmt: skip
def test_bad_counts_are_usage_errors(video, tiny_weights, option, value) -> None:
    result = run("predict", str(video), "--weights", str(tiny_weights), option, value)
    assert result.exit_code == 2, result.output
    assert option in result.output


@pytest.mark.parametrize("option", ["threads", "decode_threads"])
@pytest.mark.parametrize("value", [0, -2, True, 1.5, "2"])
def test_bad_counts_in_the_api_raise(video, tiny_weights, option, value) -> None:
    with pytest.raises(UsageError, match="threads must be a number from 1"):
        vidcls.predict(video, "timesformer", weights=tiny_weights, **{option: value})
