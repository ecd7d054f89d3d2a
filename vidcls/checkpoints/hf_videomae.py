"""The transformers (hub) layout of VideoMAE classifiers, as pure functions.

Hub files keep the original repository's `q_bias`/`v_bias` beside bias-free query/key/value
weights; transformers 5 renames them to `query.bias`/`value.bias` in memory, and both spellings
are accepted. vidcls packs q, k and v into one projection and keeps the two biases apart
(the key has none). Nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

Tensors = dict[str, torch.Tensor]

_LAYER_KEY = re.compile(r"^videomae\.encoder\.layer\.(\d+)\.(.+)$")
_LAYER = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_QKV = {
    "attention.attention.query.weight": "q",
    "attention.attention.key.weight": "k",
    "attention.attention.value.weight": "v",
}
_BIAS = {
    "attention.attention.q_bias": "q_bias",
    "attention.attention.query.bias": "q_bias",
    "attention.attention.v_bias": "v_bias",
    "attention.attention.value.bias": "v_bias",
}
_GLOBAL = {
    "videomae.embeddings.patch_embeddings.projection": "patch_embed.proj",
    "videomae.layernorm": "norm",
    "fc_norm": "fc_norm",
    "classifier": "head",
}
GELU = {"gelu": "none", "gelu_fast": "tanh", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}


def _rename(key: str, table: Mapping[str, str]) -> str | None:
    for old, new in table.items():
        if key.startswith(old + "."):
            return new + key[len(old) :]
    return None


def from_hf_videomae(state: Mapping[str, torch.Tensor]) -> Tensors:
    """VideoMAEForVideoClassification keys (hub file or transformers 5 names) -> vidcls keys."""
    out: Tensors = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if (m := _LAYER_KEY.match(key)) is None:
            out[_rename(key, _GLOBAL) or key] = value
            continue
        index, rest = m.groups()
        if rest in _QKV:
            qkv.setdefault(index, {})[_QKV[rest]] = value
        elif rest in _BIAS:
            out[f"blocks.{index}.attn.{_BIAS[rest]}"] = value
        elif (renamed := _rename(rest, _LAYER)) is not None:
            out[f"blocks.{index}.{renamed}"] = value
        else:
            out[key] = value  # left for the strict load to report
    for index, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            missing = ", ".join(sorted({"q", "k", "v"} - set(parts)))
            raise KeyError(f"layer {index}: attention lacks the {missing} projection")
        out[f"blocks.{index}.attn.qkv.weight"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def arch_config_from_videomae(config: Mapping[str, Any], image_size: int) -> dict[str, Any]:
    """A VideoMAE config.json -> vidcls arch_config (image_size already made square)."""
    act = config.get("hidden_act", "gelu")
    if act not in GELU:
        raise ValueError(f"config.json hidden_act {act!r} is not supported")
    patch = config.get("patch_size", 16)
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    return {
        "hidden_size": config.get("hidden_size", 768),
        "depth": config.get("num_hidden_layers", 12),
        "heads": config.get("num_attention_heads", 12),
        "mlp_dim": config.get("intermediate_size", 3072),
        "image_size": image_size,
        "num_frames": config.get("num_frames", 16),
        "tubelet": [config.get("tubelet_size", 2), patch, patch],
        "eps": config.get("layer_norm_eps", 1e-12),
        # transformers builds fc_norm with LayerNorm's default eps whatever the config says
        "fc_norm_eps": 1e-5,
        "qv_bias": config.get("qv_bias", config.get("qkv_bias", True)),
        "mean_pool": config.get("use_mean_pooling", True),
        "gelu": GELU[act],
    }
