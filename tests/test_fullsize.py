"""One full-size forward per architecture: the registry's real shapes load strictly and match."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VivitConfig,
    VivitForVideoClassification,
    VJEPA2Config,
    VJEPA2ForVideoClassification,
)

import vidcls
from vidcls_dev.hf_models import hf_logits, randomize, save_hub_folder

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["timesformer", "vivit", "videomae", "vjepa2-ssv2"])
def test_full_size_model_matches_transformers(tmp_path: Path, name: str) -> None:
    spec = vidcls.get_spec(name)
    arch = spec.arch_config
    if spec.arch == "timesformer":
        config = TimesformerConfig(
            num_frames=arch["num_frames"], image_size=arch["image_size"], num_labels=400
        )  # noqa: E501
        hf = TimesformerForVideoClassification(config)
    elif spec.arch == "videomae":
        hf = VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400))
    elif spec.arch == "vjepa2":
        config = VJEPA2Config(
            crop_size=arch["image_size"], frames_per_clip=arch["num_frames"], num_labels=174,
            pred_hidden_size=64, pred_num_hidden_layers=1, pred_num_attention_heads=4,
        )  # fmt: skip
        hf = VJEPA2ForVideoClassification(config)
    else:
        hf = VivitForVideoClassification(VivitConfig(num_labels=400))
    randomize(hf, scale=0.02)
    folder = save_hub_folder(hf, tmp_path / name)
    model, *_ = vidcls.load_model(name, weights=folder, precision="fp32")  # auto may be bf16
    # V-JEPA 2's self-supervised predictor is not part of the classifier
    hf_params = sum(p.numel() for n, p in hf.named_parameters() if "predictor" not in n)
    assert sum(p.numel() for p in model.parameters()) == hf_params
    video = torch.randn(1, spec.num_frames, 3, spec.crop, spec.crop)
    with torch.no_grad():
        logits = model(video)
    torch.testing.assert_close(logits, hf_logits(hf, video), atol=1e-4, rtol=0)
