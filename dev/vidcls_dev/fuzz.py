"""Seeded mutation fuzzing of vidcls's readers: mutated videos through probe, predict, segment.

A run makes a small corpus of clean videos (several containers and codecs), then, input by
input, picks one of them and one mutation with a seeded generator, writes the mutated bytes and
runs `vidcls probe`, `vidcls predict` and `vidcls segment` (motion-tiny) on them in a worker
subprocess. Each command must end in a result (exit 0, JSON on stdout) or a documented vidcls
error (`error: FILE: reason` on stderr, never "internal error"). Anything else is a finding:

- `exception`: an uncaught exception, or "internal error" on stderr;
- `hang`: the command ran past the per-input time limit (the worker is killed);
- `memory`: the worker's resident memory went past the limit while running it;
- `crash`: the worker died by a signal (a segfault in native code, an abort).

The worker loads the command line once and runs commands in-process (Typer's runner), so a
run costs what the command costs, not a Python start; it is restarted after any finding that
killed it. Mutations: bit flips, truncations, byte splices between files, structure-aware edits
of MP4 boxes, Matroska (EBML) elements and MPEG-TS packets (drop, duplicate, swap, splice,
sizes set to extremes), and known header fields (sizes, time scales, rates, durations,
timestamps) set to extreme values. The same seed makes the same inputs.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

COMMANDS = ("probe", "predict", "segment")
MODEL = ["--model", "motion-tiny", "--precision", "fp32", "--device", "cpu", "-k", "1"]
EXTREMES = (0, 1, 2, 0x7F, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
BAD = ("exception", "hang", "memory", "crash")


# --- the clean corpus ---------------------------------------------------------------------------
def make_corpus(folder: Path) -> list[Path]:
    """Small clean videos in the containers and codecs vidcls meets most (a few seconds each)."""
    from .media import grain_counter, make_video
    from .media_broken import make_fragmented_mp4, make_streamed_mkv

    folder.mkdir(parents=True, exist_ok=True)
    small = {"size": (128, 96), "content": grain_counter}
    made = [
        make_video(folder / "h264.mp4", duration=2.0, gop=15, **small),
        make_video(folder / "moov-end.mp4", duration=2.0, gop=15, faststart=False, **small),
        make_video(folder / "h264.mkv", duration=2.0, gop=15, **small),
        make_video(folder / "vp9.webm", duration=2.0, gop=15, **small),
        make_video(folder / "h264.ts", duration=2.0, gop=15, **small),
        make_video(folder / "h264.mov", duration=2.0, gop=15, audio=True, **small),
        # the hang: a 5-s MPEG-4 AVI whose damaged index sends seeks back
        make_video(folder / "mpeg4.avi", duration=5.0, gop=30, size=(320, 180)),
        make_video(folder / "mjpeg.avi", duration=1.0, codec="mjpeg", **small),
        make_fragmented_mp4(folder / "frag.mp4", n_frames=60, size=(128, 96), gop=15),
        make_streamed_mkv(folder / "streamed.mkv", n_frames=60, size=(128, 96), gop=15),
    ]
    return made


# --- structure: MP4 boxes, EBML elements, TS packets --------------------------------------------
_MP4_CONTAINERS = {
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"moof", b"traf", b"mvex",
    b"udta",
}  # fmt: skip


@dataclass(frozen=True)
class Node:
    """One box or element: where it starts, where its payload starts, where it ends."""

    kind: bytes
    start: int
    body: int
    end: int
    depth: int


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[Node]:
    """The boxes of an MP4/MOV, container boxes opened, in file order."""
    end = len(data) if end is None else end
    found, pos = [], start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = pos + 8
        if size == 1 and pos + 16 <= end:
            size, body = int.from_bytes(data[pos + 8 : pos + 16], "big"), pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end:
            break
        found.append(Node(kind, pos, body, pos + size, depth))
        if kind in _MP4_CONTAINERS and depth < 8:
            found += mp4_boxes(data, body, pos + size, depth + 1)
        pos += size
    return found


_EBML_MASTERS = {
    0x1A45DFA3, 0x18538067, 0x114D9B74, 0x4DBB, 0x1549A966, 0x1654AE6B, 0xAE, 0xE0, 0x1F43B675,
    0xA0, 0x1C53BB6B, 0xBB, 0xB7, 0x1254C367, 0x7373,
}  # fmt: skip


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    """(value, length) of the EBML variable-length integer at `pos`."""
    if pos >= len(data) or data[pos] == 0:
        return None
    first = data[pos]
    length = 8 - first.bit_length() + 1
    if pos + length > len(data):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, length


def ebml_elements(
    data: bytes, start: int = 0, end: int | None = None, depth: int = 0
) -> list[Node]:
    """The elements of a Matroska/WebM file, master elements opened, in file order."""
    end = len(data) if end is None else end
    found, pos = [], start
    while pos < end and len(found) < 20000:
        element = _vint(data, pos, keep_marker=True)
        if element is None:
            break
        ident, id_len = element
        size = _vint(data, pos + id_len, keep_marker=False)
        if size is None:
            break
        length, size_len = size
        body = pos + id_len + size_len
        unknown = length == (1 << (7 * size_len)) - 1  # "unknown size": to the parent's end
        stop = end if unknown else min(end, body + length)
        found.append(Node(ident.to_bytes(id_len, "big"), pos, body, stop, depth))
        if ident in _EBML_MASTERS and depth < 8:
            found += ebml_elements(data, body, stop, depth + 1)
        if stop <= pos:
            break
        pos = stop
    return found


def ts_packets(data: bytes) -> list[Node]:
    """The 188-byte packets of an MPEG-TS (those that start with the sync byte)."""
    return [
        Node(b"ts", pos, pos + 4, pos + 188, 0)
        for pos in range(0, len(data) - 187, 188)
        if data[pos] == 0x47
    ]


def structure(data: bytes, suffix: str) -> list[Node]:
    if suffix in (".mp4", ".mov"):
        return mp4_boxes(data)
    if suffix in (".mkv", ".webm"):
        return ebml_elements(data)
    if suffix == ".ts":
        return ts_packets(data)
    return _riff_chunks(data)


def _riff_chunks(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[Node]:
    """The chunks of an AVI (RIFF), LIST chunks opened."""
    end = len(data) if end is None else end
    found, pos = [], start
    while pos + 8 <= end and len(found) < 20000:
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        stop = min(end, pos + 8 + size + (size & 1))
        found.append(Node(kind, pos, pos + 8, stop, depth))
        if kind in (b"RIFF", b"LIST") and depth < 6:
            found += _riff_chunks(data, pos + 12, stop, depth + 1)
        if stop <= pos:
            break
        pos = stop
    return found


# --- mutations ----------------------------------------------------------------------------------
Mutation = Callable[[bytearray, random.Random, "list[bytes]", str], str]


def flip_bits(data: bytearray, rng: random.Random, donors: list[bytes], suffix: str) -> str:
    n = rng.choice((1, 4, 16, 64, 300))
    skip = rng.choice((0, 2048))  # sometimes spare the header, as the AVI did
    if len(data) <= skip:
        skip = 0
    for _ in range(n):
        pos = rng.randrange(skip, len(data))
        data[pos] ^= 1 << rng.randrange(8)
    return f"flip {n} bits past {skip}"


def truncate(data: bytearray, rng: random.Random, donors: list[bytes], suffix: str) -> str:
    keep = rng.randrange(1, len(data))
    del data[keep:]
    return f"truncate at {keep}"


def splice_bytes(data: bytearray, rng: random.Random, donors: list[bytes], suffix: str) -> str:
    donor = rng.choice(donors)
    length = rng.randrange(1, min(4096, len(donor)))
    at = rng.randrange(len(donor) - length + 1)
    chunk = donor[at : at + length]
    pos = rng.randrange(len(data))
    if rng.random() < 0.5:
        data[pos:pos] = chunk
        return f"insert {length} donor bytes at {pos}"
    data[pos : pos + length] = chunk
    return f"overwrite {length} bytes at {pos} with a donor's"


def edit_structure(data: bytearray, rng: random.Random, donors: list[bytes], suffix: str) -> str:
    """Drop, duplicate, swap or splice a box / element / packet, or set its size to an extreme."""
    nodes = structure(bytes(data), suffix)
    if not nodes:
        return flip_bits(data, rng, donors, suffix)
    node = rng.choice(nodes)
    op = rng.choice(("drop", "duplicate", "swap", "splice", "size"))
    name = node.kind.hex() if suffix in (".mkv", ".webm") else node.kind.decode("latin-1")
    where = f"{name}@{node.start}"
    if op == "drop":
        del data[node.start : node.end]
    elif op == "duplicate":
        data[node.end : node.end] = data[node.start : node.end]
    elif op == "swap":
        siblings = [n for n in nodes if n.depth == node.depth and n.start >= node.end]
        if not siblings:
            del data[node.start : node.end]
            return f"drop {where}"
        other = rng.choice(siblings)
        a, b = bytes(data[node.start : node.end]), bytes(data[other.start : other.end])
        data[other.start : other.end] = a
        data[node.start : node.end] = b
        where += f" and {other.start}"
    elif op == "splice":
        donor = rng.choice(donors)
        theirs = structure(donor, suffix) or [Node(b"", 0, 0, min(len(donor), 188), 0)]
        piece = rng.choice(theirs)
        data[node.start : node.end] = donor[piece.start : piece.end]
    else:
        _set_size(data, node, rng, suffix)
    return f"{op} {where}"


def _set_size(data: bytearray, node: Node, rng: random.Random, suffix: str) -> None:
    value = rng.choice(EXTREMES)
    if suffix in (".mp4", ".mov"):
        data[node.start : node.start + 4] = (value & 0xFFFFFFFF).to_bytes(4, "big")
    elif suffix in (".mkv", ".webm"):
        id_len = len(node.kind)
        size_len = node.body - node.start - id_len
        top = (1 << (7 * size_len)) - 1
        value = min(value, top)
        raw = value | (1 << (7 * size_len))  # the length marker
        data[node.start + id_len : node.body] = raw.to_bytes(size_len, "big")
    elif suffix == ".ts":
        # the adaptation field's length, or the PID
        if rng.random() < 0.5:
            data[node.start + 3] |= 0x20
            data[node.start + 4] = value & 0xFF
        else:
            pid = value & 0x1FFF
            data[node.start + 1] = (data[node.start + 1] & 0xE0) | (pid >> 8)
            data[node.start + 2] = pid & 0xFF
    else:
        data[node.start + 4 : node.start + 8] = (value & 0xFFFFFFFF).to_bytes(4, "little")


# (container suffixes, where the field is: a box / chunk kind or an EBML id, offset in its
# payload, bytes, byte order)
_FIELDS: list[tuple[tuple[str, ...], bytes, int, int, str]] = [
    ((".mp4", ".mov"), b"mvhd", 12, 4, "big"),  # time scale
    ((".mp4", ".mov"), b"mvhd", 16, 4, "big"),  # duration
    ((".mp4", ".mov"), b"mdhd", 12, 4, "big"),  # the track's time scale
    ((".mp4", ".mov"), b"mdhd", 16, 4, "big"),  # the track's duration
    ((".mp4", ".mov"), b"tkhd", 76, 4, "big"),  # width (16.16)
    ((".mp4", ".mov"), b"tkhd", 80, 4, "big"),  # height (16.16)
    ((".mp4", ".mov"), b"stts", 8, 4, "big"),  # first entry's sample count
    ((".mp4", ".mov"), b"stts", 12, 4, "big"),  # first entry's sample delta
    ((".mp4", ".mov"), b"stsz", 8, 4, "big"),  # sample count
    ((".mp4", ".mov"), b"stsd", 40, 2, "big"),  # the sample entry's width
    ((".mp4", ".mov"), b"stsd", 42, 2, "big"),  # the sample entry's height
    ((".mp4", ".mov"), b"elst", 8, 4, "big"),  # edit duration
    ((".mp4", ".mov"), b"elst", 12, 4, "big"),  # media time
    ((".mp4",), b"tfdt", 4, 4, "big"),  # a fragment's decode time
    ((".mkv", ".webm"), bytes.fromhex("b0"), 0, 0, "big"),  # PixelWidth
    ((".mkv", ".webm"), bytes.fromhex("ba"), 0, 0, "big"),  # PixelHeight
    ((".mkv", ".webm"), bytes.fromhex("2ad7b1"), 0, 0, "big"),  # TimestampScale
    ((".mkv", ".webm"), bytes.fromhex("4489"), 0, 0, "big"),  # Duration
    ((".mkv", ".webm"), bytes.fromhex("23e383"), 0, 0, "big"),  # DefaultDuration
    ((".mkv", ".webm"), bytes.fromhex("e7"), 0, 0, "big"),  # a Cluster's Timestamp
    ((".mkv", ".webm"), bytes.fromhex("a3"), 1, 2, "big"),  # a SimpleBlock's relative time
    ((".avi",), b"avih", 0, 4, "little"),  # microseconds a frame
    ((".avi",), b"avih", 16, 4, "little"),  # total frames
    ((".avi",), b"avih", 32, 4, "little"),  # width
    ((".avi",), b"avih", 36, 4, "little"),  # height
    ((".avi",), b"strh", 20, 4, "little"),  # scale
    ((".avi",), b"strh", 24, 4, "little"),  # rate
    ((".avi",), b"strh", 32, 4, "little"),  # length
    ((".avi",), b"strf", 4, 4, "little"),  # width
    ((".avi",), b"strf", 8, 4, "little"),  # height
    ((".avi",), b"idx1", 8, 4, "little"),  # the first index entry's offset
]


def extreme_field(data: bytearray, rng: random.Random, donors: list[bytes], suffix: str) -> str:
    """A known header field (size, time scale, rate, duration, timestamp) set to an extreme."""
    if suffix == ".ts":
        return _extreme_pts(data, rng)
    nodes = structure(bytes(data), suffix)
    fields = [f for f in _FIELDS if suffix in f[0]]
    rng.shuffle(fields)
    for _, kind, offset, width, order in fields:
        found = [n for n in nodes if n.kind == kind]
        if not found:
            continue
        node = rng.choice(found)
        if width == 0:  # an EBML element: its whole payload
            width = node.end - node.body
        start = node.body + offset
        if width <= 0 or start + width > node.end:
            continue
        value = rng.choice(EXTREMES) % (1 << (8 * width))
        if width > 4 and rng.random() < 0.5:
            value = (1 << (8 * width)) - 1 - rng.randrange(2)  # e.g. a NaN or huge double
        data[start : start + width] = value.to_bytes(width, order)  # type: ignore[arg-type]
        return f"field {kind.hex() if suffix in ('.mkv', '.webm') else kind.decode()}+{offset} = {value:#x}"  # noqa: E501
    return flip_bits(data, rng, donors, suffix)


def _extreme_pts(data: bytearray, rng: random.Random) -> str:
    """A PES header's presentation time (33 bits) set to an extreme."""
    starts = [
        p.start
        for p in ts_packets(bytes(data))
        if data[p.start + 1] & 0x40 and data[p.start + 4 : p.start + 7] == b"\x00\x00\x01"
    ]
    if not starts:
        return "no PES header"
    pos = rng.choice(starts) + 4 + 9  # the PES header's PTS field (no adaptation field)
    value = rng.choice((0, 1, (1 << 33) - 1, 1 << 32, rng.randrange(1 << 33)))
    data[pos] = 0x21 | ((value >> 29) & 0x0E)
    data[pos + 1] = (value >> 22) & 0xFF
    data[pos + 2] = ((value >> 14) & 0xFE) | 1
    data[pos + 3] = (value >> 7) & 0xFF
    data[pos + 4] = ((value << 1) & 0xFE) | 1
    return f"PES PTS = {value}"


