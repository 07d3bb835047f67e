"""Live sources in real time: always the newest frame, stale ones dropped (and counted), never queued.

A camera or stream delivers frames at its own rate whether or not the models keep up. Read like a
file, every frame would queue and the delay would grow without bound (and the backlog be thrown
away on stop). :class:`Newest` reads the source in a thread and holds only the newest frame:
when the pipeline is behind, the frames it had no time for are dropped, never queued. Each frame
is stamped with its **capture time** (the monotonic clock when it arrived, from the first frame,
in milliseconds), so the recording's duration is the wall time and it starts at 0.

Audio packets of a dropped frame ride on the next frame, so the audio stays whole. The audio keeps
the source's clock, anchored to the capture times: when the two part by more than
:data:`AUDIO_DRIFT` (the backlog a stream delivers at once when it opens, a stall and the burst
after it, a clock that wraps) the audio is moved to meet its video again, and what would then
overlap audio already taken is left out (stale, as the frames dropped with it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

from .video import Frame, shifted

#: the time base of capture timestamps: milliseconds
CAPTURE_TIME_BASE = Fraction(1, 1000)
#: seconds the source's clock (the audio's) may part from the capture times (the video's) before
#: the audio is moved to meet the video again: jitter stays under it, lips and voices stay within it
AUDIO_DRIFT = 0.2


class Newest:
    """Iterate ``frames`` (a live reader) in a background thread, yielding only the newest frame.

    ``dropped`` counts the frames that were replaced before the consumer took them. Exceptions
    of the reader are raised in the consumer once the frames before them are taken.
    :meth:`age` says how long ago a frame was captured.
    """

    def __init__(
        self, frames: Iterable[Frame], clock: Callable[[], float] = time.monotonic, name: str = "anonymise-live"
    ):
        self._frames = frames
        self._clock = clock
        self._cond = threading.Condition()
        self._slot: tuple[Frame, float] | None = None
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        #: frames replaced by a newer one before they were taken
        self.dropped = 0
        #: frames read from the source
        self.read = 0
        self._start: float | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        last_pts = -1
        audio = _Anchor()
        try:
            for frame in self._frames:
                now = self._clock()
                if self._start is None:
                    self._start = now
                pts = max(round((now - self._start) / CAPTURE_TIME_BASE), last_pts + 1)
                source = frame.time
                frame.pts, frame.time_base, frame.duration, last_pts = pts, CAPTURE_TIME_BASE, None, pts
                if source is not None:
                    frame.audio = audio.moved(frame.audio + frame.audio_after, source - float(pts * CAPTURE_TIME_BASE))
                    frame.audio_after = []
                with self._cond:
                    self.read += 1
                    if self._slot is not None:  # the consumer is behind: the older frame is dropped
                        self.dropped += 1
                        frame.audio = self._slot[0].audio + frame.audio
                    self._slot = (frame, now)
                    self._cond.notify()
                if self._stop.is_set():
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._slot is None and not self._done:
                    self._cond.wait(0.1)
                if self._slot is not None:
                    frame, _ = self._slot
                    self._slot = None
                elif self._error is not None:
                    error, self._error = self._error, None
                    raise error
                else:
                    return
            yield frame

    def age(self, frame: Frame) -> float:
        """Seconds since ``frame`` (one of ours) was captured."""
        return self._clock() - (self._start or 0.0) - float(frame.pts * CAPTURE_TIME_BASE)

    def close(self) -> bool:
        """Stop reading and wait for the thread (at most a few seconds); whether it stopped."""
        self._stop.set()
        with self._cond:
            self._slot = None
            self._cond.notify()
        self._thread.join(timeout=5)
        return not self._thread.is_alive()


class _Anchor:
    """Moves a live source's audio from its own clock onto the capture times of the video it comes with."""

    def __init__(self):
        self._offset: float | None = None  # seconds: source time minus capture time, as the audio is moved
        self._end: int | None = None  # where the audio taken so far ends (its time base)

    def moved(self, packets: list, offset: float) -> list:
        """``packets`` (demuxed with a frame whose source time is ``offset`` seconds past its capture time)
        moved onto the capture times; re-anchored when the offset has drifted, overlaps left out."""
        if self._offset is None or abs(offset - self._offset) > AUDIO_DRIFT:
            self._offset = offset
        kept = []
        for packet in shifted(packets, self._offset):
            if packet.pts is None:  # placed by the muxer (its dts), or restamped by a re-encode
                kept.append(packet)
                continue
            if self._end is not None and packet.pts < self._end:
                continue  # it would play over audio already taken (the backlog after a re-anchor)
            kept.append(packet)
            self._end = packet.pts + (packet.duration or 0)
        return kept
