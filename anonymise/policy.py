"""Which detection passes (and tiles) run on a frame: the people actually seen steer the cost.

The detector merges two searches (see :meth:`anonymise.detect.Detector.__call__`): the
frame-scale pass, which finds people who are large in the frame whole, and the small-person
search (the frame enlarged for ``--min-person`` people, tiles beyond 1280 px), which costs up to
four times as much. Each is needed where its kind of person is, or may appear.

:class:`ScalePolicy` keeps a running estimate of the heights of the people seen. It runs the
small search on every frame (on a window between sweeps where it does not tile, below) while
anyone small (under ``SMALL_AT_MODEL`` px at the frame-scale pass) was seen in the last ``RECENT``
frames, and the frame-scale pass on every frame while
anyone large (``LARGE_SHARE`` of the frame's height or more) was. Both run on the first
``WARMUP`` frames (and after a scene cut, :func:`scene_cut`) and in any case on every
``SWEEP_EVERY``-th frame (where the search tiles and ran on the frame before, that frame stands
for the sweep's small search: see the stride below); where the search does not tile, its sweep
comes every ``SWEEP_EVERY * stride``-th frame instead (``ScalePolicy.lapse``: the whole frame is
then its one tile, searched as often as each tile is). Between sweeps the motion
guard still looks again (at a higher resolution) at any moving region no detection explains,
a large person is still found by the small search (split into parts, every part masked and
grown to the whole body its keypoints say is there), and a person the next sweep finds is
back-filled into the frames before it (the look-ahead covers ``hold`` frames). So a still
small person who is found by the small search alone goes unseen for at most ``lapse - 1`` frames
(9 in ``balanced``), all of which the back-fill reaches when the look-ahead is at least that
deep; without look-ahead (a photo, a live source without one) every frame gets what ``thorough``
runs: both passes, the small search at ``MAX_IMGSZ``. ``SWEEP_EVERY`` is the
``balanced`` preset's period: ``thorough`` runs both passes on every frame (the small search at
``MAX_IMGSZ`` where it does not tile: :meth:`ScalePolicy.deep`), ``fast`` sweeps every 10th (see
``config.PRESETS``).

Where the small search does not tile, it runs between its sweeps on a **window** only
(:meth:`ScalePolicy.area`): the part of the frame that holds everyone found in the last ``RECENT``
frames, with room to move, and whatever moved since the frame before (:func:`moving_boxes`: someone
walking in), enlarged as the whole frame would be. The sweep frames (every ``every``-th) search the
whole frame, so a still person outside the window whom only the small search finds is unseen for at
most ``every - 1`` frames (4 in ``balanced``, 9 in ``fast``), all of which the back-fill reaches; a
window runs only where the next sweep frame will run the small search.

Where the small search tiles the frame (beyond 1280 px), it looks where people can be
(:meth:`ScalePolicy.tiles`, every preset but ``thorough``): a rotating share of the tiles, plus a
person crop around each person only the tiles found (half a tile's side, enlarged as the tiles are:
a quarter of a tile's cost; their tile where a crop cannot hold them with room to move); the motion
guard's second looks cover whatever moves unexplained, and the tracks lost. There the search costs
many frame-scale passes (docs/decisions.md, "policy.py"), so ``balanced`` runs it on every other
frame at most (``stride``, the preset's ``search_every``). The frames between get the frame-scale
pass alone (frames 1280 px and longer, which have none, get the frame at 640 px:
:func:`anonymise.detect.alone_imgsz`), and the tracks carry the small people across: each track that
pass does not see is fed on to ByteTrack along its predicted path and masked as held
(:class:`anonymise.detect.tracker.PersonTracker`, ``coast``); once the next search sees them, the
gap gets boxes and skeletons interpolated between the two sightings
(:class:`anonymise.track.TrackHistory`). The rotation counts the frames searched, so each tile is
searched at least every ``every * stride`` frames (10 in ``balanced``): a still small person no pass
has found goes unseen for at most 9 frames, all of which the back-fill reaches (the stride is 1
where the look-ahead is shorter than that).

**The budget of a call** (where the search tiles): its small search costs at most what every tile
costs, the thorough search. A crowd would exceed it with person crops, so the plan covers the same
people the cheaper way, never fewer places: a tile whose crops would cost as much as the tile
(``CROP_SHARE ** -2`` crops, four) runs whole in their place (``ScalePolicy.crowded`` counts these),
and where the tiles and crops that run would cost as much as every tile, every tile runs, without
crops. Each call is then one plan (:class:`anonymise.callplan.CallPlan`) of passes of fixed sizes.
"""

