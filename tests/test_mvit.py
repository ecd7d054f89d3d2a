"""MViT v1 and v2 against torchvision's logits on the fixtures, loaded as a user loads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidcls.models import build, set_fused_attention
from vidcls.models.mvit import block_settings

FIXTURES = Path(__file__).resolve().parents[2] / "shared/data/reference/mvit-torchvision"
if not FIXTURES.is_dir():  # a worktree beside /work/shared, or the main checkout
    FIXTURES = Path("/work/shared/data/reference/mvit-torchvision")

TINY = {
    "embed_dim": 4, "heads": 1, "depths": [1, 2, 2, 2], "kernel": [3, 3, 3],
    "q_stride": [1, 2, 2], "kv_stride": [1, 8, 8], "patch_kernel": [3, 7, 7],
    "patch_stride": [2, 4, 4], "image_size": 64, "num_frames": 8, "num_classes": 7,
}  # fmt: skip


def video(variant: str, name: str = "input") -> torch.Tensor:
    """A fixture input in vidcls's (batch, frames, channels, height, width) layout."""
    return torch.from_numpy(np.load(FIXTURES / variant / f"{name}.npy")).permute(0, 2, 1, 3, 4)


@pytest.mark.parametrize("version", [1, 2])
def test_sdpa_and_eager_attention_agree(version: int) -> None:
    torch.manual_seed(0)
    net = build("mvit", dict(TINY, version=version)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # zero-initialised tables would hide the bias
        x = torch.randn(2, 8, 3, 64, 64)
        fused = net(x)
        set_fused_attention(net, False)
        eager = net(x)
    assert all(not m.fused for m in net.modules() if hasattr(m, "fused"))
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=0)
    assert (fused[0] - fused[1]).abs().max() > 1e-3


@pytest.mark.parametrize(("version", "layout"), [(1, "mvit_v1_b"), (2, "mvit_v2_s")])
def test_full_size_layout_matches_torchvision_keys(version: int, layout: str) -> None:
    # the published files load strictly into the full builders: every key and shape must match
    from vidcls.checkpoints.torchvision import from_torchvision_mvit

    full = dict(TINY, version=version, embed_dim=96, depths=[1, 2, 11, 2], image_size=224,
                num_frames=16, num_classes=400)  # fmt: skip
    rows = (FIXTURES / f"v{version}" / f"keys_full_{layout}.txt").read_text().splitlines()
    shapes = {k: tuple(int(n) for n in s.strip("()").split(",") if n.strip())
              for k, s, *_ in (r.split("\t") for r in rows if r)}  # fmt: skip
    renamed = from_torchvision_mvit(dict.fromkeys(shapes, torch.empty(0)))
    theirs = dict(zip(renamed, shapes.values(), strict=True))
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in build("mvit", full).state_dict().items()}
    assert ours == theirs
    assert len(block_settings(full)) == 16
