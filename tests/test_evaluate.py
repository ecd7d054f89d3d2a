"""`vidcls eval`: ActivityNet's detection protocol, checked by hand and against an independent
implementation written here; the readers of each annotation format; the command's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vidcls.cli.app import app
from vidcls.errors import UsageError
from vidcls.evaluate import (
    ACTIVITYNET_TIOU,
    Instance,
    average_precision,
    duration_correct,
    evaluate,
    parse_tiou,
    read_predictions,
    read_truth,
)


def test_thresholds():
    assert ACTIVITYNET_TIOU == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert parse_tiou("0.5:0.05:0.95") == ACTIVITYNET_TIOU
    assert parse_tiou("0.3:0.1:0.7") == (0.3, 0.4, 0.5, 0.6, 0.7)
    assert parse_tiou("0.5") == (0.5,)
    with pytest.raises(UsageError, match="--tiou"):
        parse_tiou("0:0.1")
    with pytest.raises(UsageError, match=r"\(0, 1\]"):
        parse_tiou("1.5")


def test_hand_computed_ap():
    truth = [Instance("v", 0, 10, "a"), Instance("v", 20, 30, "a")]
    dets = [
        Instance("v", 0, 4, "a", 0.8),  # tIoU 0.4: a false positive at both thresholds
        Instance("v", 20, 29, "a", 0.9),  # tIoU 0.9
        Instance("v", 0, 10, "a", 0.7),  # tIoU 1
    ]
    # at 0.5: TP FP TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 + 1/2 * 2/3
    # at 0.95: FP FP TP -> 1/2 * 1/3
    ap = average_precision(truth, dets, (0.5, 0.95))
    assert ap == pytest.approx([1 / 2 + 1 / 3, 1 / 6], abs=1e-12)


def test_each_instance_matched_once_and_other_videos_are_false_positives():
    truth = [Instance("v", 0, 10, "a")]
    dets = [
        Instance("w", 0, 10, "a", 0.95),  # a video without annotations of "a"
        Instance("v", 0, 10, "a", 0.9),
        Instance("v", 0, 9, "a", 0.8),  # the instance is taken: a false positive
    ]
    # FP TP FP: precision 0, 1/2, 1/3 at recall 0, 1, 1 -> 1 * 1/2
    assert average_precision(truth, dets, (0.5,)) == pytest.approx([0.5], abs=1e-12)


def test_duration_correct_by_hand():
    truth = [Instance("v", 0, 10, "a")]
    dets = [Instance("v", 0, 6, "a", 0.9), Instance("v", 4, 10, "b", 0.8)]
    # [0, 6) is "a" (the higher score wins where both cover), [6, 10) is "b"
    assert duration_correct(truth, dets) == pytest.approx(0.6)


def _reference_ap(truth: np.ndarray, dets: np.ndarray, tiou: list[float]) -> np.ndarray:
    """The protocol again, from its description alone. truth: (n, 3) video, t0, t1; dets:
    (m, 4) video, t0, t1, score. AP as the sum, over true positives, of the best precision at
    that recall or beyond, over the number of instances."""
    out = np.zeros(len(tiou))
    if len(dets) == 0 or len(truth) == 0:
        return out
    dets = dets[np.argsort(-dets[:, 3], kind="mergesort")]
    same = dets[:, None, 0] == truth[None, :, 0]
    inter = np.clip(
        np.minimum(dets[:, None, 2], truth[None, :, 2]) - np.maximum(dets[:, None, 1], truth[None, :, 1]),  # noqa: E501
        0, None,
    )  # fmt: skip
    union = (dets[:, 2] - dets[:, 1])[:, None] + (truth[:, 2] - truth[:, 1])[None] - inter
    iou = np.where(same, inter / union, -1.0)
    for t, thr in enumerate(tiou):
        free = np.ones(len(truth), dtype=bool)
        hit = np.zeros(len(dets))
        for i in range(len(dets)):
            candidates = np.where(free & (iou[i] >= thr), iou[i], -np.inf)
            if np.isfinite(candidates.max()):
                best = np.flatnonzero(candidates == candidates.max())[0]
                free[best] = False
                hit[i] = 1
        precision = np.cumsum(hit) / np.arange(1, len(dets) + 1)
        best_after = np.array([precision[i:].max() for i in range(len(dets))])
        out[t] = (best_after * hit).sum() / len(truth)
    return out


def test_agrees_with_an_independent_implementation():
    rng = np.random.default_rng(29)
    labels = ["a", "b", "c"]
    truth, dets = [], []
    for v in range(6):
        for _ in range(rng.integers(2, 6)):
            t0 = rng.uniform(0, 90)
            truth.append(Instance(f"v{v}", t0, t0 + rng.uniform(2, 20), str(rng.choice(labels))))
    for _ in range(300):
        # most near an annotation, so every threshold has matches; some in a video without any
        if rng.random() < 0.7:
            g = truth[rng.integers(len(truth))]
            t0, t1 = g.start + rng.normal(0, 2), g.end + rng.normal(0, 2)
            video = g.video
        else:
            t0 = rng.uniform(0, 90)
            t1, video = t0 + rng.uniform(1, 20), f"v{rng.integers(7)}"
        dets.append(Instance(video, min(t0, t1), max(t0, t1), str(rng.choice(labels)), float(rng.random())))  # fmt: skip # noqa: E501
    report = evaluate(truth, dets, ACTIVITYNET_TIOU)
    expected_maps = []
    for label in labels:
        gt = np.array([[int(t.video[1:]), t.start, t.end] for t in truth if t.label == label])
        dt = np.array([[int(d.video[1:]), d.start, d.end, d.score] for d in dets if d.label == label])  # fmt: skip # noqa: E501
        expected = _reference_ap(gt, dt, list(ACTIVITYNET_TIOU))
        assert np.abs(np.array(report.classes[label]) - expected).max() < 1e-9
        assert 0 < expected[0] < 1  # the case is not degenerate
        expected_maps.append(expected)
    assert np.abs(np.array(report.mean_ap) - np.mean(expected_maps, 0)).max() < 1e-9
    assert report.average_map == pytest.approx(np.mean(expected_maps), abs=1e-9)


def _activitynet_files(tmp_path):
    truth = {"database": {
        "v1": {"subset": "validation", "duration": 30.0, "annotations": [
            {"label": "jump", "segment": [0.0, 10.0]}, {"label": "run", "segment": [20.0, 30.0]}]},
        "v2": {"subset": "training", "annotations": [{"label": "jump", "segment": [0.0, 5.0]}]},
    }}  # fmt: skip
    results = {"version": "VERSION 1.3", "external_data": {"used": False, "details": ""},
               "results": {"v1": [{"label": "jump", "score": 0.9, "segment": [0.0, 10.0]},
                                  {"label": "run", "score": 0.8, "segment": [20.0, 26.0]}]}}  # fmt: skip # noqa: E501
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(truth))
    pred.write_text(json.dumps(results))
    return gt, pred


def test_readers_agree_across_formats(tmp_path):
    gt, pred = _activitynet_files(tmp_path)
    assert len(read_truth(str(gt))) == 3
    assert len(read_truth(str(gt), subset="validation")) == 2
    from_anet = read_predictions(str(pred))
    # the same detections as vidcls jsonl records and as THUMOS lines
    jsonl = tmp_path / "pred.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in [
        {"type": "segment", "file": "clips/v1.mp4", "start": 0.0, "end": 10.0, "label": "jump", "score": 0.9},  # noqa: E501
        {"type": "file", "file": "clips/v1.mp4", "segments": [
            {"start": 0.0, "end": 10.0, "label": "jump", "score": 0.9},
            {"start": 20.0, "end": 26.0, "label": "run", "score": 0.8}]},
    ]))  # fmt: skip
    thumos = tmp_path / "pred.txt"
    thumos.write_text("v1 0.0 10.0 jump 0.9\nv1 20.0 26.0 run 0.8\n")
    assert sorted(read_predictions(str(jsonl))) == sorted(from_anet)
    assert sorted(read_predictions(str(thumos))) == sorted(from_anet)
    # vidcls's records serve as ground truth too (a reviewed timeline)
    as_truth = read_truth(str(jsonl))
    assert [(i.video, i.start, i.end, i.label) for i in as_truth] == [
        ("v1", 0.0, 10.0, "jump"), ("v1", 20.0, 26.0, "run")
    ]  # fmt: skip
    # a THUMOS ground-truth folder
    folder = tmp_path / "thumos"
    folder.mkdir()
    (folder / "jump_val.txt").write_text("v1 0.0 10.0\n")
    (folder / "run_val.txt").write_text("v1 20.0 30.0\n")
    (folder / "Ambiguous_val.txt").write_text("v1 12.0 14.0\n")
    assert sorted(read_truth(str(folder))) == sorted(read_truth(str(gt), subset="validation"))


def test_bad_input_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": {"v1": [{"label": "a", "segment": [3, 1], "score": 1}]}}))  # fmt: skip # noqa: E501
    with pytest.raises(UsageError, match="bad.json: v1 detection 0: segment ends before"):
        read_predictions(str(bad))
    with pytest.raises(UsageError, match="missing.json: cannot read it"):
        read_truth(str(tmp_path / "missing.json"))


def test_eval_command_outputs(tmp_path):
    gt, pred = _activitynet_files(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(pred), str(gt), "--subset", "validation", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # jump: tIoU 1 -> AP 1 everywhere; run: tIoU 0.6 -> AP 1 up to 0.6, then 0
    assert report["classes"]["jump"]["AP"] == [1.0] * 10
    assert report["classes"]["run"]["AP"] == [1.0] * 3 + [0.0] * 7
    assert report["mAP"][:3] == [1.0] * 3 and report["mAP"][3:] == [0.5] * 7
    assert report["average_mAP"] == pytest.approx(0.65)
    assert report["duration_correct"] == pytest.approx(16 / 20)
    result = runner.invoke(app, ["eval", str(pred), str(gt), "--tiou", "0.3:0.1:0.7", "-f", "csv"])  # fmt: skip # noqa: E501
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "class,instances,AP@0.3,AP@0.4,AP@0.5,AP@0.6,AP@0.7"
    assert lines[1].startswith("jump,2,")  # v2 (training) counts without --subset
    result = runner.invoke(app, ["eval", str(pred), str(gt), "-f", "table"])
    assert result.exit_code == 0 and "average mAP" in result.stdout
    result = runner.invoke(app, ["eval", str(pred), str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "nope.json: cannot read it" in result.stderr
