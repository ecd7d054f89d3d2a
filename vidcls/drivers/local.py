"""The local driver: one model in this process, decoding overlapped with inference."""

from __future__ import annotations

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
    yield from core.run(loaded, names, config.options, config.runtime, config.run_key, stdin)
