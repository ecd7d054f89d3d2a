"""Scaling with length: `vidcls predict` on the 1-minute and the 10-minute 360p files.

Each run is a fresh process (`vidcls predict FILE --weights FOLDER --precision P -v`, random
full-size weights in hub layout); its wall time, its `-v` per-file total (model loading
excluded) and its peak resident memory (`os.wait4`'s ru_maxrss) are recorded. Targets: the
10-minute run takes 10 ± 1.5 × the 1-minute one (in general: the length ratio ± 15 %), and its
peak RSS is within 1.2 × of it.

The default precision is bf16 where the CPU computes bf16 natively (AMX / AVX-512 BF16), else
fp32: emulated bf16 is many times slower than fp32, and the ratios do not depend on it.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from vidcls_dev.bench import (
    V360,
    VIDEOS,
    Table,
    add_common_args,
    bf16_native,
    fmt,
    header,
    median,
    random_weights,
    report,
    spread,
    verdict,
    vidcls_predict,
    video_path,
)

TIME_TOLERANCE = 0.15  # the time ratio within the length ratio ± 15 % (10 ± 1.5 for 10 min/1 min)
RSS_LIMIT = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=VIDEOS, help="folder of the test videos")
    parser.add_argument(
        "--files",
        nargs=2,
        default=list(V360),
        metavar=("SHORT", "LONG"),
        help=f"default: {' '.join(V360)}",
    )
    parser.add_argument("--model", "-m", default="timesformer", help="registry name")
    parser.add_argument(
        "--precision",
        choices=["bf16", "fp32"],
        help="default: bf16 on a CPU with native bf16, else fp32",
    )
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds (default 1)")
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide 2-layer model: a smoke run, not a benchmark"
    )
    add_common_args(parser)
    args = parser.parse_args()

    from vidcls.video import probe

    precision = args.precision or ("bf16" if bf16_native() else "fp32")
    header(with_bf16=True)
    if args.precision is None:
        print(f"precision {precision} (this CPU {'has' if precision == 'bf16' else 'lacks'} "
              "native bf16)")  # fmt: skip
    weights = random_weights(args.model, tiny=args.tiny)
    paths = [video_path(args.videos, name) for name in args.files]
    runs: dict[Path, list[dict[str, float]]] = {p: [] for p in paths}
    for r in range(args.repeat):
        for path in paths if r % 2 == 0 else paths[::-1]:
            gc.collect()
            proc, timings, _ = vidcls_predict(path, args.model, weights, precision)
            runs[path].append({**timings, "process": proc.wall, "rss": proc.max_rss_mib})
            print(
                f"  round {r + 1}: {path.name}: total {timings['total']:.2f} s, process "
                f"{proc.wall:.2f} s, peak RSS {proc.max_rss_mib:.0f} MiB",
                flush=True,
            )

    def med(path: Path, key: str) -> float:
        return median([row[key] for row in runs[path]])

    table = Table(
        f"Scaling, {args.model} {precision}, median of {args.repeat} round(s)"
        + (" — TINY model (smoke run)" if args.tiny else ""),
        ["file", "duration s", "windows", "total s", "spread", "process s", "peak RSS MiB"],
    )
    for path in paths:
        table.add(
            path.name,
            fmt(probe(path).duration or float("nan"), 1),
            int(med(path, "windows")),
            fmt(med(path, "total")),
            spread([row["total"] for row in runs[path]]),
            fmt(med(path, "process")),
            fmt(med(path, "rss"), 0),
        )
    short, long = paths
    t_ratio = med(long, "total") / med(short, "total")
    p_ratio = med(long, "process") / med(short, "process")
    m_ratio = med(long, "rss") / med(short, "rss")
    length = (probe(long).duration or 0) / (probe(short).duration or 1)
    lo, hi = length * (1 - TIME_TOLERANCE), length * (1 + TIME_TOLERANCE)
    notes = [
        f"length ratio {length:.2f}, "
        f"windows ratio {med(long, 'windows') / med(short, 'windows'):.2f}",
        f"time ratio (per-file total) {t_ratio:.2f} (target {lo:.2f}–{hi:.2f}: "
        f"{verdict(lo <= t_ratio <= hi, not args.tiny)}); whole process {p_ratio:.2f}",
        f"peak RSS ratio {m_ratio:.2f} (target ≤ {RSS_LIMIT}: "
        f"{verdict(m_ratio <= RSS_LIMIT, not args.tiny)})",
    ]
    report(f"Scaling: vidcls predict, 1 min vs 10 min ({args.model})", [table], notes, args.append)


if __name__ == "__main__":
    main()
