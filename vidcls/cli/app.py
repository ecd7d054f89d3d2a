"""The `vidcls` command line. Importing this module must not import torch or av.

stdout carries results only; progress, warnings and errors go to stderr. The command group's
`invoke` is the one place where exceptions become messages and exit codes. Each command turns
its options into the run's resolved configuration (`vidcls.config`) explicitly, then hands it
to the session.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import traceback
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from .. import __version__
from ..errors import UsageError, VidclsError
from .options import (
    DECODE_TIMEOUT,
    MAX_DURATION,
    MAX_PIXELS,
    BatchOpt,
    ClassesOpt,
    ClockOpt,
    CompileOpt,
    CropsOpt,
    DecodeThreadsOpt,
    DecodeTimeoutOpt,
    DeviceOpt,
    DropOpt,
    DurationOpt,
    EndOpt,
    FollowOpt,
    FormatOpt,
    FramesOpt,
    FromList,
    GpusOpt,
    InputFormatOpt,
    InputOptionOpt,
    JsonOpt,
    LabelsOpt,
    MaxDurationOpt,
    MaxPixelsOpt,
    ModelOpt,
    OfflineOpt,
    OutputOpt,
    PrecisionOpt,
    QuietOpt,
    RayOpt,
    ReconnectOpt,
    Recursive,
    ResumeOpt,
    ShardOpt,
    StartOpt,
    StrictOpt,
    StrideOpt,
    ThreadsOpt,
    TimeoutOpt,
    TopKOpt,
    VerboseOpt,
    Videos,
    VivitAttentionOpt,
    WeightsOpt,
    WorkersOpt,
    check_timeline_options,
    choose_format,
    limit_options,
    live_options,
    parse_classes,
    parse_clips,
    parse_shard,
    parse_time,
)  # fmt: skip

if TYPE_CHECKING:
    from ..config import FileOptions
    from .session import Placement

err = Console(stderr=True, highlight=False)


def report_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def report_warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


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
    help="Classify actions in videos of any length: TimeSformer, ViViT, MViT, VideoMAE, V-JEPA 2.",
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
    """Classify actions in videos of any length: TimeSformer, ViViT, MViT, VideoMAE, V-JEPA 2."""


@app.command()
def models(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Describe only these: registry names, or hub classifiers without an entry "
            "(hf:OWNER/REPO, hf:FOLDER) with the protocol vidcls would run them with."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the registry as JSON.")] = False,
    frames: FramesOpt = None,
    stride: StrideOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """List the models vidcls knows: span, frames, input size, labels, and whether cached.

    Piped, one tab-separated line per model with a header line first.
    """
    from ..network import cached_weights
    from ..output.terminal import model_cells, model_lines, models_table
    from ..registry import registry

    if names or frames is not None or stride is not None:
        from ..loading import choose_model

        chosen = [choose_model(n, None, None, offline or None, frames, stride).spec for n in names or ["timesformer"]]  # fmt: skip # noqa: E501
    else:
        chosen = list(registry().values())
    rows = []
    for spec in chosen:
        row = spec.as_dict()
        # a local folder is on disk: there is nothing to cache
        row["cached"] = not (spec.repo or spec.url) or cached_weights(spec) is not None
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif not sys.stdout.isatty():
        # a pipe gets one line per model for grep, cut and awk, not a table folded to 80 columns
        sys.stdout.write(model_lines(rows))
    else:
        console = Console()
        console.print(models_table(model_cells(rows), console))


@app.command()
def download(
    names: Annotated[
        list[str],
        typer.Argument(help="Model names (see `vidcls models`) or hub repos: hf:OWNER/REPO."),
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download models ahead of an offline run (hub models and hf:OWNER/REPO into the Hugging
    Face cache, URL models into VIDCLS_CACHE, default ~/.cache/vidcls)."""
    from ..loading import choose_model
    from ..network import fetch, verify_sha256

    specs = [choose_model(name, offline=False).spec for name in names]
    for spec in specs:
        if not spec.repo and not spec.bundled and not spec.url:
            raise UsageError(f"{spec.name} is a local folder: there is nothing to download")
        if not quiet:
            err.print(f"downloading {spec.name} from {spec.repo or spec.url or 'the package'}")
        path = fetch(spec, offline=False, progress=not quiet)
        verify_sha256(spec, path if path.is_file() else path / next(iter(spec.sha256), ""))
        sys.stdout.write(f"{spec.name}\t{path}\n")


