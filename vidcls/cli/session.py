"""A command-line run over many videos: where it runs, one writer, one line per problem.

One bad file does not stop the others: it becomes an error record and the run goes on. What
goes to stderr is decided here and only here: status lines, warnings, errors, the progress
bar and the closing count of ok / failed / skipped.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import RunConfig
from ..errors import UsageError
from ..events import Event, Failed, FileDone, Noted, Timed, Warned, WindowDone, warnings_to
from ..live import may_follow
from ..streams import STOP, reading

if TYPE_CHECKING:
    from ..video import Limits


@dataclass(frozen=True)
class Placement:
    """Where the model runs: this process, worker processes on `devices`, or Ray."""

    devices: tuple[str, ...] | None = None  # --gpus / --workers
    ray: str | None = None  # --ray: None no Ray, "" Ray's default, else an address


@dataclass(frozen=True)
class Destination:
    """Where results go: the format, and a file (None: stdout) that --resume may append to."""

    fmt: str
    path: str | None = None
    resume: bool = False
    video_id: str = "stem"  # activitynet, thumos: how a path names its video
    multi_label: int = 1  # activitynet, thumos: each class's runs among the top K
    overlay: str | None = None  # segment --overlay: the video to write with the timeline drawn

    @property
    def durable(self) -> bool:
        """A JSON-lines file is written a file's block at a time, so it can be resumed."""
        return self.fmt == "jsonl" and self.path not in (None, "-")

    def __post_init__(self) -> None:
        if self.resume and not self.durable:
            raise UsageError("--resume needs the results in a JSON-lines file: -o FILE.jsonl")


class Session:
    def __init__(
        self, console: Console, report: Callable[[str], None], quiet: bool, verbose: bool
    ) -> None:
        self.console = console
        self.report = report
        self.quiet = quiet
        self.verbose = verbose
        self.results = 0  # windows written: after one, Ctrl-C stops a live run cleanly

    def say(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        if not self.quiet:
            text = f"[yellow]warning:[/] {escape(message)}"
            self.console.print(text, highlight=False, soft_wrap=True)

    def classify(
        self,
        config: RunConfig,
        names: list[str],
        given: int,
        destination: Destination,
        placement: Placement,
    ) -> int:
        """Classify `names` (of `given` named on the command line); returns how many failed."""
        from .. import resume as resuming
        from ..output import Settings, make_writer, open_output

        for note in config.runtime.notes:
            self.warn(note)
        skipped = 0
        if destination.resume:
            done = resuming.completed(destination.path, config.run_key)  # type: ignore[arg-type]
            todo = [n for n in names if n not in done]
            skipped, names = len(names) - len(todo), todo
            if skipped:
                self.say(f"resuming: {skipped} file(s) already done in {destination.path}")
        failed = 0
        append = ("a" if destination.resume else "w") if destination.durable else None
        follow = may_follow(names, config.options)
        # records written to the terminal as they come would be drawn over by the live view
        streamed = destination.fmt != "table" and destination.path in (None, "-")
        view = follow and not (streamed and sys.stdout.isatty())
        with (
            warnings_to(self.warn),
            open_output(destination.path, sys.stdout, append) as out,
            self._stopping(follow),
        ):
            settings = Settings(
                config.options.mode, destination.durable, destination.video_id,
                destination.multi_label, run_facts(config, placement), follow,
            )  # fmt: skip
            writer = make_writer(destination.fmt, out, settings)
            events = self._events(config, names, placement)
            shown = self._live(events, config.options.mode) if view else self._progress(events)
            for event in shown:
                self.results += isinstance(event, WindowDone)
                if isinstance(event, FileDone) and writer.wants_frames:
                    writer.attach(event.file, self._thumbnails(event))
                if isinstance(event, FileDone) and destination.overlay is not None:
                    failed += self._overlay(event, destination.overlay)
                writer.write(event)
                failed += self._tell(event)
            writer.close()
        if given > 1 or skipped:
            self.say(f"{len(names) - failed} ok, {failed} failed, {skipped} skipped")
        return failed

    @contextmanager
    def _stopping(self, follow: bool) -> Iterator[None]:
        """While followed sources are read, Ctrl-C and SIGTERM stop them as if they had ended:
        the pending segments go out and the file records close the run (exit 0). Before any
        result, or a second time, they interrupt (exit 130)."""
        STOP.clear()
        if not follow or threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, frame: Any) -> None:
            if self.results and reading() and not STOP.is_set():
                STOP.set()
                self.say("stopping: the pending results follow (Ctrl-C again to interrupt)")
                return
            raise KeyboardInterrupt

        saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def _thumbnails(self, event: FileDone) -> list[bytes | None]:
        """A frame from the middle of each segment, for the HTML report (none from stdin)."""
        from ..encode import snapshots
        from ..errors import VidclsError

        segments = event.record.get("segments", [])
        if event.file == "-" or not segments:
            return []
        try:
            return snapshots(event.file, [(s["start"] + s["end"]) / 2 for s in segments])
        except VidclsError as e:
            self.warn(f"no thumbnails: {e}")
            return []

    def _overlay(self, event: FileDone, target: str) -> int:
        """Write the video with its timeline drawn on it; 1 when that fails."""
        from ..encode import reencode
        from ..errors import VidclsError
        from ..overlay import Painter

        record = event.record
        painter = Painter(record["segments"], record["start"], record["end"])
        try:
            frames = reencode(event.file, target, painter)
        except VidclsError as e:
            self.report(str(e))
            return 1
        self.say(f"{target}: {frames} frame(s) with the timeline drawn")
        return 0

    def _events(self, config: RunConfig, names: list[str], placement: Placement) -> Iterator[Event]:
        if placement.ray is not None:
            from ..drivers.ray import run_ray

            return run_ray(config, names, self.say)
        if placement.devices:
            from ..drivers.workers import run_workers

            return run_workers(config, names, list(placement.devices), self.say)
        from ..drivers.local import run_local

        stdin = sys.stdin.buffer if "-" in names else None
        return run_local(config, names, self.say, stdin, not self.quiet, self.verbose)

    def _tell(self, event: Event) -> int:
        """What an event says on stderr; 1 for a failed file."""
        if isinstance(event, Failed):
            self.report(event.message)
            return 1
        if isinstance(event, Warned):
            self.warn(f"{event.file}: {event.message}" if event.file else event.message)
        elif isinstance(event, Noted):
            if self.verbose:
                self.say(f"{event.file}: {event.message}")
        elif isinstance(event, Timed):
            self.say(self._timing(event))
        return 0

    def _timing(self, t: Timed) -> str:
        if self.verbose:
            return (
                f"{t.file}: {t.windows} window(s); decode {t.decode:.2f} s, preprocess "
                f"{t.preprocess:.2f} s, inference {t.inference:.2f} s, total {t.total:.2f} s"
            )
        return f"{t.file}: {t.windows} window(s) in {t.total:.1f} s"

    def _live(self, events: Iterator[Event], mode: str) -> Iterator[Event]:
        """The live view of a followed source, when stderr is a terminal."""
        from .liveview import LiveView

        if self.quiet or not self.console.is_terminal:
            yield from events
            return
        view = LiveView(mode)
        with Live(
            view, console=self.console, transient=True, auto_refresh=False, redirect_stdout=False
        ) as shown:
            for event in events:
                if view.add(event):
                    shown.refresh()
                yield event

    def _progress(self, events: Iterator[Event]) -> Iterator[Event]:
        """A bar per file in flight, when stderr is a terminal."""
        live = not self.quiet and self.console.is_terminal
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())  # fmt: skip # noqa: E501
        tasks: dict[str, Any] = {}
        with Progress(*columns, console=self.console, disable=not live, transient=True) as bar:
            for event in events:
                if isinstance(event, WindowDone):
                    if event.file not in tasks:
                        tasks[event.file] = bar.add_task(escape(event.file), total=event.total)
                    bar.update(tasks[event.file], completed=event.done, total=event.total)
                elif isinstance(event, (FileDone, Failed)) and event.file in tasks:
                    bar.remove_task(tasks.pop(event.file))
                yield event


