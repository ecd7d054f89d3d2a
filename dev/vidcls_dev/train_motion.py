"""Train `motion-tiny`, the small TimeSformer shipped inside vidcls, on synthetic motion videos.

    python -m vidcls_dev.train_motion                    # 7.5-10 minutes on 2 CPU cores
    python -m vidcls_dev.train_motion --update-registry  # also write the sha256 into weights.toml

The task and its ranges are in vidcls_dev/motion.py. The protocol (frames, stride, fps, short
side, crops, normalisation) and the architecture are read from the `motion-tiny` entry of
weights.toml, so the model is trained on what `vidcls predict --model motion-tiny` feeds it.

Training data, all drawn afresh from a fixed seed:

* rendered views: each step draws clips (every range of the task) and windows of continuous
  segment videos, and renders each window's 8 frames directly at the model's input resolution,
  as the pipeline would have made them: frames picked by presentation time on the video's own
  frame grid (24–60 fps), resized as the registry entry says (`resize = "full"`: the whole
  frame squeezed to the input size). Blur, noise and colour rounding stand in for H.264 and
  swscale. Every rendered batch serves two steps under mirror / upside-down flips, a
  transposition and time reversal, labels permuted to match, and after the curriculum's first
  phase (bright shapes only) it is doubled with its photographic negative.
* real views: a few hundred videos written with libx264 (rotations included) and decoded
  through vidcls's own window stream (`vidcls.windows.open_windows`), mixed into every batch. One
  process a core makes them (33 s on 2 cores, where one took 59–72 s), and the views, hence
  the weights, are the same as one process makes.

Targets are soft: a window that straddles two segments gets each label in proportion to its
frames (half of that, and half uniform, where the shape jumps at a cut between them), and a
crop that does not show the shape in some frames leans towards the uniform distribution in
proportion, so an empty crop does not outvote the crop that sees the motion when `predict`
averages the crops.

Outputs: vidcls/assets/motion-tiny/{config.json, model.safetensors} in the hub layout of
transformers' TimesformerForVideoClassification (checked: loads through `vidcls.load_model` and,
when transformers is installed, through `from_pretrained`, with the same logits), and the
README's example video examples/motion.mp4.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

import vidcls
from vidcls.checkpoints.hf import from_hf_timesformer, hf_timesformer_config, to_hf_timesformer
from vidcls.clips import frame_indices
from vidcls.config import FileOptions as Options
from vidcls.decode import resized_size
from vidcls.models import build as build_model
from vidcls.models.layers import set_fused_attention
from vidcls.models.timesformer import TimeSformer
from vidcls.registry import ModelSpec, get_spec
from vidcls.transforms import crop_offsets, normalize, symmetric_views, transform
from vidcls.windows import open_windows

from . import motion as mv
from . import repo_root

ROOT = repo_root()
NAME = "motion-tiny"
ASSET = ROOT / "vidcls" / "assets" / NAME
EXAMPLE = ROOT / "examples" / "motion.mp4"
NUM_CLASSES = len(mv.CLASSES)


# --------------------------------------------------------------------------------- windows


def frame_times(spec: ModelSpec, video: mv.MotionVideo, start: float) -> np.ndarray:
    """Times of the frames the pipeline picks for a window starting at `start` (seconds).

    The frame shown at t is the last one whose time is <= t (1 µs tolerance); past the end, the
    last frame.
    """
    wanted = start + np.array(frame_indices(spec)) / spec.reference_fps
    index = np.floor((wanted + 1e-6) * video.fps + 1e-9)
    return np.clip(index, 0, video.n_frames - 1) / video.fps


def resized(spec: ModelSpec, video: mv.MotionVideo) -> tuple[int, int]:
    """(width, height) after the pipeline's resize: short side `short_side`, long side floored,
    or the whole frame squeezed to crop × crop (resize = "full")."""
    if spec.resize == "full":
        return spec.crop, spec.crop
    return resized_size(video.scene.width, video.scene.height, spec.short_side)


def crop_origins(spec: ModelSpec, video: mv.MotionVideo) -> list[tuple[int, int]]:
    w, h = resized(spec, video)
    return crop_offsets(h, w, spec.crop, spec.crops)


def targets(
    spec: ModelSpec, video: mv.MotionVideo, times: np.ndarray, origin: tuple[int, int]
) -> np.ndarray:
    """Soft target of one crop of one window: label shares, pulled to uniform when unseen."""
    labels = video.labels_at(times)
    share = np.bincount(labels, minlength=NUM_CLASSES) / len(times)
    if video.cut_within(times):
        # the shape jumps: frames on either side show their actions, but the jump between them
        # reads as a fast move; half the target goes to uniform so that such a window is unsure
        # and the neighbours that saw each action whole outvote it in segment's timeline
        share = 0.5 * share + 0.5 / NUM_CLASSES
    seen = visible(spec, video, times, origin).mean()
    return seen * share + (1 - seen) / NUM_CLASSES


def visible(
    spec: ModelSpec, video: mv.MotionVideo, times: np.ndarray, origin: tuple[int, int]
) -> np.ndarray:
    """Per frame: does at least a third of the shape's box lie inside the crop?"""
    w, h = resized(spec, video)
    sx, sy = w / video.scene.width, h / video.scene.height
    cx, cy, size = video.geometry(times)
    oy, ox = origin
    r = size / 2

    def inside(c: np.ndarray, rr: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.clip(np.minimum(c + rr, hi) - np.maximum(c - rr, lo), 0, None) / (2 * rr)

    frac = inside(cx * sx, r * sx, ox, ox + spec.crop) * inside(cy * sy, r * sy, oy, oy + spec.crop)
    return frac >= 1 / 3


def patch_targets(
    spec: ModelSpec, video: mv.MotionVideo, times: np.ndarray, origin: tuple[int, int]
) -> np.ndarray:
    """Per patch and frame, in the model's token order (patch-major, then frame): the label of
    the frame where the shape covers part of the patch, NUM_CLASSES where it does not.

    Training aid only: an auxiliary head on the patch tokens learns from these, which gets the
    tokens to describe the local motion long before the class token learns to read them.
    """
    w, h = resized(spec, video)
    sx, sy = w / video.scene.width, h / video.scene.height
    cx, cy, size = video.geometry(times)
    oy, ox = origin
    patch = spec.arch_config["patch_size"]
    grid = spec.crop // patch
    edges = np.arange(grid) * patch
    r = size / 2

    def overlap(c: np.ndarray, rr: np.ndarray, offset: float) -> np.ndarray:  # (T, grid)
        lo = (c - rr)[:, None] - offset - edges[None]
        hi = (c + rr)[:, None] - offset - edges[None]
        return np.clip(np.minimum(hi, patch) - np.maximum(lo, 0), 0, None)

    ox_, oy_ = overlap(cx * sx, r * sx, ox), overlap(cy * sy, r * sy, oy)
    area = oy_[:, :, None] * ox_[:, None, :]  # (T, gy, gx)
    shape_area = (size * sx) * (size * sy)
    present = area >= np.minimum(0.25 * shape_area, 16)[:, None, None]
    labels = video.labels_at(times)
    dense = np.where(present, labels[:, None, None], NUM_CLASSES)  # (T, gy, gx)
    return dense.reshape(len(times), grid * grid).T.reshape(-1)


# --------------------------------------------------------------------------------- rendering


class Batch:
    """Geometry of B views × T frames, gathered in numpy, rendered at once with torch."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.rows: list[dict[str, np.ndarray | float]] = []
        self.targets: list[np.ndarray] = []
        self.dense: list[np.ndarray] = []

    def add(self, video: mv.MotionVideo, start: float, crop: int) -> None:
        spec, scene = self.spec, video.scene
        times = frame_times(spec, video, start)
        w, h = resized(spec, video)
        origin = crop_origins(spec, video)[crop]
        cx, cy, size = video.geometry(times)
        c, s = math.cos(scene.bg_angle), math.sin(scene.bg_angle)
        corners = [0.0, scene.width * c, scene.height * s, scene.width * c + scene.height * s]
        self.rows.append(
            {
                "cx": cx,
                "cy": cy,
                "size": size,
                "sx": w / scene.width,
                "sy": h / scene.height,
                "oy": float(origin[0]),
                "ox": float(origin[1]),
                "circle": float(scene.shape == "circle"),
                "colour": np.array(scene.colour, np.float32),
                "bg0": np.array(scene.bg_colours[0], np.float32),
                "bg1": np.array(scene.bg_colours[1], np.float32),
                "gc": c,
                "gs": s,
                "glo": min(corners),
                "ghi": max(corners),
            }
        )
        self.targets.append(targets(spec, video, times, origin))
        self.dense.append(patch_targets(spec, video, times, origin))

    def render(self) -> torch.Tensor:
        """Pixel values 0–255 as float32 (B, T, 3, crop, crop): RGB, channels first."""
        size = self.spec.crop

        def col(key: str) -> torch.Tensor:
            return torch.tensor(np.array([r[key] for r in self.rows], np.float32))

        def b4(key: str) -> torch.Tensor:
            return col(key)[:, None, None, None]

        sx, sy, ox, oy = b4("sx"), b4("sy"), b4("ox"), b4("oy")
        cx = col("cx")[:, :, None, None] * sx - ox  # crop pixels, (B, T, 1, 1)
        cy = col("cy")[:, :, None, None] * sy - oy
        r = col("size")[:, :, None, None] / 2
        grid = torch.arange(size, dtype=torch.float32)
        x, y = grid.view(1, 1, 1, -1), grid.view(1, 1, -1, 1)
        ax = (torch.minimum(x + 1, cx + r * sx) - torch.maximum(x, cx - r * sx)).clamp(0, 1)
        ay = (torch.minimum(y + 1, cy + r * sy) - torch.maximum(y, cy - r * sy)).clamp(0, 1)
        alpha = ay * ax  # squares: exact box coverage, (B, T, H, W)
        circles = torch.nonzero(col("circle") > 0.5).flatten()
        if len(circles):
            c = circles
            dx = (x + 0.5 - cx[c]) / sx[c]
            dy = (y + 0.5 - cy[c]) / sy[c]
            scale = (sx[c] + sy[c]) / 2
            alpha[c] = ((r[c] - torch.sqrt(dx * dx + dy * dy)) * scale + 0.5).clamp(0, 1)
        # the background at the crop's pixel centres, mapped back to displayed pixels
        proj = (ox + x + 0.5) / sx * b4("gc") + (oy + y + 0.5) / sy * b4("gs")
        u = ((proj - b4("glo")) / (b4("ghi") - b4("glo"))).clamp(0, 1)  # (B, 1, H, W)
        bg0 = col("bg0")[:, None, :, None, None]
        bg1 = col("bg1")[:, None, :, None, None]
        background = (bg0 + u[:, :, None] * (bg1 - bg0)).round()  # (B, 1, 3, H, W)
        colour = col("colour")[:, None, :, None, None]
        return background + alpha[:, :, None] * (colour - background)

    def target(self) -> torch.Tensor:
        return torch.tensor(np.array(self.targets), dtype=torch.float32)

    def patch_target(self) -> torch.Tensor:
        return torch.tensor(np.array(self.dense), dtype=torch.long)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Stand-ins for swscale and H.264 on rendered (B, T, 3, H, W) pixels: blur, noise, rounding."""
    b, t, c, h, w = x.shape
    sigma = (torch.rand(b, generator=gen) * 0.8).clamp_min(0.05)
    taps = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-(taps**2)[None] / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # (B, 5)
    # a separable Gaussian with replicated edges, as one (size x size) matrix per view
    index = (torch.arange(h)[:, None] + taps.long()[None]).clamp(0, h - 1)  # (H, 5)
    blur = torch.zeros(b, h, h)
    blur.scatter_add_(2, index[None].expand(b, h, 5), kernel[:, None, :].expand(b, h, 5))
    blur = blur[:, None, None]
    y = blur @ x @ blur.transpose(-1, -2)
    noise = torch.randn(y.shape, generator=gen) * (torch.rand(b, 1, 1, 1, 1, generator=gen) * 2)
    return (y + noise).round_().clamp_(0, 255)


def normalise(pixels: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """(B, T, 3, H, W) RGB 0–255 -> the model's input, through the pipeline's own normalize.

    Rendered and decoded pixels are whole numbers in 0–255 (augment rounds), so the uint8 cast
    is exact and the model trains on what `vidcls.transforms.normalize` feeds it.
    """
    return normalize(pixels.movedim(-3, -1).to(torch.uint8), spec)


def random_timeline(rng: np.random.Generator) -> mv.MotionVideo:
    """2–4 segments of 3 s to their label's longest, for windows across boundaries and cuts."""
    labels = mv.random_labels(rng, int(rng.integers(2, 5)))
    lo = mv.SEGMENT_SECONDS[0]
    plan = [(label, float(rng.uniform(lo, mv.MAX_SECONDS[label]))) for label in labels]
    return mv.random_segment_video(rng, plan, fps=int(rng.choice(mv.FPS_CHOICES)))


def luminance(colour: tuple[int, int, int]) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def bright(video: mv.MotionVideo, margin: float = 30.0) -> bool:
    """Is the shape clearly brighter than every colour of its background?"""
    scene = video.scene
    return luminance(scene.colour) > max(luminance(c) for c in scene.bg_colours) + margin


def draw_view(
    spec: ModelSpec, rng: np.random.Generator, easy: bool = False, segment_share: float = 0.25
) -> tuple[mv.MotionVideo, float, int]:
    """A random (video, window start, crop): clips, and a `segment_share` of windows of segment
    videos (straddling their boundaries and cuts).

    `easy`: the curriculum's first phase: clips on uniform backgrounds whose shape is brighter
    than the background, and a crop that shows it throughout.
    With both polarities from the start no feature correlates with the label at first order (a
    dark shape flips the sign of every linear feature of a bright one), and a model from scratch
    sits on a plateau; learnt on one polarity first, the other follows within a hundred steps.
    """
    while True:
        if easy or rng.random() >= segment_share:
            video = mv.random_clip(rng, background="uniform" if easy else None)
            start = rng.uniform(0, max(0.0, video.duration - spec.span))
        else:
            video = random_timeline(rng)
            bounds = [s.end for s in video.segments[:-1]]
            if rng.random() < 0.6:  # near a boundary
                start = float(rng.choice(bounds)) - rng.uniform(0, spec.span)
            else:
                start = rng.uniform(0, video.duration - spec.span)
            start = float(np.clip(start, 0, video.duration - spec.span))
        if not easy or bright(video):
            break
    times = frame_times(spec, video, start)
    origins = crop_origins(spec, video)
    seen = [
        visible(spec, video, times, o).all() if easy else visible(spec, video, times, o).any()
        for o in origins
    ]
    choices = [k for k in range(len(origins)) if seen[k]]
    crop = (
        int(rng.choice(choices))
        if choices and rng.random() < 0.85
        else int(rng.integers(len(origins)))
    )
    return video, start, crop


# --------------------------------------------------------------------------------- real videos


def real_videos(
    rng: np.random.Generator, clips: int, segment_videos: int
) -> list[tuple[mv.MotionVideo, float]]:
    """The videos behind the real views, each with the hop its windows are taken at: clips of
    every class in turn (mostly small frames, which encode fast), then 60-s segment videos."""
    videos: list[tuple[mv.MotionVideo, float]] = []
    for i in range(clips):
        short = None if rng.random() < 0.15 else int(rng.uniform(120, 300))
        size = mv.random_frame_size(rng, short=short)
        videos.append((mv.random_clip(rng, mv.CLASSES[i % NUM_CLASSES], size=size), 0.5))
    for _ in range(segment_videos):
        size = mv.random_frame_size(rng, short=int(rng.uniform(120, 240)))
        video = mv.random_segment_video(
            rng, size=size, fps=int(rng.choice(mv.FPS_CHOICES)), rotation=int(rng.choice([0, 90]))
        )
        videos.append((video, 0.8))
    return videos


RealViews = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def real_views(
    spec: ModelSpec, videos: list[tuple[mv.MotionVideo, float]], folder: Path, workers: int = 1
) -> RealViews:
    """Views of `videos` written with H.264 and decoded by vidcls itself: (N, T, 3, H, W) uint8,
    soft targets and patch targets, in the order of `videos`.

    With `workers` > 1, spawned processes (no more than there are runs) share the files out in
    runs of a few; the views are the same.
    """
    runs = [videos[i : i + 4] for i in range(0, len(videos), 4)]
    workers = min(workers, len(runs))
    if workers > 1:
        folders = [folder / f"run{i}" for i in range(len(runs))]
        for f in folders:
            f.mkdir()
        context = multiprocessing.get_context("spawn")  # a fork of running torch threads can hang
        with ProcessPoolExecutor(workers, context, torch.set_num_threads, (1,)) as pool:
            parts = list(pool.map(real_views, [spec] * len(runs), runs, folders))
        views, goals, dense = zip(*parts, strict=True)
        return torch.cat(views), torch.cat(goals), torch.cat(dense)
    views: list[torch.Tensor] = []
    goals: list[np.ndarray] = []
    dense: list[np.ndarray] = []
    for i, (video, hop) in enumerate(videos):
        path = mv.write_video(video, folder / f"real{i}.mp4", preset="ultrafast")
        # the pipeline's uint8 views, before normalisation: what model_inputs would feed the
        # model, without normalising and then undoing it
        for window, crops in open_windows(path, spec, Options(mode="segment", hop=hop)):
            times = frame_times(spec, video, window.start)
            for k, origin in enumerate(crop_origins(spec, video)):
                views.append(torch.from_numpy(crops[k]).permute(0, 3, 1, 2))
                goals.append(targets(spec, video, times, origin))
                dense.append(patch_targets(spec, video, times, origin))
        path.unlink()
    return (
        torch.stack(views),
        torch.tensor(np.array(goals), dtype=torch.float32),
        torch.tensor(np.array(dense), dtype=torch.long),
    )


# --------------------------------------------------------------------------------- the model


INIT = {"linear": 0.25, "patch": 0.05, "position": 3.0, "time": 3.0}


def build(spec: ModelSpec, shift_init: bool = True, init: dict[str, float] = INIT) -> TimeSformer:
    """The registry's architecture, initialised for a fast start from scratch.

    A ViT initialised the usual way (everything N(0, 0.02)) sits for hundreds of steps on a
    plateau before it relates what a patch shows to where it is; strong position and time
    embeddings and wider linear weights cut that to a few dozen steps.
    """
    a = spec.arch_config
    # the eager attention: on CPU its backward is several times faster than SDPA's
    model = cast(TimeSformer, build_model("timesformer", a, fused_attn=False))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 2:
                torch.nn.init.trunc_normal_(
                    p, std=init["linear"], a=-2 * init["linear"], b=2 * init["linear"]
                )
        torch.nn.init.trunc_normal_(model.patch_embed.proj.weight, std=init["patch"])
        torch.nn.init.trunc_normal_(model.cls_token, std=0.02)
        model.pos_embed.normal_(0, init["position"])
        model.time_embed.normal_(0, init["time"])
    if shift_init:
        temporal_shift_init(model, a["heads"])
    return model


def temporal_shift_init(
    model: TimeSformer, heads: int, gain: float = 50.0, amplitude: float = 5.0
) -> None:
    """Start temporal attention as a temporal shift: head 0 looks at the previous frame, head 1
    at the next, in every block (as TSM shifts channels), instead of a uniform average that
    takes thousands of steps to learn an order. Only an initialisation: every weight trains.

    The time embedding carries a two-frequency sinusoid in the last 4 channels, which nothing
    else writes into at the start; those heads' queries are that code rotated by one frame, their
    keys the code itself, so a query at frame t matches the key at t-1 (or t+1) best.
    """
    dim = model.cls_token.shape[-1]
    frames = model.time_embed.shape[1]
    code = slice(dim - 4, dim)
    head_dim = dim // heads
    omegas = (2 * math.pi / frames, math.pi / frames)
    t = torch.arange(frames, dtype=torch.float32)
    with torch.no_grad():
        model.patch_embed.proj.weight[code] = 0
        model.patch_embed.proj.bias[code] = 0
        model.pos_embed[..., code] = 0
        model.cls_token[..., code] = 0
        model.time_embed[0, :, code] = amplitude * torch.stack(
            [f(w * t) for w in omegas for f in (torch.cos, torch.sin)], dim=1
        )
        for block in model.blocks:
            qkv = block.temporal_attn.qkv.weight  # rows: (q k v) x heads x head_dim
            for head, step in ((0, -1), (1, 1)):
                q = slice(head * head_dim, (head + 1) * head_dim)
                k = slice(dim + head * head_dim, dim + (head + 1) * head_dim)
                qkv[q] = 0
                qkv[k] = 0
                for i, w in enumerate(omegas):
                    c, s = math.cos(w * step), math.sin(w * step)
                    rows = (q.start + 2 * i, q.start + 2 * i + 1)
                    cols = (code.start + 2 * i, code.start + 2 * i + 1)
                    # q = R(-w*step) [cos wt, sin wt] = [cos w(t-step), sin w(t-step)]
                    qkv[rows[0], cols[0]], qkv[rows[0], cols[1]] = gain * c, gain * s
                    qkv[rows[1], cols[0]], qkv[rows[1], cols[1]] = -gain * s, gain * c
                    qkv[k.start + 2 * i, cols[0]] = 1.0
                    qkv[k.start + 2 * i + 1, cols[1]] = 1.0
                qkv[q.start + 4 : q.stop] = 0  # the rest of those heads: content only
                qkv[k.start + 4 : k.stop] = 0


def flip_tables(spec: ModelSpec) -> dict[str, tuple[list[int], torch.Tensor, torch.Tensor]]:
    """For a mirror, an upside-down flip, a transposition and time reversal: class permutation
    (the label swaps of the registry entry's symmetries), dense-label map, token order."""
    grid = spec.crop // spec.arch_config["patch_size"]
    frames = spec.num_frames
    swaps = {name: list(order) for name, order in spec.symmetries}
    gy, gx = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    out = {}
    for name, (ny, nx) in (("mirror", (gy, grid - 1 - gx)), ("upside_down", (grid - 1 - gy, gx))):
        swap = swaps[name]
        source = (ny * grid + nx).reshape(-1)  # flipped patch n shows original patch source[n]
        tokens = (source[:, None] * frames + np.arange(frames)[None]).reshape(-1)
        out[name] = (swap, torch.tensor(swap + [NUM_CLASSES]), torch.tensor(tokens))
    # transposed (x and y swapped): a W×H video squeezed is the H×W one transposed
    swap = swaps["transpose"]
    source = (gx * grid + gy).reshape(-1)
    tokens = (source[:, None] * frames + np.arange(frames)[None]).reshape(-1)
    out["transpose"] = (swap, torch.tensor(swap + [NUM_CLASSES]), torch.tensor(tokens))
    # time reversed: every move goes the other way, growing becomes shrinking
    swap = swaps["reverse"]
    n, t = np.meshgrid(np.arange(grid * grid), np.arange(frames), indexing="ij")
    tokens = (n * frames + (frames - 1 - t)).reshape(-1)
    out["reverse"] = (swap, torch.tensor(swap + [NUM_CLASSES]), torch.tensor(tokens))
    return out


def train(
    spec: ModelSpec,
    steps: int,
    seed: int,
    real: RealViews,
    batch: int = 64,
    real_share: float = 0.25,
    lr: float = 1e-3,
    aux_weight: float = 1.0,
    curriculum: float = 0.3,
    segment_share: float = 0.25,
    reverse: bool = True,
    negatives: bool = True,
    log=print,
    log_every: int = 100,
) -> TimeSformer:
    """AdamW with warm-up and cosine decay; every rendered batch serves two steps, flipped, and
    half the steps see their views backwards in time; after the curriculum's first phase every
    batch is doubled with its negatives (255 - pixels).

    The loss is the soft cross-entropy of the class token's logits plus, weighted by
    `aux_weight`, that of an auxiliary linear head on every patch token (patch_targets); the
    auxiliary head is thrown away.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build(spec).train()
    aux = torch.nn.Linear(spec.arch_config["hidden_size"], NUM_CLASSES + 1)
    params = list(model.named_parameters()) + [("aux." + n, p) for n, p in aux.named_parameters()]
    decay = [p for n, p in params if p.dim() > 1 and "embed" not in n]
    other = [p for n, p in params if not (p.dim() > 1 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
        lr=lr,
        fused=True,  # one kernel for every parameter: about 10 % of a step on 2 cores
    )
    tables = flip_tables(spec)
    token_weight = torch.tensor([4.0] * NUM_CLASSES + [1.0])  # shape tokens are the few
    real_x, real_y, real_d = real
    n_real = int(batch * real_share) if len(real_x) else 0
    began = time.perf_counter()
    flips = [(False, False), (True, True), (True, False), (False, True)]
    for step in range(steps):
        if step % 2 == 0:
            views = Batch(spec)
            first_phase = step < curriculum * steps
            for _ in range(batch - (0 if first_phase else n_real)):
                views.add(*draw_view(spec, rng, first_phase, segment_share))
            rendered = augment(views.render(), gen)
            goal, dense = views.target(), views.patch_target()
            order = rng.permutation(4)
        x, y, d = rendered, goal, dense
        if n_real and not first_phase:
            pick = torch.randint(len(real_x), (n_real,), generator=gen)
            x = torch.cat([x, real_x[pick].float()])
            y, d = torch.cat([y, real_y[pick]]), torch.cat([d, real_d[pick]])
        if negatives and not first_phase:
            # every view also as its photographic negative, same labels: the colours of shape
            # and background say nothing about the motion, and without this the model reads
            # some colour pairs (a bright shape on a dark ground most) far worse than others
            x, y, d = torch.cat([x, 255 - x]), torch.cat([y, y]), torch.cat([d, d])
        for name, wanted in zip(("mirror", "upside_down"), flips[order[step % 2]], strict=True):
            if wanted:
                swap, relabel, tokens = tables[name]
                x = x.flip(-1 if name == "mirror" else -2)
                y, d = y[:, swap], relabel[d[:, tokens]]
        if spec.resize == "full" and rng.random() < 0.5:
            swap, relabel, tokens = tables["transpose"]
            x, y, d = x.transpose(-1, -2), y[:, swap], relabel[d[:, tokens]]
        if reverse and rng.random() < 0.5:
            # the same pixels backwards with the opposite label: direction must come from the
            # order of the frames, not from where a shape tends to start
            swap, relabel, tokens = tables["reverse"]
            x, y, d = x.flip(1), y[:, swap], relabel[d[:, tokens]]
        warm = min(1.0, (step + 1) / max(1, steps // 20))
        for group in opt.param_groups:
            group["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * step / steps))
        tokens_out = model.forward_features(normalise(x, spec))
        logits = model.head(tokens_out[:, 0])
        loss = torch.sum(-y * F.log_softmax(logits, -1), -1).mean()
        dense_loss = F.cross_entropy(
            aux(tokens_out[:, 1:]).flatten(0, 1), d.flatten(), weight=token_weight
        )
        total = loss + aux_weight * dense_loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            took = time.perf_counter() - began
            log(
                f"  step {step + 1}/{steps}  loss {loss.item():.3f}  "
                f"patch loss {dense_loss.item():.3f}  {took:.0f} s"
            )
    return model.eval()


# --------------------------------------------------------------------------------- saving


def save(model: TimeSformer, spec: ModelSpec, folder: Path) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = json.dumps(hf_timesformer_config(spec.arch_config, mv.CLASSES), indent=2) + "\n"
    (folder / "config.json").write_text(config, encoding="utf-8")
    path = folder / "model.safetensors"
    save_file(to_hf_timesformer(model.state_dict()), str(path), metadata={"format": "pt"})
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_round_trip(model: TimeSformer, spec: ModelSpec, folder: Path, log=print) -> None:
    """The saved folder gives the in-memory model's logits through vidcls (and transformers)."""
    state = from_hf_timesformer(to_hf_timesformer(model.state_dict()))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items()), "key mapping"
    x = torch.randn(2, spec.num_frames, 3, spec.crop, spec.crop, generator=torch.Generator())
    with torch.no_grad():
        want = model(x)
        loaded = vidcls.load_model(NAME, weights=folder, device="cpu", precision="fp32")
        got = loaded.model(x)
    assert loaded.labels == list(mv.CLASSES), loaded.labels
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    log(f"  vidcls.load_model: same logits (max diff {(got - want).abs().max():.1e})")
    try:
        from transformers import TimesformerForVideoClassification
    except ImportError:
        log("  transformers not installed: hub-layout check skipped")
        return
    hf = TimesformerForVideoClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        theirs = hf(pixel_values=x).logits
    assert torch.allclose(theirs, want, atol=1e-4), (theirs - want).abs().max()
    log(f"  transformers from_pretrained: same logits (max diff {(theirs - want).abs().max():.1e})")


def update_registry(digest: str, registry: Path = ROOT / "weights.toml") -> None:
    text = registry.read_text(encoding="utf-8")
    head, sep, tail = text.partition(f"[{NAME}]")
    if not sep:
        raise SystemExit(f"{registry}: no [{NAME}] entry to update")
    tail, n = re.subn(
        r'sha256 = \{ "model\.safetensors" = "[0-9a-f]*" \}',
        f'sha256 = {{ "model.safetensors" = "{digest}" }}',
        tail,
        count=1,
    )
    if n != 1:
        raise SystemExit(f"{registry}: [{NAME}] has no sha256 line to update")
    registry.write_text(head + sep + tail, encoding="utf-8")


# --------------------------------------------------------------------------------- evaluation


def symmetric_softmax(model: torch.nn.Module, x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """The mean softmax over the spec's symmetric views of model input (B, T, 3, H, W), in the
    window's own class order, as vidcls's engine averages them."""
    views = symmetric_views(spec)
    return sum(model(transform(x, n))[:, list(o)].softmax(-1) for n, o in views) / len(views)


def evaluate(
    model: TimeSformer, spec: ModelSpec, seed: int, count: int, folder: Path
) -> tuple[float, np.ndarray]:
    """Clip accuracy on fresh files, averaged as `vidcls predict` does (symmetric views and
    crops, then windows)."""
    rng = np.random.default_rng(seed)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), int)
    for i in range(count):
        clip = mv.random_clip(rng, mv.CLASSES[i % NUM_CLASSES])
        path = mv.write_video(clip, folder / f"eval{i}.mp4", preset="ultrafast")
        probs = []
        with torch.no_grad():
            for _, _, x in vidcls.model_inputs(path, NAME):
                probs.append(symmetric_softmax(model, x, spec).mean(0))
        guess = int(torch.stack(probs).mean(0).argmax())
        confusion[mv.CLASSES.index(clip.label), guess] += 1
        path.unlink()
    return float(np.trace(confusion) / confusion.sum()), confusion


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train motion-tiny on synthetic motion videos (CPU, fixed seed) and write "
        "vidcls/assets/motion-tiny/ and examples/motion.mp4.",
    )
    parser.add_argument("--steps", type=int, default=6500, help="optimiser steps (default 6500)")
    parser.add_argument("--batch", type=int, default=8, help="views per step (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=6e-4, help="peak learning rate (default 6e-4)")
    parser.add_argument(
        "--segment-share", type=float, default=0.25, help="windows of segment videos (0.25)"
    )
    parser.add_argument("--real-clips", type=int, default=150, help="H.264 clips decoded by vidcls")
    parser.add_argument("--real-segments", type=int, default=2, help="60-s H.264 segment videos")
    parser.add_argument(
        "--eval", type=int, default=42, help="fresh clips to score at the end (default 42)"
    )
    parser.add_argument("--out", type=Path, default=ASSET, help=f"default {ASSET}")
    parser.add_argument("--example", type=Path, default=EXAMPLE, help=f"default {EXAMPLE}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--update-registry", action="store_true", help="write the new sha256 into weights.toml"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    began = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - began:5.0f} s] {text}", flush=True)

    spec = get_spec(NAME)
    log(
        f"{NAME}: {spec.num_frames} frames 1-in-{spec.frame_stride} at {spec.reference_fps:g} fps "
        f"(span {spec.span:.2f} s), short side {spec.short_side}, {spec.crops} crops {spec.crop}"
    )
    videos = real_videos(np.random.default_rng(args.seed), args.real_clips, args.real_segments)
    with tempfile.TemporaryDirectory() as tmp:
        # one process a core, as motion_videos.write_videos caps them (each imports torch):
        # writing and decoding the files is a minute's work for one
        real = real_views(spec, videos, Path(tmp), workers=min(4, os.cpu_count() or 1))
        log(f"{len(real[0])} real views from {len(videos)} H.264 files")
        model = train(
            spec, args.steps, args.seed, real, batch=args.batch, lr=args.lr,
            segment_share=args.segment_share, log=log,
        )  # fmt: skip
        set_fused_attention(model, True)
        path = save(model, spec, args.out)
        log(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
        check_round_trip(model, spec, args.out, log)
        digest = sha256(path)
        if args.update_registry:
            update_registry(digest)
            log(f"weights.toml: [{NAME}] sha256 = {digest}")
        args.example.parent.mkdir(parents=True, exist_ok=True)
        mv.write_example(args.example)
        log(f"wrote {args.example} ({args.example.stat().st_size / 1e3:.0f} kB)")
        if args.eval:
            accuracy, confusion = evaluate(model, spec, args.seed + 1, args.eval, Path(tmp))
            log(f"fresh H.264 clips: accuracy {accuracy:.3f} over {args.eval}")
            for name, row in zip(mv.CLASSES, confusion, strict=True):
                print(f"  {name:>13}: {' '.join(f'{v:3d}' for v in row)}")
    print(f'sha256 = {{ "model.safetensors" = "{digest}" }}')
    log("done")


if __name__ == "__main__":
    main()
