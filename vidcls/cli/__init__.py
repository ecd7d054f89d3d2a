"""The `vidcls` command line (console script `vidcls = vidcls.cli:main`)."""

from .app import app, main

__all__ = ["app", "main"]
