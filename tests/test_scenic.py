"""ViViT Models 1-4 against Scenic's own logits, loaded from Scenic checkpoints as a user does.

The fixtures (../shared/data/reference/vivit-scenic/) were made with Scenic's unmodified code:
one tiny model per variant with noise on every parameter, its published-format checkpoint, a
fixed input and Scenic's logits. Their README is the reference for everything checked here.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import msgpack
import numpy as np
import pytest
import torch

import vidcls
from vidcls.checkpoints import read_checkpoint
from vidcls.checkpoints.scenic import arch_config_from_scenic, tree_variant
from vidcls.errors import UsageError, WeightsError
from vidcls.models import build, set_fused_attention
from vidcls.registry import get_spec, package_labels
from vidcls.transforms import normalize

# shared/ lies beside the checkout (as for test_registry's label lists); a missing folder fails
# every test here by name rather than skipping them
FIXTURES = Path(__file__).resolve().parents[2] / "shared/data/reference/vivit-scenic"
TOL = {"atol": 1e-5, "rtol": 0}
# (fixture folder, --vivit-attention, reference logits file)
CASES = [
    ("spacetime", None, "logits"),
    ("factorized_encoder", None, "logits"),
    ("factorized_self_attention_block", None, "logits"),
    (
        "factorized_self_attention_block",
        "factorised-self-attention-time-space",
        "logits_time_space",
    ),
    ("factorized_dot_product_attention", "factorised-dot-product", "logits"),
]


def fixture_input(variant: str = "spacetime") -> torch.Tensor:
    """The fixtures' (B, T, H, W, C) input as vidcls's (B, T, C, H, W)."""
    return torch.from_numpy(np.load(FIXTURES / variant / "input.npy")).permute(0, 1, 4, 2, 3)


def reference(variant: str, name: str = "logits") -> torch.Tensor:
    return torch.from_numpy(np.load(FIXTURES / variant / f"{name}.npy"))


def bare_checkpoint(tmp_path: Path, variant: str, frames: int = 8) -> Path:
    """The checkpoint alone, with a config.json that gives the input shape and nothing of the
    attention: what a user has who saved only Scenic's input shape beside the file."""
    folder = tmp_path / variant
    folder.mkdir()
    shutil.copy(FIXTURES / variant / "checkpoint", folder / "checkpoint")
    meta = {"dataset_meta_data": {"input_shape": [-1, frames, 32, 32, 3]}}
    (folder / "config.json").write_text(json.dumps(meta))
    return folder / "checkpoint"


def load(path: Path, attention: str | None = None, name: str = "vivit") -> torch.nn.Module:
    loaded = vidcls.load_model(
        name, weights=path, precision="fp32", device="cpu", vivit_attention=attention
    )
    return loaded.model


@pytest.mark.parametrize("variant, attention, logits", CASES)
def test_logits_match_scenic(tmp_path: Path, variant: str, attention: str | None, logits: str):
    model = load(bare_checkpoint(tmp_path, variant), attention)
    with torch.no_grad():
        out = model(fixture_input(variant))
    torch.testing.assert_close(out, reference(variant, logits), **TOL)
    # the tolerance means something: the two inputs' logits differ by far more than it
    assert (out[0] - out[1]).abs().max() > 1e-2


def test_the_scenic_config_beside_the_file_names_the_model() -> None:
    # The fixture folders hold Scenic's config.json, whose attention_config says Model 4; the
    # folder itself is given, as a user may, and its `checkpoint` file is found in it.
    model = load(FIXTURES / "factorized_dot_product_attention")
    with torch.no_grad():
        out = model(fixture_input())
    torch.testing.assert_close(out, reference("factorized_dot_product_attention"), **TOL)


def test_model_4_needs_the_explicit_choice(tmp_path: Path) -> None:
    # Model 4 has Model 1's parameters (without CLS): unchosen, it loads as Model 1 with mean
    # pooling, which Scenic would compute differently.
    path = bare_checkpoint(tmp_path, "factorized_dot_product_attention")
    with torch.no_grad():
        out = load(path)(fixture_input())
    assert (out - reference("factorized_dot_product_attention")).abs().max() > 1e-3


