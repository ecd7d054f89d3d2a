"""The resolved configuration of a run: frozen values built once, at the edge.

The command line and the Python API turn their options into a `RunConfig`: which model and
weights (`ModelChoice`), where and how it runs (`Runtime`: device and precision already
resolved), and what to do with each file (`FileOptions`). Everything below takes these values
and never resolves an option again. `RunConfig.run_key` is computed from them, so `--resume`
compares exactly what changes a file's result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DeviceError, UsageError
from .registry import VIVIT_CHOICES, ModelSpec, get_spec, registry
from .video import Limits

if TYPE_CHECKING:
    import torch

SCHEMA_VERSION = 1
MODES = ("predict", "segment")
PRECISIONS = ("fp32", "bf16", "fp16")
# the run key names dtypes as torch prints them, which keys of earlier runs hold
_TORCH_NAMES = {"fp32": "torch.float32", "bf16": "torch.bfloat16", "fp16": "torch.float16"}


@dataclass(frozen=True)
class ModelChoice:
    """Which model: a registry entry, where its weights come from, and its class names."""

    name: str  # the registry entry's canonical name
    weights: str | None = None  # an explicit local path; None: the registry's source
    labels: tuple[str, ...] | None = None  # names that replace the checkpoint's
    labels_from: str = "the label list"  # where `labels` came from, for messages
    offline: bool | None = None  # None: HF_HUB_OFFLINE decides
    attention: str | None = None  # a ViViT attention (VIVIT_CHOICES); None: the file decides
    # the entry itself when it is not the registry's: derived from a hub repo or folder, or a
    # registry entry with --frames/--stride changed
    custom: ModelSpec | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.custom if self.custom is not None else get_spec(self.name)

    @property
    def source(self) -> str:
        """Where the weights come from, as records name it; a chosen ViViT attention is part of
        it (and so of the run key), since the same file is then another model."""
        spec = self.spec
        if self.weights is not None:
            base = self.weights
        else:
            base = f"bundled:{spec.bundled}" if spec.bundled else f"{spec.repo}@{spec.revision}"
        return base if self.attention is None else f"{base}#vivit-attention={self.attention}"


@dataclass(frozen=True)
class Runtime:
    """Where and how the model runs, resolved: a device torch accepts, one precision."""

    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    precision: str = "fp32"  # one of PRECISIONS
    batch_size: int | None = None  # model inputs per batch; None: sized automatically
    compile: bool = False  # torch.compile the model (fixed batch shapes)
    threads: int | None = None  # torch intra-op threads; None: torch_threads() decides
    notes: tuple[str, ...] = field(default=(), compare=False)  # what resolving warned about

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            self.precision
        ]


CLOCKS = ("stream", "wall")
DROPS = ("none", "oldest")


@dataclass(frozen=True)
class LiveOptions:
    """How a remote or live source is opened and read (`live.py`, `video.open_container`)."""

    input_format: str | None = None  # FFmpeg's demuxer, when it cannot guess (v4l2, mpegts)
    input_options: tuple[tuple[str, str], ...] = ()  # FFmpeg's options, e.g. rtsp_transport
    timeout: float | None = None  # seconds without data before a source counts as stalled
    reconnect: int = 0  # reopen a live source that stalls or ends this many times
    clock: str = "stream"  # the timeline after a jump: the stream's time, or the wall clock
    follow: bool | None = None  # records as they happen; None: for live sources only
    drop: str = "none"  # when the model is slower than the source: which windows to drop
    duration: float | None = None  # stop a live source after this many seconds of it

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise UsageError(f"--clock must be {' or '.join(CLOCKS)}, not '{self.clock}'")
        if self.drop not in DROPS:
            raise UsageError(f"--drop must be {' or '.join(DROPS)}, not '{self.drop}'")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError("--timeout must be positive")
        if self.reconnect < 0:
            raise UsageError("--reconnect must be 0 or more")
        if self.duration is not None and self.duration <= 0:
            raise UsageError("--duration must be positive")


@dataclass(frozen=True)
class FileOptions:
    """What to do with each file. None means the owner's default (see clips, segments)."""

    mode: str = "predict"  # one of MODES
    top_k: int = 5
    clips: int | None = None  # predict: N evenly spaced windows instead of the tiling
    crops: int | None = None  # 1 or 3; None: the model's
    hop: float | None = None  # segment: seconds between windows
    min_duration: float | None = None  # segment: shortest segment kept
    start: float = 0.0
    end: float | None = None
    classes: tuple[str, ...] | None = None  # answer among these labels only
    strict: bool = False  # a file with any warning fails instead of getting its result
    # segment: the file's events carry the top classes' probability curves, for the views that
    # draw or threshold them (html, --multi-label, sparklines); they change no record
    curves: bool = False
    live: LiveOptions = field(default_factory=LiveOptions)  # sources FFmpeg opens by URL, too
    # what one file may cost (vidcls.video.Limits): frame size, length, decoding without progress
    max_pixels: int = Limits.max_pixels
    max_duration: float = Limits.max_duration
    decode_timeout: float = Limits.decode_timeout
    # libavcodec frame threads; None: decode.frame_threads(). Not in the run key: the decoded
    # frames are the same whatever the thread count
    decode_threads: int | None = None

    @property
    def limits(self) -> Limits:
        return Limits(self.max_pixels, self.max_duration, self.decode_timeout)

    def __post_init__(self) -> None:
        check_limits(self.max_pixels, self.max_duration, self.decode_timeout)
        if self.mode not in MODES:
            raise UsageError(f"unknown mode '{self.mode}' (use {' or '.join(MODES)})")
        if self.crops not in (None, 1, 3):
            raise UsageError("--crops must be 1 or 3")
        if self.clips is not None and self.clips < 1:
            raise UsageError("--clips takes 'all' or a positive number")
        if self.top_k < 1:
            raise UsageError("--top-k must be at least 1")
        if self.hop is not None and self.hop <= 0:
            raise UsageError("--hop must be positive")
        check_threads(self.decode_threads, "--decode-threads")
        if self.end is not None and self.end <= self.start:
            raise UsageError(f"--end ({self.end:g} s) must come after --start ({self.start:g} s)")


