"""Scenic's ViViT layout (Flax parameter trees, as published), as pure functions.

Flax paths in, vidcls's keys and arch_config out. Flax keeps q, k and v as (dim, heads,
head_dim) kernels, Dense kernels as (in, out) and the tubelet kernel as (t, h, w, in, out);
they become the packed qkv projection, (out, in) weights and a Conv3d weight. Every size is
read off the tensors; only which of two same-shaped models a tree is (Model 1 or 4, Model 3's
attention order) must be chosen. Nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ..registry import VIVIT_ATTENTIONS, VIVIT_CHOICES

Tensors = dict[str, torch.Tensor]

# Scenic's attention_config.type -> vidcls's attention
SCENIC_ATTENTIONS = {
    "spacetime": "joint",
    "factorized_encoder": "factorised-encoder",
    "factorized_self_attention_block": "factorised-self-attention",
    "factorized_dot_product_attention": "factorised-dot-product",
}
_ENCODERS = {
    "Transformer": "",
    "SpatialTransformer": "spatial.",
    "TemporalTransformer": "temporal.",
}
_GLOBAL = {
    "cls": "cls_token",
    "cls_SpatialTransformer": "spatial.cls_token",
    "cls_TemporalTransformer": "temporal.cls_token",
}
_BLOCK_MODULES = {
    "LayerNorm_0": "norm1",
    "LayerNorm_1": "norm2",
    "MultiHeadDotProductAttention_0": "attn",
    "MlpBlock_0": "mlp",
    # Model 3's block
    "LayerNorm_space": "space_norm",
    "LayerNorm_time": "time_norm",
    "LayerNorm_mlp": "norm2",
    "MultiHeadDotProductAttention_space": "space_attn",
    "MultiHeadDotProductAttention_time": "time_attn",
    "MlpBlock": "mlp",
}
_BLOCK = re.compile(r"^(\w+)/encoderblock_(\d+)/(\w+)/(.+)$")


def _norm(leaf: str) -> str | None:
    return {"scale": "weight", "bias": "bias"}.get(leaf)


def from_scenic_vivit(state: Mapping[str, torch.Tensor]) -> Tensors:
    """Scenic ViViT / SpaceTimeViViT Flax paths -> vidcls keys (Models 1 to 4).

    Separate query/key/value kernels are packed into one qkv projection. A key it does not
    know is kept under its own name, for the strict load to report.
    """
    out: Tensors = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if (m := _QKV.match(key)) is not None:
            encoder, index, module, projection, kind = m.groups()
            ours = f"{_ENCODERS[encoder]}blocks.{index}.{_BLOCK_MODULES[module]}"
            # kernel (dim, heads, head_dim) -> (heads*head_dim, dim); bias -> (heads*head_dim,)
            part = value.reshape(value.shape[0], -1).t() if kind == "kernel" else value.reshape(-1)
            qkv.setdefault((ours, kind), {})[projection] = part
            continue
        translated = _translate(key, value)
        name, tensor = translated if translated is not None else (key, value)
        out[name] = tensor
    for (ours, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            missing = ", ".join(sorted({"query", "key", "value"} - set(parts)))
            raise KeyError(f"{ours}: attention {kind} lacks the {missing} projection")
        packed = torch.cat([parts["query"], parts["key"], parts["value"]])
        out[f"{ours}.qkv.{'weight' if kind == 'kernel' else 'bias'}"] = packed.contiguous()
    return out


_QKV = re.compile(
    r"^(Transformer|SpatialTransformer|TemporalTransformer)/encoderblock_(\d+)/"
    r"(MultiHeadDotProductAttention_(?:0|space|time))/(query|key|value)/(kernel|bias)$"
)


def _translate(key: str, value: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """One Flax leaf other than q, k and v -> (vidcls key, tensor in torch's layout)."""
    if key in _GLOBAL:
        return _GLOBAL[key], value
    if key == "embedding/kernel":  # (t, h, w, in, out) -> (out, in, t, h, w)
        return "patch_embed.proj.weight", value.permute(4, 3, 0, 1, 2).contiguous()
    if key == "embedding/bias":
        return "patch_embed.proj.bias", value
    if key == "output_projection/kernel":
        return "head.weight", value.t().contiguous()
    if key == "output_projection/bias":
        return "head.bias", value
    encoder, _, rest = key.partition("/")
    if encoder not in _ENCODERS:
        return None
    prefix = _ENCODERS[encoder]
    if rest == "posembed_input/pos_embedding":
        return f"{prefix}pos_embed", value
    if rest.startswith("encoder_norm/") and (kind := _norm(rest.split("/")[-1])) is not None:
        return f"{prefix}norm.{kind}", value
    m = _BLOCK.match(key)
    if m is None or m.group(3) not in _BLOCK_MODULES:
        return None
    _, index, module, leaf = m.groups()
    ours = f"{prefix}blocks.{index}.{_BLOCK_MODULES[module]}"
    if module.startswith("LayerNorm"):
        kind = _norm(leaf)
        return None if kind is None else (f"{ours}.{kind}", value)
    if module.startswith("MlpBlock"):
        dense = {"Dense_0/kernel": "fc1.weight", "Dense_0/bias": "fc1.bias",
                 "Dense_1/kernel": "fc2.weight", "Dense_1/bias": "fc2.bias"}.get(leaf)  # fmt: skip
        if dense is None:
            return None
        return f"{ours}.{dense}", value.t().contiguous() if dense.endswith("weight") else value
    if leaf == "out/kernel":  # (heads, head_dim, dim) -> (dim, heads*head_dim)
        return f"{ours}.proj.weight", value.reshape(-1, value.shape[-1]).t().contiguous()
    if leaf == "out/bias":
        return f"{ours}.proj.bias", value
    return None


def tree_variant(state: Mapping[str, Any]) -> str:
    """Which ViViT a Scenic parameter tree (Flax paths) is: "joint" (Models 1 and 4 share it),
    "factorised-encoder" or "factorised-self-attention"; a KeyError lists what it found."""
    keys = set(state)
    tops = {k.split("/")[0] for k in keys}
    if {"SpatialTransformer", "TemporalTransformer"} <= tops:
        return "factorised-encoder"
    first = {k.split("/")[2] for k in keys if k.startswith("Transformer/encoderblock_0/")}
    if {"MultiHeadDotProductAttention_space", "MultiHeadDotProductAttention_time"} <= first:
        return "factorised-self-attention"
    if "MultiHeadDotProductAttention_0" in first:
        return "joint"
    raise KeyError(
        "a Scenic tree that is no ViViT variant (Model 1/4: Transformer with "
        "MultiHeadDotProductAttention_0; Model 2: SpatialTransformer and TemporalTransformer; "
        "Model 3: MultiHeadDotProductAttention_space and _time); found top-level "
        f"{', '.join(sorted(tops)) or 'nothing'}"
        + (f" and first-block modules {', '.join(sorted(first))}" if first else "")
    )


def _choose(
    tree: str,
    choice: str | None,
    file_config: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
) -> tuple[str, str]:
    """(attention, attention_order): an explicit choice, else the Scenic config beside the file,
    else the registry entry's, else what the tree implies (Model 1; space before time)."""
    candidates: list[tuple[str, str, str | None]] = []
    if choice is not None:
        attention, order = VIVIT_CHOICES[choice]
        candidates.append(("the chosen attention", attention, order))
    model = (file_config or {}).get("model")
    scenic = model.get("attention_config") if isinstance(model, dict) else None
    if isinstance(scenic, dict) and scenic.get("type") in SCENIC_ATTENTIONS:
        candidates.append(
            ("its config.json", SCENIC_ATTENTIONS[scenic["type"]], scenic.get("attention_order"))
        )
    if defaults.get("attention") in VIVIT_ATTENTIONS:
        candidates.append(
            ("the registry entry", defaults["attention"], defaults.get("attention_order"))
        )
    for where, attention, order in candidates:
        fits = attention == tree or (tree == "joint" and attention == "factorised-dot-product")
        if fits:
            return attention, order or "space_time"
        if where != "the registry entry":  # a registry default only narrows, never contradicts
            raise KeyError(f"holds a ViViT {tree} parameter tree, but {where} says {attention}")
    return tree, "space_time"


def _frames_and_size(
    tokens: int,
    kt: int,
    kh: int,
    file_config: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
) -> tuple[int, int]:
    """A one-sequence position table holds t'·h'·w' rows: which split it is cannot be read off
    its shape, so the frame count comes from the Scenic config beside the file or the registry,
    and the size from what is left (square frames, as Scenic crops them)."""
    frames = None
    meta = (file_config or {}).get("dataset_meta_data", {})
    shape = meta.get("input_shape") if isinstance(meta, dict) else None
    if isinstance(shape, list) and len(shape) == 5:
        frames = shape[1]
    frames = frames or defaults.get("num_frames")
    if not frames or frames % kt or tokens % (frames // kt):
        raise KeyError(
            f"cannot split {tokens} position rows into frames and patches with "
            f"{frames} frames of tubelet length {kt}"
        )
    side = round((tokens // (frames // kt)) ** 0.5)
    if side * side * (frames // kt) != tokens:
        raise KeyError(f"{tokens} position rows are not {frames // kt} square frames of patches")
    return frames, side * kh


def _depth(state: Mapping[str, Any], encoder: str) -> int:
    blocks = [k for k in state if k.startswith(f"{encoder}/encoderblock_")]
    return 1 + max(int(k.split("/")[1].split("_")[1]) for k in blocks) if blocks else 0


def _encoder_sizes(state: Mapping[str, Any], encoder: str) -> tuple[int, int, int]:
    """(depth, heads, mlp width) of one Flax encoder; heads are the q kernel's middle axis."""
    block = f"{encoder}/encoderblock_0"
    attention = "MultiHeadDotProductAttention_0"
    if f"{block}/{attention}/query/kernel" not in state:
        attention = "MultiHeadDotProductAttention_space"
    mlp = "MlpBlock_0" if f"{block}/MlpBlock_0/Dense_0/kernel" in state else "MlpBlock"
    try:
        heads = state[f"{block}/{attention}/query/kernel"].shape[1]
        mlp_dim = state[f"{block}/{mlp}/Dense_0/kernel"].shape[1]
    except KeyError as e:
        raise KeyError(f"checkpoint lacks {e.args[0]}") from e
    return _depth(state, encoder), heads, mlp_dim


def arch_config_from_scenic(
    state: Mapping[str, Any],
    defaults: Mapping[str, Any],
    file_config: Mapping[str, Any] | None = None,
    choice: str | None = None,
) -> dict[str, Any]:
    """Read a ViViT's variant and sizes off a Scenic parameter tree (Flax paths and shapes).

    Width, depths, heads (a Flax kernel axis), MLP widths, tubelet and classes come from the
    shapes; so does Model 2's temporal depth, which the published L configs misstate. `choice`
    is the user's explicit attention (a key of VIVIT_CHOICES), `file_config` a Scenic config
    found beside the file, `defaults` the registry entry's arch_config.
    """
    tree = tree_variant(state)
    attention, order = _choose(tree, choice, file_config, defaults)
    try:
        kt, kh, kw, _, dim = state["embedding/kernel"].shape
        num_classes = state["output_projection/kernel"].shape[1]
    except (KeyError, ValueError) as e:
        raise KeyError(f"checkpoint lacks a 5-d embedding/kernel or output_projection ({e})") from e
    encoder = "SpatialTransformer" if tree == "factorised-encoder" else "Transformer"
    depth, heads, mlp_dim = _encoder_sizes(state, encoder)
    config = {k: v for k, v in defaults.items() if k not in ("attention_order", "pool")}
    config.update(
        attention=attention,
        hidden_size=dim,
        depth=depth,
        heads=heads,
        mlp_dim=mlp_dim,
        tubelet=[kt, kh, kw],
        num_classes=num_classes,
        eps=1e-6,  # Flax's LayerNorm default, which Scenic keeps
        gelu="tanh",  # flax.linen.gelu approximates by default
        qkv_bias=True,
    )
    if attention == "factorised-self-attention":
        config["attention_order"] = order
    if tree == "factorised-encoder":
        t_depth, t_heads, t_mlp = _encoder_sizes(state, "TemporalTransformer")
        frames = state["TemporalTransformer/posembed_input/pos_embedding"].shape[1] - 1
        side = round((state["SpatialTransformer/posembed_input/pos_embedding"].shape[1] - 1) ** 0.5)
        config.update(
            num_frames=frames * kt,
            image_size=side * kh,
            temporal_depth=t_depth,
            temporal_heads=t_heads,
            temporal_mlp_dim=t_mlp,
        )
    else:
        has_cls = "cls" in state
        if has_cls and attention != "joint":
            raise KeyError(f"{attention} pools by the mean, but this tree has a CLS token (cls)")
        tokens = state["Transformer/posembed_input/pos_embedding"].shape[1] - has_cls
        config["num_frames"], config["image_size"] = _frames_and_size(
            tokens, kt, kh, file_config, defaults
        )
        config["pool"] = "token" if has_cls else "mean"
    return config
