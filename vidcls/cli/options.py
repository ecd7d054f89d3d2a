"""The options of `predict`, `segment` and `probe`, and the parsing of their values.

Imports nothing heavy: `vidcls --help` reads these. Each parser turns one option's text into
its value or a usage error (exit 2) that names the option.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import LiveOptions

# Options shared by predict, segment and probe.
Videos = Annotated[
    list[str] | None,
    typer.Argument(help="Video files, globs, directories (with -r), or - for a video on stdin."),
]
FromList = Annotated[
    str | None,
    typer.Option("--from-list", help="A file with one path per line (- for stdin); # comments."),
]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Look inside directories.")]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help="Registry name or alias (see `vidcls models`), or a hub classifier without an "
        "entry: hf:OWNER/REPO or hf:FOLDER. Default: timesformer, or the family of --weights.",
    ),
]  # fmt: skip
FramesOpt = Annotated[
    int | None, typer.Option("--frames", min=1, help="Frames per clip (default: the model's).")
]
StrideOpt = Annotated[
    int | None,
    typer.Option(
        "--stride", min=1, help="Take 1 frame in N at the reference rate (default: the model's)."
    ),  # noqa: E501
]
WeightsOpt = Annotated[
    str | None,
    typer.Option(
        help="Local weights: hub-layout folder, .safetensors, .bin, original .pyth or Scenic "
        "checkpoint."
    ),
]
VivitAttentionOpt = Annotated[
    str | None,
    typer.Option(
        help="Which ViViT a Scenic checkpoint is where its parameters cannot tell: "
        "factorised-dot-product (Model 4 has Model 1's) or factorised-self-attention-time-space "
        "(Model 3's other order).",
    ),
]
LabelsOpt = Annotated[
    str | None, typer.Option(help="A file of class names, one per line (fine-tuned checkpoints).")
]
ClassesOpt = Annotated[
    str | None,
    typer.Option(help="Only these classes: NAME,NAME or @file; scores renormalised over them."),
]
StartOpt = Annotated[str | None, typer.Option(help="Start of the range: seconds or HH:MM:SS.mmm.")]
EndOpt = Annotated[str | None, typer.Option(help="End of the range: seconds or HH:MM:SS.mmm.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:N.")]
PrecisionOpt = Annotated[
    str, typer.Option(help="auto (bf16 on CUDA and native-bf16 CPUs), fp32, bf16 or fp16.")
]
BatchOpt = Annotated[
    str,
    typer.Option(
        "--batch-size",
        help="Model inputs per batch (crops, and symmetric views where a model has them), or auto.",
    ),
]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many actions to show.")]
CropsOpt = Annotated[
    int | None, typer.Option(help="3 crops along the long side, or 1 centre crop.")
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", "-f",
        help="table, json, jsonl, csv, tsv (segment also srt, vtt, activitynet, thumos, html). "
        "Default: table on a terminal, "
        "else json for one file and jsonl for several.",
    ),
]  # fmt: skip
OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", help="Write results here (atomically); format from suffix."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
OfflineOpt = Annotated[bool, typer.Option(help="Never touch the network; use the cache.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Timings per file, and what FFmpeg logged, on stderr."),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="A file with any warning (damaged, concealed errors, leaping timestamps) fails.",
    ),
]
# Limits on what one file may cost (the defaults are vidcls.video.Limits'; README "Reliability").
MaxPixelsOpt = Annotated[
    int,
    typer.Option(
        "--max-pixels", min=1,
        help="Refuse a file whose frames have more pixels than this (width × height; and never "
        "more than 16384 a side).",
    ),
]  # fmt: skip
MaxDurationOpt = Annotated[
    str,
    typer.Option(
        "--max-duration",
        help="Refuse a file longer than this (seconds or HH:MM:SS): a leap of its timestamps "
        "would otherwise plan windows without end.",
    ),
]  # fmt: skip
DecodeTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--decode-timeout", min=0.001,
        help="Fail a file whose reading or decoding makes no progress for this many seconds.",
    ),
]  # fmt: skip
MAX_PIXELS = 1 << 28  # as vidcls.video.Limits (not imported: --help reads this module)
MAX_DURATION = "24:00:00"
DECODE_TIMEOUT = 60.0
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume", "--skip-existing",
        help="Skip files already done with the same options in the -o FILE.jsonl; finish the rest.",
    ),
]  # fmt: skip
ShardOpt = Annotated[
    str | None, typer.Option(help="I/N: process only every N-th file starting at I (0-based).")
]
GpusOpt = Annotated[
    str | None, typer.Option(help="all, a count, or 0,1: one worker process per GPU.")
]
WorkersOpt = Annotated[
    int | None, typer.Option(min=1, help="Worker processes on --device (e.g. several on a CPU).")
]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray", metavar="[ADDRESS]",
        help="Run on Ray (pip install \"vidcls\\[ray]\"): a local Ray, or ADDRESS (auto, "
        "ray://head:10001); one model per GPU of the cluster.",
    ),
]  # fmt: skip
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", min=1, max=1024, metavar="N",
        help="torch intra-op threads (default: one per core).",
    ),
]  # fmt: skip
DecodeThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--decode-threads", min=1, max=1024, metavar="N",
        help="Decoder (libavcodec frame) threads (default: two more than the cores, at most 16).",
    ),
]  # fmt: skip
CompileOpt = Annotated[
    bool, typer.Option("--compile", help="torch.compile the model (slow start, faster batches).")
]

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


def parse_time(text: str | None, option: str) -> float | None:
    """Seconds from '12.5', '1:02.5' or '01:02:03.250'."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        m = _CLOCK.match(text.strip())
        if not m:
            raise UsageError(f"{option} '{text}': use seconds or HH:MM:SS.mmm") from None
        hours, minutes, seconds = m.groups()
        value = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    if value < 0:
        raise UsageError(f"{option} must not be negative")
    return value


