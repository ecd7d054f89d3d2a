"""Symmetric views: the registry's label swaps match the pixel transforms, and the engine's
average over them is exactly equivariant."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidcls.cli import app
from vidcls.engine import Classifier
from vidcls.errors import WeightsError
from vidcls.loading import LoadedModel
from vidcls.models import build
from vidcls.registry import get_spec, package_labels
from vidcls.transforms import normalize, symmetric_views, transform

SPEC = get_spec("motion-tiny")
LABELS = package_labels(SPEC.labels)


def square_clip(label: str, size: int = 32, frames: int = 8) -> torch.Tensor:
    """A bright square doing `label` on black, as model input (frames, 3, size, size); it
    starts off-centre so that every flip moves it somewhere else."""
    clip = torch.zeros(frames, 3, size, size)
    for t in range(frames):
        x, y, half = 12.0, 10.0, 3.0
        step = 1.5 * t
        if label == "moving left":
            x -= step
        elif label == "moving right":
            x += step
        elif label == "moving up":
            y -= step
        elif label == "moving down":
            y += step
        elif label == "growing":
            half += 0.5 * t
        elif label == "shrinking":
            half = 7.0 - 0.5 * t
        top, left = round(y + 8 - half), round(x + 8 - half)
        side = round(2 * half)
        clip[t, :, top : top + side, left : left + side] = 1.0
    return clip


def what_it_does(clip: torch.Tensor) -> str:
    """The label of a square clip, read from its pixels: centroid travel and area change."""
    mass = clip[:, 0]  # (frames, H, W)
    area = mass.sum(dim=(1, 2))
    ys, xs = torch.meshgrid(torch.arange(mass.shape[1]), torch.arange(mass.shape[2]), indexing="ij")
    cx = (mass * xs).sum(dim=(1, 2)) / area
    cy = (mass * ys).sum(dim=(1, 2)) / area
    dx, dy, grow = float(cx[-1] - cx[0]), float(cy[-1] - cy[0]), float(area[-1] / area[0])
    if grow > 1.5:
        return "growing"
    if grow < 1 / 1.5:
        return "shrinking"
    if max(abs(dx), abs(dy)) < 1:
        return "still"
    if abs(dx) > abs(dy):
        return "moving right" if dx > 0 else "moving left"
    return "moving down" if dy > 0 else "moving up"


def test_the_registry_reads_label_swaps_as_class_orders() -> None:
    assert [name for name, _ in SPEC.symmetries] == ["mirror", "upside_down", "transpose", "reverse"]  # fmt: skip # noqa: E501
    orders = dict(SPEC.symmetries)
    assert orders["mirror"] == (1, 0, 2, 3, 4, 5, 6)
    assert orders["transpose"] == (2, 3, 0, 1, 4, 5, 6)
    assert orders["reverse"] == (1, 0, 3, 2, 5, 4, 6)
    assert SPEC.symmetry_pairs()["upside_down"] == [["moving up", "moving down"]]
    assert get_spec("timesformer").symmetries == ()
    rows = json.loads(CliRunner().invoke(app, ["models", "--json"]).stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["motion-tiny"]["symmetries"]["reverse"] == [
        ["moving left", "moving right"], ["moving up", "moving down"], ["growing", "shrinking"]
    ]  # fmt: skip
    assert by_name["timesformer"]["symmetries"] == {}


def test_sixteen_views_and_each_class_order_matches_its_pixels() -> None:
    views = symmetric_views(SPEC)
    assert len(views) == 16 and views[0] == ((), tuple(range(7)))
    assert len({names for names, _ in views}) == 16
    for label in LABELS:
        clip = square_clip(label)
        assert what_it_does(clip) == label  # the reader itself
        for names, order in views:
            # the transformed clip shows class order[c] where the clip shows class c
            seen = what_it_does(transform(clip, names))
            assert seen == LABELS[order[LABELS.index(label)]], (label, names)


def random_motion_model(spec=SPEC) -> LoadedModel:
    torch.manual_seed(0)
    net = build(spec.arch, dict(spec.arch_config)).eval()
    return LoadedModel(net, spec, list(LABELS), "random")


def run(loaded: LoadedModel, window: np.ndarray, **kw) -> np.ndarray:
    return next(iter(Classifier(loaded, crops=1, **kw).run([(0, window)])))[1]


def test_the_average_is_the_mean_softmax_over_views_in_the_windows_classes() -> None:
    loaded = random_motion_model()
    window = np.random.default_rng(1).integers(0, 256, (1, 8, 64, 64, 3), dtype=np.uint8)
    x = normalize(torch.from_numpy(window), SPEC)
    with torch.no_grad():
        want = torch.stack(
            [loaded.model(transform(x, names))[0, list(order)].softmax(-1)
             for names, order in symmetric_views(SPEC)]
        ).mean(0)  # fmt: skip
    np.testing.assert_allclose(run(loaded, window), want.numpy(), atol=1e-6)
    # batches of any size, down to one view at a time, give the same numbers
    np.testing.assert_allclose(run(loaded, window, batch_size=1), want.numpy(), atol=1e-6)
    np.testing.assert_allclose(run(loaded, window, batch_size=5), want.numpy(), atol=1e-6)


# each transform on uint8 windows (crops, frames, H, W, 3), as a decoder would have produced it
PIXELS = {
    "mirror": lambda w: w[:, :, :, ::-1],
    "upside_down": lambda w: w[:, :, ::-1],
    "transpose": lambda w: w.transpose(0, 1, 3, 2, 4),
    "reverse": lambda w: w[:, ::-1],
}


@pytest.mark.parametrize("name", PIXELS)
def test_symmetric_model_is_exactly_equivariant(name: str) -> None:
    """A transformed video gets the original's probabilities with the labels swapped; the
    same random model without its symmetries does not (so the check can fail)."""
    window = np.random.default_rng(2).integers(0, 256, (1, 8, 64, 64, 3), dtype=np.uint8)
    moved = np.ascontiguousarray(PIXELS[name](window))
    order = list(dict(SPEC.symmetries)[name])
    symmetric = random_motion_model()
    np.testing.assert_allclose(run(symmetric, moved)[order], run(symmetric, window), atol=1e-5)
    plain = random_motion_model(dataclasses.replace(SPEC, symmetries=()))
    assert np.abs(run(plain, moved)[order] - run(plain, window)).max() > 1e-3


def test_weights_with_other_classes_cannot_use_the_symmetries() -> None:
    spec = get_spec("motion-tiny")
    config = dict(spec.arch_config, num_classes=5)
    loaded = LoadedModel(build(spec.arch, config).eval(), spec, list("abcde"), "five.safetensors")
    with pytest.raises(WeightsError, match=r"five.safetensors: 5 classes.*'motion-tiny'.* 7"):
        Classifier(loaded, crops=1)
