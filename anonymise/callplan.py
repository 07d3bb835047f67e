"""One model call's plan: which passes run, at which sizes, on which windows (a frozen value).

The compute policy (:class:`anonymise.policy.ScalePolicy`, through :class:`anonymise.planner.Planner`)
decides *what* a call searches: the small search or not, the frame-scale pass or not, which tiles,
which person crops, a deep sweep, a window. :func:`call_plan` turns that into the :class:`Pass` es a
detector runs, each with its inference size and its windows, so the detector executes a plan and
plans nothing (:meth:`anonymise.detect.Detector.__call__`). The sizes are decided here alone:

- the **small search** at ``--imgsz``, or the size that shows ``--min-person`` people
  ``TARGET_PERSON_PX`` tall (:func:`anonymise.config.auto_imgsz`); on a **window** (the policy's area)
  enlarged as the whole frame would be; a **deep sweep** at its own size;
- the **frame-scale pass** at the frame's own size, at most ``MIN_IMGSZ`` (:func:`large_imgsz`), or
  alone where the policy skipped the small search (:func:`alone_imgsz`);
- the **tiles** each at the size that shows ``--min-person`` people as the search would, and the
  **person crops** enlarged as the tiles are.

Each kind of pass comes in one size a video, and windows of one shape (tiles, crops) or a few
(the area's ``AREA_STEPS``), so the runtimes compile few input shapes.

The merge is the detector's, in the order of :attr:`CallPlan.passes`: the passes over the whole
frame (or the area) first, then the tiles and crops, whose people no whole-frame pass accounts for
are the call's ``tile_only`` (see :func:`anonymise.detect.tiles.tile_only`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .config import MIN_IMGSZ, Config, auto_imgsz

Window = tuple[int, int, int, int]


class Kind(str, Enum):
    """What a pass is for (the order they merge in: :attr:`CallPlan.passes`)."""

    #: the small search's full-frame pass (a deep sweep's too)
    SEARCH = "search"
    #: the small search's full-frame pass on a window of the frame only (the policy's area)
    AREA = "area"
    #: the frame-scale pass, beside the small search
    FRAME = "frame"
    #: the frame-scale pass alone (the policy skipped the small search): the call's one pass
    ALONE = "alone"
    #: the small search's tiles that run
    TILES = "tiles"
    #: person crops around people only the tiles found, enlarged as the tiles are
    CROPS = "crops"


#: the passes whose people are the full-frame passes' (:func:`anonymise.detect.tiles.tile_only`)
WIDE = (Kind.SEARCH, Kind.AREA, Kind.FRAME, Kind.ALONE)


@dataclass(frozen=True)
class Pass:
    """The model at ``imgsz`` on each frame whole (``windows`` ``None``), or on each of ``windows``."""

    kind: Kind
    imgsz: int
    windows: tuple[Window, ...] | None = None

    @property
    def pieces(self) -> int:
        """Model inputs per frame."""
        return 1 if self.windows is None else len(self.windows)


@dataclass(frozen=True)
class CallPlan:
    """What one model call runs: the policy's choices, and the passes they come to (:func:`call_plan`)."""

    #: the small search, and the frame-scale pass
    small: bool = True
    large: bool = True
    #: which of the small search's tiles run (``None``: all), and the person crops it runs beside them
    tiles: tuple[bool, ...] | None = None
    crops: tuple[Window, ...] = ()
    #: ``(size, which frames)``: a deep sweep, the small search at that size (see ``ScalePolicy.deep``)
    deep: tuple[int, tuple[bool, ...]] | None = None
    #: the window (x0, y0, x1, y1) the small search runs on (``None``: the whole frame)
    area: Window | None = None
    #: the passes the detector runs, in merge order (empty: the plan was not sized, see :func:`call_plan`)
    passes: tuple[Pass, ...] = field(default=())

    @property
    def search(self) -> int | None:
        """The deep sweep's size (``None``: no deep sweep)."""
        return None if self.deep is None else self.deep[0]

    @property
    def tiled(self) -> bool:
        """Whether the small search tiles in this call (then the detector says who only the tiles found)."""
        return any(p.kind is Kind.TILES for p in self.passes)

    def pieces(self) -> int:
        """Model inputs per frame, all passes together."""
        return sum(p.pieces for p in self.passes)