MUTATIONS: dict[str, Mutation] = {
    "flip": flip_bits,
    "truncate": truncate,
    "splice": splice_bytes,
    "structure": edit_structure,
    "field": extreme_field,
}


def mutate(data: bytes, suffix: str, rng: random.Random, donors: list[bytes]) -> tuple[bytes, str]:
    """One to three mutations in a row; (the bytes, what was done)."""
    out = bytearray(data)
    done = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        if not out:
            break
        name = rng.choice(list(MUTATIONS))
        done.append(MUTATIONS[name](out, rng, donors, suffix))
    return bytes(out), "; ".join(done)


@dataclass(frozen=True)
class Input:
    index: int
    path: Path
    base: str
    how: str


def inputs(corpus: list[Path], folder: Path, seed: int, count: int) -> Iterator[Input]:
    """`count` mutated files from the corpus, the same ones for the same seed."""
    rng = random.Random(seed)
    originals = {p: p.read_bytes() for p in corpus}
    donors = list(originals.values())
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        base = rng.choice(corpus)
        data, how = mutate(originals[base], base.suffix, rng, donors)
        path = folder / f"in{index:05d}{base.suffix}"
        path.write_bytes(data)
        yield Input(index, path, base.name, how)


# --- running ------------------------------------------------------------------------------------
def command_line(command: str, path: Path, extra: list[str]) -> list[str]:
    if command == "probe":
        return ["probe", "--format", "json", *extra, str(path)]
    return [command, *MODEL, "--format", "json", *extra, str(path)]