def _placement(
    gpus: str | None, workers: int | None, ray: str | None, device: str, names: list[str]
) -> Placement:
    """Where the model runs: --gpus, --workers N, --ray [ADDRESS], or this process."""
    from ..sources import is_live
    from .session import Placement

    live = next((n for n in names if is_live(n)), None)
    if live is not None and (gpus is not None or ray is not None or (workers or 1) > 1):
        # a live source is read once, as it comes, and stopped from here (Ctrl-C)
        raise UsageError(f"{live}: a live source is read in this process: drop --gpus, --workers and --ray")  # fmt: skip # noqa: E501

    if gpus is not None and workers is not None:
        raise UsageError("--gpus and --workers do not mix: --gpus runs one worker per GPU")
    if ray is not None:  # --ray [ADDRESS]: Ray places the models itself
        from ..drivers.ray import require_ray

        if gpus is not None or workers is not None:
            raise UsageError("--ray does not mix with --gpus or --workers: Ray runs one model per GPU")  # fmt: skip # noqa: E501
        if "-" in names:
            raise UsageError("a video on stdin (-) cannot be sent to Ray; pass files")
        require_ray()
        return Placement(ray=ray)
    devices = None
    if gpus is not None:
        from ..drivers.workers import parse_gpus

        devices = tuple(parse_gpus(gpus))
    elif workers is not None and workers > 1:
        devices = (device if device != "auto" else "cpu",) * workers
    if devices and "-" in names:
        raise UsageError("a video on stdin (-) cannot be shared between workers")
    return Placement(devices=devices)


def _classify(
    options: FileOptions,
    *,
    videos: list[str] | None,
    from_list: str | None,
    recursive: bool,
    shard: str | None,
    model: str | None,
    weights: str | None,
    vivit_attention: str | None,
    labels: str | None,
    frames: int | None,
    stride: int | None,
    offline: bool,
    fmt: str | None,
    as_json: bool,
    output: str | None,
    resume: bool,
    device: str,
    precision: str,
    batch_size: str,
    compile: bool,
    threads: int | None,
    gpus: str | None,
    workers: int | None,
    ray: str | None,
    quiet: bool,
    verbose: bool,
    video_id: str = "stem",
    multi_label: int = 1,
    overlay: str | None = None,
) -> None:
    """predict and segment: resolve every option once, then run the session."""
    from .. import config
    from ..loading import choose_model
    from ..sources import expand
    from .session import Destination, Session

    batch = config.parse_batch_size(batch_size)
    named = expand(videos or [], from_list, recursive)
    chosen = choose_format(fmt, as_json, output, len(named), options.mode)
    check_timeline_options(chosen, named, options.top_k, video_id, multi_label, overlay)
    if options.mode == "segment":
        # only the views that draw or threshold the curves pay for them
        terminal = chosen == "table" and output in (None, "-") and sys.stdout.isatty()
        wanted = chosen == "html" or (chosen in ("activitynet", "thumos") and multi_label > 1)
        options = dataclasses.replace(options, curves=wanted or terminal)
    destination = Destination(chosen, output, resume, video_id, multi_label, overlay)
    placement = _placement(gpus, workers, ray, device, named)
    part = parse_shard(shard)
    names = named[part[0] :: part[1]] if part else named
    choice = choose_model(model, weights, labels, offline or None, frames, stride, vivit_attention)
    session = Session(err, report_error, quiet, verbose)
    if placement.ray is not None:
        from ..drivers.ray import cluster_runtime, connect

        connect(placement.ray or None, session.say)
        resolved = cluster_runtime(device, precision, batch, compile, threads)
    else:
        on = placement.devices[0] if placement.devices else device
        resolved = config.runtime(on, precision, batch, compile, threads)
    run = config.RunConfig(choice, resolved, options)
    if session.classify(run, names, len(named), destination, placement):
        raise typer.Exit(1)


