"""How weights become a ready model: find the checkpoint, build its architecture, load strictly.

Sources, in order: an explicit path (hub-layout folder, .safetensors, pytorch_model.bin, original
TimeSformer .pyth, torchvision MViT .pth, Scenic ViViT checkpoint), else the registry entry's
weights through network.py (the one place that touches the network). Reading and key translation
are the `checkpoints` package's. torch is imported lazily so the registry commands stay light.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import network
from .checkpoints import Checkpoint, prepare, read_checkpoint
from .checkpoints.hub import PREFIX, PREPROCESSOR_FILES, describe, model_type
from .config import ModelChoice, Runtime, runtime, with_protocol
from .config import choose_model as choose_entry
from .errors import UsageError, WeightsError
from .registry import ModelSpec, get_spec, package_labels

if TYPE_CHECKING:
    from torch import nn

_PLACEHOLDER = re.compile(r"^LABEL_\d+$")
DEFAULT_MODEL = "timesformer"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference, with what records need to know about it.

    It unpacks as before: `model, spec, labels, source = vidcls.load_model("timesformer")`.
    """

    model: nn.Module
    spec: ModelSpec
    labels: list[str]
    source: str
    precision: str = "fp32"  # what the weights were cast to, as config.Runtime names it

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.spec, self.labels, self.source))


