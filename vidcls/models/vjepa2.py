"""V-JEPA 2 (Assran et al., 2025) video classifiers: a frozen encoder with an attentive probe.

The encoder is a ViT on 2×16×16 tubelets with no absolute position embedding: queries and keys
are rotated (RoPE) by the token's frame, row and column, each in its own slice of the head
dimension. The head is the attentive pooler: self-attention blocks over the tokens, then one
learned query cross-attending to them, then a linear classifier. Tokens are ordered (t h w).

Positions come from the input's own grid, so any frame count and size divisible by the tubelet
work (transformers derives rows and columns from its configured crop size, which agrees at that
size only).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import nn

from .layers import Attention, Mlp, attend


def rope_slice(head_dim: int) -> int:
    """Channels of the head given to each of time, height and width (an even third); the rest
    of the head is left unrotated."""
    return 2 * ((head_dim // 3) // 2)


def rotate(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """RoPE as V-JEPA 2 writes it: x (..., n, d) at positions pos (n,).

    Channel pairs (2i, 2i+1) rotate together, but the angle of channel j is that of frequency
    j mod d/2 (the sin/cos tables are tiled, not interleaved): kept exactly, checkpoints rely
    on it.
    """
    d = x.shape[-1]
    omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float32, device=x.device) / (d / 2))
    angle = pos.float()[:, None] * omega  # (n, d/2)
    cos = repeat(angle.cos(), "n f -> n (two f)", two=2).to(x.dtype)
    sin = repeat(angle.sin(), "n f -> n (two f)", two=2).to(x.dtype)
    pairs = rearrange(x, "... (f two) -> ... f two", two=2)
    turned = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1)
    return x * cos + rearrange(turned, "... f two -> ... (f two)") * sin


def grid_positions(t: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Frame, row and column of each token in (t h w) order."""
    ids = torch.arange(t * h * w, device=device)
    return ids // (h * w), (ids // w) % h, ids % w


class RopeAttention(Attention):
    """Self-attention with 3-D rotary positions on q and k."""

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int] = (1, 1, 1)) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        positions = grid_positions(*grid, x.device)
        q, k = self._rotate(q, positions), self._rotate(k, positions)
        out = attend(q, k, v, self.fused)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))

    @staticmethod
    def _rotate(x: torch.Tensor, positions: tuple[torch.Tensor, ...]) -> torch.Tensor:
        s = rope_slice(x.shape[-1])
        parts = [rotate(x[..., i * s : (i + 1) * s], pos) for i, pos in enumerate(positions)]
        return torch.cat([*parts, x[..., 3 * s :]], dim=-1)


class Block(nn.Module):
    def __init__(
        self, dim: int, heads: int, mlp_dim: int, eps: float, qkv_bias: bool, fused: bool
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = RopeAttention(dim, heads, qkv_bias, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), grid)
        return x + self.mlp(self.norm2(x))


class PoolerBlock(nn.Module):
    """A pre-norm self-attention block of the pooler (no positions)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float, fused: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, True, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CrossAttention(nn.Module):
    """The learned query attends to the tokens; there is no output projection."""

    def __init__(self, dim: int, heads: int, fused: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.fused = fused
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)

    def forward(self, query: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        q = rearrange(self.q(query), "b m (h d) -> b h m d", h=self.heads)
        k, v = rearrange(self.kv(x), "b n (kv h d) -> kv b h n d", kv=2, h=self.heads)
        return rearrange(attend(q, k, v, self.fused), "b h m d -> b m (h d)")


class CrossBlock(nn.Module):
    """Only the tokens are normalised before the cross-attention; the query is taken as is."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float, fused: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = CrossAttention(dim, heads, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, query: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        query = query + self.attn(query, self.norm1(x))
        return query + self.mlp(self.norm2(query))


class AttentivePooler(nn.Module):
    def __init__(
        self, dim: int, heads: int, mlp_dim: int, depth: int, eps: float, fused: bool
    ) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(
            PoolerBlock(dim, heads, mlp_dim, eps, fused) for _ in range(depth)
        )
        self.cross = CrossBlock(dim, heads, mlp_dim, eps, fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, tokens, dim) -> (batch, dim)."""
        for block in self.blocks:
            x = block(x)
        query = self.query.expand(x.shape[0], -1, -1)
        return self.cross(query, x)[:, 0]


class VJEPA2(nn.Module):
    """Video classifier taking (batch, frames, channels, height, width) and returning logits."""

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int = 256,
        num_frames: int = 16,
        tubelet: tuple[int, int, int] = (2, 16, 16),
        dim: int = 1024,
        depth: int = 24,
        heads: int = 16,
        mlp_dim: int = 4096,
        pooler_depth: int = 3,
        pooler_mlp_dim: int | None = None,
        in_channels: int = 3,
        eps: float = 1e-6,
        qkv_bias: bool = True,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        assert dim % heads == 0, f"width {dim} is not divisible by {heads} heads"
        # image_size and num_frames only describe the checkpoint: RoPE takes any input grid
        self.tubelet = tubelet
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(in_channels, dim, kernel_size=tubelet, stride=tubelet)
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_dim, eps, qkv_bias, fused_attn) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=eps)
        pooler_mlp = pooler_mlp_dim or 4 * dim
        self.pooler = AttentivePooler(dim, heads, pooler_mlp, pooler_depth, eps, fused_attn)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (batch, frames, channels, height, width) -> logits (batch, classes)."""
        video = video.to(self.head.weight.dtype)
        x = self.patch_embed.proj(rearrange(video, "b t c h w -> b c t h w"))
        grid = tuple(x.shape[2:])
        x = rearrange(x, "b d t h w -> b (t h w) d")
        for block in self.blocks:
            x = block(x, grid)
        return self.head(self.pooler(self.norm(x))).float()
