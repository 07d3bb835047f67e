"""Exceptions raised by the library; the CLI turns them into one line and exit code 1."""

from __future__ import annotations


class AnonymiseError(Exception):
    """Base class of every error the library raises on purpose (bad input, missing model, ...)."""


class SourceError(AnonymiseError):
    """The input cannot be read: missing, empty, corrupt, or an unreadable camera/stream."""


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