@app.command()
def predict(
    videos: Videos = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    vivit_attention: VivitAttentionOpt = None,
    frames: FramesOpt = None,
    stride: StrideOpt = None,
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
    threads: ThreadsOpt = None,
    decode_threads: DecodeThreadsOpt = None,
    resume: ResumeOpt = False,
    shard: ShardOpt = None,
    gpus: GpusOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    strict: StrictOpt = False,
    input_format: InputFormatOpt = None,
    input_option: InputOptionOpt = None,
    timeout: TimeoutOpt = None,
    reconnect: ReconnectOpt = 0,
    clock: ClockOpt = "stream",
    follow: FollowOpt = None,
    drop: DropOpt = "none",
    duration: DurationOpt = None,
    max_pixels: MaxPixelsOpt = MAX_PIXELS,
    max_duration: MaxDurationOpt = MAX_DURATION,
    decode_timeout: DecodeTimeoutOpt = DECODE_TIMEOUT,
) -> None:
    """Classify whole videos: the top-k actions, averaged over windows and crops."""
    from ..config import FileOptions

    options = FileOptions(
        mode="predict", top_k=top_k, clips=parse_clips(clips), crops=crops,
        start=parse_time(start, "--start") or 0.0, end=parse_time(end, "--end"),
        classes=parse_classes(classes), strict=strict, decode_threads=decode_threads,
        live=live_options(
            input_format, input_option, timeout, reconnect, clock, follow, drop, duration
        ),
        **limit_options(max_pixels, max_duration, decode_timeout),
    )  # fmt: skip
    _classify(
        options, videos=videos, from_list=from_list, recursive=recursive, shard=shard,
        model=model, weights=weights, vivit_attention=vivit_attention, labels=labels,
        frames=frames, stride=stride, offline=offline, fmt=fmt, as_json=as_json,
        output=output, resume=resume, device=device, precision=precision, batch_size=batch_size,
        compile=compile, threads=threads, gpus=gpus, workers=workers, ray=ray, quiet=quiet,
        verbose=verbose,
    )  # fmt: skip


