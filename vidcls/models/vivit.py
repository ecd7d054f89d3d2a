"""ViViT (Arnab et al., 2021): the paper's four models over 2×16×16 tubelet tokens.

Every model embeds the video in tubelets and orders the tokens (t h w), time outermost, as
Scenic does; blocks are pre-norm with tanh-approximated GELU and LayerNorm eps 1e-6.

* Model 1, `joint`: one sequence of all t·h·w tokens behind a CLS token.
* Model 2, `factorised-encoder`: a spatial encoder per frame (h·w tokens and a CLS), then a
  temporal encoder over the t frame CLS outputs (and its own CLS).
* Model 3, `factorised-self-attention`: each block attends within a frame, then across time
  at each position (or the reverse, `attention_order`), then runs its MLP.
* Model 4, `factorised-dot-product`: each block's heads are split, the first half attending
  over time at each position, the second half within each frame.

Position tables are learned for one frame count and size, so only those inputs are accepted.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .layers import Attention, Mlp, attend

ATTENTIONS = ("joint", "factorised-encoder", "factorised-self-attention", "factorised-dot-product")
ATTENTION_ORDERS = ("space_time", "time_space")


class FactorisedDotProductAttention(Attention):
    """Model 4's attention: the same projections as `Attention`, the heads split in two halves,
    time first, whose outputs are joined back on the head axis before the projection."""

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:  # type: ignore[override]
        q, k, v = rearrange(
            self.qkv(x), "b (t s) (qkv h d) -> qkv b h t s d", qkv=3, h=self.heads, t=frames
        )
        half = self.heads // 2
        b = x.shape[0]
        over_time = [rearrange(y[:, :half], "b h t s d -> (b s) h t d") for y in (q, k, v)]
        over_space = [rearrange(y[:, half:], "b h t s d -> (b t) h s d") for y in (q, k, v)]
        time_out = rearrange(attend(*over_time, self.fused), "(b s) h t d -> b h t s d", b=b)
        space_out = rearrange(attend(*over_space, self.fused), "(b t) h s d -> b h t s d", b=b)
        out = torch.cat([time_out, space_out], dim=1)
        return self.proj(rearrange(out, "b h t s d -> b (t s) (h d)"))


class Block(nn.Module):
    """Pre-norm block; with `factorised_heads` its attention is Model 4's."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_dim: int,
        eps: float,
        qkv_bias: bool,
        gelu: str,
        fused: bool,
        factorised_heads: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        if factorised_heads:
            assert heads % 2 == 0, "factorised dot-product attention needs an even head count"
            self.attn: Attention = FactorisedDotProductAttention(dim, heads, qkv_bias, fused)
        else:
            self.attn = Attention(dim, heads, qkv_bias, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim, gelu)

    def forward(self, x: torch.Tensor, frames: int = 0) -> torch.Tensor:
        if isinstance(self.attn, FactorisedDotProductAttention):
            x = x + self.attn(self.norm1(x), frames)
        else:
            x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FactorisedSelfAttentionBlock(nn.Module):
    """Model 3's block: attention within each frame and across time at each position, in
    `order`, each with its own norm and residual, then the MLP on the flat sequence."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_dim: int,
        eps: float,
        qkv_bias: bool,
        gelu: str,
        fused: bool,
        order: str,
    ) -> None:
        super().__init__()
        assert order in ATTENTION_ORDERS, f"attention order must be one of {ATTENTION_ORDERS}"
        self.order = order
        self.space_norm = nn.LayerNorm(dim, eps=eps)
        self.space_attn = Attention(dim, heads, qkv_bias, fused)
        self.time_norm = nn.LayerNorm(dim, eps=eps)
        self.time_attn = Attention(dim, heads, qkv_bias, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim, gelu)

    def _space(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        y = rearrange(self.space_norm(x), "b (t s) d -> (b t) s d", t=frames)
        return x + rearrange(self.space_attn(y), "(b t) s d -> b (t s) d", t=frames)

    def _time(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        y = rearrange(self.time_norm(x), "b (t s) d -> (b s) t d", t=frames)
        return x + rearrange(self.time_attn(y), "(b s) t d -> b (t s) d", b=x.shape[0])

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        if self.order == "space_time":
            x = self._time(self._space(x, frames), frames)
        else:
            x = self._space(self._time(x, frames), frames)
        return x + self.mlp(self.norm2(x))


class TubeletEmbedding(nn.Module):
    def __init__(self, in_channels: int, dim: int, tubelet: tuple[int, int, int]) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=tubelet, stride=tubelet)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(b, t, c, h, w) -> (b, t', h', w', d)."""
        x = self.proj(rearrange(video, "b t c h w -> b c t h w"))
        return rearrange(x, "b d t h w -> b t h w d")