def classify(exit_code: int, stdout: str, stderr: str, exception: str | None) -> tuple[str, str]:
    """(outcome, detail) of one finished command: result, error, or exception."""
    if exception is not None:
        return "exception", exception
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if any("internal error" in line for line in errors):
        return "exception", next(line for line in errors if "internal error" in line)
    if exit_code == 0:
        try:
            json.loads(stdout)
        except ValueError:
            return "exception", "exit 0 without a JSON result"
        return "result", ""
    if exit_code in (1, 2) and errors:
        return "error", errors[0]
    return "exception", f"exit {exit_code} without an error line: {stderr.strip()[-300:]}"


def _worker() -> None:
    """Run commands read as JSON lines from stdin in this process; one JSON line out each."""
    import traceback

    from typer.testing import CliRunner

    from vidcls.cli import app

    runner = CliRunner()
    # reports go to the real stdout; anything native code writes to fd 1 must not mix in
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    for line in sys.stdin:
        args = json.loads(line)
        _reset_peak()
        started = time.perf_counter()
        result = runner.invoke(app, args)
        seconds = time.perf_counter() - started
        exception = None
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            where = traceback.format_tb(result.exception.__traceback__)[-1:]
            exception = f"{type(result.exception).__name__}: {result.exception} {''.join(where)}"
        outcome, detail = classify(result.exit_code, result.stdout, result.stderr, exception)
        report = {"outcome": outcome, "detail": detail, "seconds": seconds, "peak": _peak()}
        out.write(json.dumps(report) + "\n")
        out.flush()


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
    except OSError:
        pass