def check_limits(max_pixels: int, max_duration: float, decode_timeout: float) -> Limits:
    """The limits, or a usage error naming the option that is not positive."""
    for option, value in (
        ("--max-pixels", max_pixels), ("--max-duration", max_duration),
        ("--decode-timeout", decode_timeout),
    ):  # fmt: skip
        if isinstance(value, bool) or not value > 0:
            raise UsageError(f"{option} must be positive")
    return Limits(max_pixels, max_duration, decode_timeout)


@dataclass(frozen=True)
class RunConfig:
    model: ModelChoice
    runtime: Runtime
    options: FileOptions

    @property
    def run_key(self) -> str:
        model = self.model
        return run_key(
            model.name, model.source, self.runtime.precision, model.labels, self.options,
            model.custom,
        )  # fmt: skip


def run_key(
    model: str,
    weights: str,
    precision: str,
    labels: Sequence[str] | None,
    options: FileOptions,
    custom: ModelSpec | None = None,
) -> str:
    """A short hash of everything that changes a file's result, for --resume to compare.

    `labels` are names that replace the checkpoint's (None when it keeps its own); `custom` is
    an entry that is not the registry's (its protocol then enters the key)."""
    fields = {
        "schema": SCHEMA_VERSION,
        "model": model,
        "weights": weights,
        "dtype": _TORCH_NAMES[precision],
        "labels": hashlib.sha1("\n".join(labels).encode()).hexdigest() if labels else None,
        "mode": options.mode,
        "top_k": options.top_k,
        "clips": options.clips,
        "crops": options.crops,
        "hop": options.hop,
        "min_duration": options.min_duration,
        "start": options.start,
        "end": options.end,
        "classes": list(options.classes) if options.classes is not None else None,
    }
    if options.strict:  # only then, so keys made before the option existed still match
        fields["strict"] = True
    # a limit decides whether a file gets a result at all; like strict, only when changed
    for name in ("max_pixels", "max_duration", "decode_timeout"):
        if getattr(options, name) != getattr(Limits, name):
            fields[name] = getattr(options, name)
    if custom is not None:  # only then, so that the keys of registry runs stay as they were
        fields["protocol"] = protocol(custom)
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def protocol(spec: ModelSpec) -> dict[str, object]:
    """What of an entry decides which pixels the model sees."""
    return {
        "frames": spec.num_frames, "stride": spec.frame_stride, "fps": spec.reference_fps,
        "sampling": spec.sampling, "short_side": spec.short_side, "resize": spec.resize,
        "crop": spec.crop, "crops": spec.crops, "mean": list(spec.mean), "std": list(spec.std),
        "channel_order": spec.channel_order, "average": spec.average,
    }  # fmt: skip


def with_protocol(spec: ModelSpec, frames: int | None, stride: int | None) -> ModelSpec:
    """The entry with --frames / --stride applied."""
    for option, value in (("--frames", frames), ("--stride", stride)):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise UsageError(f"{option} must be a positive number")
    if frames is None and stride is None:
        return spec
    return dataclasses.replace(
        spec,
        num_frames=frames if frames is not None else spec.num_frames,
        frame_stride=stride if stride is not None else spec.frame_stride,
    )


