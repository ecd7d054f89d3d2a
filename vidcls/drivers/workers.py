"""Several worker processes (one per GPU, or several on the CPU) sharing a queue of files.

Each worker loads the model once and runs the per-file core exactly as the local driver does,
sending its events back through a pipe of its own; the parent yields them as they come. Where
the local driver would decode in a child process (`local.decodes_apart`), each worker does too:
a crash in FFmpeg's native code or a call that never returns fails that file alone, and the
worker goes on. A worker killed by a signal while on a file (an out-of-memory kill, a crash
where it decodes itself) fails that file with the signal's name and is replaced, so the run
goes on with the other files. (Pipes rather than one shared queue: a process killed while
writing to a shared queue would leave its lock held and the other workers stuck.)
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from ..config import RunConfig
from ..errors import UsageError, VidclsError
from ..events import Event, Failed, FileDone, Warned, warnings_to
from ..windows import crashed, died_of
from .local import decodes_apart


def parse_gpus(text: str) -> list[str]:
    """'all', a count ('2') or a list of indices ('0,1') -> ['cuda:0', ...]."""
    import torch

    available = torch.cuda.device_count()
    if text == "all":
        indices = list(range(available))
    elif text.isdigit():
        indices = list(range(int(text)))
    else:
        try:
            indices = [int(x) for x in text.split(",")]
        except ValueError:
            raise UsageError(f"--gpus '{text}': use all, a count, or indices like 0,1") from None
    if not indices:
        raise UsageError("--gpus: no CUDA device is available here")
    missing = [i for i in indices if i >= available]
    if missing:
        raise UsageError(f"--gpus: no GPU {missing[0]} here ({available} available)")
    return [f"cuda:{i}" for i in indices]


def _worker(
    slot: int, device: str, config: RunConfig, threads: int, apart: bool, tasks: Any, conn: Any
) -> None:
    import torch

    from .. import core
    from ..loading import load

    lock = threading.Lock()  # warnings may come from the decoding thread

    def send(message: Any) -> None:
        with lock:
            conn.send(message)

    # each worker gets its share of the cores unless --threads said how many
    runtime = dataclasses.replace(
        config.runtime, device=device, threads=config.runtime.threads or threads
    )
    torch.set_num_threads(runtime.threads)
    with warnings_to(lambda message: send(Warned(None, message))):
        try:
            loaded = load(config.model, runtime, progress=False)
        except VidclsError as e:
            send(("fatal", str(e)))
            return

        def names() -> Iterator[str]:
            while (name := tasks.get()) is not None:
                send(("taken", name))  # written before the file is touched: a crash names it
                yield name

        try:
            options, key = config.options, config.run_key
            for event in core.run(loaded, names(), options, runtime, key, apart=apart):
                send(event)
        except Exception:
            send(("fatal", traceback.format_exc(limit=3)))
            return
    send(("exit", None))


class _Pool:
    """The parent's side: the workers, the files each has taken, and what is left to do.

    The queue holds the names only; the `None` that tells each worker to stop goes in once every
    file is done, so that a file taken by a worker that died can be put back for another."""

    def __init__(self, config: RunConfig, names: list[str], devices: list[str]) -> None:
        self.context = mp.get_context("spawn")  # CUDA cannot be forked into children
        self.config, self.devices = config, devices
        self.tasks: Any = self.context.Queue()
        for name in names:
            self.tasks.put(name)
        self.threads = max(1, (os.cpu_count() or 1) // len(devices))
        self.apart = decodes_apart(names)
        self.workers: list[Any] = [None] * len(devices)
        self.conns: dict[Any, int] = {}  # the parent's end of each live worker's pipe -> slot
        self.pending = set(names)
        self.taken: dict[int, list[str]] = {}  # slot -> files taken and not yet done, in order
        self.fatal: list[str] = []
        self.closed = False

    def start(self, slot: int) -> None:
        ours, theirs = self.context.Pipe(duplex=False)
        args = (slot, self.devices[slot], self.config, self.threads, self.apart, self.tasks, theirs)
        # not a daemon: a daemon process may not start the child it decodes in; run_workers
        # stops every worker on its way out, whatever ends it
        self.workers[slot] = self.context.Process(target=_worker, args=args, daemon=False)
        self.workers[slot].start()
        theirs.close()
        self.conns[ours] = slot

    def done(self, slot: int, name: str) -> None:
        if name in self.taken.get(slot, []):
            self.taken[slot].remove(name)
        self.pending.discard(name)
        if not self.pending and not self.closed:
            self.closed = True
            for _ in self.devices:
                self.tasks.put(None)

    def gone(self, conn: Any) -> tuple[int, list[str]]:
        """Forget a worker's pipe; its slot and the files it had taken and not finished."""
        slot = self.conns.pop(conn)
        conn.close()
        return slot, self.taken.pop(slot, [])

    def died(self, conn: Any, restarts_left: bool) -> Iterator[Event]:
        """A worker ended without a word: the file it was decoding fails with the signal's
        name, the files it had read ahead go back in the queue, and a new worker starts."""
        slot, taken = self.gone(conn)
        worker = self.workers[slot]
        worker.join()
        how = died_of(worker.exitcode)
        if not taken or not restarts_left:
            self.fatal.append(f"a worker died ({how})")
            yield from self.abandon(slot, taken)
            return
        # a crash in native code, or the out-of-memory killer: the file being decoded fails
        *earlier, name = taken
        for other in earlier:
            self.tasks.put(other)
        yield Failed(name, crashed(name, how))
        self.done(slot, name)
        self.start(slot)

    def abandon(self, slot: int, taken: list[str]) -> Iterator[Event]:
        """Fail the files a worker that stopped had taken, so that the others still finish."""
        for name in taken:
            yield Failed(name, f"{name}: the worker processing it stopped")
            self.done(slot, name)

    def stop(self, kill: bool) -> None:
        for w in self.workers:
            if kill:
                w.terminate()
        for w in self.workers:
            w.join(timeout=10)
            if w.is_alive():  # not a daemon: nothing else would end it, and exit would wait
                w.kill()
                w.join()


