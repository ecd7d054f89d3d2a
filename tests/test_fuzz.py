"""The fuzzing harness (vidcls_dev.fuzz, bench/fuzz.py): a short seeded run ends with zero
findings, and the harness does see each kind of finding it must report.

The long run is `python bench/fuzz.py` (BENCHMARKS.md, "Fuzzing").
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest

from vidcls_dev.fuzz import (
    Worker,
    classify,
    command_line,
    ebml_elements,
    fuzz,
    inputs,
    make_corpus,
    mp4_boxes,
    ts_packets,
)
from vidcls_dev.media import make_video

SEED = 26
COUNT = 100  # mutated inputs, each through probe, predict and segment: about a minute


def test_a_short_seeded_run_has_no_findings(tmp_path: Path) -> None:
    summary = fuzz(tmp_path, SEED, COUNT, limit=60.0, keep=tmp_path / "findings")
    assert summary.inputs == COUNT and summary.runs == 3 * COUNT
    assert summary.findings == [] and summary.bad == 0
    # both ends that are fine happen: the run is not all refusals, nor all clean files
    assert summary.outcomes["result"] > 0 and summary.outcomes["error"] > 0


def test_the_same_seed_makes_the_same_inputs(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    first = [(i.base, i.how, i.path.read_bytes()) for i in inputs(corpus, tmp_path / "a", 3, 12)]
    again = [(i.base, i.how, i.path.read_bytes()) for i in inputs(corpus, tmp_path / "b", 3, 12)]
    assert first == again
    other = [i.how for i in inputs(corpus, tmp_path / "c", 4, 12)]
    assert other != [how for _, how, _ in first]


def test_the_structure_parsers_find_boxes_elements_and_packets(tmp_path: Path) -> None:
    mp4 = make_video(tmp_path / "a.mp4", n_frames=10, size=(64, 48)).read_bytes()
    kinds = {n.kind for n in mp4_boxes(mp4)}
    assert {b"ftyp", b"moov", b"trak", b"stbl", b"stsz", b"mdat", b"tkhd", b"mdhd"} <= kinds
    mkv = make_video(tmp_path / "a.mkv", n_frames=10, size=(64, 48)).read_bytes()
    ids = {n.kind.hex() for n in ebml_elements(mkv)}
    assert {"1a45dfa3", "18538067", "1f43b675", "b0", "ba", "2ad7b1"} <= ids
    ts = make_video(tmp_path / "a.ts", n_frames=10, size=(64, 48)).read_bytes()
    assert len(ts_packets(ts)) == len(ts) // 188


def test_the_harness_reports_each_kind_of_finding(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "crash-me.mp4", n_frames=20, size=(64, 48))
    predict = command_line("predict", clip, [])
    env = {**os.environ, "VIDCLS_TEST_DECODER_CRASH": "SIGSEGV:crash-me"}
    crashing = Worker(env)
    try:
        report = crashing.run(predict, limit=120.0, rss=8 << 30)
        assert (report["outcome"], report["detail"]) == ("crash", "SIGSEGV")
    finally:
        crashing.stop()
    worker = Worker()
    try:
        assert worker.run(command_line("probe", clip, []), 120.0, 8 << 30)["outcome"] == "result"
        assert worker.run(predict, limit=0.001, rss=8 << 30)["outcome"] == "hang"
        assert worker.run(predict, limit=120.0, rss=1 << 20)["outcome"] == "memory"
    finally:
        worker.stop()


@pytest.mark.parametrize(
    ("code", "stdout", "stderr", "exception", "outcome"),
    [
        (0, '{"file": "x"}', "", None, "result"),
        (0, "not json", "", None, "exception"),
        (1, "", "error: x.mp4: not a video PyAV can read (Invalid data)", None, "error"),
        (
            1,
            "",
            "error: internal error: ZeroDivisionError: float division by zero",
            None,
            "exception",
        ),  # fmt: skip # noqa: E501
        (1, "", "", "ValueError: boom", "exception"),
        (139, "", "", None, "exception"),
    ],
)
def test_outcomes_are_classified(
    code: int, stdout: str, stderr: str, exception: str | None, outcome: str
) -> None:
    assert classify(code, stdout, stderr, exception)[0] == outcome


def test_mutations_change_the_bytes(tmp_path: Path) -> None:
    from vidcls_dev.fuzz import MUTATIONS

    corpus = make_corpus(tmp_path / "corpus")
    donors = [p.read_bytes() for p in corpus]
    rng = random.Random(0)
    changed = Counter()
    for path in corpus:
        for name, mutation in MUTATIONS.items():
            for _ in range(5):
                data = bytearray(path.read_bytes())
                assert mutation(data, rng, donors, path.suffix)
                changed[name] += bytes(data) != path.read_bytes()
    # a swap of two equal packets or a field set to the value it had changes nothing; rarely
    assert all(n >= 0.8 * 5 * len(corpus) for n in changed.values()), changed


# (seed, input) of findings of earlier runs, fixed since: each must stay a result or an error
FOUND = [(26, 158), (26, 396)]  # a stream announced mid-file (PyAV IndexError); a 25-min leap


def test_earlier_findings_stay_fixed(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    worker = Worker()
    try:
        for seed, index in FOUND:
            found = list(inputs(corpus, tmp_path / f"s{seed}", seed, index + 1))[-1]
            for command in ("probe", "predict", "segment"):
                report = worker.run(command_line(command, found.path, []), 60.0, 3 << 30)
                assert report["outcome"] in ("result", "error"), (seed, index, command, report)
    finally:
        worker.stop()
