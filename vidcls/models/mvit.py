"""Multiscale Vision Transformers, v1 (Fan et al., 2021) and v2 (Li et al., 2022), as torchvision
ports them (`mvit_v1_b`, `mvit_v2_s`, from PySlowFast / PyTorchVideo).

Unlike TimeSformer and ViViT, the token grid shrinks as the channels grow: a conv stem gives a
fine, narrow grid, and every block pools its queries, keys and values with a depthwise conv
followed by a LayerNorm. A query stride halves the grid at each stage change; keys and values
are pooled harder in early stages so attention stays cheap. The class token is never pooled but
is normalised with the pooled tokens.

v2 differs from v1 in four places: no absolute position table (a decomposed relative bias on
t, y, x instead), the pooled query added back to the attention output (residual pooling), the
width change inside attention in the first block of a stage (v1: through the MLP of the last
block of the previous one), and a query pool in every block.

Tokens are ordered (t y x), class token first. The grid is fixed by the position tables of the
published weights: the stem output must have the grid the model was built for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import nn

Grid = tuple[int, int, int]


@dataclass(frozen=True)
class BlockSetting:
    """One block's geometry, torchvision's `MSBlockConfig`: kernel None means no query pool."""

    heads: int
    dim_in: int
    dim_out: int
    kernel_q: tuple[int, int, int] | None
    stride_q: tuple[int, int, int]
    kernel_kv: tuple[int, int, int]
    stride_kv: tuple[int, int, int]


def block_settings(config: dict[str, Any]) -> list[BlockSetting]:
    """Expand a stage description into per-block settings, following torchvision's builders.

    Stage s has heads·2^s heads and embed_dim·2^s channels; its first block (s > 0) strides the
    queries by `q_stride`. Keys and values start strided by `kv_stride` and lose one query
    stride per stage. v1 widens in the last block of a stage and pools queries only where they
    are strided; v2 widens in the first block of the next stage and pools queries everywhere.
    """
    version, dim, heads = config["version"], config["embed_dim"], config["heads"]
    kernel = tuple(config["kernel"])
    q_stride, kv_stride = tuple(config["q_stride"]), list(config["kv_stride"])
    depths = list(config["depths"])
    blocks = []
    for stage, depth in enumerate(depths):
        if stage > 0:
            kv_stride = [max(s // q, 1) for s, q in zip(kv_stride, q_stride, strict=True)]
        for i in range(depth):
            strided = stage > 0 and i == 0
            width = dim * 2**stage
            if version == 2:
                dim_in = width // 2 if strided else width
                dim_out = width
            else:
                last = i == depth - 1 and stage < len(depths) - 1
                dim_in, dim_out = width, width * 2 if last else width
            blocks.append(
                BlockSetting(
                    heads=heads * 2**stage,
                    dim_in=dim_in,
                    dim_out=dim_out,
                    kernel_q=kernel if version == 2 or strided else None,
                    stride_q=q_stride if strided else (1, 1, 1),
                    kernel_kv=kernel,  # type: ignore[arg-type]
                    stride_kv=tuple(kv_stride),  # type: ignore[arg-type]
                )
            )
    return blocks


class Pool(nn.Module):
    """Depthwise conv over the patch tokens of every head, then LayerNorm over all tokens.

    The class token skips the conv but not the norm, as in the original.
    """

    def __init__(
        self, head_dim: int, kernel: Sequence[int], stride: Sequence[int], eps: float
    ) -> None:
        super().__init__()
        padding = tuple(k // 2 for k in kernel)
        self.pool = nn.Conv3d(
            head_dim, head_dim, tuple(kernel), tuple(stride), padding, groups=head_dim, bias=False
        )
        self.norm = nn.LayerNorm(head_dim, eps=eps)

    def forward(self, x: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, Grid]:
        heads = x.shape[1]
        cls, patches = x[:, :, :1], x[:, :, 1:]
        t, h, w = grid
        patches = rearrange(patches, "b n (t y x) d -> (b n) d t y x", t=t, y=h, x=w)
        patches = self.pool(patches)
        out_grid: Grid = tuple(patches.shape[-3:])  # type: ignore[assignment]
        patches = rearrange(patches, "(b n) d t y x -> b n (t y x) d", n=heads)
        return self.norm(torch.cat([cls, patches], dim=2)), out_grid


def _rel_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """A relative-position table resized to `length` rows by linear interpolation, if needed."""
    if table.shape[0] == length:
        return table
    resized = F.interpolate(rearrange(table, "n d -> 1 d n"), size=length, mode="linear")
    return rearrange(resized, "1 d n -> n d")


def _rel_rows(n_q: int, n_k: int, device: torch.device) -> torch.Tensor:
    """(n_q, n_k) table rows for query i and key j on one axis: distances scaled by the stride
    ratio, so a strided grid's positions land on the fine grid's table."""
    r_q, r_k = max(n_k / n_q, 1.0), max(n_q / n_k, 1.0)
    i = torch.arange(n_q, device=device)[:, None] * r_q
    j = torch.arange(n_k, device=device)[None, :] * r_k
    return (i - j + (n_k - 1) * r_k).long()


def rel_pos_bias(
    q: torch.Tensor,
    q_grid: Grid,
    k_grid: Grid,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """MViTv2's decomposed relative-position bias (b, heads, 1 + Nq, 1 + Nk) from the pooled,
    unscaled queries; the class token's row and column get none."""
    rel_t, rel_h, rel_w = tables
    rows = []
    for table, n_q, n_k in zip((rel_t, rel_h, rel_w), q_grid, k_grid, strict=True):
        table = _rel_table(table, 2 * max(n_q, n_k) - 1)
        rows.append(table[_rel_rows(n_q, n_k, q.device)])
    r_t, r_h, r_w = rows
    t, y, x = q_grid
    grid = rearrange(q[:, :, 1:], "b n (t y x) d -> b n t y x d", t=t, y=y, x=x)
    bias_t = einsum(grid, r_t, "b n t y x d, t kt d -> b n t y x kt")
    bias_h = einsum(grid, r_h, "b n t y x d, y ky d -> b n t y x ky")
    bias_w = einsum(grid, r_w, "b n t y x d, x kx d -> b n t y x kx")
    bias = bias_t[..., :, None, None] + bias_h[..., None, :, None] + bias_w[..., None, None, :]
    bias = rearrange(bias, "b n t y x kt ky kx -> b n (t y x) (kt ky kx)")
    return F.pad(bias, (1, 0, 1, 0))


