"""VideoMAE and V-JEPA 2 against transformers, loaded from hub-layout files as a user loads them.

Every parameter carries noise (biases, norms, the pooler's query and layers), so a key that is
dropped, swapped or zeroed changes the logits by far more than the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vidcls
from vidcls.checkpoints.hf import arch_config_from_hf
from vidcls.checkpoints.hf_videomae import from_hf_videomae
from vidcls.checkpoints.hf_vjepa2 import from_hf_vjepa2
from vidcls.models import build, set_fused_attention
from vidcls.models.videomae import sinusoid_table
from vidcls.models.vjepa2 import rope_slice
from vidcls_dev.hf_models import hf_logits, save_hub_folder, tiny_videomae, tiny_vjepa2

TOL = {"atol": 1e-4, "rtol": 0}
FP32 = "fp32"


def _load(name: str, folder: Path) -> torch.nn.Module:
    model, *_ = vidcls.load_model(name, weights=folder, precision=FP32)
    return model


def _check(ours: torch.nn.Module, hf: torch.nn.Module, video: torch.Tensor) -> None:
    with torch.no_grad():
        logits = ours(video)
    reference = hf_logits(hf, video)
    torch.testing.assert_close(logits, reference, **TOL)
    # the tolerance means something: the batch items differ by far more than it
    assert (reference[0] - reference[1]).abs().max() > 1e-2


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@pytest.mark.parametrize(
    ("frames", "size", "mean_pool"),
    [(4, 32, True), (6, 48, True), (4, 32, False)],  # 3 tubelets on a 3×3 grid: odd everywhere
)
def test_videomae_matches_transformers(
    tmp_path: Path, fmt: str, frames: int, size: int, mean_pool: bool
) -> None:
    hf = tiny_videomae(num_frames=frames, image_size=size, use_mean_pooling=mean_pool)
    model = _load("videomae", save_hub_folder(hf, tmp_path / "ckpt", fmt))
    _check(model, hf, torch.randn(2, frames, 3, size, size))


def test_videomae_hub_file_holds_q_and_v_biases(tmp_path: Path) -> None:
    # The hub layout spells the biases q_bias/v_bias. Some transformers 5.x releases reported
    # them as unexpected and left zeros; the reference here is the math on the file's own
    # tensors, so such a release would fail this test rather than move its target.
    from safetensors.torch import load_file

    hf = tiny_videomae()
    folder = save_hub_folder(hf, tmp_path / "ckpt")
    state = load_file(str(folder / "model.safetensors"))
    q_bias = state["videomae.encoder.layer.0.attention.attention.q_bias"]
    v_bias = state["videomae.encoder.layer.0.attention.attention.v_bias"]
    assert q_bias.abs().min() > 0 and v_bias.abs().min() > 0
    model = _load("videomae", folder)
    attn = model.blocks[0].attn
    torch.testing.assert_close(attn.q_bias, q_bias, rtol=0, atol=0)
    torch.testing.assert_close(attn.v_bias, v_bias, rtol=0, atol=0)
    # layer 0's q, k, v by hand from the file's tensors, against the model's packed projection
    x = torch.randn(1, 5, 48)
    prefix = "videomae.encoder.layer.0.attention.attention."
    expected = torch.cat(
        [
            x @ state[prefix + "query.weight"].T + q_bias,
            x @ state[prefix + "key.weight"].T,
            x @ state[prefix + "value.weight"].T + v_bias,
        ],
        dim=-1,
    )
    bias = torch.cat([attn.q_bias, torch.zeros_like(attn.q_bias), attn.v_bias])
    got = torch.nn.functional.linear(x, attn.qkv.weight, bias)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # and the biases matter: zeroing them moves the logits far beyond the parity tolerance
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        before = model(video)
        for block in model.blocks:
            block.attn.q_bias.zero_()
            block.attn.v_bias.zero_()
        after = model(video)
    assert (before - after).abs().max() > 1e-2


def test_videomae_rejects_other_input_shapes(tmp_path: Path) -> None:
    model = _load("videomae", save_hub_folder(tiny_videomae(), tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="takes 4 frames of 32×32, got 6 of 32×32"):
        model(torch.randn(1, 6, 3, 32, 32))


def test_sinusoid_table_is_the_reference_formula() -> None:
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    torch.testing.assert_close(sinusoid_table(98, 48), get_sinusoid_encoding_table(98, 48)[0])


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@pytest.mark.parametrize(
    ("hidden", "frames"),
    [(96, 4), (96, 10), (120, 7)],  # head 24 (three RoPE slices of 8), head 30 (slices of 10
)  # and 0 channels left unrotated), 10 and 7 frames (5 and 3 tubelets; the 7th frame dropped)
def test_vjepa2_matches_transformers(tmp_path: Path, fmt: str, hidden: int, frames: int) -> None:
    hf = tiny_vjepa2(hidden_size=hidden)
    model = _load("vjepa2-ssv2", save_hub_folder(hf, tmp_path / "ckpt", fmt))
    _check(model, hf, torch.randn(2, frames, 3, 32, 32))


def test_vjepa2_head_with_unrotated_channels(tmp_path: Path) -> None:
    # head 32: slices of 10, 2 channels left as they are
    assert rope_slice(32) == 10
    hf = tiny_vjepa2(hidden_size=128)
    model = _load("vjepa2-ssv2", save_hub_folder(hf, tmp_path / "ckpt"))
    _check(model, hf, torch.randn(2, 4, 3, 32, 32))


def test_vjepa2_predictor_is_dropped_and_positions_matter(tmp_path: Path) -> None:
    hf = tiny_vjepa2()
    state = from_hf_vjepa2(hf.state_dict())
    assert not any("predictor" in k for k in state)
    model = _load("vjepa2-ssv2", save_hub_folder(hf, tmp_path / "ckpt"))
    video = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        # the two tubelets swapped: the same tokens in another order, which only RoPE can tell
        swapped = model(video[:, [2, 3, 0, 1]])
        assert (model(video) - swapped).abs().max() > 1e-2


@pytest.mark.parametrize("family", ["videomae", "vjepa2"])
def test_sdpa_and_eager_agree(family: str) -> None:
    hf = tiny_videomae() if family == "videomae" else tiny_vjepa2()
    arch, config = arch_config_from_hf(hf.config.to_dict())
    convert = from_hf_videomae if family == "videomae" else from_hf_vjepa2
    model = build(arch, config).eval()
    model.load_state_dict(convert(hf.state_dict()), strict=True)
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        fused = model(video)
        eager = set_fused_attention(model, False)(video)
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=0)
    assert not any(getattr(m, "fused", False) for m in model.modules())


def test_wrong_family_for_the_named_model(tmp_path: Path) -> None:
    from vidcls.errors import WeightsError

    folder = save_hub_folder(tiny_videomae(), tmp_path / "ckpt")
    with pytest.raises(WeightsError, match="holds a videomae checkpoint, but model 'vjepa2-ssv2'"):
        vidcls.load_model("vjepa2-ssv2", weights=folder)


def test_missing_bias_is_named(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from vidcls.errors import WeightsError

    folder = save_hub_folder(tiny_videomae(), tmp_path / "ckpt")
    state = load_file(str(folder / "model.safetensors"))
    del state["videomae.encoder.layer.1.attention.attention.v_bias"]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(WeightsError, match=r"missing keys: blocks\.1\.attn\.v_bias"):
        vidcls.load_model("videomae", weights=folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "videomae"
