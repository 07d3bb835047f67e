"""The COCO-17 skeleton, drawn so that motion survives without identity."""

from __future__ import annotations

import cv2
import numpy as np

KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

#: limbs as pairs of keypoint indices, with a BGR colour per body part
SKELETON = (
    ((15, 13), (0, 128, 255)), ((13, 11), (0, 128, 255)), ((16, 14), (255, 128, 0)), ((14, 12), (255, 128, 0)),
    ((11, 12), (255, 0, 255)), ((5, 11), (255, 0, 255)), ((6, 12), (255, 0, 255)), ((5, 6), (255, 0, 255)),
    ((5, 7), (0, 200, 0)), ((7, 9), (0, 200, 0)), ((6, 8), (0, 200, 255)), ((8, 10), (0, 200, 255)),
    ((1, 2), (255, 255, 0)), ((0, 1), (255, 255, 0)), ((0, 2), (255, 255, 0)), ((1, 3), (255, 255, 0)), ((2, 4), (255, 255, 0)),
)  # fmt: skip
JOINT_COLOUR = (255, 255, 255)


def line_thickness(shape: tuple[int, ...]) -> int:
    """Limb thickness that reads well at any frame size (2 px at 480 p, 4 px at 1080 p)."""
    return max(1, round(min(shape[:2]) / 270))


def draw_skeleton(frame: np.ndarray, keypoints: np.ndarray, conf: float = 0.3, thickness: int | None = None) -> np.ndarray:
    """A copy of ``frame`` with every person's skeleton drawn.

    ``keypoints`` is (N, 17, 3) as x, y, confidence in pixels; joints under ``conf`` and limbs
    touching them are left out.
    """
    keypoints = np.asarray(keypoints, np.float32)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (17, 3):
        raise ValueError(f"keypoints: expected shape (N, 17, 3), got {keypoints.shape}")
    out = frame.copy()
    t = thickness or line_thickness(frame.shape)
    radius = t + 1
    for person in keypoints:
        visible = person[:, 2] >= conf
        points = np.round(person[:, :2]).astype(np.int32)
        for (i, j), colour in SKELETON:
            if visible[i] and visible[j]:
                cv2.line(out, tuple(points[i]), tuple(points[j]), colour, t, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(out, tuple(points[k]), radius, JOINT_COLOUR, -1, cv2.LINE_AA)
    return out
