"""Which detection passes run on a frame: the people actually seen steer the cost.

The detector merges two searches (see :meth:`anonymise.detect.Detector.__call__`): the
frame-scale pass, which finds people who are large in the frame, and the small-person search
(the frame enlarged for ``--min-person`` people, tiles beyond 1280 px), which costs up to four
times as much. The small search is needed where small people are, or may appear.

:class:`ScalePolicy` keeps a running estimate of the heights of the people seen. It runs the
small search on every frame while anyone small (under ``SMALL_AT_MODEL`` px at the frame-scale
pass) was seen in the last ``RECENT`` frames, on the first ``WARMUP`` frames, and in any case on
every ``SWEEP_EVERY``-th frame. Between sweeps the frame-scale pass runs alone, the motion guard
still looks again (at a higher resolution) at any moving region no detection explains, and a
person the next sweep finds is back-filled into the frames before it (the look-ahead covers
``hold`` frames). So a still small person who is never detected otherwise goes unseen for at
most ``SWEEP_EVERY - 1`` frames, all of which the back-fill reaches when the look-ahead is at
least that deep; without look-ahead (live sources) the small search runs on every frame.
"""

from __future__ import annotations

import numpy as np

from .types import nested

#: a person this tall (px at the frame-scale pass's input) or taller is found by that pass alone
SMALL_AT_MODEL = 96
#: frames after a small person was seen during which the small search runs on every frame
RECENT = 10
#: frames at the start that always get the small search
WARMUP = 3
#: the small search runs on at least every this many frames
SWEEP_EVERY = 5
#: a box lying this much inside a taller one is a part of that person (a split), not a small person
NESTED = 0.7


def smallest_person(boxes: np.ndarray) -> float | None:
    """Height of the smallest box that is not mostly inside a taller one (a fragment), or ``None``."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return None
    heights = boxes[:, 3] - boxes[:, 1]
    whole = heights[~nested(boxes, NESTED)]
    return float(whole.min()) if len(whole) else float(heights.max())


class ScalePolicy:
    """Per video: whether the next frames get the small-person search (see the module docstring)."""

    def __init__(self, width: int, height: int, large_imgsz: int | None, lookahead: int, min_person: int = 32):
        #: frame pixels -> frame-scale pass pixels; ``None``: no separate frame-scale pass (nothing to choose)
        self.scale = None if large_imgsz is None else large_imgsz / max(width, height)
        self.every = SWEEP_EVERY if lookahead >= SWEEP_EVERY else 1
        self.min_person = min_person
        self._t = 0
        self._last_small = -(10**9)
        #: frames that ran the frame-scale pass alone (for the run's summary and benchmarks)
        self.skipped = 0

    def small(self, count: int) -> bool:
        """Whether the next ``count`` frames (one model call) get the small search."""
        t, self._t = self._t, self._t + count
        if self.scale is None or self.every <= 1:
            return True
        sweep = any((t + i) % self.every == 0 for i in range(count))
        if t < WARMUP or sweep or t - self._last_small <= RECENT:
            return True
        self.skipped += count
        return False

    def observe(self, boxes_per_frame: list[np.ndarray]) -> None:
        """The people one model call found (boxes per frame, in frame pixels)."""
        if self.scale is None:
            return
        end = self._t
        for i, boxes in enumerate(boxes_per_frame):
            height = smallest_person(boxes)
            if height is not None and height * self.scale < SMALL_AT_MODEL:
                self._last_small = end - len(boxes_per_frame) + i
