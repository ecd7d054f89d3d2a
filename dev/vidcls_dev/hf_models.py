"""Reference models from transformers, saved exactly as the hub lays them out.

transformers is a test dependency only: these helpers build random-weight reference models,
write them as the hub does (config.json + model.safetensors, or pytorch_model.bin), and pre-fill
a Hugging Face cache so vidcls can load them through the code a user runs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VivitConfig,
    VivitForVideoClassification,
    VJEPA2Config,
    VJEPA2ForVideoClassification,
)

LABELS = [f"label {i}" for i in range(400)]


def randomize(model: torch.nn.Module, scale: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Perturb every parameter so that no embedding, bias or norm is left at a trivial value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return model.eval()


def tiny_timesformer(
    num_frames: int = 4,
    image_size: int = 64,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    num_labels: int = 7,
    attention_type: str = "divided_space_time",
    id2label: dict[int, str] | None = None,
    seed: int = 0,
) -> TimesformerForVideoClassification:
    config = TimesformerConfig(
        image_size=image_size,
        patch_size=16,
        num_frames=num_frames,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden_size * 2,
        num_labels=num_labels,
        attention_type=attention_type,
        id2label=id2label or {i: f"action {i}" for i in range(num_labels)},
    )
    torch.manual_seed(seed)
    return randomize(TimesformerForVideoClassification(config), seed=seed)


def tiny_vivit(
    num_frames: int = 4,
    image_size: int = 64,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    num_labels: int = 7,
    seed: int = 0,
) -> VivitForVideoClassification:
    config = VivitConfig(
        image_size=image_size,
        num_frames=num_frames,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden_size * 2,
        num_labels=num_labels,
    )
    torch.manual_seed(seed)
    return randomize(VivitForVideoClassification(config), seed=seed)


def tiny_videomae(
    num_frames: int = 4,
    image_size: int = 32,
    hidden_size: int = 48,
    layers: int = 2,
    heads: int = 4,
    num_labels: int = 7,
    use_mean_pooling: bool = True,
    id2label: dict[int, str] | None = None,
    seed: int = 0,
) -> VideoMAEForVideoClassification:
    config = VideoMAEConfig(
        image_size=image_size,
        num_frames=num_frames,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden_size * 2,
        num_labels=num_labels,
        use_mean_pooling=use_mean_pooling,
        id2label=id2label or {i: f"action {i}" for i in range(num_labels)},
    )
    torch.manual_seed(seed)
    return randomize(VideoMAEForVideoClassification(config), seed=seed)


def tiny_vjepa2(
    num_frames: int = 4,
    image_size: int = 32,
    hidden_size: int = 96,
    layers: int = 2,
    heads: int = 4,
    pooler_layers: int = 2,
    num_labels: int = 7,
    mlp_ratio: float = 2.0,
    id2label: dict[int, str] | None = None,
    seed: int = 0,
) -> VJEPA2ForVideoClassification:
    """A tiny V-JEPA 2 classifier. Width 96 over 4 heads gives a head of 24: three RoPE slices of
    8 channels; width 120 (head 30, slices of 10) leaves channels unrotated."""
    config = VJEPA2Config(
        crop_size=image_size,
        frames_per_clip=num_frames,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_pooler_layers=pooler_layers,
        mlp_ratio=mlp_ratio,
        pred_hidden_size=32,
        pred_num_hidden_layers=1,
        pred_num_attention_heads=2,
        num_labels=num_labels,
        id2label=id2label or {i: f"action {i}" for i in range(num_labels)},
    )
    torch.manual_seed(seed)
    return randomize(VJEPA2ForVideoClassification(config), seed=seed)


def save_hub_folder(model: torch.nn.Module, folder: Path, fmt: str = "safetensors") -> Path:
    """Write config.json plus model.safetensors (save_pretrained) or pytorch_model.bin."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        model.save_pretrained(folder)
    elif fmt == "bin":
        model.config.to_json_file(folder / "config.json")
        torch.save(_file_state_dict(model), folder / "pytorch_model.bin")
    else:
        raise ValueError(fmt)
    return folder


def _file_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The key names a hub file holds: save_pretrained's, which undo transformers' renames."""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        return load_file(str(Path(tmp) / "model.safetensors"))


def prefill_hf_cache(cache: Path, repo: str, folder: Path, revision: str = "main") -> Path:
    """Lay a folder's files out as huggingface_hub's cache holds a downloaded repo."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(commit)
    snapshot = root / "snapshots" / commit
    blobs = root / "blobs"
    snapshot.mkdir(parents=True, exist_ok=True)
    blobs.mkdir(exist_ok=True)
    import hashlib

    for f in folder.iterdir():
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, blobs / digest)
        link = snapshot / f.name
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / ".." / "blobs" / digest)
    return snapshot


def hf_logits(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if model.config.model_type == "vjepa2":
            return model(pixel_values_videos=video).logits
        return model(pixel_values=video).logits


def write_config(folder: Path, **fields: object) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(fields)
    path.write_text(json.dumps(config))
