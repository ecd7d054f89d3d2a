"""Shared helpers of the benchmark scripts: paths, the machine, timing, tables, test weights.

Every script prints a table and, with `--append PATH`, appends a Markdown section (command,
machine, date, table, ratios) to PATH for a hand-reviewed commit to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import repo_root

ROOT = repo_root()
BENCH = ROOT / "bench"
OUT = BENCH / "out"  # gitignored: test videos, random weights
VIDEOS = OUT
WEIGHTS = OUT / "weights"

# The test videos `make_videos.py` writes, by role.
V1080 = ("v1080_g30.mp4", "v1080_g250.mp4")
V360 = ("v360_1min.mp4", "v360_10min.mp4")


# ------------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def bf16_native() -> bool:
    """Whether this CPU computes bf16 natively (AMX-BF16 / AVX512-BF16): then bf16 is the fast
    CPU precision; without it oneDNN emulates bf16, slower than fp32."""
    import torch

    if torch.cuda.is_available():
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def bf16_support() -> str:
    """What this CPU offers for bf16 matmuls: torch's kernel level and the native bf16 flags."""
    import torch

    flags = sorted({"amx_bf16", "avx512_bf16", "avx512f"} & cpu_flags())
    capability = torch.backends.cpu.get_cpu_capability()
    return (
        f"torch CPU capability {capability}; cpuinfo flags: {', '.join(flags) or 'no avx512/bf16'}"
        f"; oneDNN bf16: {'native' if bf16_native() else 'emulated (slower than fp32)'}"
    )


def linear_rates(seconds: float = 1.0) -> dict[str, float]:
    """GFLOP/s of a ViT-B-shaped linear layer (1576 tokens × 768 → 3072) in fp32 and bf16."""
    import torch

    rates = {}
    x32 = torch.randn(1576, 768)
    layer = torch.nn.Linear(768, 3072)
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        lin, x = layer.to(dtype), x32.to(dtype)
        with torch.inference_mode():
            lin(x)
            n, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds / 2 or n < 2:
                lin(x)
                n += 1
        took = (time.perf_counter() - started) / n
        rates[name] = 2 * 1576 * 768 * 3072 / took / 1e9
    return rates


def linear_shapes(
    rows: int, dim: int = 768, mlp: int = 3072, divided: bool = False
) -> list[tuple[str, int, int, int]]:
    """(name, rows, in, out) of every linear in one ViT block, once per use.

    A divided-attention TimeSformer block runs two attentions (qkv and proj twice) and its
    temporal_fc; a joint block one attention. Rows are the tokens of the whole batch.
    """
    attention = [("qkv", rows, dim, 3 * dim), ("proj", rows, dim, dim)]
    shapes = attention * (2 if divided else 1)
    if divided:
        shapes.append(("temporal_fc", rows, dim, dim))
    return [*shapes, ("fc1", rows, dim, mlp), ("fc2", rows, mlp, dim)]


def gemm_rates(
    shapes: Sequence[tuple[str, int, int, int]],
    dtype: str,
    seconds: float = 1.0,
    kernel: str = "linear",
) -> dict[str, float]:
    """GFLOP/s of a bare product with bias at each shape, and "all": the FLOPs of the whole
    list over its summed time, i.e. the rate a block made of nothing but these GEMMs reaches.

    `kernel`: "linear" is `F.linear` (the weight in its plain layout, reordered by the library
    on every call); "packed" is oneDNN's `_linear_pointwise` on a weight packed once, what
    vidcls's `PackedLinear` runs in CPU inference. Each distinct shape runs for about
    `seconds`, after one warm-up call.
    """
    import torch

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    gen = torch.Generator().manual_seed(0)
    per_call: dict[tuple[int, int, int], float] = {}
    rates: dict[str, float] = {}
    with torch.inference_mode():
        for name, rows, k, n in shapes:
            key = (rows, k, n)
            if key not in per_call:
                x = torch.randn(rows, k, generator=gen).to(torch_dtype)
                w = (torch.randn(n, k, generator=gen) * 0.02).to(torch_dtype)
                b = torch.zeros(n, dtype=torch_dtype)
                call = _bare_linear(kernel, x, w, b)
                call()
                calls, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds or calls < 2:
                    call()
                    calls += 1
                per_call[key] = (time.perf_counter() - started) / calls
            rates[name] = 2 * rows * k * n / per_call[key] / 1e9
    flops = sum(2 * rows * k * n for _, rows, k, n in shapes)
    rates["all"] = flops / sum(per_call[(r, k, n)] for _, r, k, n in shapes) / 1e9
    return rates


