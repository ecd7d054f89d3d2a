"""TimeSformer (Bertasius et al., 2021) as released by facebookresearch/TimeSformer.

Parameter names follow the original `vit.py`, so an original checkpoint loads after stripping
its prefix and a transformers checkpoint after a fixed renaming (vidcls/checkpoints/).

After the embedding the tokens are one CLS followed by the patch tokens in (h w t) order:
space-major, time-minor, i.e. token 1 + n*T + t is patch n of frame t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import nn

from .layers import Attention, Mlp

ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")


class Block(nn.Module):
    """Pre-norm transformer block; with divided attention, temporal attention runs first."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_dim: int,
        attention_type: str,
        eps: float,
        qkv_bias: bool,
        gelu: str,
        fused: bool,
    ) -> None:
        super().__init__()
        self.attention_type = attention_type
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim, gelu)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = nn.LayerNorm(dim, eps=eps)
            self.temporal_attn = Attention(dim, heads, qkv_bias, fused)
            self.temporal_fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        if self.attention_type != "divided_space_time":
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

        cls, patches = x[:, :1], x[:, 1:]
        b = x.shape[0]

        # Temporal attention: each patch location attends over time; CLS takes no part.
        xt = rearrange(patches, "b (n t) d -> (b n) t d", t=frames)
        xt = self.temporal_attn(self.temporal_norm1(xt))
        xt = rearrange(xt, "(b n) t d -> b (n t) d", b=b)
        patches = patches + self.temporal_fc(xt)

        # Spatial attention within each frame, with its own copy of CLS; the copies' outputs
        # are averaged back into one CLS update.
        xs = rearrange(patches, "b (n t) d -> (b t) n d", t=frames)
        xs = torch.cat([repeat(cls, "b 1 d -> (b t) 1 d", t=frames), xs], dim=1)
        xs = self.attn(self.norm1(xs))
        cls_update = reduce(xs[:, :1], "(b t) 1 d -> b 1 d", "mean", t=frames)
        patch_update = rearrange(xs[:, 1:], "(b t) n d -> b (n t) d", t=frames)
        x = torch.cat([cls, patches], dim=1) + torch.cat([cls_update, patch_update], dim=1)

        return x + self.mlp(self.norm2(x))


class TimeSformer(nn.Module):
    """Video classifier taking (batch, frames, channels, height, width) and returning logits.

    Any frame count and any size divisible by the patch size work: the position embedding is
    resized on its 2-D grid and the time embedding along time, both by nearest interpolation,
    exactly as the original does at inference.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int = 224,
        patch_size: int = 16,
        num_frames: int = 8,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        attention_type: str = "divided_space_time",
        in_channels: int = 3,
        eps: float = 1e-6,
        qkv_bias: bool = True,
        gelu: str = "none",
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        assert attention_type in ATTENTION_TYPES, f"unknown attention type {attention_type!r}"
        assert image_size % patch_size == 0, "image size must be a multiple of the patch size"
        self.attention_type = attention_type
        self.patch_size = patch_size
        grid = image_size // patch_size

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(
            in_channels, dim, kernel_size=patch_size, stride=patch_size
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        if attention_type != "space_only":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, dim))
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_dim, attention_type, eps, qkv_bias, gelu, fused_attn)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)

    def _pos_embed(self, gh: int, gw: int) -> torch.Tensor:
        pos = self.pos_embed
        if pos.shape[1] == 1 + gh * gw:
            return pos
        side = int((pos.shape[1] - 1) ** 0.5)
        grid = rearrange(pos[:, 1:], "1 (h w) d -> 1 d h w", h=side)
        grid = F.interpolate(grid, size=(gh, gw), mode="nearest")
        return torch.cat([pos[:, :1], rearrange(grid, "1 d h w -> 1 (h w) d")], dim=1)

    def _time_embed(self, frames: int) -> torch.Tensor:
        time = self.time_embed
        if time.shape[1] == frames:
            return time
        time = F.interpolate(rearrange(time, "1 t d -> 1 d t"), size=frames, mode="nearest")
        return rearrange(time, "1 d t -> 1 t d")

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (batch, frames, channels, height, width) -> logits (batch, classes)."""
        return self.head(self.forward_features(video)[:, 0]).float()

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """All tokens after the final norm, class token first: (batch, 1 + tokens, dim)."""
        video = video.to(self.head.weight.dtype)
        b, t = video.shape[:2]
        x = self.patch_embed.proj(rearrange(video, "b t c h w -> (b t) c h w"))
        gh, gw = x.shape[-2:]
        x = rearrange(x, "bt d gh gw -> bt (gh gw) d")
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self._pos_embed(gh, gw)

        if self.attention_type == "space_only":
            for block in self.blocks:
                x = block(x, t)
            x = reduce(x, "(b t) n d -> b n d", "mean", t=t)
        else:
            cls = x[:b, :1]  # identical in every frame: cls_token + its position
            x = rearrange(x[:, 1:], "(b t) n d -> (b n) t d", b=b) + self._time_embed(t)
            x = torch.cat([cls, rearrange(x, "(b n) t d -> b (n t) d", b=b)], dim=1)
            for block in self.blocks:
                x = block(x, t)
        return self.norm(x)
