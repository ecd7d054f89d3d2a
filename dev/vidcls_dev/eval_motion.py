"""Score `motion-tiny` (or a candidate from train_motion.py) on random 60-s segment videos.

    python -m vidcls_dev.eval_motion                       # the shipped model, 20 videos
    python -m vidcls_dev.eval_motion --weights /tmp/cand   # a folder written by train_motion --out
    python -m vidcls_dev.eval_motion --cache /tmp/segs     # keep the videos for the next run
    python -m vidcls_dev.eval_motion --min-duration 2.8    # another timeline rule
    python -m vidcls_dev.eval_motion --sweep               # accuracy by speed and by growth

tests/test_motion.py checks three fixed segment videos against the issue's targets; this looks
wider. Each video comes from `motion.random_segment_video` (every frame size, shape and
background; 30 fps; no rotation), is written with libx264 and run through
`vidcls.segment(hop=span / 2)` exactly as the test does. Per video it prints the share of the
duration labelled right, the true boundaries with no predicted one within a span, and the
accuracy of the windows that lie inside one segment ("clean" windows, no boundary to blur them),
with the shape's luminance against its background: the model reads some colour pairs far worse
than others, and this is where that shows. The summary adds the windows that straddle a boundary,
split by whether the shape jumps there (a cut): a window across a cut often reads, sure of
itself, as neither of its labels, and that costs more of the duration than clean windows do.

`--sweep` asks where along the task's ranges the model errs: clips with the speed (or the growth
factor) pinned, rendered at the model's input as train_motion renders them, without a codec (on
the clean windows of 60 segment videos one view of the shipped model got 92.9 % of the rendered
clips right and 93.0 % of the decoded ones), and averaged over the symmetric views as the
engine averages them: a few minutes on 2 CPU cores. Segment videos need it most: a move that
lasts 3–5 s has to stay on screen, which holds their moves to 15–25 % of the side per second
(16 % the median), the slowest of the range.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import vidcls
from vidcls.segments import default_min_duration

from . import motion as mv
from . import train_motion as tm

NAME = "motion-tiny"
SEED = 4242
TARGET = 0.90  # the share of the duration
# the sweep's values, the task's ranges' ends included
SPEEDS = (mv.SPEED_RANGE[0], 0.20, 0.25, 0.30, mv.SPEED_RANGE[1])  # of the side per second
GROWTHS = (mv.GROWTH_RANGE[0], 1.8, 2.1, mv.GROWTH_RANGE[1])  # factor over GROWTH_SECONDS


def contrast(scene: mv.Scene) -> float:
    """Shape luminance minus the background's nearest (signed: > 0 a brighter shape)."""
    shape = tm.luminance(scene.colour)
    return min((shape - tm.luminance(c) for c in scene.bg_colours), key=abs)


def score(
    loaded, video: mv.MotionVideo, path: Path, min_duration: float | None, hop: float | None = None
) -> dict:
    """One video through `vidcls.segment` (its default hop and min_duration unless given)."""
    spec = loaded.spec
    record = vidcls.segment(path, loaded, hop=hop, min_duration=min_duration)
    segments = record["segments"]
    truth = video.truth()
    # per kind of window: [right, count]; right = top-1 is one of the labels it saw
    kinds = {"clean": [0, 0], "boundary": [0, 0], "cut": [0, 0]}
    for window in record["windows"]:
        times = tm.frame_times(spec, video, window["start"])
        labels = video.labels_at(times)
        if (labels == labels[0]).all():
            kind = "clean"
        else:
            kind = "cut" if video.cut_within(times) else "boundary"
        kinds[kind][0] += mv.CLASSES.index(window["top_k"][0]["label"]) in labels
        kinds[kind][1] += 1
    return {
        "correct": mv.correct_seconds(truth, segments) / record["duration"],
        "missed": len(mv.missed_boundaries(truth, segments, spec.span)),
        "boundaries": len(truth) - 1,
        "kinds": kinds,
        "windows": len(record["windows"]),
        "duration": record["duration"],
    }


def rendered_accuracy(model: torch.nn.Module, spec, clips: list[mv.MotionVideo]) -> float:
    """Top-1 accuracy on each clip's middle window, rendered at the model's input (no codec)."""
    right = 0
    for first in range(0, len(clips), 256):
        chunk = clips[first : first + 256]
        batch = tm.Batch(spec)
        for clip in chunk:
            batch.add(clip, max(0.0, (clip.duration - spec.span) / 2), 0)
        x = tm.normalise(batch.render().round(), spec)
        with torch.no_grad():  # as the engine runs it: the mean over symmetric views
            guess = tm.symmetric_softmax(model, x, spec).argmax(-1).tolist()
        right += sum(g == mv.CLASSES.index(c.label) for g, c in zip(guess, chunk, strict=True))
    return right / len(clips)


