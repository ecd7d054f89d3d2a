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


def rebuild(kind: str, message: str) -> VidclsError:
    """The error an event names by class (events carry plain data across processes)."""
    known = {cls.__name__: cls for cls in _subclasses(VidclsError)}
    return known.get(kind, VidclsError)(message)


def _subclasses(cls: type[VidclsError]) -> list[type[VidclsError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found
