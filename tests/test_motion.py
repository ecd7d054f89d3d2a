"""motion-tiny, the bundled model: it recognises synthetic motion through the whole pipeline.

Random weights prove the model math; these tests prove the pipeline. Every video here is freshly
generated (vidcls_dev.motion) with seeds the training script never uses, encoded with
libx264, and classified through the public CLI and API: a wrong channel order, a mirrored crop,
frames in the wrong order, rotation ignored or time stretched at 60 fps would each fail them.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import vidcls
from vidcls.cli import app
from vidcls.clips import HOP_FRACTION
from vidcls.registry import bundled_path, get_spec
from vidcls_dev import motion as mv

ROOT = Path(__file__).resolve().parents[1]


MODEL = "motion-tiny"
# Issue 5's targets: 95 % of the held-out clips and 90 % of each class, 90 % of a segment video's
# duration, the same segments at 24 and 60 fps. With its 16 symmetric views (weights.toml) the
# shipped model gets all 420 of these clips right (96.9 % with one view: its weakest class,
# shrinking, at 93.3 %). 60 clips a class, because with 21 one clip is 4.8 points. The segment
# videos below (24 fps, 60 fps, portrait, and four drawn at random) pass with `segment`'s
# defaults (every moment averaged over the windows that saw it; a hop of a third of the span,
# segments shorter than span + hop folded and shared between their neighbours; boundaries moved
# to where the windows' scores fit them best). The README gives its figures on 60 other random
# segment videos (`python -m vidcls_dev.eval_motion --videos 60`: seed 4242, every frame size).
CLIP_ACCURACY, CLASS_ACCURACY = 0.95, 0.90
SEGMENT_DURATION = 0.90
DEFAULT_DURATION = 0.95  # issue 25: the mean over random videos at segment's defaults
EXAMPLE = ROOT / "examples" / "motion.mp4"
SEGMENT_SEED = 7_777
RANDOM = 4  # random segment videos, besides the three chosen ones


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def spec():
    return get_spec(MODEL)


@pytest.fixture(scope="module")
def loaded():
    # fp32 whatever `auto` picks on this CPU: the reference the bf16 and transformers checks need
    return vidcls.load_model(MODEL, device="cpu", precision="fp32", offline=True)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[mv.MotionVideo, Path]]:
    root = tmp_path_factory.mktemp("motion-held-out")
    clips = mv.held_out_clips()  # 60 clips of 2-3 s per class, 420
    paths = [root / f"{i:03d}.mp4" for i in range(len(clips))]
    mv.write_videos(clips, paths)  # encoding is most of this test's time: a process per core
    return list(zip(clips, paths, strict=True))


def test_the_held_out_set_covers_every_range() -> None:
    clips = mv.held_out_clips()
    for label in mv.CLASSES:
        mine = [c for c in clips if c.label == label]
        assert {c.fps for c in mine} == set(mv.FPS_CHOICES)
        assert {c.rotation for c in mine} == set(mv.ROTATIONS)
        assert {c.scene.shape for c in mine} == set(mv.SHAPES)
        assert {c.scene.background for c in mine} == set(mv.BACKGROUNDS)
        assert {c.scene.height > c.scene.width for c in mine} == {False, True}
        sizes = {(c.scene.short, max(c.scene.width, c.scene.height)) for c in mine}
        assert {(120, 160), (720, 1280)} <= sizes
    for clip in clips:
        (seg,) = clip.segments
        short = clip.scene.short
        t = np.linspace(0, clip.duration, 50)
        cx, cy, size = clip.geometry(t)
        assert np.all(size >= 0.08 * short - 1e-6) and np.all(size <= 0.2 * short + 1e-6)
        assert np.all(cx - size / 2 >= 0) and np.all(cx + size / 2 <= clip.scene.width)
        assert np.all(cy - size / 2 >= 0) and np.all(cy + size / 2 <= clip.scene.height)
        if clip.label.startswith("moving"):
            length = clip.scene.width if seg.vx else clip.scene.height
            assert 0.15 <= abs(seg.vx or seg.vy) / length <= 0.40
        if clip.label in ("growing", "shrinking"):
            assert 1.5 - 1e-9 <= np.exp(abs(seg.rate) * 4) <= 2.5 + 1e-9
        if clip.label == "still":
            assert np.hypot(cx - seg.cx, cy - seg.cy).max() <= 1.0
    assert 2.0 - 1e-9 <= min(c.duration for c in clips) and max(c.duration for c in clips) <= 3


def test_segment_videos_stay_inside_the_ranges() -> None:
    """A 60-s video of 6–10 segments (3–10 s, neighbours differ) whose shape stays wholly on
    screen at 8–20 % of the short side, at the speeds and growth rates of the clips."""
    rng = np.random.default_rng(SEGMENT_SEED + 1)
    for _ in range(40):
        video = mv.random_segment_video(rng, size=mv.random_frame_size(rng))
        w, h, short = video.scene.width, video.scene.height, video.scene.short
        assert 6 <= len(video.segments) <= 10 and video.duration == pytest.approx(60)
        labels = [s.label for s in video.segments]
        assert all(a != b for a, b in zip(labels, labels[1:], strict=False))
        t = np.linspace(0, 60, 6000, endpoint=False)
        cx, cy, size = video.geometry(t)
        assert np.all(size >= 0.08 * short - 1e-6) and np.all(size <= 0.2 * short + 1e-6)
        assert np.all(cx - size / 2 >= 0) and np.all(cx + size / 2 <= w)
        assert np.all(cy - size / 2 >= 0) and np.all(cy + size / 2 <= h)
        for seg in video.segments:
            assert 3 - 1e-9 <= seg.seconds <= mv.MAX_SECONDS[seg.label] + 1e-9 <= 10 + 1e-9
            if seg.label.startswith("moving"):
                length = w if seg.vx else h
                assert 0.15 <= abs(seg.vx or seg.vy) / length <= 0.40
            if seg.label in ("growing", "shrinking"):
                assert 1.5 - 1e-9 <= np.exp(abs(seg.rate) * 4) <= 2.5 + 1e-9
    with pytest.raises(ValueError, match="longest"):
        mv.random_segment_video(rng, [("moving left", 6.0)], duration=6.0)


def test_held_out_accuracy_through_the_cli(held_out) -> None:
    paths = [str(path) for _, path in held_out]
    result = cli("predict", *paths, "--model", MODEL, "--json", "--offline")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["file"] for r in records] == paths
    confusion: dict[str, Counter[str]] = {label: Counter() for label in mv.CLASSES}
    wrong = []
    for (clip, path), record in zip(held_out, records, strict=True):
        guess = record["top_k"][0]["label"]
        confusion[clip.label][guess] += 1
        if guess != clip.label:
            s = clip.scene
            wrong.append(
                f"{path.name}: {clip.label} -> {guess} ({s.width}x{s.height} {clip.fps} fps "
                f"rot {clip.rotation} {s.shape} {s.background})"
            )
    per_class = {label: row[label] / sum(row.values()) for label, row in confusion.items()}
    accuracy = sum(row[label] for label, row in confusion.items()) / len(records)
    report = f"accuracy {accuracy:.3f}, per class {per_class}, wrong: {wrong}"
    assert accuracy >= CLIP_ACCURACY, report
    assert min(per_class.values()) >= CLASS_ACCURACY, report


def test_bf16_keeps_the_top_1_of_the_held_out_clips(held_out, loaded) -> None:
    """--precision auto picks bf16 where the hardware has it (CUDA, AMX/AVX512-BF16 CPUs) only
    because it keeps the answer: the same top-1 on at least 99 % of the held-out clips."""
    import torch

    with warnings.catch_warnings():  # no native bf16 on this CPU: slow, still exact bf16
        warnings.simplefilter("ignore")
        half = vidcls.load_model(MODEL, device="cpu", precision="bf16", offline=True)
    same = 0
    for _, path in held_out:
        inputs = [x for _, _, x in vidcls.model_inputs(path, MODEL)]  # decoded once, for both
        top = []
        for model in (loaded.model, half.model):  # the model casts its input, returns fp32
            with torch.no_grad():
                probs = torch.stack([model(x).softmax(-1).mean(0) for x in inputs])
            top.append(int(probs.mean(0).argmax()))
        same += top[0] == top[1]
    assert same / len(held_out) >= 0.99, f"bf16 keeps the top-1 of {same} of {len(held_out)}"


def _mirror_cases() -> list[tuple[str, dict[str, object], str]]:
    return [
        ("moving left", {"mirror": True}, "moving right"),
        ("moving right", {"mirror": True}, "moving left"),
        ("growing", {"reverse": True}, "shrinking"),
        ("shrinking", {"reverse": True}, "growing"),
        ("moving up", {"reverse": True}, "moving down"),
    ]


@pytest.mark.parametrize("label, change, expected", _mirror_cases())
def test_mirrored_and_reversed_clips_flip_the_answer(
    loaded, tmp_path: Path, label: str, change: dict[str, object], expected: str
) -> None:
    """The same pixels mirrored (or the same frames backwards) swap the two labels' scores."""

    def scores(path: Path) -> dict[str, float]:
        return {k["label"]: k["score"] for k in vidcls.predict(path, loaded, top_k=7)["top_k"]}

    rng = np.random.default_rng(SEGMENT_SEED + mv.CLASSES.index(label))
    for rotation in (0, 90):
        clip = mv.random_clip(rng, label, rotation=rotation, portrait=bool(rotation), fps=30)
        plain = scores(mv.write_video(clip, tmp_path / f"plain{rotation}.mp4"))
        changed = scores(mv.write_video(clip, tmp_path / f"changed{rotation}.mp4", **change))
        assert plain[label] > plain[expected], (rotation, plain)
        assert changed[expected] > changed[label], (rotation, changed)


