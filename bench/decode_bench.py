"""Decode speed: vidcls's window stream vs `PyAV plain`, exact frames only.

For each 1080p file and protocol (8 × 32 `timesformer`, 1-in-4 `timesformer-l`, 1-in-2 `vivit`)
over the windows `vidcls predict` uses, three methods are timed in interleaved rounds:

* `PyAV plain`: bench/baselines.py — `thread_type="AUTO"`, every frame decoded in order, the
  frame shown at each wanted instant converted to full-size rgb24;
* `vidcls`: iterating `vidcls.windows.open_windows(path, spec, FileOptions())`, which probes
  (packet index), plans, decodes and yields the uint8 views the model gets (resized, 3 crops);
* `vidcls, no plan`: the same with the plan disabled (`stream.info.packet_pts = []`): no
  skipping of non-reference frames, no jumps over groups of pictures.

Video fps = frames in the file / wall seconds. Before timing, an exactness pass (also warming the
page cache) checks for every instant of every window that vidcls picks the same frame as
`PyAV plain`: same pts and the same yuv420p planes (MD5). vidcls is instrumented for it by
swapping its frame converter (`vidcls.decode.frame_converter`) and crop step
(`vidcls.transforms.crop_views`) for ones that return (pts, MD5); its decode path is unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baselines import PlainStats, iter_pyav_plain

from vidcls_dev.bench import (
    V1080,
    VIDEOS,
    Table,
    add_common_args,
    fmt,
    header,
    median,
    ratio,
    report,
    spread,
    verdict,
    video_path,
)

PROTOCOLS = {"timesformer": "8×32", "timesformer-l": "1-in-4 (96×4)", "vivit": "1-in-2 (32×2)"}
METHODS = ("PyAV plain", "PyAV keep-only", "vidcls", "vidcls, no plan")
TARGET = {"timesformer": 1.6}  # issue 6: ≥ 1.6× PyAV plain at 8 × 32 on the 1080p files


@dataclass
class Run:
    seconds: float
    decoded: int
    seeks: int


def planes_md5(frame: Any) -> str:
    return hashlib.md5(frame.to_ndarray(format="yuv420p").tobytes()).hexdigest()


def run_plain(path: Path, times: list[float], convert_all: bool = True) -> Run:
    stats = PlainStats()
    started = time.perf_counter()
    for _ in iter_pyav_plain(path, times, stats=stats, convert_all=convert_all):
        pass
    return Run(time.perf_counter() - started, stats.frames, 0)


def run_vidcls(path: Path, name: str, plan: bool) -> Run:
    import vidcls
    from vidcls.config import FileOptions
    from vidcls.windows import open_windows

    spec = vidcls.get_spec(name)
    started = time.perf_counter()
    stream = open_windows(path, spec, FileOptions())
    if not plan:
        stream.info.packet_pts = []  # no DecodePlan: every frame decoded, no jumps
    for _ in stream:
        pass
    return Run(time.perf_counter() - started, stream.stats.frames, stream.stats.seeks)


@contextlib.contextmanager
def fingerprints() -> Iterator[None]:
    """Make vidcls's window stream yield, per frame slot, (pts, MD5 of the yuv420p planes)."""
    import vidcls.decode
    import vidcls.transforms

    def converter(short_side: int, full: int | None = None) -> Callable[[Any], tuple[int, str]]:
        return lambda frame: (frame.pts, planes_md5(frame))

    saved = vidcls.decode.frame_converter, vidcls.transforms.crop_views
    vidcls.decode.frame_converter = converter  # type: ignore[assignment]
    vidcls.transforms.crop_views = lambda frames, size, crops: frames  # type: ignore[assignment]
    try:
        yield
    finally:
        vidcls.decode.frame_converter, vidcls.transforms.crop_views = saved


