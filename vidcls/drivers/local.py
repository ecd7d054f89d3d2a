"""The local driver: one model in this process, decoding overlapped with inference."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .. import core, sources
from ..config import RunConfig
from ..events import Event


def run_local(
    config: RunConfig,
    names: list[str],
    say: Callable[[str], None],
    stdin: BinaryIO | None = None,
    progress: bool = True,
    verbose: bool = False,
) -> Iterator[Event]:
    """Load the model once and classify `names` in order; "-" reads `stdin`."""
    from ..config import apply_threads
    from ..decode import frame_threads
    from ..loading import load

    if not names:
        return
    say(f"loading {config.model.name}…")
    started = time.perf_counter()
    loaded = load(config.model, config.runtime, progress=progress)
    if verbose:
        say(f"model loaded in {time.perf_counter() - started:.2f} s ({loaded.source})")
        decoder = config.options.decode_threads or frame_threads()
        say(f"threads: torch {apply_threads(config.runtime)}, decoder {decoder}")
    options, key = config.options, config.run_key
    apart = decodes_apart(names)
    yield from core.run(loaded, names, options, config.runtime, key, stdin, apart=apart)


def decodes_apart(names: list[str]) -> bool:
    """Whether a run's files decode in a child process, so that a file that crashes FFmpeg's
    native code fails alone. Not one file (nothing to protect), not standard input (it cannot be
    handed over), not a URL or a live source (read here, where Ctrl-C stops it and its arrival
    times are taken)."""
    return (
        len(names) > 1
        and not any(n == "-" or sources.is_url(n) or sources.is_live(n) for n in names)
        and os.environ.get("VIDCLS_DECODE_IN_PROCESS") != "1"
    )