def _bare_linear(kernel: str, x: Any, w: Any, b: Any) -> Callable[[], object]:
    """One call of the product `gemm_rates` times, by `kernel`."""
    import torch
    import torch.nn.functional as F

    if kernel == "packed":
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 1)
        return lambda: torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")
    return lambda: F.linear(x, w, b)


def model_linear_shapes(
    name: str, batch: int, tiny: bool = False
) -> list[tuple[str, int, int, int]]:
    """The linear shapes of one block of registry model `name` (TimeSformer or ViViT, as
    `random_weights` makes it) on `batch` views."""
    from vidcls.registry import get_spec

    spec = get_spec(name)
    arch = spec.arch_config
    dim, mlp = (64, 128) if tiny else (arch["hidden_size"], arch["mlp_dim"])
    if spec.arch == "timesformer":
        grid = arch["image_size"] // arch["patch_size"]
        rows = batch * (1 + grid * grid * arch["num_frames"])
        return linear_shapes(rows, dim, mlp, arch["attention_type"] == "divided_space_time")
    if spec.arch == "vivit":
        kt, kh, kw = arch["tubelet"]
        size = arch["image_size"]
        rows = batch * (1 + (arch["num_frames"] // kt) * (size // kh) * (size // kw))
        return linear_shapes(rows, dim, mlp)
    raise ValueError(f"{name}: GEMM shapes are known for TimeSformer and ViViT only")


def machine(with_bf16: bool = False) -> str:
    """One line: CPU, cores, memory, GPU, library versions (and bf16 support if asked)."""
    import av
    import torch

    mem = memory_gib()
    parts = [f"{cpu_model()}, {cores()} cores"]
    if mem:
        parts.append(f"{mem:.0f} GiB RAM")
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    else:
        parts.append("no GPU")
    parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    codec = av.library_versions.get("libavcodec", ())
    parts.append(f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, codec))})")
    try:
        import transformers

        parts.append(f"transformers {transformers.__version__}")
    except ImportError:
        pass
    parts.append(f"Python {platform.python_version()}")
    if with_bf16:
        parts.append(bf16_support())
    return "; ".join(parts)


