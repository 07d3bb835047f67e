"""A local camera through OpenCV, timestamped by the wall clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction

import cv2

from ..detections import VideoInfo
from ..errors import SourceError, StreamBroken
from .video import Frame


def _open_camera(index: int):
    """``cv2.VideoCapture(index)`` with OpenCV's log silenced: probing every backend for a camera that
    is not there prints a dozen warnings, and the caller says what went wrong in one line."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(index)
    finally:
        logging.setLogLevel(level)


class CameraReader:
    """Frames from a local camera through OpenCV, timestamped by the wall clock (1 ms units)."""

    time_base = Fraction(1, 1000)
    audio_stream = None

    def __init__(self, index: int, capture=None):
        self.index = index
        self._cap = capture if capture is not None else _open_camera(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open camera {index} (no such device, or it is busy)")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"camera {index} opened but gave no frame")
        self._first = first
        fps = self._cap.get(cv2.CAP_PROP_FPS) or 30.0
        fps = Fraction(fps).limit_denominator(1001) if 1 <= fps <= 240 else Fraction(30)
        self.info = VideoInfo(width=first.shape[1], height=first.shape[0], fps=fps, live=True)

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        image, index, last = self._first, 0, -1
        while image is not None:
            pts = max(round((time.monotonic() - start) * 1000), last + 1)
            yield Frame(image, index, pts, self.time_base)
            last, index = pts, index + 1
            ok, image = self._cap.read()
            if not ok:  # a camera does not end: it was unplugged, or its driver gave up
                raise StreamBroken(f"camera {self.index} stopped delivering frames after {index} frames")

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> CameraReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