def build_model(
    spec: ModelSpec, checkpoint: Checkpoint, fused_attn: bool = True, attention: str | None = None
) -> nn.Module:
    """Translate the checkpoint's keys, build the architecture it describes, load strictly.

    `attention` is a ViViT attention chosen by the user, for trees two models share."""
    from .models import build

    where = str(checkpoint.path)
    arch, config, state = prepare(checkpoint, spec.name, spec.arch, spec.arch_config, attention)
    try:
        model = build(arch, config, fused_attn=fused_attn)
    except (AssertionError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{where}: its config does not describe a valid {arch}: {e}") from e
    _load_strict(model, state, where)
    return model.eval()


def _load_strict(model: nn.Module, state: dict[str, Any], where: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)
    )
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            shown = ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
            problems.append(f"{title} keys: {shown}")
    if problems:
        raise WeightsError(f"{where}: does not fit the architecture; " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def choose_model(
    name: str | None = None,
    weights: str | Path | None = None,
    labels: str | Path | list[str] | tuple[str, ...] | None = None,
    offline: bool | None = None,
    frames: int | None = None,
    stride: int | None = None,
    attention: str | None = None,
) -> ModelChoice:
    """Which model, resolved once: a registry name, or a hub classifier without an entry.

    `hf:OWNER/REPO` (its config files fetched through network.py) or `hf:FOLDER` derive the entry
    from the repo's own files (checkpoints.hub). With no name, `weights` of the default model's
    family keep the default entry (as before); weights of another family derive theirs.
    `frames`/`stride` override the frame protocol of either; `attention` is a ViViT attention
    (registry.VIVIT_CHOICES) for a Scenic checkpoint whose tree two models share.
    """
    spec = None
    if name is None and weights is not None:
        kind = model_type(Path(weights).expanduser())
        if kind is not None and kind != get_spec(DEFAULT_MODEL).arch:
            name = PREFIX + str(weights)
    name = name or DEFAULT_MODEL
    if name.startswith(PREFIX):
        target = name[len(PREFIX) :]
        local = Path(target).expanduser()
        if local.exists():
            folder = local if local.is_dir() else local.parent
            spec = describe(folder, name)
            weights = weights if weights is not None else local
        elif weights is not None:
            raise UsageError(f"--weights and --model {name} both say where the weights are")
        elif target.count("/") == 1 and not target.startswith((".", "/", "~")):
            folder = network.fetch_configs(target, PREPROCESSOR_FILES, offline=offline)
            spec = describe(folder, name, repo=target)
        else:
            raise UsageError(f"--model {name}: no such folder, and not a hub repo id (OWNER/REPO)")
    if frames is not None or stride is not None:
        spec = with_protocol(spec or get_spec(name), frames, stride)
    return choose_entry(name, weights, labels, offline, attention, spec)


def label_names(spec: ModelSpec, config: dict[str, Any] | None, num_classes: int) -> list[str]:
    """Real names from the checkpoint's config, else the package's list for the label set.

    A config whose names are all placeholders (LABEL_0, LABEL_1, ...) does not count as real;
    an entry without a shipped list (a hub fine-tune) then names classes by index, and warns.
    """
    names: list[str] = []
    if config and isinstance(config.get("id2label"), dict):
        id2label = config["id2label"]
        names = [
            str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(num_classes)
        ]
    if names and not all(_PLACEHOLDER.match(n) for n in names):
        return names
    shipped = package_labels(spec.labels)
    if len(shipped) == num_classes:
        return shipped
    if not spec.labels:
        warnings.warn(
            f"{spec.name}: its config.json names no classes (LABEL_n); they are called "
            "'class 0', 'class 1', ... (pass --labels FILE for real names)",
            stacklevel=2,
        )
        return [f"class {i}" for i in range(num_classes)]
    return names or [f"LABEL_{i}" for i in range(num_classes)]


def load(
    choice: ModelChoice, resolved: Runtime, progress: bool = True, fused_attn: bool = True
) -> LoadedModel:
    """The one place a model is loaded: weights found or fetched, built, cast once, relabelled."""
    spec = choice.spec
    if choice.weights is not None:
        path = Path(choice.weights)
    else:
        path = network.fetch(spec, choice.offline, progress)
    checkpoint = read_checkpoint(path)
    model = build_model(spec, checkpoint, fused_attn, choice.attention)
    num_classes = model.head.out_features
    labels = label_names(spec, checkpoint.config, num_classes)
    from .models import pack_linears

    # CPU inference multiplies by weights packed once for oneDNN (models/onednn.py)
    model = pack_linears(model.to(device=resolved.device, dtype=resolved.dtype))
    loaded = LoadedModel(model, spec, labels, choice.source, resolved.precision)
    return relabel(loaded, choice.labels, choice.labels_from)


def relabel(loaded: LoadedModel, labels: Sequence[str] | None, where: str) -> LoadedModel:
    """The same model with other class names (`where` they came from, for the error)."""
    if labels is None:
        return loaded
    classes = len(loaded.labels)
    if len(labels) != classes:
        raise UsageError(f"{where} has {len(labels)} label(s) but the model has {classes} classes")
    return dataclasses.replace(loaded, labels=list(labels))


def load_model(
    name: str | None = None,
    weights: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    offline: bool | None = None,
    fused_attn: bool = True,
    progress: bool = True,
    labels: str | Path | list[str] | None = None,
    vivit_attention: str | None = None,
    frames: int | None = None,
    stride: int | None = None,
) -> LoadedModel:
    """Build a registry model with its weights, ready for inference.

    Parameters
    ----------
    name : a registry name or alias (`vidcls models`); it gives the protocol (frames, stride,
        crops, normalisation) even when `weights` overrides where the weights come from.
        `hf:OWNER/REPO` or `hf:FOLDER`: a hub classifier without an entry, described by its own
        config files (docs/models.md). None: "timesformer", or the family of `weights`.
    weights : a hub-layout folder, a .safetensors / pytorch_model.bin file, an original
        TimeSformer .pyth, a torchvision MViT .pth or a Scenic (Flax msgpack) ViViT checkpoint;
        sizes are read from the checkpoint's own config when it has one, else from its tensors.
    device : "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    precision : "auto" (bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere), "fp32",
        "bf16" or "fp16"; the weights are cast once here.
    labels : other class names: a file of one name per line, or a list.
    vivit_attention : which ViViT model a Scenic checkpoint is, where its parameters cannot
        tell: "factorised-dot-product" (Model 4 shares Model 1's tree) or
        "factorised-self-attention-time-space" (Model 3's other order); see VIVIT_CHOICES.
    frames, stride : override the entry's frames per clip and 1-in-N frame step.

    Returns
    -------
    LoadedModel(model, spec, labels, source). `model(video)` takes a float tensor of shape
    (batch, frames, channels, height, width) and returns logits of shape (batch, classes).
    """
    choice = choose_model(name, weights, labels, offline, frames, stride, vivit_attention)
    resolved = runtime(device, precision)
    for note in resolved.notes:
        warnings.warn(note, stacklevel=2)
    return load(choice, resolved, progress, fused_attn)
