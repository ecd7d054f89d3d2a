"""Reading checkpoint files: hub-layout folders, safetensors, sharded indexes, safe pickles and
Flax msgpack checkpoints (Scenic's published format).

Tensors come out under the file's own key names; translating them is the layouts' business.
Pickles are read only through `torch.load(weights_only=True)`: never code from a checkpoint.
A Flax checkpoint is recognised by its content, since Scenic names it plain `checkpoint`: a
msgpack map's first byte. Its tree is flattened to "/"-joined keys, Flax's own path names.
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
        "checkpoint",  # Scenic's published name for a Flax msgpack checkpoint
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
    if is_flax_msgpack(path):
        return read_flax_msgpack(path)
    raise WeightsError(
        f"{path}: unknown weights format (use .safetensors, .bin, .pth, .pyth or a Flax msgpack "
        "checkpoint)"
    )


def is_flax_msgpack(path: Path) -> bool:
    """Whether the file starts like a msgpack map (fixmap, map 16 or map 32), which is how a
    Flax checkpoint starts: its state dict is one map. Safetensors starts with a little-endian
    length, zip pickles with "PK", TensorFlow's `checkpoint` index with text."""
    with path.open("rb") as f:
        first = f.read(1)
    return bool(first) and (0x80 <= first[0] <= 0x8F or first[0] in (0xDE, 0xDF))


_TORCH_DTYPES = (
    "float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64",
    "bool",
)  # fmt: skip


def _flax_ext(code: int, payload: bytes) -> Any:
    """Flax's msgpack extension types: 1 an ndarray, 3 a numpy scalar ([shape, dtype, bytes]
    both), 2 a Python complex."""
    import msgpack
    import numpy as np
    import torch

    if code == 2:
        real, imag = msgpack.unpackb(payload)
        return complex(real, imag)
    if code not in (1, 3):
        raise ValueError(f"unknown msgpack extension type {code}")
    shape, dtype, raw = msgpack.unpackb(payload)
    if dtype not in _TORCH_DTYPES:  # numpy knows more names than torch (e.g. uint16)
        return torch.from_numpy(np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy())
    kind = getattr(torch, dtype)
    if not raw:  # torch.frombuffer refuses an empty buffer
        return torch.empty(shape, dtype=kind)
    # a writable copy: torch warns on (and must not write into) the msgpack buffer
    return torch.frombuffer(bytearray(raw), dtype=kind).reshape(shape)


def _unchunk(tree: Any) -> Any:
    """Arrays over 2**30 bytes are saved as {"__msgpack_chunked_array__": True, "shape": {"0":
    ...}, "chunks": {"0": flat, ...}}: joined back here, like Flax's restore does."""
    import torch

    if not isinstance(tree, dict):
        return tree
    if tree.get("__msgpack_chunked_array__") is True:
        shape = [tree["shape"][str(i)] for i in range(len(tree["shape"]))]
        chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
        return torch.cat([c.reshape(-1) for c in chunks]).reshape(shape)
    return {key: _unchunk(value) for key, value in tree.items()}


def flax_params(state: dict[str, Any]) -> dict[str, Any] | None:
    """The parameter tree of a Flax training state, where Scenic's loader looks for it: a
    top-level `params` (optax-era states), else `optimizer.target` (flax.optim-era, every
    published ViViT file), unwrapping a pre-Linen `target["params"]`."""
    params = state.get("params")
    if not isinstance(params, dict):
        optimizer = state.get("optimizer")
        params = optimizer.get("target") if isinstance(optimizer, dict) else None
    if isinstance(params, dict) and isinstance(params.get("params"), dict):
        params = params["params"]
    return params if isinstance(params, dict) else None


def read_flax_msgpack(path: Path) -> dict[str, Any]:
    """The parameters of a Flax msgpack checkpoint under "/"-joined Flax paths; training state
    beside them (optimizer moments, step, rng) is left unread."""
    import msgpack
    import torch

    try:
        state = msgpack.unpackb(path.read_bytes(), ext_hook=_flax_ext, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise WeightsError(f"{path}: not a valid Flax msgpack checkpoint ({e})") from e
    if not isinstance(state, dict):
        raise WeightsError(
            f"{path}: not a Flax checkpoint (msgpack holds a {type(state).__name__})"
        )
    params = flax_params(state)
    if params is None:
        found = ", ".join(sorted(str(k) for k in state)) or "nothing"
        raise WeightsError(
            f"{path}: a msgpack file without Flax parameters (no `params` or "
            f"`optimizer.target`; top-level keys: {found})"
        )
    flat: dict[str, Any] = {}

    def walk(tree: dict[str, Any], prefix: str) -> None:
        for key, value in tree.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, name + "/")
            elif isinstance(value, torch.Tensor):
                flat[name] = value

    try:
        walk(_unchunk(params), "")
    except (KeyError, RuntimeError, ValueError) as e:
        raise WeightsError(f"{path}: a damaged chunked array ({e})") from e
    if not flat:
        raise WeightsError(f"{path}: the Flax checkpoint holds no arrays")
    return flat
