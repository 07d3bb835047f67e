"""A live recording cut into consecutive files, each named by its start time (``--segment``).

A camera left running for days must not be one file that any fault can spoil. With ``--segment
SECONDS`` the recording of a camera or stream is written as consecutive files of that length,
``<stem>_<YYYYmmdd-HHMMSS><ext>`` (the wall-clock time of its first frame). Each is finished and
renamed into place when the next one starts, so a fault later never touches it; the open one is
a live recording (fragmented MP4, recovered by the next run: see :mod:`anonymise.io.outputs`).
Every file starts at timestamp 0, its audio moved with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .io.video import Frame, shifted
from .threads import WriterThread


def segment_path(output: Path, when: float) -> Path:
    """``<stem>_<YYYYmmdd-HHMMSS><ext>`` beside ``output``, for a segment that starts at ``when`` (epoch s)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    path = output.with_name(f"{output.stem}_{stamp}{output.suffix}")
    n = 1
    while path.exists():
        n += 1
        path = output.with_name(f"{output.stem}_{stamp}-{n}{output.suffix}")
    return path


class Segments:
    """The sink of a segmented live recording: :meth:`put` frames in; files rotate every ``seconds``.

    ``open_writer(path)`` starts the encoder of one file. ``clock`` gives the wall-clock time
    that names a file (tests pass their own).
    """

    def __init__(
        self,
        output: Path,
        seconds: float,
        open_writer: Callable[[Path], WriterThread],
        clock=time.time,
        opened: Callable[[Path, float], None] | None = None,
    ):
        """``opened(path, start)``: called when a file begins (``start``: its first frame's time in
        the recording), so the sidecars can begin theirs (the keypoints of each segment)."""
        self.output, self.seconds = Path(output), float(seconds)
        self._open, self._clock = open_writer, clock
        self.opened = opened
        self._sink: WriterThread | None = None
        self._first: float | None = None  # the open segment's first frame (seconds of the recording)
        #: the files finished so far, in order
        self.finished: list[Path] = []

    def put(self, frame: Frame, image: np.ndarray) -> None:
        t = frame.time or 0.0
        # the caller holds stop signals across put (the pipeline does, see io.files.signals_held): a stop
        # then comes once the last file is finished and the next is held with its first frame
        if self._sink is None or t - self._first >= self.seconds:
            if self._sink is not None:
                self.finished.append(self._sink.finish())
                self._sink = None
            path = segment_path(self.output, self._clock())
            self._sink = self._open(path)
            self._first = t
            if self.opened is not None:
                self.opened(path, t)
        shift = self._first
        audio, after = shifted(frame.audio, shift), shifted(frame.audio_after, shift)
        offset = round(shift / float(frame.time_base)) if frame.time_base else 0
        self._sink.put(replace(frame, pts=(frame.pts or 0) - offset, audio=audio, audio_after=after), image)

    def finish(self) -> Path | None:
        """Finish the open file; the last file written (``None`` when no frame came)."""
        if self._sink is not None:
            self.finished.append(self._sink.finish())
            self._sink = None
        return self.finished[-1] if self.finished else None

    def abort(self) -> None:
        """Stop: the open file is removed, the finished ones stay."""
        if self._sink is not None:
            self._sink.abort()
            self._sink = None
