"""Checkpoints: files in, vidcls's keys and architecture config out.

Each on-disk layout is one row of `LAYOUTS`: how to recognise its keys and the pure function
that translates them to vidcls's names. `prepare` turns a read checkpoint into what the strict
loader needs: the architecture, its config (from config.json, else from the tensors) and the
translated tensors. Adding a layout is a module of pure functions and a row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import WeightsError
from .files import PICKLE_SUFFIXES, Checkpoint, read_checkpoint

__all__ = ["LAYOUTS", "PICKLE_SUFFIXES", "Checkpoint", "Layout", "detect_layout", "prepare",
           "read_checkpoint"]  # fmt: skip


@dataclass(frozen=True)
class Layout:
    name: str
    arch: str
    matches: Callable[[Sequence[str]], bool]
    translate: Callable[[Mapping[str, Any]], dict[str, Any]]


def _hf_timesformer(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf import from_hf_timesformer

    return from_hf_timesformer(state)


def _hf_vivit(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf import from_hf_vivit

    return from_hf_vivit(state)


def _hf_videomae(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf_videomae import from_hf_videomae

    return from_hf_videomae(state)


def _hf_vjepa2(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf_vjepa2 import from_hf_vjepa2

    return from_hf_vjepa2(state)


def _original_timesformer(state: Mapping[str, Any]) -> dict[str, Any]:
    from .original import from_original_timesformer

    return from_original_timesformer(state)


LAYOUTS = (
    Layout(
        "hf-timesformer", "timesformer",
        lambda keys: any(k.startswith("timesformer.") for k in keys), _hf_timesformer,
    ),
    Layout("hf-vivit", "vivit", lambda keys: any(k.startswith("vivit.") for k in keys), _hf_vivit),
    Layout(
        "hf-videomae", "videomae",
        lambda keys: any(k.startswith("videomae.") for k in keys), _hf_videomae,
    ),
    Layout(
        "hf-vjepa2", "vjepa2", lambda keys: any(k.startswith("vjepa2.") for k in keys), _hf_vjepa2,
    ),
    Layout(
        "original-timesformer", "timesformer",
        lambda keys: any(k.endswith(("temporal_attn.qkv.weight", "pos_embed")) for k in keys),
        _original_timesformer,
    ),
)  # fmt: skip


def detect_layout(state: Mapping[str, Any]) -> Layout:
    """The layout whose keys these are (the first row that matches)."""
    keys = list(state)
    for layout in LAYOUTS:
        if layout.matches(keys):
            return layout
    raise KeyError(
        "not a TimeSformer, ViViT, VideoMAE or V-JEPA 2 checkpoint (no known key layout)"
    )


def prepare(
    checkpoint: Checkpoint, model: str, arch: str, defaults: Mapping[str, Any]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(arch, arch_config, tensors in vidcls's names) of a checkpoint for registry model `model`
    of architecture `arch`; `defaults` is its registry arch_config, for files without config."""
    from .hf import arch_config_from_hf
    from .original import arch_config_from_tensors

    where = str(checkpoint.path)
    try:
        layout = detect_layout(checkpoint.state)
    except KeyError as e:
        raise WeightsError(f"{where}: {e.args[0]}") from e
    found, config = layout.arch, None
    described = checkpoint.config is not None and "model_type" in checkpoint.config
    if described:
        try:
            found, config = arch_config_from_hf(checkpoint.config)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError) as e:
            raise WeightsError(f"{where}: config.json: {e}") from e
    if found != arch:
        raise WeightsError(
            f"{where}: holds a {found} checkpoint, but model '{model}' is a {arch}; "
            "choose a matching --model"
        )
    try:
        state = layout.translate(checkpoint.state)
    except KeyError as e:
        raise WeightsError(f"{where}: {e.args[0]}") from e
    if config is None:
        if found != "timesformer":
            raise WeightsError(f"{where}: a {found} checkpoint needs its config.json beside it")
        try:
            config = arch_config_from_tensors(state, defaults)
        except KeyError as e:
            raise WeightsError(f"{where}: {e.args[0]}") from e
    return found, config, state
