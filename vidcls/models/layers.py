"""Blocks shared by the models: attention with an SDPA and an eager path, MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from . import onednn

# At most this many tokens per sequence, reduced-precision attention on a CPU runs as the plain
# product: CPU flash attention pays a per-sequence setup that dominates on sequences this short
# (TimeSformer's temporal attention: 8 tokens, batch × 196 of them), and the matrix is tiny.
SHORT_SEQUENCE = 16


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fused: bool) -> torch.Tensor:
    """Softmax attention over (batch, heads, tokens, head_dim) tensors.

    The eager path is the reference formula, kept to test the fused kernel against it and for
    debugging; the fused path never materialises the tokens × tokens matrix, except for short
    bf16/fp16 sequences on a CPU (SHORT_SEQUENCE), where the product is faster.
    """
    short = q.shape[-2] <= SHORT_SEQUENCE and k.shape[-2] <= SHORT_SEQUENCE
    if fused and not (short and q.device.type == "cpu" and q.dtype != torch.float32):
        return F.scaled_dot_product_attention(q, k, v)
    scale = q.shape[-1] ** -0.5
    weights = (q @ k.transpose(-2, -1)) * scale
    return weights.softmax(dim=-1) @ v


class Attention(nn.Module):
    """Multi-head self-attention with one packed qkv projection (the TimeSformer layout)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, fused: bool = True) -> None:
        super().__init__()
        assert dim % heads == 0, f"width {dim} is not divisible by {heads} heads"
        self.heads = heads
        self.fused = fused
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        out = attend(q, k, v, self.fused)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class Mlp(nn.Module):
    """Linear, GELU, linear. In CPU inference the first linear and the GELU run as one oneDNN
    call (GELU as the product's post-op): the GELU reads the product before it is rounded and
    saves a pass over the widest activation of the block."""

    def __init__(self, dim: int, hidden: int, approximate: str = "none") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate=approximate)
        self.fc2 = nn.Linear(hidden, dim)
        self.fuse = True  # False: always the separate twin, to test the fused call against

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = onednn.linear_gelu(self.fc1, x, self.act.approximate) if self.fuse else None
        if hidden is None:
            hidden = self.act(self.fc1(x))
        return self.fc2(hidden)


def set_fused_attention(model: nn.Module, fused: bool) -> nn.Module:
    """Switch every attention layer of a model between SDPA (True) and the eager twin (False)."""
    for module in model.modules():
        # every attention module (Attention, its subclasses, cross-attention) has the switch
        if isinstance(getattr(module, "fused", None), bool):
            module.fused = fused
    return model
