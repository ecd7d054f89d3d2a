"""Golden files: the exact stdout, exit code and stderr lines of every command and format.

They pin what users and pipelines see, so that moving code underneath cannot change it
unnoticed. Each case runs the command line in-process on videos made here (and the example
video of the repository), with the bundled `motion-tiny` and a random-weight TimeSformer in hub
layout, in fp32 (the same on every CPU), and compares against `tests/golden/NAME.txt`. Timings
on stderr are masked. `VIDCLS_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py` rewrites
the files; review the diff before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidcls.cli import app
from vidcls_dev import motion as mv
from vidcls_dev.media import make_video
from vidcls_dev.media_broken import make_corrupt_packets, make_text, make_truncated

ROOT = Path(__file__).resolve().parents[1]

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("VIDCLS_UPDATE_GOLDEN") == "1"

MOTION = ["--model", "motion-tiny", "--precision", "fp32"]
TINY = ["--weights", "weights", "--precision", "fp32"]

RESUMED = ["predict", "a.mp4", "b.mkv", "notes.mp4", *TINY, "-o", "out/r.jsonl", "-k", "1", "--resume"]  # fmt: skip # noqa: E501

# A case is one command line, or several run one after the other in the same folder. "<FILE"
# first feeds FILE to standard input; a written -o/--output file is shown after its command.
CASES: dict[str, list[str] | list[list[str]]] = {
    # predict, every format, the bundled model on the example video
    "predict-motion-table": ["predict", "motion.mp4", *MOTION, "--format", "table"],
    "predict-motion-json": ["predict", "motion.mp4", *MOTION, "--json"],
    "predict-motion-jsonl": ["predict", "motion.mp4", *MOTION, "-f", "jsonl"],
    "predict-motion-csv": ["predict", "motion.mp4", *MOTION, "-f", "csv"],
    "predict-motion-tsv": ["predict", "motion.mp4", *MOTION, "-f", "tsv"],
    "predict-motion-default": ["predict", "motion.mp4", *MOTION],
    # segment, every format, the bundled model on a 60-s video of several actions
    "segment-motion-table": ["segment", "seg.mp4", *MOTION, "--hop", "0.93", "-f", "table"],
    "segment-motion-json": ["segment", "seg.mp4", *MOTION, "--hop", "0.93", "--json"],
    "segment-motion-jsonl": ["segment", "seg.mp4", *MOTION, "-f", "jsonl"],
    "segment-motion-csv": ["segment", "seg.mp4", *MOTION, "--hop", "0.93", "-f", "csv"],
    "segment-motion-tsv": ["segment", "seg.mp4", *MOTION, "-f", "tsv", "--min-duration", "0"],
    "segment-motion-srt": ["segment", "seg.mp4", *MOTION, "--hop", "0.93", "-f", "srt"],
    "segment-motion-vtt": ["segment", "seg.mp4", *MOTION, "-f", "vtt", "--start", "10"],
    "segment-motion-range": [
        "segment",
        "seg.mp4",
        *MOTION,
        "--start",
        "0:05",
        "--end",
        "21.5",
        "--hop",
        "1",
        "--min-duration",
        "3",
        "--json",
    ],  # fmt: skip
    # a random-weight TimeSformer in hub layout (400 classes "label N"), several files
    "predict-tiny-json": ["predict", "a.mp4", "b.mkv", *TINY, "--json", "-k", "3"],
    "predict-tiny-jsonl": ["predict", "a.mp4", "b.mkv", "notes.mp4", *TINY],
    "predict-tiny-csv": ["predict", "a.mp4", "notes.mp4", "b.mkv", *TINY, "-f", "csv"],
    "predict-tiny-tsv": ["predict", "b.mkv", *TINY, "-f", "tsv", "--crops", "1"],
    "predict-tiny-table": ["predict", "a.mp4", "b.mkv", *TINY, "-f", "table", "-k", "2"],
    "predict-tiny-clips": ["predict", "b.mkv", *TINY, "--clips", "3", "--json"],
    "predict-tiny-classes": [
        "predict",
        "b.mkv",
        *TINY,
        "--classes",
        "label 3,label 7,label 11",
        "--json",
    ],  # fmt: skip
    "predict-tiny-portrait": ["predict", "portrait.mp4", *TINY, "--json", "-k", "2"],
    "segment-tiny-jsonl": ["segment", "a.mp4", "b.mkv", *TINY, "--hop", "2", "-k", "2"],
    "segment-tiny-json": ["segment", "b.mkv", *TINY, "--json", "-k", "1"],
    "segment-tiny-table": ["segment", "b.mkv", *TINY, "-f", "table", "--hop", "1.5"],
    "segment-tiny-csv": ["segment", "a.mp4", "notes.mp4", "b.mkv", *TINY, "-f", "csv"],
    "segment-tiny-classes": [
        "segment",
        "b.mkv",
        *TINY,
        "--hop",
        "2",
        "--json",
        "--classes",
        "label 3,label 7",
    ],  # fmt: skip
    # damaged input that still decodes: a warning on stderr, the result on stdout
    "predict-tiny-truncated": ["predict", "cut.mp4", *TINY, "--json", "-k", "1"],
    "predict-tiny-corrupt": ["predict", "corrupt.mp4", *TINY, "--json", "-k", "1"],
    # errors and exit codes
    "error-bad-file-only": ["predict", "notes.mp4", *TINY, "--json"],
    "error-missing-path": ["predict", "nowhere.mp4", *TINY],
    "error-unknown-model": ["predict", "a.mp4", "--model", "no-such-model"],
    "error-unknown-format": ["predict", "a.mp4", *TINY, "-f", "xml"],
    "error-srt-for-predict": ["predict", "a.mp4", *TINY, "-f", "srt"],
    "error-bad-clips": ["predict", "a.mp4", *TINY, "--clips", "0"],
    "error-bad-crops": ["predict", "a.mp4", *TINY, "--crops", "2"],
    "error-bad-batch": ["predict", "a.mp4", *TINY, "--batch-size", "many"],
    "error-bad-range": ["predict", "a.mp4", *TINY, "--start", "4", "--end", "2"],
    "error-empty-range": ["predict", "a.mp4", *TINY, "--start", "30", "--json"],
    "error-unknown-class": ["predict", "a.mp4", *TINY, "--classes", "label 3,lable 7"],
    "error-bad-precision": ["predict", "a.mp4", "--weights", "weights", "--precision", "fp8"],
    "error-bad-device": ["predict", "a.mp4", *TINY, "--device", "tpu"],
    "error-resume-needs-jsonl": ["predict", "a.mp4", *TINY, "--resume"],
    "error-bad-shard": ["predict", "a.mp4", *TINY, "--shard", "3/2"],
    "error-gpus-and-workers": ["predict", "a.mp4", *TINY, "--gpus", "1", "--workers", "2"],
    # standard input, output files, resume, verbosity
    "segment-tiny-stdin": ["<b.mkv", "segment", "-", *TINY, "--json", "-k", "2"],
    "predict-tiny-stdin-jsonl": ["<a.mp4", "predict", "-", *TINY, "-f", "jsonl", "-k", "2"],
    "segment-motion-output-vtt": ["segment", "seg.mp4", *MOTION, "-o", "out/seg.vtt"],
    "predict-tiny-output-csv": ["predict", "a.mp4", "b.mkv", *TINY, "-o", "out/r.csv", "-q"],
    "predict-tiny-resume": [  # the second run resumes the first; the third has nothing to do
        ["predict", "a.mp4", *TINY, "-o", "out/r.jsonl", "-k", "1"],
        RESUMED,
        RESUMED,
    ],
    "predict-tiny-verbose": ["predict", "b.mkv", *TINY, "-v", "-k", "1", "--json"],
    "predict-tiny-quiet": ["predict", "cut.mp4", "notes.mp4", *TINY, "-q", "-k", "1"],
    "predict-from-list": [
        "<list.txt",
        "predict",
        "--from-list",
        "-",
        *TINY,
        "-f",
        "csv",
        "-k",
        "1",
    ],  # fmt: skip
    # probe and models
    "probe-json": ["probe", "a.mp4", "b.mkv", "portrait.mp4", "notes.mp4", "--json"],
    "probe-one-json": ["probe", "cut.mp4", "--json"],
    "probe-table": ["probe", "a.mp4", "portrait.mp4", "notes.mp4", "-f", "table"],
    "models-json": ["models", "--json"],
    "models-piped": ["models"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> Path:
    root = tmp_path_factory.mktemp("golden")
    shutil.copy(ROOT / "examples" / "motion.mp4", root / "motion.mp4")
    shutil.copytree(tiny_weights, root / "weights")
    make_video(root / "a.mp4", n_frames=150, fps=30, size=(160, 120))
    make_video(root / "b.mkv", n_frames=330, fps=30, size=(160, 90))
    make_video(root / "portrait.mp4", n_frames=90, fps=30, size=(90, 160), rotation=90)
    make_text(root / "notes.mp4")
    (root / "list.txt").write_text("# videos\na.mp4\n\nb.mkv\n", encoding="utf-8")
    make_truncated(root / "cut.mp4", n_frames=300, keep=0.5)
    make_corrupt_packets(root / "corrupt.mp4")
    video = mv.random_segment_video(np.random.default_rng(31_337), size=(320, 180))
    mv.write_video(video, root / "seg.mp4")
    return root


def _masked(stderr: str) -> str:
    """Timings vary from run to run, and thread counts from machine to machine; what warnings
    and errors say does not."""
    lines = stderr.splitlines(keepends=True)
    return "".join(
        line if line.startswith(("warning:", "error:")) else _mask_line(line) for line in lines
    )


def _mask_line(line: str) -> str:
    line = re.sub(r"\d+\.\d+ s\b", "N s", line)
    return re.sub(r"^threads: torch \d+, decoder \d+$", "threads: torch N, decoder N", line)


def run(workdir: Path, args: list[str]) -> str:
    """One command's exit code, stdout, stderr and output file as one text."""
    stdin = None
    if args[0].startswith("<"):
        stdin, args = (workdir / args[0][1:]).read_bytes(), args[1:]
    env = {
        "COLUMNS": "160",
        "HF_HOME": str(workdir / "hf-home"),
        "VIDCLS_CACHE": str(workdir / "vidcls-cache"),
        "HF_HUB_OFFLINE": "1",
    }
    result = CliRunner().invoke(app, args, input=stdin, env=env)
    text = f"$ vidcls {' '.join(args)}\nexit: {result.exit_code}\n--- stdout\n{result.stdout}"
    text += f"--- stderr\n{_masked(result.stderr)}"
    for flag in ("-o", "--output"):
        if flag in args and (workdir / args[args.index(flag) + 1]).is_file():
            written = workdir / args[args.index(flag) + 1]
            text += f"--- {written.name}\n{written.read_text(encoding='utf-8')}"
    return text


@pytest.mark.parametrize("name", list(CASES))
def test_golden(name: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    shutil.rmtree(workdir / "out", ignore_errors=True)
    (workdir / "out").mkdir()
    case = CASES[name]
    steps = case if isinstance(case[0], list) else [case]
    text = "".join(run(workdir, step) for step in steps)  # type: ignore[arg-type]
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path.name}: run with VIDCLS_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(CASES)