def sweep(loaded, seed: int, per_value: int) -> dict[str, dict[float, float]]:
    """Accuracy of the moves at each of SPEEDS and of growing/shrinking at each of GROWTHS,
    `per_value` clips each (the labels in turn, everything else drawn as usual)."""
    out: dict[str, dict[float, float]] = {"speed": {}, "growth": {}}
    for kind, values, labels in (
        ("speed", SPEEDS, mv.CLASSES[:4]),
        ("growth", GROWTHS, ("growing", "shrinking")),
    ):
        for value in values:
            rng = np.random.default_rng(seed)  # the same scenes at every value
            clips = [
                mv.random_clip(rng, labels[i % len(labels)], **{kind: value})
                for i in range(per_value)
            ]
            out[kind][value] = rendered_accuracy(loaded.model, loaded.spec, clips)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=20, help="how many (default 20)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"default {SEED}")
    parser.add_argument("--weights", type=Path, help="a model folder (default: the shipped one)")
    parser.add_argument("--cache", type=Path, help="keep the videos here and reuse them")
    parser.add_argument(
        "--min-duration", type=float, help="segment's min_duration, seconds (default: its own)"
    )
    parser.add_argument(
        "--sweep", type=int, nargs="?", const=400, metavar="CLIPS",
        help="accuracy by speed and by growth instead, CLIPS rendered clips a value (400)",
    )  # fmt: skip
    parser.add_argument(
        "--hops", type=float, nargs="+", metavar="FRACTION",
        help="compare these hops, as fractions of the span (e.g. 1 0.5 0.333 0.25), each with "
        "segment's default min_duration for it; one summary row each",
    )  # fmt: skip
    args = parser.parse_args(argv)

    loaded = vidcls.load_model(NAME, weights=args.weights, device="cpu", precision="fp32")
    if args.sweep:
        found = sweep(loaded, args.seed, args.sweep)
        for kind, unit in (("speed", "of the side per second"), ("growth", "over 4 s")):
            print(f"{kind} ({unit}), {args.sweep} rendered clips each:")
            for value, accuracy in found[kind].items():
                print(f"  {value:4.2f}: {accuracy:6.1%}")
        return
    videos, paths, tmp = _segment_videos(args)
    with tmp:
        if args.hops:
            _compare_hops(loaded, videos, paths, args.hops, args.min_duration)
            return
        print("video  size        shape   backgr.   lum.diff  correct  missed  clean windows")
        rows = []
        for i, (video, path) in enumerate(zip(videos, paths, strict=True)):
            s = video.scene
            r = score(loaded, video, path, args.min_duration) | {"contrast": contrast(s)}
            rows.append(r)
            right, count = r["kinds"]["clean"]
            print(
                f"{i:5d}  {s.width:4d}x{s.height:<5d}  {s.shape:6s}  {s.background:8s}  "
                f"{r['contrast']:+8.0f}  {r['correct']:7.1%}  "
                f"{r['missed']:2d}/{r['boundaries']:<3d}  {right}/{count}",
                flush=True,
            )
    _summary(rows)


def _segment_videos(args: argparse.Namespace):
    """The seeded random segment videos, written once (into --cache, else a temporary folder
    that the returned context removes)."""
    import contextlib

    rng = np.random.default_rng(args.seed)
    videos = [
        mv.random_segment_video(rng, size=mv.random_frame_size(rng)) for _ in range(args.videos)
    ]
    tmp = contextlib.nullcontext() if args.cache else tempfile.TemporaryDirectory()
    folder = args.cache or Path(tmp.name)  # type: ignore[union-attr]
    folder.mkdir(parents=True, exist_ok=True)
    # the seed is in the name: another seed's video at the same index is another video
    paths = [folder / f"seg-{args.seed}-{i:03d}.mp4" for i in range(len(videos))]
    todo = [(v, p) for v, p in zip(videos, paths, strict=True) if not p.is_file()]
    if todo:
        print(f"writing {len(todo)} videos under {folder}", file=sys.stderr, flush=True)
        mv.write_videos([v for v, _ in todo], [p for _, p in todo])
    return videos, paths, tmp


def _compare_hops(loaded, videos, paths, fractions, min_duration) -> None:
    """One row per hop: the share of the duration labelled right and what the windows cost."""
    span = loaded.spec.span
    print(f"span {span:.3f} s, {len(videos)} videos")
    print("hop/span  hop (s)  min_dur (s)  windows/min  mean correct  min     >=90%  >=95%  missed")
    for fraction in fractions:
        hop = span * fraction
        rows = [score(loaded, v, p, min_duration, hop) for v, p in zip(videos, paths, strict=True)]
        correct = np.array([r["correct"] for r in rows])
        per_minute = 60 * sum(r["windows"] for r in rows) / sum(r["duration"] for r in rows)
        shortest = min_duration if min_duration is not None else default_min_duration(span, hop)
        missed = sum(r["missed"] for r in rows)
        print(
            f"{fraction:8.3f}  {hop:7.3f}  {shortest:11.3f}  {per_minute:11.1f}  "
            f"{correct.mean():12.1%}  {correct.min():6.1%}  {int((correct >= 0.9).sum()):5d}  "
            f"{int((correct >= 0.95).sum()):5d}  {missed:3d}/{sum(r['boundaries'] for r in rows)}",
            flush=True,
        )


def _summary(rows: list[dict]) -> None:
    correct = np.array([r["correct"] for r in rows])
    print(
        f"\ncorrect share of the duration: mean {correct.mean():.1%}, min {correct.min():.1%}, "
        f"max {correct.max():.1%}; {int((correct >= TARGET).sum())} of {len(rows)} videos "
        f"reach {TARGET:.0%}"
    )
    print(f"boundaries missed by more than a span: {sum(r['missed'] for r in rows)} of "
          f"{sum(r['boundaries'] for r in rows)}")  # fmt: skip
    for name, keep in (("brighter", lambda c: c > 0), ("darker", lambda c: c <= 0)):
        chosen = [r["kinds"]["clean"] for r in rows if keep(r["contrast"])]
        n = sum(c[1] for c in chosen)
        if n:
            got = sum(c[0] for c in chosen)
            print(f"clean windows, shape {name} than its background ({len(chosen)} videos): "
                  f"{got}/{n} = {got / n:.1%}")  # fmt: skip
    across = (("boundary", "across a boundary"), ("cut", "across a cut (the shape jumps)"))
    for kind, text in across:
        got, n = (sum(r["kinds"][kind][i] for r in rows) for i in (0, 1))
        if n:
            print(f"windows {text}: top-1 one of their labels in {got}/{n} = {got / n:.1%}")


if __name__ == "__main__":
    main()
