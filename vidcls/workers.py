"""Several worker processes (one per GPU, or several on the CPU) sharing a queue of files.

Each worker loads the model once and runs the same per-file pipeline as a single process, so
the results are the same; the parent writes them as they come back.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any


def parse_gpus(text: str) -> list[str]:
    """'all', a count ('2') or a list of indices ('0,1') -> ['cuda:0', ...]."""
    import torch

    from .errors import UsageError

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
    device: str,
    load: dict[str, Any],
    options: Any,
    threads: int,
    tasks: Any,
    results: Any,
) -> None:
    import torch

    from .errors import VidclsError
    from .loading import load_model, with_labels
    from .pipeline import run_files

    torch.set_num_threads(threads)

    def forward_warning(message: Any, *args: Any, **kwargs: Any) -> None:
        results.put(("warning", "", str(message), None))

    warnings.showwarning = forward_warning
    try:
        args = {k: load[k] for k in ("weights", "precision")}
        loaded = load_model(load["model"], device=device, offline=load["offline"] or None, progress=False, **args)  # fmt: skip # noqa: E501
        if load["labels"] is not None:
            loaded = with_labels(loaded, load["labels"])
    except VidclsError as e:
        results.put(("fatal", "", str(e), None))
        return

    def names() -> Iterator[str]:
        while True:
            name = tasks.get()
            if name is None:
                return
            results.put(("taken", name, None, None))
            yield name

    timings: dict[str, dict[str, float]] = {}
    try:
        for name, kind, payload in run_files(loaded, names(), options, None, None, timings):
            if kind == "error":
                payload = str(payload)
            results.put((kind, name, payload, timings.pop(name, None)))
    except Exception:
        results.put(("fatal", "", traceback.format_exc(limit=3), None))
        return
    results.put(("exit", "", None, None))


def run_workers(
    load: dict[str, Any],
    names: list[str],
    options: Any,
    devices: list[str],
    say: Callable[[str], None],
) -> Iterator[tuple[str, str, Any, dict[str, float] | None]]:
    """(name, kind, payload, timings) from one worker process per device, as files finish."""
    from .errors import VidclsError

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
        context.Process(
            target=_worker, args=(d, load, options, threads, tasks, results), daemon=True
        )
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
                kind, name, payload, timing = results.get(timeout=1.0)
            except queue.Empty:
                if all(not w.is_alive() for w in workers):
                    break  # every worker died without saying so
                continue
            if kind == "taken":
                in_flight.add(name)
            elif kind in ("exit", "fatal"):
                running -= 1
                if kind == "fatal":
                    fatal.append(payload)
            else:
                if kind in ("file", "error"):
                    in_flight.discard(name)
                    pending.discard(name)
                yield name, kind, payload, timing
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
            yield name, "error", f"{name}: {why}", None
