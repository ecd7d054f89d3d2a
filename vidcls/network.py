"""The Hugging Face hub: the only module that touches the network.

Weights download through huggingface_hub into its standard cache (HF_HOME, HF_TOKEN and
HF_HUB_OFFLINE work as users expect); offline, only the cache is read. Bundled entries live
inside the package and are never downloaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import WeightsError
from .registry import ModelSpec, bundled_path


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return env in ("1", "true", "yes", "on") or bool(constants.HF_HUB_OFFLINE)


def cached_weights(spec: ModelSpec) -> Path | None:
    """The cached weights file of a registry entry, or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    if spec.bundled:
        return bundled_path(spec)
    for name in spec.files:
        found = try_to_load_from_cache(spec.repo, name, revision=spec.revision)
        if isinstance(found, str):
            config = try_to_load_from_cache(spec.repo, "config.json", revision=spec.revision)
            return Path(found) if isinstance(config, str) else None
    return None


def fetch(spec: ModelSpec, offline: bool | None = None, progress: bool = True) -> Path:
    """Return the local path of the entry's weights, downloading them (and config.json) if needed.

    Offline (the flag or HF_HUB_OFFLINE=1) only the cache is consulted. Bundled entries are
    inside the package and never downloaded.
    """
    if spec.bundled:
        folder = bundled_path(spec)
        for name in spec.sha256:
            verify_sha256(spec, folder / name)  # a few MB: cheap enough to check every load
        return folder
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if is_offline(offline):
        path = cached_weights(spec)
        if path is None:
            raise WeightsError(
                f"{spec.name}: not in the Hugging Face cache and offline mode forbids downloading "
                f"(needs {spec.repo}@{spec.revision}: config.json and one of "
                f"{' / '.join(spec.files)}). Run `vidcls download {spec.name}` where there is "
                "network (same HF_HOME), or pass --weights PATH"
            )
        return path

    was_cached = cached_weights(spec)
    (enable_progress_bars if progress else disable_progress_bars)()
    try:
        hf_hub_download(spec.repo, "config.json", revision=spec.revision)
        for name in spec.files:
            try:
                path = Path(hf_hub_download(spec.repo, name, revision=spec.revision))
                break
            except EntryNotFoundError as e:
                if isinstance(e, LocalEntryNotFoundError):
                    raise
                continue  # the repo has no file of this name: try the next format
        else:
            raise WeightsError(f"{spec.name}: {spec.repo} has none of {', '.join(spec.files)}")
    except LocalEntryNotFoundError as e:
        raise WeightsError(
            f"{spec.name}: cannot reach the Hugging Face hub to download {spec.repo} and it is "
            f"not cached ({e.__class__.__name__}). Check the network or HF_ENDPOINT, or pass "
            "--weights PATH"
        ) from e
    except HfHubHTTPError as e:
        raise WeightsError(f"{spec.name}: download of {spec.repo} failed: {e}") from e
    if was_cached != path:
        verify_sha256(spec, path)
    return path


def verify_sha256(spec: ModelSpec, path: Path) -> None:
    """Compare a downloaded file with the hash the registry pins for it, if it pins one."""
    expected = spec.sha256.get(path.name)
    if not expected:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise WeightsError(
            f"{path}: sha256 mismatch for {spec.name}/{path.name}: expected {expected}, got "
            f"{digest.hexdigest()}. The file is corrupt or the hub copy changed: delete it and run "
            f"`vidcls download {spec.name}` again; if {spec.repo} was updated on purpose, pin "
            "the revision and hash in weights.toml"
        )


def fetch_configs(
    repo: str, names: tuple[str, ...], revision: str = "main", offline: bool | None = None
) -> Path:
    """The cached snapshot folder of a hub repo holding its config.json and whichever of `names`
    (optional JSON files) the repo has, downloaded if needed; offline, only the cache is read.

    For a hub classifier without a registry entry: these files describe it before its weights
    are fetched (by `fetch`, as for any entry)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    if is_offline(offline):
        found = try_to_load_from_cache(repo, "config.json", revision=revision)
        if not isinstance(found, str):
            raise WeightsError(
                f"hf:{repo}: its config.json is not in the Hugging Face cache and offline mode "
                "forbids downloading; run once with network (same HF_HOME)"
            )
        return Path(found).parent
    try:
        folder = Path(hf_hub_download(repo, "config.json", revision=revision)).parent
        for name in names:
            try:
                hf_hub_download(repo, name, revision=revision)
            except EntryNotFoundError as e:
                if isinstance(e, LocalEntryNotFoundError):
                    raise
    except LocalEntryNotFoundError as e:
        raise WeightsError(
            f"hf:{repo}: cannot reach the Hugging Face hub and it is not cached "
            f"({e.__class__.__name__}). Check the network or HF_ENDPOINT"
        ) from e
    except HfHubHTTPError as e:
        raise WeightsError(f"hf:{repo}: download failed: {e}") from e
    return folder
