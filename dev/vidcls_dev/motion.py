"""Synthetic motion videos: the task of the bundled `motion-tiny` model, as specs and files.

One filled shape (a square or a circle) on a uniform or two-colour gradient background does one
of seven things, named as in vidcls/labels/motion.txt: moving left, moving right, moving up,
moving down, growing, shrinking, still (directions as a viewer sees the displayed video).

A video is a `MotionVideo`: a `Scene` (displayed size, shape, colours) and `Segment`s, each a
label with the shape's centre, size and motion over a stretch of time. Everything is a function of
time, so the same spec written at 24 or at 60 fps shows the same motion. Ranges (clips drawn by
`random_clip` stay inside all of them):

* frame 160×120 to 1280×720 as displayed, landscape or portrait, aspect 4:3 to 16:9;
  24, 25, 30, 50 or 60 fps; libx264 yuv420p, optionally with rotation metadata of 90/180/270
  (the stored picture is turned so that the *displayed* motion is the label);
* shape size (square side, circle diameter) 8–20 % of the short side; its colour is at least
  `MIN_CONTRAST` (RGB distance) from every colour of the background;
* moving: 15–40 % of the frame's width (left/right) or height (up/down) per second, the whole
  path on screen; growing/shrinking: by a factor of 1.5–2.5 over 4 s (exponentially, about the
  centre); still: a jitter of at most 1 pixel.

`random_segment_video` strings 6–10 segments of 3–10 s into one continuous 60-s scene that stays
inside the same ranges. Those ranges bound how long one segment can last: a move at 15 %/s or
more stays on screen for at most `MAX_SECONDS` (5 s), a growth or shrinkage of 1.5× per 4 s or
more stays within 8–20 % for at most 8 s, so `segment_plan` gives those labels no longer
segments. When the shape is not where its next move or change fits (too near the edge it heads
for, too big to grow, too small to shrink), it is placed afresh (a cut) at the start of that
segment.

Run as a script to write examples: `python -m vidcls_dev.motion OUT_DIR`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

CLASSES = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "growing",
    "shrinking",
    "still",
)
FPS_CHOICES = (24, 25, 30, 50, 60)
ROTATIONS = (0, 90, 180, 270)
SHAPES = ("square", "circle")
BACKGROUNDS = ("uniform", "gradient")
SHORT_RANGE = (120, 720)  # short side of the displayed frame
LONG_MAX = 1280
ASPECT_RANGE = (4 / 3, 16 / 9)
SIZE_RANGE = (0.08, 0.20)  # of the short side
SPEED_RANGE = (0.15, 0.40)  # of the width (left/right) or height (up/down), per second
GROWTH_RANGE = (1.5, 2.5)  # factor over GROWTH_SECONDS
GROWTH_SECONDS = 4.0
JITTER_PX = 1.0
MIN_CONTRAST = 110.0  # RGB distance from the shape's colour to every background colour
SEGMENT_SECONDS = (3.0, 10.0)
SEGMENT_COUNT = (6, 10)
# the held-out clips of tests/test_motion.py and bench/bf16_agreement.py (training draws from
# seeds 0 and 1); 60 a class, so that one clip moves a class by 1.7 points
HELD_OUT_SEED = 20_251_121
HELD_OUT_PER_CLASS = 60

_MOVES = {
    "moving left": (-1, 0),
    "moving right": (1, 0),
    "moving up": (0, -1),
    "moving down": (0, 1),
}
# the longest segment of each label that the ranges above allow (module docstring)
MAX_SECONDS = dict.fromkeys(_MOVES, 5.0) | {"growing": 8.0, "shrinking": 8.0, "still": 10.0}


@dataclass(frozen=True)
class Scene:
    """What does not change over the video: displayed size, shape and colours."""

    width: int  # as displayed
    height: int
    shape: str  # "square" | "circle"
    colour: tuple[int, int, int]
    background: str  # "uniform" | "gradient"
    bg_colours: tuple[tuple[int, int, int], tuple[int, int, int]]  # equal when uniform
    bg_angle: float  # direction of the gradient, radians (0: left to right)

    @property
    def short(self) -> int:
        return min(self.width, self.height)


@dataclass(frozen=True)
class Segment:
    """One label over [start, end): the shape's centre and size at `start`, and its motion."""

    label: str
    start: float
    end: float
    cx: float  # displayed pixels, from the top-left corner of the picture
    cy: float
    size: float  # square side or circle diameter, pixels
    vx: float = 0.0  # pixels per second
    vy: float = 0.0
    rate: float = 0.0  # d(log size)/dt
    # still: (amp_x, amp_y, frequency, phase) sines whose amplitudes add up to <= JITTER_PX
    jitter: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class MotionVideo:
    """A labelled synthetic video: render it with `render_frame`, write it with `write_video`."""

    scene: Scene
    segments: tuple[Segment, ...]
    fps: float = 30
    rotation: int = 0  # degrees a player turns the stored picture clockwise
    crf: int = 23

    @property
    def duration(self) -> float:
        return self.segments[-1].end

    @property
    def label(self) -> str:
        """The label of a one-segment clip (the majority label of a longer video)."""
        seconds: dict[str, float] = {}
        for seg in self.segments:
            seconds[seg.label] = seconds.get(seg.label, 0.0) + seg.seconds
        return max(seconds, key=seconds.__getitem__)

    @property
    def n_frames(self) -> int:
        return max(1, round(self.duration * self.fps))

    def frame_times(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.fps

    def with_(self, **changes: object) -> MotionVideo:
        return dataclasses.replace(self, **changes)

    def truth(self) -> list[tuple[float, float, str]]:
        """(start, end, label) of each run of one label, merged across segment boundaries."""
        out: list[tuple[float, float, str]] = []
        for seg in self.segments:
            if out and out[-1][2] == seg.label:
                out[-1] = (out[-1][0], seg.end, seg.label)
            else:
                out.append((seg.start, seg.end, seg.label))
        return out

    def cuts(self, jump: float = 2.0) -> list[float]:
        """Segment starts where the shape jumps by more than `jump` pixels (in position or
        size): placed afresh because the next motion would not fit where it was."""
        out = []
        for seg in self.segments[1:]:
            before = np.ravel(self.geometry(seg.start - 1e-6))
            after = np.ravel(self.geometry(seg.start + 1e-6))
            if np.abs(before - after).max() > jump:
                out.append(seg.start)
        return out

    @functools.cached_property
    def _cut_times(self) -> tuple[float, ...]:
        # asked of every window of a video (training targets, eval_motion): found once
        return tuple(self.cuts())

    def cut_within(self, times: np.ndarray) -> bool:
        """Does the shape jump (a cut) after the first of these frame times, by the last?"""
        return any(times[0] < cut <= times[-1] for cut in self._cut_times)

    def segment_index(self, t: np.ndarray | float) -> np.ndarray:
        ends = np.array([s.end for s in self.segments[:-1]])
        return np.searchsorted(ends, np.asarray(t, dtype=np.float64), side="right")

    def labels_at(self, t: np.ndarray | float) -> np.ndarray:
        """Class index (CLASSES) of the label at each time."""
        index = np.array([CLASSES.index(s.label) for s in self.segments])
        return index[self.segment_index(t)]

    def geometry(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cx, cy, size) of the shape at each time, displayed pixels."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        which = self.segment_index(t)
        cx, cy, size = np.empty_like(t), np.empty_like(t), np.empty_like(t)
        for k, seg in enumerate(self.segments):
            m = which == k
            if not m.any():
                continue
            tau = t[m] - seg.start
            s = seg.size * np.exp(seg.rate * tau)
            x = seg.cx + seg.vx * tau
            y = seg.cy + seg.vy * tau
            for ax, ay, f, phase in seg.jitter:
                wave = np.sin(2 * np.pi * f * t[m] + phase)
                x = x + ax * wave
                y = y + ay * wave
            cx[m], cy[m], size[m] = x, y, s
        return cx, cy, size


# --------------------------------------------------------------------------------- drawing specs


def random_frame_size(
    rng: np.random.Generator, portrait: bool | None = None, short: int | None = None
) -> tuple[int, int]:
    """(width, height) as displayed: short side 120–720 (log-uniform), aspect 4:3–16:9."""
    if short is None:
        short = math.exp(rng.uniform(math.log(SHORT_RANGE[0]), math.log(SHORT_RANGE[1])))
    aspect = rng.uniform(*ASPECT_RANGE)
    s = _even(short)
    long = min(LONG_MAX, max(_even(s * aspect), _even(s * 4 / 3)))
    if portrait is None:
        portrait = bool(rng.random() < 0.35)
    return (s, long) if portrait else (long, s)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _segment_distance(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance in RGB from colour c to the segment of colours between a and b."""
    d = b - a
    n = float(d @ d)
    u = 0.0 if n == 0 else float(np.clip((c - a) @ d / n, 0, 1))
    return float(np.linalg.norm(c - (a + u * d)))


def random_scene(
    rng: np.random.Generator,
    size: tuple[int, int] | None = None,
    *,
    shape: str | None = None,
    background: str | None = None,
    portrait: bool | None = None,
) -> Scene:
    width, height = size or random_frame_size(rng, portrait)
    shape = shape or str(rng.choice(SHAPES))
    background = background or str(rng.choice(BACKGROUNDS))
    while True:
        a = rng.integers(0, 256, 3)
        b = rng.integers(0, 256, 3) if background == "gradient" else a
        if background == "gradient" and np.linalg.norm(a - b) < 60:
            continue  # a gradient worth the name
        for _ in range(50):
            c = rng.integers(0, 256, 3)
            if _segment_distance(c.astype(float), a.astype(float), b.astype(float)) >= (
                MIN_CONTRAST
            ):
                return Scene(
                    width,
                    height,
                    shape,
                    _rgb(c),
                    background,
                    (_rgb(a), _rgb(b)),
                    float(rng.uniform(0, 2 * np.pi)),
                )


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    return int(c[0]), int(c[1]), int(c[2])


def _jitter(rng: np.random.Generator) -> tuple[tuple[float, float, float, float], ...]:
    """Two sines, 0.5–8 Hz, whose amplitudes add up to at most JITTER_PX."""
    total = rng.uniform(0, JITTER_PX)
    split = rng.uniform(0, 1)
    out = []
    for amp in (total * split, total * (1 - split)):
        angle = rng.uniform(0, 2 * np.pi)
        out.append(
            (
                amp * math.cos(angle),
                amp * math.sin(angle),
                float(rng.uniform(0.5, 8)),
                float(rng.uniform(0, 2 * np.pi)),
            )
        )
    return tuple(out)


def _growth(rng: np.random.Generator, seconds: float, cap: float = math.inf) -> float:
    """Total growth factor over `seconds` (>1) for a factor of 1.5–2.5 per 4 s, capped."""
    lo = GROWTH_RANGE[0] ** (seconds / GROWTH_SECONDS)
    hi = min(GROWTH_RANGE[1] ** (seconds / GROWTH_SECONDS), max(lo, cap))
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def random_clip(
    rng: np.random.Generator,
    label: str | None = None,
    *,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    portrait: bool | None = None,
    rotation: int | None = None,
    shape: str | None = None,
    background: str | None = None,
    duration: float | None = None,
    speed: float | None = None,
    growth: float | None = None,
) -> MotionVideo:
    """One labelled clip (default 2–3 s) inside every range of the task.

    A move that would leave the picture within `duration` shortens the clip instead (to no less
    than 2 s: 40 %/s of a side for 2 s, plus a shape of 20 %, fits). `speed` (of the side per
    second) and `growth` (factor over GROWTH_SECONDS) pin what is otherwise drawn from
    SPEED_RANGE and GROWTH_RANGE; left out, the random stream is the same as before they existed.
    """
    label = label or str(rng.choice(CLASSES))
    if label not in CLASSES:
        raise ValueError(f"unknown label {label!r}")
    scene = random_scene(rng, size, shape=shape, background=background, portrait=portrait)
    fps = fps if fps is not None else int(rng.choice(FPS_CHOICES))
    rotation = rotation if rotation is not None else int(rng.choice(ROTATIONS))
    seconds = duration if duration is not None else float(rng.uniform(2.0, 3.0))
    w, h, short = scene.width, scene.height, scene.short
    lo, hi = SIZE_RANGE
    if label in _MOVES:
        dx, dy = _MOVES[label]
        s = rng.uniform(lo, hi) * short
        length = w if dx else h
        share = speed if speed is not None else rng.uniform(*SPEED_RANGE)  # of the side, per s
        speed = share * length  # pixels per second
        seconds = min(seconds, (length - s - 2) / speed)
        travel = speed * seconds
        cx = _place(rng, w, s, travel * dx)
        cy = _place(rng, h, s, travel * dy)
        seg = Segment(label, 0.0, seconds, cx, cy, s, speed * dx, speed * dy)
    elif label in ("growing", "shrinking"):
        g = growth ** (seconds / GROWTH_SECONDS) if growth is not None else _growth(rng, seconds)
        big = rng.uniform(lo * g, hi) * short  # the largest size it reaches
        cx, cy = _place(rng, w, big, 0), _place(rng, h, big, 0)
        grow = label == "growing"
        s0 = big / g if grow else big
        rate = math.log(g) / seconds * (1 if grow else -1)
        seg = Segment(label, 0.0, seconds, cx, cy, s0, rate=rate)
    else:
        s = rng.uniform(lo, hi) * short
        margin = s + 2 * JITTER_PX
        cx, cy = _place(rng, w, margin, 0), _place(rng, h, margin, 0)
        seg = Segment(label, 0.0, seconds, cx, cy, s, jitter=_jitter(rng))
    return MotionVideo(scene, (seg,), fps, rotation)


def held_out_clips(
    seed: int = HELD_OUT_SEED, per_class: int = HELD_OUT_PER_CLASS
) -> list[MotionVideo]:
    """`per_class` clips of each class, in rounds of one per class: every fps, rotation,
    orientation, shape and background, and per class one clip at the smallest and one at the
    largest frame size, the rest drawn from the whole range. A larger `per_class` with the same
    seed begins with the same clips."""
    rng = np.random.default_rng(seed)
    clips = []
    for j in range(per_class):
        for c, label in enumerate(CLASSES):
            portrait = bool((j + c) % 2)
            size = None
            if j in (0, 1):
                w, h = (160, 120) if j == 0 else (1280, 720)
                size = (h, w) if portrait else (w, h)
            clips.append(
                random_clip(
                    rng,
                    label,
                    fps=FPS_CHOICES[(j + c) % len(FPS_CHOICES)],
                    rotation=ROTATIONS[(j + 2 * c) % len(ROTATIONS)],
                    portrait=portrait,
                    size=size,
                    shape=SHAPES[(j // 2 + c) % 2],
                    background=BACKGROUNDS[(j // 4 + c) % 2],
                )
            )
    return clips


def _place(rng: np.random.Generator, length: float, size: float, travel: float) -> float:
    """A start centre so that the shape stays wholly inside [0, length] over the travel."""
    lo = size / 2 + max(0.0, -travel) + 1
    hi = length - size / 2 - max(0.0, travel) - 1
    return float(rng.uniform(lo, hi)) if hi > lo else length / 2 - travel / 2


def random_labels(rng: np.random.Generator, count: int) -> list[str]:
    """`count` labels drawn one after the other, each different from the one before."""
    labels: list[str] = []
    for _ in range(count):
        labels.append(str(rng.choice([c for c in CLASSES if not labels or c != labels[-1]])))
    return labels


def segment_plan(
    rng: np.random.Generator, duration: float = 60.0, count: int | None = None
) -> list[tuple[str, float]]:
    """(label, seconds) of 6–10 segments of 3 s to the label's MAX_SECONDS adding up to
    `duration`; neighbours differ."""
    lo = SEGMENT_SECONDS[0]
    low_count = max(SEGMENT_COUNT[0], math.ceil(duration / SEGMENT_SECONDS[1] - 1e-9))
    high_count = min(SEGMENT_COUNT[1], math.floor(duration / lo + 1e-9))
    while True:  # labels whose longest segments can fill the duration
        n = count if count is not None else int(rng.integers(low_count, high_count + 1))
        labels = random_labels(rng, n)
        hi = np.array([MAX_SECONDS[label] for label in labels])
        if hi.sum() >= duration - 1e-9:
            break
    seconds = np.full(n, lo)
    extra = duration - lo * n  # shared out, no segment above its label's longest
    free = np.ones(n, bool)
    while extra > 1e-9 and free.any():
        share = rng.dirichlet(np.ones(free.sum())) * extra
        add = np.minimum(share, hi[free] - seconds[free])
        seconds[free] += add
        extra -= add.sum()
        free = seconds < hi - 1e-9
    return list(zip(labels, (float(s) for s in seconds), strict=True))


def random_segment_video(
    rng: np.random.Generator,
    plan: Sequence[tuple[str, float]] | None = None,
    *,
    duration: float = 60.0,
    fps: float = 30,
    size: tuple[int, int] | None = None,
    portrait: bool | None = None,
    rotation: int = 0,
    shape: str | None = None,
    background: str | None = None,
) -> MotionVideo:
    """A continuous scene through a plan of (label, seconds), by default `segment_plan`; a
    segment longer than its label's MAX_SECONDS would leave the ranges and is refused."""
    plan = list(plan) if plan is not None else segment_plan(rng, duration)
    for label, seconds in plan:
        if seconds > MAX_SECONDS[label] + 1e-9:
            raise ValueError(f"{label} for {seconds:.2f} s: longest is {MAX_SECONDS[label]} s")
    scene = random_scene(rng, size, shape=shape, background=background, portrait=portrait)
    w, h, short = scene.width, scene.height, scene.short
    smin, smax = (f * short for f in SIZE_RANGE)
    s = rng.uniform(smin, smax)
    cx, cy = _place(rng, w, s, 0), _place(rng, h, s, 0)
    t = 0.0
    segments: list[Segment] = []
    for label, seconds in plan:
        end = t + seconds
        if label in _MOVES:
            dx, dy = _MOVES[label]
            length = w if dx else h
            fastest = min(SPEED_RANGE[1], (length - s - 2) / (length * seconds))
            speed = rng.uniform(SPEED_RANGE[0], fastest) * length
            travel = speed * seconds * (dx or dy)
            pos = cx if dx else cy
            if not s / 2 + 1 <= pos + travel <= length - s / 2 - 1:  # a cut
                pos = _place(rng, length, s, travel)
            cx, cy = (pos, cy) if dx else (cx, pos)
            seg = Segment(label, t, end, cx, cy, s, speed * dx, speed * dy)
            cx, cy = (pos + travel, cy) if dx else (cx, pos + travel)
        elif label in ("growing", "shrinking"):
            grow = label == "growing"
            g_min = GROWTH_RANGE[0] ** (seconds / GROWTH_SECONDS)
            room = min(smax, 2 * min(cx, w - cx, cy, h - cy) - 2)  # largest size that fits here
            fits = s * g_min <= room if grow else s / g_min >= smin
            if not fits:  # a cut: place the shape afresh where the change fits
                s = rng.uniform(smin, smax / g_min) if grow else rng.uniform(smin * g_min, smax)
                big = s * g_min if grow else s
                cx, cy = _place(rng, w, big, 0), _place(rng, h, big, 0)
                room = min(smax, 2 * min(cx, w - cx, cy, h - cy) - 2)
            cap = room / s if grow else s / smin
            g = _growth(rng, seconds, cap)
            rate = math.log(g) / seconds * (1 if grow else -1)
            seg = Segment(label, t, end, cx, cy, s, rate=rate)
            s = s * g if grow else s / g
        else:
            if min(cx - s / 2, w - cx - s / 2, cy - s / 2, h - cy - s / 2) < JITTER_PX:
                cx = min(max(cx, s / 2 + JITTER_PX), w - s / 2 - JITTER_PX)
                cy = min(max(cy, s / 2 + JITTER_PX), h - s / 2 - JITTER_PX)
            seg = Segment(label, t, end, cx, cy, s, jitter=_jitter(rng))
        segments.append(seg)
        t = end
    return MotionVideo(scene, tuple(segments), fps, rotation)


def correct_seconds(
    truth: Sequence[tuple[float, float, str]], segments: Sequence[dict[str, object]]
) -> float:
    """Seconds of the truth's (start, end, label) that predicted segments ({start, end, label},
    as `vidcls segment --json` writes them) cover with the same label."""
    total = 0.0
    for a, b, label in truth:
        for s in segments:
            if s["label"] == label:
                total += max(0.0, min(b, float(s["end"])) - max(a, float(s["start"])))
    return total


def missed_boundaries(
    truth: Sequence[tuple[float, float, str]],
    segments: Sequence[dict[str, object]],
    within: float,
) -> list[float]:
    """The truth's boundaries with no predicted boundary (a segment's end) within `within` s."""
    found = [float(s["end"]) for s in segments[:-1]]
    return [b for _, b, _ in truth[:-1] if not any(abs(b - f) <= within for f in found)]


def example_video() -> MotionVideo:
    """The README's example: a red circle moving right over a blue-green gradient, 4 s."""
    scene = Scene(
        480, 270, "circle", (230, 40, 40), "gradient", ((20, 60, 120), (40, 160, 130)), 0.6
    )
    speed = 0.22 * 480
    seg = Segment("moving right", 0.0, 4.0, 60.0, 150.0, 0.16 * 270, vx=speed)
    return MotionVideo(scene, (seg,), 30, 0)


# --------------------------------------------------------------------------------- rendering


class Painter:
    """Draws a scene's frames at its displayed size; the background is computed once."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.background = background_image(scene, scene.width, scene.height)
        self.colour = np.array(scene.colour, np.float32)

    def frame(self, cx: float, cy: float, size: float) -> np.ndarray:
        """The upright RGB uint8 picture with the shape centred at (cx, cy)."""
        out = self.background.copy()
        w, h = self.scene.width, self.scene.height
        r = size / 2
        x0, x1 = max(0, math.floor(cx - r - 1)), min(w, math.ceil(cx + r + 1))
        y0, y1 = max(0, math.floor(cy - r - 1)), min(h, math.ceil(cy + r + 1))
        if x1 <= x0 or y1 <= y0:
            return out
        alpha = coverage(self.scene.shape, cx - x0, cy - y0, size, x1 - x0, y1 - y0)
        patch = out[y0:y1, x0:x1].astype(np.float32)
        patch += alpha[..., None] * (self.colour - patch)
        out[y0:y1, x0:x1] = np.round(patch).astype(np.uint8)
        return out


def background_image(scene: Scene, width: int, height: int) -> np.ndarray:
    """The background as RGB uint8 at width × height (the scene's displayed size or a scaling)."""
    a, b = (np.array(c, np.float32) for c in scene.bg_colours)
    if scene.background == "uniform":
        return np.broadcast_to(np.round(a).astype(np.uint8), (height, width, 3)).copy()
    u = gradient_position(scene, width, height)
    return np.round(a + u[..., None] * (b - a)).astype(np.uint8)


def gradient_position(scene: Scene, width: int, height: int) -> np.ndarray:
    """0 at the first colour, 1 at the second, at each pixel centre of a width × height grid."""
    c, s = math.cos(scene.bg_angle), math.sin(scene.bg_angle)
    x = (np.arange(width, dtype=np.float32) + 0.5) / width * scene.width
    y = (np.arange(height, dtype=np.float32) + 0.5) / height * scene.height
    proj = x[None, :] * c + y[:, None] * s
    corners = [0 * c + 0 * s, scene.width * c, scene.height * s, scene.width * c + scene.height * s]
    lo, hi = min(corners), max(corners)
    return np.clip((proj - lo) / (hi - lo), 0, 1)


def coverage(shape: str, cx: float, cy: float, size: float, width: int, height: int) -> np.ndarray:
    """Antialiased alpha (height × width, float32) of a shape centred at (cx, cy) in pixels."""
    r = size / 2
    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)
    if shape == "square":
        ax = np.clip(np.minimum(x + 1, cx + r) - np.maximum(x, cx - r), 0, 1)
        ay = np.clip(np.minimum(y + 1, cy + r) - np.maximum(y, cy - r), 0, 1)
        return ay[:, None] * ax[None, :]
    d = np.sqrt((x[None, :] + 0.5 - cx) ** 2 + (y[:, None] + 0.5 - cy) ** 2)
    return np.clip(r - d + 0.5, 0, 1)


def frames(
    video: MotionVideo, *, mirror: bool = False, reverse: bool = False
) -> Iterator[tuple[float, np.ndarray]]:
    """(time, upright RGB uint8 frame) for every frame of the video.

    `mirror` flips every picture left to right; `reverse` plays the frames backwards (frame i
    shows what frame n-1-i would have). Both are for checks that the model looks at the motion.
    """
    painter = Painter(video.scene)
    times = video.frame_times()
    cx, cy, size = video.geometry(times[::-1] if reverse else times)
    for i, t in enumerate(times):
        rgb = painter.frame(cx[i], cy[i], size[i])
        yield float(t), np.ascontiguousarray(rgb[:, ::-1]) if mirror else rgb


def render_frame(video: MotionVideo, t: float) -> np.ndarray:
    cx, cy, size = video.geometry(np.array([t]))
    return Painter(video.scene).frame(cx[0], cy[0], size[0])


def write_video(
    video: MotionVideo,
    path: str | Path,
    preset: str = "veryfast",
    *,
    mirror: bool = False,
    reverse: bool = False,
) -> Path:
    """Encode with libx264 yuv420p (CRF `video.crf`) into an MP4 with faststart.

    With a rotation R the stored picture is the displayed one turned R degrees counter-clockwise
    and the display matrix tells players to turn it back, as a phone writes it. `mirror` and
    `reverse`: see `frames`.
    """
    import av
    from av.video.frame import PictureType

    path = Path(path)
    k = (video.rotation // 90) % 4
    w, h = video.scene.width, video.scene.height
    stored_w, stored_h = (h, w) if k % 2 else (w, h)
    rate = Fraction(video.fps).limit_denominator(1001)
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
    with av.open(str(path), "w", container_options=options) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = stored_w, stored_h, "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.codec_context.options = {"preset": preset, "crf": str(video.crf)}
        if k:
            stream.set_display_rotation(-video.rotation)  # counter-clockwise, as FFmpeg reads it
        for i, (_, rgb) in enumerate(frames(video, mirror=mirror, reverse=reverse)):
            if k:
                rgb = np.ascontiguousarray(np.rot90(rgb, k=k))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            frame.pict_type = PictureType.NONE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_videos(videos: Sequence[MotionVideo], paths: Sequence[Path], workers: int = 0) -> None:
    """`write_video` for many videos, one process per core (`workers`, 0: every core).

    Spawned, not forked: a fork of a process whose torch threads are running can hang.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = workers or min(4, os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(write_video, videos, paths, chunksize=8))


def write_example(path: str | Path) -> Path:
    """The README's example video (small: about 50 kB)."""
    return write_video(example_video(), path, preset="veryslow")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the videos into")
    parser.add_argument("--count", type=int, default=14, help="clips to write (2 per class)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segments", action="store_true", help="also a 60-s segment video")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for i in range(args.count):
        clip = random_clip(rng, CLASSES[i % len(CLASSES)])
        name = f"{i:03d}-{clip.label.replace(' ', '-')}-{clip.fps}fps-r{clip.rotation}.mp4"
        print(write_video(clip, args.out / name))
    if args.segments:
        video = random_segment_video(rng)
        print(write_video(video, args.out / "segments.mp4"), video.truth())
    print(write_example(args.out / "motion.mp4"))


if __name__ == "__main__":
    main()
