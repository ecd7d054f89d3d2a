"""Model architectures: pure nn.Modules, no I/O."""

from __future__ import annotations

from typing import Any

from torch import nn

from .layers import set_fused_attention
from .timesformer import TimeSformer
from .videomae import VideoMAE
from .vivit import ViViT
from .vjepa2 import VJEPA2

__all__ = ["VJEPA2", "TimeSformer", "VideoMAE", "ViViT", "build", "set_fused_attention"]


def build(arch: str, config: dict[str, Any], fused_attn: bool = True) -> nn.Module:
    """Build an architecture from a vidcls arch_config (the shape of weights.toml's tables)."""
    if arch == "videomae":
        return VideoMAE(
            num_classes=config["num_classes"],
            image_size=config["image_size"],
            num_frames=config["num_frames"],
            tubelet=tuple(config.get("tubelet", (2, 16, 16))),
            dim=config["hidden_size"],
            depth=config["depth"],
            heads=config["heads"],
            mlp_dim=config["mlp_dim"],
            eps=config.get("eps", 1e-12),
            fc_norm_eps=config.get("fc_norm_eps", 1e-5),
            qv_bias=config.get("qv_bias", True),
            mean_pool=config.get("mean_pool", True),
            gelu=config.get("gelu", "none"),
            fused_attn=fused_attn,
        )
    if arch == "vjepa2":
        return VJEPA2(
            num_classes=config["num_classes"],
            image_size=config["image_size"],
            num_frames=config["num_frames"],
            tubelet=tuple(config.get("tubelet", (2, 16, 16))),
            dim=config["hidden_size"],
            depth=config["depth"],
            heads=config["heads"],
            mlp_dim=config["mlp_dim"],
            pooler_depth=config.get("pooler_depth", 3),
            pooler_mlp_dim=config.get("pooler_mlp_dim"),
            eps=config.get("eps", 1e-6),
            qkv_bias=config.get("qkv_bias", True),
            fused_attn=fused_attn,
        )
    common = {
        "num_classes": config["num_classes"],
        "image_size": config["image_size"],
        "num_frames": config["num_frames"],
        "dim": config["hidden_size"],
        "depth": config["depth"],
        "heads": config["heads"],
        "mlp_dim": config["mlp_dim"],
        "eps": config.get("eps", 1e-6),
        "qkv_bias": config.get("qkv_bias", True),
        "fused_attn": fused_attn,
    }
    if arch == "timesformer":
        return TimeSformer(
            patch_size=config["patch_size"],
            attention_type=config["attention_type"],
            gelu=config.get("gelu", "none"),
            **common,
        )
    if arch == "vivit":
        return ViViT(tubelet=tuple(config["tubelet"]), gelu=config.get("gelu", "tanh"), **common)
    raise ValueError(f"unknown architecture {arch!r}")
