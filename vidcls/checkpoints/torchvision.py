"""torchvision's MViT state dicts (`mvit_v1_b`, `mvit_v2_s` `.pth` files), pure functions.

The published files are bare state dicts under torchvision's names and carry no config: the
widths, heads, stage depths, kernels, grid and classes are read off the tensors' shapes. The
strides leave no trace in any shape, so they come from the registry's arch_config.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import torch

Tensors = dict[str, torch.Tensor]

# (pattern, replacement) applied in order; keys that match none keep their name.
_RENAMES = (
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^pos_encoding\.class_token$", "cls_token"),
    (r"^pos_encoding\.spatial_pos$", "pos_embed_spatial"),
    (r"^pos_encoding\.temporal_pos$", "pos_embed_temporal"),
    (r"^pos_encoding\.class_pos$", "pos_embed_class"),
    (r"^(blocks\.\d+\.attn)\.project\.0\.", r"\1.proj."),
    (r"^(blocks\.\d+\.attn\.pool_[qkv])\.norm_act\.0\.", r"\1.norm."),
    (r"^(blocks\.\d+\.mlp)\.0\.", r"\1.fc1."),
    (r"^(blocks\.\d+\.mlp)\.3\.", r"\1.fc2."),
    (r"^head\.1\.", "head."),
)


def from_torchvision_mvit(state: Mapping[str, torch.Tensor]) -> Tensors:
    """torchvision MViT keys -> vidcls keys (tensors unchanged)."""
    return _renamed(state, _RENAMES)


# The inverse of _RENAMES, for writing a .pth torchvision loads (bench weights, tests).
_EXPORT = (
    (r"^patch_embed\.proj\.", "conv_proj."),
    (r"^cls_token$", "pos_encoding.class_token"),
    (r"^pos_embed_(spatial|temporal|class)$", r"pos_encoding.\1_pos"),
    (r"^(blocks\.\d+\.attn)\.proj\.", r"\1.project.0."),
    (r"^(blocks\.\d+\.attn\.pool_[qkv])\.norm\.", r"\1.norm_act.0."),
    (r"^(blocks\.\d+\.mlp)\.fc1\.", r"\1.0."),
    (r"^(blocks\.\d+\.mlp)\.fc2\.", r"\1.3."),
    (r"^head\.", "head.1."),
)


def _renamed(state: Mapping[str, torch.Tensor], table: tuple[tuple[str, str], ...]) -> Tensors:
    out: Tensors = {}
    for key, value in state.items():
        for pattern, replacement in table:
            key, n = re.subn(pattern, replacement, key)
            if n:
                break
        out[key] = value
    return out


def to_torchvision_mvit(state: Mapping[str, torch.Tensor]) -> Tensors:
    """vidcls MViT keys -> torchvision's (what `from_torchvision_mvit` reads back)."""
    return _renamed(state, _EXPORT)


def arch_config_from_tensors(
    state: Mapping[str, torch.Tensor], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Read an MViT's sizes off its vidcls-named tensors.

    A block's heads are its attention width over the pooling norm's width (head_dim); a stage
    starts where the heads grow. v1's grid is its position tables', v2's the first block's
    relative tables' (that block has no query stride, so the table spans the full grid).
    """
    try:
        dim = state["cls_token"].shape[0]
        num_classes = state["head.weight"].shape[0]
        kernel = list(state["blocks.0.attn.pool_k.pool.weight"].shape[2:])
        patch_kernel = list(state["patch_embed.proj.weight"].shape[2:])
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        heads = []
        for i in range(depth):
            width = state[f"blocks.{i}.attn.qkv.weight"].shape[0] // 3
            heads.append(width // state[f"blocks.{i}.attn.pool_k.norm.weight"].shape[0])
    except KeyError as e:
        raise KeyError(f"checkpoint lacks {e.args[0]}") from e
    except ValueError as e:  # no blocks at all
        raise KeyError("checkpoint has no blocks") from e
    depths = [1]
    for before, after in pairwise(heads):
        if after > before:
            depths.append(1)
        else:
            depths[-1] += 1
    stride_t, stride_h = defaults["patch_stride"][0], defaults["patch_stride"][1]
    if "pos_embed_spatial" in state:
        version = 1
        grid_t = state["pos_embed_temporal"].shape[0]
        side = math.isqrt(state["pos_embed_spatial"].shape[0])
    else:
        version = 2
        try:
            grid_t = (state["blocks.0.attn.rel_pos_t"].shape[0] + 1) // 2
            side = (state["blocks.0.attn.rel_pos_h"].shape[0] + 1) // 2
        except KeyError as e:
            raise KeyError(f"checkpoint lacks {e.args[0]} (v2) or pos_encoding (v1)") from e
    config = dict(defaults)
    config.update(
        version=version,
        embed_dim=dim,
        heads=heads[0],
        depths=depths,
        kernel=kernel,
        patch_kernel=patch_kernel,
        image_size=side * stride_h,
        num_frames=grid_t * stride_t,
        num_classes=num_classes,
    )
    return config