def verify(path: Path, name: str) -> dict[str, str]:
    """For each vidcls variant, 'matched/instants' against PyAV plain's (pts, planes)."""
    import vidcls
    from vidcls.config import FileOptions
    from vidcls.windows import open_windows

    spec = vidcls.get_spec(name)
    results: dict[str, str] = {}
    reference: dict[float, tuple[int | None, str]] = {}
    for plan in (True, False):
        with fingerprints():
            stream = open_windows(path, spec, FileOptions())
            if not plan:
                stream.info.packet_pts = []
            picked = [
                (t, fp) for window, fps in stream for t, fp in zip(window.times, fps, strict=True)
            ]
        if not reference:
            times = sorted({t for t, _ in picked})
            reference = {t: (pts, md5) for t, pts, md5 in iter_pyav_plain(path, times, planes_md5)}
        same = sum(reference.get(t) == fp for t, fp in picked)
        bad = [(t, fp, reference.get(t)) for t, fp in picked if reference.get(t) != fp]
        for t, got, want in bad[:3]:
            print(f"  MISMATCH {path.name} {name} plan={plan} t={t:.4f}: {got} vs {want}")
        results["vidcls" if plan else "vidcls, no plan"] = f"{same}/{len(picked)}"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=VIDEOS, help="folder of the test videos")
    parser.add_argument(
        "--files", nargs="+", default=list(V1080), help=f"default: {' '.join(V1080)}"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(PROTOCOLS),
        help=f"registry names giving the protocols (default: {' '.join(PROTOCOLS)})",
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-verify", action="store_true", help="skip the exactness pass")
    add_common_args(parser)
    args = parser.parse_args()

    import vidcls
    from vidcls.clips import predict_plan
    from vidcls.video import probe

    header()
    table = Table(
        f"Decode, median of {args.repeat} interleaved round(s)",
        [
            "file",
            "protocol",
            "method",
            "seconds",
            "spread",
            "video fps",
            "decoded",
            "seeks",
            "instants",
            "× PyAV plain",
            "exact",
        ],
    )
    notes: list[str] = []
    for name in args.files:
        path = video_path(args.videos, name)
        info = probe(path)
        count = info.frame_count or 0
        for model in args.models:
            spec = vidcls.get_spec(model)
            windows = list(predict_plan(spec, info.duration).windows)
            times = [t for w in windows for t in w.times]
            protocol = f"{model} {PROTOCOLS.get(model, '')}".strip()
            print(f"{name}, {protocol}: {len(windows)} windows, {len(set(times))} instants")
            exact = {} if args.no_verify else verify(path, model)
            runs: dict[str, list[Run]] = {m: [] for m in METHODS}
            for r in range(args.repeat):
                shift = r % len(METHODS)
                order = METHODS[shift:] + METHODS[:shift]  # rotate: no method always first
                for method in order:
                    gc.collect()
                    if method.startswith("PyAV"):
                        run = run_plain(path, times, convert_all=method == "PyAV plain")
                    else:
                        run = run_vidcls(path, model, plan=method == "vidcls")
                    runs[method].append(run)
                    print(f"  round {r + 1}: {method}: {run.seconds:.2f} s", flush=True)
            base = median([r.seconds for r in runs["PyAV plain"]])
            for method in METHODS:
                seconds = [r.seconds for r in runs[method]]
                wall = median(seconds)
                last = runs[method][-1]
                kept = len(set(times))
                x = ratio(base, wall)
                table.add(
                    name,
                    protocol,
                    method,
                    fmt(wall),
                    spread(seconds),
                    f"{count / wall:.0f}",
                    last.decoded,
                    last.seeks if not method.startswith("PyAV") else "–",
                    kept,
                    fmt(x),
                    "reference" if method.startswith("PyAV") else exact.get(method, "not checked"),
                )
                if method == "vidcls" and model in TARGET:
                    judged = verdict(x >= TARGET[model], (info.duration or 0) >= 59)
                    notes.append(
                        f"{name}, {protocol}: vidcls {x:.2f}× PyAV plain "
                        f"(target ≥ {TARGET[model]}×: {judged})"
                    )
    notes.append(
        "video fps = frames in the file / wall seconds; 'decoded' = frames the decoder produced "
        "(last round); 'instants' = distinct times the windows ask for; 'exact' = window "
        "slots whose frame has the same pts and yuv420p planes as PyAV plain's."
    )
    report("Decode: vidcls vs PyAV plain", [table], notes, args.append)


if __name__ == "__main__":
    main()
