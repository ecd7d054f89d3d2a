"""Model speed per view: transformers (their defaults) vs vidcls fp32 and bf16, random weights.

MViT (`mvit`, v2-S) has no transformers port: it runs as vidcls fp32 and bf16 only, from
random weights in torchvision's .pth layout, one centre crop per window as its protocol says,
beside the others per view. GFLOP / view counts every model's multiply-adds as 2 FLOPs
(torch's FlopCounterMode, one fp32 view); torchvision's published "GFLOPS" for MViT count one
per multiply-add, half these figures.

For `timesformer`, `vivit`, `videomae` and `vjepa2-ssv2` at full size (the registry's width,
depth, frame count and crop; random weights saved in hub layout under bench/out/weights/), one
batch of 3 views (one window × 3 crops) through:

* `transformers fp32`: `*ForVideoClassification.from_pretrained(folder)` as loaded by default —
  fp32, eager attention for TimeSformer (it has no other), SDPA for ViViT, VideoMAE and V-JEPA 2
  (their default; the table says which); `--hf-eager` adds ViViT with `attn_implementation="eager"`;
* `transformers bf16` (with bf16 among `--precisions`, unless `--no-hf-bf16`): the same class
  `from_pretrained(folder, torch_dtype=torch.bfloat16)`, bf16 input — what a user asking
  transformers for bf16 gets;
* `vidcls fp32` / `vidcls bf16`: `vidcls.load_model(name, weights=folder, precision=...)`, SDPA
  attention, weights cast once.

GFLOP/s = GFLOP per view / seconds per view. For TimeSformer and ViViT, "% of GEMM rate" divides
it by the bare GEMM rate of the model's own linear shapes in the row's precision (see
`bench/gemm_rate.py`), measured in the same run right after the model's rounds: the faster of
`F.linear` and oneDNN's call on a packed weight.

A warm-up call per variant is excluded; then `--repeat` interleaved rounds, median. Ratios are
to transformers fp32. The largest |logit difference| compares the variants on the same input.
Whether the CPU has native bf16 decides whether bf16 can be faster than fp32 at all: printed
first, with a quick fp32/bf16 linear-layer rate.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from vidcls_dev.bench import (
    Table,
    add_common_args,
    bf16_native,
    bf16_support,
    fmt,
    gemm_rates,
    header,
    linear_rates,
    median,
    model_linear_shapes,
    random_weights,
    ratio,
    report,
    spread,
    verdict,
)

TARGETS = {
    ("timesformer", "vidcls fp32"): 1.1,
    ("timesformer", "vidcls bf16"): 3.5,
    ("vivit", "vidcls bf16"): 4.0,
}
HF = "transformers fp32"
GEMM_TARGET = {("timesformer", "vidcls bf16"): 85.0, ("vivit", "vidcls bf16"): 85.0}  # %


def hf_call(model: Any, x: Any) -> Callable[[], Any]:
    if model.config.model_type == "vjepa2":
        return lambda: model(pixel_values_videos=x).logits
    return lambda: model(pixel_values=x).logits


def vidcls_call(model: Any, x: Any) -> Callable[[], Any]:
    return lambda: model(x)


def precision_of(label: str) -> str:
    return "bf16" if "bf16" in label.split() else "fp32"


def _onednn_linear_flop(x_shape: Any, w_shape: Any, *_: Any, **__: Any) -> int:
    """FLOPs of `mkldnn._linear_pointwise` (weight (out, in), packed or not), 2 per multiply-add."""
    rows = 1
    for size in x_shape[:-1]:
        rows *= size
    return 2 * rows * w_shape[0] * w_shape[1]


def gflop_per_view(model: Any, view: Any) -> float:
    """FLOPs of one view (2 per multiply-add) as torch's FlopCounterMode counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    # the counter's module tracker hooks the gradients of arguments that require them: a
    # parameter passed as an argument (V-JEPA 2's pooler query) must not, in inference mode
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    # vidcls's CPU linears are oneDNN calls on packed weights, which the counter does not know
    linear = torch.ops.mkldnn._linear_pointwise
    counter = FlopCounterMode(display=False, custom_mapping={linear: _onednn_linear_flop})
    try:
        with torch.inference_mode(), counter:
            model(view)
    finally:
        for p in trainable:
            p.requires_grad_(True)
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["timesformer", "vivit", "videomae", "vjepa2-ssv2", "mvit"],
        help="registry names",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "bf16"],
        help="vidcls variants to run (default: fp32 bf16)",
    )
    parser.add_argument("--batch", type=int, default=3, help="views per call (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--bf16-repeat",
        type=int,
        help="timed rounds of the bf16 variant (default: --repeat with native bf16, else 1: "
        "emulated bf16 takes minutes per call)",
    )
    parser.add_argument(
        "--hf-eager", action="store_true", help="also ViViT in transformers with eager attention"
    )
    parser.add_argument(
        "--no-hf-bf16",
        action="store_true",
        help="leave out transformers bf16 (the model loaded with torch_dtype=torch.bfloat16)",
    )
    parser.add_argument(
        "--gemm-seconds",
        type=float,
        default=1.0,
        help="time per linear shape of the GEMM-rate reference (default 1)",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide 2-layer models: a smoke run, not a benchmark"
    )
    add_common_args(parser)
    args = parser.parse_args()

    import torch
    from baselines import attention_of, load_hf

    import vidcls

    header(with_bf16=True)
    rates = linear_rates()
    rate_note = (
        f"linear layer 1576×768→3072: fp32 {rates['fp32']:.0f} GFLOP/s, bf16 "
        f"{rates['bf16']:.0f} GFLOP/s ({rates['bf16'] / rates['fp32']:.2f}×)"
    )
    print(rate_note)
    native = bf16_native()
    bf16_repeat = args.bf16_repeat or (args.repeat if native else 1)
    if "bf16" in args.precisions and not native:
        print(
            f"warning: no native bf16 on this CPU: bf16 is emulated and slow ({bf16_repeat} round)"
        )

    table = Table(
        f"Model, {args.batch} views per call, median of {args.repeat} round(s)"
        + (f" ({bf16_repeat} for bf16)" if bf16_repeat != args.repeat else "")
        + (" — TINY models (smoke run)" if args.tiny else ""),
        [
            "model",
            "variant",
            "attention",
            "GFLOP / view",
            "s / view",
            "spread (s/call)",
            "first call s",
            "× HF",
            "GFLOP/s",
            "% of GEMM rate",
        ],  # fmt: skip
    )
    diffs = Table(
        "Largest |logit difference| on the same random input",
        ["model", "pair", "max |Δ logit|", "max |logit|"],
    )
    notes: list[str] = [rate_note, bf16_support()]
    for name in args.models:
        spec = vidcls.get_spec(name)
        folder = random_weights(name, tiny=args.tiny)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch, spec.num_frames, 3, spec.crop, spec.crop, generator=gen)
        gflop: float | None = None

        variants: dict[str, tuple[str, Callable[[], Any]]] = {}
        hf = None
        if spec.arch != "mvit":  # transformers has no MViT
            hf = load_hf(folder, spec.arch)
            variants[HF] = (attention_of(hf), hf_call(hf, x))
        if hf is not None and "bf16" in args.precisions and not args.no_hf_bf16:
            hf16 = load_hf(folder, spec.arch, "bf16")
            variants["transformers bf16"] = (attention_of(hf16), hf_call(hf16, x.bfloat16()))
        if args.hf_eager and spec.arch == "vivit":
            from transformers import VivitForVideoClassification

            eager = VivitForVideoClassification.from_pretrained(
                str(folder), attn_implementation="eager"
            ).eval()
            variants["transformers fp32 eager"] = ("eager", hf_call(eager, x))
        for precision in args.precisions:
            loaded = vidcls.load_model(name, weights=folder, device="cpu", precision=precision)
            model = loaded.model
            xx = x.to(next(model.parameters()).dtype)
            variants[f"vidcls {precision}"] = ("SDPA", vidcls_call(model, xx))
            if precision == "fp32":
                gflop = gflop_per_view(model, x[:1])

        logits: dict[str, torch.Tensor] = {}
        first: dict[str, float] = {}
        times: dict[str, list[float]] = {v: [] for v in variants}
        labels = list(variants)
        with torch.inference_mode():
            for label in labels:  # warm-up, excluded; its logits are compared below
                started = time.perf_counter()
                logits[label] = variants[label][1]().float()
                first[label] = time.perf_counter() - started
                print(f"{name}: {label}: first call {first[label]:.2f} s", flush=True)
            for r in range(args.repeat):
                for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                    if label.endswith("bf16") and r >= bf16_repeat:
                        continue
                    gc.collect()
                    started = time.perf_counter()
                    variants[label][1]()
                    times[label].append(time.perf_counter() - started)
                    print(f"  round {r + 1}: {label}: {times[label][-1]:.2f} s", flush=True)

        # the ceiling, measured now, between this model's rounds: same machine state
        gemm: dict[str, float] = {}
        if spec.arch in ("timesformer", "vivit"):
            shapes = model_linear_shapes(name, args.batch, args.tiny)
            for p in sorted({precision_of(label) for label in labels}):
                # the ceiling is the faster of the two ways to multiply: F.linear and the
                # packed oneDNN call vidcls runs
                plain, packed = (
                    gemm_rates(shapes, p, args.gemm_seconds, kernel)["all"]
                    for kernel in ("linear", "packed")
                )
                gemm[p] = max(plain, packed)
                notes.append(
                    f"{name}: bare GEMM rate at its linear shapes ({args.batch} views), {p}: "
                    f"F.linear {plain:.0f}, packed oneDNN {packed:.0f} GFLOP/s"
                )
        base = median(times[HF]) / args.batch if HF in times else None
        for label in labels:
            per_view = median(times[label]) / args.batch
            x_hf = ratio(base, per_view) if base is not None else None
            rate = gflop / per_view if gflop is not None else None
            share = 100 * rate / gemm[precision_of(label)] if rate and gemm else None
            table.add(
                name,
                label,
                variants[label][0],
                fmt(gflop) if gflop is not None else "—",
                fmt(per_view, 3),
                spread(times[label]),
                fmt(first[label]),
                fmt(x_hf) if x_hf is not None else "—",
                fmt(rate, 0) if rate is not None else "—",
                fmt(share, 0) if share is not None else "—",
            )
            gemm_target = GEMM_TARGET.get((name, label))
            if gemm_target is not None and share is not None:
                judged = verdict(share >= gemm_target, not args.tiny)
                notes.append(
                    f"{name}: {label} at {share:.0f} % of the bf16 GEMM rate "
                    f"(target ≥ {gemm_target:.0f} %: {judged})"
                )
            target = TARGETS.get((name, label))
            if x_hf is None:
                continue
            if target is not None:
                judged = verdict(x_hf >= target, not args.tiny)
                notes.append(f"{name}: {label} {x_hf:.2f}× {HF} (target ≥ {target}×: {judged})")
        pairs = [("vidcls bf16", "vidcls fp32"), ("vidcls fp32", HF), ("vidcls bf16", HF)]
        pairs.append(("transformers bf16", HF))
        if "transformers fp32 eager" in logits:
            pairs.append(("transformers fp32 eager", HF))
        for a, b in pairs:
            if a in logits and b in logits:
                diff = (logits[a] - logits[b]).abs().max().item()
                scale = logits[b].abs().max().item()
                diffs.add(name, f"{a} vs {b}", f"{diff:.3g}", f"{scale:.3g}")
        del variants, logits, hf
        gc.collect()
    if any(vidcls.get_spec(n).arch == "mvit" for n in args.models):
        notes.append("MViT: vidcls's build with N(0, 0.02) on every parameter, torchvision .pth")
    notes.append(
        "random weights (transformers init + N(0, 0.02) noise, seed 0), random N(0, 1) input; "
        "s / view = median seconds per call / views per call"
    )
    report("Model: vidcls vs transformers", [table, diffs], notes, args.append, with_bf16=True)


if __name__ == "__main__":
    main()
