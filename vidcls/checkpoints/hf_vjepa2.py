"""The transformers (hub) layout of V-JEPA 2 classifiers, as pure functions.

The encoder's separate query/key/value become one packed projection, the pooler's cross-attention
keeps its query projection apart and packs key and value. The self-supervised predictor that
hub files carry beside the classifier plays no part in classification and is dropped.
Nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

Tensors = dict[str, torch.Tensor]

_ENCODER = re.compile(r"^vjepa2\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
_POOLER = re.compile(r"^pooler\.self_attention_layers\.(\d+)\.(.+)\.(weight|bias)$")
_CROSS = re.compile(r"^pooler\.cross_attention_layer\.(.+)\.(weight|bias)$")
_BLOCK = {"norm1": "norm1", "norm2": "norm2", "attention.proj": "attn.proj",
          "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}  # fmt: skip
_BLOCK_QKV = {"attention.query": "q", "attention.key": "k", "attention.value": "v"}
_POOLER_BLOCK = {"layer_norm1": "norm1", "layer_norm2": "norm2", "self_attn.out_proj": "attn.proj",
                 "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}  # fmt: skip
_POOLER_QKV = {"self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v"}
_CROSS_LAYER = {"layer_norm1": "norm1", "layer_norm2": "norm2", "cross_attn.q_proj": "attn.q",
                "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}  # fmt: skip
_CROSS_KV = {"cross_attn.k_proj": "k", "cross_attn.v_proj": "v"}
_GLOBAL = {
    "vjepa2.encoder.embeddings.patch_embeddings.proj.weight": "patch_embed.proj.weight",
    "vjepa2.encoder.embeddings.patch_embeddings.proj.bias": "patch_embed.proj.bias",
    "vjepa2.encoder.layernorm.weight": "norm.weight",
    "vjepa2.encoder.layernorm.bias": "norm.bias",
    "pooler.query_tokens": "pooler.query",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}


def _pack(parts: dict[str, torch.Tensor], names: str, where: str) -> torch.Tensor:
    if set(parts) != set(names):
        missing = ", ".join(sorted(set(names) - set(parts)))
        raise KeyError(f"{where}: attention lacks the {missing} projection")
    return torch.cat([parts[n] for n in names])


def from_hf_vjepa2(state: Mapping[str, torch.Tensor]) -> Tensors:
    """VJEPA2ForVideoClassification keys -> vidcls keys."""
    out: Tensors = {}
    packed: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("vjepa2.predictor."):
            continue
        if (m := _ENCODER.match(key)) is not None:
            index, module, kind = m.groups()
            prefix, table, qkv = f"blocks.{index}", _BLOCK, _BLOCK_QKV
        elif (m := _POOLER.match(key)) is not None:
            index, module, kind = m.groups()
            prefix, table, qkv = f"pooler.blocks.{index}", _POOLER_BLOCK, _POOLER_QKV
        elif (m := _CROSS.match(key)) is not None:
            module, kind = m.groups()
            prefix, table, qkv = "pooler.cross", _CROSS_LAYER, _CROSS_KV
        else:
            out[_GLOBAL.get(key, key)] = value
            continue
        if module in qkv:
            target = f"{prefix}.attn.{'kv' if qkv is _CROSS_KV else 'qkv'}.{kind}"
            packed.setdefault((target, "kv" if qkv is _CROSS_KV else "qkv"), {})[qkv[module]] = (
                value
            )
        elif module in table:
            out[f"{prefix}.{table[module]}.{kind}"] = value
        else:
            out[key] = value  # left for the strict load to report
    for (target, names), parts in packed.items():
        out[target] = _pack(parts, names, target)
    return out


def arch_config_from_vjepa2(config: Mapping[str, Any]) -> dict[str, Any]:
    """A V-JEPA 2 config.json -> vidcls arch_config."""
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(f"config.json hidden_act {act!r} is not supported")
    hidden = config.get("hidden_size", 1024)
    patch = config.get("patch_size", 16)
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    return {
        "hidden_size": hidden,
        "depth": config.get("num_hidden_layers", 24),
        "heads": config.get("num_attention_heads", 16),
        "mlp_dim": int(hidden * config.get("mlp_ratio", 4.0)),
        "image_size": config.get("crop_size", 256),
        "num_frames": config.get("frames_per_clip", 64),
        "tubelet": [config.get("tubelet_size", 2), patch, patch],
        "eps": config.get("layer_norm_eps", 1e-6),
        "qkv_bias": config.get("qkv_bias", True),
        "pooler_depth": config.get("num_pooler_layers", 3),
        # the pooler's MLPs are 4× wide whatever mlp_ratio the encoder has (transformers)
        "pooler_mlp_dim": 4 * hidden,
    }
