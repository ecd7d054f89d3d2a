"""The `vidcls` command line. Importing this module must not import torch or av.

stdout carries results only; progress, warnings and errors go to stderr. The command group's
`invoke` is the one place where exceptions become messages and exit codes.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from . import __version__
from .errors import VidclsError

err = Console(stderr=True, highlight=False)


def report_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)


class _Group(TyperGroup):
    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VidclsError as e:
            if os.environ.get("VIDCLS_DEBUG") == "1":
                traceback.print_exc()
            report_error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            report_error("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:
            if os.environ.get("VIDCLS_DEBUG") == "1":
                raise
            if type(e).__module__.startswith(("click", "typer")):
                raise
            report_error(
                f"internal error: {type(e).__name__}: {e} (VIDCLS_DEBUG=1 shows the traceback)"
            )
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    name="vidcls",
    help="Classify the actions in videos of any length with TimeSformer and ViViT.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vidcls {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Classify the actions in videos of any length with TimeSformer and ViViT."""


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the registry as JSON.")] = False,
) -> None:
    """List the models vidcls knows: span, frames, input size, labels, and whether cached."""
    from .registry import registry
    from .weights import cached_weights

    rows = []
    for spec in registry().values():
        row = spec.as_dict()
        row["cached"] = cached_weights(spec) is not None
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="vidcls models", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("checkpoint", overflow="fold")
    table.add_column("frames×stride", no_wrap=True)
    table.add_column("span", justify="right", no_wrap=True)
    table.add_column("input", no_wrap=True)
    table.add_column("labels")
    table.add_column("cached")
    for row in rows:
        table.add_row(
            row["name"],
            row["repo"] or f"bundled: {row['bundled']}",
            f"{row['num_frames']}×{row['frame_stride']} @{row['reference_fps']:g}",
            f"{row['span_seconds']:.2f} s",
            f"{row['short_side']}→{row['crops']}×{row['crop']}"
            + (" bgr" if row["channel_order"] == "bgr" else ""),
            f"{row['labels']} ({row['num_classes']})",
            "yes" if row["cached"] else "no",
        )
    Console().print(table)


