"""Batched inference with decoding running ahead in a producer thread.

Views (windows × crops × symmetric views) are batched across windows. The decoder thread fills
a bounded queue, so the device does not wait for the decoder and the decoder does not run
arbitrarily far ahead.
PyAV releases the GIL while it decodes and torch while it computes, so one process does both.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import WeightsError
from .transforms import normalize, symmetric_views, transform

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .loading import LoadedModel
    from .records import Answer

T = TypeVar("T")
_DONE = object()


@dataclass
class _Failure:
    error: BaseException


class Prefetch(Generic[T]):
    """Iterate `source` in a background thread, at most `depth` items ahead of the consumer."""

    def __init__(self, source: Iterable[T], depth: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put(_Failure(e))
            return
        self._put(_DONE)

    def get(self, block: bool = True) -> T | None:
        """The next item; None when non-blocking and nothing is ready. StopIteration at the end."""
        try:
            item = self._queue.get(block=block)
        except queue.Empty:
            return None
        if item is _DONE:
            self._queue.put(_DONE)  # keep answering "done"
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Inline(Generic[T]):
    """`Prefetch`'s interface, consuming the source in the calling thread."""

    def __init__(self, source: Iterable[T]) -> None:
        self._items = iter(source)

    def get(self, block: bool = True) -> T | None:
        return next(self._items)

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


