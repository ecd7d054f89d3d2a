"""Exceptions that carry their exit code; cli.main() is the one place that maps them."""

from __future__ import annotations


class VidclsError(Exception):
    """A failure to report to the user as one line, without a traceback."""

    exit_code = 1


class UsageError(VidclsError):
    """The command line asked for something that does not exist (exit 2)."""

    exit_code = 2


class UnknownModelError(UsageError):
    pass


class RegistryError(VidclsError):
    """weights.toml is malformed: names the table and the field."""


class WeightsError(VidclsError):
    """Weights are missing, corrupt, of the wrong architecture, or failed their hash."""


class VideoDecodeError(VidclsError):
    """A file is not a video PyAV can decode; the message names the file and the reason."""


class DeviceError(VidclsError):
    """The requested device or precision is not available."""
