"""The local driver: one model in this process, decoding overlapped with inference."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .. import core
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
    # a corpus decodes in a child process, so that a file that crashes FFmpeg's native code
    # fails alone (standard input cannot be handed over; one file has nothing to protect)
    apart = (
        len(names) > 1 and "-" not in names and os.environ.get("VIDCLS_DECODE_IN_PROCESS") != "1"
    )
    options, key = config.options, config.run_key
    yield from core.run(loaded, names, options, config.runtime, key, stdin, apart=apart)
