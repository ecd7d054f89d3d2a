"""The model code against transformers' implementations, on random weights."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidcls.checkpoints.hf import arch_config_from_hf, from_hf_timesformer, from_hf_vivit
from vidcls.models import TimeSformer, build, set_fused_attention
from vidcls.models.layers import SHORT_SEQUENCE, attend
from vidcls_dev.hf_models import hf_logits, tiny_timesformer, tiny_vivit


def ours_from(hf: torch.nn.Module) -> torch.nn.Module:
    arch, config = arch_config_from_hf(hf.config.to_dict())
    model = build(arch, config).eval()
    convert = from_hf_timesformer if arch == "timesformer" else from_hf_vivit
    model.load_state_dict(convert(hf.state_dict()), strict=True)
    return model


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
def test_timesformer_matches_transformers(attention_type: str) -> None:
    hf = tiny_timesformer(attention_type=attention_type)
    ours = ours_from(hf)
    video = torch.randn(3, 4, 3, 64, 64)
    with torch.no_grad():
        logits = ours(video)
    reference = hf_logits(hf, video)
    assert logits.shape == (3, 7)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=0)
    # the tolerance means something: the batch items differ by far more than it
    assert (reference[0] - reference[1]).abs().max() > 1e-2


def test_space_only_averages_frames_like_the_original() -> None:
    # transformers' space_only returns one logit row per frame (it never averages over time);
    # the original averages the frames' tokens before the final norm. With identical frames
    # the two must agree, and with different frames ours must not depend on frame order.
    hf = tiny_timesformer(attention_type="space_only")
    ours = ours_from(hf)
    frame = torch.randn(2, 1, 3, 64, 64)
    video = frame.expand(2, 4, 3, 64, 64).contiguous()
    with torch.no_grad():
        logits = ours(video)
        per_frame = hf(pixel_values=video).logits.reshape(2, 4, -1)
    torch.testing.assert_close(logits, per_frame[:, 0], atol=1e-5, rtol=0)
    varied = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        a, b = ours(varied), ours(varied.flip(1))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_timesformer_other_frame_counts_interpolate_time_embedding() -> None:
    # transformers silently mis-groups tokens when T differs from its config; the original
    # resizes time_embed by nearest interpolation. Build the reference with T=6 and the
    # nearest-resized table, and compare with ours given the 4-frame checkpoint.
    hf4 = tiny_timesformer(num_frames=4)
    ours = ours_from(hf4)
    hf6 = tiny_timesformer(num_frames=6)
    state = hf4.state_dict()
    time = state["timesformer.embeddings.time_embeddings"].transpose(1, 2)
    resized = torch.nn.functional.interpolate(time, size=6, mode="nearest").transpose(1, 2)
    state["timesformer.embeddings.time_embeddings"] = resized
    hf6.load_state_dict(state)
    video = torch.randn(2, 6, 3, 64, 64)
    with torch.no_grad():
        logits = ours(video)
    torch.testing.assert_close(logits, hf_logits(hf6.eval(), video), atol=1e-5, rtol=0)


def test_timesformer_other_resolutions_interpolate_positions() -> None:
    hf = tiny_timesformer(image_size=64)
    ours = ours_from(hf)
    video = torch.randn(2, 4, 3, 96, 128)  # 6×8 patches from a 4×4 position grid
    with torch.no_grad():
        logits = ours(video)
    torch.testing.assert_close(logits, hf_logits(hf, video), atol=1e-5, rtol=0)


def test_vivit_matches_transformers() -> None:
    hf = tiny_vivit()
    ours = ours_from(hf)
    video = torch.randn(3, 4, 3, 64, 64)
    with torch.no_grad():
        logits = ours(video)
    torch.testing.assert_close(logits, hf_logits(hf, video), atol=1e-5, rtol=0)


def test_vivit_rejects_other_input_sizes() -> None:
    ours = ours_from(tiny_vivit())
    with pytest.raises(ValueError, match="takes 4 frames of 64×64, got 6 of 64×64"):
        ours(torch.randn(1, 6, 3, 64, 64))


@pytest.mark.parametrize(
    "model",
    [
        lambda: ours_from(tiny_timesformer()),
        lambda: ours_from(tiny_timesformer(attention_type="joint_space_time")),
        lambda: ours_from(tiny_timesformer(attention_type="space_only")),
        lambda: ours_from(tiny_vivit()),
    ],
)
def test_sdpa_and_eager_attention_agree(model) -> None:
    net = model()
    video = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        fused = net(video)
        set_fused_attention(net, False)
        eager = net(video)
    assert all(not m.fused for m in net.modules() if hasattr(m, "fused"))
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=0)


def test_bf16_weights_take_float_input() -> None:
    net = ours_from(tiny_timesformer()).to(torch.bfloat16)
    video = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        logits = net(video)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_constructor_checks_shapes() -> None:
    with pytest.raises(AssertionError, match="multiple of the patch size"):
        TimeSformer(num_classes=3, image_size=100, patch_size=16)
    with pytest.raises(AssertionError, match="unknown attention type"):
        TimeSformer(num_classes=3, attention_type="axial")


def test_short_reduced_precision_attention_on_cpu_is_the_product_and_stays_close() -> None:
    """TimeSformer's temporal attention (8 tokens) in bf16 on a CPU runs the plain product,
    faster there than CPU flash attention; it stays as close to fp32 as bf16 allows."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(96, 4, SHORT_SEQUENCE, 32, generator=gen) for _ in range(3))
    half = [t.bfloat16() for t in (q, k, v)]
    exact = F.scaled_dot_product_attention(*(t.float() for t in half))
    fused = attend(*half, fused=True)
    assert torch.equal(fused, attend(*half, fused=False))  # the product ran, not the kernel
    # the product rounds the weights to bf16 before multiplying v: about twice the kernel's
    # error (which keeps them in fp32), a few units of bf16's 2^-8 on outputs of magnitude ~1
    error = (fused.float() - exact).abs().max().item()
    kernel = (F.scaled_dot_product_attention(*half).float() - exact).abs().max().item()
    assert error < 3 * kernel and error < 6 * 2**-8
    longer = [torch.randn(2, 4, SHORT_SEQUENCE + 1, 32, generator=gen).bfloat16()] * 3
    assert torch.equal(attend(*longer, fused=True), F.scaled_dot_product_attention(*longer))
    # fp32 always takes the kernel
    kernel32 = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(attend(q, k, v, fused=True), kernel32, atol=0, rtol=0)


