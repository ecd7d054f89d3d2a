"""What `segment --overlay` draws on each frame: the current segment's label and score in the
top-left corner, and a thin timeline bar along the bottom edge with a cursor at the frame's time.

Pure numpy on an RGB frame, in place; the video side (`encode.reencode`) decodes and encodes.
Text uses a built-in 5×7 pixel font (upper case, digits, a little punctuation; anything else
shows as ?), scaled with the frame, so nothing depends on a font library or the system's fonts.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

_GLYPHS = {
    "A": "0E11111F111111", "B": "1E11111E11111E", "C": "0E11101010110E", "D": "1E11111111111E",
    "E": "1F10101E10101F", "F": "1F10101E101010", "G": "0E11101711110F", "H": "1111111F111111",
    "I": "0E04040404040E", "J": "0702020202120C", "K": "11121418141211", "L": "1010101010101F",
    "M": "111B1515111111", "N": "11191513111111", "O": "0E11111111110E", "P": "1E11111E101010",
    "Q": "0E11111115120D", "R": "1E11111E141211", "S": "0F10100E01011E", "T": "1F040404040404",
    "U": "1111111111110E", "V": "11111111110A04", "W": "1111111515150A", "X": "11110A040A1111",
    "Y": "11110A04040404", "Z": "1F01020408101F", "0": "0E11131519110E", "1": "040C040404040E",
    "2": "0E11010204081F", "3": "1F02040201110E", "4": "02060A121F0202", "5": "1F101E0101110E",
    "6": "0608101E11110E", "7": "1F010204080808", "8": "0E11110E11110E", "9": "0E11110F01020C",
    " ": "00000000000000", ".": "00000000000C0C", "-": "0000001F000000", "_": "0000000000001F",
    "(": "02040808080402", ")": "08040202020408", ":": "000C0C000C0C00", "/": "01010204081010",
    "%": "18190204081303", "?": "0E110102040004",
}  # fmt: skip
# the HTML report's palette
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34),
           (23, 190, 207)]  # fmt: skip


def _bitmap(char: str) -> np.ndarray:
    code = _GLYPHS.get(char.upper(), _GLYPHS["?"])
    rows = [int(code[i : i + 2], 16) for i in range(0, 14, 2)]
    return np.array([[(r >> (4 - c)) & 1 for c in range(5)] for r in rows], dtype=bool)


def text_mask(text: str, scale: int) -> np.ndarray:
    """The text as a boolean mask, 7 × scale pixels high, a pixel column between letters."""
    if not text:
        return np.zeros((7 * scale, 0), dtype=bool)
    cells = [np.pad(_bitmap(c), ((0, 0), (0, 1))) for c in text]
    mask = np.concatenate(cells, axis=1)[:, :-1]
    return mask.repeat(scale, 0).repeat(scale, 1)


class Painter:
    """Draws the segment at each time. `segments` are records' segment dicts (start, end,
    label, score) in time order; `start` and `end` the timeline's range. The bar is drawn once
    per frame size and copied, the segment found by bisection: a long video with thousands of
    segments costs what a short one does per frame."""

    def __init__(self, segments: Sequence[dict[str, Any]], start: float, end: float) -> None:
        self.segments = list(segments)
        self.start, self.end = start, end
        order = list(dict.fromkeys(s["label"] for s in self.segments))
        self.colours = {label: COLOURS[n % len(COLOURS)] for n, label in enumerate(order)}
        self.starts = [s["start"] for s in self.segments]
        self.bars: dict[int, np.ndarray] = {}
        self.texts: dict[tuple[int, int], np.ndarray] = {}

    def at(self, t: float) -> dict[str, Any] | None:
        n = bisect.bisect_right(self.starts, t) - 1
        if n < 0 or t > self.end + 1e-6:
            return None
        seg = self.segments[n]
        last = n == len(self.segments) - 1
        return seg if t < seg["end"] or (last and t <= seg["end"] + 1e-6) else None

    def __call__(self, rgb: np.ndarray, t: float) -> None:
        height, width = rgb.shape[:2]
        scale = max(1, height // 120)
        self._bar(rgb, t, max(3, height // 60))
        n = bisect.bisect_right(self.starts, t) - 1
        seg = self.at(t)
        if seg is None:
            return
        key = (n, scale)
        if key not in self.texts:
            self.texts = {key: text_mask(f"{seg['label']} {seg['score']:.2f}", scale)}
        mask = self.texts[key]
        pad = 2 * scale
        swatch = 7 * scale
        box_h = min(height, mask.shape[0] + 2 * pad)
        box_w = min(width, swatch + mask.shape[1] + 3 * pad)
        region = rgb[:box_h, :box_w]
        region[:] = (region.astype(np.uint16) // 4).astype(np.uint8)  # darkened, still visible
        region[pad : pad + swatch, pad : pad + swatch] = self.colours[seg["label"]]
        x0 = 2 * pad + swatch
        shown = mask[: max(0, box_h - pad), : max(0, box_w - x0)]
        rgb[pad : pad + shown.shape[0], x0 : x0 + shown.shape[1]][shown] = 255

    def _bar(self, rgb: np.ndarray, t: float, thickness: int) -> None:
        height, width = rgb.shape[:2]
        if width not in self.bars:
            row = np.zeros((width, 3), dtype=np.uint8)
            length = max(self.end - self.start, 1e-9)
            for seg in self.segments:
                a = int(round((seg["start"] - self.start) / length * width))
                b = int(round((seg["end"] - self.start) / length * width))
                row[max(0, a) : max(0, b)] = self.colours[seg["label"]]
            self.bars[width] = row
        bar = rgb[height - thickness :]
        bar[:] = self.bars[width]
        if self.start <= t <= self.end:
            x = min(width - 1, int((t - self.start) / max(self.end - self.start, 1e-9) * width))
            bar[:, max(0, x - 1) : x + 1] = 255
