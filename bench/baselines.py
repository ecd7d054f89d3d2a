"""The baselines vidcls is measured against: what a user writes today with PyAV and transformers.

* `PyAV plain` (`iter_pyav_plain`, `pyav_plain_frames`): open the file, `thread_type="AUTO"`,
  decode every frame in order to a full-size rgb24 array and keep the frame shown at each wanted
  instant — the baseline as issue 6 defines it. With `convert_all=False` only the kept frames
  are converted, as the transformers pipeline's `read_video_pyav` does ("PyAV keep-only", a
  faster baseline). Both pick by time as vidcls does ("the frame shown at t": the last one whose
  time is <= t, times in seconds from the first frame) so that all return the same frames.
* `transformers` (`transformers_predict`): the same windows as `vidcls predict` (taken from
  `vidcls.clips.predict_plan`, so the work is equal) × 3 crops, resized (short side, torch
  bilinear with antialiasing on uint8, as torchvision and the hub's fast image processors),
  cropped and normalised as the registry entry says, through `TimesformerForVideoClassification` /
  `VivitForVideoClassification.from_pretrained(folder)` in their defaults (fp32; eager attention
  for TimeSformer, which has no other, SDPA for ViViT) or with `torch_dtype=torch.bfloat16`
  (`--precision bf16`, pixels cast to bf16), one window (3 views) per batch, softmax
  averaged over crops and windows. Decode, preprocessing and inference run one after another.

As a script: `frames` times PyAV plain on a model's windows, `predict` runs the transformers
baseline (`--json` prints what `e2e_bench.py` reads).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import av
    import numpy as np
    import torch

    from vidcls.registry import ModelSpec

EPS = 1e-6


def rgb24(frame: av.VideoFrame) -> np.ndarray:
    """Full-size RGB, as `read_video_pyav` converts the frames it keeps."""
    return frame.to_ndarray(format="rgb24")


@dataclass
class PlainStats:
    frames: int = 0  # decoded
    seconds: float = 0.0  # in the decoder and in the conversions, wall
    frame_count: int | None = None  # frames in the file (the stream's count, when known)


def iter_pyav_plain(
    path: str | Path,
    times: Iterable[float],
    convert: Callable[[av.VideoFrame], Any] = rgb24,
    stats: PlainStats | None = None,
    convert_all: bool = True,
) -> Iterator[tuple[float, int | None, Any]]:
    """Yield (time, pts, convert(frame)) for each distinct wanted time, in time order.

    The frame for `t` is the last one whose presentation time, from the first frame, is <= t
    (half a timestamp tick of tolerance, at least 1 µs); before the first frame the first, past
    the last the last. A frame shown at several times is converted once. Decoding stops once
    every time is served.
    """
    import av

    wanted = sorted(set(times))
    stats = stats if stats is not None else PlainStats()
    started = time.perf_counter()
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stats.frame_count = stream.frames or None
        tolerance = max(EPS, float(stream.time_base or 0) / 2)
        origin: float | None = None
        prev: Any = None
        cached: tuple[Any, Any] | None = None  # (frame, converted)
        k = 0

        def converted(frame: Any) -> Any:
            nonlocal cached
            if cached is None or cached[0] is not frame:
                cached = (frame, convert(frame))
            return cached[1]

        for frame in container.decode(stream):
            t = frame.time
            if origin is None:
                origin = t
            t -= origin
            stats.frames += 1
            while k < len(wanted) and wanted[k] + tolerance < t:
                shown = prev if prev is not None else frame
                out = converted(shown)
                stats.seconds += time.perf_counter() - started
                yield wanted[k], shown.pts, out
                started = time.perf_counter()
                k += 1
            if k == len(wanted):
                return
            if convert_all:
                converted(frame)  # every frame to full-size RGB; the cache keeps it as prev
            prev = frame
        if prev is not None:
            while k < len(wanted):
                out = converted(prev)
                stats.seconds += time.perf_counter() - started
                yield wanted[k], prev.pts, out
                started = time.perf_counter()
                k += 1
    finally:
        container.close()
        stats.seconds += time.perf_counter() - started


def pyav_plain_frames(
    path: str | Path, times: Iterable[float], stats: PlainStats | None = None
) -> list[tuple[int | None, np.ndarray]]:
    """(pts, full-size rgb24 array) of the frame shown at each of `times`, in their order."""
    times = list(times)
    found = {t: (pts, rgb) for t, pts, rgb in iter_pyav_plain(path, times, stats=stats)}
    return [found[t] for t in times]


# ------------------------------------------------------------------------------ transformers


def load_hf(folder: str | Path, arch: str, precision: str = "fp32") -> torch.nn.Module:
    """`from_pretrained` with transformers' defaults (fp32; their default attention), or with
    `torch_dtype=torch.bfloat16` (precision "bf16"), as a user asking for bf16 loads it."""
    import torch
    import transformers
    from transformers.utils import logging

    from vidcls_dev.bench import HF_CLASSES

    logging.disable_progress_bar()
    cls: Any = getattr(transformers, HF_CLASSES[arch])
    expected = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    if precision == "fp32":
        model = cls.from_pretrained(str(folder)).eval()
    else:
        model = cls.from_pretrained(str(folder), torch_dtype=expected).eval()
    dtype = next(model.parameters()).dtype
    if dtype != expected:
        raise RuntimeError(f"{folder}: transformers loaded it in {dtype}, expected {expected}")
    return model


def attention_of(model: torch.nn.Module) -> str:
    """The attention a transformers model actually runs."""
    config: Any = getattr(model, "config")  # noqa: B009 (nn.Module declares no config)
    if config.model_type == "timesformer":
        return "eager (TimeSformer has no other path)"
    return str(getattr(config, "_attn_implementation", None) or "unknown")


def short_side_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side at `short_side`, the long side floored."""
    if width <= height:
        return short_side, int(height / width * short_side)
    return int(width / height * short_side), short_side