def test_cpu_mlp_runs_gelu_as_the_first_linears_post_op() -> None:
    """In CPU inference the MLP's first linear and its GELU are one oneDNN call; in bf16 it stays
    as close to the fp32 MLP as the separate calls do (it rounds to bf16 once, not twice)."""
    from vidcls.models import layers, onednn, pack_linears

    assert onednn.AVAILABLE  # torch still has the fused call: the speed is there
    gen = torch.Generator().manual_seed(0)
    mlp = layers.Mlp(64, 256)
    with torch.no_grad():
        for p in mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    x = torch.randn(2, 10, 64, generator=gen)
    with torch.inference_mode():
        exact = copy.deepcopy(mlp).double()(x.double()).float()
        torch.testing.assert_close(mlp(x), exact, atol=1e-5, rtol=0)  # fp32 fuses too
        for packed in (False, True):
            half = copy.deepcopy(mlp).bfloat16()
            if packed:
                pack_linears(half)
            fused = half(x.bfloat16()).float()
            half.fuse = False
            separate = half(x.bfloat16()).float()
            assert not torch.equal(fused, separate)  # the fused call did run
            scale = exact.abs().max().item()
            assert (fused - exact).abs().max().item() <= 0.03 * scale
            assert (fused - exact).abs().max() <= 1.5 * (separate - exact).abs().max()
    with torch.enable_grad():  # training takes the separate calls: the fused one has no gradient
        assert not onednn.usable(x.bfloat16())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_linear_gives_the_plain_product(dtype: torch.dtype) -> None:
    """A layer turned into PackedLinear multiplies by its packed copy in CPU inference, with the
    products of F.linear up to rounding, for any input layout, with and without a bias."""
    from vidcls.models import onednn, pack_linears

    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(48, 96), nn.Linear(96, 40, bias=False)).to(dtype)
    plain = copy.deepcopy(net)
    keys = list(net.state_dict())
    pack_linears(net)
    assert all(type(m) is onednn.PackedLinear for m in net)
    assert list(net.state_dict()) == keys  # the published names stay
    tolerance = 1e-5 if dtype == torch.float32 else 0.02
    inputs = [
        torch.randn(5, 48, generator=gen),
        torch.randn(2, 3, 7, 48, generator=gen),
        torch.randn(3, 20, 48, generator=gen)[:, ::2],  # not contiguous
        torch.randn(48, 6, generator=gen).t(),
    ]
    with torch.inference_mode():
        for x in inputs:
            x = x.to(dtype)
            first = net[0]
            out, reference = first(x), plain[0](x)
            assert out.shape == reference.shape and out.dtype == dtype
            scale = reference.abs().max().item()
            assert (out - reference).abs().max().item() <= tolerance * scale
            out, reference = net(x), plain(x)
            assert (out - reference).abs().max().item() <= 2 * tolerance * scale
    assert all(m._packed is not None for m in net)  # the packed call did run


def test_packed_linear_follows_its_weight_and_keeps_training_and_pickling() -> None:
    from vidcls.models import pack_linears

    gen = torch.Generator().manual_seed(0)
    layer = pack_linears(nn.Sequential(nn.Linear(16, 8)))[0]
    x = torch.randn(4, 16, generator=gen)
    with torch.inference_mode():
        before = layer(x)
    with torch.no_grad():
        layer.weight.mul_(2)  # in place: the packed copy must follow
        layer.bias.zero_()
    with torch.inference_mode():
        after = layer(x)
    torch.testing.assert_close(after, F.linear(x, layer.weight, layer.bias).detach())
    assert not torch.allclose(after, before)
    layer(x).sum().backward()  # with gradients: the plain call, which has them
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    clone, deep = pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)
    with torch.inference_mode():
        torch.testing.assert_close(clone(x), after)
        torch.testing.assert_close(deep(x), after)
        assert layer.bfloat16()(x.bfloat16()).dtype == torch.bfloat16  # repacked for bf16
