"""Hub classifiers without a registry entry: a folder or hf:OWNER/REPO describes itself.

Random-weight fine-tunes with their own label sets, sizes and frame counts, loaded through the
code a user runs (load_model, model_inputs, the command line; hub ids from a pre-filled cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import vidcls
from vidcls.cli import app
from vidcls.errors import UsageError, WeightsError
from vidcls_dev.hf_models import (
    hf_logits,
    prefill_hf_cache,
    save_hub_folder,
    tiny_videomae,
    tiny_vivit,
    tiny_vjepa2,
    write_config,
)
from vidcls_dev.media import make_video

SPORTS = {0: "dunk", 1: "serve", 2: "tackle"}
MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]


def _processor(folder: Path, name: str = "preprocessor_config.json", **fields: object) -> None:
    (folder / name).write_text(json.dumps(fields))


@pytest.fixture(scope="module")
def videomae_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hf = tiny_videomae(num_frames=6, image_size=48, num_labels=3, id2label=SPORTS)
    folder = save_hub_folder(hf, tmp_path_factory.mktemp("ft") / "videomae-sports")
    _processor(
        folder, crop_size={"height": 48, "width": 48}, size={"shortest_edge": 56},
        image_mean=MEAN, image_std=STD, do_normalize=True,
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("v") / "clip.mp4", n_frames=90, fps=30, size=(96, 64))


def test_weights_folder_of_another_family_describes_itself(videomae_folder: Path) -> None:
    loaded = vidcls.load_model(weights=videomae_folder, precision="fp32")
    spec = loaded.spec
    assert spec.name == f"hf:{videomae_folder}" and spec.arch == "videomae"
    # sizes and normalisation from preprocessor_config.json, frames from config.json, the
    # frame step and crops from the family default (the `videomae` entry)
    assert (spec.crop, spec.short_side, spec.num_frames) == (48, 56, 6)
    assert spec.mean == tuple(MEAN) and spec.std == tuple(STD)
    assert (spec.frame_stride, spec.crops, spec.sampling) == (4, 3, "stride")
    assert loaded.labels == ["dunk", "serve", "tackle"] and spec.num_classes == 3
    hf = tiny_videomae(num_frames=6, image_size=48, num_labels=3, id2label=SPORTS)
    video = torch.randn(2, 6, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(video), hf_logits(hf, video), atol=1e-4, rtol=0)


def test_model_inputs_follow_the_derived_protocol(videomae_folder: Path, clip: Path) -> None:
    _, _, x = next(iter(vidcls.model_inputs(clip, f"hf:{videomae_folder}")))
    assert tuple(x.shape) == (3, 6, 3, 48, 48)


def test_predict_with_overrides_and_own_labels(videomae_folder: Path, clip: Path) -> None:
    # --frames must stay the checkpoint's for VideoMAE (its position table is fixed): the
    # stride and crops change
    result = CliRunner().invoke(
        app,
        ["predict", str(clip), "--model", f"hf:{videomae_folder}", "--stride", "2", "--crops",
         "1", "--json", "--precision", "fp32"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["model"] == f"hf:{videomae_folder}" and record["crops"] == 1
    assert {t["label"] for t in record["top_k"]} == {"dunk", "serve", "tackle"}
    assert record["span"] == pytest.approx(6 * 2 / 30)


def test_placeholder_labels_warn_and_become_indices(tmp_path: Path) -> None:
    hf = tiny_videomae(num_labels=3, id2label={i: f"LABEL_{i}" for i in range(3)})
    folder = save_hub_folder(hf, tmp_path / "ckpt")
    with pytest.warns(UserWarning, match="names no classes"):
        loaded = vidcls.load_model(f"hf:{folder}", precision="fp32")
    assert loaded.labels == ["class 0", "class 1", "class 2"]


def test_models_json_describes_a_folder_and_overrides(tmp_path: Path) -> None:
    hf = tiny_vjepa2(num_frames=8, num_labels=5)
    folder = save_hub_folder(hf, tmp_path / "vjepa2-ft")
    _processor(folder, "video_preprocessor_config.json", crop_size=32)
    result = CliRunner().invoke(
        app, ["models", "--json", f"hf:{folder}", "--frames", "12", "--stride", "3"]
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["arch"] == "vjepa2" and row["num_classes"] == 5 and row["cached"] is True
    # VJEPA2VideoProcessor resizes to crop × 256/224 whatever its `size` says
    assert (row["crop"], row["short_side"]) == (32, 36)
    assert (row["num_frames"], row["frame_stride"]) == (12, 3)
    assert row["mean"] == [0.485, 0.456, 0.406]  # no mean in the file: the family's
    registry = CliRunner().invoke(app, ["models", "--json", "vivit", "--frames", "16"])
    assert json.loads(registry.stdout)[0]["num_frames"] == 16


def test_frames_override_runs_vjepa2_on_more_frames(tmp_path: Path) -> None:
    hf = tiny_vjepa2(num_frames=4, num_labels=5)
    folder = save_hub_folder(hf, tmp_path / "ckpt")
    loaded = vidcls.load_model(f"hf:{folder}", frames=10, stride=2, precision="fp32")
    assert (loaded.spec.num_frames, loaded.spec.frame_stride) == (10, 2)
    video = torch.randn(2, 10, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(video), hf_logits(hf, video), atol=1e-4, rtol=0)


def test_run_key_changes_with_the_protocol(videomae_folder: Path) -> None:
    from vidcls.config import FileOptions, RunConfig, Runtime
    from vidcls.loading import choose_model

    keys = {
        RunConfig(choose_model(*args), Runtime(), FileOptions()).run_key
        for args in [("timesformer",), ("timesformer", None, None, None, 4),
                     ("timesformer", None, None, None, None, 2)]
    }  # fmt: skip
    assert len(keys) == 3
    plain = RunConfig(choose_model("timesformer"), Runtime(), FileOptions())
    assert plain.model.custom is None  # registry runs keep the keys of earlier versions


def test_hub_repo_id_from_the_cache_offline(tmp_path: Path, clip: Path) -> None:
    hf = tiny_vivit(num_frames=4, image_size=32, num_labels=4)
    hf.config.id2label = {0: "a", 1: "b", 2: "c", 3: "d"}
    folder = save_hub_folder(hf, tmp_path / "src")
    write_config(folder, id2label={"0": "a", "1": "b", "2": "c", "3": "d"})
    _processor(folder, crop_size={"height": 32, "width": 32}, size={"shortest_edge": 40},
               image_mean=[0.5] * 3, image_std=[0.5] * 3)  # fmt: skip
    prefill_hf_cache(tmp_path / "hf" / "hub", "someone/vivit-tiny-ft", folder)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    command = [sys.executable, "-m", "vidcls"]
    described = subprocess.run(
        [*command, "models", "--json", "hf:someone/vivit-tiny-ft"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert described.returncode == 0, described.stderr
    (row,) = json.loads(described.stdout)
    assert row["repo"] == "someone/vivit-tiny-ft" and row["cached"] is True
    assert (row["crop"], row["short_side"], row["num_frames"]) == (32, 40, 4)
    out = subprocess.run(
        [*command, "predict", str(clip), "--model", "hf:someone/vivit-tiny-ft", "--json",
         "--precision", "fp32"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["weights"] == "someone/vivit-tiny-ft@main"
    assert {t["label"] for t in record["top_k"]} == {"a", "b", "c", "d"}
    missing = subprocess.run(
        [*command, "models", "--json", "hf:someone/not-cached"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode != 0 and "not in the Hugging Face cache" in missing.stderr


def test_an_unreachable_hub_fails_at_once_for_a_hub_repo_id(tmp_path: Path, monkeypatch) -> None:
    """hf:OWNER/REPO takes main's fast-fail path as registry entries do: with the hub's port
    closed, an uncached repo fails in well under 2 s naming the fixes, a cached one is used."""
    import time

    from huggingface_hub import constants

    from vidcls.network import fetch_configs

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    started = time.perf_counter()
    with pytest.raises(WeightsError, match=r"hf:someone/absent: cannot reach .*HF_ENDPOINT"):
        fetch_configs("someone/absent", ("preprocessor_config.json",))
    assert time.perf_counter() - started < 2.0
    folder = save_hub_folder(tiny_vivit(num_frames=4, image_size=32, num_labels=3), tmp_path / "f")
    snapshot = prefill_hf_cache(tmp_path / "hub", "someone/present", folder)
    assert fetch_configs("someone/present", ("preprocessor_config.json",)) == snapshot


def test_bad_hub_names() -> None:
    with pytest.raises(UsageError, match="not a hub repo id"):
        vidcls.load_model("hf:./no/such/folder")
    with pytest.raises(UsageError, match="both say where the weights are"):
        vidcls.load_model("hf:someone/repo", weights="x.safetensors")


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(WeightsError, match="no config.json"):
        vidcls.load_model(f"hf:{tmp_path}")


def test_placeholder_warning_reaches_the_command_line(tmp_path: Path, clip: Path) -> None:
    hf = tiny_videomae(num_labels=3, id2label={i: f"LABEL_{i}" for i in range(3)})
    folder = save_hub_folder(hf, tmp_path / "ckpt")
    result = CliRunner().invoke(
        app, ["predict", str(clip), "--weights", str(folder), "--json", "--precision", "fp32"]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "names no classes (LABEL_n)" in result.stderr
    assert json.loads(result.stdout)["top_k"][0]["label"].startswith("class ")


def test_a_fixed_table_refuses_another_frame_count_before_decoding(
    videomae_folder: Path, clip: Path
) -> None:
    result = CliRunner().invoke(
        app, ["predict", str(clip), "--model", f"hf:{videomae_folder}", "--frames", "8"]
    )
    assert result.exit_code == 1
    assert (
        "takes 6 frames of 48×48, but" in result.stderr and "feeds it 8 of 48×48" in result.stderr
    )


def test_download_takes_hub_repo_ids(tmp_path: Path, monkeypatch) -> None:
    from vidcls import network

    folder = save_hub_folder(tiny_videomae(num_labels=3, id2label=SPORTS), tmp_path / "repo")
    asked: list[tuple[str, str]] = []

    def fetch(spec, offline=None, progress=True):  # the hub, as network.fetch sees it
        asked.append((spec.repo, spec.revision))
        return folder / "model.safetensors"

    monkeypatch.setattr(network, "fetch_configs", lambda repo, names, **kw: folder)
    monkeypatch.setattr(network, "fetch", fetch)
    result = CliRunner().invoke(app, ["download", "-q", "hf:someone/videomae-ft"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"hf:someone/videomae-ft\t{folder / 'model.safetensors'}\n"
    assert asked == [("someone/videomae-ft", "main")]
    local = CliRunner().invoke(app, ["download", f"hf:{folder}"])
    assert local.exit_code == 2 and "nothing to download" in local.stderr
