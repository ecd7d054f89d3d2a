"""weights.toml: every model of the design, validated fields, aliases, and the models command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from vidcls.cli import app
from vidcls.errors import RegistryError, UnknownModelError
from vidcls.output.terminal import MODEL_COLUMNS, models_table
from vidcls.registry import _registry_text, get_spec, package_labels, parse_registry, registry

SHARED_LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels"
NAMES = [
    "timesformer", "timesformer-k600", "timesformer-ssv2",
    "timesformer-hr", "timesformer-hr-k600", "timesformer-hr-ssv2",
    "timesformer-l", "timesformer-l-k600", "timesformer-l-ssv2",
    "vivit",
    "vivit-fe", "vivit-l-fe", "vivit-l-fe-k600", "vivit-l-fe-epic", "vivit-scenic",  # issue 28
    "videomae", "videomae-large", "videomae-huge", "videomae-ssv2",  # issue 27
    "vjepa2-ssv2", "vjepa2-diving48", "vjepa2-g-ssv2", "vjepa2-g-diving48",
    "mvit", "mvit-v1",  # torchvision's MViT at plain URLs (issue 31)
    "motion-tiny",  # bundled in the package (issue 5)
]  # fmt: skip


def test_every_design_model_is_registered() -> None:
    assert list(registry()) == NAMES


@pytest.mark.parametrize(
    "name, frames, stride, fps, span, short, crop, classes",
    [
        ("timesformer", 8, 32, 30, 8.533, 224, 224, 400),
        ("timesformer-hr", 16, 16, 30, 8.533, 448, 448, 400),
        ("timesformer-l", 96, 4, 30, 12.8, 224, 224, 400),
        ("timesformer-k600", 8, 32, 30, 8.533, 224, 224, 600),
        ("timesformer-l-ssv2", 64, 1, 12, 5.333, 224, 224, 174),
        ("vivit", 32, 2, 25, 2.56, 256, 224, 400),
    ],
)
def test_protocols(name, frames, stride, fps, span, short, crop, classes) -> None:
    spec = get_spec(name)
    assert (spec.num_frames, spec.frame_stride, spec.reference_fps) == (frames, stride, fps)
    assert spec.span == pytest.approx(span, abs=1e-3)
    assert (spec.short_side, spec.crop, spec.crops, spec.num_classes) == (short, crop, 3, classes)
    assert spec.arch_config["num_frames"] == frames and spec.arch_config["num_classes"] == classes


def test_normalisation_and_channel_order() -> None:
    for spec in registry().values():
        if spec.arch in ("timesformer", "mvit"):
            assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3
            assert spec.channel_order == ("bgr" if spec.labels == "ssv2" else "rgb")
        elif spec.arch in ("videomae", "vjepa2"):  # ImageNet's (docs/models.md)
            assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
            assert spec.channel_order == "rgb"
        else:  # x/127.5 - 1
            assert spec.mean == (0.5,) * 3 and spec.std == (0.5,) * 3
    assert get_spec("vivit").label_names == "package"


def test_videomae_and_vjepa2_protocols() -> None:
    kinetics = get_spec("videomae")
    assert (kinetics.num_frames, kinetics.frame_stride, kinetics.short_side) == (16, 4, 224)
    assert kinetics.repo == "MCG-NJU/videomae-base-finetuned-kinetics" and kinetics.crops == 3
    assert get_spec("videomae-ssv2").sampling == "segments"
    for name, frames, crop in [("vjepa2-ssv2", 16, 256), ("vjepa2-g-ssv2", 64, 384),
                               ("vjepa2-diving48", 32, 256), ("vjepa2-g-diving48", 32, 384)]:  # fmt: skip # noqa: E501
        spec = get_spec(name)
        # resize to crop × 256/224, then crop (transformers' VJEPA2VideoProcessor)
        assert (spec.num_frames, spec.crop, spec.short_side) == (frames, crop, crop * 256 // 224)
    assert all(get_spec(n).average == "softmax" for n in NAMES if n.startswith(("videomae", "vjepa2")))  # fmt: skip # noqa: E501


def test_large_models_point_at_the_public_mirror() -> None:
    for name in ("timesformer-l", "timesformer-l-k600", "timesformer-l-ssv2"):
        spec = get_spec(name)
        assert spec.repo.startswith("fcakyon/") and "not publicly downloadable" in spec.mirror
    assert get_spec("timesformer").mirror is None


@pytest.mark.parametrize(
    "alias, name",
    [
        ("timesformer-base", "timesformer"),
        ("timesformer-k400", "timesformer"),
        ("timesformer-large", "timesformer-l"),
        ("vivit-b-16x2-kinetics400", "vivit"),
        ("facebook/timesformer-hr-finetuned-ssv2", "timesformer-hr-ssv2"),
    ],
)
def test_aliases_resolve(alias: str, name: str) -> None:
    assert get_spec(alias).name == name


def test_unknown_model_lists_the_names() -> None:
    with pytest.raises(
        UnknownModelError, match="unknown model 'timesformer-xl'; available: timesformer,"
    ):
        get_spec("timesformer-xl")


def test_packaged_labels_are_the_shared_lists() -> None:
    for label_set, count in (("kinetics400", 400), ("kinetics600", 600), ("ssv2", 174)):
        names = package_labels(label_set)
        assert len(names) == count == len(set(names))
        if SHARED_LABELS.is_dir():
            assert names == (SHARED_LABELS / f"{label_set}.txt").read_text().split("\n")[:count]


def _edited(old: str, new: str) -> str:
    text = _registry_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('channel_order = "rgb"', 'channel_order = "rgb"\nchanel = 1', r"\[timesformer\] has an unknown field 'chanel'"),
        ("frame_stride = 32\n", "", r"\[timesformer\] is missing the field 'frame_stride'"),
        ("num_frames = 8\n", 'num_frames = "8"\n', r"\[timesformer\] field 'num_frames' has the wrong type"),
        ('sampling = "stride"', 'sampling = "random"', r"field 'sampling' must be one of stride, segments"),
        ("mean = [0.45, 0.45, 0.45]", "mean = [0.45]", r"field 'mean' must be three numbers"),
        ("patch_size = 16\n", "", r"\[timesformer\].arch_config is missing the field 'patch_size'"),
        ('"timesformer-k400", ', '"timesformer-k400", "vivit-b", ', r"alias 'vivit-b' is also used by \[timesformer\]"),
        ("mirror = [", "flip = [", r"\[motion-tiny\].symmetries has an unknown transform 'flip'"),
        ('mirror = [["moving left", "moving right"]]', 'mirror = "moving left"', r"symmetries field 'mirror' must be a list of label pairs"),
        ('[["moving left", "moving right"]]', '[["moving left", "moving sideways"]]', r"'moving sideways' is not a label of 'motion'"),
        ('[["moving left", "moving right"]]', '[["moving left", "moving right"], ["still", "moving left"]]', r"symmetries field 'mirror' swaps a label with itself or twice"),
        ('sampling = "stride"', 'sampling = "stride"\naverage = "median"', r"field 'average' must be one of softmax, logits"),
        ('repo = "facebook/timesformer-base-finetuned-k400"\nrevision = "main"\n', 'url = "ftp://x/y.pth"\n', r"\[timesformer\] field 'url' must be an http\(s\) URL"),
        ('revision = "main"\n', "", r"\[timesformer\] is missing the field 'revision' \(or 'url', 'bundled'\)"),
    ],
)  # fmt: skip
def test_validation_names_table_and_field(old: str, new: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_registry(_edited(old, new))


def test_an_entry_may_name_a_plain_url_instead_of_a_repo() -> None:
    old = 'repo = "facebook/timesformer-base-finetuned-k400"\nrevision = "main"\nfiles = ["model.safetensors", "pytorch_model.bin"]\n'
    new = 'url = "https://example.org/ckpt/model.pth"\naverage = "logits"\n'
    spec = parse_registry(_edited(old, new))["timesformer"]
    assert (spec.url, spec.repo, spec.files, spec.average) == (
        "https://example.org/ckpt/model.pth",
        "",
        (),
        "logits",
    )
    assert get_spec("timesformer").average == "softmax"


def test_models_json_and_table() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == NAMES
    first = rows[0]
    assert first["span_seconds"] == pytest.approx(8.5333) and first["cached"] in (True, False)
    assert {"repo", "num_frames", "frame_stride", "crop", "short_side", "labels"} <= set(first)
    piped = runner.invoke(app, ["models"])  # not a terminal: a line per model, tab-separated
    assert piped.exit_code == 0
    lines = [line.split("\t") for line in piped.stdout.splitlines()]
    assert lines[0] == MODEL_COLUMNS and [line[0] for line in lines[1:]] == NAMES
    assert all(len(line) == len(MODEL_COLUMNS) for line in lines)
    by_name = {line[0]: dict(zip(MODEL_COLUMNS, line, strict=True)) for line in lines[1:]}
    assert by_name["timesformer"]["frames×stride"] == "8×32 @30"
    assert by_name["timesformer"]["checkpoint"] == first["repo"]
    assert by_name["timesformer-hr"]["input"] == "448→3×448"
    assert by_name["motion-tiny"]["input"] == "frame→1×64 sym"


@pytest.mark.parametrize("width", [80, 200])
def test_models_table_fits_the_terminal(width: int) -> None:
    rows = [line.split("\t") for line in CliRunner().invoke(app, ["models"]).stdout.splitlines()]
    console = Console(file=io.StringIO(), width=width)
    console.print(models_table(rows[1:], console))
    text = console.file.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text  # nothing cut short
    for name in NAMES:
        assert f"\n{name} " in text
    # the checkpoint column only where it fits whole
    assert ("facebook/timesformer-base-finetuned-k400" in text) == (width == 200)


@pytest.mark.parametrize("args", [["--help"], ["models"], ["models", "--json"]])
def test_cli_does_not_import_torch(args: list[str]) -> None:
    code = (
        "import sys\nfrom vidcls.cli import main\nsys.argv = ['vidcls', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'av', 'numpy', 'transformers') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert "HEAVY []" in out.stderr, out.stderr


def test_python_m_vidcls() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vidcls", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("vidcls ")