def resize(rgb: np.ndarray, short_side: int) -> torch.Tensor:
    """Full-size RGB uint8 (H, W, 3) -> resized uint8 (H', W', 3), torch bilinear + antialias.

    On uint8 channels-last input torch has a fast kernel (the one torchvision's resize and the
    hub's "fast" image processors use): about 10× quicker than resizing in float.
    """
    import torch
    import torch.nn.functional as F

    height, width = rgb.shape[:2]
    out_w, out_h = short_side_size(width, height, short_side)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # a channels-last view, no copy
    x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).contiguous()


def crops_of(clip: torch.Tensor, size: int, crops: int) -> torch.Tensor:
    """(T, H, W, 3) -> (crops, T, size, size, 3): left/centre/right (top/centre/bottom)."""
    import torch

    height, width = clip.shape[1:3]
    y, x = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if crops == 1:
        corners = [(y, x)]
    elif height > width:
        corners = [(0, x), (y, x), (height - size, x)]
    else:
        corners = [(y, 0), (y, x), (y, width - size)]
    return torch.stack([clip[:, a : a + size, b : b + size] for a, b in corners])


def pixel_values(views: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 (V, T, H, W, 3) -> float32 (V, T, 3, H, W), scaled and normalised per the spec."""
    import torch

    x = views.permute(0, 1, 4, 2, 3).float() / 255
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    if spec.channel_order == "bgr":
        x = x.flip(2)
        mean, std = mean.flip(0), std.flip(0)
    return (x - mean) / std


@dataclass
class BaselineResult:
    probs: np.ndarray  # mean over windows of the mean over crops of the softmax
    windows: int
    views: int
    frames_decoded: int
    timings: dict[str, float] = field(default_factory=dict)  # probe/decode/preprocess/...

    def top_k(self, k: int = 5) -> list[dict[str, Any]]:
        import numpy as np

        order = np.argsort(-self.probs, kind="stable")[:k]
        return [{"index": int(i), "score": float(self.probs[i])} for i in order]


def transformers_predict(
    path: str | Path,
    model_name: str,
    weights_folder: str | Path | None = None,
    clips_count: int | None = None,
    crops: int | None = None,
    model: torch.nn.Module | None = None,
    precision: str = "fp32",
) -> BaselineResult:
    """`vidcls predict`'s windows × crops the way a transformers + PyAV user runs them.

    Pass `model` (from `load_hf`) to leave loading out of the timings; `total` covers probing,
    decoding, preprocessing and inference.
    """
    import numpy as np
    import torch

    import vidcls
    from vidcls.clips import predict_plan
    from vidcls.video import probe

    spec = vidcls.get_spec(model_name)
    timings: dict[str, float] = {}
    if model is None:
        if weights_folder is None:
            raise ValueError("give weights_folder or model")
        started = time.perf_counter()
        model = load_hf(weights_folder, spec.arch, precision)
        timings["load"] = time.perf_counter() - started
    crops = crops or spec.crops
    started = time.perf_counter()
    # the same windows as vidcls: its plan over the file's indexed duration
    duration = probe(path).duration
    plan = predict_plan(spec, duration, clips_count)
    windows = list(plan.windows)
    timings["probe"] = time.perf_counter() - started

    stats = PlainStats()
    resized: dict[float, torch.Tensor] = {}
    preprocess = 0.0
    for t, _pts, rgb in iter_pyav_plain(path, (t for w in windows for t in w.times), stats=stats):
        tick = time.perf_counter()
        resized[t] = resize(rgb, spec.short_side)
        preprocess += time.perf_counter() - tick
    timings["decode"] = stats.seconds

    inference = 0.0
    probs = []
    for w in windows:
        tick = time.perf_counter()
        clip = torch.stack([resized[t] for t in w.times])
        x = pixel_values(crops_of(clip, spec.crop, crops), spec)
        x = x.to(next(model.parameters()).dtype)  # a bf16 model takes bf16 pixels
        preprocess += time.perf_counter() - tick
        tick = time.perf_counter()
        with torch.no_grad():
            logits = model(pixel_values=x).logits
        probs.append(logits.float().softmax(-1).mean(0).numpy())
        inference += time.perf_counter() - tick
    timings["preprocess"] = preprocess
    timings["inference"] = inference
    timings["total"] = time.perf_counter() - started
    mean = np.stack(probs).mean(0)
    return BaselineResult(mean, len(windows), len(windows) * crops, stats.frames, timings)


# -------------------------------------------------------------------------------------- CLI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    frames = sub.add_parser("frames", help="time PyAV plain on the windows of a model")
    frames.add_argument("video", type=Path)
    frames.add_argument("--model", "-m", default="timesformer", help="registry name (protocol)")
    predict = sub.add_parser("predict", help="the transformers baseline, end to end")
    predict.add_argument("video", type=Path)
    predict.add_argument("--weights", type=Path, required=True, help="hub-layout folder")
    predict.add_argument("--model", "-m", default="timesformer", help="registry name (protocol)")
    predict.add_argument("--clips", type=int, help="N evenly spaced windows (default: all)")
    predict.add_argument("--crops", type=int, choices=(1, 3), help="default: the entry's")
    predict.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="fp32 (transformers' default) or bf16 (`torch_dtype=torch.bfloat16`)",
    )
    predict.add_argument("--top-k", "-k", type=int, default=5)
    predict.add_argument("--json", action="store_true", help="one JSON object on stdout")
    predict.add_argument("--all-scores", action="store_true", help="with --json: every score")
    args = parser.parse_args()

    import vidcls
    from vidcls.clips import predict_plan
    from vidcls.video import probe

    if args.command == "frames":
        spec = vidcls.get_spec(args.model)
        info = probe(args.video)
        windows = list(predict_plan(spec, info.duration).windows)
        times = [t for w in windows for t in w.times]
        stats = PlainStats()
        started = time.perf_counter()
        picked = pyav_plain_frames(args.video, times, stats)
        wall = time.perf_counter() - started
        count = info.frame_count or 0
        print(
            f"{args.video}: {len(windows)} windows, {len(set(times))} instants, "
            f"{len({p for p, _ in picked})} distinct frames; decoded {stats.frames} frames in "
            f"{wall:.2f} s = {count / wall:.0f} video fps ({count} frames in the file)"
        )
        return

    spec = vidcls.get_spec(args.model)
    started = time.perf_counter()
    model = load_hf(args.weights, spec.arch, args.precision)
    load = time.perf_counter() - started
    result = transformers_predict(
        args.video, args.model, clips_count=args.clips, crops=args.crops, model=model,
        precision=args.precision,
    )  # fmt: skip
    result.timings["load"] = load
    if args.json:
        out: dict[str, Any] = {
            "file": str(args.video),
            "model": spec.name,
            "attention": attention_of(model),
            "precision": args.precision,
            "windows": result.windows,
            "views": result.views,
            "frames_decoded": result.frames_decoded,
            "timings": result.timings,
            "top_k": result.top_k(args.top_k),
        }
        if args.all_scores:
            out["scores"] = [float(p) for p in result.probs]
        json.dump(out, sys.stdout)
        print()
        return
    t = result.timings
    print(
        f"{args.video}: {result.windows} windows × {result.views // result.windows} crops; "
        f"decode {t['decode']:.2f} s, preprocess {t['preprocess']:.2f} s, inference "
        f"{t['inference']:.2f} s, total {t['total']:.2f} s (load {load:.2f} s; attention "
        f"{attention_of(model)})"
    )
    for entry in result.top_k(args.top_k):
        print(f"  {entry['index']:4d}  {entry['score']:.6f}")


if __name__ == "__main__":
    main()
