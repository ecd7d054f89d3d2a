"""CUDA: device paths, bf16/fp16, batch-size autoscaling, out-of-memory halving, GPU workers.

These run only where torch sees a CUDA device (bench/gpu.sh runs them on the GPU machine);
elsewhere the whole module is deselected by its `cuda` mark's skip condition.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import vidcls
from vidcls.cli import app
from vidcls.engine import Classifier, auto_batch_size
from vidcls.loading import LoadedModel
from vidcls_dev.media import make_video

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

# bf16 keeps 8 bits of mantissa, fp16 11: the tolerances of the CPU bf16 test, and tighter
TOLERANCE = {"fp32": 1e-3, "bf16": 5e-2, "fp16": 1e-2}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cuda")
    return make_video(root / "a.mp4", n_frames=330, fps=30, size=(320, 240))


def views(n: int, spec: Any) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    shape = (n, spec.num_frames, spec.crop, spec.crop, 3)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_the_model_runs_on_cuda_in_each_precision(tiny_weights, precision) -> None:
    cpu = vidcls.load_model("timesformer", weights=tiny_weights, device="cpu", precision="fp32")
    gpu = vidcls.load_model("timesformer", weights=tiny_weights, device="cuda", precision=precision)
    expected = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert {p.device.type for p in gpu.model.parameters()} == {"cuda"}
    assert {p.dtype for p in gpu.model.parameters()} == {expected}
    x = torch.randn(2, 8, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = cpu.model(x)
        got = gpu.model(x.cuda())
    assert got.device.type == "cuda" and got.dtype == torch.float32  # logits come back fp32
    scale = want.abs().max().item()
    assert (got.cpu() - want).abs().max().item() <= TOLERANCE[precision] * max(1.0, scale)


def test_predict_on_cuda_agrees_with_the_cpu(video, tiny_weights) -> None:
    on_cpu = vidcls.predict(video, "timesformer", weights=tiny_weights, device="cpu", top_k=400)
    on_gpu = vidcls.predict(
        video, "timesformer", weights=tiny_weights, device="cuda", precision="fp32", top_k=400
    )
    assert on_gpu["num_windows"] == on_cpu["num_windows"] >= 2
    cpu_scores = {e["label"]: e["score"] for e in on_cpu["top_k"]}
    gpu_scores = {e["label"]: e["score"] for e in on_gpu["top_k"]}
    assert cpu_scores.keys() == gpu_scores.keys()
    assert max(abs(cpu_scores[k] - gpu_scores[k]) for k in cpu_scores) < 1e-4
    # auto precision on CUDA is bf16: same windows, close scores
    auto = vidcls.predict(video, "timesformer", weights=tiny_weights, device="cuda", top_k=400)
    auto_scores = {e["label"]: e["score"] for e in auto["top_k"]}
    assert max(abs(cpu_scores[k] - auto_scores[k]) for k in cpu_scores) < 1e-2


def test_the_batch_size_scales_with_free_memory(tiny_weights) -> None:
    loaded = vidcls.load_model("timesformer", weights=tiny_weights, device="cuda")
    for per_window in (1, 3, 6):
        size = auto_batch_size(loaded, per_window)
        assert size % per_window == 0 and per_window <= size <= 256
    # a full-size width needs more memory per view than the tiny one: never a larger batch
    wide = LoadedModel(
        torch.nn.Module(), loaded.spec, loaded.labels, loaded.source, loaded.precision
    )
    wide.model.head = torch.nn.Linear(768, 400).cuda()  # type: ignore[assignment]
    wide.model.w = torch.nn.Parameter(torch.zeros(1, device="cuda"))  # the device it is on
    assert auto_batch_size(wide, 3) <= auto_batch_size(loaded, 3)


class Greedy(torch.nn.Module):
    """Wraps a model; above `limit` inputs it asks CUDA for more memory than the device has,
    so the out-of-memory error is CUDA's own, not a simulated one."""

    def __init__(self, inner: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.inner = inner
        self.head = inner.head
        self.limit = limit
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        if len(x) > self.limit:
            _, total = torch.cuda.mem_get_info(x.device)
            torch.empty(2 * total, dtype=torch.uint8, device=x.device)
        return self.inner(x)


def test_out_of_memory_on_cuda_halves_the_batch_and_keeps_every_view(tiny_weights) -> None:
    loaded = vidcls.load_model("timesformer", weights=tiny_weights, device="cuda")
    x = views(12, loaded.spec)
    want = Classifier(loaded, 3, batch_size=12).probabilities(x)
    greedy = Greedy(loaded.model, limit=3)
    runner = Classifier(
        LoadedModel(greedy, loaded.spec, loaded.labels, loaded.source, loaded.precision),
        3,
        batch_size=12,
    )
    got = runner.probabilities(x)
    assert greedy.calls[:3] == [12, 6, 3] and set(greedy.calls[2:]) == {3}
    assert runner.batch_size == 3 and len(got) == 12
    assert torch.allclose(got, want, atol=1e-3)
    one = Greedy(loaded.model, limit=0)
    with pytest.raises(torch.OutOfMemoryError):  # one view that does not fit: nothing to halve
        Classifier(
            LoadedModel(one, loaded.spec, loaded.labels, loaded.source), 3, batch_size=1
        ).probabilities(x[:1])


def test_gpu_workers_split_the_files_and_agree_with_one_process(
    video, tiny_weights, tmp_path
) -> None:
    files = []
    for i in range(3):
        link = tmp_path / f"v{i}.mp4"
        link.symlink_to(video)
        files.append(str(link))
    common = ["--weights", str(tiny_weights), "--json", "--precision", "fp32", "-k", "5"]
    single = CliRunner().invoke(app, ["predict", *files, "--device", "cuda", *common])
    assert single.exit_code == 0, single.output
    split = CliRunner().invoke(app, ["predict", *files, "--gpus", "all", *common])
    assert split.exit_code == 0, split.output
    count = torch.cuda.device_count()
    assert f"starting {count} worker(s) on" in split.stderr
    one = {r["file"]: r for r in json.loads(single.stdout)}
    many = {r["file"]: r for r in json.loads(split.stdout)}
    assert one.keys() == many.keys() == set(files)
    for name in files:
        a = np.array([e["score"] for e in one[name]["top_k"]])
        b = np.array([e["score"] for e in many[name]["top_k"]])
        assert [e["index"] for e in one[name]["top_k"]] == [e["index"] for e in many[name]["top_k"]]
        assert np.abs(a - b).max() < 1e-4


def test_more_gpus_than_there_are_is_a_usage_error(video, tiny_weights) -> None:
    count = torch.cuda.device_count()
    result = CliRunner().invoke(
        app, ["predict", str(video), "--weights", str(tiny_weights), "--gpus", str(count + 1)]
    )
    assert result.exit_code == 2 and f"no GPU {count} here" in result.output