def auto_batch_size(loaded: LoadedModel, per_window: int) -> int:
    """Model inputs per batch: two windows on CPU; on CUDA, what half the free memory holds.

    `per_window` counts a window's inputs: its crops times its symmetric views."""
    import torch

    device = next(loaded.model.parameters()).device
    if device.type != "cuda":
        return 2 * per_window
    free, _ = torch.cuda.mem_get_info(device)
    spec = loaded.spec
    patches = (spec.crop // 16) ** 2 * spec.num_frames
    width = loaded.model.head.in_features
    element = next(loaded.model.parameters()).element_size()
    per_view = (patches + 1) * width * element * 24  # activations of one layer, generous
    views = int(free * 0.5 // per_view)
    return max(per_window, min(256, views // per_window * per_window))


class Classifier:
    """Runs a loaded model on windows of views and returns per-window class probabilities.

    A model whose registry entry lists symmetries also sees every crop transformed by each
    combination of them; each view's logits are put back in the window's own class order and
    its softmax joins the crop's mean.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        crops: int,
        batch_size: int | str | None = None,
        answer: Answer | None = None,
        compile: bool = False,
    ) -> None:
        self.loaded = loaded
        self.crops = crops
        # each softmax runs over one group of classes (a head, the --classes subset), the
        # others get 0; None: one over all of them. With "logits" the views average raw logits
        # and the answer turns the mean into probabilities.
        self.groups = answer.softmax_groups() if answer is not None else None
        self.average = answer.average if answer is not None else "softmax"
        self.seconds = 0.0  # spent in the model
        self.symmetries = symmetric_views(loaded.spec)
        if len(self.symmetries) > 1 and loaded.spec.num_classes != len(loaded.labels):
            raise WeightsError(
                f"{loaded.source}: {len(loaded.labels)} classes, but the symmetries of "
                f"'{loaded.spec.name}' are defined on its {loaded.spec.num_classes}"
            )
        # ViViT, VideoMAE and MViT have fixed position tables: say so before decoding, not mid-batch
        fixed = getattr(loaded.model, "input_shape", None)
        spec = loaded.spec
        if fixed is not None and tuple(fixed) != (spec.num_frames, spec.crop, spec.crop):
            raise WeightsError(
                f"{loaded.source}: the checkpoint takes {fixed[0]} frames of "
                f"{fixed[1]}×{fixed[2]}, but '{spec.name}' feeds it {spec.num_frames} of "
                f"{spec.crop}×{spec.crop}: "
                "choose the --model its files describe (or --frames to match)"
            )
        per_window = crops * len(self.symmetries)
        auto = batch_size is None or batch_size == "auto"
        self.batch_size = (  # model inputs per batch, symmetric views included
            auto_batch_size(loaded, per_window) if auto else max(1, int(batch_size))  # type: ignore[arg-type]
        )
        self.device = next(loaded.model.parameters()).device
        self.model = loaded.model
        self.fixed = compile  # compiled graphs get one batch shape: short batches are padded
        if compile:
            import torch

            self.model = torch.compile(loaded.model, dynamic=False)

    def probabilities(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 views (n, frames, H, W, 3) -> softmax per view (n, classes), float32 on CPU.

        On out-of-memory the chunk is halved and retried: crops are never dropped.
        """
        import time

        import torch

        started = time.perf_counter()
        out = []
        symmetric = len(self.symmetries)
        step = max(1, self.batch_size // symmetric)
        i = 0
        while i < len(views):
            chunk = views[i : i + step]
            real = len(chunk)
            if self.fixed and real < step:
                pad = chunk[-1:].expand(step - real, *chunk.shape[1:])
                chunk = torch.cat([chunk, pad])
            try:
                with torch.inference_mode():
                    x = normalize(chunk.to(self.device, non_blocking=True), self.loaded.spec)
                    if symmetric > 1:
                        x = torch.cat([transform(x, names) for names, _ in self.symmetries])
                    # the model casts its input to its weights' precision
                    logits = self.model(x).float().unflatten(0, (symmetric, -1))
                    probs = [
                        self._score(part[:real, list(order)] if symmetric > 1 else part[:real])
                        for part, (_, order) in zip(logits, self.symmetries, strict=True)
                    ]
                out.append(torch.stack(probs).mean(0).cpu())
                i += real
            except torch.OutOfMemoryError:
                if step == 1:
                    raise
                torch.cuda.empty_cache()
                step = max(1, step // 2)
                self.batch_size = step * symmetric
        self.seconds += time.perf_counter() - started
        return torch.cat(out)

    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        """A view's score: its softmax over each group, or its raw logits (average "logits")."""
        if self.average == "logits":
            return logits
        if self.groups is None:
            return logits.softmax(-1)
        import torch

        probs = torch.zeros_like(logits)
        for group in self.groups:
            probs[:, group] = logits[:, group].softmax(-1)
        return probs

    def window_probabilities(self, views: torch.Tensor) -> np.ndarray:
        """uint8 views (windows, crops, frames, H, W, 3) -> each window's mean over its crops
        of the per-view softmax (windows, classes): the one place crops are averaged."""
        probs = self.probabilities(views.flatten(0, 1))
        return probs.view(len(views), -1, probs.shape[-1]).mean(1).numpy()

    def run(
        self,
        items: Iterable[tuple[T, np.ndarray | None]],
        depth: int | None = None,
        prefetch: bool = True,
    ) -> Iterator[tuple[T, np.ndarray | None, float]]:
        """Yield (meta, mean-over-crops probabilities, seconds of model time) per window, in order.

        `items` yields (meta, views) with views of shape (crops, frames, H, W, 3) uint8, or
        (meta, None) for a marker that is passed through in order (with None, 0.0) once the
        windows before it are done. With `prefetch` it is consumed in a producer thread that
        decodes ahead while the model runs; without, in the calling thread. A batch is full
        unless a marker (a file's start or end) cuts it short, so which windows share a batch,
        and with it every last bit of the scores, does not depend on how fast the decoder is.
        A window's seconds are its share of its batch's.
        """
        import numpy as np
        import torch

        per_batch = max(1, self.batch_size // (self.crops * len(self.symmetries)))
        source: Prefetch[tuple[T, np.ndarray | None]] | Inline[tuple[T, np.ndarray | None]]
        source = Prefetch(items, depth or 2 * per_batch) if prefetch else Inline(items)
        try:
            finished = False
            while not finished:
                batch: list[tuple[T, np.ndarray]] = []
                marker = None
                try:
                    item = source.get()
                    while item is not None:
                        if item[1] is None:
                            marker = item
                            break
                        batch.append(item)  # type: ignore[arg-type]
                        if len(batch) == per_batch:
                            break
                        item = source.get()
                except StopIteration:
                    finished = True
                if batch:
                    started = self.seconds
                    views = torch.from_numpy(np.stack([v for _, v in batch]))
                    probs = self.window_probabilities(views)
                    share = (self.seconds - started) / len(batch)
                    for (meta, _), p in zip(batch, probs, strict=True):
                        yield meta, p, share
                if marker is not None:
                    yield marker[0], None, 0.0
        finally:
            source.close()
