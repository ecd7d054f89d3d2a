"""Decoder threads × torch threads: end-to-end `vidcls predict` on one file, fresh processes.

For every pair of `--decode-threads` D and `--threads` T in the grid (default: D in 1, cores,
cores + 2 and T in cores - 1, cores, where each is at least 1), `vidcls predict VIDEO -v
--decode-threads D --threads T` runs `--repeat` times, interleaved round by round, and the
table gives its per-file total (model loading excluded: the `-v` line), decode and inference
seconds, the whole command, and each pair's time over the best pair's. The automatic choice
(neither option given) runs beside them as "auto", so the table says what the default costs
against the best split: the rule in vidcls (decode.frame_threads, config.torch_threads) is meant
to be the grid's best or within its noise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidcls_dev.bench import (
    VIDEOS,
    Table,
    add_common_args,
    bf16_native,
    cores,
    fmt,
    header,
    median,
    random_weights,
    report,
    spread,
    vidcls_predict,
    video_path,
)


def default_grid(n: int) -> tuple[list[int], list[int]]:
    decode = sorted({1, n, n + 2})
    torch = sorted({max(1, n - 1), n})
    return decode, torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--video", type=Path, default=VIDEOS / "v1080_g250.mp4", help="default: the 1080p file"
    )
    parser.add_argument("--model", "-m", default="timesformer", help="registry name")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        help="default: bf16 on a CPU with native bf16 (what auto picks), else fp32",
    )
    parser.add_argument("--decode-threads", nargs="+", type=int, help="decoder thread counts")
    parser.add_argument("--threads", nargs="+", type=int, help="torch thread counts")
    parser.add_argument("--clips", help="vidcls predict --clips (default: all windows)")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds (default 1)")
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide 2-layer model: a smoke run, not a benchmark"
    )
    add_common_args(parser)
    args = parser.parse_args()

    n = cores()
    decode_grid, torch_grid = default_grid(n)
    decode_grid = args.decode_threads or decode_grid
    torch_grid = args.threads or torch_grid
    precision = args.precision or ("bf16" if bf16_native() else "fp32")
    video = video_path(args.video.parent, args.video.name)
    weights = random_weights(args.model, tiny=args.tiny)
    header(with_bf16=precision == "bf16")

    pairs: list[tuple[int, int] | None] = [(d, t) for d in decode_grid for t in torch_grid]
    pairs.append(None)  # the automatic choice
    runs: dict[tuple[int, int] | None, list[dict[str, float]]] = {p: [] for p in pairs}
    chosen = ""
    for r in range(args.repeat):
        for pair in pairs[r % len(pairs) :] + pairs[: r % len(pairs)]:
            extra = [] if pair is None else ["--decode-threads", str(pair[0])]
            extra += [] if pair is None else ["--threads", str(pair[1])]
            if args.clips:
                extra += ["--clips", args.clips]
            proc, timings, _ = vidcls_predict(video, args.model, weights, precision, extra)
            if pair is None:
                chosen = next(
                    (line for line in proc.stderr.splitlines() if "threads: torch" in line), ""
                )
            runs[pair].append({**timings, "process": proc.wall})
            label = "auto" if pair is None else f"decode {pair[0]}, torch {pair[1]}"
            print(f"  round {r + 1}: {label}: total {timings['total']:.2f} s", flush=True)

    def med(pair: tuple[int, int] | None, key: str) -> float:
        return median([row[key] for row in runs[pair]])

    best = min(med(p, "total") for p in pairs)
    table = Table(
        f"Threads, {video.name}, {args.model} {precision}, {n} cores, median of {args.repeat}"
        + (" — TINY model (smoke run)" if args.tiny else ""),
        ["decode threads", "torch threads", "decode s", "inference s", "total s", "spread",
         "process s", "× best"],
    )  # fmt: skip
    for pair in pairs:
        table.add(
            "auto" if pair is None else str(pair[0]),
            "auto" if pair is None else str(pair[1]),
            fmt(med(pair, "decode")),
            fmt(med(pair, "inference")),
            fmt(med(pair, "total")),
            spread([row["total"] for row in runs[pair]]),
            fmt(med(pair, "process")),
            fmt(med(pair, "total") / best),
        )
    notes = [
        f"auto chose: {chosen.strip() or 'unknown (no -v threads line)'}",
        "total = the -v line's per-file time (model loading excluded); process = the command",
    ]
    report("Threads: decoder × torch", [table], notes, args.append, with_bf16=precision == "bf16")


if __name__ == "__main__":
    main()