def load_note() -> str:
    """The load average when the run started: a busy machine makes every figure slower."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {cores()} cores at start"


# ------------------------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """min–max of the rounds, for the reader to judge the noise."""
    if len(values) < 2:
        return ""
    return f"{min(values):.2f}–{max(values):.2f}"


def ratio(baseline: float, other: float) -> float:
    """How many times faster `other` is than `baseline` (both in seconds)."""
    return baseline / other if other > 0 else float("nan")


def verdict(ok: bool, judged: bool = True) -> str:
    """'met' / 'NOT met'; a smoke run (tiny files or models) is not judged."""
    if not judged:
        return "not judged: smoke run"
    return "met" if ok else "NOT met"


def fmt(value: float, digits: int = 2) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value:.{digits}f}"


# ------------------------------------------------------------------------------------- tables


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def print(self) -> None:
        from rich.console import Console
        from rich.table import Table as RichTable

        table = RichTable(title=self.title, title_justify="left")
        for i, name in enumerate(self.columns):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        console = Console(highlight=False)
        if not console.is_terminal:  # a log file: do not squeeze the table into 80 columns
            console = Console(highlight=False, width=200)
        console.print(table)

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        head = [line(self.columns), "|" + "|".join("---" for _ in self.columns) + "|"]
        return "\n".join(head + [line(r) for r in self.rows])


def command_line() -> str:
    """The command as run, relative to the repository root where possible."""
    argv = list(sys.argv)
    try:
        argv[0] = str(Path(argv[0]).resolve().relative_to(ROOT))
    except ValueError:
        pass
    return "python " + shlex.join(argv)


def report(
    title: str,
    tables: Sequence[Table],
    notes: Sequence[str] = (),
    append: Path | None = None,
    with_bf16: bool = False,
) -> None:
    """Print the tables and notes; with `append`, add them as a Markdown section to that file."""
    for table in tables:
        table.print()
    for note in notes:
        print(note)
    if append is None:
        return
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        f"## {title}",
        "",
        f"- command: `{command_line()}`",
        f"- machine: {machine(with_bf16)}",
        f"- date: {when}; {load_note()}",
        "",
    ]
    for table in tables:
        parts += [f"**{table.title}**", "", table.markdown(), ""]
    parts += [f"- {n}" for n in notes]
    append.parent.mkdir(parents=True, exist_ok=True)
    with open(append, "a", encoding="utf-8") as f:
        f.write("\n" + "\n".join(parts).rstrip() + "\n")
    print(f"appended to {append}")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--append",
        type=Path,
        metavar="PATH",
        help="append a Markdown section (command, machine, date, table, ratios) to PATH",
    )


def header(with_bf16: bool = False) -> None:
    print(machine(with_bf16))
    print(load_note())


# ---------------------------------------------------------------------------- test material


def video_path(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise SystemExit(f"{path}: missing; write it first with `python bench/make_videos.py`")
    return path


def _hf_config(name: str, tiny: bool) -> Any:
    """A transformers config with the registry entry's shape (full size, or tiny for a smoke)."""
    import vidcls

    spec = vidcls.get_spec(name)
    arch = spec.arch_config
    width = {
        "hidden_size": 64 if tiny else arch["hidden_size"],
        "num_hidden_layers": 2 if tiny else arch["depth"],
        "num_attention_heads": 4 if tiny else arch["heads"],
        "intermediate_size": 128 if tiny else arch["mlp_dim"],
        "image_size": arch["image_size"],
        "num_frames": arch["num_frames"],
        "num_labels": arch["num_classes"],
    }
    if spec.arch == "timesformer":
        from transformers import TimesformerConfig

        return TimesformerConfig(
            patch_size=arch["patch_size"], attention_type=arch["attention_type"], **width
        )
    if spec.arch == "videomae":
        from transformers import VideoMAEConfig

        return VideoMAEConfig(tubelet_size=arch["tubelet"][0], **width)
    if spec.arch == "vjepa2":
        from transformers import VJEPA2Config

        return VJEPA2Config(
            crop_size=width.pop("image_size"),
            frames_per_clip=width.pop("num_frames"),
            mlp_ratio=width.pop("intermediate_size") / width["hidden_size"],
            tubelet_size=arch["tubelet"][0],
            # the predictor is unused by the classifier: kept small, it only costs disk
            pred_hidden_size=64,
            pred_num_hidden_layers=1,
            pred_num_attention_heads=4,
            **width,
        )
    from transformers import VivitConfig

    return VivitConfig(tubelet_size=list(arch["tubelet"]), **width)


# transformers' classifier class of each family
HF_CLASSES = {
    "timesformer": "TimesformerForVideoClassification",
    "vivit": "VivitForVideoClassification",
    "videomae": "VideoMAEForVideoClassification",
    "vjepa2": "VJEPA2ForVideoClassification",
}


