"""The model registry: reads weights.toml once and turns each table into a ModelSpec.

This is the only module that reads weights.toml. It imports nothing heavy, so `vidcls models`
and `vidcls --help` stay fast.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import RegistryError, UnknownModelError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ARCHS = ("timesformer", "vivit", "mvit", "videomae", "vjepa2")
# The four ViViT models (arch_config `attention`) and Model 3's order of its two attentions.
VIVIT_ATTENTIONS = (
    "joint", "factorised-encoder", "factorised-self-attention", "factorised-dot-product",
)  # fmt: skip
VIVIT_ORDERS = ("space_time", "time_space")
# What a user may choose (--vivit-attention): an attention, with Model 3's order spelled out.
VIVIT_CHOICES: dict[str, tuple[str, str | None]] = {
    "joint": ("joint", None),
    "factorised-encoder": ("factorised-encoder", None),
    "factorised-self-attention": ("factorised-self-attention", "space_time"),
    "factorised-self-attention-time-space": ("factorised-self-attention", "time_space"),
    "factorised-dot-product": ("factorised-dot-product", None),
}
# Transforms of a window that a task may be symmetric under, in the order they are applied:
# left-right and top-bottom flips, x and y swapped (crops are square), time run backwards.
SYMMETRIES = ("mirror", "upside_down", "transpose", "reverse")

# field name -> (type, required); types are checked so a typo in weights.toml fails loudly.
_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "description": (str, True),
    "arch": (str, True),
    "size": (str, True),
    "aliases": (list, False),
    "repo": (str, False),
    "revision": (str, False),
    "files": (list, False),
    "url": (str, False),
    "bundled": (str, False),
    "sha256": (dict, False),
    "mirror": (str, False),
    "labels": (str, True),
    "label_names": (str, True),
    "num_frames": (int, True),
    "frame_stride": (int, True),
    "reference_fps": ((int, float), True),
    "sampling": (str, True),
    "short_side": (int, True),
    "resize": (str, False),
    "crop": (int, True),
    "crops": (int, True),
    "mean": (list, True),
    "std": (list, True),
    "channel_order": (str, True),
    "arch_config": (dict, True),
    "symmetries": (dict, False),
    "average": (str, False),
    "heads": (dict, False),
}
_ARCH_FIELDS: dict[str, set[str]] = {
    "timesformer": {
        "attention_type", "hidden_size", "depth", "heads", "mlp_dim", "image_size",
        "patch_size", "num_frames", "num_classes",
    },
    "vivit": {
        "hidden_size", "depth", "heads", "mlp_dim", "image_size", "tubelet", "num_frames",
        "num_classes",
    },
    "mvit": {
        "version", "embed_dim", "heads", "depths", "kernel", "q_stride", "kv_stride",
        "patch_kernel", "patch_stride", "image_size", "num_frames", "num_classes",
    },
    "videomae": {
        "hidden_size", "depth", "heads", "mlp_dim", "image_size", "tubelet", "num_frames",
        "num_classes",
    },
    "vjepa2": {
        "hidden_size", "depth", "heads", "mlp_dim", "image_size", "tubelet", "num_frames",
        "num_classes",
    },
}  # fmt: skip
# Fields an arch_config may add: ViViT's variant and Model 2's temporal encoder.
_ARCH_OPTIONAL: dict[str, dict[str, tuple[type, tuple[Any, ...]]]] = {
    "timesformer": {},
    "mvit": {},
    "videomae": {},
    "vjepa2": {},
    "vivit": {
        "attention": (str, VIVIT_ATTENTIONS),
        "attention_order": (str, VIVIT_ORDERS),
        "temporal_depth": (int, ()),
        "temporal_heads": (int, ()),
        "temporal_mlp_dim": (int, ()),
    },
}
_CHOICES = {
    "arch": ARCHS,
    "label_names": ("config", "package"),
    "sampling": ("stride", "segments"),
    "channel_order": ("rgb", "bgr"),
    "resize": ("short_side", "full"),
    "average": ("softmax", "logits"),
}


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: the weights and the protocol that produced the published numbers."""

    name: str
    description: str
    arch: str
    size: str
    repo: str
    revision: str
    files: tuple[str, ...]
    bundled: str | None  # a weights folder inside the package (vidcls/assets/NAME)
    labels: str
    label_names: str
    num_frames: int
    frame_stride: int
    reference_fps: float
    sampling: str
    short_side: int
    crop: int
    crops: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str
    arch_config: dict[str, Any] = field(hash=False)
    aliases: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict, hash=False)
    mirror: str | None = None
    # "short_side": keep the aspect, short side to `short_side`, then crops (every hub model);
    # "full": the whole displayed frame squeezed to crop × crop, for models trained that way.
    resize: str = "short_side"
    # (transform, class order): the transformed window shows class order[c] where the window
    # shows class c. Each is a swap of label pairs; the engine averages every combination.
    symmetries: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # A single weights file at a plain URL (Scenic, torchvision), instead of a hub repo.
    url: str = ""
    # What the views of a file are averaged over: softmax scores (most protocols) or raw logits
    # (Scenic's ViViT evaluation); the averaged logits are turned into scores once at the end.
    average: str = "softmax"
    # Several classifiers in one output, in order: (name, classes), e.g. EPIC's nouns then verbs.
    # Each head has its own softmax and its own top-k; () is one head over every class.
    heads: tuple[tuple[str, int], ...] = ()

    @property
    def span(self) -> float:
        """Seconds of video one clip covers."""
        return self.num_frames * self.frame_stride / self.reference_fps

    @property
    def num_classes(self) -> int:
        # an entry derived from a hub repo has no shipped label set: its config counts them
        return len(package_labels(self.labels)) or int(self.arch_config.get("num_classes", 0))

    def head_ranges(self, classes: int) -> list[tuple[str, range]]:
        """Each head's name and class indices; one unnamed head when the entry has none."""
        if not self.heads or sum(n for _, n in self.heads) != classes:
            return [("", range(classes))]
        out, start = [], 0
        for name, count in self.heads:
            out.append((name, range(start, start + count)))
            start += count
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "arch": self.arch,
            "size": self.size,
            "aliases": list(self.aliases),
            "repo": self.repo,
            "revision": self.revision,
            "files": list(self.files),
            "url": self.url,
            "bundled": self.bundled,
            "sha256": dict(self.sha256),
            "mirror": self.mirror,
            "labels": self.labels,
            "num_classes": self.num_classes,
            "num_frames": self.num_frames,
            "frame_stride": self.frame_stride,
            "reference_fps": self.reference_fps,
            "span_seconds": round(self.span, 4),
            "sampling": self.sampling,
            "short_side": self.short_side,
            "resize": self.resize,
            "crop": self.crop,
            "crops": self.crops,
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
            "arch_config": dict(self.arch_config),
            "symmetries": self.symmetry_pairs(),
            "average": self.average,
            # only where there are several, so the rows of single-head models keep their shape
            **({"heads": dict(self.heads)} if self.heads else {}),
        }

    def symmetry_pairs(self) -> dict[str, list[list[str]]]:
        """The symmetries as weights.toml writes them: the label pairs each transform swaps."""
        labels = package_labels(self.labels)
        return {
            name: [[labels[c], labels[o]] for c, o in enumerate(order) if c < o]
            for name, order in self.symmetries
        }


