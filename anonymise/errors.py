"""Exceptions raised by the library; the CLI turns them into one line and exit code 1."""

from __future__ import annotations


class AnonymiseError(Exception):
    """Base class of every error the library raises on purpose (bad input, missing model, ...)."""


class SourceError(AnonymiseError):
    """The input cannot be read: missing, empty, corrupt, or an unreadable camera/stream."""


class StreamBroken(SourceError):
    """A camera or stream stopped delivering in the middle (a reset, a stall): the recording so far is kept."""


class ModelError(AnonymiseError):
    """A model cannot be found, loaded, or is of the wrong kind for the command."""


class OutputError(AnonymiseError):
    """The output cannot be written: a non-writable folder, or a path equal to the input."""


class ConfigError(AnonymiseError, ValueError):
    """An option has a value outside its valid range."""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: handled like Ctrl-C (live outputs finished, unfinished files removed)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


#: decorations some libraries put around their messages (Ultralytics' emoji), removed from both ends
_DECORATION = " \t\u274c\u26a0\ufe0f"


def first_line(e: BaseException) -> str:
    """An exception in one line: its first non-empty line, without decorations; its type when it has no text."""
    text = [line for line in str(e).strip().splitlines() if line.strip()]
    line = text[0] if text else type(e).__name__
    while line and line[0] in _DECORATION:
        line = line[1:]
    while line and line[-1] in _DECORATION:
        line = line[:-1]
    return line or type(e).__name__
