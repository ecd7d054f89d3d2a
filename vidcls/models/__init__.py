"""Model architectures: pure nn.Modules, no I/O."""

from __future__ import annotations

from typing import Any

from torch import nn

from .layers import set_fused_attention
from .mvit import MViT, block_settings
from .timesformer import TimeSformer
from .videomae import VideoMAE
from .vivit import ViViT, ViViTFactorisedEncoder
from .vjepa2 import VJEPA2

__all__ = [
    "VJEPA2",
    "MViT",
    "TimeSformer",
    "VideoMAE",
    "ViViT",
    "ViViTFactorisedEncoder",
    "build",
    "set_fused_attention",
]


def build(arch: str, config: dict[str, Any], fused_attn: bool = True) -> nn.Module:
    """Build an architecture from a vidcls arch_config (the shape of weights.toml's tables)."""
    if arch == "mvit":
        return MViT(
            num_classes=config["num_classes"],
            blocks=block_settings(config),
            version=config["version"],
            image_size=config["image_size"],
            num_frames=config["num_frames"],
            patch_kernel=tuple(config["patch_kernel"]),
            patch_stride=tuple(config["patch_stride"]),
            fused_attn=fused_attn,
        )
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
        attention = config.get("attention", "joint")
        vivit = {"tubelet": tuple(config["tubelet"]), "gelu": config.get("gelu", "tanh")}
        if attention == "factorised-encoder":
            return ViViTFactorisedEncoder(
                temporal_depth=config["temporal_depth"],
                temporal_heads=config.get("temporal_heads"),
                temporal_mlp_dim=config.get("temporal_mlp_dim"),
                **vivit,
                **common,
            )
        return ViViT(
            attention=attention,
            attention_order=config.get("attention_order", "space_time"),
            pool=config.get("pool", "token" if attention == "joint" else "mean"),
            **vivit,
            **common,
        )
    raise ValueError(f"unknown architecture {arch!r}")