def _registry_text() -> str:
    packaged = resources.files("vidcls").joinpath("weights.toml")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    # A source checkout: the registry sits at the repository root, beside the package.
    source = Path(__file__).resolve().parent.parent / "weights.toml"
    if source.is_file():
        return source.read_text(encoding="utf-8")
    raise RegistryError("weights.toml is missing from the vidcls installation")


def parse_registry(text: str) -> dict[str, ModelSpec]:
    """Validate the TOML text of a registry and return its specs by name."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"weights.toml: {e}") from e
    specs = {name: _parse_entry(name, table) for name, table in data.items()}
    seen: dict[str, str] = {}
    for spec in specs.values():
        for alias in (spec.name, *spec.aliases):
            if alias in seen:
                raise RegistryError(
                    f"weights.toml: [{spec.name}] alias '{alias}' is also used by [{seen[alias]}]"
                )
            seen[alias] = spec.name
    return specs


def _parse_entry(name: str, table: Any) -> ModelSpec:
    where = f"weights.toml: [{name}]"
    if not isinstance(table, dict):
        raise RegistryError(f"{where} is not a table")
    _check_fields(where, table)
    _check_source(where, table)
    arch_config = table["arch_config"]
    _check_arch_config(where, table["arch"], arch_config, table["labels"])
    symmetries = _symmetries(where, table.get("symmetries", {}), table["labels"])
    heads = _heads(where, table.get("heads", {}), arch_config["num_classes"])
    return ModelSpec(
        name=name,
        description=table["description"],
        arch=table["arch"],
        size=table["size"],
        repo=table.get("repo", ""),
        revision=table.get("revision", ""),
        files=tuple(table.get("files", ())),
        url=table.get("url", ""),
        bundled=table.get("bundled"),
        labels=table["labels"],
        label_names=table["label_names"],
        num_frames=table["num_frames"],
        frame_stride=table["frame_stride"],
        reference_fps=float(table["reference_fps"]),
        sampling=table["sampling"],
        short_side=table["short_side"],
        crop=table["crop"],
        crops=table["crops"],
        mean=tuple(float(v) for v in table["mean"]),
        std=tuple(float(v) for v in table["std"]),
        channel_order=table["channel_order"],
        arch_config=dict(arch_config),
        aliases=tuple(table.get("aliases", ())),
        sha256=dict(table.get("sha256", {})),
        mirror=table.get("mirror"),
        resize=table.get("resize", "short_side"),
        symmetries=symmetries,
        average=table.get("average", "softmax"),
        heads=heads,
    )


def _check_fields(where: str, table: dict[str, Any]) -> None:
    """Every field known, of its type, among its choices; labels, mean and std well formed."""
    for key in table:
        if key not in _FIELDS:
            raise RegistryError(f"{where} has an unknown field '{key}'")
    for key, (kind, required) in _FIELDS.items():
        if key not in table:
            if required:
                raise RegistryError(f"{where} is missing the field '{key}'")
            continue
        value = table[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise RegistryError(
                f"{where} field '{key}' has the wrong type ({type(value).__name__})"
            )
        if key in _CHOICES and value not in _CHOICES[key]:
            raise RegistryError(f"{where} field '{key}' must be one of {', '.join(_CHOICES[key])}")
    if table["labels"] not in label_sets():
        raise RegistryError(
            f"{where} field 'labels' must be one of {', '.join(label_sets())} (vidcls/labels/)"
        )
    for key in ("mean", "std"):
        if len(table[key]) != 3 or not all(isinstance(v, (int, float)) for v in table[key]):
            raise RegistryError(f"{where} field '{key}' must be three numbers")


def _check_source(where: str, table: dict[str, Any]) -> None:
    """Where the weights come from (a hub repo, a URL or the package) and their hashes."""
    if "bundled" not in table and "url" not in table:
        for key in ("repo", "revision", "files"):
            if key not in table:
                raise RegistryError(f"{where} is missing the field '{key}' (or 'url', 'bundled')")
    if "url" in table and not table["url"].startswith(("https://", "http://")):
        raise RegistryError(f"{where} field 'url' must be an http(s) URL")
    for file, digest in table.get("sha256", {}).items():
        # a whole SHA-256, or the prefix a publisher puts in the file name (torchvision: 8 digits)
        if not (isinstance(digest, str) and 8 <= len(digest) <= 64 and _is_hex(digest)):
            raise RegistryError(
                f"{where} field 'sha256' for '{file}' must be 8 to 64 hex digits (a whole "
                "SHA-256 or a published prefix of it)"
            )


def _check_arch_config(where: str, arch: str, config: dict[str, Any], labels: str) -> None:
    """The architecture's required fields, its optional ones of their types, nothing else."""
    expected = _ARCH_FIELDS[arch]
    optional = _ARCH_OPTIONAL[arch]
    for key, value in config.items():
        if key in optional:
            kind, choices = optional[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise RegistryError(f"{where}.arch_config field '{key}' has the wrong type")
            if choices and value not in choices:
                raise RegistryError(
                    f"{where}.arch_config field '{key}' must be one of {', '.join(choices)}"
                )
        elif key not in expected:
            raise RegistryError(f"{where}.arch_config has an unknown field '{key}'")
    for key in sorted(expected - set(config)):
        raise RegistryError(f"{where}.arch_config is missing the field '{key}'")
    if config["num_classes"] != len(package_labels(labels)):
        raise RegistryError(f"{where}.arch_config field 'num_classes' does not match '{labels}'")


def _heads(where: str, heads: dict[str, Any], num_classes: int) -> tuple[tuple[str, int], ...]:
    """Each head's class count (several heads share one output), summing to num_classes."""
    counts = heads.values()
    if heads and (
        not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in counts)
        or sum(counts) != num_classes
    ):
        raise RegistryError(
            f"{where} field 'heads' must give each head's class count, summing to num_classes"
        )
    return tuple(heads.items())


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _symmetries(
    where: str, table: dict[str, Any], label_set: str
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """`transform = [[label, label], ...]` (the pairs it swaps) -> class orders, in SYMMETRIES
    order. An empty list is a transform that changes no label."""
    labels = package_labels(label_set)
    orders = {}
    for name, pairs in table.items():
        if name not in SYMMETRIES:
            raise RegistryError(
                f"{where}.symmetries has an unknown transform '{name}' "
                f"(one of {', '.join(SYMMETRIES)})"
            )
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in pairs
        ):
            raise RegistryError(f"{where}.symmetries field '{name}' must be a list of label pairs")
        order = list(range(len(labels)))
        for pair in pairs:
            for label in pair:
                if label not in labels:
                    raise RegistryError(
                        f"{where}.symmetries field '{name}': '{label}' is not a label of "
                        f"'{label_set}'"
                    )
            a, b = (labels.index(x) for x in pair)
            if a == b or order[a] != a or order[b] != b:
                raise RegistryError(
                    f"{where}.symmetries field '{name}' swaps a label with itself or twice"
                )
            order[a], order[b] = b, a
        orders[name] = tuple(order)
    return tuple((name, orders[name]) for name in SYMMETRIES if name in orders)


