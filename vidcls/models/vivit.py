"""ViViT Model 1 (Arnab et al., 2021): unfactorised space-time attention over tubelet tokens.

This is the architecture of the released ViViT-B/16x2 Kinetics-400 checkpoint: a 2×16×16
tubelet embedding, one CLS token, learned positions for every token, a plain pre-norm ViT
encoder with tanh-approximated GELU and LayerNorm eps 1e-6. Tokens are ordered (t h w).
The position table is learned for one frame count and size, so only those inputs are accepted.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .layers import Attention, Mlp


class Block(nn.Module):
    def __init__(
        self, dim: int, heads: int, mlp_dim: int, eps: float, qkv_bias: bool, gelu: str, fused: bool
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim, gelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViViT(nn.Module):
    """Video classifier taking (batch, frames, channels, height, width) and returning logits."""

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int = 224,
        num_frames: int = 32,
        tubelet: tuple[int, int, int] = (2, 16, 16),
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        in_channels: int = 3,
        eps: float = 1e-6,
        qkv_bias: bool = True,
        gelu: str = "tanh",
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        kt, kh, kw = tubelet
        assert num_frames % kt == 0, "frame count must be a multiple of the tubelet length"
        assert image_size % kh == 0 and image_size % kw == 0, (
            "size must be a multiple of the tubelet"
        )
        self.input_shape = (num_frames, image_size, image_size)
        tokens = (num_frames // kt) * (image_size // kh) * (image_size // kw)

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(in_channels, dim, kernel_size=tubelet, stride=tubelet)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + tokens, dim))
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_dim, eps, qkv_bias, gelu, fused_attn) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (batch, frames, channels, height, width) -> logits (batch, classes)."""
        video = video.to(self.head.weight.dtype)
        t, h, w = video.shape[1], video.shape[3], video.shape[4]
        if (t, h, w) != self.input_shape:
            raise ValueError(
                f"ViViT takes {self.input_shape[0]} frames of "
                f"{self.input_shape[1]}×{self.input_shape[2]}, got {t} of {h}×{w}"
            )
        x = self.patch_embed.proj(rearrange(video, "b t c h w -> b c t h w"))
        x = rearrange(x, "b d t h w -> b (t h w) d")
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0]).float()
