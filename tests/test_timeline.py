"""Timelines to check and to look at: ActivityNet and THUMOS output scored by `vidcls eval`, the
HTML report opened in headless Chromium, the overlay video decoded back, the terminal's
sparklines, and untrusted names that must not become markup in HTML, SRT or VTT."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import av
import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from vidcls.cli import app
from vidcls.events import FileDone
from vidcls.output.html import short
from vidcls.output.terminal import TableWriter
from vidcls_dev import motion as mv
from vidcls_dev.media import make_video

MOTION = ["--model", "motion-tiny", "--precision", "fp32", "--offline"]
PLAN = [("moving left", 4.0), ("moving up", 4.0), ("growing", 4.0)]
EVIL = '<img src=x onerror="alert(1)">'


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("timeline")
    rng = np.random.default_rng(5)  # a video motion-tiny reads right
    video = mv.random_segment_video(rng, PLAN, duration=12.0, size=(160, 120), fps=15)
    seg = mv.write_video(video, root / "seg.mp4")
    evil = root / f"{EVIL}.mp4"
    shutil.copy(seg, evil)
    labels = root / "evil-labels.txt"
    # motion-tiny's seven classes renamed: markup, a cue timing, an entity, a line break
    names = [EVIL, "</title><script>alert(2)</script>", "00:00:01,000 --> 00:00:02,000",
             "a & b {\\an8}", "<b>bold</b>", "plain", "x"]  # fmt: skip
    labels.write_text("\n".join(names) + "\n")
    sound = make_video(root / "sound.mp4", duration=3.0, fps=15, size=(96, 64), audio=True)
    return {"seg": seg, "evil": evil, "labels": labels, "sound": sound, "root": root}


def _truth(tmp: Path) -> Path:
    database = {"seg": {"subset": "test", "duration": 12.0, "annotations": [
        {"label": label, "segment": [4.0 * i, 4.0 * (i + 1)]} for i, (label, _) in enumerate(PLAN)
    ]}}  # fmt: skip
    path = tmp / "truth.json"
    path.write_text(json.dumps({"database": database}))
    return path


def test_activitynet_and_thumos_score_with_eval(videos, tmp_path: Path) -> None:
    out = tmp_path / "run.activitynet.json"
    result = cli("segment", str(videos["seg"]), *MOTION, "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["version"] == "VERSION 1.3"
    assert document["external_data"]["used"] is False
    detections = document["results"]["seg"]
    assert [d["label"] for d in detections] == [label for label, _ in PLAN]
    assert detections[0]["segment"][0] == 0 and detections[-1]["segment"][1] == 12
    # thumos lines are the same detections
    lines = cli("segment", str(videos["seg"]), *MOTION, "-f", "thumos", "-q").stdout.splitlines()
    assert [line.split() for line in lines] == [
        ["seg", f"{d['segment'][0]:.3f}", f"{d['segment'][1]:.3f}", d["label"].replace(" ", "_"),
         f"{d['score']:.6f}"] for d in detections
    ]  # fmt: skip
    truth = _truth(tmp_path)
    report = json.loads(cli("eval", str(out), str(truth), "--json").stdout)
    assert report["mAP"][0] == 1.0  # every action found at tIoU 0.5
    assert report["duration_correct"] > 0.85
    # vidcls's own json scores the same
    own = tmp_path / "own.json"
    assert cli("segment", str(videos["seg"]), *MOTION, "-o", str(own), "-q").exit_code == 0
    assert json.loads(cli("eval", str(own), str(truth), "--json").stdout) == report


def test_multi_label_keeps_overlapping_proposals_of_the_top_classes(videos) -> None:
    args = ["segment", str(videos["seg"]), *MOTION, "-f", "activitynet", "-q"]
    one = json.loads(cli(*args).stdout)["results"]["seg"]
    for k in (2, 3):
        many = json.loads(cli(*args, "--multi-label", str(k)).stdout)["results"]["seg"]
        assert {label for label, _ in PLAN} <= {d["label"] for d in many}
        assert len(many) > len(one)
        assert all(0 < d["score"] <= 1 and d["segment"][0] < d["segment"][1] for d in many)
        # every moment carries exactly k labels, each at most once
        for t in np.arange(0.05, 12, 0.1):
            there = [d["label"] for d in many if d["segment"][0] <= t < d["segment"][1]]
            assert len(there) == len(set(there)) == k, (t, there)
    too_many = cli(*args, "--multi-label", "6", "-k", "5")
    assert too_many.exit_code == 2 and "--multi-label 6 needs --top-k 6" in too_many.stderr


def test_top_k_runs_by_hand() -> None:
    from vidcls.segments import top_k_runs

    spans = [[0, 1], [1, 3], [3, 4]]
    probs = [[0.6, 0.2, 0.1], [0.3, 0.5, 0.2], [0.1, 0.3, 0.7]]  # classes × pieces
    assert top_k_runs(spans, probs, 1) == [(0, 0, 1, 0.6), (1, 1, 3, 0.5), (2, 3, 4, 0.7)]
    # in [1, 3) class 0 is third; class 1 is first or second throughout; class 2 from 1 on
    assert top_k_runs(spans, probs, 2) == [
        (0, 0, 1, 0.6),
        (1, 0, 4, pytest.approx((0.3 + 2 * 0.5 + 0.2) / 4)),
        (2, 1, 4, pytest.approx((2 * 0.3 + 0.7) / 3)),
    ]


def test_formats_from_the_output_name() -> None:
    from vidcls.output import format_for

    assert format_for("out/run.activitynet.json") == "activitynet"
    assert format_for("run.json") == "json"
    assert format_for("run.thumos.txt") == "thumos" and format_for("run.txt") == "table"
    assert format_for("Report.HTML") == "html"


def test_video_ids(videos, tmp_path: Path) -> None:
    args = ["segment", str(videos["seg"]), *MOTION, "-f", "activitynet", "-q"]
    assert list(json.loads(cli(*args, "--video-id", "name").stdout)["results"]) == ["seg.mp4"]
    assert list(json.loads(cli(*args, "--video-id", "path").stdout)["results"]) == [
        str(videos["seg"])
    ]
    other = tmp_path / "seg.mkv"
    other.write_bytes(b"")
    same = cli("segment", str(videos["seg"]), str(other), *MOTION, "-f", "thumos")
    assert same.exit_code == 2 and "same video id 'seg'" in same.stderr


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed (apt-get install chromium; .ci/run installs it)"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
               "--v=0", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_html_report_in_chromium(videos, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    jsonl = tmp_path / "run.jsonl"
    files = [str(videos["seg"]), str(videos["evil"])]
    result = cli("segment", *files, *MOTION, "-o", str(page), "-q", "--labels", str(videos["labels"]))  # fmt: skip # noqa: E501
    assert result.exit_code == 0, result.output
    cli("segment", *files, *MOTION, "-o", str(jsonl), "-q", "--labels", str(videos["labels"]))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    segments = {r["file"]: [] for r in records if r["type"] == "file"}
    for r in records:
        if r["type"] == "segment":
            segments[r["file"]].append(r)
    text = page.read_text()
    assert "http:" not in text and "https:" not in text and "<script" not in text
    dump = _chromium("--dump-dom", page.as_uri())
    assert ":CONSOLE" not in dump.stderr, dump.stderr  # no errors, no blocked requests
    dom = _Dom()
    dom.feed(dump.stdout)
    assert not [t for t, a in dom.elements if t == "script" or "onerror" in a]
    sections = [a for t, a in dom.elements if t == "section"]
    assert [a["data-file"] for a in sections] == files  # the evil name is an attribute's text
    rects = [a for t, a in dom.elements if t == "rect" and a.get("class") == "segment"]
    expected = [s for f in files for s in segments[f]]
    assert len(rects) == len(expected) > 2
    for rect, seg in zip(rects, expected, strict=True):
        assert float(rect["data-start"]) == seg["start"] and float(rect["data-end"]) == seg["end"]
        assert rect["data-label"] == seg["label"]
    assert any(EVIL in t for t in dom.text)  # shown as text, not run
    hovers = set(dom.text)  # each segment's tooltip: label, times, score
    for seg in expected:
        times = f"{short(seg['start'])}–{short(seg['end'])}"
        assert f"{seg['label']} · {times} · score {seg['score']:.3f}" in hovers
    thumbs = [a for t, a in dom.elements if t == "img" and a.get("class") == "thumb"]
    assert len(thumbs) == len(expected)
    assert all(a["src"].startswith("data:image/jpeg;base64,/9j/") for a in thumbs)
    assert len([a for t, a in dom.elements if t == "polyline"]) == 2 * 5  # top 5 per file
    artefacts = Path(os.environ.get("VIDCLS_TEST_ARTEFACTS", tmp_path))
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1100,900", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_subtitles_carry_no_markup(videos) -> None:
    args = [str(videos["seg"]), *MOTION, "-q", "--labels", str(videos["labels"]), "--min-duration", "0"]  # fmt: skip # noqa: E501
    srt = cli("segment", *args, "-f", "srt").stdout
    vtt = cli("segment", *args, "-f", "vtt").stdout
    srt_text = [b.split("\n")[2:] for b in srt.strip().split("\n\n")]
    vtt_text = [b.split("\n")[1:] for b in vtt.strip().split("\n\n")[1:]]
    for cue in srt_text + vtt_text:
        assert len(cue) == 1  # one line of text per cue
    assert not any(c in "<>{}" for cue in srt_text for c in cue[0])
    assert not any("<" in cue[0] or ">" in cue[0] for cue in vtt_text)
    assert srt.count(" --> ") == len(srt_text) and vtt.count(" --> ") == len(vtt_text)
    # what a reader shows is the label: VTT's escapes undone give it back
    shown = [cue[0].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for cue in vtt_text]  # fmt: skip # noqa: E501
    labels = videos["labels"].read_text().splitlines()
    assert all(s.rsplit(" (", 1)[0] in labels for s in shown)


def _frames(path: Path) -> tuple[list[np.ndarray], list[float], av.video.stream.VideoStream]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in c.decode(stream)]
        return [f for f, _ in frames], [t for _, t in frames], stream


def test_overlay_draws_the_timeline(videos, tmp_path: Path) -> None:
    out = tmp_path / "over.mp4"
    result = cli("segment", str(videos["seg"]), *MOTION, "--json", "--overlay", str(out), "-q")
    assert result.exit_code == 0, result.output
    segments = json.loads(result.stdout)["segments"]
    source, _, src = _frames(videos["seg"])
    drawn, times, stream = _frames(out)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].average_rate == 15
    assert len(drawn) == len(source) and drawn[0].shape == source[0].shape == (120, 160, 3)
    # the label's swatch (top left): one colour through a segment, another in the next
    swatches = np.array([f[3:7, 3:7].reshape(-1, 3).mean(0) for f in drawn])
    middles = [(s["start"] + s["end"]) / 2 for s in segments]
    colour = [swatches[np.argmin(np.abs(np.array(times) - m))] for m in middles]
    for a, b in zip(colour, colour[1:], strict=False):
        assert np.abs(a - b).max() > 40
    for seg, c in zip(segments, colour, strict=True):
        inside = [i for i, t in enumerate(times) if seg["start"] + 0.2 < t < seg["end"] - 0.2]
        assert np.abs(swatches[inside] - c).max() < 25
    # the text changes with the label, the picture outside the drawing is the source's
    text = np.array([f[2:10, 12:150].astype(float).mean() for f in drawn])
    assert np.abs(text[0] - text[-1]) > 3
    middle = slice(30, 90)
    assert np.abs(drawn[50][middle].astype(float) - source[50][middle]).mean() < 4


# the process's own high-water mark (VmHWM; ru_maxrss would carry the parent's across exec)
_PEAK = """
import sys, av, numpy
from vidcls.encode import reencode
def peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
before = peak()
frames = reencode(sys.argv[1], sys.argv[2], lambda rgb, t: None)
print(frames, (peak() - before) / 1024)
"""


def test_overlay_memory_stays_bounded(tmp_path: Path) -> None:
    """Re-encoding holds a frame at a time: the peak grows by the codecs' buffers, far less
    than the decoded video (in a process of its own, so no earlier peak hides it)."""
    import sys

    src = make_video(tmp_path / "long.mp4", duration=24.0, fps=25, size=(640, 360))
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(src), str(tmp_path / "out.mp4")],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    frames, grew_mb = done.stdout.split()
    whole_mb = int(frames) * 640 * 360 * 3 / 2**20
    assert int(frames) == 600 and whole_mb > 390
    assert float(grew_mb) < 120, (grew_mb, whole_mb)


def test_overlay_copies_audio(videos, tmp_path: Path) -> None:
    out = tmp_path / "sound-over.mp4"
    result = cli("segment", str(videos["sound"]), *MOTION, "--overlay", str(out), "-q", "--json")
    assert result.exit_code == 0, result.output
    with av.open(str(videos["sound"])) as a, av.open(str(out)) as b:
        assert len(b.streams.audio) == 1
        assert b.streams.audio[0].codec_context.name == a.streams.audio[0].codec_context.name
        sizes = [[p.size for p in c.demux(c.streams.audio[0]) if p.size] for c in (a, b)]
    assert sizes[0] == sizes[1]  # copied packet for packet
    two = cli("segment", str(videos["sound"]), str(videos["seg"]), *MOTION, "--overlay", str(out))
    assert two.exit_code == 2 and "--overlay draws on one video" in two.stderr


def test_sparklines_on_a_terminal(videos) -> None:
    result = cli("segment", str(videos["seg"]), *MOTION, "--json", "-q")
    record = json.loads(result.stdout)
    curves = {
        "pieces": [[0.0, 4.0], [4.0, 8.0], [8.0, 12.0]],
        "classes": [{"label": "moving left", "index": 0, "probs": [1.0, 0.5, 0.0]},
                    {"label": "growing", "index": 4, "probs": [0.0, 0.0, 0.9]},
                    {"label": "still", "index": 6, "probs": [0.0, 0.5, 0.1]}],
        "shown": 2,
    }  # fmt: skip
    for terminal in (True, False):
        out = io.StringIO()
        console = Console(file=out, width=40, force_terminal=terminal, color_system=None)
        TableWriter(console, sparklines=terminal).write(FileDone("seg", record, curves))
        lines = out.getvalue().splitlines()
        sparks = [line for line in lines if line.endswith((" moving left", " growing", " still"))]
        if not terminal:
            assert not sparks
            continue
        assert len(sparks) == 2
        left = sparks[0].split(" ")[0]
        assert left[0] == "█" and left[-1] == "▁" and "▅" in left
        assert sparks[1].split(" ")[0][-1] == "▇"