@app.command()
def download(
    names: Annotated[list[str], typer.Argument(help="Model names (see `vidcls models`).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download models into the Hugging Face cache ahead of an offline run."""
    from .registry import get_spec
    from .weights import fetch, verify_sha256

    specs = [get_spec(name) for name in names]
    for spec in specs:
        if not quiet:
            err.print(f"downloading {spec.name} from {spec.repo}@{spec.revision}")
        path = fetch(spec, offline=False, progress=not quiet)
        verify_sha256(spec, path)
        sys.stdout.write(f"{spec.name}\t{path}\n")


# Options shared by predict and segment.
Videos = Annotated[list[str], typer.Argument(help="Video files, or - for a video on stdin.")]
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Registry name or alias (see `vidcls models`).")
]
WeightsOpt = Annotated[
    str | None,
    typer.Option(help="Local weights: hub-layout folder, .safetensors, .bin or original .pyth."),
]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:N.")]
PrecisionOpt = Annotated[
    str, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, fp16.")
]
BatchOpt = Annotated[str, typer.Option("--batch-size", help="Views per batch, or auto.")]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many actions to show.")]
CropsOpt = Annotated[
    int | None, typer.Option(min=1, max=3, help="3 crops along the long side, or 1 centre crop.")
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", "-f",
        help="table, json or jsonl (default: table on a terminal, else json for one file, "
        "jsonl for several).",
    ),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
OfflineOpt = Annotated[bool, typer.Option(help="Never touch the network; use the cache.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]


def _format(fmt: str | None, as_json: bool, files: int) -> str:
    from .output import FORMATS

    if as_json:
        fmt = fmt or "json"
    if fmt is None:
        return "table" if sys.stdout.isatty() else ("json" if files == 1 else "jsonl")
    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format '{fmt}' (use {', '.join(FORMATS)})")
    return fmt


def _check_inputs(videos: list[str], crops: int | None) -> None:
    from pathlib import Path

    from .errors import UsageError

    if videos.count("-") > 1:
        raise UsageError("'-' (standard input) can be given only once")
    missing = [v for v in videos if v != "-" and not Path(v).exists()]
    if missing:
        raise UsageError("no such file: " + ", ".join(missing))
    if crops not in (None, 1, 3):
        raise UsageError("--crops must be 1 or 3")


def _run(mode: str, videos: list[str], fmt: str, quiet: bool, options: dict[str, Any]) -> None:
    import time
    import warnings

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .api import classify
    from .output import render_table, write_json, write_jsonl
    from .weights import load_model

    spec_name = options.pop("model")
    load = {k: options.pop(k) for k in ("weights", "device", "precision", "offline")}
    if not quiet:
        err.print(f"loading {spec_name}…", highlight=False)
    loaded = load_model(spec_name, progress=not quiet, **load)
    out_console = Console(highlight=False)
    records: list[dict[str, Any]] = []
    failed = 0
    live = not quiet and err.is_terminal

    def show_warning(message: Any, *args: Any, **kwargs: Any) -> None:
        if not quiet:
            err.print(f"[yellow]warning:[/] {message}", highlight=False)

    warnings.showwarning = show_warning
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=err, disable=not live, transient=True,
    ) as bar:  # fmt: skip
        for name in videos:
            task = bar.add_task(name, total=None)
            started = time.perf_counter()
            try:

                def advance(done: int, total: int | None, task: Any = task) -> None:
                    bar.update(task, completed=done, total=total)

                record = classify(loaded, name, mode=mode, progress=advance, **options)
            except VidclsError as e:
                failed += 1
                record = {"file": name, "error": str(e)}
                report_error(str(e))
            finally:
                bar.remove_task(task)
            if "error" not in record and not quiet:
                took = time.perf_counter() - started
                err.print(
                    f"{name}: {record['num_windows']} window(s) in {took:.1f} s", highlight=False
                )
            if fmt == "jsonl":
                write_jsonl(record, sys.stdout)
            elif fmt == "table" and "error" not in record:
                render_table(record, out_console)
            records.append(record)
    if fmt == "json":
        write_json(records, sys.stdout)
    if failed:
        raise typer.Exit(1)


@app.command()
def predict(
    videos: Videos,
    model: ModelOpt = "timesformer",
    weights: WeightsOpt = None,
    top_k: TopKOpt = 5,
    clips: Annotated[
        str, typer.Option(help="all: the fewest windows covering the video; N: N evenly spaced.")
    ] = "all",
    crops: CropsOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_size: BatchOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Classify whole videos: the top-k actions, averaged over windows and crops."""
    if clips != "all" and not (clips.isdigit() and int(clips) > 0):
        raise typer.BadParameter("--clips takes 'all' or a positive number")
    _check_inputs(videos, crops)
    options = _common(model, weights, device, precision, offline, top_k, crops, batch_size)
    options["clips_count"] = None if clips == "all" else int(clips)
    _run("predict", videos, _format(fmt, as_json, len(videos)), quiet, options)


@app.command()
def segment(
    videos: Videos,
    model: ModelOpt = "timesformer",
    weights: WeightsOpt = None,
    hop: Annotated[
        float | None, typer.Option(min=0.001, help="Seconds between windows (default: the span).")
    ] = None,
    min_duration: Annotated[
        float, typer.Option(min=0.0, help="Fold segments shorter than this into a neighbour.")
    ] = 0.0,
    top_k: TopKOpt = 5,
    crops: CropsOpt = None,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_size: BatchOpt = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """A timeline of actions: windows every --hop seconds, merged into segments."""
    _check_inputs(videos, crops)
    options = _common(model, weights, device, precision, offline, top_k, crops, batch_size)
    options.update(hop=hop, min_duration=min_duration)
    _run("segment", videos, _format(fmt, as_json, len(videos)), quiet, options)


def _common(
    model: str,
    weights: str | None,
    device: str,
    precision: str,
    offline: bool,
    top_k: int,
    crops: int | None,
    batch_size: str,
) -> dict[str, Any]:
    if batch_size != "auto" and not (batch_size.isdigit() and int(batch_size) > 0):
        raise typer.BadParameter("--batch-size takes 'auto' or a positive number")
    return {
        "model": model,
        "weights": weights,
        "device": device,
        "precision": precision,
        "offline": offline or None,
        "top_k": top_k,
        "crops": crops,
        "batch_size": batch_size if batch_size == "auto" else int(batch_size),
    }


def main() -> None:
    """Console-script entry point."""
    app()
