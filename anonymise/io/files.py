"""Writing files so that nothing is half-written: a hidden temporary name, renamed when complete.

Every output of the package (videos, images, keypoint and event files, exports' metadata) is
written to :func:`partial_path` beside its final name and moved there with one rename
(atomic on a POSIX filesystem); a failed or interrupted write removes it. A run that was
killed can leave one behind: :mod:`anonymise.io.outputs` finds and removes those.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

#: the signals a run stops on: Ctrl-C, and the SIGTERM and SIGHUP the CLI handles as it (:func:`anonymise.cli.main`)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def partial_path(path: Path, live: bool = False) -> Path:
    """A hidden temporary name beside ``path`` that keeps its extension (muxers pick by it).

    ``live``: a recording of a camera or stream (``.<stem>.live-XXXXXXXX<ext>``), written so that
    it stays playable if the process dies; the next run on that output recovers it instead of
    removing it (see :func:`anonymise.io.outputs.claim`).
    """
    path = Path(path)
    kind = "live" if live else "partial"
    return path.with_name(f".{path.stem}.{kind}-{uuid.uuid4().hex[:8]}{path.suffix}")


def publish(tmp: Path, path: Path) -> Path:
    """Move a finished temporary file onto ``path`` (one rename); remove it if that fails."""
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(path)


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """The temporary path to write ``path`` through: renamed onto it when the block ends, removed if it raises."""
    tmp = partial_path(Path(path))
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, path)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then act on the first that came.

    For a block that creates files and hands them to their owner: a signal in between would stop
    the run with a partial file that nothing removes. A second signal while held is acted on at
    once (a block stuck on a slow encoder can still be stopped). Signals reach only the main
    thread; in any other this does nothing. A signal with no Python handler (the default kills
    the process) is not held.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[tuple[int, object]] = []
    held: dict[int, object] = {}
    done = False

    def restore() -> None:
        for signum, handler in held.items():
            signal.signal(signum, handler)

    def defer(signum, frame) -> None:
        nonlocal done
        if done or came:  # after the block, or a second stop: act on it now
            done = True
            restore()
            held[signum](signum, frame)
        else:
            came.append((signum, frame))

    try:
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):
                held[signum] = handler
                signal.signal(signum, defer)
        yield
    finally:
        acted, done = done, True  # from here a signal goes straight to its handler
        restore()
        if came and not acted:
            signum, frame = came[0]
            held[signum](signum, frame)


@lru_cache(maxsize=8)
def sha256_of(path: Path) -> str:
    """The sha256 of a file (a model's weights), read in 1 MiB chunks; cached by path."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
