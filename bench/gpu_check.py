"""The GPU figures: decode alone, model alone and end to end for TimeSformer on the 1080p file.

Run by `bench/gpu.sh` on a CUDA machine (after the CUDA tests); by itself with `--device cpu
--tiny` it is a smoke run of the same code on a CPU. For each model (`timesformer`,
`timesformer-hr`; random full-size weights in hub layout, made once under bench/out/weights/):

* `decode alone`: vidcls's window stream of the file (every window × 3 crops), no model;
* `model alone`: as many random uint8 views through the loaded model on the device, in the
  batches `vidcls predict` uses there (`Classifier`'s automatic size; CUDA synchronised);
* `end to end`: `python -m vidcls predict FILE --device D -v` in a fresh process (its `-v`
  line: per-file time, model loading excluded; and the whole command).

Views per second = views / seconds. The device's name, torch and CUDA versions head the
section. `--append PATH` writes it as Markdown (for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from vidcls_dev.bench import (
    VIDEOS,
    Table,
    add_common_args,
    fmt,
    median,
    model_alone,
    random_weights,
    report,
    vidcls_predict,
)


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        return (
            f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
            f"torch {torch.__version__}, {torch.cuda.device_count()} GPU(s)"
        )
    return f"CPU (smoke run), torch {torch.__version__}"


def decode_alone(video: Path, model: str) -> tuple[float, int]:
    import vidcls
    from vidcls.config import FileOptions
    from vidcls.windows import open_windows

    started = time.perf_counter()
    views = sum(len(v) for _, v in open_windows(video, vidcls.get_spec(model), FileOptions()))
    return time.perf_counter() - started, views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=VIDEOS / "v1080_g250.mp4")
    parser.add_argument("--models", nargs="+", default=["timesformer", "timesformer-hr"])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke run)")
    parser.add_argument(
        "--precision", default="auto", help="vidcls --precision (default auto: bf16 on CUDA)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds of each (default 1)")
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide 2-layer models: a smoke run, not a benchmark"
    )
    add_common_args(parser)
    args = parser.parse_args()

    import torch

    import vidcls

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here (use --device cpu --tiny for a smoke run)")
    name = device_name(args.device)
    print(name, flush=True)
    table = Table(
        f"{args.video.name} on {args.device}, median of {args.repeat} round(s)"
        + (" — TINY models (smoke run)" if args.tiny else ""),
        ["model", "precision", "views", "batch", "decode alone s", "model alone s",
         "end to end s", "command s", "views/s model", "views/s end to end"],
    )  # fmt: skip
    for model in args.models:
        weights = random_weights(model, tiny=args.tiny)
        loaded = vidcls.load_model(
            model, weights=weights, device=args.device, precision=args.precision, progress=False
        )
        decode, alone, e2e, wall = [], [], [], []
        views = batch = 0
        for r in range(args.repeat):
            seconds, views = decode_alone(args.video, model)
            decode.append(seconds)
            seconds, batch = model_alone(loaded, views, warm=True)
            alone.append(seconds)
            proc, timings, _ = vidcls_predict(
                args.video, model, weights, loaded.precision, device=args.device
            )
            total, command = timings["total"], proc.wall
            e2e.append(total)
            wall.append(command)
            print(
                f"  round {r + 1}: {model}: decode {decode[-1]:.2f} s, model {alone[-1]:.2f} s,"
                f" end to end {total:.2f} s ({command:.2f} s command)",
                flush=True,
            )
        table.add(
            model, loaded.precision, str(views), str(batch), fmt(median(decode)),
            fmt(median(alone)), fmt(median(e2e)), fmt(median(wall)),
            fmt(views / median(alone), 1), fmt(views / median(e2e), 1),
        )  # fmt: skip
        del loaded
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    notes = [
        f"device: {name}",
        "random full-size weights (transformers init + N(0, 0.02)); every window × 3 crops; "
        "end to end = the -v line's per-file time (model loading excluded); command = the "
        "whole process",
    ]
    report(f"GPU: {args.device}", [table], notes, args.append)


if __name__ == "__main__":
    main()
