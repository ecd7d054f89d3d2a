"""VideoMAE (Tong et al., 2022) fine-tuned classifiers, as released by MCG-NJU/VideoMAE.

A plain ViT on 2×16×16 tubelets with a fixed 1-D sinusoidal position table over the token
index, joint space-time attention whose q and v projections have biases and whose k projection
has none, no class token; the head mean-pools the tokens, normalises (`fc_norm`) and classifies.
Tokens are ordered (t h w). The table is computed, not learned, for one frame count and size,
so only those inputs are accepted (transformers refuses the others too).
"""

from __future__ import annotations

import torch
from einops import rearrange, reduce
from torch import nn

from . import onednn
from .layers import Attention, Mlp, attend


def sinusoid_table(tokens: int, dim: int) -> torch.Tensor:
    """(tokens, dim): sin on even channels, cos on odd ones, of position / 10000^(2⌊j/2⌋/dim)."""
    position = torch.arange(tokens, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim) // 2) / dim
    angle = position / torch.pow(10000.0, exponent.to(torch.float64))
    table = torch.empty(tokens, dim, dtype=torch.float64)
    table[:, 0::2] = angle[:, 0::2].sin()
    table[:, 1::2] = angle[:, 1::2].cos()
    return table.float()


class QVBiasAttention(Attention):
    """Packed qkv projection without bias, plus learned biases on q and v only (none on k)."""

    def __init__(self, dim: int, heads: int, qv_bias: bool = True, fused: bool = True) -> None:
        super().__init__(dim, heads, qkv_bias=False, fused=fused)
        if qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = onednn.linear(self.qkv, x, bias)
        q, k, v = rearrange(qkv, "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        out = attend(q, k, v, self.fused)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class Block(nn.Module):
    def __init__(
        self, dim: int, heads: int, mlp_dim: int, eps: float, qv_bias: bool, gelu: str, fused: bool
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = QVBiasAttention(dim, heads, qv_bias, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim, gelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoMAE(nn.Module):
    """Video classifier taking (batch, frames, channels, height, width) and returning logits."""

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int = 224,
        num_frames: int = 16,
        tubelet: tuple[int, int, int] = (2, 16, 16),
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        in_channels: int = 3,
        eps: float = 1e-12,
        fc_norm_eps: float = 1e-5,
        qv_bias: bool = True,
        mean_pool: bool = True,
        gelu: str = "none",
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        kt, kh, kw = tubelet
        assert num_frames % kt == 0, "frame count must be a multiple of the tubelet length"
        assert image_size % kh == 0 and image_size % kw == 0, (
            "size must be a multiple of the tubelet"
        )
        self.input_shape = (num_frames, image_size, image_size)
        self.mean_pool = mean_pool
        tokens = (num_frames // kt) * (image_size // kh) * (image_size // kw)

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(in_channels, dim, kernel_size=tubelet, stride=tubelet)
        # fixed, so not part of the state dict: checkpoints do not carry it
        self.register_buffer("pos_embed", sinusoid_table(tokens, dim)[None], persistent=False)
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_dim, eps, qv_bias, gelu, fused_attn) for _ in range(depth)
        )
        # mean pooling normalises the pooled vector; without it the last tokens are normalised
        # and the first one classified (transformers' use_mean_pooling=False)
        if mean_pool:
            self.fc_norm = nn.LayerNorm(dim, eps=fc_norm_eps)
        else:
            self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (batch, frames, channels, height, width) -> logits (batch, classes)."""
        video = video.to(self.head.weight.dtype)
        t, h, w = video.shape[1], video.shape[3], video.shape[4]
        if (t, h, w) != self.input_shape:
            raise ValueError(
                f"VideoMAE takes {self.input_shape[0]} frames of "
                f"{self.input_shape[1]}×{self.input_shape[2]}, got {t} of {h}×{w}"
            )
        x = self.patch_embed.proj(rearrange(video, "b t c h w -> b c t h w"))
        x = rearrange(x, "b d t h w -> b (t h w) d") + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        if self.mean_pool:
            pooled = self.fc_norm(reduce(x, "b n d -> b d", "mean"))
        else:
            pooled = self.norm(x)[:, 0]
        return self.head(pooled).float()