def choose_model(
    name: str,
    weights: str | Path | None = None,
    labels: str | Path | list[str] | tuple[str, ...] | None = None,
    offline: bool | None = None,
    attention: str | None = None,
    spec: ModelSpec | None = None,
) -> ModelChoice:
    """The model's registry entry (an unknown name is a usage error) and its class names.

    `spec`, when given, is the entry itself (derived from a hub repo, or with its protocol
    changed); it is kept unless it is exactly the registry's. `attention` is a ViViT attention
    (registry.VIVIT_CHOICES) for a ViViT entry."""
    if spec is None or (spec.name in registry() and get_spec(spec.name) == spec):
        spec, custom = get_spec(name if spec is None else spec.name), None
    else:
        custom = spec
    if attention is not None:
        if attention not in VIVIT_CHOICES:
            raise UsageError(
                f"unknown ViViT attention '{attention}' (use {', '.join(VIVIT_CHOICES)})"
            )
        if spec.arch != "vivit":
            raise UsageError(f"--vivit-attention needs a ViViT model, and '{spec.name}' is not")
    names, where = None, "the label list"
    if isinstance(labels, (str, Path)):
        names, where = tuple(read_labels(labels)), str(labels)
    elif labels is not None:
        names = tuple(str(n) for n in labels)
    weights = None if weights is None else str(weights)
    return ModelChoice(
        spec.name, weights, names, where, offline, attention=attention, custom=custom
    )


def read_labels(path: str | Path) -> list[str]:
    """Class names from a file, one per line (blank lines ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--labels {path}: cannot read it ({e.strerror or e})") from e
    return [line.strip() for line in text.splitlines() if line.strip()]


def resolve_device(device: str = "auto") -> str:
    """'auto' is CUDA when present; an unknown name is a usage error, a missing GPU is not."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{device}' asked for, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{device}': only {torch.cuda.device_count()} GPU(s) here")
    return str(dev)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16); without it PyTorch's
    bf16 matrix products fall back to an emulation far slower than fp32 (BENCHMARKS.md)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str, device: str) -> tuple[str, tuple[str, ...]]:
    """(precision, notes). `auto` is bf16 on CUDA and on a CPU with native bf16, where the
    bundled motion model keeps its top-1 (BENCHMARKS.md), fp32 elsewhere."""
    on_cuda = device.startswith("cuda")
    if precision == "auto":
        return ("bf16" if on_cuda or cpu_has_native_bf16() else "fp32"), ()
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}' (use auto, fp32, bf16 or fp16)")
    if not on_cuda and precision != "fp32" and not cpu_has_native_bf16():
        note = (
            f"this CPU has no native bf16/fp16 matrix unit (AMX or AVX-512 BF16): --precision "
            f"{precision} will be much slower than fp32 here"
        )
        return precision, (note,)
    return precision, ()


MAX_THREADS = 1024


def check_threads(value: int | None, option: str) -> None:
    """A thread count is None (automatic) or a positive number; libavcodec refuses more than
    its own limit quietly, so an absurd count is refused here."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS:
        raise UsageError(f"{option} must be a number from 1 to {MAX_THREADS}, not {value!r}")


def available_cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else all)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_threads(runtime: Runtime) -> int:
    """torch intra-op threads for a run: --threads, else one per core.

    The decoder's frame threads run beside these (decode.frame_threads()); bench/threads_bench.py
    measures the grid of both on one file end to end.
    """
    return runtime.threads if runtime.threads is not None else available_cores()


def apply_threads(runtime: Runtime) -> int:
    """Set torch's intra-op threads for `runtime` (process-wide, as torch keeps them); returns
    the count. Left alone when it is already that, so that an automatic run changes nothing a
    caller of the API set up."""
    import torch

    threads = torch_threads(runtime)
    if runtime.threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def parse_batch_size(value: int | str | None) -> int | None:
    """'auto' (or None) or a positive number of model inputs per batch."""
    if value is None or value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    raise UsageError("--batch-size takes 'auto' or a positive number")


def runtime(
    device: str = "auto",
    precision: str = "auto",
    batch_size: int | str | None = None,
    compile: bool = False,
    threads: int | None = None,
) -> Runtime:
    """Resolve device and precision on this machine, once."""
    batch = parse_batch_size(batch_size)
    check_threads(threads, "--threads")
    resolved = resolve_device(device)
    chosen, notes = resolve_precision(precision, resolved)
    return Runtime(resolved, chosen, batch, compile, threads, notes)
