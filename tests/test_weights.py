"""Loading weights through the code a user runs: hub-layout folders, files, the HF cache."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vidcls
from vidcls.errors import DeviceError, UsageError, WeightsError
from vidcls.network import verify_sha256
from vidcls.registry import get_spec, package_labels
from vidcls_dev.hf_models import (
    hf_logits,
    prefill_hf_cache,
    save_hub_folder,
    tiny_timesformer,
    tiny_vivit,
)

TOL = {"atol": 1e-4, "rtol": 0}
# parity is checked in fp32: `auto` is bf16 on CPUs with native bf16 (AVX-512 BF16, AMX)
FP32 = "fp32"


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_timesformer_folder_loads_and_matches(tmp_path: Path, fmt: str) -> None:
    hf = tiny_timesformer()
    folder = save_hub_folder(hf, tmp_path / "ckpt", fmt)
    model, spec, labels, source = vidcls.load_model("timesformer", weights=folder, precision=FP32)
    video = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(video), hf_logits(hf, video), **TOL)
    assert spec.name == "timesformer" and spec.frame_stride == 32  # the protocol stays the entry's
    assert labels == [f"action {i}" for i in range(7)]  # real names from config.json
    assert source == str(folder)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_vivit_folder_loads_and_uses_packaged_labels(tmp_path: Path, fmt: str) -> None:
    hf = tiny_vivit(num_labels=400)
    folder = save_hub_folder(hf, tmp_path / "ckpt", fmt)
    model, _, labels, _ = vidcls.load_model("vivit", weights=folder, precision=FP32)
    video = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(video), hf_logits(hf, video), **TOL)
    # the config carries LABEL_0..LABEL_399: names come from the shipped Kinetics-400 list
    assert labels == package_labels("kinetics400") and labels[0] == "abseiling"


def test_vivit_transformers5_names_load(tmp_path: Path) -> None:
    # transformers 5 renames ViViT's modules in memory (q_proj, o_proj, mlp.fc1...); a file
    # written from model.state_dict() carries those names.
    hf = tiny_vivit()
    folder = tmp_path / "new-names"
    folder.mkdir()
    hf.config.to_json_file(folder / "config.json")
    state = hf.state_dict()
    assert any(".q_proj." in k for k in state)
    torch.save(state, folder / "pytorch_model.bin")
    model, *_ = vidcls.load_model("vivit", weights=folder, precision=FP32)
    video = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(video), hf_logits(hf, video), **TOL)


def test_single_safetensors_file_uses_config_beside_it(tmp_path: Path) -> None:
    hf = tiny_timesformer(num_frames=6, image_size=48, num_labels=5)
    folder = save_hub_folder(hf, tmp_path / "ckpt")
    model, *_ = vidcls.load_model(
        "timesformer", weights=folder / "model.safetensors", precision=FP32
    )
    assert model.time_embed.shape[1] == 6 and model.head.out_features == 5
    video = torch.randn(1, 6, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(video), hf_logits(hf, video), **TOL)


def _original_checkpoint(hf: torch.nn.Module) -> dict:
    """The HF state dict renamed back to the original vit.py layout (model-facts §1.5/§2.1)."""
    rules = {
        "timesformer.embeddings.cls_token": "cls_token",
        "timesformer.embeddings.position_embeddings": "pos_embed",
        "timesformer.embeddings.time_embeddings": "time_embed",
        "timesformer.embeddings.patch_embeddings.projection": "patch_embed.proj",
        "timesformer.layernorm": "norm",
        "classifier": "head",
        "timesformer.encoder.layer.": "blocks.",
        "layernorm_before": "norm1",
        "temporal_attention.attention.qkv": "temporal_attn.qkv",
        "temporal_attention.output.dense": "temporal_attn.proj",
        "attention.attention.qkv": "attn.qkv",
        "attention.output.dense": "attn.proj",
        "temporal_layernorm": "temporal_norm1",
        "temporal_dense": "temporal_fc",
        "layernorm_after": "norm2",
        "intermediate.dense": "mlp.fc1",
        "output.dense": "mlp.fc2",
    }
    state = {}
    for key, value in hf.state_dict().items():
        for old, new in rules.items():
            key = key.replace(old, new)
        state["model." + key] = value.clone()
    return {"model_state": state, "epoch": 15, "cfg": "TRAIN:\n  ENABLE: False\n"}


def test_original_pyth_matches_hf_layout(tmp_path: Path) -> None:
    # 128 wide with 2 heads: the head count of a config-less file follows the 64-per-head rule
    hf = tiny_timesformer(hidden_size=128, heads=2, num_labels=400)
    torch.save(_original_checkpoint(hf), tmp_path / "TimeSformer_divST_8x32_224_K400.pyth")
    from_pyth, _, labels, _ = vidcls.load_model(
        "timesformer", weights=tmp_path / "TimeSformer_divST_8x32_224_K400.pyth", precision=FP32
    )
    from_hf, *_ = vidcls.load_model(
        "timesformer", weights=save_hub_folder(hf, tmp_path / "hf"), precision=FP32
    )
    video = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(from_pyth(video), from_hf(video), atol=0, rtol=0)
        torch.testing.assert_close(from_pyth(video), hf_logits(hf, video), **TOL)
    assert labels == package_labels("kinetics400")  # no config: the registry's label set


def test_offline_cache_is_the_second_run_path(tmp_path: Path) -> None:
    hf = tiny_timesformer(num_labels=400)
    folder = save_hub_folder(hf, tmp_path / "ckpt")
    cache = tmp_path / "hf" / "hub"
    prefill_hf_cache(cache, get_spec("timesformer").repo, folder)
    video = torch.randn(1, 4, 3, 64, 64)
    torch.save(video, tmp_path / "video.pt")
    script = (
        "import sys, torch, vidcls\n"
        "model, spec, labels, source = vidcls.load_model('timesformer-k400', precision='fp32')\n"
        f"torch.save(model(torch.load({str(tmp_path / 'video.pt')!r})), sys.argv[1])\n"
        "print(source, labels[0])\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "logits.pt")],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "facebook/timesformer-base-finetuned-k400@main action 0"
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), hf_logits(hf, video), **TOL)


def test_offline_without_cache_says_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(WeightsError) as e:
        vidcls.load_model("timesformer-hr", offline=True)
    message = str(e.value)
    assert "facebook/timesformer-hr-finetuned-k400@main" in message
    assert "vidcls download timesformer-hr" in message and "config.json" in message


def test_sha256_mismatch_names_file_and_both_hashes(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"not the weights")
    spec = dataclasses.replace(get_spec("timesformer"), sha256={"model.safetensors": "ab" * 32})
    with pytest.raises(WeightsError) as e:
        verify_sha256(spec, path)
    message = str(e.value)
    assert str(path) in message and "ab" * 32 in message
    import hashlib

    assert hashlib.sha256(b"not the weights").hexdigest() in message
    ok = dataclasses.replace(
        spec, sha256={"model.safetensors": hashlib.sha256(b"not the weights").hexdigest()}
    )
    verify_sha256(ok, path)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(os.urandom(4096)), "not a valid safetensors file"),
    ],
)
def test_corrupt_safetensors(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "model.safetensors"
    make(path)
    with pytest.raises(WeightsError, match=reason):
        vidcls.load_model("timesformer", weights=path)


def test_truncated_files(tmp_path: Path) -> None:
    folder = save_hub_folder(tiny_timesformer(), tmp_path / "st")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        vidcls.load_model("timesformer", weights=folder)
    folder = save_hub_folder(tiny_timesformer(), tmp_path / "bin", "bin")
    data = (folder / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cannot read it as a PyTorch checkpoint"):
        vidcls.load_model("timesformer", weights=folder)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickles_with_code_are_refused(tmp_path: Path, capsys) -> None:
    torch.save({"x": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="cannot read it as a PyTorch checkpoint"):
        vidcls.load_model("timesformer", weights=tmp_path / "evil.pth")
    assert "this must never run" not in capsys.readouterr().out


def test_wrong_architecture(tmp_path: Path) -> None:
    folder = save_hub_folder(tiny_vivit(), tmp_path / "vivit")
    with pytest.raises(WeightsError, match="holds a vivit checkpoint, but model 'timesformer'"):
        vidcls.load_model("timesformer", weights=folder)


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    hf = tiny_timesformer(hidden_size=128, heads=2)
    checkpoint = _original_checkpoint(hf)
    state = checkpoint["model_state"]
    del state["model.blocks.1.temporal_fc.weight"]
    state["model.blocks.1.extra.weight"] = torch.zeros(3)
    torch.save(checkpoint, tmp_path / "broken.pyth")
    with pytest.raises(WeightsError) as e:
        vidcls.load_model("timesformer", weights=tmp_path / "broken.pyth")
    assert "missing keys: blocks.1.temporal_fc.weight" in str(e.value)
    assert "unexpected keys: blocks.1.extra.weight" in str(e.value)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(
        WeightsError, match="not a TimeSformer, ViViT, MViT, VideoMAE or V-JEPA 2 checkpoint"
    ):
        vidcls.load_model("timesformer", weights=tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="no such file"):
        vidcls.load_model("timesformer", weights=tmp_path / "nothing-here")


def test_precision_and_device(tmp_path: Path) -> None:
    folder = save_hub_folder(tiny_timesformer(), tmp_path / "ckpt")
    from vidcls.config import cpu_has_native_bf16

    if cpu_has_native_bf16():
        model, *_ = vidcls.load_model("timesformer", weights=folder, precision="bf16")
    else:
        with pytest.warns(UserWarning, match="no native bf16"):
            model, *_ = vidcls.load_model("timesformer", weights=folder, precision="bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    model, *_ = vidcls.load_model("timesformer", weights=folder)  # auto: bf16 only if native
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert {p.dtype for p in model.parameters()} == {expected}
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            vidcls.load_model("timesformer", weights=folder, device="cuda")
    with pytest.raises(UsageError, match="unknown precision"):  # a bad option: exit 2
        vidcls.load_model("timesformer", weights=folder, precision="int3")


def fake_hub(monkeypatch, cache: Path, repo_files: dict[str, Path]) -> list[str]:
    """Stand in for the hub: hf_hub_download copies from local folders into a real cache layout."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import EntryNotFoundError

    from vidcls_dev.hf_models import prefill_hf_cache

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("vidcls.network.reachable", lambda url, timeout=1.5: True)
    requested: list[str] = []

    def download(repo_id: str, filename: str, *, revision: str | None = None, **_: object) -> str:
        requested.append(filename)
        source = repo_files[repo_id] / filename
        if not source.exists():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        single = cache.parent / "staging" / repo_id.replace("/", "--")
        single.mkdir(parents=True, exist_ok=True)
        (single / filename).write_bytes(source.read_bytes())
        snapshot = prefill_hf_cache(cache, repo_id, single, revision or "main")
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    return requested