def parse_classes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text.startswith("@"):
        from ..sources import read_list

        try:
            with open(text[1:], encoding="utf-8") as f:
                return read_list(f)
        except OSError as e:
            raise UsageError(f"--classes {text}: cannot read it ({e.strerror})") from e
    return [c.strip() for c in text.split(",") if c.strip()]


def parse_clips(text: str) -> int | None:
    """'all' (the fewest windows covering the video) or a positive count."""
    if text == "all":
        return None
    if not (text.isdigit() and int(text) > 0):
        raise UsageError("--clips takes 'all' or a positive number")
    return int(text)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'I/N' with 0 <= I < N."""
    if text is None:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard '{text}': use I/N, e.g. 0/4 for the first of 4") from None
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard '{text}': I must be in 0..N-1")
    return index, count


def choose_format(fmt: str | None, as_json: bool, output: str | None, files: int, mode: str) -> str:
    """The format asked for, else the one the output file's suffix names, else table on a
    terminal, json for one file and jsonl for several; checked against the command."""
    from ..output import check_format, format_for

    if as_json:
        fmt = fmt or "json"
    if fmt is None and output not in (None, "-"):
        fmt = format_for(output)
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() else ("json" if files == 1 else "jsonl")
    check_format(fmt, mode)
    if fmt in ("srt", "vtt") and files > 1:
        raise UsageError(f"--format {fmt} writes the subtitles of one video; got {files}")
    return fmt


def check_timeline_options(
    fmt: str,
    names: list[str],
    top_k: int,
    video_id: str,
    multi_label: int,
    overlay: str | None,
) -> None:
    """--video-id, --multi-label and --overlay against the format and the files."""
    from pathlib import Path

    from ..evaluate import check_style
    from ..evaluate import video_id as id_of

    check_style(video_id)
    if multi_label > top_k:
        raise UsageError(f"--multi-label {multi_label} needs --top-k {multi_label} or more")
    if fmt in ("activitynet", "thumos"):
        seen: dict[str, str] = {}
        for name in names:
            vid = id_of(name, video_id)
            if vid in seen and seen[vid] != name:
                raise UsageError(
                    f"'{seen[vid]}' and '{name}' have the same video id '{vid}': "
                    "use --video-id path"
                )
            seen[vid] = name
    if overlay is not None:
        if len(names) != 1 or names[0] == "-":
            raise UsageError("--overlay draws on one video file, by path")
        if Path(overlay).resolve() == Path(names[0]).resolve():
            raise UsageError("--overlay would write over the video it reads")


# Live and remote sources (URLs, cameras, named pipes): how FFmpeg opens them, and following.
InputFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--input-format", metavar="FMT",
        help="FFmpeg's input format, when it cannot guess it (v4l2, mpegts, ...).",
    ),
]  # fmt: skip
InputOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input-option", metavar="KEY=VALUE",
        help="An FFmpeg option for the source, e.g. rtsp_transport=tcp (repeatable).",
    ),
]  # fmt: skip
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        min=0.001, metavar="S",
        help="Seconds without data before a source counts as stalled (live sources: 10).",
    ),
]  # fmt: skip
ReconnectOpt = Annotated[
    int, typer.Option(min=0, metavar="N", help="Reopen a live source that stalls or ends N times.")
]
ClockOpt = Annotated[
    str,
    typer.Option(
        help="After a live stream's time jumps: go on on its own clock (stream) or the wall clock."
    ),
]
FollowOpt = Annotated[
    bool | None,
    typer.Option(
        "--follow/--no-follow",
        help="Write each window's record and each final segment as they happen (default for "
        "live sources).",
    ),
]
DropOpt = Annotated[
    str,
    typer.Option(
        help="When the model is slower than a live source: none (read at the model's pace) or "
        "oldest (drop the oldest waiting windows, counted in the records).",
    ),
]
DurationOpt = Annotated[
    str | None,
    typer.Option(metavar="S", help="Stop a live source after this much of it (seconds)."),
]


def parse_input_options(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    """--input-option KEY=VALUE, repeated."""
    pairs = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--input-option takes KEY=VALUE, not '{item}'")
        pairs.append((key.strip(), value))
    return tuple(pairs)


def limit_options(max_pixels: int, max_duration: str, decode_timeout: float) -> dict[str, Any]:
    """--max-pixels, --max-duration and --decode-timeout as FileOptions' (and Limits') fields."""
    return {
        "max_pixels": max_pixels,
        "max_duration": parse_time(max_duration, "--max-duration") or 0.0,
        "decode_timeout": decode_timeout,
    }


def live_options(
    input_format: str | None,
    input_option: list[str] | None,
    timeout: float | None,
    reconnect: int,
    clock: str,
    follow: bool | None,
    drop: str,
    duration: str | None,
) -> LiveOptions:
    """The live-source options of predict and segment, resolved once."""
    from ..config import LiveOptions

    return LiveOptions(
        input_format=input_format, input_options=parse_input_options(input_option),
        timeout=timeout, reconnect=reconnect, clock=clock, follow=follow, drop=drop,
        duration=parse_time(duration, "--duration"),
    )  # fmt: skip
