"""Claiming an output path: one run at a time, and what an interrupted run left behind cleaned up.

Every output is written under a hidden temporary name (``.<stem>.partial-XXXXXXXX<ext>``, see
:func:`anonymise.video.partial_path`) and renamed when complete. :func:`claim` takes an advisory
lock beside the output (``.<name>.lock``, POSIX ``flock``) for as long as it is being written, so
a second run on the same output is refused instead of the last rename winning silently; and
while it holds the lock, partial files of that output can only be left by a run that was killed
(SIGKILL, power loss). A file run's partial is removed, and reported. A live recording's
(``.<stem>.live-*``, fragmented MP4: playable up to its last fragment) is **recovered**: renamed
to ``<stem>_recovered-<YYYYmmdd-HHMMSS><ext>`` (its last write time), and reported; one that holds
no frame at all is removed.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import OutputError
from .files import signals_held

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; outputs are still written atomically
    fcntl = None


#: what a run writes beside an output ``<stem><ext>`` (anonymise.sidecars, anonymise.report): keypoints,
#: the redaction report, the debug view, the snapshot folder; each written under its own hidden name
SIDECARS = (
    "{stem}.keypoints.jsonl",
    "{stem}.keypoints.csv",
    "{stem}.report.json",
    "{stem}.report.html",
    "{stem}_debug.mp4",
)


def sidecars_of(path: Path) -> list[Path]:
    """The default sidecar paths of the output ``path`` (see :data:`SIDECARS`), and the staging name
    of its default snapshot folder."""
    names = [n.format(stem=path.stem) for n in SIDECARS]
    return [*(path.with_name(name) for name in names), staging(path.with_name(f"{path.stem}_snapshots"), path)]


def staging(folder: Path, output: Path) -> Path:
    """The name the snapshots of ``output`` gather under before they move into ``folder``: its hidden
    partial (:func:`~anonymise.io.files.partial_path`) is ``.<folder>.partial-XXXX.<output stem>``, so
    runs that share a ``--snapshot-dir`` each stage, and clean up, their own."""
    return folder.with_name(f"{folder.name}.{output.stem}")


def stale_partials(path: Path, kind: str = "partial") -> list[Path]:
    """Hidden unfinished files of ``path`` in its folder: ``.<stem>.<kind>-*<ext>`` (``partial`` or ``live``)."""
    folder = path.parent
    if not folder.is_dir():
        return []
    found = set(folder.glob(f".{glob.escape(path.stem)}.{kind}-*{glob.escape(path.suffix)}"))
    if kind == "live":  # and the segments of a segmented recording: .<stem>_<start time>.live-*
        found |= set(folder.glob(f".{glob.escape(path.stem)}_*.{kind}-*{glob.escape(path.suffix)}"))
    return sorted(found)


def recover(partial: Path, path: Path) -> Path | None:
    """An interrupted live recording of ``path`` renamed to ``<stem>_recovered-<time><ext>``; ``None``
    (and removed) when it holds no frame."""
    from .video import playable_frames

    if playable_frames(partial) == 0:
        partial.unlink(missing_ok=True)
        return None
    intended = path.with_name(partial.name[1:].rsplit(".live-", 1)[0] + path.suffix)
    if intended.stem != path.stem and not intended.exists():  # a segment: its own name holds its start time
        os.replace(partial, intended)
        return intended
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(partial.stat().st_mtime))
    target = path.with_name(f"{path.stem}_recovered-{stamp}{path.suffix}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.stem}_recovered-{stamp}-{n}{path.suffix}")
    os.replace(partial, target)
    return target


def _lock(lock_path: Path, path: Path):
    """The open, locked lock file of ``path``; ``None`` where files cannot be locked.

    Raises :class:`OutputError` when another run holds it.
    """
    if fcntl is None or not path.parent.is_dir():
        return None
    try:
        handle = open(lock_path, "a")  # noqa: SIM115 - held for the whole write
    except OSError:
        return None  # a read-only folder: the write itself will report it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()  # the other run's lock file stays: it still holds it
        raise OutputError(f"another anonymise run is writing {path}; wait for it or choose another --output") from None
    return handle


@contextlib.contextmanager
def claim(path: Path, also: Iterable[Path] = ()) -> Iterator[list[Path]]:
    """Hold ``path`` for writing; yields the stale partial files it removed (already logged): its
    own, and those of its sidecars (:func:`sidecars_of`, and ``also``: a keypoint file or snapshot
    folder named by the user), a partial snapshot folder included.

    Raises :class:`OutputError` when another run holds it.
    """
    path = Path(path)
    lock_path = path.parent / f".{path.name}.lock"
    handle = None
    try:
        with signals_held():  # a signal once the lock file exists comes inside this try, which removes it
            handle = _lock(lock_path, path)
        removed = []
        owned = [path, *sidecars_of(path), *(Path(p) for p in also)]
        for stale in sorted({s for p in owned for s in stale_partials(p)}):
            try:
                if stale.is_dir() and not stale.is_symlink():  # a snapshot folder being written
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
                removed.append(stale)
            except OSError:
                continue
        if removed:
            log.warning(
                "removed %d unfinished output(s) of %s left by an interrupted run: %s",
                len(removed),
                path.name,
                ", ".join(p.name for p in removed),
            )
        for stale in stale_partials(path, "live"):
            try:
                kept = recover(stale, path)
            except OSError:
                continue
            if kept is not None:
                log.warning("recovered a live recording of %s that was interrupted: %s", path.name, kept.name)
        yield removed
    finally:
        if handle is not None:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
            handle.close()
