"""Scoring a timeline against annotations: temporal action localization by the ActivityNet
protocol, and the share of annotated time labelled correctly.

The protocol is the one of ActivityNet's `eval_detection.py`, per class: detections sorted by
score (highest first; equal scores keep their order in the file, where the official code's
unstable sort leaves it to chance), each matched greedily to the unmatched ground-truth instance
of the same video with the highest temporal IoU at or above the threshold, every ground-truth
instance matched at most once per threshold; AP is the area under the interpolated
precision-recall curve (precision made monotone from the right, summed over recall steps).
Classes are those of the ground truth; detections of other classes are left out; a class with
no detections scores 0. mAP is the mean over classes at each threshold, the average mAP the mean
over thresholds.

The readers take ActivityNet JSON (`database` for ground truth, `results` for detections),
THUMOS text (`video t0 t1 class score` lines; a ground-truth folder of `CLASS_val.txt` /
`CLASS_test.txt` files of `video t0 t1` lines) and vidcls's own json / jsonl records. Nothing
here touches the network: the official evaluator's blocked-video list is not fetched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError

ACTIVITYNET_TIOU = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95
THUMOS_TIOU = (0.3, 0.4, 0.5, 0.6, 0.7)
_ID_STYLES = ("stem", "name", "path")


@dataclass(frozen=True, order=True)
class Instance:
    video: str
    start: float
    end: float
    label: str
    score: float = 1.0


@dataclass(frozen=True)
class Report:
    tiou: tuple[float, ...]
    classes: dict[str, list[float]]  # per class: AP at each threshold
    instances: dict[str, int]  # per class: ground-truth instances
    mean_ap: list[float]  # per threshold
    average_map: float
    duration_correct: float | None  # share of annotated time labelled correctly
    videos: int
    detections: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "tiou": list(self.tiou),
            "mAP": self.mean_ap,
            "average_mAP": self.average_map,
            "duration_correct": self.duration_correct,
            "videos": self.videos,
            "detections": self.detections,
            "classes": {
                label: {"AP": aps, "instances": self.instances[label]}
                for label, aps in self.classes.items()
            },
        }


def parse_tiou(text: str) -> tuple[float, ...]:
    """'0.5:0.05:0.95' (start:step:stop, stop included), or '0.3,0.5', or one number."""
    try:
        if ":" in text:
            first, step, last = (float(x) for x in text.split(":"))
            if step <= 0 or last < first:
                raise ValueError
            count = int(np.floor((last - first) / step + 1e-9)) + 1
            values = [round(first + i * step, 10) for i in range(count)]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--tiou '{text}': use START:STEP:STOP or a list like 0.3,0.5") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise UsageError(f"--tiou '{text}': thresholds lie in (0, 1]")
    return tuple(values)


def segment_iou(target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Temporal IoU of one segment (2,) with each of candidates (n, 2)."""
    inter = np.minimum(target[1], candidates[:, 1]) - np.maximum(target[0], candidates[:, 0])
    inter = inter.clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """ActivityNet's interpolated AP of a precision-recall curve."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def average_precision(
    truth: Sequence[Instance], detections: Sequence[Instance], tiou: Sequence[float]
) -> np.ndarray:
    """One class's AP at each threshold (ActivityNet's `compute_average_precision_detection`)."""
    ap = np.zeros(len(tiou))
    if not detections or not truth:
        return ap
    by_video: dict[str, list[int]] = {}
    for j, inst in enumerate(truth):
        by_video.setdefault(inst.video, []).append(j)
    extents = np.array([[t.start, t.end] for t in truth], dtype=np.float64)
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)  # stable
    taken = np.full((len(tiou), len(truth)), False)
    tp = np.zeros((len(tiou), len(detections)))
    for rank, i in enumerate(order):
        det = detections[i]
        members = by_video.get(det.video)
        if not members:
            continue  # a false positive at every threshold
        ious = segment_iou(np.array([det.start, det.end]), extents[members])
        ranked = np.argsort(-ious, kind="stable")
        for t, threshold in enumerate(tiou):
            for k in ranked:
                if ious[k] < threshold:
                    break
                j = members[k]
                if taken[t, j]:
                    continue
                taken[t, j] = True
                tp[t, rank] = 1
                break
    hits = np.cumsum(tp, axis=1)
    misses = np.cumsum(1 - tp, axis=1)
    recall = hits / len(truth)
    precision = hits / (hits + misses)
    for t in range(len(tiou)):
        ap[t] = interpolated_ap(precision[t], recall[t])
    return ap


def duration_correct(truth: Sequence[Instance], detections: Sequence[Instance]) -> float | None:
    """The share of annotated time where the highest-scoring detection covering it has one of
    the labels annotated there (time no detection covers counts as wrong)."""
    gts_of = _by_video(truth)
    dets_of = _by_video(detections)
    annotated = correct = 0.0
    for video, gts in gts_of.items():
        dets = dets_of.get(video, [])
        cuts = np.unique([x for s in (*gts, *dets) for x in (s.start, s.end)])
        lengths, middle = np.diff(cuts), (cuts[1:] + cuts[:-1]) / 2
        g = np.array([[s.start, s.end] for s in gts])
        inside = (g[:, 0] <= middle[:, None]) & (middle[:, None] < g[:, 1])  # (pieces, gts)
        there = inside.any(1)
        annotated += float(lengths[there].sum())
        if not dets:
            continue
        d = np.array([[s.start, s.end, s.score] for s in dets])
        covers = (d[:, 0] <= middle[:, None]) & (middle[:, None] < d[:, 1])  # (pieces, dets)
        best = np.where(covers, d[:, 2], -np.inf).argmax(1)
        best_label = np.array([dets[b].label for b in best], dtype=object)
        gt_labels = np.array([s.label for s in gts], dtype=object)
        hit = (inside & (gt_labels[None, :] == best_label[:, None])).any(1) & covers.any(1)
        correct += float(lengths[hit & there].sum())
    return correct / annotated if annotated > 0 else None


def _by_video(instances: Iterable[Instance]) -> dict[str, list[Instance]]:
    out: dict[str, list[Instance]] = {}
    for inst in instances:
        out.setdefault(inst.video, []).append(inst)
    return out


def evaluate(
    truth: Sequence[Instance], detections: Sequence[Instance], tiou: Sequence[float]
) -> Report:
    labels = sorted({t.label for t in truth})
    if not labels:
        raise UsageError("the ground truth holds no annotated segment")
    videos = {t.video for t in truth}
    truth_of: dict[str, list[Instance]] = {}
    for t in truth:
        truth_of.setdefault(t.label, []).append(t)
    dets_of: dict[str, list[Instance]] = {}
    for d in detections:
        dets_of.setdefault(d.label, []).append(d)
    classes: dict[str, list[float]] = {}
    instances: dict[str, int] = {}
    for label in labels:
        gts = truth_of[label]
        classes[label] = [float(x) for x in average_precision(gts, dets_of.get(label, []), tiou)]
        instances[label] = len(gts)
    table = np.array(list(classes.values()))  # (classes, thresholds)
    mean_ap = [float(x) for x in table.mean(0)]
    return Report(
        tuple(tiou), classes, instances, mean_ap, float(np.mean(mean_ap)),
        duration_correct(truth, [d for d in detections if d.video in videos]),
        len(videos), len(detections),
    )  # fmt: skip


# --- readers ---------------------------------------------------------------------------------


def video_id(path: str, style: str = "stem") -> str:
    """A video's id from its path: the file stem (ActivityNet's ids), its name, or the path."""
    if style == "path":
        return path
    name = Path(path).name
    return Path(name).stem if style == "stem" else name


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _segment(entry: Any, where: str) -> tuple[float, float]:
    if not isinstance(entry, dict) or "segment" not in entry or "label" not in entry:
        raise UsageError(f"{where}: an entry needs 'label' and 'segment'")
    seg = entry["segment"]
    if not isinstance(seg, list) or len(seg) != 2:
        raise UsageError(f"{where}: 'segment' must be [start, end]")
    start, end = _number(seg[0], where), _number(seg[1], where)
    if end < start:
        raise UsageError(f"{where}: segment ends before it starts ({start} > {end})")
    return start, end


def _records(document: Any) -> Iterable[dict[str, Any]]:
    items = document if isinstance(document, list) else [document]
    return (r for r in items if isinstance(r, dict))


def _from_vidcls(records: Iterable[dict[str, Any]], style: str) -> list[Instance]:
    """Segments of vidcls records: file records (with their segments), or segment records when
    a stream holds no file record with segments for that file."""
    from_files: dict[str, list[Instance]] = {}
    loose: dict[str, list[Instance]] = {}
    for r in records:
        kind = r.get("type")
        if kind == "file" and "segments" in r:
            vid = video_id(str(r["file"]), style)
            from_files[vid] = [
                Instance(
                    vid, float(s["start"]), float(s["end"]), str(s["label"]), float(s["score"])
                )  # fmt: skip # noqa: E501
                for s in r["segments"]
            ]
        elif kind == "segment":
            vid = video_id(str(r["file"]), style)
            loose.setdefault(vid, []).append(
                Instance(
                    vid, float(r["start"]), float(r["end"]), str(r["label"]), float(r["score"])
                )  # fmt: skip # noqa: E501
            )
    out = [i for group in from_files.values() for i in group]
    out += [i for vid, group in loose.items() if vid not in from_files for i in group]
    return out


def _from_thumos_lines(text: str, where: str) -> list[Instance]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 5:
            raise UsageError(f"{where}:{n}: expected 'video t0 t1 class score'")
        video, t0, t1, label, score = fields
        try:
            out.append(Instance(video, float(t0), float(t1), label, float(score)))
        except ValueError:
            raise UsageError(f"{where}:{n}: t0, t1 and score must be numbers") from None
    return out


def _thumos_folder(folder: Path) -> list[Instance]:
    """THUMOS'14 annotations: one `CLASS_val.txt` or `CLASS_test.txt` per class of `video t0 t1`
    lines; `Ambiguous_*` marks time that is no class and is left out."""
    out: list[Instance] = []
    for path in sorted(folder.glob("*.txt")):
        label = path.stem
        for suffix in ("_val", "_test"):
            label = label.removesuffix(suffix)
        if label == "Ambiguous":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                out.append(Instance(fields[0], float(fields[1]), float(fields[2]), label))
            except (ValueError, IndexError):
                raise UsageError(f"{path}:{n}: expected 'video t0 t1'") from None
    if not out:
        raise UsageError(f"{folder}: no THUMOS annotation files (CLASS_val.txt, CLASS_test.txt)")
    return out


def _parse_json(path: Path, text: str) -> Any:
    """One JSON document, or JSON lines."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UsageError(f"{path}:{n}: not JSON ({e.msg})") from None
    return items


