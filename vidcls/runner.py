"""A command-line run over many videos: one model per worker, one writer, one line per problem.

One bad file does not stop the others: it becomes an error record and the run goes on. The
summary on stderr counts ok / failed / skipped, and the exit code says whether any failed.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import UsageError, VidclsError


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 0 <= I < N."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard '{text}': use I/N, e.g. 0/4 for the first of 4") from None
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard '{text}': I must be in 0..N-1")
    return index, count


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

    def execute(
        self,
        load: dict[str, Any],
        output: str | None,
        options: dict[str, Any],
        resume: bool = False,
        shard: str | None = None,
        devices: list[str] | None = None,
        ray: str | None = None,
    ) -> int:
        """Classify every video; returns how many failed.

        `ray`: None, no Ray; "" Ray's default (RAY_ADDRESS, else a new local Ray); or an address.
        """
        from . import resume as resuming
        from .loading import read_labels, resolve_device, resolve_dtype, source_name
        from .output import make_writer, open_output
        from .pipeline import Options
        from .records import run_key
        from .registry import get_spec

        names = self.names
        if shard is not None:
            index, count = parse_shard(shard)
            names = names[index::count]
        if options["batch_size"] != "auto":
            options["batch_size"] = int(options["batch_size"])
        opts = Options(mode=self.mode, **options)
        spec = get_spec(load["model"])
        labels = read_labels(load["labels"]) if load["labels"] is not None else None
        device = devices[0] if devices else load["device"]
        if ray is None:
            dtype = resolve_dtype(load["precision"], resolve_device(device))
        else:  # --ray: the precision of the model actors, wherever the driver runs
            from .cluster import key_dtype

            dtype = key_dtype(ray or None, load, self.say)
        source = source_name(spec, load["weights"])
        opts.run_key = run_key(spec.name, source, str(dtype), labels, opts)

        durable = self.fmt == "jsonl" and output not in (None, "-")
        if resume and not durable:
            raise UsageError("--resume needs the results in a JSON-lines file: -o FILE.jsonl")
        skipped = 0
        if resume:
            done = resuming.completed(output, opts.run_key)  # type: ignore[arg-type]
            todo = [n for n in names if n not in done]
            skipped = len(names) - len(todo)
            names = todo
            if skipped:
                self.say(f"resuming: {skipped} file(s) already done in {output}")
        failed = 0
        previous = warnings.showwarning
        warnings.showwarning = self._warning
        try:
            mode = ("a" if resume else "w") if durable else None
            with open_output(output, sys.stdout, mode) as out:
                writer = make_writer(self.fmt, self.mode, out, durable)
                for name, kind, payload, timing in self._events(load, names, opts, devices, ray):
                    if kind == "error":
                        failed += 1
                        self.report(payload)
                        writer.error(name, payload)
                    elif kind == "warning":
                        self._warning(payload)
                    else:
                        writer.event(kind, payload)
                        if kind == "file":
                            self._done(name, payload, timing)
                writer.close()
        finally:
            warnings.showwarning = previous
        if len(self.names) > 1 or skipped:
            self.say(f"{len(names) - failed} ok, {failed} failed, {skipped} skipped")
        return failed

    def _events(
        self,
        load: dict[str, Any],
        names: list[str],
        opts: Any,
        devices: list[str] | None,
        ray: str | None = None,
    ) -> Iterator[tuple[str, str, Any, dict[str, float] | None]]:
        """(name, kind, payload, timings) from one process, workers on `devices`, or Ray."""
        if ray is not None:  # --ray [ADDRESS]: a Ray Data pipeline (vidcls.cluster)
            if "-" in names:
                raise UsageError("a video on stdin (-) cannot be sent to Ray; pass files")
            from .cluster import run_ray

            yield from run_ray(load, names, opts, ray or None, self.say)
            return
        if devices:
            if "-" in names:
                raise UsageError("a video on stdin (-) cannot be shared between workers")
            from .workers import run_workers

            yield from run_workers(load, names, opts, devices, self.say)
            return
        from .loading import load_model, with_labels
        from .pipeline import run_files

        if not names:
            return
        self.say(f"loading {load['model']}…")
        started = time.perf_counter()
        args = {k: load[k] for k in ("weights", "device", "precision")}
        loaded = load_model(load["model"], offline=load["offline"] or None, progress=not self.quiet, **args)  # fmt: skip # noqa: E501
        if load["labels"] is not None:
            loaded = with_labels(loaded, load["labels"])
        if self.verbose:
            self.say(f"model loaded in {time.perf_counter() - started:.2f} s ({loaded.source})")
        live = not self.quiet and self.console.is_terminal
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())  # fmt: skip # noqa: E501
        tasks: dict[str, Any] = {}
        timings: dict[str, dict[str, float]] = {}
        stdin = sys.stdin.buffer if "-" in names else None
        with Progress(*columns, console=self.console, disable=not live, transient=True) as bar:

            def advance(name: str, done: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done, total=total)

            for name, kind, payload in run_files(loaded, names, opts, stdin, advance, timings):
                if kind in ("file", "error") and name in tasks:
                    bar.remove_task(tasks.pop(name))
                if kind == "error":
                    yield name, kind, str(payload), None
                else:
                    yield name, kind, payload, timings.get(name)

    def _done(self, name: str, record: dict[str, Any], timings: dict[str, float] | None) -> None:
        windows = record["num_windows"]
        if timings is None:
            self.say(f"{name}: {windows} window(s)")
        elif self.verbose:
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
