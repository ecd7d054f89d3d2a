"""Does bf16 keep the answer? `motion-tiny` fp32 vs bf16 on its held-out clips.

`--precision auto` picks bf16 (on CUDA, or a CPU with AMX / AVX-512 BF16) only because the
shipped motion model keeps its top-1 on at least 99 % of its held-out clips in bf16. This
measures that figure on the clips tests/test_motion.py uses (the same seed and count, written
once under bench/out/motion-held-out/): per clip, the windows of `vidcls predict` through the
fp32 and the bf16 model (weights cast once at load), their softmaxes averaged over crops and
windows as `predict` does, and the largest |logit difference| of any window. It runs the plain
view only, not the 16 symmetric views `predict` also averages for this model: the model's own
agreement, before the views' average smooths it. On a CPU without native bf16 the bf16 numbers
are exact but slow (emulated); the figure is the same either way.
"""

from __future__ import annotations

import argparse
import warnings

from vidcls_dev import motion as mv
from vidcls_dev.bench import OUT, Table, add_common_args, bf16_support, header, report

MODEL = "motion-tiny"
TARGET = 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seed", type=int, default=mv.HELD_OUT_SEED, help="held-out seed (the tests')"
    )
    parser.add_argument(
        "--per-class", type=int, default=mv.HELD_OUT_PER_CLASS, help="clips per class (the tests')"
    )
    add_common_args(parser)
    args = parser.parse_args()
    header(with_bf16=True)

    import torch

    import vidcls

    clips = mv.held_out_clips(args.seed, args.per_class)
    folder = OUT / "motion-held-out" / f"{args.seed}-{args.per_class}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:03d}.mp4" for i in range(len(clips))]
    missing = [(c, p) for c, p in zip(clips, paths, strict=True) if not p.is_file()]
    if missing:
        print(f"writing {len(missing)} clips under {folder}", flush=True)
        mv.write_videos([c for c, _ in missing], [p for _, p in missing])

    fp32 = vidcls.load_model(MODEL, device="cpu", precision="fp32", offline=True)
    with warnings.catch_warnings():  # the warning about emulated bf16 on this CPU
        warnings.simplefilter("ignore")
        bf16 = vidcls.load_model(MODEL, device="cpu", precision="bf16", offline=True)
    same = right32 = right16 = 0
    largest = scale = 0.0
    changed = []
    for i, (clip, path) in enumerate(zip(clips, paths, strict=True)):
        inputs = [x for _, _, x in vidcls.model_inputs(path, MODEL)]  # decoded once, for both
        with torch.inference_mode():
            logits = [[m.model(x).float() for x in inputs] for m in (fp32, bf16)]
        pairs = zip(*logits, strict=True)
        largest = max(largest, *((a - b).abs().max().item() for a, b in pairs))
        scale = max(scale, *(a.abs().max().item() for a in logits[0]))
        top = [
            int(torch.stack([w.softmax(-1).mean(0) for w in windows]).mean(0).argmax())
            for windows in logits
        ]
        truth = mv.CLASSES.index(clip.label)
        same += top[0] == top[1]
        right32 += top[0] == truth
        right16 += top[1] == truth
        if top[0] != top[1]:
            changed.append(
                f"{path.name} ({clip.label}: {mv.CLASSES[top[0]]} -> {mv.CLASSES[top[1]]})"
            )
        if (i + 1) % 70 == 0:
            print(f"  {i + 1}/{len(clips)} clips, same top-1 {same}", flush=True)

    n = len(clips)
    table = Table(
        f"motion-tiny fp32 vs bf16, {n} held-out clips (seed {args.seed})",
        [
            "clips",
            "same top-1",
            "share",
            "fp32 right",
            "bf16 right",
            "max |Δ logit|",
            "max |logit|",
        ],
    )
    table.add(
        n, same, f"{same / n:.1%}", f"{right32 / n:.1%}", f"{right16 / n:.1%}",
        f"{largest:.3g}", f"{scale:.3g}",
    )  # fmt: skip
    ok = same / n >= TARGET
    notes = [
        f"bf16 keeps the fp32 top-1 on {same} of {n} clips ({same / n:.1%}; rule for "
        f"`--precision auto`: ≥ {TARGET:.0%}: {'met' if ok else 'NOT met'})",
        f"this CPU: {bf16_support()}",
    ]
    if changed:
        notes.append("changed: " + ", ".join(changed))
    report("bf16 keeps motion-tiny's answers", [table], notes, args.append, with_bf16=True)


if __name__ == "__main__":
    main()
