"""Fuzzing: seeded mutated videos through `vidcls probe`, `predict` and `segment` (issue 26).

Each input is a small clean video (MP4, MOV, Matroska, WebM, MPEG-TS, AVI; see
`vidcls_dev.fuzz`) with one to three mutations: bit flips, truncations, byte splices, MP4 boxes /
EBML elements / TS packets dropped, duplicated, swapped, spliced or given extreme sizes, header
fields set to extremes. Every command must end in a result or a documented vidcls error; a
finding is an uncaught exception ("internal error"), a hang past --limit, resident memory past
--rss, or a crash by a signal. Findings are printed as they come and their inputs kept in
--keep. The target is zero findings. `tests/test_fuzz.py` runs a short seeded run of the same.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from vidcls_dev.bench import OUT, Table, add_common_args, header, report
from vidcls_dev.fuzz import COMMANDS, fuzz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=26, help="default 26")
    parser.add_argument("--inputs", type=int, default=3000, help="mutated files (default 3000)")
    parser.add_argument(
        "--minutes", type=float, help="stop after this long, however many inputs are done"
    )
    parser.add_argument("--limit", type=float, default=30.0, help="seconds a run (default 30)")
    parser.add_argument("--rss", type=float, default=3.0, help="GiB a worker (default 3)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=COMMANDS)
    parser.add_argument(
        "--keep", type=Path, default=OUT / "fuzz-findings", help="where findings' inputs go"
    )
    parser.add_argument("--json", type=Path, help="write the summary (with findings) here")
    add_common_args(parser)
    args = parser.parse_args()
    header()
    with tempfile.TemporaryDirectory(prefix="vidcls-fuzz-") as tmp:
        summary = fuzz(
            Path(tmp), args.seed, args.inputs, args.limit, int(args.rss * (1 << 30)),
            tuple(args.commands), keep=args.keep, say=print,
            stop_after=None if args.minutes is None else args.minutes * 60, jobs=args.jobs,
        )  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    table = Table(f"fuzz run, {args.jobs} job(s)", ["seed", "inputs", "runs", *sorted(summary.outcomes), "findings", "minutes", "peak RSS MiB"])  # fmt: skip # noqa: E501
    table.add(
        summary.seed, summary.inputs, summary.runs,
        *(summary.outcomes[k] for k in sorted(summary.outcomes)), summary.bad,
        f"{summary.seconds / 60:.1f}", f"{summary.peak / (1 << 20):.0f}",
    )  # fmt: skip
    common = Table("the commonest documented errors", ["error (numbers as N)", "runs"])
    for reason, n in summary.errors.most_common(10):
        common.add(reason, n)
    notes = [f"findings: {len(summary.findings)}"] + [json.dumps(f) for f in summary.findings]
    report("Fuzzing (issue 26)", [table, common], notes, args.append)
    if summary.bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
