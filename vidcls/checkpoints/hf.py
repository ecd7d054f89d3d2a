"""The transformers (Hugging Face hub) layouts of TimeSformer and ViViT, as pure functions, and
the config.json of every supported family (VideoMAE and V-JEPA 2 keys: hf_videomae, hf_vjepa2).

Keys and config.json in, vidcls's keys and arch_config out. vidcls's parameter names are those
of the original TimeSformer `vit.py` (for both models), and its attention keeps q, k and v in
one packed projection. Nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .hf_videomae import arch_config_from_videomae
from .hf_vjepa2 import arch_config_from_vjepa2

MODEL_TYPES = ("timesformer", "vivit", "videomae", "vjepa2")
Tensors = dict[str, torch.Tensor]

_HF_TIMESFORMER_LAYER = {
    "layernorm_before": "norm1",
    "attention.attention.qkv": "attn.qkv",
    "attention.output.dense": "attn.proj",
    "temporal_layernorm": "temporal_norm1",
    "temporal_attention.attention.qkv": "temporal_attn.qkv",
    "temporal_attention.output.dense": "temporal_attn.proj",
    "temporal_dense": "temporal_fc",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_HF_TIMESFORMER_GLOBAL = {
    "timesformer.embeddings.cls_token": "cls_token",
    "timesformer.embeddings.position_embeddings": "pos_embed",
    "timesformer.embeddings.time_embeddings": "time_embed",
    "timesformer.embeddings.patch_embeddings.projection": "patch_embed.proj",
    "timesformer.layernorm": "norm",
    "classifier": "head",
}
_HF_VIVIT_LAYER = {
    # transformers < 5 names (what the hub files hold) and the 5.x in-memory names
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.output.dense": "attn.proj",
    "attention.o_proj": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_HF_VIVIT_QKV = {
    "attention.attention.query": "q",
    "attention.attention.key": "k",
    "attention.attention.value": "v",
    "attention.q_proj": "q",
    "attention.k_proj": "k",
    "attention.v_proj": "v",
}
_HF_VIVIT_GLOBAL = {
    "vivit.embeddings.cls_token": "cls_token",
    "vivit.embeddings.position_embeddings": "pos_embed",
    "vivit.embeddings.patch_embeddings.projection": "patch_embed.proj",
    "vivit.layernorm": "norm",
    "classifier": "head",
}
_LAYER = re.compile(
    r"^(?:timesformer\.encoder\.layer|vivit\.encoder\.layer|vivit\.layers)\.(\d+)\.(.+)\.(weight|bias)$"
)  # noqa: E501


def _rename_global(key: str, table: Mapping[str, str]) -> str | None:
    for old, new in table.items():
        if key == old:
            return new
        if key.startswith(old + "."):
            return new + key[len(old) :]
    return None


def from_hf_timesformer(state: Mapping[str, torch.Tensor]) -> Tensors:
    """transformers TimesformerForVideoClassification keys -> vidcls keys."""
    out: Tensors = {}
    for key, value in state.items():
        if (m := _LAYER.match(key)) is not None:
            index, module, kind = m.groups()
            if module not in _HF_TIMESFORMER_LAYER:
                out[key] = value  # left for the strict load to report
                continue
            out[f"blocks.{index}.{_HF_TIMESFORMER_LAYER[module]}.{kind}"] = value
        else:
            out[_rename_global(key, _HF_TIMESFORMER_GLOBAL) or key] = value
    return out


def from_hf_vivit(state: Mapping[str, torch.Tensor]) -> Tensors:
    """transformers VivitForVideoClassification keys (old file names or 5.x names) -> vidcls keys.

    Separate query/key/value projections are concatenated into the packed qkv projection.
    The pooler of VivitModel is not part of the classifier and is dropped.
    """
    out: Tensors = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("vivit.pooler."):
            continue
        if (m := _LAYER.match(key)) is not None:
            index, module, kind = m.groups()
            if module in _HF_VIVIT_QKV:
                qkv.setdefault((index, kind), {})[_HF_VIVIT_QKV[module]] = value
            elif module in _HF_VIVIT_LAYER:
                out[f"blocks.{index}.{_HF_VIVIT_LAYER[module]}.{kind}"] = value
            else:
                out[key] = value
        else:
            out[_rename_global(key, _HF_VIVIT_GLOBAL) or key] = value
    for (index, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            missing = ", ".join(sorted({"q", "k", "v"} - set(parts)))
            raise KeyError(f"layer {index}: attention {kind} lacks the {missing} projection")
        out[f"blocks.{index}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def arch_config_from_hf(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Translate a transformers config.json into (arch, vidcls arch_config)."""
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"config.json is for model_type {model_type!r}, not one of {', '.join(MODEL_TYPES)}"
        )
    image_size = config.get("image_size", 224)
    if isinstance(image_size, (list, tuple)):
        if image_size[0] != image_size[1]:
            raise ValueError("non-square image_size is not supported")
        image_size = image_size[0]
    num_classes = len(config["id2label"]) if "id2label" in config else config.get("num_labels")
    if model_type == "videomae":
        return model_type, {**arch_config_from_videomae(config, image_size), "num_classes": num_classes}  # fmt: skip # noqa: E501
    if model_type == "vjepa2":
        return model_type, {**arch_config_from_vjepa2(config), "num_classes": num_classes}
    act = config.get("hidden_act", "gelu" if model_type == "timesformer" else "gelu_fast")
    gelu = {"gelu": "none", "gelu_fast": "tanh", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
    if act not in gelu:
        raise ValueError(f"config.json hidden_act {act!r} is not supported")
    arch_config: dict[str, Any] = {
        "hidden_size": config.get("hidden_size", 768),
        "depth": config.get("num_hidden_layers", 12),
        "heads": config.get("num_attention_heads", 12),
        "mlp_dim": config.get("intermediate_size", 3072),
        "image_size": image_size,
        "num_frames": config.get("num_frames", 8 if model_type == "timesformer" else 32),
        "num_classes": num_classes,
        "eps": config.get("layer_norm_eps", 1e-6),
        "qkv_bias": config.get("qkv_bias", True),
        "gelu": gelu[act],
    }
    if model_type == "timesformer":
        patch = config.get("patch_size", 16)
        arch_config["patch_size"] = patch[0] if isinstance(patch, (list, tuple)) else patch
        arch_config["attention_type"] = config.get("attention_type", "divided_space_time")
    else:
        arch_config["tubelet"] = list(config.get("tubelet_size", [2, 16, 16]))
    return model_type, arch_config


def to_hf_timesformer(state: Mapping[str, torch.Tensor]) -> Tensors:
    """vidcls TimeSformer keys -> TimesformerForVideoClassification keys: from_hf_timesformer
    inverted, for writing a model in the hub layout (the bundled motion-tiny is saved this way)."""
    layer = {ours: theirs for theirs, ours in _HF_TIMESFORMER_LAYER.items()}
    inverse = {ours: theirs for theirs, ours in _HF_TIMESFORMER_GLOBAL.items()}
    out: Tensors = {}
    for key, value in state.items():
        if (m := re.match(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$", key)) is not None:
            index, module, kind = m.groups()
            if module not in layer:
                raise KeyError(f"no transformers name for {key}")
            name = f"timesformer.encoder.layer.{index}.{layer[module]}.{kind}"
        elif (name := _rename_global(key, inverse)) is None:
            raise KeyError(f"no transformers name for {key}")
        out[name] = value.detach().contiguous().clone()
    return out


def hf_timesformer_config(arch_config: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """The config.json of a TimeSformer with this arch_config and these labels:
    arch_config_from_hf inverted (it reads this back to `arch_config`)."""
    a = arch_config
    gelu = {"none": "gelu", "tanh": "gelu_pytorch_tanh"}[a.get("gelu", "none")]
    return {
        "architectures": ["TimesformerForVideoClassification"],
        "model_type": "timesformer",
        "image_size": a["image_size"],
        "patch_size": a["patch_size"],
        "num_channels": 3,
        "num_frames": a["num_frames"],
        "hidden_size": a["hidden_size"],
        "num_hidden_layers": a["depth"],
        "num_attention_heads": a["heads"],
        "intermediate_size": a["mlp_dim"],
        "hidden_act": gelu,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": a.get("eps", 1e-6),
        "qkv_bias": a.get("qkv_bias", True),
        "attention_type": a["attention_type"],
        "drop_path_rate": 0,  # transformers 5 types it as an int
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
    }
