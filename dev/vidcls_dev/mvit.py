"""torchvision MViT fixtures (tests/data/mvit-torchvision) and tiny MViT configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import repo_root

# The tiny fixtures' sizes (every width of mvit_v1_b / mvit_v2_s divided by 24, stage 3 cut to
# two blocks, 8 frames of 64²), with the real models' kernels and strides.
TINY: dict[str, Any] = {
    "embed_dim": 4, "heads": 1, "depths": [1, 2, 2, 2], "kernel": [3, 3, 3],
    "q_stride": [1, 2, 2], "kv_stride": [1, 8, 8], "patch_kernel": [3, 7, 7],
    "patch_stride": [2, 4, 4], "image_size": 64, "num_frames": 8, "num_classes": 7,
}  # fmt: skip


def fixtures() -> Path:
    return repo_root() / "tests" / "data" / "mvit-torchvision"


def fixture_input(name: str = "input") -> np.ndarray:
    """A fixture input in vidcls's (batch, frames, channels, height, width) layout: the
    generator's seeds and shapes are the fixtures' own, so the copy needs no .npy."""
    import torch

    seed, shape = {"input": (7, (2, 3, 8, 64, 64)), "input_b": (8, (1, 3, 7, 61, 63))}[name]
    video = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return video.permute(0, 2, 1, 3, 4).numpy()


def fixture_logits(variant: str, name: str = "logits") -> np.ndarray:
    return np.load(fixtures() / variant / f"{name}.npy")