def run_workers(
    config: RunConfig, names: list[str], devices: list[str], say: Callable[[str], None]
) -> Iterator[Event]:
    """Events from one worker process per device, as files finish."""
    from multiprocessing.connection import wait

    if not names:
        return
    pool = _Pool(config, names, devices)
    say(f"starting {len(devices)} worker(s) on {', '.join(devices)}…")
    for slot in range(len(devices)):
        pool.start(slot)
    restarts = 0
    try:
        while pool.conns:
            for conn in wait(list(pool.conns), timeout=1.0):
                slot = pool.conns[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    yield from pool.died(conn, restarts < len(names))
                    restarts += 1
                    continue
                if isinstance(message, tuple):
                    kind, payload = message
                    if kind == "taken":
                        pool.taken.setdefault(slot, []).append(payload)
                    else:  # the worker is done, or failed as a whole
                        slot, taken = pool.gone(conn)
                        if kind == "fatal":
                            pool.fatal.append(payload)
                        yield from pool.abandon(slot, taken)
                    continue
                if isinstance(message, (FileDone, Failed)):
                    pool.done(slot, message.file)
                yield message
    except BaseException:
        pool.stop(kill=True)
        raise
    pool.stop(kill=False)
    yield from _left_over(pool, names, say)


def _left_over(pool: _Pool, names: list[str], say: Callable[[str], None]) -> Iterator[Event]:
    """After the last worker: the files no worker finished."""
    reasons = [m.strip().splitlines()[-1] for m in pool.fatal]
    if reasons and len(reasons) >= len(pool.workers) and pool.pending == set(names):
        raise VidclsError("every worker failed: " + reasons[0])
    for message in reasons:
        say(f"a worker stopped: {message}")
    for name in names:
        if name in pool.pending:
            yield Failed(name, f"{name}: no worker was left to process it")