# ------------------------------------------------------------------------------- segments


@pytest.fixture(scope="module")
def timelines(tmp_path_factory: pytest.TempPathFactory, loaded, spec):
    """One 60-s segment video at 24 and at 60 fps, and another (portrait, rotated) at 30 fps."""
    root = tmp_path_factory.mktemp("motion-segments")
    rng = np.random.default_rng(SEGMENT_SEED)
    landscape = mv.random_segment_video(rng, size=(426, 240), shape="circle")
    portrait = mv.random_segment_video(
        rng, size=(240, 426), shape="square", background="gradient", rotation=90, fps=30
    )
    out = {}
    for name, video in (
        ("24", landscape.with_(fps=24)),
        ("60", landscape.with_(fps=60)),
        ("portrait", portrait),
    ):
        path = mv.write_video(video, root / f"{name}.mp4")
        out[name] = (video, vidcls.segment(path, loaded))  # segment's defaults
    return out


@pytest.fixture(scope="module")
def random_timelines(tmp_path_factory: pytest.TempPathFactory, loaded, spec):
    """More segment videos with everything drawn, frame size included, as eval_motion draws
    them: the targets hold for the task's videos, not for three chosen ones."""
    root = tmp_path_factory.mktemp("motion-random-segments")
    rng = np.random.default_rng(SEGMENT_SEED + 1)
    videos = [mv.random_segment_video(rng, size=mv.random_frame_size(rng)) for _ in range(RANDOM)]
    paths = [root / f"{i}.mp4" for i in range(RANDOM)]
    mv.write_videos(videos, paths)
    return [(v, vidcls.segment(p, loaded)) for v, p in zip(videos, paths, strict=True)]


