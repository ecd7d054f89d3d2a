"""A command-line run over many videos: one model, one writer, one line per problem on stderr.

One bad file does not stop the others: it becomes an error record and the run goes on.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import VidclsError


class Run:
    def __init__(
        self,
        mode: str,
        names: list[str],
        fmt: str,
        *,
        quiet: bool,
        verbose: bool,
        console: Console,
        report: Callable[[str], None],
    ) -> None:
        self.mode = mode
        self.names = names
        self.fmt = fmt
        self.quiet = quiet
        self.verbose = verbose
        self.console = console
        self.report = report

    def say(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def execute(self, load: dict[str, Any], output: str | None, options: dict[str, Any]) -> int:
        """Classify every video; returns how many failed."""
        from .output import atomic_output, make_writer
        from .pipeline import Options, run_file
        from .weights import load_model, with_labels

        labels = load.pop("labels")
        load["offline"] = load["offline"] or None
        if options["batch_size"] != "auto":
            options["batch_size"] = int(options["batch_size"])
        opts = Options(mode=self.mode, **options)
        self.say(f"loading {load['model']}…")
        started = time.perf_counter()
        loaded = load_model(load.pop("model"), progress=not self.quiet, **load)
        if labels is not None:
            loaded = with_labels(loaded, labels)
        if self.verbose:
            self.say(f"model loaded in {time.perf_counter() - started:.2f} s ({loaded.source})")
        from .pipeline import class_subset

        class_subset(loaded.labels, opts.classes)  # unknown names are a usage error, up front
        failed = 0
        previous = warnings.showwarning
        warnings.showwarning = self._warning
        live = not self.quiet and self.console.is_terminal
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())  # fmt: skip # noqa: E501
        try:
            with (
                atomic_output(output, sys.stdout) as out,
                Progress(*columns, console=self.console, disable=not live, transient=True) as bar,
            ):
                writer = make_writer(self.fmt, self.mode, out)
                stdin = sys.stdin.buffer if "-" in self.names else None
                for name in self.names:
                    task = bar.add_task(name, total=None)

                    def advance(done: int, total: int | None, task: Any = task) -> None:
                        bar.update(task, completed=done, total=total)

                    timings: dict[str, float] = {}
                    try:
                        for kind, record in run_file(loaded, name, opts, stdin, advance, timings):
                            writer.event(kind, record)
                    except VidclsError as e:
                        failed += 1
                        self.report(str(e))
                        writer.error(name, str(e))
                        continue
                    finally:
                        bar.remove_task(task)
                    self._done(name, record, timings)
                writer.close()
        finally:
            warnings.showwarning = previous
        if len(self.names) > 1:
            self.say(f"{len(self.names) - failed} ok, {failed} failed")
        return failed

    def _done(self, name: str, record: dict[str, Any], timings: dict[str, float]) -> None:
        windows = record["num_windows"]
        if self.verbose:
            self.say(
                f"{name}: {windows} window(s); decode {timings['decode']:.2f} s, preprocess "
                f"{timings['preprocess']:.2f} s, inference {timings['inference']:.2f} s, "
                f"total {timings['total']:.2f} s"
            )
        else:
            self.say(f"{name}: {windows} window(s) in {timings['total']:.1f} s")

    def _warning(self, message: Any, *args: Any, **kwargs: Any) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def probe_records(names: list[str], as_json: bool, report: Callable[[str], None]) -> int:
    """`vidcls probe`: describe each file; returns how many could not be read."""
    from rich.table import Table

    from .video import check_ends, probe

    records: list[dict[str, Any]] = []
    failed = 0
    for name in names:
        try:
            info = probe(name)
            first, last = check_ends(name, info) if info.seekable else (None, None)
            record = {"type": "probe", **info.as_dict(), "header_duration": info.header_duration,
                      "first_second_decodes": first, "last_second_decodes": last}  # fmt: skip
        except VidclsError as e:
            failed += 1
            report(str(e))
            record = {"type": "error", "file": name, "error": str(e)}
        records.append(record)
    if as_json:
        document: Any = records[0] if len(records) == 1 else records
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return failed
    table = Table(title="vidcls probe", title_justify="left")
    fields = ["container", "codec", "pix_fmt", "coded", "displayed", "rotation", "duration",
              "fps", "vfr", "frames", "audio", "first 1 s", "last 1 s"]  # fmt: skip
    table.add_column("file", overflow="fold")
    for f in fields:
        table.add_column(f)
    for r in records:
        if r["type"] == "error":
            table.add_row(r["file"], *([""] * (len(fields) - 1)), f"[red]{r['error']}[/]")
            continue
        yes = {True: "yes", False: "[red]no[/]", None: "?"}
        table.add_row(
            r["file"], r["container"], r["codec"], str(r["pix_fmt"]),
            f"{r['coded_width']}×{r['coded_height']}", f"{r['width']}×{r['height']}",
            f"{r['rotation']}°", f"{r['duration']:.3f} s" if r["duration"] is not None else "?",
            f"{r['fps']:.3f}" if r["fps"] else "?", yes[r["vfr"]],
            str(r["frame_count"] or "?"), str(r["audio_streams"]),
            yes[r["first_second_decodes"]], yes[r["last_second_decodes"]],
        )  # fmt: skip
    Console().print(table)
    return failed
