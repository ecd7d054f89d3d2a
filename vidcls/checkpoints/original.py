"""The original TimeSformer layout (facebookresearch `vit.py`, PySlowFast `.pyth`), pure functions.

vidcls's parameter names are the original's, so translating is stripping a wrapper prefix. A
`.pyth` file carries no config: the sizes are read off the tensors' shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

Tensors = dict[str, torch.Tensor]


def original_state_dict(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    """Find the model weights inside an original TimeSformer/PySlowFast checkpoint file."""
    for key in ("model_state", "state_dict", "model", "module"):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping) and inner:
            return inner
    return checkpoint


def from_original_timesformer(state: Mapping[str, torch.Tensor]) -> Tensors:
    """Original `vit.py` keys (possibly under `model.` or `module.`) -> vidcls keys."""
    out: Tensors = {}
    for key, value in state.items():
        for prefix in ("module.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def arch_config_from_tensors(
    state: Mapping[str, torch.Tensor], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Read a TimeSformer's sizes off its vidcls-named tensors (for files without a config).

    Width, depth, MLP width, frame count, image size and classes come from the shapes. The head
    count cannot be read off shapes: it is the registry's when the width matches, else width/64
    (the ViT convention).
    """
    try:
        dim = state["cls_token"].shape[-1]
        patch = state["patch_embed.proj.weight"].shape[-1]
        positions = state["pos_embed"].shape[1] - 1
        num_classes = state["head.weight"].shape[0]
        mlp_dim = state["blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as e:
        raise KeyError(f"checkpoint lacks {e.args[0]}") from e
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    grid = int(round(positions**0.5))
    config = dict(defaults)
    if "blocks.0.temporal_fc.weight" in state:
        config["attention_type"] = "divided_space_time"
    elif defaults.get("attention_type") == "divided_space_time":
        config["attention_type"] = "joint_space_time" if "time_embed" in state else "space_only"
    heads = defaults["heads"] if dim == defaults["hidden_size"] else max(1, dim // 64)
    config.update(
        hidden_size=dim,
        depth=depth,
        heads=heads,
        mlp_dim=mlp_dim,
        patch_size=patch,
        image_size=grid * patch,
        num_classes=num_classes,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
    )
    if "time_embed" in state:
        config["num_frames"] = state["time_embed"].shape[1]
    return config
