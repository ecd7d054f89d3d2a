"""Several worker processes (one per GPU, or several on the CPU) sharing a queue of files.

Each worker loads the model once and runs the per-file core exactly as the local driver does,
sending its events back through a queue; the parent yields them as they come.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from ..config import RunConfig
from ..errors import UsageError, VidclsError
from ..events import Event, Failed, FileDone, Warned, warnings_to


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


def _worker(device: str, config: RunConfig, threads: int, tasks: Any, results: Any) -> None:
    import torch

    from .. import core
    from ..loading import load

    # each worker gets its share of the cores unless --threads said how many
    runtime = dataclasses.replace(
        config.runtime, device=device, threads=config.runtime.threads or threads
    )
    torch.set_num_threads(runtime.threads)
    with warnings_to(lambda message: results.put(Warned(None, message))):
        try:
            loaded = load(config.model, runtime, progress=False)
        except VidclsError as e:
            results.put(("fatal", str(e)))
            return

        def names() -> Iterator[str]:
            while (name := tasks.get()) is not None:
                results.put(("taken", name))
                yield name

        try:
            options, key = config.options, config.run_key
            for event in core.run(loaded, names(), options, runtime, key):
                results.put(event)
        except Exception:
            results.put(("fatal", traceback.format_exc(limit=3)))
            return
    results.put(("exit", None))


def run_workers(
    config: RunConfig, names: list[str], devices: list[str], say: Callable[[str], None]
) -> Iterator[Event]:
    """Events from one worker process per device, as files finish."""
    if not names:
        return
    context = mp.get_context("spawn")  # CUDA cannot be forked into children
    tasks: Any = context.Queue()
    results: Any = context.Queue()
    for name in names:
        tasks.put(name)
    for _ in devices:
        tasks.put(None)
    threads = max(1, (os.cpu_count() or 1) // len(devices))
    workers = [
        context.Process(target=_worker, args=(d, config, threads, tasks, results), daemon=True)
        for d in devices
    ]
    say(f"starting {len(workers)} worker(s) on {', '.join(devices)}…")
    for w in workers:
        w.start()
    pending = set(names)
    in_flight: set[str] = set()
    running = len(workers)
    fatal: list[str] = []
    try:
        while running:
            try:
                message = results.get(timeout=1.0)
            except queue.Empty:
                if all(not w.is_alive() for w in workers):
                    break  # every worker died without saying so
                continue
            if isinstance(message, tuple):
                kind, payload = message
                if kind == "taken":
                    in_flight.add(payload)
                else:
                    running -= 1
                    if kind == "fatal":
                        fatal.append(payload)
                continue
            if isinstance(message, (FileDone, Failed)):
                in_flight.discard(message.file)
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
            why = "the worker processing it stopped" if name in in_flight else "no worker left"
            yield Failed(name, f"{name}: {why}")