def test_the_choice_must_fit_the_tree(tmp_path: Path) -> None:
    path = bare_checkpoint(tmp_path, "factorized_encoder")
    with pytest.raises(WeightsError, match="factorised-encoder parameter tree, but the chosen"):
        load(path, "factorised-dot-product")
    with pytest.raises(WeightsError, match="pools by the mean, but this tree has a CLS token"):
        load(FIXTURES / "spacetime" / "checkpoint", "factorised-dot-product")
    with pytest.raises(UsageError, match="unknown ViViT attention 'axial'"):
        load(path, "axial")
    with pytest.raises(UsageError, match="needs a ViViT model"):
        vidcls.load_model("timesformer", weights=path, vivit_attention="joint")


@pytest.mark.parametrize("variant, attention, logits", CASES)
def test_sdpa_and_eager_attention_agree(variant: str, attention: str | None, logits: str):
    model = load(FIXTURES / variant / "checkpoint", attention)
    video = fixture_input(variant)
    with torch.no_grad():
        fused = model(video)
        set_fused_attention(model, False)
        eager = model(video)
    assert all(not m.fused for m in model.modules() if hasattr(m, "fused"))
    torch.testing.assert_close(fused, eager, **TOL)


@pytest.mark.parametrize("variant", ["spacetime", "factorized_encoder"])
def test_tanh_gelu_and_layernorm_eps_matter(variant: str) -> None:
    # Exact GELU or PyTorch's default eps each move Scenic's logits past the tolerance
    # (README: 1.7e-4 and 4.5e-4 on Model 1), so parity proves both.
    path = FIXTURES / variant / "checkpoint"
    video, expected = fixture_input(variant), reference(variant)
    exact_gelu = load(path)
    for module in exact_gelu.modules():
        if isinstance(module, torch.nn.GELU):
            module.approximate = "none"
    default_eps = load(path)
    for module in default_eps.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = 1e-5
    with torch.no_grad():
        for changed in (exact_gelu, default_eps):
            assert (changed(video) - expected).abs().max() > 2e-5
        torch.testing.assert_close(load(path)(video), expected, **TOL)


def test_sizes_come_from_the_file_not_the_registry() -> None:
    # vivit-l-fe's registry config says L with 24 temporal layers; the file is tiny with 2.
    model = load(FIXTURES / "factorized_encoder" / "checkpoint", name="vivit-l-fe")
    assert len(model.spatial.blocks) == 2 and len(model.temporal.blocks) == 2
    assert model.head.weight.shape == (7, 48)
    state = read_checkpoint(FIXTURES / "factorized_encoder" / "checkpoint").state
    config = arch_config_from_scenic(state, get_spec("vivit-l-fe").arch_config)
    assert (config["depth"], config["temporal_depth"], config["heads"]) == (2, 2, 4)
    assert (config["num_frames"], config["image_size"], config["tubelet"]) == (8, 32, [2, 16, 16])


def test_model_1_through_scenic_equals_model_1_through_its_hub_names() -> None:
    # Scenic's Model 1 tree becomes exactly the keys the hub layout produces: one architecture.
    model = load(FIXTURES / "spacetime" / "checkpoint")
    tiny = {"hidden_size": 48, "depth": 2, "heads": 4, "mlp_dim": 96, "image_size": 32,
            "num_frames": 8, "tubelet": [2, 16, 16], "num_classes": 7}  # fmt: skip
    assert set(model.state_dict()) == set(build("vivit", tiny).state_dict())


# -- the file format ------------------------------------------------------------------------


def flax_array(array: np.ndarray, code: int = 1) -> msgpack.ExtType:
    """An ndarray as flax.serialization writes it."""
    payload = msgpack.packb([list(array.shape), array.dtype.name, array.tobytes()])
    return msgpack.ExtType(code, payload)


def write_flax(path: Path, state: dict) -> Path:
    path.write_bytes(msgpack.packb(state))
    return path


def test_flax_file_is_recognised_by_content(tmp_path: Path) -> None:
    kernel = np.arange(6, dtype=np.float32).reshape(2, 3)
    step = np.array(3, dtype=np.int32)
    state = {"params": {"dense": {"kernel": flax_array(kernel)}, "step": flax_array(step, 3)}}
    path = write_flax(tmp_path / "checkpoint_100", state)
    read = read_checkpoint(path).state
    assert set(read) == {"dense/kernel", "step"}
    assert torch.equal(read["dense/kernel"], torch.from_numpy(kernel))
    # a file without suffix that is no msgpack map is refused by name, not guessed at
    text = tmp_path / "checkpoint"
    text.write_text('model_checkpoint_path: "model.ckpt-100"\n')
    with pytest.raises(WeightsError, match="unknown weights format"):
        read_checkpoint(text)