def _peak() -> int:
    """This process's peak resident memory in bytes since the last reset."""
    return _status_kib(os.getpid(), "VmHWM") * 1024


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Worker:
    """A worker subprocess; killed and restarted after a hang, a crash or too much memory."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vidcls_dev.fuzz", "--worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, env=self.env, start_new_session=True,
            )  # fmt: skip
        return self.proc

    def run(self, args: list[str], limit: float, rss: int) -> dict[str, object]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        started = time.monotonic()
        proc.stdin.write(json.dumps(args) + "\n")
        proc.stdin.flush()
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        peak = 0
        try:
            while True:
                if selector.select(timeout=0.05):
                    line = proc.stdout.readline()
                    if line:
                        report = json.loads(line)
                        if int(report["peak"]) > rss:
                            self.stop()
                            return {**report, "outcome": "memory", "detail": f"peak {report['peak']} B"}  # fmt: skip # noqa: E501
                        return report
                    code = proc.wait()
                    self.proc = None
                    why = signal.Signals(-code).name if code < 0 else f"exit {code}"
                    return {"outcome": "crash", "detail": why, "seconds": 0.0, "peak": peak}
                now = time.monotonic()
                peak = max(peak, _status_kib(proc.pid, "VmRSS") * 1024)
                if peak > rss:
                    self.stop()
                    return {"outcome": "memory", "detail": f"RSS {peak} B", "seconds": now - started, "peak": peak}  # fmt: skip # noqa: E501
                if now - started > limit:
                    self.stop()
                    return {"outcome": "hang", "detail": f"past {limit:g} s", "seconds": now - started, "peak": peak}  # fmt: skip # noqa: E501
        finally:
            selector.close()

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None


@dataclass
class Summary:
    seed: int
    inputs: int = 0
    runs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, object]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # documented errors by their reason
    seconds: float = 0.0
    peak: int = 0

    @property
    def bad(self) -> int:
        return sum(self.outcomes[k] for k in BAD)

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed, "inputs": self.inputs, "runs": self.runs,
            "outcomes": dict(self.outcomes), "bad": self.bad, "seconds": round(self.seconds, 1),
            "peak_rss": self.peak, "findings": self.findings,
            "errors": dict(self.errors.most_common(25)),
        }  # fmt: skip


def _reason(detail: str) -> str:
    """A documented error without its file name and numbers, to count errors by kind."""
    import re

    text = detail.removeprefix("error: ")
    text = text.split(": ", 1)[1] if ": " in text else text
    return re.sub(r"-?\d+(\.\d+)?(e[+-]?\d+)?", "N", text)[:120]


def fuzz(
    folder: Path,
    seed: int,
    count: int,
    limit: float = 30.0,
    rss: int = 3 << 30,
    commands: tuple[str, ...] = COMMANDS,
    extra: list[str] | None = None,
    keep: Path | None = None,
    say: Callable[[str], None] | None = None,
    stop_after: float | None = None,
    jobs: int = 1,
) -> Summary:
    """Run `count` seeded mutated inputs through `commands` in `jobs` workers; every finding is
    recorded, and with `keep` its input is copied there to reproduce it. The inputs depend on
    the seed only, not on `jobs`."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    summary = Summary(seed)
    corpus = make_corpus(folder / "corpus")
    local = threading.local()
    workers: list[Worker] = []
    lock = threading.Lock()

    def run_one(item: Input) -> tuple[Input, list[tuple[str, dict[str, object]]]]:
        worker = getattr(local, "worker", None)
        if worker is None:
            worker = local.worker = Worker()
            with lock:
                workers.append(worker)
        reports = []
        for command in commands:
            args = command_line(command, item.path, extra or [])
            reports.append((command, worker.run(args, limit, rss)))
        return item, reports

    def record(item: Input, reports: list[tuple[str, dict[str, object]]]) -> None:
        summary.inputs += 1
        for command, report in reports:
            summary.runs += 1
            outcome = str(report["outcome"])
            summary.outcomes[outcome] += 1
            summary.peak = max(summary.peak, int(report.get("peak", 0)))  # type: ignore[call-overload]
            if outcome == "error":
                summary.errors[_reason(str(report["detail"]))] += 1
            if outcome in BAD:
                finding = {
                    "input": item.index, "base": item.base, "mutation": item.how,
                    "command": command, "outcome": outcome, "detail": report["detail"],
                }  # fmt: skip
                summary.findings.append(finding)
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    (keep / item.path.name).write_bytes(item.path.read_bytes())
                if say:
                    say(json.dumps(finding))
        item.path.unlink()
        if say and summary.inputs % 100 == 0:
            elapsed = time.monotonic() - started
            say(f"{summary.inputs} inputs, {summary.runs} runs, {summary.bad} finding(s), {elapsed:.0f} s")  # fmt: skip # noqa: E501

    started = time.monotonic()
    running: deque[Future[tuple[Input, list[tuple[str, dict[str, object]]]]]] = deque()
    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            for item in inputs(corpus, folder / "inputs", seed, count):
                if stop_after is not None and time.monotonic() - started > stop_after:
                    item.path.unlink()
                    break
                running.append(pool.submit(run_one, item))
                while len(running) >= 2 * max(1, jobs) or (running and running[0].done()):
                    record(*running.popleft().result())
            while running:
                record(*running.popleft().result())
    finally:
        for worker in workers:
            worker.stop()
    summary.seconds = time.monotonic() - started
    return summary


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker()
    else:
        sys.exit("usage: python -m vidcls_dev.fuzz --worker (bench/fuzz.py runs the fuzzer)")
