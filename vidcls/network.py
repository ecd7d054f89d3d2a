"""The Hugging Face hub and plain URLs: the only module that touches the network.

Weights download through huggingface_hub into its standard cache (HF_HOME, HF_TOKEN and
HF_HUB_OFFLINE work as users expect); offline, only the cache is read. Bundled entries live
inside the package and are never downloaded.

Entries with a `url` (torchvision, Scenic) are one file fetched with the standard library into
vidcls's own cache, in the hub cache's spirit: VIDCLS_CACHE (default ~/.cache/vidcls, or
$XDG_CACHE_HOME/vidcls), one path per URL (host/path). A download goes to NAME.part, resumes
from it with an HTTP Range request, is checked against the pinned hash and only then renamed to
NAME, so a file under its own name is always complete. Offline (--offline, HF_HUB_OFFLINE) only
the cache is read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import WeightsError
from .registry import ModelSpec, bundled_path

# Seconds a connection or a read may stall before the download fails: fail fast, never retry.
TIMEOUT_S = 30.0
_CHUNK = 1 << 20


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def reachable(url: str, timeout: float = 1.5) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` seconds (name lookup
    included, which has no timeout of its own, so it runs in a daemon thread)."""
    import socket
    import threading
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    answer: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


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
    if spec.url:
        path = url_cache_path(spec.url)
        return path if path.is_file() else None
    for name in spec.files:
        found = try_to_load_from_cache(spec.repo, name, revision=spec.revision)
        if isinstance(found, str):
            config = try_to_load_from_cache(spec.repo, "config.json", revision=spec.revision)
            return Path(found) if isinstance(config, str) else None
    return None


def fetch(spec: ModelSpec, offline: bool | None = None, progress: bool = True) -> Path:
    """Return the local path of the entry's weights, downloading them (and config.json) if needed.

    Offline (the flag or HF_HUB_OFFLINE=1) only the cache is consulted. Bundled entries are
    inside the package and never downloaded; entries with a `url` go through `fetch_url`.
    """
    if spec.bundled:
        folder = bundled_path(spec)
        for name in spec.sha256:
            verify_sha256(spec, folder / name)  # a few MB: cheap enough to check every load
        return folder
    if spec.url:
        return fetch_url(spec, offline, progress)
    was_cached = cached_weights(spec)
    if is_offline(offline):
        if was_cached is None:
            raise WeightsError(
                f"{spec.name}: not in the Hugging Face cache and offline mode forbids downloading "
                f"(needs {spec.repo}@{spec.revision}: config.json and one of "
                f"{' / '.join(spec.files)}). Run `vidcls download {spec.name}` where there is "
                "network (same HF_HOME), or pass --weights PATH"
            )
        return was_cached
    if not reachable(_hub_endpoint()):
        # huggingface_hub would retry for half a minute before saying the same
        if was_cached is not None:
            return was_cached
        raise WeightsError(
            f"{spec.name}: cannot reach {_hub_endpoint()} to download {spec.repo}, and it is not "
            f"cached. Pass --weights PATH, run `vidcls download {spec.name}` on a connected "
            "machine (same HF_HOME), or set HF_ENDPOINT to a mirror"
        )
    path = _hub_download(spec, progress)
    if was_cached != path:
        verify_sha256(spec, path)
    return path