def test_optimizer_target_params_and_pre_linen_roots(tmp_path: Path) -> None:
    kernel = flax_array(np.ones((2, 2), np.float32))
    moments = flax_array(np.zeros((2, 2), np.float32))
    roots = {
        "optax": {"params": {"w": kernel}, "opt_state": {"mu": {"w": moments}}},
        "flax.optim": {
            "optimizer": {"target": {"w": kernel}, "state": {"param_states": {"w": moments}}},
            "global_step": 5,
            "rng": flax_array(np.zeros(2, np.uint32)),
        },
        "pre-linen": {"optimizer": {"target": {"params": {"w": kernel}}}},
    }
    for name, state in roots.items():
        read = read_checkpoint(write_flax(tmp_path / name, state)).state
        assert list(read) == ["w"], name
    with pytest.raises(
        WeightsError, match="no `params` or `optimizer.target`; top-level keys: a, b"
    ):
        read_checkpoint(write_flax(tmp_path / "other", {"a": 1, "b": {"c": kernel}}))


def test_chunked_arrays_are_joined(tmp_path: Path) -> None:
    # Flax splits arrays over 2**30 bytes into flat chunks; the same map with small chunks.
    full = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    flat = full.reshape(-1)
    chunked = {
        "__msgpack_chunked_array__": True,
        "shape": {"0": 2, "1": 3, "2": 4},
        "chunks": {str(i): flax_array(flat[i * 10 : (i + 1) * 10]) for i in range(3)},
    }
    read = read_checkpoint(write_flax(tmp_path / "ckpt", {"params": {"big": chunked}})).state
    assert torch.equal(read["big"], torch.from_numpy(full))


def test_bfloat16_leaves_are_read(tmp_path: Path) -> None:
    values = torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16)
    raw = values.view(torch.int16).numpy().tobytes()
    ext = msgpack.ExtType(1, msgpack.packb([[3], "bfloat16", raw]))
    read = read_checkpoint(write_flax(tmp_path / "ckpt", {"params": {"x": ext}})).state
    assert torch.equal(read["x"], values)


def test_a_tree_of_no_variant_lists_what_it_found(tmp_path: Path) -> None:
    state = msgpack.unpackb((FIXTURES / "spacetime" / "checkpoint").read_bytes())
    target = state["optimizer"]["target"]
    block = target["Transformer"]["encoderblock_0"]
    block["Attention_0"] = block.pop("MultiHeadDotProductAttention_0")
    path = write_flax(tmp_path / "checkpoint", state)
    with pytest.raises(WeightsError, match="no ViViT variant.*found top-level Transformer, cls"):
        load(path)
    with pytest.raises(KeyError, match="first-block modules Attention_0, LayerNorm_0"):
        tree_variant(read_checkpoint(path).state)


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    data = (FIXTURES / "spacetime" / "checkpoint").read_bytes()
    path = tmp_path / "checkpoint"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=f"{path}: not a valid Flax msgpack checkpoint"):
        load(path)


# -- the registry ---------------------------------------------------------------------------