def call_plan(
    width: int,
    height: int,
    config: Config | None,
    windows: list[Window] | tuple[Window, ...] = (),
    *,
    small: bool = True,
    large: bool = True,
    tiles: list[bool] | tuple[bool, ...] | None = None,
    crops: list[Window] | tuple[Window, ...] = (),
    deep: tuple[int, list[bool] | tuple[bool, ...]] | None = None,
    area: Window | None = None,
) -> CallPlan:
    """The plan of a call on frames of ``width`` x ``height``: the policy's choices (keywords; the
    defaults are every pass on the whole frame) sized into passes (module docstring).

    ``config``: its ``imgsz`` and ``search_min_person`` (``None``: the defaults); ``windows``: the
    small search's tiles for this frame size (the detector's, ``[]``: it does not tile).
    """
    config = config or Config()
    min_person = config.search_min_person
    size = config.imgsz or auto_imgsz(width, height, min_person)
    windows = tuple(tuple(int(v) for v in w) for w in windows)
    tiles = None if tiles is None else tuple(bool(t) for t in tiles)
    crops = tuple(tuple(int(v) for v in c) for c in crops) if tiles is not None else ()
    deep = None if deep is None else (int(deep[0]), tuple(bool(d) for d in deep[1]))
    choices = dict(small=small, large=large, tiles=tiles, crops=crops, deep=deep, area=area)
    alone = alone_imgsz(width, height, size, bool(windows))
    if not small and alone:
        return CallPlan(**choices, passes=(Pass(Kind.ALONE, alone),))
    passes = []
    if area is not None and deep is None:
        x0, y0, x1, y1 = area
        passes.append(Pass(Kind.AREA, enlarged(max(x1 - x0, y1 - y0), size / max(width, height)), (area,)))
    else:
        passes.append(Pass(Kind.SEARCH, deep[0] if deep is not None else size))
    frame_size = large_imgsz(width, height, size) if large else None
    if frame_size:
        passes.append(Pass(Kind.FRAME, frame_size))
    if windows:
        tile_w, tile_h = windows[0][2] - windows[0][0], windows[0][3] - windows[0][1]
        tile_imgsz = auto_imgsz(tile_w, tile_h, min_person)  # --imgsz is the full-frame pass's
        running = windows if tiles is None else tuple(w for w, keep in zip(windows, tiles) if keep)
        passes.append(Pass(Kind.TILES, tile_imgsz, running))
        if crops:  # enlarged as the tiles are, to a multiple of 32
            passes.append(Pass(Kind.CROPS, enlarged(crops[0][2] - crops[0][0], tile_imgsz / tile_w), crops))
    return CallPlan(**choices, passes=tuple(passes))


def choices(plan: CallPlan | None) -> dict:
    """The policy's choices in ``plan`` as :func:`call_plan`'s keywords (``{}``: none, every pass)."""
    if plan is None:
        return {}
    return dict(small=plan.small, large=plan.large, tiles=plan.tiles, crops=plan.crops, deep=plan.deep, area=plan.area)


def large_imgsz(width: int, height: int, size: int) -> int | None:
    """Inference size of the frame-scale pass, or ``None`` when the main pass (``size``) does not enlarge the frame.

    The frame at its own size (a multiple of 32), at most ``MIN_IMGSZ``: nano models are trained
    at 640 px, where a person who fills the frame is found whole; enlarged 2x they often split
    such a person into partial boxes (head to thigh, plus fragments).
    """
    long_side = max(width, height)
    if size <= long_side:
        return None
    return min(int(np.ceil(long_side / 32) * 32), MIN_IMGSZ)


def alone_imgsz(width: int, height: int, size: int, tiled: bool) -> int | None:
    """Inference size of the frame-scale pass when it runs alone (the policy skipped the small search).

    :func:`large_imgsz`, or where the small search tiles a frame it does not enlarge (1280 px
    long and more, where there is no separate frame-scale pass), the frame at ``MIN_IMGSZ``.
    """
    return large_imgsz(width, height, size) or (MIN_IMGSZ if tiled else None)


def enlarged(side: int, scale: float) -> int:
    """The inference size of a window ``side`` px long enlarged ``scale`` times: a multiple of 32."""
    return max(32, int(np.ceil(side * scale / 32)) * 32)
