"""Reading checkpoint files: hub-layout folders, safetensors, sharded indexes and safe pickles.

Tensors come out under the file's own key names; translating them is the layouts' business.
Pickles are read only through `torch.load(weights_only=True)`: never code from a checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WeightsError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pyth", ".ckpt")


@dataclass
class Checkpoint:
    state: dict[str, Any]
    config: dict[str, Any] | None  # config.json beside the weights, when there is one
    path: Path


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read tensors (and config.json when there is one beside them) from a folder or file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"{path}: no such file or folder")
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        path = _weights_in_folder(path)
    config = None
    config_path = folder / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise WeightsError(f"{config_path}: not valid JSON ({e})") from e
    return Checkpoint(_read_tensors(path), config, path)


def _weights_in_folder(folder: Path) -> Path:
    for name in (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    ):
        if (folder / name).is_file():
            return folder / name
    found = sorted(
        p.name for p in folder.iterdir() if p.suffix in (".safetensors", *PICKLE_SUFFIXES)
    )
    if len(found) == 1:
        return folder / found[0]
    raise WeightsError(
        f"{folder}: no weights found (expected model.safetensors or pytorch_model.bin"
        + (f"; several candidates: {', '.join(found)}" if found else "")
        + ")"
    )


def _read_tensors(path: Path) -> dict[str, Any]:
    import torch

    from .original import original_state_dict

    if path.name.endswith(".index.json"):
        try:
            weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as e:
            raise WeightsError(f"{path}: not a valid shard index ({e})") from e
        state: dict[str, Any] = {}
        for shard in sorted(set(weight_map.values())):
            state.update(_read_tensors(path.parent / shard))
        return state
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the file is empty")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{path}: not a valid safetensors file ({e})") from e
    if path.suffix in PICKLE_SUFFIXES:
        try:
            # Never run code from a checkpoint: only tensors and plain containers are accepted.
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several unrelated types for bad pickles
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise WeightsError(f"{path}: cannot read it as a PyTorch checkpoint ({reason})") from e
        if not isinstance(data, dict):
            raise WeightsError(f"{path}: holds a {type(data).__name__}, not a state dict")
        return dict(original_state_dict(data))
    raise WeightsError(f"{path}: unknown weights format (use .safetensors, .bin, .pth or .pyth)")