@pytest.mark.parametrize("name", ["24", "60", "portrait"])
def test_segments_of_a_60_s_video(timelines, spec, name: str) -> None:
    check_timeline(*timelines[name], spec)


@pytest.mark.parametrize("index", range(RANDOM))
def test_segments_of_random_60_s_videos(random_timelines, spec, index: int) -> None:
    check_timeline(*random_timelines[index], spec)


def test_segment_defaults_label_95_percent_of_fresh_random_videos(random_timelines) -> None:
    """Issue 25: at segment's defaults (no --hop, no --min-duration) the timelines of random
    segment videos, drawn afresh, are right for at least 95 % of their duration on average."""
    shares = [
        mv.correct_seconds(video.truth(), record["segments"]) / record["duration"]
        for video, record in random_timelines
    ]
    assert np.mean(shares) >= DEFAULT_DURATION, shares


def check_timeline(video: mv.MotionVideo, record: dict, spec) -> None:
    truth = video.truth()
    segments = record["segments"]
    assert 6 <= len(video.segments) <= 10 and video.duration == pytest.approx(60)
    assert all(3 - 1e-9 <= s.seconds <= 10 + 1e-9 for s in video.segments)
    assert record["hop"] == pytest.approx(spec.span * HOP_FRACTION, abs=1e-3)
    assert record["duration"] == pytest.approx(60, abs=0.05)
    correct = mv.correct_seconds(truth, segments) / record["duration"]
    missed = mv.missed_boundaries(truth, segments, spec.span)
    shown = [(s["start"], s["end"], s["label"]) for s in segments]
    report = f"correct {correct:.3f}; truth {truth}; predicted {shown}"
    assert correct >= SEGMENT_DURATION, report
    assert not missed, f"no predicted boundary within a span of {missed}; " + report