class MultiscaleAttention(nn.Module):
    """Pooling attention: q, k and v pooled on the block's grid, optional v2 relative positions
    and residual pooling. `fused` picks SDPA or the eager formula, as `layers.Attention` does."""

    def __init__(
        self,
        setting: BlockSetting,
        version: int,
        grid: Grid,
        eps: float,
        fused: bool = True,
    ) -> None:
        super().__init__()
        dim = setting.dim_out if version == 2 else setting.dim_in
        assert dim % setting.heads == 0, f"width {dim} is not divisible by {setting.heads} heads"
        self.heads = setting.heads
        self.fused = fused
        self.residual_pool = version == 2
        head_dim = dim // setting.heads
        self.qkv = nn.Linear(setting.dim_in, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.pool_q = (
            Pool(head_dim, setting.kernel_q, setting.stride_q, eps)
            if setting.kernel_q is not None
            else None
        )
        self.pool_k = Pool(head_dim, setting.kernel_kv, setting.stride_kv, eps)
        self.pool_v = Pool(head_dim, setting.kernel_kv, setting.stride_kv, eps)
        self.rel_pos = version == 2
        if self.rel_pos:
            # Table lengths as torchvision sizes them at construction, from the H strides.
            size = max(grid[1], grid[2])
            q_size, kv_size = size // setting.stride_q[1], size // setting.stride_kv[1]
            spatial = 2 * max(q_size, kv_size) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(spatial, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(spatial, head_dim))
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * grid[0] - 1, head_dim))

    def forward(self, x: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, Grid]:
        q, k, v = rearrange(self.qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        q_grid = grid
        if self.pool_q is not None:
            q, q_grid = self.pool_q(q, grid)
        k, k_grid = self.pool_k(k, grid)
        v, _ = self.pool_v(v, grid)
        bias = None
        if self.rel_pos:
            bias = rel_pos_bias(q, q_grid, k_grid, (self.rel_pos_t, self.rel_pos_h, self.rel_pos_w))
        out = _attend(q, k, v, bias, self.fused)
        if self.residual_pool:
            out = torch.cat([out[:, :, :1], out[:, :, 1:] + q[:, :, 1:]], dim=2)
        return self.proj(rearrange(out, "b h n d -> b n (h d)")), q_grid


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, fused: bool
) -> torch.Tensor:
    """softmax(q·kᵀ/√d + bias)·v; the eager path is the reference the fused one is tested on."""
    if fused:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    weights = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if bias is not None:
        weights = weights + bias
    return weights.softmax(dim=-1) @ v


