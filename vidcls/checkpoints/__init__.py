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


# (the file's own tensors, the registry's arch_config, the config found beside the file, the
# user's explicit ViViT attention) -> arch_config, for layouts whose files carry no HF config
Configure = Callable[
    [Mapping[str, Any], Mapping[str, Any], "Mapping[str, Any] | None", "str | None"],
    dict[str, Any],
]


@dataclass(frozen=True)
class Layout:
    name: str
    arch: str
    matches: Callable[[Sequence[str]], bool]
    translate: Callable[[Mapping[str, Any]], dict[str, Any]]
    configure: Configure | None = None


def _hf_timesformer(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf import from_hf_timesformer

    return from_hf_timesformer(state)


def _hf_vivit(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf import from_hf_vivit

    return from_hf_vivit(state)


def _torchvision_mvit(state: Mapping[str, Any]) -> dict[str, Any]:
    from .torchvision import from_torchvision_mvit

    return from_torchvision_mvit(state)


def _hf_videomae(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf_videomae import from_hf_videomae

    return from_hf_videomae(state)


def _hf_vjepa2(state: Mapping[str, Any]) -> dict[str, Any]:
    from .hf_vjepa2 import from_hf_vjepa2

    return from_hf_vjepa2(state)


def _original_timesformer(state: Mapping[str, Any]) -> dict[str, Any]:
    from .original import from_original_timesformer

    return from_original_timesformer(state)


def _original_timesformer_config(
    state: Mapping[str, Any], defaults: Mapping[str, Any], _file: Any, _choice: Any
) -> dict[str, Any]:
    from .original import arch_config_from_tensors

    return arch_config_from_tensors(_original_timesformer(state), defaults)


def _scenic_vivit(state: Mapping[str, Any]) -> dict[str, Any]:
    from .scenic import from_scenic_vivit

    return from_scenic_vivit(state)


def _scenic_vivit_config(
    state: Mapping[str, Any],
    defaults: Mapping[str, Any],
    file_config: Mapping[str, Any] | None,
    choice: str | None,
) -> dict[str, Any]:
    from .scenic import arch_config_from_scenic

    return arch_config_from_scenic(state, defaults, file_config, choice)


def _torchvision_mvit_config(
    state: Mapping[str, Any], defaults: Mapping[str, Any], _file: Any, _choice: Any
) -> dict[str, Any]:
    from .torchvision import arch_config_from_tensors

    return arch_config_from_tensors(_torchvision_mvit(state), defaults)


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
        _original_timesformer, _original_timesformer_config,
    ),
    Layout(
        "scenic-vivit", "vivit",
        lambda keys: "embedding/kernel" in keys and "output_projection/kernel" in keys,
        _scenic_vivit, _scenic_vivit_config,
    ),
    Layout(
        "torchvision-mvit", "mvit",
        lambda keys: "pos_encoding.class_token" in keys and "conv_proj.weight" in keys,
        _torchvision_mvit, _torchvision_mvit_config,
    ),
)  # fmt: skip


def detect_layout(state: Mapping[str, Any]) -> Layout:
    """The layout whose keys these are (the first row that matches)."""
    keys = list(state)
    for layout in LAYOUTS:
        if layout.matches(keys):
            return layout
    raise KeyError(
        "not a TimeSformer, ViViT, MViT, VideoMAE or V-JEPA 2 checkpoint (no known key layout)"
    )


def prepare(
    checkpoint: Checkpoint,
    model: str,
    arch: str,
    defaults: Mapping[str, Any],
    attention: str | None = None,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(arch, arch_config, tensors in vidcls's names) of a checkpoint for registry model `model`
    of architecture `arch`; `defaults` is its registry arch_config, for files without config;
    `attention` a ViViT attention the user chose (registry.VIVIT_CHOICES), for trees that two
    models share."""
    from .hf import arch_config_from_hf

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
    if attention is not None and found != "vivit":
        raise WeightsError(f"{where}: a ViViT attention was chosen for a {found} checkpoint")
    try:
        state = layout.translate(checkpoint.state)
    except KeyError as e:
        raise WeightsError(f"{where}: {e.args[0]}") from e
    if config is None:
        if layout.configure is None:
            raise WeightsError(
                f"{where}: a {layout.name} checkpoint needs its config.json beside it"
            )
        try:
            config = layout.configure(checkpoint.state, defaults, checkpoint.config, attention)
        except KeyError as e:
            raise WeightsError(f"{where}: {e.args[0]}") from e
    elif attention not in (None, "joint"):
        # The hub layout is Model 1 with its CLS token; Model 4 (Scenic) pools by the mean.
        raise WeightsError(
            f"{where}: a {layout.name} checkpoint is ViViT Model 1 (joint); {attention} needs a "
            "Scenic checkpoint of that model"
        )
    return found, config, state