def _grid(num_frames: int, image_size: int, tubelet: tuple[int, int, int]) -> tuple[int, int]:
    kt, kh, kw = tubelet
    assert num_frames % kt == 0, "frame count must be a multiple of the tubelet length"
    assert image_size % kh == 0 and image_size % kw == 0, "size must be a multiple of the tubelet"
    return num_frames // kt, (image_size // kh) * (image_size // kw)


def _check_input(model: nn.Module, video: torch.Tensor) -> None:
    t, h, w = video.shape[1], video.shape[3], video.shape[4]
    if (t, h, w) != model.input_shape:
        raise ValueError(
            f"ViViT takes {model.input_shape[0]} frames of "
            f"{model.input_shape[1]}×{model.input_shape[2]}, got {t} of {h}×{w}"
        )


class ViViT(nn.Module):
    """Models 1, 3 and 4: one sequence of tubelet tokens through one encoder.

    Takes (batch, frames, channels, height, width) and returns logits. `pool` is "token" (a CLS
    token in front, Model 1 as published) or "mean" (the mean of all tokens, as Scenic requires
    for Models 3 and 4).
    """

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
        attention: str = "joint",
        attention_order: str = "space_time",
        pool: str = "token",
    ) -> None:
        super().__init__()
        assert attention in ATTENTIONS and attention != "factorised-encoder", (
            f"ViViT attention must be joint, factorised-self-attention or factorised-dot-product, "
            f"not {attention!r}"
        )
        assert pool in ("token", "mean"), f"pool must be token or mean, not {pool!r}"
        assert attention == "joint" or pool == "mean", f"{attention} pools by the mean (Scenic)"
        self.input_shape = (num_frames, image_size, image_size)
        self.attention = attention
        self.frames, space = _grid(num_frames, image_size, tubelet)

        self.patch_embed = TubeletEmbedding(in_channels, dim, tubelet)
        if pool == "token":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pool = pool
        self.pos_embed = nn.Parameter(torch.zeros(1, (pool == "token") + self.frames * space, dim))
        self.blocks = nn.ModuleList(
            FactorisedSelfAttentionBlock(
                dim, heads, mlp_dim, eps, qkv_bias, gelu, fused_attn, attention_order
            )
            if attention == "factorised-self-attention"
            else Block(
                dim, heads, mlp_dim, eps, qkv_bias, gelu, fused_attn,
                factorised_heads=attention == "factorised-dot-product",
            )
            for _ in range(depth)
        )  # fmt: skip
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (batch, frames, channels, height, width) -> logits (batch, classes)."""
        video = video.to(self.head.weight.dtype)
        _check_input(self, video)
        x = rearrange(self.patch_embed(video), "b t h w d -> b (t h w) d")
        if self.pool == "token":
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x, self.frames)
        x = self.norm(x)
        return self.head(x[:, 0] if self.pool == "token" else x.mean(dim=1)).float()


class Encoder(nn.Module):
    """A CLS token, learned positions, plain blocks and a final norm; returns the CLS output."""

    def __init__(
        self,
        *,
        tokens: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        eps: float,
        qkv_bias: bool,
        gelu: str,
        fused: bool,
    ) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + tokens, dim))
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_dim, eps, qkv_bias, gelu, fused) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, tokens, dim) -> (batch, dim)."""
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


class ViViTFactorisedEncoder(nn.Module):
    """Model 2: a spatial encoder on each frame's tokens (weights shared across frames), then a
    temporal encoder over the frames' CLS outputs; its CLS output is classified."""

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
        temporal_depth: int = 4,
        temporal_heads: int | None = None,
        temporal_mlp_dim: int | None = None,
        in_channels: int = 3,
        eps: float = 1e-6,
        qkv_bias: bool = True,
        gelu: str = "tanh",
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        self.input_shape = (num_frames, image_size, image_size)
        frames, space = _grid(num_frames, image_size, tubelet)
        common = {"dim": dim, "eps": eps, "qkv_bias": qkv_bias, "gelu": gelu, "fused": fused_attn}
        self.patch_embed = TubeletEmbedding(in_channels, dim, tubelet)
        self.spatial = Encoder(tokens=space, depth=depth, heads=heads, mlp_dim=mlp_dim, **common)
        self.temporal = Encoder(
            tokens=frames,
            depth=temporal_depth,
            heads=temporal_heads or heads,
            mlp_dim=temporal_mlp_dim or mlp_dim,
            **common,
        )
        self.head = nn.Linear(dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (batch, frames, channels, height, width) -> logits (batch, classes)."""
        video = video.to(self.head.weight.dtype)
        _check_input(self, video)
        x = self.patch_embed(video)
        b = x.shape[0]
        frames = self.spatial(rearrange(x, "b t h w d -> (b t) (h w) d"))
        return self.head(self.temporal(rearrange(frames, "(b t) d -> b t d", b=b))).float()
