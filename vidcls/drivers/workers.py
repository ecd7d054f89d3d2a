"""Several worker processes (one per GPU, or several on the CPU) sharing a queue of files.

Each worker loads the model once and runs the per-file core exactly as the local driver does,
sending its events back through a pipe of its own; the parent yields them as they come. A
worker killed by a signal while on a file (a crash in FFmpeg's native code, an out-of-memory
kill) fails that file with the signal's name and is replaced, so the run goes on with the other
files. (Pipes rather than one shared queue: a process killed while writing to a shared queue
would leave its lock held and the other workers stuck.)
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


def _worker(slot: int, device: str, config: RunConfig, threads: int, tasks: Any, conn: Any) -> None:
    import torch

    from .. import core
    from ..loading import load

    lock = threading.Lock()  # warnings may come from the decoding thread

    def send(message: Any) -> None:
        with lock:
            conn.send(message)

    torch.set_num_threads(threads)
    runtime = dataclasses.replace(config.runtime, device=device)
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
            for event in core.run(loaded, names(), options, runtime, key):
                send(event)
        except Exception:
            send(("fatal", traceback.format_exc(limit=3)))
            return
    send(("exit", None))


def run_workers(
    config: RunConfig, names: list[str], devices: list[str], say: Callable[[str], None]
) -> Iterator[Event]:
    """Events from one worker process per device, as files finish."""
    from multiprocessing.connection import wait

    if not names:
        return
    context = mp.get_context("spawn")  # CUDA cannot be forked into children
    tasks: Any = context.Queue()
    for name in names:
        tasks.put(name)
    for _ in devices:
        tasks.put(None)
    threads = max(1, (os.cpu_count() or 1) // len(devices))
    workers: list[Any] = [None] * len(devices)
    conns: dict[Any, int] = {}  # the parent's end of each live worker's pipe -> its slot

    def start(slot: int) -> None:
        ours, theirs = context.Pipe(duplex=False)
        args = (slot, devices[slot], config, threads, tasks, theirs)
        workers[slot] = context.Process(target=_worker, args=args, daemon=True)
        workers[slot].start()
        theirs.close()
        conns[ours] = slot

    say(f"starting {len(devices)} worker(s) on {', '.join(devices)}…")
    for slot in range(len(devices)):
        start(slot)
    pending = set(names)
    in_flight: dict[int, str] = {}  # worker slot -> the file it is on
    fatal: list[str] = []
    restarts = 0
    try:
        while conns:
            for conn in wait(list(conns), timeout=1.0):
                slot = conns[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is None:  # the worker is gone: it said nothing more
                    del conns[conn]
                    conn.close()
                    worker = workers[slot]
                    worker.join()
                    how = died_of(worker.exitcode)
                    name = in_flight.pop(slot, None)
                    if name is None or restarts >= len(names):
                        fatal.append(f"a worker died ({how})")
                        continue
                    # a crash in native code, or the out-of-memory killer: that file fails,
                    # a new worker takes the rest
                    pending.discard(name)
                    yield Failed(name, crashed(name, how))
                    restarts += 1
                    start(slot)
                    continue
                if isinstance(message, tuple):
                    kind, payload = message
                    if kind == "taken":
                        in_flight[slot] = payload
                        continue
                    del conns[conn]  # the worker is done (or failed as a whole)
                    conn.close()
                    in_flight.pop(slot, None)
                    if kind == "fatal":
                        fatal.append(payload)
                    continue
                if isinstance(message, (FileDone, Failed)):
                    if in_flight.get(slot) == message.file:
                        del in_flight[slot]
                    pending.discard(message.file)
                yield message
    except BaseException:
        for w in workers:
            w.terminate()
        raise
    finally:
        for w in workers:
            w.join(timeout=10)
    reasons = [m.strip().splitlines()[-1] for m in fatal]
    if len(fatal) == len(workers) and pending == set(names):
        raise VidclsError("every worker failed: " + reasons[0])
    for message in reasons:
        say(f"a worker stopped: {message}")
    for name in names:
        if name in pending:
            taken = name in in_flight.values()
            why = "the worker processing it stopped" if taken else "no worker left"
            yield Failed(name, f"{name}: {why}")