def _hub_download(spec: ModelSpec, progress: bool) -> Path:
    """config.json and the first of the entry's weight files the repo has, into the HF cache."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    (enable_progress_bars if progress else disable_progress_bars)()
    try:
        hf_hub_download(spec.repo, "config.json", revision=spec.revision)
        for name in spec.files:
            try:
                return Path(hf_hub_download(spec.repo, name, revision=spec.revision))
            except EntryNotFoundError as e:
                if isinstance(e, LocalEntryNotFoundError):
                    raise
                continue  # the repo has no file of this name: try the next format
        raise WeightsError(f"{spec.name}: {spec.repo} has none of {', '.join(spec.files)}")
    except LocalEntryNotFoundError as e:
        raise WeightsError(
            f"{spec.name}: cannot reach the Hugging Face hub to download {spec.repo} and it is "
            f"not cached ({e.__class__.__name__}). Pass --weights PATH, run `vidcls download "
            f"{spec.name}` on a connected machine (same HF_HOME), or set HF_ENDPOINT to a mirror"
        ) from e
    except HfHubHTTPError as e:
        raise WeightsError(f"{spec.name}: download of {spec.repo} failed: {e}") from e


def verify_sha256(spec: ModelSpec, path: Path) -> None:
    """Compare a downloaded file with the hash the registry pins for it, if it pins one."""
    expected = spec.sha256.get(path.name)
    if not expected:
        return
    got = file_sha256(path)
    if not matches_sha256(got, expected):
        source = spec.url or spec.repo
        raise WeightsError(
            f"{path}: sha256 mismatch for {spec.name}/{path.name}: expected {expected}"
            f"{_prefix_note(expected)}, got {got}. The file is corrupt or the published copy "
            f"changed: delete it and run `vidcls download {spec.name}` again; if {source} was "
            "updated on purpose, pin the new hash in weights.toml"
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def matches_sha256(digest: str, expected: str) -> bool:
    """A whole pinned SHA-256 must be equal; a shorter one is a published prefix (torchvision's
    file names carry 8 digits) and is compared as one."""
    return digest.startswith(expected.lower())


def _prefix_note(expected: str) -> str:
    return " (a published prefix)" if len(expected) < 64 else ""


def cache_root() -> Path:
    """Where URL downloads live: VIDCLS_CACHE, else the user cache folder's vidcls/."""
    explicit = os.environ.get("VIDCLS_CACHE", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "vidcls"


def url_cache_path(url: str) -> Path:
    """The cached file of a URL: its host and path under the cache root (the file keeps the
    URL's name, which is what the registry's sha256 table is keyed by)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    names = [unquote(p) for p in parts.path.split("/") if p]
    if not parts.hostname or not names or any(n in (".", "..") or os.sep in n for n in names):
        raise WeightsError(f"{url}: not a URL of a file (http(s)://host/path/NAME)")
    host = parts.hostname + (f"_{parts.port}" if parts.port else "")
    return cache_root() / host / Path(*names)


def fetch_url(spec: ModelSpec, offline: bool | None = None, progress: bool = True) -> Path:
    """The cached file of a URL entry, downloaded (resumed, verified, renamed) when missing."""
    path = url_cache_path(spec.url)
    if path.is_file():
        return path  # only a verified download is ever renamed to its own name
    if is_offline(offline):
        raise WeightsError(
            f"{spec.name}: {path.name} is not in the vidcls cache ({path.parent}) and offline "
            f"mode forbids downloading {spec.url}. Run `vidcls download {spec.name}` where there "
            "is network (same VIDCLS_CACHE), or pass --weights PATH"
        )
    return download_url(spec.url, path, spec.sha256.get(path.name), progress)


def download_url(url: str, path: Path, sha256: str | None = None, progress: bool = True) -> Path:
    """Download `url` to `path` through `path`.part, resuming a partial file with a Range
    request; with `sha256` (whole or prefix) the file must match before it is renamed.

    A failure leaves the partial file to resume from, except a hash mismatch: that file is
    wrong, not short, and is deleted. Errors are one line naming the URL and the reason.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    _transfer(url, part, progress)
    if sha256:
        got = file_sha256(part)
        if not matches_sha256(got, sha256):
            part.unlink()
            raise WeightsError(
                f"{url}: the download is corrupt: sha256 {got}, expected {sha256}"
                f"{_prefix_note(sha256)}; deleted it, run again to download it afresh"
            )
    os.replace(part, path)
    return path


def _transfer(url: str, part: Path, progress: bool) -> None:
    """Append the rest of `url` to `part`: one request, no retries."""
    import http.client
    import urllib.error
    import urllib.request

    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "vidcls"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # nothing after what we have: the partial file holds all the server has; the
            # checksum decides whether it is right
            return
        raise WeightsError(f"{url}: download failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise WeightsError(f"{url}: cannot download ({reason})") from e
    with response:
        resumed = have and response.status == 206
        if have and not resumed:
            have = 0  # the server ignored the Range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        received = have
        bar = _Bar(part.name.removesuffix(".part"), total, have) if progress else None
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.advance(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            raise WeightsError(
                f"{url}: download interrupted after {received} of {total or '?'} bytes "
                f"({e.__class__.__name__}: {e}); run again to resume from {part}"
            ) from e
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received < total:
        raise WeightsError(
            f"{url}: the server closed the connection after {received} of {total} bytes; run "
            f"again to resume from {part}"
        )


class _Bar:
    """A Rich download bar on stderr, for one file."""

    def __init__(self, name: str, total: int | None, done: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task(name, total=total, completed=done)
        self.progress.start()

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def close(self) -> None:
        self.progress.stop()


def fetch_configs(
    repo: str, names: tuple[str, ...], revision: str = "main", offline: bool | None = None
) -> Path:
    """The cached snapshot folder of a hub repo holding its config.json and whichever of `names`
    (optional JSON files) the repo has, downloaded if needed; offline, only the cache is read.

    For a hub classifier without a registry entry: these files describe it before its weights
    are fetched (by `fetch`, as for any entry)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    found = try_to_load_from_cache(repo, "config.json", revision=revision)
    if is_offline(offline):
        if not isinstance(found, str):
            raise WeightsError(
                f"hf:{repo}: its config.json is not in the Hugging Face cache and offline mode "
                "forbids downloading; run once with network (same HF_HOME)"
            )
        return Path(found).parent
    if not reachable(_hub_endpoint()):
        # as in `fetch`: fail (or use the cache) in seconds, not after huggingface_hub's retries
        if isinstance(found, str):
            return Path(found).parent
        raise WeightsError(
            f"hf:{repo}: cannot reach {_hub_endpoint()} and its config.json is not cached. "
            f"Run `vidcls download hf:{repo}` on a connected machine (same HF_HOME), or set "
            "HF_ENDPOINT to a mirror"
        )
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
