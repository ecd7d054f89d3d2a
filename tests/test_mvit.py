"""MViT v1 and v2 against torchvision's logits on the fixtures, loaded as a user loads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from einops import rearrange

from vidcls.models import build, set_fused_attention
from vidcls.models.mvit import block_settings
from vidcls_dev.mvit import TINY, fixture_input, fixture_logits, fixtures

FIXTURES = fixtures()


def video(name: str = "input") -> torch.Tensor:
    return torch.from_numpy(fixture_input(name))


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


def load_fixture(variant: str) -> torch.nn.Module:
    """The fixture's torchvision .pth through the user's path: `load_model(..., weights=...)`."""
    import vidcls

    name = "mvit" if variant == "v2" else "mvit-v1"
    loaded = vidcls.load_model(
        name, weights=FIXTURES / variant / "model.pth", device="cpu", precision="fp32"
    )
    return loaded.model


def logits(model: torch.nn.Module, variant: str, name: str = "input") -> torch.Tensor:
    with torch.no_grad():
        return model(video(name))


def reference(variant: str, name: str = "logits") -> torch.Tensor:
    return torch.from_numpy(fixture_logits(variant, name))


@pytest.mark.parametrize("variant", ["v1", "v2"])
@pytest.mark.parametrize("fused", [True, False])
def test_logits_match_torchvision(variant: str, fused: bool) -> None:
    model = set_fused_attention(load_fixture(variant), fused)
    expected = reference(variant)
    torch.testing.assert_close(logits(model, variant), expected, atol=1e-5, rtol=0)
    # the tolerance means something: the two inputs' logits differ by far more than it
    assert (expected[0] - expected[1]).abs().max() > 0.1
    # 7 frames of 61×63 give the same token grid through the stem's padding arithmetic
    torch.testing.assert_close(
        logits(model, variant, "input_b"), reference(variant, "logits_b"), atol=1e-5, rtol=0
    )


def test_sizes_are_read_from_the_checkpoint() -> None:
    from vidcls.checkpoints import prepare, read_checkpoint
    from vidcls.registry import get_spec

    spec = get_spec("mvit")
    for variant, version in (("v1", 1), ("v2", 2)):
        checkpoint = read_checkpoint(FIXTURES / variant / "model.pth")
        arch, config, _ = prepare(checkpoint, spec.name, spec.arch, spec.arch_config)
        assert arch == "mvit"
        assert config == dict(spec.arch_config, **TINY, version=version)


def test_other_token_grids_are_refused() -> None:
    model = load_fixture("v2")
    with pytest.raises(ValueError, match=r"built for a 4×16×16 token grid.*gives 8×16×16"):
        model(torch.randn(1, 16, 3, 64, 64))


def moved(model: torch.nn.Module, variant: str) -> float:
    """How far the logits move from torchvision's once a feature is removed."""
    return (logits(model, variant) - reference(variant)).abs().max().item()


def test_residual_pooling_is_needed() -> None:
    from vidcls.models.mvit import MultiscaleAttention

    model = load_fixture("v2")
    for module in model.modules():
        if isinstance(module, MultiscaleAttention):
            module.residual_pool = False
    assert moved(model, "v2") > 0.1  # torchvision without it: 0.81


def test_relative_positions_are_needed() -> None:
    from vidcls.models.mvit import MultiscaleAttention

    model = load_fixture("v2")
    for module in model.modules():
        if isinstance(module, MultiscaleAttention):
            module.rel_pos = False
    assert moved(model, "v2") > 1e-2  # torchvision without them: 0.062