def test_the_same_video_at_24_and_60_fps_gives_the_same_segments(timelines, spec) -> None:
    """Frames are picked by time, so the frame rate changes nothing that matters: the same
    windows, the same labels in the same order, every boundary within one hop."""
    (_, slow), (_, fast) = timelines["24"], timelines["60"]
    a, b = slow["segments"], fast["segments"]
    report = (
        f"24 fps: {[(s['end'], s['label']) for s in a]}; 60: {[(s['end'], s['label']) for s in b]}"
    )
    assert slow["num_windows"] == fast["num_windows"], report
    assert [s["label"] for s in a] == [s["label"] for s in b], report
    hop = slow["hop"]
    assert all(abs(x["end"] - y["end"]) <= hop + 1e-3 for x, y in zip(a, b, strict=True)), report


# ------------------------------------------------------------------------------- the package


def test_loads_offline_from_the_package(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    model, spec, labels, source = vidcls.load_model(MODEL, device="cpu")
    assert source == f"bundled:{MODEL}" and labels == list(mv.CLASSES)
    assert spec.bundled == MODEL and not spec.repo
    assert not (tmp_path / "empty-hf-home").exists()


def test_registry_entry_and_files(spec) -> None:
    folder = bundled_path(spec)
    weights = folder / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == spec.sha256["model.safetensors"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 5_000_000
    assert EXAMPLE.stat().st_size < 1_000_000
    config = json.loads((folder / "config.json").read_text())
    a = spec.arch_config
    assert config["model_type"] == "timesformer" and config["attention_type"] == a["attention_type"]
    assert (config["hidden_size"], config["num_hidden_layers"]) == (a["hidden_size"], a["depth"])
    assert config["image_size"] == spec.crop == a["image_size"]
    assert config["patch_size"] == a["patch_size"]
    assert config["num_frames"] == spec.num_frames
    assert [config["id2label"][str(i)] for i in range(7)] == list(mv.CLASSES)
    assert 1.0 <= spec.span <= 2.0 and spec.sampling == "stride"


def test_the_bundled_folder_is_a_genuine_hub_checkpoint(loaded, spec) -> None:
    transformers = pytest.importorskip("transformers")
    import torch

    hf = transformers.TimesformerForVideoClassification.from_pretrained(str(bundled_path(spec)))
    x = torch.randn(2, spec.num_frames, 3, spec.crop, spec.crop, generator=torch.Generator())
    with torch.no_grad():
        ours, theirs = loaded.model(x), hf.eval()(pixel_values=x).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_the_readme_example() -> None:
    result = cli("predict", str(EXAMPLE), "--model", MODEL, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["model"] == MODEL and record["weights"] == f"bundled:{MODEL}"
    assert record["top_k"][0]["label"] == mv.example_video().label
    example = mv.example_video()
    assert record["duration"] == pytest.approx(example.duration, abs=0.05)
    assert (record["width"], record["height"]) == (example.scene.width, example.scene.height)
