"""Model architectures: pure nn.Modules, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .layers import set_fused_attention
from .mvit import MViT, block_settings
from .onednn import pack_linears
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
    "pack_linears",
    "set_fused_attention",
]


Config = dict[str, Any]


def _common(config: Config, eps: float = 1e-6) -> dict[str, Any]:
    """The plain ViT sizes every transformer here reads the same way."""
    return {
        "num_classes": config["num_classes"],
        "image_size": config["image_size"],
        "num_frames": config["num_frames"],
        "dim": config["hidden_size"],
        "depth": config["depth"],
        "heads": config["heads"],
        "mlp_dim": config["mlp_dim"],
        "eps": config.get("eps", eps),
    }


def _tubelet(config: Config) -> tuple[int, ...]:
    return tuple(config.get("tubelet", (2, 16, 16)))


def _timesformer(config: Config, fused: bool) -> nn.Module:
    return TimeSformer(
        patch_size=config["patch_size"], attention_type=config["attention_type"],
        gelu=config.get("gelu", "none"), qkv_bias=config.get("qkv_bias", True),
        fused_attn=fused, **_common(config),
    )  # fmt: skip


def _vivit(config: Config, fused: bool) -> nn.Module:
    attention = config.get("attention", "joint")
    sizes = {
        **_common(config), "tubelet": tuple(config["tubelet"]), "gelu": config.get("gelu", "tanh"),
        "qkv_bias": config.get("qkv_bias", True), "fused_attn": fused,
    }  # fmt: skip
    if attention == "factorised-encoder":
        return ViViTFactorisedEncoder(
            temporal_depth=config["temporal_depth"], temporal_heads=config.get("temporal_heads"),
            temporal_mlp_dim=config.get("temporal_mlp_dim"), **sizes,
        )  # fmt: skip
    return ViViT(
        attention=attention, attention_order=config.get("attention_order", "space_time"),
        pool=config.get("pool", "token" if attention == "joint" else "mean"), **sizes,
    )  # fmt: skip


def _videomae(config: Config, fused: bool) -> nn.Module:
    return VideoMAE(
        tubelet=_tubelet(config), fc_norm_eps=config.get("fc_norm_eps", 1e-5),
        qv_bias=config.get("qv_bias", True), mean_pool=config.get("mean_pool", True),
        gelu=config.get("gelu", "none"), fused_attn=fused, **_common(config, eps=1e-12),
    )  # fmt: skip


def _vjepa2(config: Config, fused: bool) -> nn.Module:
    return VJEPA2(
        tubelet=_tubelet(config), pooler_depth=config.get("pooler_depth", 3),
        pooler_mlp_dim=config.get("pooler_mlp_dim"), qkv_bias=config.get("qkv_bias", True),
        fused_attn=fused, **_common(config),
    )  # fmt: skip


def _mvit(config: Config, fused: bool) -> nn.Module:
    return MViT(
        num_classes=config["num_classes"], blocks=block_settings(config),
        version=config["version"], image_size=config["image_size"],
        num_frames=config["num_frames"], patch_kernel=tuple(config["patch_kernel"]),
        patch_stride=tuple(config["patch_stride"]), fused_attn=fused,
    )  # fmt: skip


# One builder per architecture: adding a family is a model file and a row here.
BUILDERS: dict[str, Callable[[Config, bool], nn.Module]] = {
    "timesformer": _timesformer,
    "vivit": _vivit,
    "videomae": _videomae,
    "vjepa2": _vjepa2,
    "mvit": _mvit,
}


def build(arch: str, config: Config, fused_attn: bool = True) -> nn.Module:
    """Build an architecture from a vidcls arch_config (the shape of weights.toml's tables)."""
    if arch not in BUILDERS:
        raise ValueError(f"unknown architecture {arch!r}")
    return BUILDERS[arch](config, fused_attn)
