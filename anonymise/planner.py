"""Which passes each model call of one video runs: the stream's side of the compute policy.

:class:`Planner` keeps the video's :class:`~anonymise.policy.ScalePolicy` (made on the first frame:
it needs the frame size), notices scene cuts and what moved since the frame before, and returns one
frozen :class:`~anonymise.callplan.CallPlan` per model call, sized into passes
(:func:`~anonymise.callplan.call_plan`). The stream runs the plan (``FrameStream.detect``) and hands
back what the models found (:meth:`Planner.mark`, :meth:`Planner.observe`). A detector that is not
``multiscale`` gets the plain call (every pass on the whole frame) every time.
"""

from __future__ import annotations

import numpy as np

from .callplan import CallPlan, alone_imgsz, call_plan
from .config import Config, auto_imgsz
from .detections import FrameDetections
from .person_detector import PersonDetector
from .policy import ScalePolicy, moving_boxes, scene_cut, shrunk, thumbnail
from .slot import Counts


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
        """The plan of the next model call, on ``images`` (one batch), for ``detector``: the policy's
        choices (:meth:`~anonymise.policy.ScalePolicy.choose`), sized into passes for this frame size
        by the detector's own settings (:func:`anonymise.callplan.call_plan`)."""
        choices = self._choices(images, detector, config)
        height, width = images[0].shape[:2] if images else (0, 0)
        windows = detector.windows(width, height) if images and detector.multiscale else []
        return call_plan(width, height, detector.config or config, windows, **choices)

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

    def _choices(self, images: list[np.ndarray], detector: PersonDetector, config: Config) -> dict:
        """The policy's choices for this model call (see :class:`~anonymise.policy.ScalePolicy`)."""
        if not detector.multiscale or not images:
            return {}
        first = thumbnail(images[0])
        if self._scale is not None and scene_cut(self._thumbnail, first):
            self._scale.cut()
            self._counts.scene_cuts += 1
        self._thumbnail = thumbnail(images[-1]) if len(images) > 1 else first
        if self._scale is None:
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
        return self._scale.choose(len(images), self._moving)