class SkipPool(nn.Module):
    """Max-pools the skip path of a query-strided block to its output grid (class token kept)."""

    def __init__(self, stride: Sequence[int]) -> None:
        super().__init__()
        kernel = tuple(s + 1 if s > 1 else s for s in stride)
        self.pool = nn.MaxPool3d(kernel, tuple(stride), tuple(k // 2 for k in kernel))

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        t, h, w = grid
        patches = rearrange(x[:, 1:], "b (t y x) c -> b c t y x", t=t, y=h, x=w)
        patches = rearrange(self.pool(patches), "b c t y x -> b (t y x) c")
        return torch.cat([x[:, :1], patches], dim=1)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(
        self, setting: BlockSetting, version: int, grid: Grid, eps: float, fused: bool
    ) -> None:
        super().__init__()
        self.version = version
        dim = setting.dim_out if version == 2 else setting.dim_in
        self.norm1 = nn.LayerNorm(setting.dim_in, eps=eps)
        self.attn = MultiscaleAttention(setting, version, grid, eps, fused)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, 4 * dim, setting.dim_out)
        self.project = (
            nn.Linear(setting.dim_in, setting.dim_out)
            if setting.dim_in != setting.dim_out
            else None
        )
        strided = any(s > 1 for s in setting.stride_q)
        self.skip_pool = SkipPool(setting.stride_q) if strided else None

    def forward(self, x: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, Grid]:
        normed = self.norm1(x)
        attended, out_grid = self.attn(normed, grid)
        # v2 widens in attention, so its skip is projected too, from the normalised input
        skip = self.project(normed) if self.version == 2 and self.project is not None else x
        if self.skip_pool is not None:
            skip = self.skip_pool(skip, grid)
        x = skip + attended
        normed = self.norm2(x)
        # v1 widens in the MLP: its residual is projected from the normalised input
        residual = self.project(normed) if self.version == 1 and self.project is not None else x
        return residual + self.mlp(normed), out_grid


class MViT(nn.Module):
    """Video classifier taking (batch, frames, channels, height, width) and returning logits."""

    def __init__(
        self,
        *,
        num_classes: int,
        blocks: Sequence[BlockSetting],
        version: int = 2,
        image_size: int = 224,
        num_frames: int = 16,
        patch_kernel: Sequence[int] = (3, 7, 7),
        patch_stride: Sequence[int] = (2, 4, 4),
        in_channels: int = 3,
        eps: float = 1e-6,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        assert version in (1, 2), f"MViT version must be 1 or 2, not {version}"
        assert blocks, "MViT needs at least one block"
        for before, after in pairwise(blocks):
            assert before.dim_out == after.dim_in, "block widths do not chain"
        dim = blocks[0].dim_in
        padding = tuple(k // 2 for k in patch_kernel)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(
            in_channels, dim, tuple(patch_kernel), tuple(patch_stride), padding
        )
        # Built with floor division like torchvision, so a few raw sizes give the same grid.
        grid: Grid = (
            num_frames // patch_stride[0],
            image_size // patch_stride[1],
            image_size // patch_stride[2],
        )
        self.grid = grid
        # the protocol the tables were sized for, for the engine to check before decoding
        self.input_shape = (num_frames, image_size, image_size)
        self.cls_token = nn.Parameter(torch.zeros(dim))
        self.version = version
        if version == 1:
            self.pos_embed_spatial = nn.Parameter(torch.zeros(grid[1] * grid[2], dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(grid[0], dim))
            self.pos_embed_class = nn.Parameter(torch.zeros(dim))
        self.blocks = nn.ModuleList()
        for setting in blocks:
            self.blocks.append(Block(setting, version, grid, eps, fused_attn))
            grid = tuple(g // s for g, s in zip(grid, setting.stride_q, strict=True))  # type: ignore[assignment]
        self.norm = nn.LayerNorm(blocks[-1].dim_out, eps=eps)
        self.head = nn.Linear(blocks[-1].dim_out, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (batch, frames, channels, height, width) -> logits (batch, classes)."""
        video = video.to(self.head.weight.dtype)
        x = self.patch_embed.proj(rearrange(video, "b t c h w -> b c t h w"))
        grid: Grid = tuple(x.shape[-3:])  # type: ignore[assignment]
        if grid != self.grid:
            raise ValueError(
                f"MViT was built for a {self.grid[0]}×{self.grid[1]}×{self.grid[2]} token grid "
                f"(its position tables fix it); this input gives {grid[0]}×{grid[1]}×{grid[2]}"
            )
        x = rearrange(x, "b d t y x -> b (t y x) d")
        cls = self.cls_token.expand(x.shape[0], 1, -1)
        if self.version == 1:
            positions = rearrange(
                self.pos_embed_temporal[:, None] + self.pos_embed_spatial[None],
                "t s d -> (t s) d",
            )
            x = x + positions
            cls = cls + self.pos_embed_class
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x, grid = block(x, grid)
        return self.head(self.norm(x)[:, 0]).float()
