"""The `vidcls` command line. Importing this module must not import torch or av.

stdout carries results only; progress, warnings and errors go to stderr. The command group's
`invoke` is the one place where exceptions become messages and exit codes.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from . import __version__
from .cli_options import (
    BatchOpt,
    ClassesOpt,
    CompileOpt,
    CropsOpt,
    DeviceOpt,
    EndOpt,
    FormatOpt,
    FromList,
    GpusOpt,
    JsonOpt,
    LabelsOpt,
    ModelOpt,
    OfflineOpt,
    OutputOpt,
    PrecisionOpt,
    QuietOpt,
    RayOpt,
    Recursive,
    ResumeOpt,
    ShardOpt,
    StartOpt,
    TopKOpt,
    VerboseOpt,
    Videos,
    WeightsOpt,
    WorkersOpt,
    choose_format,
    parse_classes,
    parse_time,
)  # fmt: skip
from .errors import UsageError, VidclsError

err = Console(stderr=True, highlight=False)


def report_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


# --ray takes an optional ADDRESS, which Typer options cannot: a bare --ray gets "" here.
_RAY_ADDRESS = re.compile(r"^(auto|local|[a-z][a-z0-9+.-]*://\S+|[\w.-]+:\d+)$")


def _ray_default(args: list[str]) -> list[str]:
    """`--ray` followed by no address (auto, local, ray://host:port, host:port) -> --ray ""."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        out.append(arg)
        if arg == "--ray" and not (i + 1 < len(args) and _RAY_ADDRESS.match(args[i + 1])):
            out.append("")
    return out


class _Group(TyperGroup):
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _ray_default(args))

    def invoke(self, ctx: typer.Context) -> Any:
        debug = os.environ.get("VIDCLS_DEBUG") == "1"
        try:
            return super().invoke(ctx)
        except VidclsError as e:
            if debug:
                traceback.print_exc()
            report_error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            report_error("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # the reader went away (`vidcls ... | head`): stop quietly, as Unix tools do
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:
            if debug or type(e).__module__.startswith(("click", "typer")):
                raise
            report_error(f"internal error: {type(e).__name__}: {e} (VIDCLS_DEBUG=1 shows the traceback)")  # fmt: skip # noqa: E501
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
    """List the models vidcls knows: span, frames, input size, labels, and whether cached.

    Piped, one tab-separated line per model with a header line first.
    """
    from .network import cached_weights
    from .registry import registry

    rows = []
    for spec in registry().values():
        row = spec.as_dict()
        row["cached"] = cached_weights(spec) is not None
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    cells = [
        [
            row["name"],
            row["repo"] or f"bundled: {row['bundled']}",
            f"{row['num_frames']}×{row['frame_stride']} @{row['reference_fps']:g}",
            f"{row['span_seconds']:.2f} s",
            ("frame" if row["resize"] == "full" else f"{row['short_side']}")
            + f"→{row['crops']}×{row['crop']}"
            + (" bgr" if row["channel_order"] == "bgr" else "")
            + (" sym" if row["symmetries"] else ""),
            f"{row['labels']} ({row['num_classes']})",
            "yes" if row["cached"] else "no",
        ]
        for row in rows
    ]
    if not sys.stdout.isatty():
        # a pipe gets one line per model (tab-separated, header first) for grep, cut and awk,
        # not a box table folded to 80 columns
        for line in [MODEL_COLUMNS, *cells]:
            sys.stdout.write("\t".join(line) + "\n")
        return
    console = Console()
    console.print(models_table(cells, console))


MODEL_COLUMNS = ["name", "checkpoint", "frames×stride", "span", "input", "labels", "cached"]


def models_table(cells: list[list[str]], console: Console) -> Table:
    """The terminal's table; the checkpoint column only where it fits unfolded."""
    from rich import box
    from rich.measure import Measurement

    def build(keep: list[int]) -> Table:
        table = Table(
            title="vidcls models", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
            pad_edge=False, padding=(0, 1, 0, 0),
        )  # fmt: skip
        for i in keep:
            name = MODEL_COLUMNS[i]
            table.add_column(
                name, justify="right" if name == "span" else "left", no_wrap=name != "labels"
            )
        for line in cells:
            table.add_row(*(line[i] for i in keep))
        return table

    table = build(list(range(len(MODEL_COLUMNS))))
    wide = console.options.update_width(10_000)
    if Measurement.get(console, wide, table).maximum > console.width:
        table = build([i for i, name in enumerate(MODEL_COLUMNS) if name != "checkpoint"])
    return table


@app.command()
def download(
    names: Annotated[list[str], typer.Argument(help="Model names (see `vidcls models`).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download models into the Hugging Face cache ahead of an offline run."""
    from .network import fetch, verify_sha256
    from .registry import get_spec

    specs = [get_spec(name) for name in names]
    for spec in specs:
        if not quiet:
            err.print(f"downloading {spec.name} from {spec.repo or 'the package'}")
        path = fetch(spec, offline=False, progress=not quiet)
        verify_sha256(spec, path if path.is_file() else path / next(iter(spec.sha256), ""))
        sys.stdout.write(f"{spec.name}\t{path}\n")


def _run(mode: str, args: dict[str, Any]) -> None:
    from .runner import Run

    videos = args.pop("videos") or []
    quiet, verbose = args.pop("quiet"), args.pop("verbose")
    if args["batch_size"] != "auto" and not (args["batch_size"].isdigit() and int(args["batch_size"]) > 0):  # fmt: skip # noqa: E501
        raise UsageError("--batch-size takes 'auto' or a positive number")
    if args["crops"] not in (None, 1, 3):
        raise UsageError("--crops must be 1 or 3")
    from .inputs import expand

    names = expand(videos, args.pop("from_list"), args.pop("recursive"))
    fmt = choose_format(args.pop("fmt"), args.pop("as_json"), args["output"], len(names))
    if fmt in ("srt", "vtt") and len(names) > 1:
        raise UsageError(f"--format {fmt} writes the subtitles of one video; got {len(names)}")
    start = parse_time(args.pop("start"), "--start") or 0.0
    end = parse_time(args.pop("end"), "--end")
    if end is not None and end <= start:
        raise UsageError(f"--end ({end:g} s) must come after --start ({start:g} s)")
    run = Run(mode, names, fmt, quiet=quiet, verbose=verbose, console=err, report=report_error)
    devices = None
    gpus, workers = args.pop("gpus"), args.pop("workers")
    if gpus is not None and workers is not None:
        raise UsageError("--gpus and --workers do not mix: --gpus runs one worker per GPU")
    ray = args.pop("ray")
    if ray is not None:  # --ray [ADDRESS]: vidcls.cluster places the models itself
        from .cluster import require_ray

        if gpus is not None or workers is not None:
            raise UsageError("--ray does not mix with --gpus or --workers: Ray runs one model per GPU")  # fmt: skip # noqa: E501
        if "-" in names:
            raise UsageError("a video on stdin (-) cannot be sent to Ray; pass files")
        require_ray()
    if gpus is not None:
        from .workers import parse_gpus

        devices = parse_gpus(gpus)
    elif workers is not None and workers > 1:
        devices = [args["device"] if args["device"] != "auto" else "cpu"] * workers
    load_keys = ("model", "weights", "device", "precision", "offline", "labels")
    load = {k: args.pop(k) for k in load_keys}
    output, resume, shard = args.pop("output"), args.pop("resume"), args.pop("shard")
    classes = parse_classes(args.pop("classes"))
    options = {**args, "start": start, "end": end, "classes": classes}
    failed = run.execute(load, output, options, resume=resume, shard=shard, devices=devices, ray=ray)  # fmt: skip # noqa: E501
    if failed:
        raise typer.Exit(1)


@app.command()
def predict(
    videos: Videos = None,
    model: ModelOpt = "timesformer",
    weights: WeightsOpt = None,
    top_k: TopKOpt = 5,
    clips: Annotated[
        str, typer.Option(help="all: the fewest windows covering the video; N: N evenly spaced.")
    ] = "all",
    crops: CropsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    labels: LabelsOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    from_list: FromList = None,
    recursive: Recursive = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_size: BatchOpt = "auto",
    compile: CompileOpt = False,
    resume: ResumeOpt = False,
    shard: ShardOpt = None,
    gpus: GpusOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Classify whole videos: the top-k actions, averaged over windows and crops."""
    if clips != "all" and not (clips.isdigit() and int(clips) > 0):
        raise UsageError("--clips takes 'all' or a positive number")
    args = dict(locals())
    args["clips_count"] = None if args.pop("clips") == "all" else int(clips)
    _run("predict", args)


@app.command()
def segment(
    videos: Videos = None,
    model: ModelOpt = "timesformer",
    weights: WeightsOpt = None,
    hop: Annotated[
        float | None, typer.Option(min=0.001, help="Seconds between windows (default: the span).")
    ] = None,
    min_duration: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Fold segments shorter than this into their neighbours (default: the span, or "
            "span + hop when the hop is shorter; 0 keeps them all).",
        ),
    ] = None,
    top_k: TopKOpt = 5,
    crops: CropsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    labels: LabelsOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    from_list: FromList = None,
    recursive: Recursive = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_size: BatchOpt = "auto",
    compile: CompileOpt = False,
    resume: ResumeOpt = False,
    shard: ShardOpt = None,
    gpus: GpusOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """A timeline of actions: windows every --hop seconds, merged into segments."""
    _run("segment", dict(locals()))


@app.command()
def probe(
    videos: Videos = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="table or json (default: table on a terminal)."),
    ] = None,
    as_json: JsonOpt = False,
    from_list: FromList = None,
    recursive: Recursive = False,
) -> None:
    """Describe videos without loading a model: container, codec, size, rotation, rate, length."""
    from .inputs import expand
    from .runner import probe_records

    if fmt not in (None, "table", "json"):
        raise UsageError(f"probe prints a table or json, not '{fmt}'")
    names = expand(videos or [], from_list, recursive)
    as_json = as_json or fmt == "json" or (fmt is None and not sys.stdout.isatty())
    failed = probe_records(names, as_json, report_error)
    if failed:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    app()
