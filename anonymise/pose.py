"""The COCO-17 skeleton, drawn so that motion survives without identity."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

from .colours import bgr

KEYPOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

#: limbs as pairs of keypoint indices, with a BGR colour per body part
SKELETON = (
    ((15, 13), (0, 128, 255)),
    ((13, 11), (0, 128, 255)),
    ((16, 14), (255, 128, 0)),
    ((14, 12), (255, 128, 0)),
    ((11, 12), (255, 0, 255)),
    ((5, 11), (255, 0, 255)),
    ((6, 12), (255, 0, 255)),
    ((5, 6), (255, 0, 255)),
    ((5, 7), (0, 200, 0)),
    ((7, 9), (0, 200, 0)),
    ((6, 8), (0, 200, 255)),
    ((8, 10), (0, 200, 255)),
    ((1, 2), (255, 255, 0)),
    ((0, 1), (255, 255, 0)),
    ((0, 2), (255, 255, 0)),
    ((1, 3), (255, 255, 0)),
    ((2, 4), (255, 255, 0)),
)
JOINT_COLOUR = (255, 255, 255)
#: colour of people without a track (id -1) when ``track_ids`` are given
UNTRACKED_COLOUR = (200, 200, 200)


def _palette(n: int = 24) -> tuple[tuple[int, int, int], ...]:
    """Saturated BGR colours whose hues step by the golden ratio, so that neighbouring ids differ most."""
    hsv = [((k * 0.618033988749895) % 1.0, 0.85, 1.0 if k % 2 == 0 else 0.8) for k in range(n)]
    return tuple(tuple(round(c * 255) for c in reversed(colorsys.hsv_to_rgb(*v))) for v in hsv)


#: the colour of track id ``i`` is ``TRACK_PALETTE[i % len(TRACK_PALETTE)]``: the same in every frame and run
TRACK_PALETTE = _palette()


def track_colour(track_id: int, untracked: tuple[int, int, int] = UNTRACKED_COLOUR) -> tuple[int, int, int]:
    """The stable colour of a track id; ``untracked`` for ids below 0."""
    return untracked if track_id < 0 else TRACK_PALETTE[track_id % len(TRACK_PALETTE)]


def line_thickness(shape: tuple[int, ...]) -> int:
    """Limb thickness that reads well at any frame size (2 px at 480 p, 4 px at 1080 p)."""
    return max(1, round(min(shape[:2]) / 270))


def joint_radius(shape: tuple[int, ...]) -> int:
    """Joint radius for a frame size: one more than :func:`line_thickness` (3 px at 480 p, 5 px at 1080 p)."""
    return line_thickness(shape) + 1


def draw_skeleton(
    frame: np.ndarray,
    keypoints: np.ndarray,
    conf: float = 0.3,
    thickness: int | None = None,
    *,
    track_ids: Sequence[int] | np.ndarray | None = None,
    colour: Sequence[int] | str | None = None,
    radius: int | None = None,
    show_conf: bool = False,
) -> np.ndarray:
    """A copy of ``frame`` with every person's skeleton drawn.

    ``keypoints`` is (N, 17, 3) as x, y, confidence in pixels; joints under ``conf`` and limbs
    touching them are left out. Colours: by default one per body part (``SKELETON``) with white
    joints; with ``track_ids`` (N,) each person's limbs and joints in their track's colour
    (:func:`track_colour`; untracked ids below 0 get ``colour`` or ``UNTRACKED_COLOUR``); with
    only ``colour`` (BGR or a name) everyone in it. ``thickness`` and ``radius`` default to
    sizes that scale with the frame. ``show_conf`` scales each joint's radius by its confidence
    (``radius`` is the radius at confidence 1, at least 1 px).
    """
    keypoints = np.asarray(keypoints, np.float32)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (17, 3):
        raise ValueError(f"keypoints: expected shape (N, 17, 3), got {keypoints.shape}")
    if colour is not None:
        colour = bgr(colour)
    ids = None
    if track_ids is not None:
        ids = np.asarray(track_ids).reshape(-1)
        if len(ids) != len(keypoints) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"track_ids: expected {len(keypoints)} integers, got {ids.dtype} {ids.shape}")
    out = frame.copy()
    t = thickness or line_thickness(frame.shape)
    r = radius or (joint_radius(frame.shape) if thickness is None else t + 1)
    for n, person in enumerate(keypoints):
        visible = person[:, 2] >= conf
        points = np.round(person[:, :2]).astype(np.int32)
        own = track_colour(int(ids[n]), colour or UNTRACKED_COLOUR) if ids is not None else colour
        for (i, j), limb_colour in SKELETON:
            if visible[i] and visible[j]:
                cv2.line(out, tuple(points[i]), tuple(points[j]), own or limb_colour, t, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            rk = max(1, round(r * min(float(person[k, 2]), 1.0))) if show_conf else r
            cv2.circle(out, tuple(points[k]), rk, own or JOINT_COLOUR, -1, cv2.LINE_AA)
    return out
