"""Write the benchmark videos into bench/out/ (H.264, yuv420p, 30 fps, made with PyAV only).

* `v1080_g30.mp4`, `v1080_g250.mp4`: 1920×1080, 60 s; a phone-like 1-second GOP (keyint 30) and
  x264's default GOP (keyint 250); B-frames on (x264's default 3); crf 23.
* `v360_1min.mp4`, `v360_10min.mp4`: 640×360, 1 and 10 minutes (x264's default GOP), for the
  scaling benchmark.

The picture imitates ffmpeg's `testsrc2`: colour bars, a textured band scrolling sideways, a ramp
with a bouncing box and a changing counter, plus fresh per-frame grain on the luma (±8 on the
lower half, ±4 on the bars) so the bitrate is realistic: about 7 Mbit/s with the 1-s GOP and
4.5–5 with x264's default at 1080p (measured on 3–6 s samples; the table reports it). Frames
are built directly as yuv420p planes with numpy (no RGB conversion). An existing file made with
the same settings (its `comment` tag records them) is kept unless `--force`; one made otherwise
(say by a smoke run) is rewritten.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import PictureType

from vidcls_dev.bench import OUT, Table, add_common_args, header, report

FPS = 30

# testsrc2's bars: white, yellow, cyan, green, magenta, red, blue, black
BARS = [
    (255, 255, 255),
    (255, 255, 0),
    (0, 255, 255),
    (0, 255, 0),
    (255, 0, 255),
    (255, 0, 0),
    (0, 0, 255),
    (0, 0, 0),
]


def yuv(r: float, g: float, b: float) -> tuple[int, int, int]:
    """BT.601 limited range, as libx264 gets yuv420p by default."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


