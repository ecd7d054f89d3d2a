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


def _torchvision_mvit(state: Mapping[str, Any]) -> dict[str, Any]:
    from .torchvision import from_torchvision_mvit

    return from_torchvision_mvit(state)


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
        "original-timesformer", "timesformer",
        lambda keys: any(k.endswith(("temporal_attn.qkv.weight", "pos_embed")) for k in keys),
        _original_timesformer,
    ),
    Layout(
        "torchvision-mvit", "mvit",
        lambda keys: "pos_encoding.class_token" in keys and "conv_proj.weight" in keys,
        _torchvision_mvit,
    ),
)  # fmt: skip


def detect_layout(state: Mapping[str, Any]) -> Layout:
    """The layout whose keys these are (the first row that matches)."""
    keys = list(state)
    for layout in LAYOUTS:
        if layout.matches(keys):
            return layout
    raise KeyError("not a TimeSformer, ViViT or MViT checkpoint (no known key layout)")


def prepare(
    checkpoint: Checkpoint, model: str, arch: str, defaults: Mapping[str, Any]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(arch, arch_config, tensors in vidcls's names) of a checkpoint for registry model `model`
    of architecture `arch`; `defaults` is its registry arch_config, for files without config."""
    from .hf import arch_config_from_hf
    from .original import arch_config_from_tensors
    from .torchvision import arch_config_from_tensors as mvit_config_from_tensors

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
        if found == "vivit":
            raise WeightsError(f"{where}: a ViViT checkpoint needs its config.json beside it")
        from_tensors = mvit_config_from_tensors if found == "mvit" else arch_config_from_tensors
        try:
            config = from_tensors(state, defaults)
        except KeyError as e:
            raise WeightsError(f"{where}: {e.args[0]}") from e
    return found, config, state
