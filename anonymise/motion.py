"""Fail-closed masking from motion: what the background model says is new, and no detection explains.

The background model knows the empty scene. A region of the frame that differs from it, moves
(differs from the previous frame too), is person-sized, and lies mostly outside every person
mask is a person the detector missed, until proven otherwise. The pipeline gives such regions a
second look at a higher resolution on a crop, and masks what stays unexplained anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel largest channel difference, uint8 (H, W)."""
    diff = cv2.absdiff(a, b)
    if diff.ndim == 2:
        return diff
    blue, green, red = cv2.split(diff)  # OpenCV: ~40x faster than diff.max(axis=2) on uint8
    return cv2.max(cv2.max(blue, green), red)


#: a region whose changed pixels a gain and an offset per channel of the background explain (all but this
#: share of them within the threshold) changed its light, not what is there: a screen's white balance,
#: a lamp. Only where the background has texture to fit (this standard deviation, in levels, in a
#: channel at least) and the gain is a light's (LIGHT_GAINS, the bounds scene.fit_light keeps its gains
#: within too): a flat wall maps onto anything
RELIT_SHARE, RELIT_TEXTURE, LIGHT_GAINS = 0.1, 12.0, (0.6, 1.6)


@dataclass
class Regions:
    """Moving, person-sized foreground regions of one frame."""

    boxes: np.ndarray  # (K, 4) float32
    explained: np.ndarray  # (K,) bool: mostly under the person mask already
    foreground: np.ndarray  # (H, W) bool: their pixels where the background really disagrees with the frame


def moved(frame: np.ndarray, previous: np.ndarray | None, threshold: int = 30) -> np.ndarray:
    """Bool (H, W): pixels that changed since ``previous`` (all of them when there is none)."""
    if previous is None:
        return np.ones(frame.shape[:2], bool)
    return difference(frame, previous) > threshold


def moving_regions(
    frame: np.ndarray,
    moving: np.ndarray,
    reference: np.ndarray,
    seen: np.ndarray,
    alpha: np.ndarray,
    *,
    threshold: int = 30,
    min_height: int = 16,
    max_share: float = 0.5,
    explained: float = 0.5,
) -> Regions:
    """Foreground regions that move and are person-sized, and which of them a mask explains.

    ``moving`` (bool) marks the pixels that moved recently (see :func:`moved`; the pipeline
    remembers motion for a few seconds, so that a person who stops walking still counts).
    ``reference`` is the learned background and ``seen`` (bool) where it is known; ``alpha`` is
    the person mask so far. A region counts when its height is at least ``min_height`` pixels,
    it covers at most ``max_share`` of the frame (a lighting change is not a person) and part of
    it is ``moving``; it is explained when at least ``explained`` of it is under ``alpha``.
    """
    if frame.shape != reference.shape:
        raise ValueError(f"frame and reference: expected equal shapes, got {frame.shape} and {reference.shape}")
    height, width = frame.shape[:2]
    none = Regions(np.zeros((0, 4), np.float32), np.zeros(0, bool), np.zeros((height, width), bool))
    raw = (difference(frame, reference) > threshold) & seen
    if not raw.any():
        return none
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    fg = cv2.morphologyEx(raw.view(np.uint8), cv2.MORPH_OPEN, kernel)
    fg = cv2.dilate(fg, kernel, iterations=2)  # join a body's broken parts
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    boxes, flags, keep = [], [], np.zeros(count, bool)
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if h < min_height or area < min_height * min_height / 8 or area > max_share * height * width:
            continue
        region = labels[y : y + h, x : x + w] == i
        if not moving[y : y + h, x : x + w][region].any():
            continue  # a still change (a parked car): the background will learn it
        if relit(frame[y : y + h, x : x + w], reference[y : y + h, x : x + w], seen[y : y + h, x : x + w], threshold):
            continue  # its light changed (the background is relit as it learns)
        keep[i] = True
        boxes.append((x, y, x + w, y + h))
        flags.append(np.count_nonzero(alpha[y : y + h, x : x + w][region]) >= explained * np.count_nonzero(region))
    if not boxes:
        return none
    return Regions(np.asarray(boxes, np.float32), np.asarray(flags, bool), keep[labels] & raw)


def relit(frame: np.ndarray, reference: np.ndarray, seen: np.ndarray, threshold: int) -> bool:
    """Whether ``frame`` is ``reference`` under another light where ``seen``: a gain (within LIGHT_GAINS)
    and an offset per channel, fitted by least squares on a reference with texture (RELIT_TEXTURE),
    bring all but RELIT_SHARE of the pixels that differ by more than ``threshold`` within it."""
    if frame.ndim != 3 or np.count_nonzero(seen) < 64:
        return False
    x = reference[seen].astype(np.float32)
    y = frame[seen].astype(np.float32)
    changed = np.abs(y - x).max(axis=1) > threshold
    if not changed.any():
        return False
    fitted = np.empty_like(y)
    for c in range(x.shape[1]):
        xs, ys = x[:, c], y[:, c]
        spread = float(xs.std())
        if spread < RELIT_TEXTURE:
            return False
        gain = float(((xs - xs.mean()) * (ys - ys.mean())).mean()) / spread**2
        if not LIGHT_GAINS[0] <= gain <= LIGHT_GAINS[1]:
            return False
        fitted[:, c] = gain * (xs - xs.mean()) + ys.mean()
    still_off = np.abs(y - fitted).max(axis=1) > threshold
    return np.count_nonzero(still_off & changed) <= RELIT_SHARE * np.count_nonzero(changed)


def complete_foreground(
    frame: np.ndarray,
    hard: np.ndarray,
    near: np.ndarray,
    band: np.ndarray,
    reference: np.ndarray | None = None,
    known: np.ndarray | None = None,
    *,
    threshold: int = 30,
) -> np.ndarray:
    """Bool (H, W): pixels to add to a person mask, connected to it: what of the person it missed.

    ``hard`` (bool) is the person mask. Within ``near`` (bool: a reach proportional to each
    person's size), pixels that differ from the ``reference`` background where it is ``known``
    (a limb, hair, loose clothes, a carried bag, a shadow) join the mask when they touch it,
    directly or through each other. Within ``band`` (a narrower margin), pixels whose background
    is unknown (not ``known``, or no reference at all) join the same way: nothing there vouches
    that they are not the person.
    """
    if not hard.any():
        return np.zeros(hard.shape, bool)
    if reference is None or known is None:
        candidates = band.copy()
    else:
        differs = (difference(frame, reference) > threshold) & known & near
        candidates = differs | (band & ~known)
    candidates |= hard
    count, labels = cv2.connectedComponents(candidates.view(np.uint8), connectivity=8)
    touching = np.zeros(count, bool)
    touching[np.unique(labels[hard])] = True
    touching[0] = False
    return touching[labels] & ~hard


def crop_window(
    box: np.ndarray, shape: tuple[int, int], context: float = 1.0, minimum: int = 64
) -> tuple[int, int, int, int]:
    """A square-ish window around ``box`` with ``context`` times its size on each side, in the frame."""
    x1, y1, x2, y2 = box
    side = max((x2 - x1), (y2 - y1)) * (1 + 2 * context)
    side = max(side, minimum)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    height, width = shape
    left, top = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    right, bottom = int(min(cx + side / 2, width)), int(min(cy + side / 2, height))
    return left, top, right, bottom
