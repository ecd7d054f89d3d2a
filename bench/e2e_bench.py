"""End to end on the 60-s 1080p file: `vidcls predict` vs the transformers baseline script.

With `timesformer` random full-size weights in hub layout (bench/out/weights/), every window of
`vidcls predict` × 3 crops, each in a fresh process:

* `transformers`: `python bench/baselines.py predict VIDEO --weights FOLDER --json` — PyAV plain
  decode, torch resize/crops/normalise, transformers fp32 (its default), one window per batch;
* `transformers bf16` (when bf16 is run): the same with `--precision bf16`, the model loaded
  with `torch_dtype=torch.bfloat16`;
* `vidcls fp32` / `vidcls bf16`: `vidcls predict VIDEO --weights FOLDER --precision P -v`; the
  figures are those of its `-v` line on stderr (decode, preprocess, inference, total).

`total` is per file, model loading excluded, on both sides; `process` is the wall time of the
whole command (start-up and loading included). For the overlap criterion, measured in this
process: `decode alone` iterates vidcls's window stream without a model; `model alone` runs as
many views (random uint8) through the loaded model, batched as `vidcls predict` batches them.
vidcls overlaps decoding with inference when total ≤ 1.15 × max(decode alone, model alone).
`--check-same` asserts that vidcls fp32 and the baseline rank the same top 5 (same weights, same
windows; only the resize filters differ), where two labels whose scores differ by less than the
largest score difference count as a near-tie that may swap, and reports that difference.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

from vidcls_dev.bench import (
    BENCH,
    VIDEOS,
    Table,
    add_common_args,
    bf16_native,
    fmt,
    header,
    median,
    model_alone,
    random_weights,
    ratio,
    report,
    run_measured,
    spread,
    verdict,
    vidcls_predict,
    video_path,
)

TARGETS = {"fp32": 1.1, "bf16": 3.5}  # × the transformers fp32 baseline, end to end (issue 32)
BF16_TARGET = 1.5  # vidcls bf16 × transformers bf16 (issue 32)
OVERLAP = 1.15


def baseline(
    video: Path, model: str, weights: Path, precision: str = "fp32"
) -> tuple[float, dict[str, Any]]:
    import json

    cmd = [sys.executable, str(BENCH / "baselines.py"), "predict", str(video), "-m", model]
    cmd += ["--weights", str(weights), "--precision", precision, "--json", "--all-scores"]
    proc = run_measured(cmd)
    if proc.returncode != 0:
        raise SystemExit(f"the baseline failed ({proc.returncode}):\n{proc.stderr}")
    return proc.wall, json.loads(proc.stdout)


def decode_alone(video: Path, model: str) -> tuple[float, int]:
    """Seconds to iterate vidcls's window stream (probe included), and the views it yields."""
    import vidcls
    from vidcls.config import FileOptions
    from vidcls.windows import open_windows

    started = time.perf_counter()
    stream = open_windows(video, vidcls.get_spec(model), FileOptions())
    views = sum(len(v) for _, v in stream)
    return time.perf_counter() - started, views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--video",
        type=Path,
        default=VIDEOS / "v1080_g250.mp4",
        help="default: bench/out/v1080_g250.mp4 (x264's default GOP; v1080_g30.mp4 is the "
        "phone-like one)",
    )
    parser.add_argument("--model", "-m", default="timesformer", help="registry name")
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=["fp32", "bf16"],
        help="vidcls runs (default: fp32 bf16 on a CPU with native bf16, else fp32 only: "
        "emulated bf16 is many times slower than fp32)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument(
        "--check-same",
        action="store_true",
        help="fail unless vidcls fp32 ranks the same top 5 as the baseline",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide 2-layer model: a smoke run, not a benchmark"
    )
    add_common_args(parser)
    args = parser.parse_args()

    import numpy as np

    import vidcls

    if args.precisions is None:
        args.precisions = ["fp32", "bf16"] if bf16_native() else ["fp32"]
        if len(args.precisions) == 1:
            print("bf16 left out: this CPU has no native bf16 (--precisions fp32 bf16 forces it)")
    video = video_path(args.video.parent, args.video.name)
    weights = random_weights(args.model, tiny=args.tiny)
    header(with_bf16="bf16" in args.precisions)
    loaded = {
        p: vidcls.load_model(args.model, weights=weights, device="cpu", precision=p)
        for p in args.precisions
    }

    runs: dict[str, list[dict[str, float]]] = {}
    records: dict[str, dict[str, Any]] = {}
    hf_jobs = ["transformers"] + (["transformers bf16"] if "bf16" in args.precisions else [])
    jobs = [*hf_jobs, *(f"vidcls {p}" for p in args.precisions), "decode alone"]
    jobs += [f"model alone {p}" for p in args.precisions]
    views = 0
    for r in range(args.repeat):
        for job in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
            gc.collect()
            if job.startswith("transformers"):
                hf_precision = "bf16" if job.endswith("bf16") else "fp32"
                wall, out = baseline(video, args.model, weights, hf_precision)
                row = {**out["timings"], "process": wall}
                records[job] = out
            elif job.startswith("vidcls"):
                precision = job.split()[1]
                every = ["-k", "1000"]  # every class's score, for --check-same
                proc, timings, record = vidcls_predict(video, args.model, weights, precision, every)
                row = {**timings, "process": proc.wall}
                records[job] = record
            elif job == "decode alone":
                seconds, views = decode_alone(video, args.model)
                row = {"total": seconds}
            else:
                if not views:
                    _, views = decode_alone(video, args.model)
                row = {"total": model_alone(loaded[job.split()[-1]], views)[0]}
            runs.setdefault(job, []).append(row)
            print(f"  round {r + 1}: {job}: total {row['total']:.2f} s", flush=True)

    def med(job: str, key: str) -> float:
        values = [row[key] for row in runs.get(job, []) if key in row]
        return median(values) if values else float("nan")

    base = med("transformers", "total")
    table = Table(
        f"End to end, {video.name}, {args.model}, median of {args.repeat} round(s)"
        + (" — TINY model (smoke run)" if args.tiny else ""),
        [
            "run",
            "decode s",
            "preprocess s",
            "inference s",
            "total s",
            "spread",
            "process s",
            "× transformers",
        ],
    )
    for job in jobs:
        totals = [row["total"] for row in runs[job]]
        table.add(
            job,
            fmt(med(job, "decode")),
            fmt(med(job, "preprocess")),
            fmt(med(job, "inference")),
            fmt(med(job, "total")),
            spread(totals),
            fmt(med(job, "process")),
            fmt(ratio(base, med(job, "total"))) if "alone" not in job else "",
        )
    notes = []
    windows = records["transformers"]["windows"]
    notes.append(
        f"{windows} windows × {vidcls.get_spec(args.model).crops} crops = {views} views; "
        "total = per-file time without model loading; process = the whole command"
    )
    decode = med("decode alone", "total")
    for p in args.precisions:
        x = ratio(base, med(f"vidcls {p}", "total"))
        judged = verdict(x >= TARGETS[p], not args.tiny)
        notes.append(f"vidcls {p}: {x:.2f}× transformers fp32 (target ≥ {TARGETS[p]}×: {judged})")
        if p == "bf16":
            x16 = ratio(med("transformers bf16", "total"), med("vidcls bf16", "total"))
            judged = verdict(x16 >= BF16_TARGET, not args.tiny)
            notes.append(
                f"vidcls bf16: {x16:.2f}× transformers bf16 (target ≥ {BF16_TARGET}×: {judged})"
            )
        bound = max(decode, med(f"model alone {p}", "total"))
        over = med(f"vidcls {p}", "total") / bound
        judged = verdict(over <= OVERLAP, not args.tiny)
        notes.append(
            f"overlap, vidcls {p}: total / max(decode alone {decode:.2f} s, model alone "
            f"{med(f'model alone {p}', 'total'):.2f} s) = {over:.2f} (target ≤ {OVERLAP}: "
            f"{judged})"
        )

    failed = False
    if "vidcls fp32" in records:
        ours = np.zeros(len(records["transformers"]["scores"]))
        for entry in records["vidcls fp32"]["top_k"]:
            ours[entry["index"]] = entry["score"]
        theirs = np.asarray(records["transformers"]["scores"])
        top_ours = [int(i) for i in np.argsort(-ours, kind="stable")[:5]]
        top_theirs = [int(i) for i in np.argsort(-theirs, kind="stable")[:5]]
        largest = float(np.abs(ours - theirs).max())
        # Random weights give nearly uniform scores: two labels whose baseline scores are
        # closer than the largest score difference may swap places from the resize alone.
        ties = all(
            abs(theirs[a] - theirs[b]) <= largest
            for a, b in zip(top_ours, top_theirs, strict=True)
            if a != b
        )
        same = "same" if top_ours == top_theirs else "same up to near-ties" if ties else ""
        notes.append(
            f"top 5, vidcls fp32 {top_ours} vs transformers {top_theirs}: "
            f"{same or 'DIFFERENT'}; largest score difference {largest:.3g} "
            f"(scores up to {theirs.max():.3g}; uniform would be {1 / len(theirs):.3g})"
        )
        failed = args.check_same and not same
    report(
        f"End to end: vidcls predict vs transformers ({args.model})", [table], notes, args.append
    )
    if failed:
        raise SystemExit("--check-same: the top 5 differ")


if __name__ == "__main__":
    main()
