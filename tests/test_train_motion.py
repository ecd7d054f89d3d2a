"""vidcls_dev.train_motion, the recipe behind the bundled motion-tiny: it still runs end to end;
and vidcls_dev.eval_motion's sweep, which measures the model on views rendered the same way.

The shipped weights are checked by test_motion.py; these runs are a few steps long, so they prove
the script (rendering, real views, saving in the hub layout, the registry hash) and not the
model. A recipe that rots unnoticed can no longer reproduce the weights it claims to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vidcls
from vidcls.config import FileOptions as Options
from vidcls.registry import get_spec
from vidcls.windows import open_windows
from vidcls_dev import eval_motion as em
from vidcls_dev import motion as mv
from vidcls_dev import train_motion as tm

ROOT = Path(__file__).resolve().parents[1]


def test_real_views_are_what_the_pipeline_feeds_the_model(tmp_path: Path) -> None:
    spec = get_spec(tm.NAME)
    videos = tm.real_videos(np.random.default_rng(5), 1, 0)
    views, goals, dense = tm.real_views(spec, videos, tmp_path)
    # the same clip again, through model_inputs
    [(clip, hop)] = videos
    path = mv.write_video(clip, tmp_path / "again.mp4", preset="ultrafast")
    fed = [x for _, _, x in vidcls.model_inputs(path, tm.NAME, mode="segment", hop=hop)]
    fed = torch.cat(fed)  # (windows x crops, T, 3, H, W)
    assert views.dtype == torch.uint8 and views.shape == fed.shape
    assert torch.equal(tm.normalise(views, spec), fed)
    assert goals.shape == (len(views), len(mv.CLASSES))
    assert torch.allclose(goals.sum(1), torch.ones(len(views)))
    assert goals[:, 0].min() > 1 / len(mv.CLASSES)  # every view leans to its label
    grid = (spec.crop // spec.arch_config["patch_size"]) ** 2
    assert dense.shape == (len(views), grid * spec.num_frames)


def test_real_views_from_several_processes_are_the_same_views_in_the_same_order(
    tmp_path: Path,
) -> None:
    spec = get_spec(tm.NAME)
    videos = tm.real_videos(np.random.default_rng(8), 6, 0)  # runs of 4 and 2 files
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    alone = tm.real_views(spec, videos, tmp_path / "one")
    shared = tm.real_views(spec, videos, tmp_path / "two", workers=2)
    assert len(alone[0]) > len(videos)  # several windows a clip: order within a file matters
    assert all(torch.equal(a, b) for a, b in zip(alone, shared, strict=True))


def test_the_script_trains_saves_and_reloads(tmp_path: Path, capsys) -> None:
    out, example = tmp_path / "model", tmp_path / "example.mp4"
    with torch.random.fork_rng():  # train() seeds torch's global generator
        tm.main(
            ["--steps", "4", "--batch", "4", "--real-clips", "2", "--real-segments", "0",
             "--eval", "2", "--out", str(out), "--example", str(example)]
        )  # fmt: skip
    printed = capsys.readouterr().out
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert f'sha256 = {{ "model.safetensors" = "{digest}" }}' in printed
    assert "transformers from_pretrained: same logits" in printed  # the hub layout holds
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["TimesformerForVideoClassification"]
    assert [config["id2label"][str(i)] for i in range(len(mv.CLASSES))] == list(mv.CLASSES)
    loaded = vidcls.load_model(tm.NAME, weights=out, device="cpu", precision="fp32")
    record = vidcls.predict(example, loaded)
    assert record["top_k"][0]["label"] in mv.CLASSES
    assert example.stat().st_size < 1_000_000


def test_update_registry_rewrites_only_the_motion_tiny_hash(tmp_path: Path) -> None:
    registry = tmp_path / "weights.toml"
    original = (ROOT / "weights.toml").read_text(encoding="utf-8")
    registry.write_text(original, encoding="utf-8")
    tm.update_registry("ab" * 32, registry)
    changed = registry.read_text(encoding="utf-8")
    assert changed.count("ab" * 32) == 1
    # one line changed, and it belongs to motion-tiny's table
    before, after = original.splitlines(), changed.splitlines()
    assert len(before) == len(after)
    diff = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(diff) == 1
    tables = [line for line in after[: diff[0]] if line.startswith("[") and "." not in line]
    assert tables[-1] == f"[{tm.NAME}]"


def test_pinned_speed_and_growth() -> None:
    rng = np.random.default_rng(3)
    right = mv.random_clip(rng, "moving right", speed=0.25)
    [seg] = right.segments
    assert seg.vx == pytest.approx(0.25 * right.scene.width) and seg.vy == 0
    up = mv.random_clip(rng, "moving up", speed=0.15)
    assert up.segments[0].vy == pytest.approx(-0.15 * up.scene.height)
    for label, sign in (("growing", 1), ("shrinking", -1)):
        clip = mv.random_clip(rng, label, growth=2.5)
        [seg] = clip.segments
        _, _, size = clip.geometry(np.array([0.0, seg.end]))
        # 2.5x over 4 s, whatever the clip's length
        assert (size[1] / size[0]) ** sign == pytest.approx(2.5 ** (seg.end / 4))


def test_rendered_views_read_like_decoded_ones(tmp_path: Path) -> None:
    """The sweep renders instead of encoding: the rendered first window of a clip is close to what
    vidcls decodes from the H.264 file (rotation included), and the model reads both alike."""
    spec = get_spec(tm.NAME)
    model = vidcls.load_model(tm.NAME, device="cpu", precision="fp32").model
    rng = np.random.default_rng(11)
    clips = [
        mv.random_clip(rng, label, rotation=90 * (i % 4)) for i, label in enumerate(mv.CLASSES)
    ]
    batch, decoded = tm.Batch(spec), []
    for i, clip in enumerate(clips):
        path = mv.write_video(clip, tmp_path / f"{i}.mp4", preset="ultrafast")
        window, crops = next(iter(open_windows(path, spec, Options(mode="segment", hop=1.0))))
        assert window.start == 0
        batch.add(clip, 0.0, 0)
        decoded.append(torch.from_numpy(crops[0]).permute(0, 3, 1, 2))
    rendered, decoded = batch.render().round(), torch.stack(decoded).float()
    # 0-255 scale: 2.1 here, the codec's error; a mirrored render would be 9. Frames in the wrong
    # order differ less (2.9), and the model's answers, which name directions, tell those apart.
    assert (rendered - decoded).abs().mean() < 4
    with torch.no_grad():
        agree = model(tm.normalise(rendered, spec)).argmax(-1) == model(
            tm.normalise(decoded, spec)
        ).argmax(-1)
    assert agree.sum() >= len(clips) - 1


def test_sweep_finds_the_fast_moves_and_large_growths_easy() -> None:
    loaded = vidcls.load_model(tm.NAME, device="cpu", precision="fp32")
    found = em.sweep(loaded, seed=1, per_value=28)
    assert set(found["speed"]) == set(em.SPEEDS) and set(found["growth"]) == set(em.GROWTHS)
    assert all(0 <= a <= 1 for kind in found.values() for a in kind.values())
    # the shipped model: 100 % at 40 %/s and 95 % at 2.5x over 400 clips a value
    assert found["speed"][0.40] >= 0.9 and found["growth"][2.5] >= 0.85
