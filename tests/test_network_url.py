"""Plain-URL downloads (network.fetch for registry entries with `url`) against a local server.

The server is an http.server on 127.0.0.1 in a daemon thread, shut down by the fixture and, as a
backstop, by a timer; it can honour Range requests, corrupt the file or die half way through.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import vidcls
from vidcls import registry as registry_module
from vidcls.errors import WeightsError
from vidcls.network import cached_weights, fetch
from vidcls.registry import ModelSpec, get_spec
from vidcls_dev.mvit import fixture_input, fixture_logits, fixtures

FIXTURE = fixtures()
PAYLOAD = (FIXTURE / "v2" / "model.pth").read_bytes()
NAME = "mvit_v2_s-test.pth"


class Server:
    """What the handler serves and how; `ranges` records each request's Range header."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mode = "ok"  # "ok" | "corrupt" | "die" (half the body, then the connection closes)
        self.honour_range = True
        self.ranges: list[str | None] = []
        self.url = ""


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            data = state.files.get(self.path)
            state.ranges.append(self.headers.get("Range"))
            if data is None:
                self.send_error(404, "Not Found")
                return
            if state.mode == "corrupt":
                data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
            start, wanted = 0, self.headers.get("Range")
            if wanted and state.honour_range:
                start = int(wanted.removeprefix("bytes=").rstrip("-"))
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if state.mode == "die" else body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    backstop = threading.Timer(120, httpd.shutdown)  # a hung test cannot keep it alive
    backstop.daemon = True
    backstop.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        backstop.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIDCLS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "cache"


def served(server: Server, sha256: str | None = None, name: str = NAME) -> ModelSpec:
    """The mvit entry pointing at the local server, pinning `sha256` (whole or a prefix)."""
    server.files[f"/models/{name}"] = PAYLOAD
    pins = {name: sha256} if sha256 else {}
    return dataclasses.replace(get_spec("mvit"), url=f"{server.url}/models/{name}", sha256=pins)


def full_sha() -> str:
    return hashlib.sha256(PAYLOAD).hexdigest()


def test_full_download_lands_in_the_cache_once(
    server: Server, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = served(server, full_sha())
    assert cached_weights(spec) is None
    path = fetch(spec, offline=False, progress=True)
    port = server.url.rsplit(":", 1)[1]
    assert path == cache / f"127.0.0.1_{port}" / "models" / NAME
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name(NAME + ".part").exists()
    assert cached_weights(spec) == path
    assert fetch(spec, offline=False, progress=False) == path
    assert server.ranges == [None]  # the second fetch found the cache and asked nothing
    assert capsys.readouterr().out == ""  # the progress bar is on stderr only


def test_partial_download_resumes_with_a_range_request(server: Server, cache: Path) -> None:
    spec = served(server, full_sha())
    part = cache / f"127.0.0.1_{server.url.rsplit(':', 1)[1]}" / "models" / (NAME + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    path = fetch(spec, offline=False, progress=False)
    assert server.ranges == ["bytes=1000-"]
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_a_server_ignoring_the_range_starts_over(server: Server, cache: Path) -> None:
    spec = served(server, full_sha())
    server.honour_range = False
    part = cache / f"127.0.0.1_{server.url.rsplit(':', 1)[1]}" / "models" / (NAME + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # wrong bytes: appending the whole body to them would be wrong
    assert fetch(spec, offline=False, progress=False).read_bytes() == PAYLOAD


@pytest.mark.parametrize("pin", ["whole", "prefix"])
def test_a_corrupt_download_is_caught_by_its_checksum(
    server: Server, cache: Path, pin: str
) -> None:
    spec = served(server, full_sha() if pin == "whole" else full_sha()[:8])
    server.mode = "corrupt"
    with pytest.raises(WeightsError) as caught:
        fetch(spec, offline=False, progress=False)
    message = str(caught.value)
    assert spec.url in message and "corrupt" in message and "\n" not in message
    assert ("prefix" in message) == (pin == "prefix")
    assert cached_weights(spec) is None
    assert not list(cache.rglob("*.part"))  # a wrong file is no base to resume from


def test_a_server_that_disappears_leaves_a_partial_to_resume(server: Server, cache: Path) -> None:
    spec = served(server, full_sha())
    server.mode = "die"
    with pytest.raises(WeightsError) as caught:
        fetch(spec, offline=False, progress=False)
    message = str(caught.value)
    assert spec.url in message and "resume" in message and "\n" not in message
    assert cached_weights(spec) is None
    (part,) = cache.rglob("*.part")
    assert part.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]
    server.mode = "ok"
    path = fetch(spec, offline=False, progress=False)
    assert server.ranges[-1] == f"bytes={len(PAYLOAD) // 2}-"
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_http_errors_and_dead_hosts_fail_fast_with_the_url(server: Server, cache: Path) -> None:
    spec = dataclasses.replace(get_spec("mvit"), url=f"{server.url}/models/missing.pth")
    with pytest.raises(WeightsError, match=r"missing\.pth: download failed: HTTP 404"):
        fetch(spec, offline=False, progress=False)
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = dataclasses.replace(spec, url=f"http://127.0.0.1:{port}/m.pth")
    with pytest.raises(WeightsError, match=rf"127\.0\.0\.1:{port}/m\.pth: cannot download"):
        fetch(dead, offline=False, progress=False)


def test_offline_reads_only_the_cache(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = served(server)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"offline.*`vidcls download mvit`.*VIDCLS_CACHE"):
        fetch(spec, progress=False)
    assert server.ranges == []
    path = fetch(spec, offline=False, progress=False)
    assert fetch(spec, progress=False) == path


def test_mvit_from_a_url_end_to_end(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vidcls download mvit`, `vidcls models` and `load_model("mvit")` on a served fixture,
    pinned by an 8-digit prefix as torchvision's file names pin theirs."""
    from typer.testing import CliRunner

    from vidcls.cli import app

    spec = served(server, full_sha()[:8], name=f"mvit_v2_s-{full_sha()[:8]}.pth")
    entries = {**registry_module.registry(), "mvit": spec}
    monkeypatch.setattr(registry_module, "registry", lambda: entries)
    result = CliRunner().invoke(app, ["download", "mvit", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"mvit\t{cached_weights(spec)}"
    rows = json.loads(CliRunner().invoke(app, ["models", "--json"]).stdout)
    assert {r["name"]: r["cached"] for r in rows}["mvit"] is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = vidcls.load_model("mvit", device="cpu", precision="fp32")
    video = torch.from_numpy(fixture_input())
    with torch.no_grad():
        logits = loaded.model(video)
    expected = torch.from_numpy(fixture_logits("v2"))
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    assert server.ranges == [None]


@pytest.mark.parametrize(
    ("digest", "ok"),
    [("ae3be167", True), ("ab" * 32, True), ("ae3be16", False), ("xyz3be167", False),
     ("a" * 65, False)],
)  # fmt: skip
def test_the_registry_pins_a_whole_sha256_or_a_published_prefix(digest: str, ok: bool) -> None:
    from vidcls.errors import RegistryError
    from vidcls.registry import _registry_text, parse_registry

    text = _registry_text().replace('= "ae3be167" }', f'= "{digest}" }}')
    if ok:
        assert parse_registry(text)["mvit"].sha256 == {"mvit_v2_s-ae3be167.pth": digest}
    else:
        with pytest.raises(RegistryError, match=r"\[mvit\] field 'sha256'.*8 to 64 hex digits"):
            parse_registry(text)
