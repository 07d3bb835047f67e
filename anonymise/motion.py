"""Fail-closed masking from motion: what the background model says is new, and no detection explains.

The background model knows the empty scene. A region of the frame that differs from it, moves
(differs from the previous frame too), is person-sized, and lies mostly outside every person
mask is a person the detector missed, until proven otherwise. The pipeline gives such regions a
second look at a higher resolution on a crop, and masks what stays unexplained anyway.
"""

from __future__ import annotations

import cv2
import numpy as np


def _difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel largest channel difference, uint8 (H, W)."""
    return cv2.absdiff(a, b).max(axis=2)


def unexplained_regions(
    frame: np.ndarray,
    previous: np.ndarray | None,
    reference: np.ndarray,
    seen: np.ndarray,
    alpha: np.ndarray,
    *,
    threshold: int = 30,
    min_height: int = 16,
    max_share: float = 0.5,
    explained: float = 0.5,
) -> np.ndarray:
    """Boxes (K, 4) of moving, person-sized foreground regions that the current mask does not cover.

    ``reference`` is the learned background and ``seen`` (bool) where it is known; ``alpha`` is
    the person mask so far. A region counts when its height is at least ``min_height`` pixels,
    it covers at most ``max_share`` of the frame (a lighting change is not a person), part of it
    moved since ``previous`` and less than ``explained`` of it is under ``alpha``.
    """
    if frame.shape != reference.shape:
        raise ValueError(f"frame and reference: expected equal shapes, got {frame.shape} and {reference.shape}")
    height, width = frame.shape[:2]
    fg = (_difference(frame, reference) > threshold) & seen
    if not fg.any():
        return np.zeros((0, 4), np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    fg = cv2.morphologyEx(fg.view(np.uint8), cv2.MORPH_OPEN, kernel)
    fg = cv2.dilate(fg, kernel, iterations=2)  # join a body's broken parts
    moving = _difference(frame, previous) > threshold if previous is not None else np.ones((height, width), bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    boxes = []
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if h < min_height or area < min_height * min_height / 8 or area > max_share * height * width:
            continue
        region = labels[y : y + h, x : x + w] == i
        if not moving[y : y + h, x : x + w][region].any():
            continue  # a still change (a parked car): the background will learn it
        if np.count_nonzero(alpha[y : y + h, x : x + w][region]) >= explained * np.count_nonzero(region):
            continue
        boxes.append((x, y, x + w, y + h))
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def crop_window(box: np.ndarray, shape: tuple[int, int], context: float = 1.0, minimum: int = 64) -> tuple[int, int, int, int]:
    """A square-ish window around ``box`` with ``context`` times its size on each side, in the frame."""
    x1, y1, x2, y2 = box
    side = max((x2 - x1), (y2 - y1)) * (1 + 2 * context)
    side = max(side, minimum)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    height, width = shape
    l, t = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    r, b = int(min(cx + side / 2, width)), int(min(cy + side / 2, height))
    return l, t, r, b