from __future__ import annotations

import numpy as np

from .config import MAX_IMGSZ, TARGET_PERSON_PX
from .detections import box_ioa, nested

#: a person this tall (px at the frame-scale pass's input) or taller is found by that pass alone
SMALL_AT_MODEL = 96
#: a person this tall (px at the small search's full-frame pass) or taller is found by that pass
#: without tiles: the height the automatic inference size is chosen for (config.TARGET_PERSON_PX)
TINY_AT_SEARCH = TARGET_PERSON_PX
#: frames after a small person was seen during which the small search runs on every frame
RECENT = 10
#: frames at the start that always get the small search
WARMUP = 3
#: the small search runs on at least every this many frames
SWEEP_EVERY = 5
#: a box lying this much inside a taller one is a part of that person (a split), not a small person
NESTED = 0.7
#: around a person only the tiles found, the tile that holds their box grown by this share of its
#: size per side (room to move until the next frame) runs; or, where no tile holds this share of it
#: (TILE_HOLDS), every tile it touches
TILE_MARGIN, TILE_HOLDS = 0.25, 0.9
#: a person at least this share of the frame's height is large: the frame-scale pass finds them whole
LARGE_SHARE = 0.4
#: where the search does not tile, between its sweeps it runs on the window holding every person
#: seen in the last ``RECENT`` frames (each box grown by ``AREA_MARGIN`` of its height per side,
#: ``AREA_ROOM`` px at least) and everything that moved since the frame before; the whole frame where
#: that window would cover more than ``AREA_SHARE`` of it (:meth:`ScalePolicy.area`)
AREA_MARGIN, AREA_ROOM, AREA_SHARE = 0.75, 24, 0.75
#: the window's sides are whole ``1 / AREA_STEPS`` shares of the frame's, half of it at least, so a
#: video's windows come in a few shapes (the runtimes compile and cache each input shape)
AREA_STEPS = 4
#: a person crop (:meth:`ScalePolicy.tiles`) is a square this share of a tile's side, enlarged as
#: the tiles are (a quarter of a tile's pixels); it holds the box grown by ``CROP_MARGIN`` of its
#: height per side (room to move for the frames until the next search), or by ``TILE_MARGIN`` at
#: least, else the person's tile runs instead
CROP_SHARE, CROP_MARGIN = 0.5, 0.5


def smallest_person(boxes: np.ndarray) -> float | None:
    """Height of the smallest box that is not mostly inside a taller one (a fragment), or ``None``."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return None
    heights = boxes[:, 3] - boxes[:, 1]
    whole = heights[~nested(boxes, NESTED)]
    return float(whole.min()) if len(whole) else float(heights.max())


#: a frame where more than this share of pixels changed by more than CUT_LEVELS is a scene cut
CUT_SHARE, CUT_LEVELS = 0.5, 40


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A 64x36 grey thumbnail, for :func:`scene_cut`."""
    import cv2

    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (64, 36), interpolation=cv2.INTER_AREA)


def scene_cut(before: np.ndarray | None, after: np.ndarray) -> bool:
    """Whether two thumbnails are of different scenes (an edit, a camera switched)."""
    if before is None or before.shape != after.shape:
        return False
    changed = np.abs(before.astype(np.int16) - after.astype(np.int16)) > CUT_LEVELS
    return bool(changed.mean() > CUT_SHARE)


#: what moved is found on the frame shrunk this many times (grey), by this many levels (of 255)
MOVING_SHRINK, MOVING_LEVELS = 4, 30
#: a change this many shrunk pixels tall or more counts (specks of noise do not); where more than
#: ``MOVING_SHARE`` of the frame changed, the whole frame counts as moving
MOVING_HEIGHT, MOVING_SHARE = 3, 0.6