def probe(
    names: list[str],
    as_json: bool,
    report: Callable[[str], None],
    warn: Callable[[str], None],
    strict: bool = False,
    limits: Limits | None = None,
    timeout: float | None = None,
) -> int:
    """`vidcls probe`: describe each file; returns how many could not be read (with `strict`,
    or had warnings), or were beyond `limits`. A URL, a camera or a named pipe is opened as
    predict opens it, with `timeout` (seconds without data; None: the live default); a live one
    is described from its start, nothing read ahead."""
    import json

    from ..config import LiveOptions
    from ..decode import DecodeStats
    from ..errors import VidclsError
    from ..facts import warnings_of
    from ..output.terminal import probe_table
    from ..records import error_record, probe_record
    from ..sources import is_live
    from ..video import check_ends
    from ..video import probe as describe
    from ..windows import opening_for

    live = LiveOptions(timeout=timeout)
    records: list[dict[str, Any]] = []
    failed = 0
    for name in names:
        try:
            opening = opening_for(name, live)
            info = describe(name, limits=limits, opening=opening, live=is_live(name))
            first, last = check_ends(name, info, limits) if info.seekable else (None, None)
            found = warnings_of(info, DecodeStats())
        except VidclsError as e:
            failed += 1
            report(str(e))
            records.append(error_record(name, str(e)))
            continue
        for sentence in found:
            warn(f"{info.file}: {sentence}")
        if strict and found:
            failed += 1
            report(f"{info.file}: {found[0]} (--strict)")
            records.append(error_record(info.file, f"{info.file}: {found[0]} (--strict)"))
        else:
            records.append(probe_record(info, first, last, found))
    if as_json:
        document: Any = records[0] if len(records) == 1 else records
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        Console().print(probe_table(records))
    return failed


def run_facts(config: RunConfig, placement: Placement) -> tuple[tuple[str, str], ...]:
    """The run as the HTML report states it: model, weights, where it ran, the protocol."""
    options, runtime = config.options, config.runtime
    where = "Ray" if placement.ray is not None else runtime.device
    if placement.devices:
        where = f"{len(placement.devices)} worker(s) on {', '.join(placement.devices)}"
    hop = "the span" if options.hop is None else f"{options.hop:g} s"
    shortest = "default" if options.min_duration is None else f"{options.min_duration:g} s"
    facts = [
        ("model", config.model.name), ("weights", config.model.source), ("device", where),
        ("precision", runtime.precision),
        ("protocol", f"{options.mode}: hop {hop}, min duration {shortest}, "
                     f"crops {options.crops or 'the model default'}, top {options.top_k}"),
    ]  # fmt: skip
    if options.classes:
        facts.append(("classes", ", ".join(options.classes)))
    return tuple(facts)