def _read(path: str) -> tuple[Path, str]:
    p = Path(path)
    if p.is_dir():
        return p, ""
    try:
        return p, p.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file") from None


def read_truth(path: str, subset: str | None = None, style: str = "stem") -> list[Instance]:
    """Ground truth: ActivityNet JSON (`database`; `subset` keeps one subset), a THUMOS folder,
    or vidcls json / jsonl records."""
    p, text = _read(path)
    if p.is_dir():
        return _thumos_folder(p)
    document = _parse_json(p, text) if text.lstrip()[:1] in ("{", "[") else None
    if document is None:
        return _from_thumos_lines(text, path)  # `video t0 t1 class score` lines, score ignored
    if isinstance(document, dict) and "database" in document:
        out = []
        database = document["database"]
        if not isinstance(database, dict):
            raise UsageError(f"{path}: 'database' must map video ids to their annotations")
        for vid, entry in database.items():
            if subset is not None and entry.get("subset") != subset:
                continue
            for n, ann in enumerate(entry.get("annotations", ())):
                start, end = _segment(ann, f"{path}: {vid} annotation {n}")
                out.append(Instance(str(vid), start, end, str(ann["label"])))
        return out
    return _from_vidcls(_records(document), style)


def read_predictions(path: str, style: str = "stem") -> list[Instance]:
    """Detections: ActivityNet JSON (`results`), THUMOS lines, or vidcls json / jsonl."""
    p, text = _read(path)
    if p.is_dir():
        raise UsageError(f"{path}: predictions are one file, not a folder")
    document = _parse_json(p, text) if text.lstrip()[:1] in ("{", "[") else None
    if document is None:
        return _from_thumos_lines(text, path)
    if isinstance(document, dict) and "results" in document:
        out = []
        results = document["results"]
        if not isinstance(results, dict):
            raise UsageError(f"{path}: 'results' must map video ids to their detections")
        for vid, dets in results.items():
            for n, det in enumerate(dets):
                where = f"{path}: {vid} detection {n}"
                start, end = _segment(det, where)
                score = _number(det.get("score"), where)
                out.append(Instance(str(vid), start, end, str(det["label"]), score))
        return out
    return _from_vidcls(_records(document), style)


def check_style(style: str) -> str:
    if style not in _ID_STYLES:
        raise UsageError(f"--video-id '{style}': use {', '.join(_ID_STYLES)}")
    return style