PUBLISHED = {
    "vivit-fe": ("kinetics400", 3, "kinetics_400/vivit_base_16x2_fe"),
    "vivit-l-fe": ("kinetics400", 3, "kinetics_400/vivit_large_16x2_fe"),
    "vivit-l-fe-k600": ("kinetics600", 3, "kinetics_600/vivit_large_16x2_fe"),
    "vivit-l-fe-epic": ("epic-100", 1, "epic_kitchens/vivit_large_16x2_fe"),
    "vivit-scenic": ("kinetics400", 3, "kinetics_400/vivit_base_16x2_unfactorized"),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_checkpoints_carry_scenics_protocol(name: str) -> None:
    labels, crops, where = PUBLISHED[name]
    spec = get_spec(name)
    assert spec.url == f"https://storage.googleapis.com/scenic-bucket/vivit/{where}/checkpoint"
    assert spec.sha256 == {}  # not pinned: nothing is checked until someone pins it
    assert (spec.labels, spec.crops, spec.average) == (labels, crops, "logits")
    assert (spec.num_frames, spec.short_side, spec.crop) == (32, 256, 224)
    # Scenic's zero-centring: uint8 p -> p * 2/255 - 1, all of [0, 255] onto [-1, 1]
    pixels = torch.arange(256, dtype=torch.uint8).repeat(3, 1).t().reshape(1, 16, 16, 3)
    x = normalize(pixels, spec)
    torch.testing.assert_close(x, pixels.movedim(-1, -3).float() * 2 / 255 - 1)
    assert (x.min().item(), x.max().item()) == (-1.0, 1.0)


def test_epic_kitchens_labels_are_nouns_then_verbs() -> None:
    names = package_labels("epic-100")
    assert len(names) == 397 == len(set(names))
    nouns, verbs = names[:300], names[300:]
    assert all(n.endswith(" (noun)") for n in nouns) and all(v.endswith(" (verb)") for v in verbs)
    # EPIC_100 class ids: noun 0 tap, 299 extract:vanilla; verb 0 take, 96 unfreeze
    assert (nouns[0], nouns[299]) == ("tap (noun)", "extract:vanilla (noun)")
    assert (verbs[0], verbs[96]) == ("take (verb)", "unfreeze (verb)")


# -- the command line -----------------------------------------------------------------------


def tiny_registry(monkeypatch, **changes) -> None:
    """A registry entry `vivit-tiny` with the fixtures' protocol (8 frames of 32 px), so a real
    video runs through `vidcls predict --weights CHECKPOINT` end to end."""
    import vidcls.registry as registry_module

    tiny = dataclasses.replace(
        get_spec("vivit"), name="vivit-tiny", aliases=(), num_frames=8, frame_stride=1,
        short_side=32, crop=32, crops=1, **changes,
    )  # fmt: skip
    specs = {**registry_module.registry(), "vivit-tiny": tiny}
    monkeypatch.setattr(registry_module, "registry", lambda: specs)


def test_cli_vivit_attention_reaches_the_model(tmp_path: Path, monkeypatch) -> None:
    # A registry entry with the fixtures' protocol (8 frames of 32 px), so a real video runs
    # through `vidcls predict --weights CHECKPOINT --vivit-attention ...` end to end.
    from typer.testing import CliRunner

    from vidcls.cli import app
    from vidcls_dev.media import make_video

    tiny_registry(monkeypatch)
    video = str(make_video(tmp_path / "a.mp4", n_frames=20, fps=25, size=(48, 32)))
    path = str(bare_checkpoint(tmp_path, "factorized_dot_product_attention"))
    base = [
        "predict",
        video,
        "-m",
        "vivit-tiny",
        "--weights",
        path,
        "--json",
        "--precision",
        "fp32",
    ]

    def top(*extra: str) -> list[dict]:
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["top_k"]

    model_4 = top("--vivit-attention", "factorised-dot-product")
    assert model_4 != top()  # the same file unchosen is another model
    api = vidcls.predict(
        video, model="vivit-tiny", weights=path, precision="fp32",
        vivit_attention="factorised-dot-product",
    )  # fmt: skip
    assert api["top_k"] == model_4
    result = CliRunner().invoke(app, [*base, "--vivit-attention", "axial"])
    assert result.exit_code != 0 and "unknown ViViT attention 'axial'" in result.output


# -- several heads (EPIC-KITCHENS: nouns, then verbs) ----------------------------------------


@pytest.fixture
def two_heads(tmp_path: Path, monkeypatch) -> dict:
    """The 7-class Model 2 fixture read as two heads, `a` (classes 0-3) and `b` (4-6)."""
    from vidcls_dev.media import make_video

    tiny_registry(monkeypatch, heads=(("a", 4), ("b", 3)))
    video = make_video(tmp_path / "a.mp4", n_frames=75, fps=25, size=(48, 32))
    path = FIXTURES / "factorized_encoder" / "checkpoint"
    return {"video": str(video), "weights": str(path), "tmp": tmp_path}


def heads_cli(two_heads: dict, *args: str):
    from typer.testing import CliRunner

    from vidcls.cli import app

    base = [two_heads["video"], "-m", "vivit-tiny", "--weights", two_heads["weights"]]
    result = CliRunner().invoke(app, [args[0], *base, "--precision", "fp32", *args[1:]])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_each_head_has_its_own_softmax_and_top_k(two_heads: dict) -> None:
    record = json.loads(heads_cli(two_heads, "predict", "--json", "--top-k", "4"))
    top = record["top_k"]
    assert [t["head"] for t in top] == ["a"] * 4 + ["b"] * 3  # k is capped at a head's size
    assert {t["index"] for t in top if t["head"] == "a"} == {0, 1, 2, 3}
    assert {t["index"] for t in top if t["head"] == "b"} == {4, 5, 6}
    for head in "ab":  # a softmax per head: each head's scores sum to 1
        assert sum(t["score"] for t in top if t["head"] == head) == pytest.approx(1, abs=1e-5)
    # the engine's scores are those two softmaxes of the model's logits
    from vidcls.config import FileOptions
    from vidcls.core import answer_for
    from vidcls.engine import Classifier

    loaded = vidcls.load_model("vivit-tiny", weights=two_heads["weights"], precision="fp32")
    views = torch.randint(0, 256, (3, 8, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        logits = loaded.model(normalize(views, loaded.spec))
    expected = torch.cat([logits[:, :4].softmax(-1), logits[:, 4:].softmax(-1)], dim=1)
    answer = answer_for(loaded.labels, FileOptions(), loaded.spec)
    scores = Classifier(loaded, 1, answer=answer).probabilities(views).numpy()
    torch.testing.assert_close(torch.from_numpy(answer.probabilities(scores)), expected)


def test_classes_renormalise_within_each_head(two_heads: dict) -> None:
    names = package_labels("kinetics400")  # not 7: the names are LABEL_0..6
    assert len(names) != 7
    out = heads_cli(two_heads, "predict", "--json", "--classes", "LABEL_1,LABEL_2,LABEL_5")
    top = json.loads(out)["top_k"]
    assert sorted((t["head"], t["index"]) for t in top) == [("a", 1), ("a", 2), ("b", 5)]
    assert [t["score"] for t in top if t["head"] == "b"] == [1.0]
    assert sum(t["score"] for t in top if t["head"] == "a") == pytest.approx(1, abs=1e-5)


def test_segment_gives_a_timeline_per_head(two_heads: dict) -> None:
    record = json.loads(heads_cli(two_heads, "segment", "--json", "--hop", "0.32"))
    segments = record["segments"]
    assert {s["head"] for s in segments} == {"a", "b"}
    for head, classes in (("a", range(4)), ("b", range(4, 7))):
        own = [s for s in segments if s["head"] == head]
        assert all(s["index"] in classes for s in own)
        # each head's segments tile the range on their own
        assert own[0]["start"] == record["start"] and own[-1]["end"] == record["end"]
        assert all(x["end"] == y["start"] for x, y in zip(own, own[1:], strict=False))
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)
    for window in record["windows"]:
        assert {t["head"] for t in window["top_k"]} == {"a", "b"}


def test_every_format_shows_both_heads(two_heads: dict) -> None:
    rows = heads_cli(two_heads, "predict", "--format", "csv", "--top-k", "2").splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["1", "2", "1", "2"]  # ranked per head
    assert {int(r.split(",")[3]) // 4 for r in rows[1:]} == {0, 1}  # both heads' classes
    segments = json.loads(heads_cli(two_heads, "segment", "--json"))["segments"]
    srt = heads_cli(two_heads, "segment", "--format", "srt")
    assert srt.count(" --> ") == len(segments)
    jsonl = heads_cli(two_heads, "segment", "--format", "jsonl").splitlines()
    assert {json.loads(line).get("head") for line in jsonl} >= {"a", "b"}
    table = heads_cli(two_heads, "predict", "--format", "table", "--top-k", "2")
    assert table.count("LABEL_") == 4 and "head" in table
    timeline = heads_cli(two_heads, "segment", "--format", "table")
    assert timeline.count("■") >= 2  # a legend per head's timeline


def test_registry_heads_must_add_up() -> None:
    from vidcls.errors import RegistryError
    from vidcls.registry import _registry_text, parse_registry

    text = _registry_text().replace("heads = { noun = 300, verb = 97 }", "heads = { noun = 300 }")
    with pytest.raises(RegistryError, match="'heads' must give each head's class count"):
        parse_registry(text)
    assert get_spec("vivit-l-fe-epic").heads == (("noun", 300), ("verb", 97))
    assert get_spec("vivit-l-fe-epic").as_dict()["heads"] == {"noun": 300, "verb": 97}
    assert "heads" not in get_spec("vivit").as_dict()