def random_weights(name: str, tiny: bool = False, seed: int = 0) -> Path:
    """A hub-layout folder (config.json + model.safetensors) of random weights shaped as the
    registry entry `name` (768 wide, 12 layers for the base models), made once and cached under
    bench/out/weights/. `tiny` makes a 64-wide, 2-layer model of the same frames and crop."""
    from vidcls.registry import bundled_path, get_spec

    spec = get_spec(name)
    if spec.bundled and not tiny:  # motion-tiny: its own trained weights, inside the package
        return bundled_path(spec)
    if spec.arch == "mvit":
        return random_mvit_weights(name, tiny, seed)
    folder = WEIGHTS / (f"{name}-tiny" if tiny else name)
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    import shutil

    import torch
    import transformers

    from .hf_models import randomize, save_hub_folder

    config = _hf_config(name, tiny)
    Model = getattr(transformers, HF_CLASSES[config.model_type])  # noqa: N806
    torch.manual_seed(seed)
    model = randomize(Model(config), scale=0.02, seed=seed)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_hub_folder(model, partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def random_mvit_weights(name: str, tiny: bool = False, seed: int = 0) -> Path:
    """A torchvision-named .pth of random weights shaped as the MViT entry `name`, made once
    under bench/out/weights/; no transformers model exists to make it from. `tiny` keeps the
    frames, crop and stage layout (the grid is fixed by them) at 8 channels, one block a stage.
    """
    import torch

    from vidcls.checkpoints.torchvision import to_torchvision_mvit
    from vidcls.models import build
    from vidcls.registry import get_spec

    path = WEIGHTS / (f"{name}-tiny.pth" if tiny else f"{name}.pth")
    if path.is_file():
        return path
    config = dict(get_spec(name).arch_config)
    if tiny:
        config.update(embed_dim=8, depths=[1, 1, 1, 1])
    torch.manual_seed(seed)
    model = build("mvit", config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(to_torchvision_mvit(model.state_dict()), partial)
    partial.rename(path)
    return path


# -------------------------------------------------------------------------------- subprocesses


@dataclass
class Process:
    returncode: int
    wall: float  # seconds, start to exit
    max_rss_mib: float  # peak resident memory of the process (and children it waited for)
    stdout: str
    stderr: str


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> Process:
    """Run a command in a fresh process; wall time and its own peak RSS (`os.wait4`)."""
    import subprocess
    import tempfile

    environ = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=environ, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    # ru_maxrss is in KiB on Linux
    return Process(proc.returncode, wall, usage.ru_maxrss / 1024, stdout, stderr)


VERBOSE_LINE = (
    r"(?P<windows>\d+) window\(s\); decode (?P<decode>[\d.]+) s, preprocess (?P<preprocess>[\d.]+)"
    r" s, inference (?P<inference>[\d.]+) s, total (?P<total>[\d.]+) s"
)


def vidcls_predict(
    video: Path,
    model: str,
    weights: Path,
    precision: str,
    extra: Sequence[str] = (),
    device: str = "cpu",
) -> tuple[Process, dict[str, float], dict[str, Any]]:
    """`vidcls predict VIDEO -v` in a fresh process: the process, the `-v` timings, the record."""
    import json
    import re

    cmd = [sys.executable, "-m", "vidcls", "predict", str(video), "-m", model]
    cmd += ["--weights", str(weights), "--precision", precision, "--device", device]
    cmd += ["-v", "-f", "json", "--offline", *extra]
    proc = run_measured(cmd)
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    found = re.search(VERBOSE_LINE, proc.stderr)
    if found is None:
        raise SystemExit(f"no -v timings line in the stderr of {shlex.join(cmd)}:\n{proc.stderr}")
    timings = {k: float(v) for k, v in found.groupdict().items()}
    loaded = re.search(r"model loaded in ([\d.]+) s", proc.stderr)
    if loaded:
        timings["load"] = float(loaded.group(1))
    return proc, timings, json.loads(proc.stdout)


def sync(device: str) -> None:
    """Wait for a CUDA device's queued work, so that a timer stops after it."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def model_alone(loaded: Any, views: int, warm: bool = False) -> tuple[float, int]:
    """Seconds for `views` random uint8 views through the model in `vidcls predict`'s batches,
    and that batch size. `warm`: one batch first, untimed (kernels chosen, memory pooled)."""
    import torch

    from vidcls.engine import Classifier

    spec = loaded.spec
    runner = Classifier(loaded, spec.crops)
    device = str(next(loaded.model.parameters()).device)
    gen = torch.Generator().manual_seed(0)
    shape = (views, spec.num_frames, spec.crop, spec.crop, 3)
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    step = runner.batch_size
    if warm:
        runner.probabilities(x[:step])
        sync(device)
    started = time.perf_counter()
    for i in range(0, views, step):  # Classifier.run hands it one batch at a time
        runner.probabilities(x[i : i + step])
    sync(device)
    return time.perf_counter() - started, step