def test_relative_positions_need_the_stride_ratios(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidcls.models import mvit

    def unscaled(n_q: int, n_k: int, device: torch.device) -> torch.Tensor:
        i = torch.arange(n_q, device=device)[:, None]
        return i - torch.arange(n_k, device=device)[None, :] + n_k - 1

    model = load_fixture("v2")
    monkeypatch.setattr(mvit, "_rel_rows", unscaled)
    assert moved(model, "v2") > 1e-2  # torchvision without them: 0.027


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_pooling_norms_the_class_token(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from vidcls.models.mvit import Pool

    pool = Pool.forward

    def cls_unnormed(self: Pool, x: torch.Tensor, grid: tuple[int, int, int]):  # noqa: ANN202
        out, out_grid = pool(self, x, grid)
        return torch.cat([x[:, :, :1], out[:, :, 1:]], dim=2), out_grid

    model = load_fixture(variant)
    monkeypatch.setattr(Pool, "forward", cls_unnormed)
    assert moved(model, variant) > 1e-2  # torchvision: 0.085 (v1), 0.24 (v2)


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_pooling_keeps_the_class_token_out_of_the_conv(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the class token split off and put back unpooled; pooling it as if it were the first
    # patch (a shifted grid) must show
    from vidcls.models.mvit import Pool

    def cls_in_conv(self: Pool, x: torch.Tensor, grid: tuple[int, int, int]):  # noqa: ANN202
        t, h, w = grid
        shifted = torch.cat([x[:, :, :1], x[:, :, 1:-1]], dim=2)
        cube = rearrange(shifted, "b n (t y x) d -> (b n) d t y x", t=t, y=h, x=w)
        pooled = self.pool(cube)
        out_grid = tuple(pooled.shape[-3:])
        pooled = rearrange(pooled, "(b n) d t y x -> b n (t y x) d", n=x.shape[1])
        return self.norm(torch.cat([x[:, :, :1], pooled], dim=2)), out_grid

    model = load_fixture(variant)
    monkeypatch.setattr(Pool, "forward", cls_in_conv)
    assert moved(model, variant) > 1e-2


def test_export_round_trips_through_the_fixture_keys() -> None:
    from vidcls.checkpoints.torchvision import from_torchvision_mvit, to_torchvision_mvit

    for variant in ("v1", "v2"):
        state = torch.load(FIXTURES / variant / "model.pth", weights_only=True)
        assert list(to_torchvision_mvit(from_torchvision_mvit(state))) == list(state)


def test_cli_predicts_with_a_torchvision_pth(tmp_path: Path) -> None:
    """`vidcls predict --model mvit --weights model.pth`: the published grid (16 × 224²) with
    narrow random weights, through decoding, one centre crop and the strict loader."""
    from typer.testing import CliRunner

    from vidcls.checkpoints.torchvision import to_torchvision_mvit
    from vidcls.cli import app
    from vidcls.registry import get_spec, package_labels
    from vidcls_dev.media import make_video

    torch.manual_seed(0)
    config = dict(get_spec("mvit").arch_config, embed_dim=4)
    model = build("mvit", config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    state = to_torchvision_mvit(model.state_dict())
    assert "pos_encoding.class_token" in state and "head.1.weight" in state
    torch.save(state, tmp_path / "model.pth")
    clip = make_video(tmp_path / "a.mp4", n_frames=70, fps=30, size=(320, 240))
    args = ["predict", str(clip), "--model", "mvit", "--weights", str(tmp_path / "model.pth")]
    result = CliRunner().invoke(app, [*args, "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["model"] == "mvit" and record["crops"] == 1 and record["num_windows"] >= 1
    assert {t["label"] for t in record["top_k"]} <= set(package_labels("kinetics400"))
    # another frame count is refused before decoding, in one line, not mid-batch
    result = CliRunner().invoke(app, [*args, "--frames", "8", "--device", "cpu"])
    assert result.exit_code == 1
    assert "takes 16 frames of 224×224, but 'mvit' feeds it 8 of 224×224" in result.output
    assert "internal error" not in result.output


@pytest.mark.parametrize(("name", "gmac"), [("mvit", 64.224), ("mvit-v1", 70.599)])
def test_full_size_cost_matches_torchvision(name: str, gmac: float) -> None:
    # torchvision publishes each weight's multiply-adds per 16×224² view (`_ops`); counting on
    # the meta device costs no compute
    from torch.utils.flop_counter import FlopCounterMode

    from vidcls.registry import get_spec

    spec = get_spec(name)
    with torch.device("meta"):
        model = build(spec.arch, spec.arch_config).eval()
        view = torch.empty(1, spec.num_frames, 3, spec.crop, spec.crop)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(view)
    assert counter.get_total_flops() / 2e9 == pytest.approx(gmac, abs=1e-3)


@pytest.mark.parametrize("name", ["mvit", "mvit-v1"])
def test_registry_protocol_is_torchvisions(name: str) -> None:
    from vidcls.registry import get_spec, package_labels

    spec = get_spec(name)
    assert (spec.num_frames, spec.frame_stride, spec.reference_fps) == (16, 4, 30.0)  # 7.5 fps
    assert (spec.short_side, spec.crop, spec.crops) == (256, 224, 1)  # one centre crop
    assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3 and spec.average == "softmax"
    assert spec.url.startswith("https://download.pytorch.org/models/mvit_v")
    ((file, prefix),) = spec.sha256.items()
    assert spec.url.endswith("/" + file) and file.endswith(f"-{prefix}.pth")
    assert spec.num_classes == 400 and spec.labels == "kinetics400"
    # the published heads' class order is the package's Kinetics-400 list
    torchvision = (FIXTURES / "kinetics400_categories.txt").read_text().splitlines()
    assert [n for n in torchvision if n] == package_labels("kinetics400")
