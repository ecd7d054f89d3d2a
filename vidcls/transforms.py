"""Pixels to model input: spatial crops, channel order, normalisation and symmetric views.

Frames arrive as upright RGB uint8 with the short side already at the spec's `short_side`
(decode.frame_converter). Crop offsets follow PySlowFast's uniform_crop: ceil of the centring
offset, and along the long side left/centre/right (top/centre/bottom for portrait frames).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .registry import SYMMETRIES, ModelSpec

if TYPE_CHECKING:
    import numpy as np
    import torch


def crop_offsets(height: int, width: int, size: int, crops: int) -> list[tuple[int, int]]:
    """(y, x) of each crop's top-left corner."""
    if height < size or width < size:
        raise ValueError(f"a {width}×{height} frame is smaller than the {size}×{size} crop")
    y = math.ceil((height - size) / 2)
    x = math.ceil((width - size) / 2)
    if crops == 1:
        return [(y, x)]
    if crops != 3:
        raise ValueError("crops must be 1 or 3")
    if height > width:
        return [(0, x), (y, x), (height - size, x)]
    return [(y, 0), (y, x), (y, width - size)]


def crop_views(frames: list[np.ndarray], size: int, crops: int) -> np.ndarray:
    """Stack a window's frames and cut its crops: (crops, frames, size, size, 3) uint8."""
    import numpy as np

    clip = np.stack(frames)
    height, width = clip.shape[1:3]
    return np.stack(
        [clip[:, y : y + size, x : x + size] for y, x in crop_offsets(height, width, size, crops)]
    )


def normalize(views: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 (..., H, W, 3) RGB -> float32 (..., 3, H, W) in the spec's channel order and scale."""
    import torch

    x = views.movedim(-1, -3).float().div_(255)
    if spec.channel_order == "bgr":
        x = x.flip(-3)
    mean = torch.tensor(spec.mean, device=x.device).view(3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(3, 1, 1)
    if spec.channel_order == "bgr":
        mean, std = mean.flip(0), std.flip(0)
    return x.sub_(mean).div_(std)


def symmetric_views(spec: ModelSpec) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """Every combination of the spec's symmetries (the plain view first), each with its class
    order: view logits[:, order] are the window's own classes.

    Four transforms give 16 views: for flips and a transposition that is the square's whole
    symmetry group, times time reversal.
    """
    views: list[tuple[tuple[str, ...], tuple[int, ...]]] = [((), tuple(range(spec.num_classes)))]
    for name, swap in spec.symmetries:
        views += [((*names, name), tuple(swap[c] for c in order)) for names, order in views]
    return views


def transform(x: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Apply symmetry transforms, in order, to model input (..., frames, 3, H, W)."""
    for name in names:
        if name == "mirror":
            x = x.flip(-1)
        elif name == "upside_down":
            x = x.flip(-2)
        elif name == "transpose":
            x = x.transpose(-1, -2)
        elif name == "reverse":
            x = x.flip(-4)
        else:
            raise ValueError(f"unknown symmetry '{name}' (one of {', '.join(SYMMETRIES)})")
    return x
