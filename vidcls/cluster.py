"""A corpus on Ray (`--ray [ADDRESS]`, the `vidcls[ray]` extra): the file list as a Ray Dataset.

CPU tasks (one CPU each) decode each file into rows, one per window with its uint8 views, then
one "end" row with what the file record needs (or one "error" row). A pool of model actors (one
model per GPU in the cluster, or CPU actors on a cluster without GPUs) turns window rows into
per-window probabilities exactly as `engine.Classifier.run` does and passes the other rows
through. The driver gathers each file's windows, which may come back in any order, and builds
its records with the single-process code, so the writer, `--resume` and the summary are shared.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import DeviceError, UsageError, VidclsError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .pipeline import Options
    from .registry import ModelSpec

Event = tuple[str, str, Any, "dict[str, float] | None"]
_BIG = ("keyframes", "packet_pts", "keyframe_pts")  # the packet index: the decoder's business
_PRECISION = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}


def require_ray() -> None:
    """A usage error naming the extra when Ray Data is not installed."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError('--ray needs Ray Data: pip install "vidcls[ray]"') from None


def connect(address: str | None, say: Callable[[str], None]) -> None:
    """Join Ray unless this process already has: ADDRESS, or ray.init()'s default (RAY_ADDRESS,
    else a new local Ray). Worker logs stay on the workers: stdout carries results only."""
    require_ray()
    import ray

    if not ray.is_initialized():
        say(f"connecting to Ray at {address}…" if address else "starting Ray…")
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    # a pool sized for the cluster is fine for a short list: no warning for that
    warnings.filterwarnings("ignore", "The minimum number of concurrent actors", UserWarning)


def _resources() -> tuple[int, int]:
    import ray

    resources = ray.cluster_resources()
    return int(resources.get("CPU", 0)), int(resources.get("GPU", 0))


def actor_device(load: dict[str, Any]) -> str:
    """ "cuda" (one GPU per model actor) when the cluster has GPUs and --device allows, or "cpu"."""
    _, gpus = _resources()
    wanted = load["device"]
    if wanted.startswith("cuda") and not gpus:
        raise DeviceError(f"--device {wanted}: the Ray cluster has no GPU")
    return "cuda" if gpus and wanted != "cpu" else "cpu"


def key_dtype(address: str | None, load: dict[str, Any], say: Callable[[str], None]) -> Any:
    """Connect, and the precision the model actors will use (for the run key of --resume)."""
    import torch

    from .loading import resolve_dtype

    connect(address, say)
    return resolve_dtype(load["precision"], torch.device(actor_device(load)))


@dataclass(frozen=True)
class _Layout:
    """Where the model actors go: `actors` of `cpus` CPUs (and one GPU each on `device` cuda)."""

    device: str
    actors: int
    cpus: float
    threads: int  # torch threads of a CPU actor
    rows: int  # windows per actor batch


