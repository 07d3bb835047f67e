"""Which passes each model call of one video runs: the stream's side of the compute policy.

:class:`Planner` keeps the video's :class:`~anonymise.policy.ScalePolicy` (made on the first frame:
it needs the frame size), notices scene cuts and what moved since the frame before, and returns one
frozen :class:`CallPlan` per model call. The stream runs the plan (``FrameStream.detect``) and hands
back what the models found (:meth:`Planner.mark`, :meth:`Planner.observe`). A detector that is not
``multiscale`` gets the plain call (every pass on the whole frame) every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import Config, auto_imgsz
from .detections import FrameDetections
from .person_detector import PersonDetector
from .policy import ScalePolicy, moving_boxes, scene_cut, shrunk, thumbnail
from .slot import Counts


@dataclass(frozen=True)
class CallPlan:
    """What one model call runs (the detector's keyword arguments, see :meth:`options`)."""

    #: the small search, and the frame-scale pass
    small: bool = True
    large: bool = True
    #: which of the small search's tiles run (``None``: all), and the person crops it runs instead of some
    tiles: list[bool] | None = None
    crops: list[tuple[int, int, int, int]] = field(default_factory=list)
    #: ``(size, which frames)``: a deep sweep, the small search at that size (see ``ScalePolicy.deep``)
    deep: tuple[int, list[bool]] | None = None
    #: the window (x0, y0, x1, y1) the small search runs on (``None``: the whole frame)
    area: tuple[int, int, int, int] | None = None

    @property
    def plain(self) -> bool:
        """Every pass on the whole frame: the detector's call without options."""
        return self.small and self.large and self.tiles is None and self.deep is None and self.area is None

    def options(self) -> dict:
        """The keyword arguments of the detector's call (where it is not :attr:`plain`)."""
        options: dict = {} if self.tiles is None else {"tiles": self.tiles}
        if self.tiles is not None and self.crops:
            options["crops"] = self.crops
        if self.deep is not None:
            options["search"] = self.deep[0]
        if self.area is not None:
            options["area"] = self.area
        return {"small": self.small, "large": self.large, **options}


class Planner:
    """One video's plans, one per model call (module docstring)."""

    def __init__(self, depth: int, counts: Counts):
        """``depth``: how far back the stream can back-fill (the sweeps may skip no more); ``counts``: the run's."""
        self._depth = depth
        self._counts = counts
        self._scale: ScalePolicy | None = None  # made on the first frame (it needs the frame size)
        self._thumbnail: np.ndarray | None = None  # of the last frame detected, for scene cuts
        self._shrunk: np.ndarray | None = None  # of the last frame detected, for what moved since (policy.area)
        self._moving: np.ndarray | None = None  # boxes of what moved into the frames of the next model call

    @property
    def lapse(self) -> int | None:
        """The most frames between two deep sweeps (``ScalePolicy.lapse``); ``None`` where there are no sweeps."""
        return self._scale.lapse if self._scale is not None else None

    def describe(self) -> dict:
        """The passes resolved for this video (:meth:`~anonymise.policy.ScalePolicy.describe`); empty before
        its first frame, or where the detector runs one pass (a single-scale model)."""
        return self._scale.describe() if self._scale is not None else {}

    def plan(self, images: list[np.ndarray], detector: PersonDetector, config: Config) -> CallPlan:
        """The plan of the next model call, on ``images`` (one batch), for ``detector``."""
        small, large = self._passes(images, detector, config)
        scale = self._scale
        if scale is None or not small:
            return CallPlan(small, large)
        tiles = scale.tiles(len(images))
        deep = scale.deep(len(images))
        area = scale.area(len(images), self._moving) if tiles is None and deep is None else None
        return CallPlan(small, large, tiles, scale.crops if tiles is not None else [], deep, area)

    def mark(self, plan: CallPlan, found: list[FrameDetections]) -> None:
        """What the call ``plan`` planned found: each frame marked deep or strided, for the stages after."""
        if plan.deep is not None:
            _, which = plan.deep
            for f, on in zip(found, which):
                f.deep = on
        if self._scale is not None and self._scale.strided:
            for f in found:
                f.strided = True

    def observe(self, found: list[FrameDetections]) -> None:
        """Where people were found: the sweeps that follow (and the run's counts of what they skipped)."""
        if self._scale is None:
            return
        self._scale.observe([f.people.xyxy for f in found], [f.tile_only for f in found])
        self._counts.small_skipped = self._scale.skipped["small"]
        self._counts.large_skipped = self._scale.skipped["large"]
        self._counts.tiles_skipped = self._scale.skipped["tiles"]
        self._counts.windowed = self._scale.windowed

    def _passes(self, images: list[np.ndarray], detector: PersonDetector, config: Config) -> tuple[bool, bool]:
        """(small search, frame-scale pass) for this model call (see :class:`~anonymise.policy.ScalePolicy`)."""
        if not detector.multiscale or not images:
            return True, True
        first = thumbnail(images[0])
        if self._scale is not None and scene_cut(self._thumbnail, first):
            self._scale.cut()
            self._counts.scene_cuts += 1
        self._thumbnail = thumbnail(images[-1]) if len(images) > 1 else first
        if self._scale is None:
            from .detect.tiles import alone_imgsz

            height, width = images[0].shape[:2]
            size = config.imgsz or auto_imgsz(width, height, config.search_min_person)
            windows = detector.windows(width, height)
            self._scale = ScalePolicy(
                width,
                height,
                alone_imgsz(width, height, size, bool(windows)),
                self._depth,
                every=config.sweep_every,
                stride=config.search_every,
                windows=windows,
                search_imgsz=size,
            )
        if self._scale.windowing:  # what moved since the frame before, for the window (ScalePolicy.area)
            now = shrunk(images[-1])
            height, width = images[-1].shape[:2]
            self._moving = moving_boxes(self._shrunk, now, width, height) if len(images) == 1 else None
            self._shrunk = now
        return self._scale.passes(len(images))
