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
            row["repo"],
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


def main() -> None:
    """Console-script entry point."""
    app()
