"""What the stream, the planner, the motion guard and the pipeline may call on a detector.

:class:`PersonDetector` states it. :class:`anonymise.detect.Detector` (the models) is one. Any other
object (the library's documented "any callable taking a list of BGR frames and returning one
:class:`~anonymise.detections.FrameDetections` per frame", tests' synthetic detectors, a user's own)
comes in through :func:`person_detector`, which wraps it in :class:`Plain`: what the object has is
used, and what it lacks gets the plain answer (one pass on the whole frame, second looks through its
call, no settings to report). That is the one place a detector's members are looked up by name; past
it every stage calls the protocol.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import numpy as np

from .callplan import CallPlan
from .config import Config
from .detections import Detections, FrameDetections

Window = tuple[int, int, int, int]


@runtime_checkable
class PersonDetector(Protocol):
    """A detector, as the stages call it."""

    #: the run's settings the detector reads (``None``: it has none, so none can be changed)
    config: Config | None
    #: the device the models run on (``cpu``, ``cuda:0``, ``mps``): the background follows it
    device: str
    #: frames per model call (``None``: the config's, else 1)
    batch: int | None
    #: whether the call takes a :class:`~anonymise.callplan.CallPlan` (some passes only, on windows)
    multiscale: bool
    #: seconds spent so far on one-off work inside its calls (an int8 calibration): a run's speed is
    #: also reported without it
    one_off_seconds: float

    def __call__(
        self, frames: list[np.ndarray], imgsz: int | None = None, plan: CallPlan | None = None
    ) -> list[FrameDetections]:
        """People in each frame: the passes ``plan`` says (``None``: every pass), or one pass at ``imgsz``."""
        ...

    def look(self, crops: list[np.ndarray], imgsz: int) -> list[Detections]:
        """People on each crop at ``imgsz`` (the motion guard's second look)."""
        ...

    def look_shares_models(self) -> bool:
        """Whether :meth:`look` runs on the models the calls use (then the two are serialised)."""
        ...

    def windows(self, width: int, height: int) -> list[Window]:
        """The small search's tiles for frames of this size (``[]``: it does not tile)."""
        ...

    def resolved(self) -> dict:
        """What the detector runs on, as chosen (the report's settings); ``{}`` where nothing was."""
        ...

    def calibrations_stopped(self) -> AbstractContextManager:
        """A block during which no int8 calibration runs (a run that ends waits in it)."""
        ...


class Plain:
    """Any callable as a :class:`PersonDetector` (module docstring): its own members where it has them."""

    def __init__(self, call: Callable):
        self.wrapped = call
        self.config = getattr(call, "config", None)
        self.device = str(getattr(call, "device", "cpu"))
        self.batch = getattr(call, "batch", None)
        self.multiscale = bool(getattr(call, "multiscale", False))
        for name in ("look", "look_shares_models", "windows", "resolved", "calibrations_stopped"):
            own = getattr(call, name, None)
            if own is not None:
                setattr(self, name, own)

    @property
    def one_off_seconds(self) -> float:
        return float(getattr(self.wrapped, "one_off_seconds", 0.0))

    def __call__(
        self, frames: list[np.ndarray], imgsz: int | None = None, plan: CallPlan | None = None
    ) -> list[FrameDetections]:
        if imgsz is not None:
            return self.wrapped(frames, imgsz=imgsz)
        # a plan only for a callable that takes one (it says so: ``multiscale``)
        return self.wrapped(frames, plan=plan) if plan is not None and self.multiscale else self.wrapped(frames)

    def look(self, crops: list[np.ndarray], imgsz: int) -> list[Detections]:
        """Each crop through the call at ``imgsz``: its skeletons' people where it has any, else its boxes."""
        results = [self([crop], imgsz=imgsz)[0] for crop in crops]
        return [r.poses if len(r.poses) else r.people for r in results]

    def look_shares_models(self) -> bool:
        return True

    def windows(self, width: int, height: int) -> list[Window]:
        return []

    def resolved(self) -> dict:
        return {}

    def calibrations_stopped(self) -> AbstractContextManager:
        return contextlib.nullcontext()


def person_detector(detector: Callable) -> PersonDetector:
    """``detector`` as the stages call it: itself where it is a :class:`PersonDetector` already (the
    models, or a wrapper of them), else wrapped in :class:`Plain`."""
    return detector if isinstance(detector, PersonDetector) else Plain(detector)
