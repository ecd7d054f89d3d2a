"""A registry entry for a hub classifier that has none: derived from the files of its repo.

The architecture comes from config.json, sizes and normalisation from the preprocessor's JSON,
the frame count from config.json and the rest of the frame protocol (step, sampling, crops,
averaging) from the family's default registry entry. Pure: JSON in, a ModelSpec out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from ..registry import ModelSpec, get_spec
from .hf import MODEL_TYPES, arch_config_from_hf

# The registry entry whose protocol a family's fine-tunes inherit.
FAMILY_DEFAULTS = {
    "timesformer": "timesformer",
    "vivit": "vivit",
    "videomae": "videomae",
    "vjepa2": "vjepa2-ssv2",
}
PREPROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
PREFIX = "hf:"


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: not a JSON object")
    return data


def model_type(folder: Path) -> str | None:
    """The model_type of the config.json in a folder (or beside a file), if there is one."""
    folder = folder if folder.is_dir() else folder.parent
    config = read_json(folder / "config.json")
    return None if config is None else config.get("model_type")


def describe(folder: Path, name: str, repo: str = "", revision: str = "") -> ModelSpec:
    """The effective registry entry of the classifier whose files are in `folder`.

    `name` is what records call it (hf:OWNER/REPO or hf:PATH); `repo`/`revision` say where the
    weights download from (empty for a local folder).
    """
    config = read_json(folder / "config.json")
    if config is None:
        raise WeightsError(f"{folder}: no config.json, so the architecture is unknown")
    kind = config.get("model_type")
    if kind not in MODEL_TYPES:
        raise WeightsError(
            f"{folder / 'config.json'}: model_type {kind!r} is not one of {', '.join(MODEL_TYPES)}"
        )
    try:
        arch, arch_config = arch_config_from_hf(config)
    except (ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{folder / 'config.json'}: {e}") from e
    if not arch_config.get("num_classes"):
        raise WeightsError(f"{folder / 'config.json'}: no id2label or num_labels")
    base = get_spec(FAMILY_DEFAULTS[arch])
    processor: dict[str, Any] = {}
    for file in PREPROCESSOR_FILES:
        processor = read_json(folder / file) or processor
    crop, short_side, mean, std = _preprocessing(processor, arch, arch_config, base)
    return dataclasses.replace(
        base,
        name=name,
        description=f"{name}: a {arch} fine-tune, protocol of '{base.name}' where its files say nothing",  # noqa: E501
        size="custom",
        repo=repo,
        revision=revision or ("main" if repo else ""),
        files=("model.safetensors", "pytorch_model.bin"),
        bundled=None,
        url="",
        sha256={},
        mirror=None,
        aliases=(),
        labels="",
        label_names="config",
        num_frames=arch_config["num_frames"],
        crop=crop,
        short_side=short_side,
        mean=mean,
        std=std,
        arch_config=arch_config,
        symmetries=(),
    )


def _preprocessing(
    processor: Mapping[str, Any], arch: str, arch_config: Mapping[str, Any], base: ModelSpec
) -> tuple[int, int, tuple[float, ...], tuple[float, ...]]:
    """(crop, short side, mean, std) from a transformers image/video processor config."""
    crop = _side(processor.get("crop_size")) or arch_config["image_size"]
    if arch == "vjepa2":
        # VJEPA2VideoProcessor ignores `size`: it always resizes to crop × 256/224
        short_side = int(crop * 256 / 224)
    else:
        short_side = _side(processor.get("size")) or round(crop * base.short_side / base.crop)
    if processor.get("do_normalize", True) is False:
        return crop, short_side, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    mean = _triple(processor.get("image_mean")) or base.mean
    std = _triple(processor.get("image_std")) or base.std
    return crop, short_side, mean, std


def _side(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        for key in ("shortest_edge", "height"):
            if isinstance(value.get(key), int):
                return value[key]
    return None


def _triple(value: Any) -> tuple[float, ...] | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),) * 3
    if isinstance(value, list) and len(value) == 3:
        return tuple(float(v) for v in value)
    return None
