"""The ``--show`` window: the anonymised frames as they are written, with an fps counter."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from .errors import OutputError


def require_display() -> None:
    """Raise :class:`OutputError` where a window cannot open (OpenCV's Qt would abort the process)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise OutputError("--show needs a display, and this session has none (no DISPLAY or WAYLAND_DISPLAY)")


class FpsMeter:
    """An fps counter drawn on the ``--show`` preview (never on the written output)."""

    def __init__(self, smoothing: float = 0.9):
        self.smoothing = smoothing
        self.fps = 0.0
        self._last: float | None = None

    def annotate(self, image: np.ndarray, extra: str = "") -> np.ndarray:
        """A copy of ``image`` with the fps (and ``extra``: a live source's latency and drops) drawn on it."""
        import cv2

        now = time.perf_counter()
        if self._last is not None and now > self._last:
            rate = 1.0 / (now - self._last)
            self.fps = rate if self.fps == 0 else self.smoothing * self.fps + (1 - self.smoothing) * rate
        self._last = now
        image = image.copy()
        text = f"{self.fps:.1f} fps" + (f", {extra}" if extra else "")
        cv2.putText(image, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2, cv2.LINE_AA)
        return image


class Viewer:
    """The ``--show`` preview window; ``show`` returns False when the user pressed q or Esc."""

    def __init__(self, title: str):
        import cv2

        require_display()
        self._cv2 = cv2
        self.title = f"anonymise: {title}"
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise OutputError(f"--show needs a display: {str(e).strip().splitlines()[-1]}") from None

    def show(self, image: np.ndarray) -> bool:
        self._cv2.imshow(self.title, image)
        return self._cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
        except self._cv2.error:
            pass