def shrunk(image: np.ndarray) -> np.ndarray:
    """The frame in grey, ``MOVING_SHRINK`` times smaller, for :func:`moving_boxes`."""
    import cv2

    height, width = image.shape[:2]
    size = (max(width // MOVING_SHRINK, 1), max(height // MOVING_SHRINK, 1))
    return cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


def moving_boxes(before: np.ndarray | None, after: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes (frame pixels, for a ``width`` x ``height`` frame) around what changed between two
    :func:`shrunk` frames; the whole frame when there is no frame before, it differs in size, or
    more than ``MOVING_SHARE`` of it changed (a pan, a light switched on)."""
    import cv2

    whole = np.array([[0, 0, width, height]], np.float32)
    if before is None or before.shape != after.shape:
        return whole
    changed = cv2.absdiff(before, after) > MOVING_LEVELS
    if changed.mean() > MOVING_SHARE:
        return whole
    _, _, stats, _ = cv2.connectedComponentsWithStats(changed.view(np.uint8), connectivity=8)
    stats = stats[1:]  # 0: the unchanged rest
    stats = stats[stats[:, cv2.CC_STAT_HEIGHT] >= MOVING_HEIGHT].astype(np.float32)
    sx, sy = width / after.shape[1], height / after.shape[0]
    x, y, w, h = stats[:, 0] * sx, stats[:, 1] * sy, stats[:, 2] * sx, stats[:, 3] * sy
    return np.stack([x, y, x + w, y + h], axis=1).reshape(-1, 4)


class ScalePolicy:
    """Per video: which passes the next model call runs (see the module docstring)."""

    def __init__(
        self,
        width: int,
        height: int,
        large_imgsz: int | None,
        lookahead: int,
        every: int = SWEEP_EVERY,
        windows: list | None = None,
        search_imgsz: int | None = None,
        stride: int = 1,
    ):
        #: frame pixels -> frame-scale pass pixels; ``None``: no separate frame-scale pass (nothing to choose)
        self.scale = None if large_imgsz is None else large_imgsz / max(width, height)
        self.width, self.height = width, height
        #: sweep period: ``every`` (the preset's), or every frame when the back-fill cannot reach that far
        self.every = every if lookahead >= every else 1
        #: every pass on every frame (``thorough``, or no look-ahead: a photo, a live source with none): the
        #: small search is always deep (:meth:`deep`). Without look-ahead nothing can be back-filled, so a
        #: person only a deep sweep finds would stay visible: no second chance, so no savings
        self.always_deep = self.every <= 1
        #: between sweeps, the small search runs on every ``stride``-th frame at most (one frame per
        #: model call) while small people are seen, the frame-scale pass alone between, the tracks
        #: carrying the small people across; 1 when the back-fill cannot reach a tile's whole
        #: rotation (``every * stride`` frames)
        reach = self.every > 1 and lookahead >= every * stride
        self.stride = stride if windows and reach else 1
        #: while nobody small was seen lately, the small search's sweep comes every ``lapse`` frames:
        #: ``every``, or where the search does not tile, ``every * stride``; the whole frame is then its
        #: one tile, searched at least that often as each tile is (the rotation below)
        self.lapse = self.every * stride if reach and not windows else self.every
        #: the small search's tiles (x0, y0, x1, y1), and frame pixels -> its full-frame pass's pixels
        self.windows = list(windows or [])
        self.search_imgsz = search_imgsz or max(width, height)
        self.search_scale = self.search_imgsz / max(width, height)
        self._t = 0
        self._searched = 0  # frames the small search ran on so far (the tiles' rotation counts these)
        self._ran = -(10**9)  # the last frame the small search ran on
        self._tile_seen = [-(10**9)] * len(self.windows)  # the last frame each tile was searched
        #: side of a person crop (frame pixels; 0: no tiles), and the crops the call :meth:`tiles` planned runs
        first = self.windows[0] if self.windows else (0, 0, 0, 0)
        self.crop_side = int(min(first[2] - first[0], first[3] - first[1]) * CROP_SHARE)
        self.crops: list[tuple[int, int, int, int]] = []
        #: whether the last model call skipped the small search for the stride (the tracks carry the small people)
        self.strided = False
        self._cut = 0  # the frame of the last scene cut (the start counts as one)
        self._last = {"small": -(10**9), "large": -(10**9)}
        self._tile_only: list[tuple[int, np.ndarray]] = []  # (frame, boxes) of people only the tiles found
        self._seen: list[tuple[int, np.ndarray]] = []  # (frame, boxes) of the people found, the last RECENT frames
        #: frames that skipped each pass, and tile crops not run (for the run's summary and benchmarks)
        self.skipped = {"small": 0, "large": 0, "tiles": 0}
        #: frames whose small search ran on a window (:meth:`area`) rather than the whole frame
        self.windowed = 0
        #: tiles run in place of their person crops, over the budget (a crowd: :meth:`tiles`)
        self.crowded = 0

    def describe(self) -> dict:
        """The passes this video runs, resolved (for the redaction report): the search's size and tiles,
        the frame-scale pass's size, the sweep period and the stride between searches."""
        return {
            "search_imgsz": int(self.search_imgsz),
            "search_tiles": len(self.windows),
            "frame_pass_imgsz": round(self.scale * max(self.width, self.height)) if self.scale is not None else None,
            "sweep_every": self.every,
            "search_stride": self.stride,
            "every_pass_every_frame": self.always_deep,
        }

    def passes(self, count: int) -> tuple[bool, bool]:
        """(small search, frame-scale pass): whether the next ``count`` frames (one model call) get each."""
        t, self._t = self._t, self._t + count
        self.strided = False
        if self.scale is None or self.every <= 1:
            run = {"small": True, "large": True}
        else:
            start = t - self._cut < WARMUP
            period = {"small": self.lapse, "large": self.every}
            run = {
                kind: start or t - last <= RECENT or any((t + i) % period[kind] == 0 for i in range(count))
                for kind, last in self._last.items()
            }
            if run["small"] and t - self._cut >= WARMUP and count == 1 and t - self._ran < self.stride:
                run["small"], self.strided = False, True
            for kind, on in run.items():
                if not on:
                    self.skipped[kind] += count
        if run["small"]:
            self._searched += count
            self._ran = t + count - 1
        return run["small"], run["large"]

    def choose(self, count: int, moving: np.ndarray | None = None) -> dict:
        """What the next model call (``count`` frames) runs, as :func:`anonymise.callplan.call_plan`'s
        keywords: :meth:`passes`, and where the small search runs, :meth:`tiles` and their
        :attr:`crops`, :meth:`deep`, or :meth:`area` (``moving``: boxes of what moved since the frame before)."""
        small, large = self.passes(count)
        if not small:
            return {"small": False, "large": large}
        tiles = self.tiles(count)
        deep = self.deep(count)
        area = self.area(count, moving) if tiles is None and deep is None else None
        crops = self.crops if tiles is not None else []
        return {"small": True, "large": large, "tiles": tiles, "crops": crops, "deep": deep, "area": area}

    def tiles(self, count: int) -> list[bool] | None:
        """Which tiles the model call :meth:`passes` just planned runs (``None``: all of them).

        Every tile on the first ``WARMUP`` frames (and after a scene cut); otherwise a rotating
        ``1 / every`` share of them (tile ``j`` on the ``n``-th frame searched when ``n % every ==
        j % every``), every tile not searched for ``every * stride`` frames (where the search
        lapsed: nobody small seen lately), and, around each person only the tiles found in the
        last ``RECENT`` frames (whom the full-frame pass cannot be trusted to see) and no tile
        that runs holds, a **person crop** (:attr:`crops`: squares of ``crop_side``, newest
        sightings first, people side by side sharing one; see ``CROP_SHARE``), or where a crop
        cannot hold them with room to move, the tile that does (``TILE_MARGIN``, ``TILE_HOLDS``).
        Moving regions no detection explains, and tracks the detections lost, get their second look
        on crops in the stream (the motion guard), whatever the tiles.
        """
        self.crops = []
        if not self.windows or self.every <= 1:
            return None
        t = self._t - count
        if t - self._cut < WARMUP:
            self._tile_seen = [t + count - 1] * len(self.windows)
            return None
        period = self.every * self.stride  # each tile is searched on at least every this many frames
        searched = self._searched - count
        phases = {(searched + i) % self.every for i in range(count)}
        keep = [(j % self.every) in phases or t + count - 1 - seen >= period for j, seen in enumerate(self._tile_seen)]
        # the newest sightings first: a crop forms around where a person was last seen
        recent = [b for when, b in sorted(self._tile_only, key=lambda x: -x[0]) if t - when <= RECENT]
        if recent:
            boxes = np.concatenate(recent)
            size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1)
            grown = np.hstack([boxes[:, :2] - TILE_MARGIN * size, boxes[:, 2:] + TILE_MARGIN * size])
            inside = box_ioa(np.asarray(self.windows, np.float32), grown)  # [tile, box]: share of the box in it
            room, fits = self._crop_room(boxes)
            for share in inside.T[~fits]:
                # the tile that holds the person (with room to move) best; every tile they touch if none holds them
                for j in [int(share.argmax())] if share.max() >= TILE_HOLDS else np.flatnonzero(share > 0):
                    keep[j] = True
            held = (inside[np.flatnonzero(keep)] >= TILE_HOLDS).any(axis=0)  # a tile that runs anyway holds them
            self.crops = self._cluster(room[fits & ~held])
            crowded = self._crowded(self.crops)
            if crowded:  # over the budget: their tiles instead (never fewer places searched)
                self.crowded += len(crowded)
                for j in crowded:
                    keep[j] = True
                held = (inside[np.flatnonzero(keep)] >= TILE_HOLDS).any(axis=0)
                self.crops = self._cluster(room[fits & ~held])
            if (sum(keep) + len(self.crops) * CROP_SHARE**2) >= len(keep):
                keep, self.crops = [True] * len(keep), []  # the whole search costs no more: it runs
        self._tile_seen = [t + count - 1 if on else seen for on, seen in zip(keep, self._tile_seen)]
        self.skipped["tiles"] += count * (len(keep) - sum(keep))
        return None if all(keep) else keep

    def _crowded(self, crops: list[tuple[int, int, int, int]]) -> list[int]:
        """The tiles whose person crops cost as much as the tile (``CROP_SHARE ** -2`` of them, a crowd):
        each crop counts against the tile that holds most of it (the call's budget: module docstring)."""
        if not crops:
            return []
        home = box_ioa(np.asarray(self.windows, np.float32), np.asarray(crops, np.float32)).argmax(axis=0)
        tiles, counts = np.unique(home, return_counts=True)
        return [int(j) for j, n in zip(tiles, counts) if n * CROP_SHARE**2 >= 1]

    def _crop_room(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each box grown for a person crop (``CROP_MARGIN`` of its height per side, ``TILE_MARGIN``
        at least), and whether that fits in a crop (where not, the person's tile runs instead)."""
        side = self.crop_side
        heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1)
        margin = np.maximum(TILE_MARGIN * heights, np.minimum(CROP_MARGIN * heights, (side - heights) / 2))
        grown = np.hstack([boxes[:, :2] - margin[:, None], boxes[:, 2:] + margin[:, None]])
        return grown, (grown[:, 2:] - grown[:, :2] <= side).all(axis=1)

    def _cluster(self, rooms: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Square crop windows (x0, y0, x1, y1) of ``crop_side``, inside the frame, each holding
        one or more of ``rooms`` (grown boxes, newest first): a box joins the first crop both fit in."""
        side = self.crop_side
        unions: list[np.ndarray] = []
        for room in rooms:
            for i, union in enumerate(unions):
                joined = np.hstack([np.minimum(union[:2], room[:2]), np.maximum(union[2:], room[2:])])
                if (joined[2:] - joined[:2] <= side).all():
                    unions[i] = joined
                    break
            else:
                unions.append(np.asarray(room, np.float32))
        width, height = self.width, self.height
        crops = []
        for union in unions:
            cx, cy = (union[0] + union[2]) / 2, (union[1] + union[3]) / 2
            x0 = int(np.clip(round(cx - side / 2), 0, max(width - side, 0)))
            y0 = int(np.clip(round(cy - side / 2), 0, max(height - side, 0)))
            crops.append((x0, y0, x0 + min(side, width), y0 + min(side, height)))
        return crops

    @property
    def windowing(self) -> bool:
        """Whether :meth:`area` can give a window: the search enlarges the whole frame, with sweeps."""
        return not self.windows and self.scale is not None and self.every > 1

    def area(self, count: int, moving: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
        """The window (x0, y0, x1, y1) the small search planned by :meth:`passes` runs on, or
        ``None``: the whole frame.

        Where the search does not tile (a frame it enlarges whole), between its sweeps it looks
        where people can be: around everyone found in the last ``RECENT`` frames (grown by
        ``AREA_MARGIN`` of their height, room to move and to be found whole) and around
        ``moving`` (boxes of what changed since the frame before: someone new walking in), as one
        window of a few sizes (``AREA_STEPS``). Sweep frames (every ``every``-th, the first ``WARMUP``
        and after a scene cut) search the whole frame, and a window runs only where the next sweep
        frame runs the small search, so a still person outside the window whom only the small
        search finds is unseen for at most ``every - 1`` frames, within the back-fill's reach (the
        look-ahead is at least ``every`` deep wherever there are sweeps).
        """
        if not self.windowing or count != 1:
            return None
        t = self._t - count
        if t - self._cut < WARMUP or t % self.every == 0:
            return None
        sweep = t + self.every - t % self.every  # the next sweep frame: it must run the small search
        if sweep - self._last["small"] > RECENT and sweep % self.lapse:
            return None  # it would not (nobody small seen lately, and no lapse sweep): the whole frame now
        boxes = [b for when, b in self._seen if t - when <= RECENT]
        if moving is not None and len(moving):
            boxes.append(np.asarray(moving, np.float32).reshape(-1, 4))
        boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        if not len(boxes):
            return None  # nothing to look around: the whole frame (the search runs because someone was seen)
        room = np.maximum(AREA_MARGIN * (boxes[:, 3] - boxes[:, 1]), AREA_ROOM)[:, None]
        frame = np.array([self.width, self.height], np.int64)
        lo = np.maximum(np.floor((boxes[:, :2] - room).min(axis=0)), 0).astype(np.int64)
        hi = np.minimum(np.ceil((boxes[:, 2:] + room).max(axis=0)), frame).astype(np.int64)
        steps = np.clip(np.ceil((hi - lo) / frame * AREA_STEPS), AREA_STEPS // 2, AREA_STEPS)
        side = np.maximum(np.minimum(np.ceil(frame * steps / AREA_STEPS).astype(np.int64), frame), hi - lo)
        if side[0] * side[1] > AREA_SHARE * frame[0] * frame[1]:
            return None
        x0, y0 = np.clip(np.minimum(lo, (lo + hi - side) // 2), 0, frame - side)  # holds lo..hi: side >= hi - lo
        x1, y1 = x0 + side[0], y0 + side[1]
        self.windowed += 1
        return int(x0), int(y0), int(x1), int(y1)

    def deep(self, count: int) -> tuple[int, list[bool]] | None:
        """``(size, which frames)`` for the model call :meth:`passes` just planned when it holds a deep
        sweep frame (the whole call runs at that size; only its sweep frames count as deep), else ``None``.

        The nano models miss some people the automatic size should find, and find them at a larger
        size (docs/decisions.md, "policy.py"). Where the small search does not tile (frames up to
        640 px long), every sweep frame runs it at ``MAX_IMGSZ`` instead; what only the deep sweep
        finds the stream keeps masking until the next one, and back-fills into the frames since the
        last (see :class:`anonymise.hold.Hold`). ``thorough`` (the preset's period is 1) runs the
        small search at ``MAX_IMGSZ`` on every frame: it is the most its passes can find.
        """
        if self.windows or self.search_imgsz >= MAX_IMGSZ:
            return None
        if self.always_deep:
            return MAX_IMGSZ, [True] * count
        t = self._t - count
        which = [(t + i) % self.every == 0 for i in range(count)]
        return (MAX_IMGSZ, which) if any(which) else None

    def cut(self) -> None:
        """A scene cut before the next model call: full sweeps again for ``WARMUP`` frames, and
        what was seen before no longer says where people are."""
        self._cut = self._t
        self._ran = -(10**9)
        self._last = {kind: -(10**9) for kind in self._last}
        self._tile_only = []
        self._seen = []

    def observe(self, boxes_per_frame: list[np.ndarray], tile_only: list[np.ndarray | None] | None = None) -> None:
        """The people one model call found (boxes per frame, in frame pixels), and among them those
        only the tiles found (``tile_only``, per frame; ``None`` where the detector does not say:
        then every person too small for the full-frame pass, who is not part of a taller one)."""
        end = self._t
        tile_only = tile_only or [None] * len(boxes_per_frame)
        for i, (boxes, only) in enumerate(zip(boxes_per_frame, tile_only)):
            t = end - len(boxes_per_frame) + i
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            if len(boxes):
                self._seen.append((t, boxes))
            self._seen = [(when, b) for when, b in self._seen if t - when <= RECENT]
            if self.windows:
                if only is None:
                    heights = (boxes[:, 3] - boxes[:, 1]) * self.search_scale
                    only = boxes[(heights < TINY_AT_SEARCH) & ~nested(boxes, NESTED)]
                only = np.asarray(only, np.float32).reshape(-1, 4)
                if len(only):
                    self._tile_only.append((t, only))
                self._tile_only = [(when, b) for when, b in self._tile_only if t - when <= RECENT]
            if self.scale is None:
                continue
            height = smallest_person(boxes)
            if height is not None and height * self.scale < SMALL_AT_MODEL:
                self._last["small"] = t
            if len(boxes) and (boxes[:, 3] - boxes[:, 1]).max() >= LARGE_SHARE * self.height:
                self._last["large"] = t


#: a live source is processed at least at this rate, or its source's rate if that is lower (fps)
LIVE_TARGET_FPS = 15.0
#: seconds of processing the live policy watches before (and between) its checks
LIVE_WINDOW_S = 3.0


class LivePolicy:
    """On a live source in real time: what to do when the models cannot hold the rate.

    Process fewer frames, never search less. A live source runs the file's policy over a bounded
    look-ahead (``pipeline.LIVE_LOOKAHEAD``: sweeps, back-fill, deep sweeps and the motion guard,
    as for a file), so every frame written gets the file's privacy. When the processed rate over
    ``LIVE_WINDOW_S`` stays under 90% of ``min(source rate, LIVE_TARGET_FPS)`` and stale frames
    were dropped in that window (the models, not the source, are short), :meth:`processed` says
    so, once: the reader already drops the frames the models have no time for (``io.live.Newest``),
    so the recording has fewer frames, each one fully anonymised (why not search less instead:
    docs/decisions.md, "policy.py"). ``--preset fast`` is the user's own choice of a cheaper search.
    """

    def __init__(self, source_fps: float, clock=None):
        import time

        self.target = min(float(source_fps or LIVE_TARGET_FPS), LIVE_TARGET_FPS)
        self._clock = clock or time.monotonic
        self._start: float | None = None
        self._frames = 0
        self._dropped = 0
        #: the processed rate of the first window found short (``None``: none yet)
        self.rate: float | None = None

    def processed(self, dropped: int = 0) -> float | None:
        """One frame written (``dropped``: the stale frames dropped so far); returns the processed
        rate the first time a window is short of the target with frames dropped, else ``None``. A
        source slower than it says (nothing dropped) is not the models' fault."""
        now = self._clock()
        if self._start is None:
            self._start, self._dropped = now, dropped
            return None
        self._frames += 1
        elapsed = now - self._start
        if self.rate is not None or elapsed < LIVE_WINDOW_S:
            return None
        rate = self._frames / elapsed
        behind = dropped > self._dropped
        self._start, self._frames, self._dropped = now, 0, dropped  # the next window
        if rate >= 0.9 * self.target or not behind:
            return None
        self.rate = rate
        return rate
