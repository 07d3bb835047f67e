"""Small shape-checked containers passed between the pipeline stages (numpy arrays only), and
the box geometry they share (IoU, de-duplication)."""

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
            _expect(
                self.keypoints.shape == (n, N_KEYPOINTS, 3),
                "keypoints",
                f"({n}, {N_KEYPOINTS}, 3)",
                self.keypoints.shape,
            )

    @classmethod
    def empty(cls, with_mask_shape: tuple[int, int] | None = None) -> Detections:
        mask = None if with_mask_shape is None else np.zeros((0, *with_mask_shape), dtype=bool)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), mask=mask)

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        """All detections of ``parts`` in one; masks and keypoints kept only where every part that
        holds a detection has them."""
        parts = [p for p in parts if p is not None]
        if not parts:
            return cls.empty()
        parts = [p for p in parts if len(p)] or parts[:1]

        def join(name):
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        return cls(
            join("xyxy"), join("confidence"), join("class_id"), join("mask"), join("tracker_id"), join("keypoints")
        )

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

        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            pick(self.mask),
            pick(self.tracker_id),
            pick(self.keypoints),
        )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    return _overlap(a, b, "iou")


def box_ioa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) share of each box of ``b`` (M, 4) that lies inside each box of ``a`` (N, 4)."""
    return _overlap(a, b, "ioa")


def _overlap(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    a, b = np.asarray(a, np.float32).reshape(-1, 4)[:, None, :], np.asarray(b, np.float32).reshape(-1, 4)[None, :, :]
    inter = (np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2])).clip(0).prod(-1)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    union = area(b) if kind == "ioa" else area(a) + area(b) - inter
    return inter / np.maximum(union, 1e-7)


def nested(boxes: np.ndarray, inside: float = 0.7) -> np.ndarray:
    """Bool (N,): boxes lying more than ``inside`` of their area within a taller box (a part of that
    person, e.g. a fragment the enlarged pass split off someone large)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(boxes) < 2:
        return np.zeros(len(boxes), bool)
    heights = boxes[:, 3] - boxes[:, 1]
    share = box_ioa(boxes, boxes)  # [i, j]: share of box j inside box i
    np.fill_diagonal(share, 0)
    return ((share > inside) & (heights[:, None] > heights[None, :])).any(axis=0)


def suppress(dets: Detections, iou: float = 0.5, inside: float = 0.7, kept: np.ndarray | None = None) -> np.ndarray:
    """Indices kept by a greedy, confidence-ordered suppression of duplicates.

    A box is dropped when it overlaps a kept one by IoU > ``iou`` or lies more than ``inside``
    of its own area within a kept one (the part of a person a tile or crop edge cut off).
    ``kept`` (K, 4): boxes already kept (never dropped), that ``dets`` are checked against too.
    """
    keep: list[int] = []
    boxes = np.asarray(kept if kept is not None else np.zeros((0, 4)), np.float32).reshape(-1, 4)
    for i in np.argsort(-dets.confidence, kind="stable"):
        box = dets.xyxy[i : i + 1]
        if len(boxes) and ((box_iou(box, boxes)[0] > iou).any() or (box_ioa(boxes, box)[:, 0] > inside).any()):
            continue
        keep.append(int(i))
        boxes = np.concatenate([boxes, box])
    return np.asarray(sorted(keep), np.int64)


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


@dataclass
class FrameDetections:
    """What the models found in one frame."""

    #: what gets masked: boxes, plus instance masks in ``seg`` mode
    people: Detections
    #: pose-model detections with ``keypoints`` (empty when pose is off)
    poses: Detections
    #: found by a deep sweep (the small search at a larger size, see :meth:`anonymise.policy.ScalePolicy.deep`)
    deep: bool = False
    #: (K, 4) boxes of the people only the small search's tiles found (no full-frame pass accounts for
    #: them: :func:`anonymise.detect.tiles.tile_only`); ``None`` where the detector does not tile
    tile_only: np.ndarray | None = None
    #: the small search skipped this frame for the stride (``ScalePolicy.stride``): the frame-scale
    #: pass alone ran, and the tracks carry the small people it cannot see to the next search
    strided: bool = False
