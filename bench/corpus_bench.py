"""A corpus through `vidcls predict`: decoding in a child process vs in the process (issue 26).

A local corpus run decodes in a child process, so that a file that crashes FFmpeg fails alone;
the windows' uint8 views cross a pipe. This runs `vidcls predict --from-list LIST -o OUT.jsonl`
on the same corpus both ways (VIDCLS_DECODE_IN_PROCESS=1 is the in-process way), each a fresh
process, rounds interleaved, and compares the wall times. Target: the child process costs at
most 5 %. The results must be the same.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from vidcls_dev.bench import (
    OUT,
    Table,
    add_common_args,
    fmt,
    header,
    median,
    random_weights,
    report,
    run_measured,
    spread,
    verdict,
)

TARGET = 1.05


def make_corpus(folder: Path, files: int, seconds: float, size: tuple[int, int]) -> list[Path]:
    from vidcls_dev.media import grain_counter, make_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = folder / f"c{i:03d}_{size[0]}x{size[1]}_{seconds:g}s.mp4"
        if not path.exists():
            make_video(path, duration=seconds, size=size, content=grain_counter, gop=30)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20, help="videos in the corpus (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each (default 10)")
    parser.add_argument("--size", default="640x360", help="WxH (default 640x360)")
    parser.add_argument("--model", "-m", default="timesformer", help="registry name")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--tiny", action="store_true", help="64-wide 2-layer model: a smoke run, not a benchmark"
    )
    parser.add_argument("--corpus", type=Path, default=OUT / "corpus", help="where the videos go")
    add_common_args(parser)
    args = parser.parse_args()
    header()
    width, height = (int(x) for x in args.size.split("x"))
    videos = make_corpus(args.corpus, args.files, args.seconds, (width, height))
    model = ["-m", args.model]
    if args.model != "motion-tiny":
        model += ["--weights", str(random_weights(args.model, tiny=args.tiny))]
    ways = {"child process": {}, "in process": {"VIDCLS_DECODE_IN_PROCESS": "1"}}
    walls: dict[str, list[float]] = {way: [] for way in ways}
    answers: dict[str, list[object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("\n".join(map(str, videos)) + "\n")
        for r in range(args.repeat):
            for way in list(ways) if r % 2 == 0 else list(ways)[::-1]:
                out = Path(tmp) / f"{r}-{way.replace(' ', '-')}.jsonl"
                cmd = [sys.executable, "-m", "vidcls", "predict", "--from-list", str(listing)]
                cmd += [*model, "--precision", args.precision, "--device", "cpu", "--offline"]
                cmd += ["-q", "-o", str(out)]
                proc = run_measured(cmd, ways[way])
                if proc.returncode != 0:
                    raise SystemExit(f"{way} failed ({proc.returncode}):\n{proc.stderr}")
                walls[way].append(proc.wall)
                records = [json.loads(line) for line in out.read_text().splitlines()]
                answers[way] = [(r["file"], r["top_k"]) for r in records]
                print(f"  round {r + 1}: {way}: {proc.wall:.2f} s", flush=True)
    table = Table(
        f"Corpus of {args.files} × {args.seconds:g} s {args.size}, {args.model} {args.precision}, "
        f"median of {args.repeat}" + (" — TINY model (smoke run)" if args.tiny else ""),
        ["decoding", "wall s", "spread"],
    )
    for way in ways:
        table.add(way, fmt(median(walls[way])), spread(walls[way]))
    ratio = median(walls["child process"]) / median(walls["in process"])
    same = answers["child process"] == answers["in process"]
    notes = [
        f"child / in process {ratio:.3f} (target ≤ {TARGET}: {verdict(ratio <= TARGET, not args.tiny)})",  # noqa: E501
        f"same results: {same}",
    ]
    report("Corpus: decoding in a child process (issue 26)", [table], notes, args.append)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
