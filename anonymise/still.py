"""Large photos in bounded memory: detect at full size, mask and fill at a working size, compose in bands.

The per-pixel stages (masks, the motion guard's references, foreground completion, the background
and its inpainted wash) hold a dozen frame-sized arrays, several of them float: about 21 bytes of
peak working memory per pixel, so a 48 MP photo would need some 3 GB for them alone. A photo over
:data:`WORK_PIXELS` is therefore processed as two sizes:

- **detection at full size**: :class:`FullSize` hands the models the original (its tiles run in
  calls of a few at a time: ``detect.detector.PIECES_PER_CALL``), so a person is searched for at the
  same resolution as in a small photo, and the people come back scaled to the working copy;
- **masks and fill at the working size** (the photo shrunk to ``WORK_PIXELS``): the stream builds
  each person's grown, feathered mask and the fill there, as for any frame;
- **composition at full size, in bands** (:func:`compose`): the mask and the fill are enlarged one
  band of ``BAND_ROWS`` rows at a time and blended into a copy of the original, so the full-size
  work holds the photo, its copy and one band. Pixels the mask leaves at 0 are the original's, bit
  for bit; skeletons are drawn at full size. Where the working frame failed, it came back fully
  covered (fail closed) and the photo is that, enlarged (:func:`covered`); where the full-size
  composition fails, the photo is the anonymised working copy, enlarged.

The cost of the working size: mask edges are placed to within one working pixel (a few full-size
pixels, inside the feather and the margins that grow every mask), and the wash under a person is
the working copy's, enlarged.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .callplan import CallPlan, call_plan
from .detections import Detections, FrameDetections

#: photos larger than this (pixels) are masked and filled at this size (see the module docstring)
WORK_PIXELS = 4_000_000
#: full-size rows composed at a time
BAND_ROWS = 512


def work_scale(width: int, height: int) -> float:
    """Working size / full size: 1 up to :data:`WORK_PIXELS`, less beyond."""
    pixels = width * height
    return 1.0 if pixels <= WORK_PIXELS else math.sqrt(WORK_PIXELS / pixels)


def scaled(people: Detections, factor: float, shape: tuple[int, int] | None = None) -> Detections:
    """Boxes and keypoints times ``factor``; masks resized to ``shape`` (H, W) where given."""
    xyxy = people.xyxy * np.float32(factor)
    keypoints = None
    if people.keypoints is not None:
        keypoints = people.keypoints.copy()
        keypoints[..., :2] *= factor
    mask = None
    if people.mask is not None and shape is not None:
        size = (shape[1], shape[0])
        mask = np.zeros((len(people), *shape), bool)  # nobody: (0, H, W)
        for i, m in enumerate(people.mask):
            mask[i] = cv2.resize(m.view(np.uint8), size, interpolation=cv2.INTER_AREA) > 0
    return Detections(xyxy, people.confidence, people.class_id, mask, people.tracker_id, keypoints)


class FullSize:
    """A detector that, asked about the working copy of ``image``, searches ``image`` itself.

    The frame-wide searches (both passes, the deep search) run on the full-size photo and their
    people come back in working pixels; second looks on crops of the working copy (``imgsz`` given,
    or :meth:`look`) and everything else go to the wrapped detector as they are.
    """

    def __init__(self, detector, image: np.ndarray, factor: float):
        self._detector = detector
        self._image = image
        self._factor = factor

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def windows(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """No tiles at the working size: the full-size search tiles as it needs (a photo runs them all)."""
        return []

    def __call__(
        self, frames: list[np.ndarray], imgsz: int | None = None, plan: CallPlan | None = None
    ) -> list[FrameDetections]:
        if imgsz is not None:
            return self._detector(frames, imgsz)
        height, width = self._image.shape[:2]
        if plan is not None:
            # the policy's windows, crops and areas are working-copy geometry: a photo runs without
            # them, its passes sized for the full-size photo
            chosen = dict(small=plan.small, large=plan.large, deep=plan.deep)
            windows = self._detector.windows(width, height)
            plan = call_plan(width, height, self._detector.config, windows, **chosen)
        shape = frames[0].shape[:2]
        (found,) = self._detector([self._image], plan=plan)
        people = scaled(found.people, self._factor, shape)
        poses = people if found.poses is found.people else scaled(found.poses, self._factor, shape)
        tile_only = None if found.tile_only is None else found.tile_only * np.float32(self._factor)
        return [FrameDetections(people, poses, found.deep, tile_only, found.strided)] * len(frames)


def _enlarge(band: np.ndarray, rows: slice, size: tuple[int, int], work: tuple[int, int]) -> np.ndarray:
    """Rows ``rows`` of ``band`` (a working-size array) enlarged to the full ``size`` (H, W), as
    ``cv2.resize`` of the whole array would give them (the same pixel centres), computed on the
    working rows they need alone."""
    height, width = size
    fy = work[0] / height
    lo = max(int(math.floor((rows.start + 0.5) * fy - 0.5)) - 1, 0)
    hi = min(int(math.ceil((rows.stop - 0.5) * fy - 0.5)) + 2, work[0])
    ys = ((np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5) * fy - 0.5 - lo).reshape(-1, 1)
    xs = ((np.arange(width, dtype=np.float32) + 0.5) * (work[1] / width) - 0.5).reshape(1, -1)
    map_x = np.broadcast_to(xs, (rows.stop - rows.start, width)).astype(np.float32)
    map_y = np.broadcast_to(ys, (rows.stop - rows.start, width)).astype(np.float32)
    return cv2.remap(band[lo:hi], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def compose(image: np.ndarray, alpha: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``fill`` (working size) blended into ``image`` (full size, changed in place and returned)
    under ``alpha`` (working size, uint8), ``BAND_ROWS`` full-size rows at a time. Where the enlarged
    alpha is 0 the image is left as it is."""
    height = image.shape[0]
    work = alpha.shape[:2]
    for top in range(0, height, BAND_ROWS):
        rows = slice(top, min(top + BAND_ROWS, height))
        a = _enlarge(alpha, rows, image.shape[:2], work)
        if not a.any():
            continue
        band = image[rows]
        f = _enlarge(fill, rows, image.shape[:2], work)
        weight = a.astype(np.float32)[..., None] * np.float32(1 / 255)
        mixed = band.astype(np.float32) * (1 - weight) + f.astype(np.float32) * weight
        inside = a > 0
        band[inside] = np.rint(mixed[inside]).astype(np.uint8)
    return image


def covered(fill: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """The whole photo replaced (fail closed): the working-size ``fill`` enlarged, or black."""
    height, width = shape
    if fill is None:
        return np.zeros((height, width, 3), np.uint8)
    return cv2.resize(fill, (width, height), interpolation=cv2.INTER_LINEAR)
