"""How weights become a ready model: find the checkpoint, build its architecture, load strictly.

Sources, in order: an explicit path (hub-layout folder, .safetensors, pytorch_model.bin, original
TimeSformer .pyth), else the registry entry's weights through network.py (the one place that
touches the network). Reading and key translation are the `checkpoints` package's. torch is
imported lazily so the registry commands stay light.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import network
from .checkpoints import Checkpoint, prepare, read_checkpoint
from .errors import DeviceError, UsageError, WeightsError
from .registry import ModelSpec, get_spec, package_labels

if TYPE_CHECKING:
    import torch
    from torch import nn

_PLACEHOLDER = re.compile(r"^LABEL_\d+$")


class LoadedModel(NamedTuple):
    """What load_model returns: `model, spec, labels = vidcls.load_model("timesformer")`."""

    model: nn.Module
    spec: ModelSpec
    labels: list[str]
    source: str


def resolve_device(device: str = "auto") -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise DeviceError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{device}' asked for, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{device}': only {torch.cuda.device_count()} GPU(s) here")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16).

    Without it PyTorch's bf16 matrix products fall back to a path that is far slower than fp32
    (measured on an AVX2-only EPYC: about 0.2 GFLOP/s against 140 for fp32).
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """`auto` is bf16 on CUDA, and on a CPU with native bf16 (where the shipped motion model's
    top-1 was measured unchanged on >= 99 % of its held-out clips), fp32 otherwise."""
    import torch

    choices = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision == "auto":
        native = device.type == "cuda" or cpu_has_native_bf16()
        return torch.bfloat16 if native else torch.float32
    if precision not in choices:
        raise DeviceError(f"unknown precision '{precision}' (use auto, fp32, bf16 or fp16)")
    if device.type == "cpu" and precision != "fp32" and not cpu_has_native_bf16():
        warnings.warn(
            f"this CPU has no native bf16/fp16 matrix unit (AMX or AVX-512 BF16): --precision "
            f"{precision} will be much slower than fp32 here",
            stacklevel=3,
        )
    return choices[precision]


def build_model(spec: ModelSpec, checkpoint: Checkpoint, fused_attn: bool = True) -> nn.Module:
    """Translate the checkpoint's keys, build the architecture it describes, load strictly."""
    from .models import build

    where = str(checkpoint.path)
    arch, config, state = prepare(checkpoint, spec.name, spec.arch, spec.arch_config)
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


def label_names(spec: ModelSpec, config: dict[str, Any] | None, num_classes: int) -> list[str]:
    """Real names from the checkpoint's config, else the package's list for the label set.

    A config whose names are all placeholders (LABEL_0, LABEL_1, ...) does not count as real.
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
    return names or [f"LABEL_{i}" for i in range(num_classes)]


def source_name(spec: ModelSpec, weights: str | Path | None) -> str:
    """Where a model's weights come from, as records name it."""
    if weights is not None:
        return str(weights)
    return f"bundled:{spec.bundled}" if spec.bundled else f"{spec.repo}@{spec.revision}"


def load_model(
    name: str = "timesformer",
    weights: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    offline: bool | None = None,
    fused_attn: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """Build a registry model with its weights, ready for inference.

    Parameters
    ----------
    name : a registry name or alias (`vidcls models`); it gives the protocol (frames, stride,
        crops, normalisation) even when `weights` overrides where the weights come from.
    weights : a hub-layout folder, a .safetensors / pytorch_model.bin file, or an original
        TimeSformer .pyth; sizes are read from the checkpoint's own config when it has one.
    device : "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    precision : "auto" (bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere), "fp32",
        "bf16" or "fp16"; the weights are cast once here.

    Returns
    -------
    LoadedModel(model, spec, labels, source). `model(video)` takes a float tensor of shape
    (batch, frames, channels, height, width) and returns logits of shape (batch, classes).
    """
    spec = get_spec(name)
    dev = resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    source = source_name(spec, weights)
    path = Path(weights) if weights is not None else network.fetch(spec, offline, progress)
    checkpoint = read_checkpoint(path)
    model = build_model(spec, checkpoint, fused_attn)
    num_classes = model.head.out_features
    labels = label_names(spec, checkpoint.config, num_classes)
    return LoadedModel(model.to(device=dev, dtype=dtype), spec, labels, source)


def read_labels(path: str | Path) -> list[str]:
    """Class names from a file, one per line (blank lines ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--labels {path}: cannot read it ({e.strerror or e})") from e
    return [line.strip() for line in text.splitlines() if line.strip()]


def with_labels(loaded: LoadedModel, labels: str | Path | list[str]) -> LoadedModel:
    """The same model with other class names: a file of one name per line, or a list."""
    if isinstance(labels, (str, Path)):
        names, where = read_labels(labels), str(labels)
    else:
        names, where = [str(n) for n in labels], "the label list"
    classes = len(loaded.labels)
    if len(names) != classes:
        raise UsageError(f"{where} has {len(names)} label(s) but the model has {classes} classes")
    return loaded._replace(labels=names)