def test_download_fills_the_cache_then_offline_works(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from vidcls.cli import app

    hf = tiny_timesformer(num_labels=400)
    folder = save_hub_folder(hf, tmp_path / "repo", "bin")  # the hub repo has only a .bin
    requested = fake_hub(monkeypatch, tmp_path / "cache", {get_spec("timesformer").repo: folder})
    result = CliRunner().invoke(app, ["download", "timesformer-k400"])
    assert result.exit_code == 0, result.output
    name, path = result.stdout.strip().split("\t")
    assert name == "timesformer" and path.endswith("pytorch_model.bin")
    assert requested == ["config.json", "model.safetensors", "pytorch_model.bin"]
    models = CliRunner().invoke(app, ["models", "--json"])
    cached = {row["name"]: row["cached"] for row in json.loads(models.stdout)}
    assert cached["timesformer"] is True and cached["timesformer-hr"] is False
    model, *_ = vidcls.load_model("timesformer", offline=True, precision=FP32)
    video = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(video), hf_logits(hf, video), **TOL)


def test_download_checks_the_pinned_hash(tmp_path: Path, monkeypatch) -> None:
    folder = save_hub_folder(tiny_timesformer(), tmp_path / "repo")
    spec = dataclasses.replace(get_spec("timesformer"), sha256={"model.safetensors": "0" * 64})
    fake_hub(monkeypatch, tmp_path / "cache", {spec.repo: folder})
    from vidcls.network import fetch

    with pytest.raises(WeightsError, match="sha256 mismatch for timesformer/model.safetensors"):
        fetch(spec, offline=False, progress=False)


