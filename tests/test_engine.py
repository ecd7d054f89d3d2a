"""Batching views across windows, the producer thread, and out-of-memory back-off."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from vidcls.engine import Classifier, Prefetch
from vidcls.loading import LoadedModel
from vidcls.registry import get_spec
from vidcls.transforms import normalize


class Mean(torch.nn.Module):
    """A stand-in model whose logits are easy to recompute: per-channel means of the clip."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 4)
        self.calls: list[int] = []
        self.max_batch: int | None = None

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(video))
        if self.max_batch is not None and len(video) > self.max_batch:
            raise torch.OutOfMemoryError("simulated")
        return self.head(video.mean(dim=(1, 3, 4)))


def loaded() -> LoadedModel:
    torch.manual_seed(0)
    return LoadedModel(Mean().eval(), get_spec("timesformer"), ["a", "b", "c", "d"], "test")


def windows(n: int, crops: int = 3) -> list[tuple[int, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(i, rng.integers(0, 256, (crops, 2, 8, 8, 3), dtype=np.uint8)) for i in range(n)]


def expected(model: LoadedModel, views: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = model.model(normalize(torch.from_numpy(views), model.spec))
    return logits.softmax(-1).mean(0).numpy()  # softmax per view, then mean over crops


def test_softmax_per_view_then_mean_over_crops() -> None:
    model = loaded()
    items = windows(5)
    out = list(Classifier(model, crops=3, batch_size=6).run(items))
    assert [meta for meta, _, _ in out] == [0, 1, 2, 3, 4]
    for (_, probs, _), (_, views) in zip(out, items, strict=True):
        np.testing.assert_allclose(probs, expected(model, views), atol=1e-6)
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_out_of_memory_halves_the_batch_and_never_drops_crops() -> None:
    model = loaded()
    items = windows(4)
    reference = [p for _, p, _ in Classifier(model, crops=3, batch_size=12).run(items)]
    model.model.max_batch = 2  # a window's 3 crops no longer fit together
    runner = Classifier(model, crops=3, batch_size=12)
    out = [p for _, p, _ in runner.run(items)]
    assert runner.batch_size == 1 or runner.batch_size == 2
    for a, b in zip(out, reference, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    model.model.max_batch = 0
    with pytest.raises(torch.OutOfMemoryError):
        list(Classifier(model, crops=3, batch_size=3).run(items))


def test_batches_take_what_is_ready() -> None:
    model = loaded()
    list(Classifier(model, crops=3, batch_size=9).run(windows(7)))
    assert sum(model.model.calls) == 21 and max(model.model.calls) <= 9


def test_decoder_errors_reach_the_consumer() -> None:
    def broken():
        yield from windows(2)
        raise ValueError("decoder failed")

    out = []
    with pytest.raises(ValueError, match="decoder failed"):
        for item in Classifier(loaded(), crops=3, batch_size=3).run(broken()):
            out.append(item)
    assert len(out) == 2


def test_prefetch_runs_ahead_but_boundedly() -> None:
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    ahead = Prefetch(source(), depth=3)
    time.sleep(0.3)
    assert 3 <= len(produced) <= 5  # the queue holds 3, the producer waits with one more
    assert ahead.get() == 0
    ahead.close()
    assert not any(t.name == ahead._thread.name and t.is_alive() for t in threading.enumerate())


def test_compiled_model_pads_short_batches_and_agrees() -> None:
    from vidcls.checkpoints.hf import arch_config_from_hf, from_hf_timesformer
    from vidcls.models import build
    from vidcls_dev.hf_models import tiny_timesformer

    hf = tiny_timesformer(num_frames=2, image_size=32, hidden_size=32, heads=2, num_labels=4)
    arch, config = arch_config_from_hf(hf.config.to_dict())
    net = build(arch, config).eval()
    net.load_state_dict(from_hf_timesformer(hf.state_dict()))
    model = LoadedModel(net, get_spec("timesformer"), ["a", "b", "c", "d"], "test")
    items = [(i, v.repeat(4, axis=2).repeat(4, axis=3)) for i, v in windows(5)]  # 32×32 crops
    eager = [p for _, p, _ in Classifier(model, crops=3, batch_size=6).run(items)]
    compiled = Classifier(model, crops=3, batch_size=6, compile=True)
    out = [p for _, p, _ in compiled.run(items)]  # 5 windows in batches of 2: the last is padded
    for a, b in zip(out, eager, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_logits_averaged_over_views_then_one_softmax() -> None:
    """Scenic's protocol (registry `average = "logits"`): the views of a window average raw
    logits, and the answer turns the mean over windows into probabilities once, per head or
    --classes group, which is not the mean of the softmaxes."""
    import dataclasses

    from vidcls.config import FileOptions
    from vidcls.core import answer_for

    model = loaded()
    model = dataclasses.replace(model, spec=dataclasses.replace(model.spec, average="logits"))
    answer = answer_for(model.labels, FileOptions(), model.spec)
    items = windows(4)
    scores = np.stack([p for _, p, _ in Classifier(model, crops=3, answer=answer).run(items)])
    with torch.no_grad():
        logits = [model.model(normalize(torch.from_numpy(v), model.spec)) for _, v in items]
    mean_logits = torch.stack([x.mean(0) for x in logits])  # per window, over its crops
    np.testing.assert_allclose(scores, mean_logits.numpy(), rtol=0, atol=1e-5)
    file_probs = answer.probabilities(scores.mean(0))
    np.testing.assert_allclose(file_probs, mean_logits.mean(0).softmax(-1).numpy(), atol=1e-6)
    mean_of_softmaxes = torch.stack([x.softmax(-1) for x in logits]).mean((0, 1)).numpy()
    assert np.abs(file_probs - mean_of_softmaxes).max() > 1e-4  # the two protocols differ here
    subset = answer_for(model.labels, FileOptions(classes=("b", "d")), model.spec)
    probs = subset.probabilities(scores.mean(0))
    assert probs[[0, 2]].tolist() == [0, 0]
    np.testing.assert_allclose(
        probs[[1, 3]], mean_logits.mean(0)[[1, 3]].softmax(-1).numpy(), atol=1e-6
    )
