"""Small shape-checked containers passed between the pipeline stages (numpy arrays only)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

N_KEYPOINTS = 17  # COCO


@dataclass
class Detections:
    """People found in one frame.

    ``xyxy`` (N, 4) float32 pixel boxes, ``confidence`` (N,) float32, ``class_id`` (N,) int64,
    optional ``mask`` (N, H, W) bool aligned to the original frame, optional ``tracker_id`` (N,)
    int64, optional ``keypoints`` (N, 17, 3) float32 as x, y, confidence in frame pixels.
    Index with a boolean or integer array: ``dets[dets.confidence > 0.3]``.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    mask: np.ndarray | None = None
    tracker_id: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if self.xyxy.size == 0:
            self.xyxy = self.xyxy.reshape(0, 4)
        n = len(self.xyxy)
        _expect(self.xyxy.ndim == 2 and self.xyxy.shape[1] == 4, "xyxy", "(N, 4)", self.xyxy.shape)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        _expect(len(self.confidence) == n, "confidence", f"({n},)", self.confidence.shape)
        _expect(len(self.class_id) == n, "class_id", f"({n},)", self.class_id.shape)
        if self.mask is not None:
            self.mask = np.asarray(self.mask, dtype=bool)
            _expect(self.mask.ndim == 3 and len(self.mask) == n, "mask", f"({n}, H, W)", self.mask.shape)
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
            _expect(len(self.tracker_id) == n, "tracker_id", f"({n},)", self.tracker_id.shape)
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
            _expect(self.keypoints.shape == (n, N_KEYPOINTS, 3), "keypoints", f"({n}, {N_KEYPOINTS}, 3)", self.keypoints.shape)

    @classmethod
    def empty(cls, with_mask_shape: tuple[int, int] | None = None) -> Detections:
        mask = None if with_mask_shape is None else np.zeros((0, *with_mask_shape), dtype=bool)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), mask=mask)

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        """All detections of ``parts`` in one; masks and keypoints kept only where every part has them."""
        parts = [p for p in parts if p is not None]
        if not parts:
            return cls.empty()

        def join(name):
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        return cls(join("xyxy"), join("confidence"), join("class_id"), join("mask"), join("tracker_id"), join("keypoints"))

    def shifted(self, dx: float, dy: float) -> Detections:
        """Boxes and keypoints moved by (dx, dy), e.g. from a crop back to the frame; masks dropped."""
        xyxy = self.xyxy + np.array([dx, dy, dx, dy], np.float32)
        keypoints = None
        if self.keypoints is not None:
            keypoints = self.keypoints.copy()
            keypoints[..., 0] += dx
            keypoints[..., 1] += dy
        return Detections(xyxy, self.confidence, self.class_id, None, self.tracker_id, keypoints)

    def __getitem__(self, index) -> Detections:
        index = np.asarray(index)
        if index.ndim == 0:
            index = index.reshape(1)

        def pick(a):
            return None if a is None else a[index]

        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index],
                          pick(self.mask), pick(self.tracker_id), pick(self.keypoints))


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about a source before the first frame."""

    width: int
    height: int
    #: average frame rate as an exact fraction (29.97 is 30000/1001, never rounded to an int)
    fps: Fraction
    #: number of frames when the container says so, else ``None`` (cameras, streams, some files)
    frames: int | None = None
    #: seconds, when known
    duration: float | None = None
    has_audio: bool = False
    #: ``True`` for cameras and live streams (no end, no seeking, output as it comes)
    live: bool = False

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


def _expect(ok: bool, name: str, expected: str, got) -> None:
    if not ok:
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(got)}")