def _layout(load: dict[str, Any], options: Options, spec: ModelSpec) -> _Layout:
    cpus, gpus = _resources()
    device = actor_device(load)
    crops = options.crops or spec.crops
    window = crops * spec.num_frames * spec.crop * spec.crop * 3  # bytes of one window's views
    if isinstance(options.batch_size, int):
        rows = max(1, options.batch_size // crops)
    else:  # auto: the actor's Classifier sizes its own chunks; this only groups rows
        rows = max(1, min(32, (256 << 20) // window)) if device == "cuda" else 2
    if device == "cuda":  # a CPU each, or less where CPUs are few: decoding needs them more
        return _Layout(device, gpus, min(1.0, cpus / (2 * gpus)), 1, rows)
    # CPU actors: about half the cluster's CPUs for inference, the rest for decoding
    per_actor = max(1, min(4, cpus // 4))
    return _Layout(device, max(1, cpus // (2 * per_actor)), per_actor, per_actor, rows)


def _resources_of(layout: _Layout) -> dict[str, float]:
    """Ray's default for a GPU actor is 1 GPU and 1 CPU; say the CPUs only where they differ."""
    if layout.device != "cuda":
        return {"num_cpus": layout.cpus}
    return {"num_gpus": 1} if layout.cpus >= 1 else {"num_gpus": 1, "num_cpus": layout.cpus}


def _chdir(cwd: str) -> None:
    """Into the driver's working directory, where this node has it (a shared filesystem)."""
    if os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)


def _decode(row: dict[str, Any], spec: ModelSpec, options: Options, cwd: str) -> Iterator[dict]:
    """One file -> a row per window, then an "end" row; or an "error" row (Ray Data task)."""
    import numpy as np

    from .pipeline import open_windows

    _chdir(cwd)  # relative paths mean what they meant to the driver
    name = str(row["item"])
    empty = np.zeros((0, spec.num_frames, spec.crop, spec.crop, 3), np.uint8)
    base = {"name": name, "index": -1, "start": 0.0, "end": 0.0, "meta": ""}
    started = time.time()
    count = 0
    try:
        stream = open_windows(name, spec, options)
        plan = stream.plan
        for window, views in stream:
            end = window.end if plan.end is None else min(window.end, plan.end)
            yield {**base, "kind": "window", "index": window.index, "start": window.start,
                   "end": end, "views": views}  # fmt: skip
            count += 1
    except VidclsError as e:
        yield {**base, "kind": "error", "views": empty, "meta": str(e)}
        return
    except Exception as e:  # one file must not stop a cluster run; it is retried on --resume
        yield {**base, "kind": "error", "views": empty,
               "meta": f"{name}: internal error: {type(e).__name__}: {e}"}  # fmt: skip
        return
    info = {k: v for k, v in dataclasses.asdict(stream.info).items() if k not in _BIG}
    meta = {"info": info, "stats": dataclasses.asdict(stream.stats), "crops": stream.crops,
            "plan": {"span": plan.span, "hop": plan.hop, "start": plan.start, "end": plan.end},
            "started": started}  # fmt: skip
    yield {**base, "kind": "end", "index": count, "views": empty, "meta": json.dumps(meta)}


class _Model:
    """A Ray Data actor: one model, window rows -> mean over crops of the per-view softmax.

    A model that cannot load makes every row "fatal" (the driver stops with its message)
    rather than failing the actor, which Ray would retry and report at length.
    """

    def __init__(
        self, load: dict[str, Any], options: Options, device: str, threads: int, cwd: str
    ) -> None:
        _chdir(cwd)  # a relative --weights or --labels means what it meant to the driver
        self.failure = ""
        self.classes = 0
        try:
            import torch

            from .engine import Classifier
            from .loading import load_model, with_labels
            from .records import class_subset

            if device == "cpu":
                torch.set_num_threads(threads)
            args = {k: load[k] for k in ("weights", "precision")}
            loaded = load_model(load["model"], device=device, offline=load["offline"] or None, progress=False, **args)  # fmt: skip # noqa: E501
            if load["labels"] is not None:
                loaded = with_labels(loaded, load["labels"])
            subset = class_subset(loaded.labels, options.classes)
            crops = options.crops or loaded.spec.crops
            self.classifier = Classifier(loaded, crops, options.batch_size, subset, options.compile)  # fmt: skip # noqa: E501
            self.labels = json.dumps(loaded.labels)
            self.classes = len(loaded.labels)
        except Exception as e:
            code = e.exit_code if isinstance(e, VidclsError) else 1
            text = str(e) if isinstance(e, VidclsError) else f"{type(e).__name__}: {e}"
            self.failure = json.dumps({"message": text, "code": code})

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import numpy as np
        import torch

        kinds = [str(k) for k in batch["kind"]]
        n = len(kinds)
        probs = np.zeros((n, self.classes), np.float32)
        seconds = np.zeros(n)
        labels = [self.labels if k == "end" else "" for k in kinds] if not self.failure else [""] * n  # fmt: skip # noqa: E501
        meta = list(batch["meta"])
        rows = [i for i, k in enumerate(kinds) if k == "window"]
        if self.failure:
            kinds, meta = ["fatal"] * n, [self.failure] * n
        elif rows:
            started = time.perf_counter()
            views = torch.from_numpy(np.stack([batch["views"][i] for i in rows]))
            p = self.classifier.probabilities(views.flatten(0, 1))
            probs[rows] = p.view(len(rows), -1, p.shape[-1]).mean(1).numpy()
            seconds[rows] = (time.perf_counter() - started) / len(rows)
        return {"name": batch["name"], "kind": np.array(kinds, dtype=object),
                "index": batch["index"], "start": batch["start"], "end": batch["end"],
                "meta": np.array(meta, dtype=object), "labels": np.array(labels, dtype=object),
                "probs": probs, "seconds": seconds}  # fmt: skip


@dataclass
class _Gather:
    """One file's rows as they come back, in any order."""

    windows: dict[int, tuple[float, float, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    end: dict[str, Any] | None = None
    labels: str = ""

    def complete(self) -> bool:
        return self.end is not None and len(self.windows) == self.end["windows"]


def _records(
    name: str, gathered: _Gather, load: dict[str, Any], options: Options, spec: ModelSpec
) -> Iterator[Event]:
    """The single-process records of one file: its windows (segment), warnings, then "file"."""
    from typing import cast

    import numpy as np

    from . import clips, records
    from .decode import DecodeStats
    from .loading import LoadedModel, source_name
    from .pipeline import WindowStream, _FileRun, _summary
    from .video import VideoInfo

    meta = gathered.end
    assert meta is not None
    labels = json.loads(gathered.labels)
    loaded = LoadedModel(cast(Any, None), spec, labels, source_name(spec, load["weights"]))
    subset = records.class_subset(labels, options.classes)
    k = min(options.top_k, len(subset) if subset else len(labels))
    stats = meta["stats"]
    stats["size"] = tuple(stats["size"]) if stats["size"] else None
    plan = clips.Plan([], lambda w, e: True, **meta["plan"])
    stream = WindowStream(name, spec, VideoInfo(**meta["info"]), plan, meta["crops"],
                          stats=DecodeStats(**stats))  # fmt: skip
    run = _FileRun(name, stream, meta["started"], 0.0)
    for index in sorted(gathered.windows):
        start, end, p = gathered.windows[index]
        run.spans.append((start, end))
        run.probs.append(p)
        if options.mode == "segment":
            top = records.top_k(p, labels, k, subset)
            record = {"type": "window", "file": stream.info.file, "start": round(start, 3),
                      "end": round(end, 3), "top_k": top}  # fmt: skip
            run.windows.append(record)
            yield name, "window", record, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = _summary(loaded, run, options, subset, k, np.stack(run.probs))
    for warning in caught:
        yield name, "warning", str(warning.message), None
    timings = {"decode": stream.stats.decode_seconds, "preprocess": stream.stats.convert_seconds,
               "inference": gathered.seconds, "total": time.time() - meta["started"]}  # fmt: skip
    yield name, "file", record, timings


def run_ray(
    load: dict[str, Any],
    names: list[str],
    options: Options,
    address: str | None,
    say: Callable[[str], None],
) -> Iterator[Event]:
    """(name, kind, payload, timings) as files finish on Ray, as `workers.run_workers` yields."""
    if not names:
        return
    connect(address, say)
    import ray
    import ray.data

    from .loading import resolve_dtype
    from .registry import get_spec

    spec = get_spec(load["model"])
    layout = _layout(load, options, spec)
    dtype = resolve_dtype(load["precision"], _torch_device(layout.device))
    actor_load = {**load, "precision": _PRECISION[str(dtype)]}  # the key's, whatever the node
    cpus, gpus = _resources()
    say(f"Ray: {cpus} CPU(s), {gpus} GPU(s); {layout.actors} model actor(s) on {layout.device}…")
    ray.data.DataContext.get_current().enable_progress_bars = False
    dataset = (
        ray.data.from_items(list(names), override_num_blocks=min(len(names), 10_000))
        .flat_map(
            _decode, fn_kwargs={"spec": spec, "options": options, "cwd": os.getcwd()}, num_cpus=1
        )
        .map_batches(
            _Model,
            fn_constructor_kwargs={
                "load": actor_load,
                "options": options,
                "device": layout.device,
                "threads": layout.threads,
                "cwd": os.getcwd(),
            },
            batch_size=layout.rows,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=layout.actors),
            **_resources_of(layout),
        )
    )
    pending = {name: _Gather() for name in names}
    failure: list[str] = []
    for row in _rows(dataset, failure):
        name, kind = str(row["name"]), str(row["kind"])
        gathered = pending.get(name)
        if kind == "fatal":
            fatal = json.loads(row["meta"])
            if fatal["code"] == 2:
                raise UsageError(fatal["message"])
            raise VidclsError(f"a Ray model actor failed: {fatal['message']}")
        if gathered is None:  # a file already finished (or failed): a stray or retried row
            continue
        if kind == "error":
            del pending[name]
            yield name, "error", str(row["meta"]), None
            continue
        if kind == "window":
            gathered.windows[int(row["index"])] = (float(row["start"]), float(row["end"]), row["probs"])  # fmt: skip # noqa: E501
            gathered.seconds += float(row["seconds"])
        else:
            gathered.end = {**json.loads(row["meta"]), "windows": int(row["index"])}
            gathered.labels = str(row["labels"])
        if gathered.complete():
            del pending[name]
            yield from _records(name, gathered, load, options, spec)
    if failure:
        if len(pending) == len(names):
            raise VidclsError(f"the Ray run failed: {failure[0]}")
        say(f"the Ray run stopped: {failure[0]}")
    for name in pending:
        yield name, "error", f"{name}: the Ray run ended before this file was done", None


def _rows(dataset: Any, failure: list[str]) -> Iterator[dict[str, Any]]:
    """The dataset's rows; a failure of Ray itself (a node lost, a task that kept failing) ends
    them, its last line in `failure`, so the files not done yet become errors."""
    try:
        yield from dataset.iter_rows()
    except Exception as e:
        failure.append((str(e).strip().splitlines() or [type(e).__name__])[-1])


def _torch_device(device: str) -> torch.device:
    import torch

    return torch.device(device)