@app.command()
def segment(
    videos: Videos = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    vivit_attention: VivitAttentionOpt = None,
    frames: FramesOpt = None,
    stride: StrideOpt = None,
    hop: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds between windows (default: a third of the span)."),
    ] = None,
    min_duration: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Fold segments shorter than this into their neighbours (default: span + hop when "
            "windows overlap, else the span; 0 keeps them all).",
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
    threads: ThreadsOpt = None,
    decode_threads: DecodeThreadsOpt = None,
    resume: ResumeOpt = False,
    shard: ShardOpt = None,
    gpus: GpusOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    strict: StrictOpt = False,
    video_id: Annotated[
        str,
        typer.Option(
            "--video-id", help="activitynet, thumos: a video's id is its path's stem, name or path."
        ),
    ] = "stem",
    multi_label: Annotated[
        int,
        typer.Option(
            "--multi-label",
            min=1,
            metavar="K",
            help="activitynet, thumos: the top K classes' own segments (overlapping), not the "
            "timeline's.",
        ),
    ] = 1,  # fmt: skip
    overlay: Annotated[
        str | None,
        typer.Option(
            metavar="OUT.mp4",
            help="Also write the video with the segment's label and a timeline bar drawn on it.",
        ),
    ] = None,
    input_format: InputFormatOpt = None,
    input_option: InputOptionOpt = None,
    timeout: TimeoutOpt = None,
    reconnect: ReconnectOpt = 0,
    clock: ClockOpt = "stream",
    follow: FollowOpt = None,
    drop: DropOpt = "none",
    duration: DurationOpt = None,
    max_pixels: MaxPixelsOpt = MAX_PIXELS,
    max_duration: MaxDurationOpt = MAX_DURATION,
    decode_timeout: DecodeTimeoutOpt = DECODE_TIMEOUT,
) -> None:
    """A timeline of actions: windows every --hop seconds, merged into segments."""
    from ..config import FileOptions

    options = FileOptions(
        mode="segment", top_k=top_k, crops=crops, hop=hop, min_duration=min_duration,
        start=parse_time(start, "--start") or 0.0, end=parse_time(end, "--end"),
        classes=parse_classes(classes), strict=strict, decode_threads=decode_threads,
        live=live_options(
            input_format, input_option, timeout, reconnect, clock, follow, drop, duration
        ),
        **limit_options(max_pixels, max_duration, decode_timeout),
    )  # fmt: skip
    _classify(
        options, videos=videos, from_list=from_list, recursive=recursive, shard=shard,
        model=model, weights=weights, vivit_attention=vivit_attention, labels=labels,
        frames=frames, stride=stride, offline=offline, fmt=fmt, as_json=as_json,
        output=output, resume=resume, device=device, precision=precision, batch_size=batch_size,
        compile=compile, threads=threads, gpus=gpus, workers=workers, ray=ray, quiet=quiet,
        verbose=verbose,
        video_id=video_id, multi_label=multi_label, overlay=overlay,
    )  # fmt: skip


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
    strict: StrictOpt = False,
    max_pixels: MaxPixelsOpt = MAX_PIXELS,
    max_duration: MaxDurationOpt = MAX_DURATION,
    decode_timeout: DecodeTimeoutOpt = DECODE_TIMEOUT,
    timeout: TimeoutOpt = None,
) -> None:
    """Describe videos without loading a model: container, codec, size, rotation, rate, length."""
    from ..config import check_limits
    from ..sources import expand
    from .session import probe as describe

    limits = check_limits(**limit_options(max_pixels, max_duration, decode_timeout))

    if fmt not in (None, "table", "json"):
        raise UsageError(f"probe prints a table or json, not '{fmt}'")
    names = expand(videos or [], from_list, recursive)
    as_json = as_json or fmt == "json" or (fmt is None and not sys.stdout.isatty())
    failed = describe(names, as_json, report_error, report_warning, strict, limits, timeout)
    if failed:
        raise typer.Exit(1)


@app.command("eval")
def evaluate_command(
    predictions: Annotated[
        str, typer.Argument(help="vidcls json/jsonl, ActivityNet results JSON or THUMOS lines.")
    ],
    ground_truth: Annotated[
        str,
        typer.Argument(help="ActivityNet JSON (database), a THUMOS folder, or vidcls records."),
    ],
    tiou: Annotated[
        str,
        typer.Option(help="tIoU thresholds, START:STEP:STOP or a list (THUMOS: 0.3:0.1:0.7)."),
    ] = "0.5:0.05:0.95",
    subset: Annotated[
        str | None, typer.Option(help="Only the ground truth's videos of this subset.")
    ] = None,
    video_id: Annotated[
        str,
        typer.Option("--video-id", help="How vidcls records name videos: stem, name or path."),
    ] = "stem",
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="table, json or csv (default: table on a terminal)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a timeline against annotations: AP per class and mAP at each tIoU (ActivityNet's
    protocol), the average mAP, and the share of annotated time labelled correctly."""
    from .. import evaluate as scoring

    if as_json:
        fmt = fmt or "json"
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() else "json"
    if fmt not in ("table", "json", "csv"):
        raise UsageError(f"eval prints table, json or csv, not '{fmt}'")
    style = scoring.check_style(video_id)
    thresholds = scoring.parse_tiou(tiou)
    truth = scoring.read_truth(ground_truth, subset, style)
    detections = scoring.read_predictions(predictions, style)
    report = scoring.evaluate(truth, detections, thresholds)
    if fmt == "json":
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    elif fmt == "csv":
        import csv

        from ..output.terminal import eval_rows

        rows = csv.writer(sys.stdout, lineterminator="\n")
        rows.writerows(eval_rows(report.as_dict()))
    else:
        from ..output.terminal import eval_table

        Console().print(eval_table(report.as_dict()))


def main() -> None:
    """Console-script entry point."""
    app()
