"""Live latency: a source played in real time, the lag of each window's record.

A motion video (the synthetic shapes `motion-tiny` was trained on) is played in real time by
`ffmpeg -re` as MPEG-TS over UDP to 127.0.0.1, and `vidcls segment udp://... --duration S -f
jsonl` follows it, once per model: the bundled `motion-tiny`, and a random-weight `timesformer`
(full size, or 64 wide with --tiny). Each window record carries `lag`: the wall-clock seconds
between the window's last frame arriving and the record being written. The table gives its
median, 90th percentile and maximum, the windows scored and dropped (`--drop`), the seconds
from the end of the run to the last final segment, and the process's peak RSS. A model slower
than real time falls behind without `--drop oldest` (its lag grows) and drops windows with it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from vidcls_dev.bench import (
    Table,
    add_common_args,
    fmt,
    header,
    random_weights,
    report,
    run_measured,
)


def _port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _video(folder: Path, seconds: float) -> Path:
    import numpy as np

    from vidcls_dev.motion import random_segment_video, write_video

    path = folder / f"motion-{seconds:g}s.mp4"
    if not path.exists():
        video = random_segment_video(np.random.default_rng(7), duration=seconds, fps=30)
        write_video(video, path)
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="of the source (default 60)")
    parser.add_argument(
        "--models", nargs="+", default=["motion-tiny", "timesformer"], help="registry names"
    )
    parser.add_argument("--drop", choices=["none", "oldest"], default="oldest")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide random models: a smoke run, not a benchmark"
    )
    add_common_args(parser)
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("needs ffmpeg (apt-get install ffmpeg)")
    header()
    table = Table(
        f"Live lag, {args.seconds:g} s played in real time (ffmpeg -re, MPEG-TS over UDP), "
        f"--drop {args.drop}" + (" — TINY models (smoke run)" if args.tiny else ""),
        ["model", "windows", "dropped", "lag p50 s", "lag p90 s", "lag max s", "peak RSS MiB"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        # the sender loops it; the motion plan needs 18 s at least to lay out its segments
        video = _video(Path(tmp), max(args.seconds, 30.0))
        for model in args.models:
            url = f"udp://127.0.0.1:{_port()}"
            weights = [] if model == "motion-tiny" else ["--weights", str(random_weights(model, args.tiny))]  # fmt: skip # noqa: E501
            sender = subprocess.Popen(
                [ffmpeg, "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(video),
                 "-c:v", "mpeg2video", "-q:v", "3", "-g", "15", "-f", "mpegts", url],
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                proc = run_measured(
                    [sys.executable, "-m", "vidcls", "segment", url, "--model", model, *weights,
                     "--precision", args.precision, "-f", "jsonl", "-q", "-k", "1",
                     "--duration", str(args.seconds), "--drop", args.drop],
                )  # fmt: skip
            finally:
                sender.kill()
                sender.wait()
            if proc.returncode != 0:
                print(proc.stderr)
                continue
            records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
            lags = [r["lag"] for r in records if r["type"] == "window"]
            dropped = records[-1].get("dropped_windows", 0)
            table.add(
                model, len(lags), dropped, fmt(_percentile(lags, 0.5), 3),
                fmt(_percentile(lags, 0.9), 3), fmt(max(lags), 3), fmt(proc.max_rss_mib, 0),
            )  # fmt: skip
    report("Live sources: lag played in real time", [table], append=args.append)


if __name__ == "__main__":
    main()