@functools.cache
def registry() -> dict[str, ModelSpec]:
    """All registry entries by their canonical name, in file order."""
    return parse_registry(_registry_text())


def available_models() -> list[str]:
    return list(registry())


def get_spec(name: str) -> ModelSpec:
    """Resolve a model name, an alias or a hub repo id to its registry entry."""
    specs = registry()
    if name in specs:
        return specs[name]
    for spec in specs.values():
        if name in spec.aliases or name == spec.repo:
            return spec
    raise UnknownModelError(
        f"unknown model '{name}'; available: {', '.join(specs)} (see `vidcls models`)"
    )


@functools.cache
def label_sets() -> tuple[str, ...]:
    """The label sets shipped in vidcls/labels/, by file name."""
    folder = resources.files("vidcls").joinpath("labels")
    return tuple(sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt")))


@functools.cache
def _labels(label_set: str) -> tuple[str, ...]:
    text = resources.files("vidcls").joinpath("labels", f"{label_set}.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def package_labels(label_set: str) -> list[str]:
    """The label names shipped in the package for a label set, in class order; none for ""
    (an entry derived from a hub repo, whose names are in its config)."""
    return list(_labels(label_set)) if label_set else []


def bundled_path(spec: ModelSpec) -> Path:
    """The folder of weights shipped inside the package for a bundled entry."""
    assert spec.bundled is not None
    return Path(str(resources.files("vidcls").joinpath("assets", spec.bundled)))