class Pattern:
    """Precomputed planes; `frame(i)` shifts and stamps them, then adds fresh noise."""

    def __init__(self, width: int, height: int, noise: int, seed: int = 0) -> None:
        assert width % 4 == 0 and height % 4 == 0, "sizes must be multiples of 4"
        self.w, self.h, self.noise = width, height, noise
        self.rng = np.random.default_rng(seed)
        w, h = width, height
        self.bars_h = (h * 5 // 10) // 2 * 2
        self.band_h = (h * 3 // 10) // 2 * 2
        self.ramp_h = h - self.bars_h - self.band_h
        y = np.zeros((h, w), np.uint8)
        u = np.full((h // 2, w // 2), 128, np.uint8)
        v = np.full((h // 2, w // 2), 128, np.uint8)
        edges = np.linspace(0, w, len(BARS) + 1).astype(int) // 2 * 2
        for (r, g, b), x0, x1 in zip(BARS, edges, edges[1:], strict=False):
            cy, cu, cv = yuv(r, g, b)
            y[: self.bars_h, x0:x1] = cy
            u[: self.bars_h // 2, x0 // 2 : x1 // 2] = cu
            v[: self.bars_h // 2, x0 // 2 : x1 // 2] = cv
        ramp = np.linspace(16, 235, w).astype(np.uint8)
        y[self.bars_h + self.band_h :] = ramp
        self.base = (y, u, v)
        # Band texture, periodic over the width: blocks of random luma and colour, softened,
        # plus a sinusoidal pattern (like testsrc2's moving gradient).
        rng = np.random.default_rng(seed + 1)
        block = max(4, w // 60)
        bh, bw = -(-self.band_h // block), -(-w // block)
        coarse = rng.integers(40, 220, (bh, bw)).astype(np.float32)
        tex = np.kron(coarse, np.ones((block, block), np.float32))[: self.band_h, :w]
        xs = np.arange(w, dtype=np.float32)[None, :]
        ys = np.arange(self.band_h, dtype=np.float32)[:, None]
        tex = 0.6 * tex + 0.4 * (128 + 90 * np.sin(2 * np.pi * (xs / (w / 7) + ys / (h / 5))))
        self.tex_y = np.concatenate([tex, tex], axis=1).clip(16, 235).astype(np.uint8)
        cb = np.kron(rng.integers(70, 190, (bh, bw)), np.ones((block // 2, block // 2)))
        cr = np.kron(rng.integers(70, 190, (bh, bw)), np.ones((block // 2, block // 2)))
        cb = cb[: self.band_h // 2, : w // 2].astype(np.uint8)
        cr = cr[: self.band_h // 2, : w // 2].astype(np.uint8)
        self.tex_u = np.concatenate([cb, cb], axis=1)
        self.tex_v = np.concatenate([cr, cr], axis=1)
        self.speed = max(2, w // 320) // 2 * 2  # px per frame, even (chroma stays aligned)
        self.box = max(8, h // 8) // 2 * 2
        self.cell = max(4, h // 45) // 2 * 2
        self.out = np.empty((h * 3 // 2, w), np.uint8)

    def frame(self, i: int) -> np.ndarray:
        """The i420 buffer (Y, then U and V packed as rows of width w) of frame i."""
        w, h = self.w, self.h
        out = self.out
        y = out[:h]
        u = out[h : h + h // 4].reshape(h // 2, w // 2)
        v = out[h + h // 4 :].reshape(h // 2, w // 2)
        by, bu, bv = self.base
        y[:] = by
        u[:] = bu
        v[:] = bv
        # the band scrolls left
        x = (i * self.speed) % w
        top = self.bars_h
        y[top : top + self.band_h] = self.tex_y[:, x : x + w]
        u[top // 2 : (top + self.band_h) // 2] = self.tex_u[:, x // 2 : x // 2 + w // 2]
        v[top // 2 : (top + self.band_h) // 2] = self.tex_v[:, x // 2 : x // 2 + w // 2]
        # a box bouncing along the ramp, and a 16-bit counter of the frame index
        ramp_top = top + self.band_h
        period = 2 * (w - self.box)
        bx = (i * self.speed * 2) % period
        bx = (bx if bx < w - self.box else period - bx) // 2 * 2
        by0 = ramp_top + (self.ramp_h - self.box) // 2 // 2 * 2
        y[by0 : by0 + self.box, bx : bx + self.box] = 235
        u[by0 // 2 : (by0 + self.box) // 2, bx // 2 : (bx + self.box) // 2] = 90
        c = self.cell
        for bit in range(16):
            y[top - 2 * c : top - c, (bit + 1) * c : (bit + 2) * c] = 235 if i >> bit & 1 else 16
        if self.noise:
            # Full-strength grain on the band and the ramp, half on the bars. x264 at crf 23
            # discards grain below about ±7 and codes grain above it at a high cost, so the
            # bitrate is set by how much of the picture carries the strong grain.
            top = self.bars_h
            low = self.noise // 2
            grain = self.rng.integers(-low, low + 1, (top, w), dtype=np.int8)
            np.add(y[:top], grain, out=y[:top], casting="unsafe")  # no wrap: Y stays in 16..235
            grain = self.rng.integers(-self.noise, self.noise + 1, (h - top, w), dtype=np.int8)
            np.add(y[top:], grain, out=y[top:], casting="unsafe")
        return out


@dataclass
class Job:
    name: str
    width: int
    height: int
    seconds: float
    gop: int | None  # None: x264's default (keyint 250)


def recipe(job: Job, preset: str, crf: float, noise: int) -> str:
    """What made a file, stored in its `comment` tag: a file made otherwise is rewritten."""
    gop = job.gop or "default"
    return f"vidcls bench: {job.width}x{job.height} {job.seconds:g}s preset={preset} crf={crf:g} gop={gop} noise={noise}"  # noqa: E501


def stored_recipe(path: Path) -> str | None:
    try:
        with av.open(str(path)) as container:
            return container.metadata.get("comment")
    except av.error.FFmpegError:
        return None


@dataclass
class Stats:
    packets: int
    keyframes: int
    b_frames: int
    seconds: float
    mbps: float
    width: int
    height: int


def file_stats(path: Path) -> Stats:
    """From the packet index (no decoding). A packet whose pts is below one decoded before it is
    a B-frame (displayed before an already decoded reference)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        pts: list[int] = []
        keys = b_frames = 0
        highest: int | None = None
        for packet in container.demux(stream):
            if packet.pts is None or not packet.size:
                continue
            pts.append(packet.pts)
            keys += packet.is_keyframe
            if highest is not None and packet.pts < highest:
                b_frames += 1
            highest = packet.pts if highest is None else max(highest, packet.pts)
        tb = float(stream.time_base or 0)
    pts.sort()
    step = (pts[-1] - pts[0]) / (len(pts) - 1) if len(pts) > 1 else 0
    seconds = (pts[-1] - pts[0] + step) * tb if pts else 0.0
    mbps = path.stat().st_size * 8 / seconds / 1e6 if seconds else 0.0
    return Stats(len(pts), keys, b_frames, seconds, mbps, width, height)


def encode(job: Job, path: Path, preset: str, crf: float, noise: int) -> float:
    """Write one file; returns the seconds it took."""
    started = time.perf_counter()
    pattern = Pattern(job.width, job.height, noise)
    frames = round(job.seconds * FPS)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    options = {"preset": preset, "crf": f"{crf:g}"}
    if job.gop is not None:
        options["g"] = str(job.gop)  # keyint; x264 keeps its default min-keyint and scenecut
    with av.open(str(partial), "w") as out:
        out.metadata["comment"] = recipe(job, preset, crf, noise)
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = job.width, job.height, "yuv420p"
        stream.codec_context.options = options
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern.frame(i), format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            # A frame tagged I makes libx264 code it intra; NONE lets x264 choose (performance.md)
            frame.pict_type = PictureType.NONE
            out.mux(stream.encode(frame))
            if (i + 1) % 300 == 0:
                print(f"  {path.name}: {i + 1}/{frames} frames", flush=True)
        out.mux(stream.encode(None))
    partial.replace(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder (default: bench/out)")
    parser.add_argument("--seconds", type=float, default=60, help="1080p length (default 60)")
    parser.add_argument(
        "--short-seconds", type=float, default=60, help="v360_1min length (default 60)"
    )
    parser.add_argument(
        "--long-seconds", type=float, default=600, help="v360_10min length (default 600)"
    )
    parser.add_argument(
        "--size",
        default="1920x1080",
        help="size of the 1080p files, WxH (default 1920x1080; smaller for a smoke run)",
    )
    parser.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast)")
    parser.add_argument("--crf", type=float, default=23, help="x264 crf (default 23)")
    parser.add_argument(
        "--noise", type=int, default=8, help="luma grain amplitude ±N per frame (default 8)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="write only these files (e.g. v1080_g30.mp4)"
    )
    parser.add_argument("--force", action="store_true", help="rewrite files that exist")
    add_common_args(parser)
    args = parser.parse_args()

    width, height = (int(n) for n in args.size.lower().split("x"))
    jobs = [
        Job("v1080_g30.mp4", width, height, args.seconds, 30),
        Job("v1080_g250.mp4", width, height, args.seconds, None),
        Job("v360_1min.mp4", 640, 360, args.short_seconds, None),
        Job("v360_10min.mp4", 640, 360, args.long_seconds, None),
    ]
    if args.only:
        unknown = set(args.only) - {j.name for j in jobs}
        if unknown:
            parser.error(f"unknown file(s): {', '.join(sorted(unknown))}")
        jobs = [j for j in jobs if j.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    header()
    table = Table(
        "Test videos",
        ["file", "size", "seconds", "frames", "I (key)", "B", "GOP", "Mbit/s", "written in"],
    )
    for job in jobs:
        path = args.out / job.name
        took = "kept"
        wanted = recipe(job, args.preset, args.crf, args.noise)
        if path.is_file() and not args.force:
            found = stored_recipe(path)
            if found == wanted:
                print(f"{path}: exists, kept (--force rewrites it)")
            else:
                print(f"{path}: made as '{found}', not '{wanted}': rewriting", flush=True)
                took = f"{encode(job, path, args.preset, args.crf, args.noise):.1f} s"
        else:
            print(f"{path}: writing {job.width}×{job.height}, {job.seconds:g} s", flush=True)
            took = f"{encode(job, path, args.preset, args.crf, args.noise):.1f} s"
        s = file_stats(path)
        table.add(
            job.name,
            f"{s.width}×{s.height}",
            f"{s.seconds:.2f}",
            s.packets,
            s.keyframes,
            s.b_frames,
            job.gop or "x264 default (250)",
            f"{s.mbps:.2f}",
            took,
        )
    notes = [
        f"libx264 preset {args.preset}, crf {args.crf:g}, yuv420p, {FPS} fps, B-frames on "
        f"(x264 default), luma grain ±{args.noise}; B counted from the packet order."
    ]
    report("Test videos", [table], notes, args.append)


if __name__ == "__main__":
    main()