def test_hub_export_inverts_the_hub_import(tmp_path: Path) -> None:
    """to_hf_timesformer / hf_timesformer_config (how motion-tiny is saved) write what
    transformers loads strictly, with the same logits, and what vidcls reads back unchanged."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    from vidcls.checkpoints.hf import (
        arch_config_from_hf,
        from_hf_timesformer,
        hf_timesformer_config,
        to_hf_timesformer,
    )
    from vidcls.models import build

    arch = {
        "attention_type": "divided_space_time", "hidden_size": 32, "depth": 2, "heads": 4,
        "mlp_dim": 64, "image_size": 32, "patch_size": 16, "num_frames": 3, "num_classes": 5,
    }  # fmt: skip
    torch.manual_seed(3)
    ours = build("timesformer", arch).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # noise on every parameter, biases and norms too
    labels = [f"class {i}" for i in range(5)]
    config = hf_timesformer_config(arch, labels)
    assert arch_config_from_hf(config) == (
        "timesformer",
        {**arch, "eps": 1e-6, "qkv_bias": True, "gelu": "none"},
    )
    exported = to_hf_timesformer(ours.state_dict())
    back = from_hf_timesformer(exported)
    assert back.keys() == ours.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in ours.state_dict().items())
    theirs = TimesformerForVideoClassification(TimesformerConfig(**config)).eval()
    theirs.load_state_dict(exported, strict=True)
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(theirs(pixel_values=x).logits, ours(x), **TOL)
    assert theirs.config.id2label[4] == "class 4"
    with pytest.raises(KeyError, match="no transformers name for extra.weight"):
        to_hf_timesformer({"extra.weight": torch.zeros(1)})


def test_an_unreachable_hub_fails_at_once_with_the_ways_out(tmp_path: Path, monkeypatch) -> None:
    """No retry loop: with the hub's port closed and nothing cached, the command fails in well
    under 2 s with one line naming the fixes; with the weights cached, it uses them."""
    import time

    from huggingface_hub import constants
    from typer.testing import CliRunner

    from vidcls.cli import app
    from vidcls.network import fetch, reachable
    from vidcls_dev.hf_models import prefill_hf_cache
    from vidcls_dev.media import make_video

    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    assert not reachable(closed)
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    video = make_video(tmp_path / "clip.mp4", n_frames=8)
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["predict", str(video), "--model", "timesformer"])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: timesformer: cannot reach http://127.0.0.1:9"), (
        result.output
    )
    for fix in ("--weights PATH", "vidcls download timesformer", "HF_ENDPOINT"):
        assert fix in lines[-1]
    assert "Retry" not in result.output
    assert elapsed < 2.0

    spec = get_spec("timesformer")
    folder = tmp_path / "weights"
    save_hub_folder(tiny_timesformer(num_frames=8, image_size=32, num_labels=3), folder)
    prefill_hf_cache(tmp_path / "hub", spec.repo, folder, spec.revision)
    assert fetch(spec, offline=False, progress=False).name in spec.files
