"""Bare GEMM rate of this CPU at a model's own linear shapes, fp32 and bf16.

For each model (`timesformer`, `vivit` by default), the linears of one block as the model runs
them on `--batch` views (3: one window × 3 crops): rows = tokens of the whole batch, and
768→2304 (qkv), 768→768 (proj; TimeSformer's temporal_fc too), 768→3072 (fc1), 3072→768 (fc2).
Each shape runs alone with bias for about `--seconds`, two ways: `F.linear` ("linear": the
library reorders the plain weight on every call) and oneDNN's `_linear_pointwise` on a weight
packed once ("packed": what vidcls runs in CPU inference). "block" is the FLOPs of all of a
block's linears (each once per use) over their summed time: the rate a model made of nothing but
its GEMMs would reach; the faster kernel's is the ceiling `model_bench.py` compares the model
against ("% of GEMM rate").
"""

from __future__ import annotations

import argparse

from vidcls_dev.bench import (
    Table,
    add_common_args,
    fmt,
    gemm_rates,
    header,
    model_linear_shapes,
    report,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["timesformer", "vivit"])
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"]
    )
    parser.add_argument("--batch", type=int, default=3, help="views per call (default 3)")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="time per shape and precision (default 1)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide shapes: a smoke run, not a benchmark"
    )
    add_common_args(parser)
    args = parser.parse_args()

    header(with_bf16=True)
    table = Table(
        f"Bare GEMM with bias, {args.batch} views' tokens as rows, GFLOP/s"
        + (" — TINY shapes (smoke run)" if args.tiny else ""),
        ["model", "shape", "rows × in → out"]
        + [f"{p} {kernel}" for p in args.precisions for kernel in ("linear", "packed")],
    )
    notes = []
    for name in args.models:
        shapes = model_linear_shapes(name, args.batch, args.tiny)
        rates = {
            f"{p} {kernel}": gemm_rates(shapes, p, args.seconds, kernel)
            for p in args.precisions
            for kernel in ("linear", "packed")
        }
        seen = set()
        for label, rows, k, n in shapes:
            if label in seen:
                continue
            seen.add(label)
            table.add(name, label, f"{rows}×{k}→{n}", *(fmt(rates[c][label], 0) for c in rates))
        table.add(name, "block", "all of one block's", *(fmt(rates[p]["all"], 0) for p in rates))
        for kernel in ("linear", "packed"):
            fp32, bf16 = rates.get(f"fp32 {kernel}"), rates.get(f"bf16 {kernel}")
            if fp32 and bf16:
                notes.append(
                    f"{name}, {kernel}: bf16 block rate {bf16['all'] / fp32['all']:.2f}× fp32"
                )
    report("GEMM rate at the models' linear shapes", [table], notes, args.append, with_bf16=True)


if __name__ == "__main__":
    main()
