"""The scale policy: the small-person search runs where small people are, and sweeps every few frames."""

from __future__ import annotations

import numpy as np
import pytest

from anonymise import Anonymiser, Config
from anonymise.callplan import CallPlan, alone_imgsz, large_imgsz
from anonymise.detect import FrameDetections
from anonymise.detections import Detections
from anonymise.io.video import Frame
from anonymise.policy import RECENT, SWEEP_EVERY, WARMUP, ScalePolicy, smallest_person


def _chosen(plan):
    """(small, large, tiles, crops, search, area): what ``plan`` (a CallPlan, ``None``: every pass) asks for."""
    plan = plan or CallPlan()
    return plan.small, plan.large, plan.tiles, plan.crops, plan.search, plan.area


def test_large_pass_runs_only_when_the_main_pass_enlarges_the_frame():
    assert large_imgsz(640, 480, 1280) == 640  # close-up: enlarged 2x for 32 px people -> a pass at its own size
    assert large_imgsz(480, 360, 960) == 480
    assert large_imgsz(768, 432, 1280) == 640  # at most 640 (the models' training size)
    assert large_imgsz(1280, 720, 1280) is None  # not enlarged: the main pass sees large people whole
    # alone (the small search skipped), a frame the search tiles but does not enlarge gets the frame at 640
    assert alone_imgsz(1280, 720, 1280, tiled=True) == 640 and alone_imgsz(1280, 720, 1280, tiled=False) is None
    assert alone_imgsz(960, 720, 1280, tiled=True) == 640 and alone_imgsz(480, 360, 960, tiled=False) == 480


def test_smallest_person_ignores_fragments_inside_a_taller_person():
    whole = [100, 0, 300, 480]
    fragments = [[120, 300, 200, 380], [150, 10, 250, 90]]
    assert smallest_person(np.array([whole, *fragments])) == 480
    assert smallest_person(np.array([whole, [400, 100, 420, 140]])) == 40  # a small person beside them
    assert smallest_person(np.zeros((0, 4))) is None


def _run(policy: ScalePolicy, frames: int, small_at=()) -> list[bool]:
    ran = []
    for t in range(frames):
        ran.append(policy.passes(1)[0])
        height = 40 if t in small_at else 400
        policy.observe([np.array([[0, 0, 100, height]], np.float32)])
    return ran


def test_only_large_people_seen_sweeps_every_k_frames():
    ran = _run(ScalePolicy(640, 480, 640, lookahead=30), 40)
    assert all(ran[:WARMUP])
    assert all(ran[t] for t in range(0, 40, SWEEP_EVERY)), "a sweep was skipped"
    assert sum(ran) < 40 // 2, "the small search ran although only large people were seen"
    gaps = np.diff(np.flatnonzero(ran))
    assert gaps.max() <= SWEEP_EVERY, "a part of the video went unsearched for longer than K frames"


def test_a_small_person_keeps_the_small_search_on():
    ran = _run(ScalePolicy(640, 480, 640, lookahead=30), 40, small_at={12})
    assert all(ran[13 : 13 + RECENT]), "the small search stopped while a small person was recent"


def test_no_skipping_without_lookahead_or_separate_large_pass():
    assert all(_run(ScalePolicy(640, 480, 640, lookahead=0), 20)), "live (no back-fill): every frame is searched"
    assert all(_run(ScalePolicy(1280, 720, None, lookahead=30), 20))


class _PassRecorder:
    """A detector that records which passes the stream asked for; sees one large person."""

    multiscale = True

    def __init__(self):
        self.calls = []
        self.batch = 1
        self.device = "cpu"

    def __call__(self, frames, imgsz=None, plan=None):
        small, large, tiles, crops, search, area = _chosen(plan)
        assert large, "a large person is around: the frame-scale pass must run"
        self.calls.append(small)
        people = Detections(np.array([[100, 0, 400, 480]], np.float32), [0.9], [0])
        return [FrameDetections(people, Detections.empty()) for _ in frames]


def test_the_stream_asks_for_the_frame_scale_pass_alone_between_sweeps():
    detector = _PassRecorder()
    anon = Anonymiser(Config(pose=False), detector=detector)
    frames = [Frame(np.full((480, 640, 3), 128, np.uint8), i) for i in range(20)]
    stream = anon.stream(lookahead=30)
    list(anon.anonymise_frames(frames, stream))
    assert len(detector.calls) == 20
    assert detector.calls.count(False) == stream.counts.small_skipped > 0
    # nobody small seen, and the search does not tile: the small search sweeps on every 10th frame
    # (SWEEP_EVERY times the default stride), after the first WARMUP frames
    lapse = SWEEP_EVERY * Config().search_every
    assert [t for t, small in enumerate(detector.calls) if small] == [*range(WARMUP), *range(lapse, 20, lapse)]


def test_without_large_people_the_frame_scale_pass_sweeps_too():
    policy = ScalePolicy(480, 360, 480, lookahead=30)
    runs = []
    for _ in range(30):
        runs.append(policy.passes(1))
        policy.observe([np.array([[0, 0, 20, 50]], np.float32)])  # a 50 px pedestrian: small, never large
    small, large = zip(*runs)
    assert all(small), "small people are around: the small search runs on every frame"
    assert all(large[t] for t in range(0, 30, SWEEP_EVERY)) and sum(large) < 15
    assert policy.skipped["large"] == 30 - sum(large)


def test_presets_set_the_sweep_and_the_small_search():
    from anonymise import ConfigError

    assert Config().preset == "balanced" and Config().sweep_every == SWEEP_EVERY
    thorough, fast = Config(preset="thorough"), Config(preset="FAST")
    assert thorough.sweep_every == 1 and all(_run(ScalePolicy(640, 480, 640, 30, every=thorough.sweep_every), 20))
    assert fast.preset == "fast" and fast.search_min_person == 48 and not fast.looks
    ran = _run(ScalePolicy(640, 480, 640, 30, every=fast.sweep_every), 40)
    assert np.diff(np.flatnonzero(ran)).max() == fast.sweep_every
    assert Config(min_person=64, preset="fast").search_min_person == 64
    import pytest

    with pytest.raises(ConfigError, match="preset must be one of thorough, balanced, fast"):
        Config(preset="quick")


# -- attention: tiles where people can be ----------------------------------------------------------------

WINDOWS = [
    (0, 0, 100, 100),
    (80, 0, 180, 100),
    (160, 0, 260, 100),
    (0, 80, 100, 180),
    (80, 80, 180, 180),
    (160, 80, 260, 180),
]


def _tile_runs(policy: ScalePolicy, frames: int, seen, crops: list | None = None) -> np.ndarray:
    """(frames, tiles) bool: which tiles ran, with ``seen(t)`` -> (boxes, tile_only) observed after
    each frame; ``crops`` gets each frame's person crops."""
    runs = []
    for t in range(frames):
        policy.passes(1)
        keep = policy.tiles(1)
        runs.append([True] * len(WINDOWS) if keep is None else keep)
        if crops is not None:
            crops.append(policy.crops)
        boxes, only = seen(t)
        policy.observe([np.array(boxes, np.float32).reshape(-1, 4)], [only])
    return np.array(runs)


def _searched(box, keep, crops, margin: float = 0.0) -> bool:
    """Whether a tile that ran, or a person crop, holds ``box`` (grown by ``margin`` of its height per
    side, within the frame)."""
    x0, y0, x1, y1 = box
    m = margin * (y1 - y0)
    x0, y0, x1, y1 = max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, 260), min(y1 + m, 180)  # within WINDOWS' frame
    held = lambda w: w[0] <= x0 and w[1] <= y0 and x1 <= w[2] and y1 <= w[3]  # noqa: E731
    return any(held(w) for w, on in zip(WINDOWS, keep) if on) or any(held(c) for c in crops)


def test_each_tile_is_searched_at_least_every_k_frames_and_around_small_people_always():
    policy = ScalePolicy(1280, 720, None, lookahead=30, windows=WINDOWS, search_imgsz=1280)
    # a 30 px person in the first tile, every frame (the detector does not say who only the tiles found)
    crops = []
    runs = _tile_runs(policy, 40, lambda t: ([[20, 20, 30, 50]], None), crops)
    person = [20, 20, 30, 50]
    assert all(_searched(person, keep, c, 0.25) for keep, c in zip(runs, crops)), "a small person was not searched"
    assert not runs[WARMUP:, 0].all(), "their tile ran on every frame: a crop holds them"
    for j in range(len(WINDOWS)):
        gaps = np.diff(np.flatnonzero(runs[:, j]))
        assert gaps.max() <= SWEEP_EVERY, f"tile {j} went unsearched for {gaps.max()} frames"
    assert runs[:WARMUP].all(), "the first frames get every tile"
    assert runs[WARMUP:, 1:].mean() < 0.3, "tiles that do not hold the person ran on most frames"
    assert runs[WARMUP:].sum(axis=1).max() <= 3, "more than the rotating share and the person's tile"
    assert policy.skipped["tiles"] > 0


def test_tiles_keep_looking_only_at_the_people_only_the_tiles_found():
    found = [[20, 20, 30, 50], [170, 110, 180, 140]]  # two small people, in tiles 0 and 5
    # the full-frame pass finds both: the rotating share alone
    both = _tile_runs(ScalePolicy(1280, 720, None, 30, windows=WINDOWS, search_imgsz=1280), 30, lambda t: (found, []))
    assert (both[WARMUP:].sum(axis=1) <= 2).all() and not both[WARMUP:, 0].all()
    # only the tiles find the second: a crop (or a tile that runs anyway) holds them on every frame, tile 0
    # and the crops stop once they were last seen only by the tiles RECENT frames ago
    policy = ScalePolicy(1280, 720, None, 30, windows=WINDOWS, search_imgsz=1280)
    crops = []
    runs = _tile_runs(policy, 30, lambda t: (found, [found[1]] if t < 15 else []), crops)
    assert all(_searched(found[1], keep, c, 0.25) for keep, c in zip(runs[: 15 + RECENT + 1], crops))
    assert not runs[WARMUP:, 0].all() and not runs[WARMUP:, 5].all(), "a tile ran on every frame"
    assert not any(crops[15 + RECENT + 1 :]) and (runs[15 + RECENT + 1 :].sum(axis=1) <= 2).all()
    # a person the tiles see across a tile edge (no tile holds them with room to move): every tile they touch
    policy = ScalePolicy(1280, 720, None, 30, windows=WINDOWS, search_imgsz=1280)
    edge = [[85, 20, 100, 95]]  # in tiles 0 and 1, near tile 1's left edge and both tiles' bottom
    runs = _tile_runs(policy, 12, lambda t: (edge, edge))
    assert runs[WARMUP:, [0, 1, 3, 4]].all()


def test_people_only_the_tiles_found_get_crops_of_a_quarter_tile_instead_of_their_tiles():
    policy = ScalePolicy(260, 180, None, 30, windows=WINDOWS, search_imgsz=1280)
    assert policy.crop_side == 50  # half a tile's side: a quarter of its pixels, enlarged as the tiles are
    near = [[200, 120, 206, 136], [214, 118, 220, 134]]  # two 16 px people side by side, in tile 5
    far = [[20, 130, 26, 146]]  # one in tile 3
    edge = [[252, 170, 258, 180]]  # at the frame's corner
    tall = [[110, 20, 130, 80]]  # 60 px: grown by a quarter per side, more than a crop holds
    people = near + far + edge + tall
    for _ in range(WARMUP + 1):  # the warm-up searches every tile
        policy.passes(1)
        policy.tiles(1)
        policy.observe([np.array(people, np.float32)], [np.array(people, np.float32)])
    policy.passes(1)
    keep = policy.tiles(1)
    crops = policy.crops
    assert all(c[2] - c[0] == c[3] - c[1] == 50 for c in crops), "one crop size: one batch, one compiled shape"
    assert all(c[0] >= 0 and c[1] >= 0 and c[2] <= 260 and c[3] <= 180 for c in crops), "a crop outside the frame"
    for box in near + far + edge:
        assert _searched(box, keep, crops, 0.25), f"{box} is in no crop (nor in a tile that runs)"
    held_by_crop = [sum(_searched(b, [False] * len(WINDOWS), [c]) for b in near) for c in crops]
    assert max(held_by_crop) == 2, "two people side by side got two crops"
    assert len(crops) <= 3
    # the tall person: the tile that holds them with room to move (tile 1) runs instead
    assert _searched(tall[0], keep, [], 0.25) and not _searched(tall[0], [False] * len(WINDOWS), crops)


def test_where_the_search_tiles_it_runs_on_every_other_frame_and_each_tile_within_its_rotation():
    policy = ScalePolicy(1280, 720, 640, lookahead=30, windows=WINDOWS, search_imgsz=1280, stride=2)
    small, strided, runs = [], [], []
    for _ in range(60):
        ran = policy.passes(1)[0]
        small.append(ran)
        strided.append(policy.strided)
        keep = policy.tiles(1) if ran else [False] * len(WINDOWS)
        runs.append([True] * len(WINDOWS) if keep is None else keep)
        # a small person (15 px at the frame-scale pass) the full-frame pass sees: the small search stays on
        policy.observe([np.array([[20, 20, 30, 50]], np.float32)], [np.zeros((0, 4), np.float32)])
    small, strided, runs = np.array(small), np.array(strided), np.array(runs)
    assert small[:WARMUP].all() and (strided == ~small).all()
    assert np.diff(np.flatnonzero(small)).max() == 2 and small[WARMUP:].mean() <= 0.55
    for j in range(len(WINDOWS)):
        gaps = np.diff(np.flatnonzero(runs[:, j]))
        assert gaps.max() <= SWEEP_EVERY * 2, f"tile {j} went unsearched for {gaps.max()} frames"
    assert runs[WARMUP:].sum() < runs[WARMUP:].size / 5
    # no stride where the search does not tile (it costs a few frame-scale passes there), nor where the
    # back-fill cannot reach a tile's whole rotation
    assert ScalePolicy(480, 360, 480, 30, search_imgsz=960, stride=2).stride == 1
    assert ScalePolicy(1280, 720, 640, 8, windows=WINDOWS, search_imgsz=1280, stride=2).stride == 1
    assert Config().search_every == 2 and Config(preset="thorough").search_every == 1


class _TiledWalker:
    """Six tiles over a 260x180 frame; the 20 px magenta walker is found (with a skeleton) only by
    the small search's tiles, as the nano models find the crowd's people."""

    multiscale = True

    def __init__(self):
        self.batch, self.device = 1, "cpu"
        self.small = []  # per model call: whether the small search ran
        self.found_at = []  # the calls that found the walker

    def windows(self, width, height):
        return WINDOWS

    def __call__(self, frames, imgsz=None, plan=None):
        small, large, tiles, crops, search, area = _chosen(plan)
        from conftest import is_person_colour

        self.small.append(small and imgsz is None)
        out = []
        for frame in frames:
            hit = is_person_colour(frame, 10)
            seen = np.zeros_like(hit)
            if small and imgsz is None:
                for (x0, y0, x1, y1), keep in zip(WINDOWS, [True] * len(WINDOWS) if tiles is None else tiles):
                    seen[y0:y1, x0:x1] |= keep
                for x0, y0, x1, y1 in crops:
                    seen[y0:y1, x0:x1] = True
            found = _found(hit & seen)
            if len(found.people):
                self.found_at.append(len(self.small) - 1)
                found = _with_skeleton(found)
            out.append(found)
        return out


def test_between_searches_the_tracks_carry_a_small_walker_masked_and_with_a_skeleton():
    from conftest import MAGENTA, is_person_colour, scene

    bg = scene(180, 260)
    frames = []
    for t in range(34):
        image = bg.copy()
        x = 170 + 2 * (t - 8)  # walks on at frame 8 (a search, after the warm-up) through tile 5, far from anything
        if t >= 8:
            image[120:140, x : x + 8] = MAGENTA
        frames.append(image)
    detector = _TiledWalker()
    anon = Anonymiser(Config(fail_closed=False), detector=detector)
    stream = anon.stream(lookahead=30)
    out = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream))
    strided = [t for t, small in enumerate(detector.small) if not small]
    assert len(strided) >= 12 and stream.counts.small_skipped == len(strided), "the small search ran on every frame"
    for t, result in enumerate(out):
        assert not is_person_colour(result.image).any(), f"frame {t}: the walker is visible"
    # one frame old when the first strided frame comes, the track is carried on (not dropped): it
    # is back-filled along its motion, and every later strided frame gets the skeleton interpolated
    # between the searches around it (ByteTrack names a track on its second frame: the strided frame
    # right after the first sighting has no skeleton)
    first = detector.found_at[0]
    assert first <= 8 + 2 * SWEEP_EVERY, "the walker's tile was not searched within its rotation"
    for t in [t for t in strided if t > first + 1][:-1]:  # the last has no search after it, within the clip
        poses = out[t].poses
        assert len(poses) == 1 and poses.tracker_id[0] >= 0, f"strided frame {t}: no skeleton"
        assert abs(poses.keypoints[0, 0, 0] - (174 + 2 * (t - 8))) <= 1.5, f"frame {t}: the skeleton is elsewhere"


class _TiledScene:
    """A synthetic detector with six tiles: finds the magenta person only in the tiles it runs."""

    multiscale = True

    def __init__(self):
        self.batch, self.device = 1, "cpu"

    def windows(self, width, height):
        return WINDOWS

    def __call__(self, frames, imgsz=None, plan=None):
        small, large, tiles, crops, search, area = _chosen(plan)
        from conftest import is_person_colour

        out = []
        for frame in frames:
            hit = is_person_colour(frame, 10)
            if not small or imgsz is not None:
                hit[:] = False  # tiny: only the small search's tiles (and crops) see them
            else:
                seen = np.zeros_like(hit)
                for (x0, y0, x1, y1), keep in zip(WINDOWS, [True] * len(WINDOWS) if tiles is None else tiles):
                    if keep:
                        seen[y0:y1, x0:x1] = True
                for x0, y0, x1, y1 in crops:
                    seen[y0:y1, x0:x1] = True
                hit &= seen
            out.append(_found(hit))
        return out


def _found(hit: np.ndarray) -> FrameDetections:
    """The box around the ``hit`` pixels as one person (nobody when there are none)."""
    if not hit.any():
        return FrameDetections(Detections.empty(), Detections.empty())
    ys, xs = np.nonzero(hit)
    box = Detections(np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32), [0.9], [0])
    return FrameDetections(box, Detections.empty())


def _with_skeleton(found: FrameDetections) -> FrameDetections:
    """``found``'s one person as the pose model gives them: a vertical skeleton down the box's middle."""
    ((x0, y0, x1, y1),) = found.people.xyxy
    points = np.zeros((1, 17, 3), np.float32)
    points[0, :, 0], points[0, :, 1], points[0, :, 2] = (x0 + x1) / 2, np.linspace(y0, y1, 17), 0.9
    found.people.keypoints = points
    return FrameDetections(found.people, found.people)


def test_a_small_still_person_far_from_everyone_is_found_within_k_frames_and_back_filled():
    from conftest import MAGENTA, is_person_colour, scene

    bg = scene(180, 260)
    person = bg.copy()
    # appears at frame 7 in tile 5, far from anything, and stands still; 20 px tall, under TINY_AT_SEARCH
    # at the small search's scale (x2.5), so only the tiles find them
    person[120:140, 200:208] = MAGENTA
    frames = [bg] * 7 + [person] * 25
    # --preset fast: a rotating tenth of the tiles, and where people can be; no motion guard: the tiles
    # alone must find them
    anon = Anonymiser(Config(pose=False, fail_closed=False, preset="fast"), detector=_TiledScene())
    stream = anon.stream(lookahead=30)
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    assert stream.counts.tiles_skipped > 0
    for i, o in enumerate(out):
        assert not is_person_colour(o).any(), f"frame {i}: the small person is visible"
    # balanced (the default): the same, with a rotating fifth of the tiles; found within 5 frames, the
    # person is then searched for on every frame (only the tiles see them) and back-filled
    anon = Anonymiser(Config(pose=False, fail_closed=False), detector=_TiledScene())
    balanced = anon.stream(lookahead=30)
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), balanced)]
    for i, o in enumerate(out):
        assert not is_person_colour(o).any(), f"balanced, frame {i}: the small person is visible"


class _Untiled:
    """A synthetic multiscale detector whose small search does not tile; ``calls`` records each call."""

    multiscale = True

    def __init__(self):
        self.batch, self.device = 1, "cpu"
        self.calls = []

    def windows(self, width, height):
        return []

    @staticmethod
    def within(hit, area):
        """``hit`` (bool H x W) where the small search ran: the window ``area`` (``None``: everywhere)."""
        if area is None:
            return hit
        x0, y0, x1, y1 = area
        inside = np.zeros_like(hit)
        inside[y0:y1, x0:x1] = hit[y0:y1, x0:x1]
        return inside


class _CloseUp(_Untiled):
    """A large person the frame-scale pass finds, and the magenta person only the small search finds;
    ``calls``: whether each call ran the small search."""

    def __call__(self, frames, imgsz=None, plan=None):
        small, large, tiles, crops, search, area = _chosen(plan)
        from conftest import is_person_colour

        searched = small and imgsz is None  # not the frame-scale pass alone, nor a second look (deep or not)
        self.calls.append(searched)
        out = []
        for frame in frames:
            tiny = _found(self.within(is_person_colour(frame, 10) & searched, area)).people.xyxy
            boxes = np.vstack([np.array([[0, 0, 60, 120]], np.float32), tiny])  # the large person, always
            out.append(FrameDetections(Detections(boxes, [0.9] * len(boxes), [0] * len(boxes)), Detections.empty()))
        return out


def test_where_the_search_does_not_tile_it_lapses_to_every_10th_frame_and_back_fills():
    from conftest import MAGENTA, is_person_colour, scene

    bg = scene(120, 160)
    person = bg.copy()
    # the worst case: a small person appears, still, just after a sweep; the next finds them 9 frames later
    person[40:60, 120:128] = MAGENTA
    frames = [bg] * 11 + [person] * 21
    detector = _CloseUp()
    anon = Anonymiser(Config(pose=False, fail_closed=False), detector=detector)
    stream = anon.stream(lookahead=30)
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    searched = [t for t, small in enumerate(detector.calls) if small]
    assert searched[:5] == [0, 1, 2, 10, 20], "nobody small seen: the small search on every 10th frame"
    assert searched[4:] == list(range(20, 32)), "once the small person is seen, on every frame"
    for i, o in enumerate(out):
        assert not is_person_colour(o).any(), f"frame {i}: the small person is visible"
    # the look-ahead must reach the lapse: shorter, the sweep comes every 5th frame as before
    assert ScalePolicy(160, 120, 160, lookahead=9, stride=2).lapse == SWEEP_EVERY
    assert ScalePolicy(160, 120, 160, lookahead=10, stride=2).lapse == 2 * SWEEP_EVERY
    # where the search tiles, the tiles' rotation bounds it instead: the sweep stays every 5th frame
    assert ScalePolicy(260, 180, 640, lookahead=30, stride=2, windows=WINDOWS).lapse == SWEEP_EVERY


def test_a_scene_cut_restarts_the_full_sweeps():
    from anonymise.policy import scene_cut, thumbnail

    a = np.full((360, 640, 3), 40, np.uint8)
    b = np.full((360, 640, 3), 200, np.uint8)
    assert scene_cut(thumbnail(a), thumbnail(b)) and not scene_cut(thumbnail(a), thumbnail(a + 5))
    detector = _PassRecorder()
    detector.calls = []
    frames = [Frame(a, i) for i in range(12)] + [Frame(b, 12 + i) for i in range(12)]
    anon = Anonymiser(Config(pose=False), detector=detector)
    stream = anon.stream(lookahead=30)
    list(anon.anonymise_frames(frames, stream))
    assert stream.counts.scene_cuts == 1
    assert all(detector.calls[12 : 12 + WARMUP]), "the frames after the cut did not all get the full search"
    assert not all(detector.calls[3:12]), "no pass was ever skipped before the cut"


class _FaintScene(_Untiled):
    """The magenta person is found only by a deep sweep (the small search at 1280 px), as the nano
    model finds a still, dark, 43 px man on pedestrians.mp4; ``calls``: each call's ``search``."""

    def __call__(self, frames, imgsz=None, plan=None):
        small, large, tiles, crops, search, area = _chosen(plan)
        from conftest import is_person_colour

        self.calls.append(search)
        out = []
        for frame in frames:
            hit = is_person_colour(frame, 10)
            out.append(_found(self.within(hit, area) & (search is not None and search >= 1280)))
        return out


def test_a_person_only_a_deep_sweep_finds_is_masked_in_every_frame():
    from conftest import MAGENTA, is_person_colour, scene

    bg = scene(120, 160)
    person = bg.copy()
    person[50:80, 30:40] = MAGENTA  # stands still from frame 3 on
    frames = [bg] * 3 + [person] * 30
    detector = _FaintScene()
    anon = Anonymiser(Config(pose=False, fail_closed=False), detector=detector)
    stream = anon.stream(lookahead=30)
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    for i, o in enumerate(out):
        assert not is_person_colour(o).any(), f"frame {i}: the person only deep sweeps find is visible"
    # 160 px frames: the small search runs at 640, a deep sweep at 1280 on every 5th frame while someone
    # small was seen lately; before (nobody yet) on every 10th: the person, there from frame 3, is found
    # on frame 10 and back-filled into the 7 frames before
    lapse = SWEEP_EVERY * Config().search_every
    assert [i for i, s in enumerate(detector.calls) if s == 1280] == [0, *range(lapse, 33, SWEEP_EVERY)]
    ledger = stream.ledger.as_dict()["frames_by_reason"]
    assert ledger["held"]["frames"] > 0 and ledger["backfill"]["frames"] > 0


def test_every_frame_is_deep_without_lookahead_and_none_where_the_search_tiles():
    policy = ScalePolicy(480, 360, 480, lookahead=0, search_imgsz=960)
    for _ in range(3):
        policy.passes(1)
        assert policy.deep(1) == (1280, [True]), "no look-ahead (a photo): no second chance, every frame deep"
    policy = ScalePolicy(1280, 720, None, lookahead=30, windows=WINDOWS, search_imgsz=1280)
    policy.passes(1)
    assert policy.deep(1) is None, "the tiles are the deep search there"
    policy = ScalePolicy(480, 360, 480, lookahead=30, search_imgsz=960)
    deep = []
    for _ in range(11):
        policy.passes(1)
        deep.append(policy.deep(1))
    assert deep == [(1280, [True]), None, None, None, None, (1280, [True]), *[None] * 4, (1280, [True])]
    policy = ScalePolicy(480, 360, 480, lookahead=30, search_imgsz=960)
    policy.passes(8)  # a GPU batch: the call runs at 1280, only its sweep frames count as deep
    assert policy.deep(8) == (1280, [True, False, False, False, False, True, False, False])
    policy = ScalePolicy(480, 360, 480, lookahead=0, every=1, search_imgsz=960)  # --preset thorough, live too
    for _ in range(3):
        policy.passes(1)
        assert policy.deep(1) == (1280, [True]), "thorough: the small search at 1280 on every frame"


def test_between_sweeps_the_untiled_search_runs_on_a_window_around_people_and_motion():
    from anonymise.policy import AREA_MARGIN, AREA_SHARE, AREA_STEPS

    policy = ScalePolicy(480, 360, 480, lookahead=30, search_imgsz=960)
    person = np.array([[100, 100, 120, 140]], np.float32)  # 40 px: small at the frame-scale pass
    areas = []
    for _ in range(12):
        assert policy.passes(1)[0], "a small person is around: the small search runs on every frame"
        areas.append(policy.area(1))
        policy.observe([person])
    assert areas[:WARMUP] == [None] * WARMUP, "the warm-up searches the whole frame"
    assert areas[5] is None and areas[10] is None, "the sweeps search the whole frame"
    room = AREA_MARGIN * 40
    for t in (3, 4, 6, 7, 8, 9, 11):
        x0, y0, x1, y1 = areas[t]
        assert x0 <= 100 - room and y0 <= 100 - room and x1 >= 120 + room and y1 >= 140 + room, areas[t]
        assert (x1 - x0) * (y1 - y0) <= AREA_SHARE * 480 * 360
        assert (x1 - x0) % (480 // AREA_STEPS) == 0 and (y1 - y0) % (360 // AREA_STEPS) == 0, "a few shapes"
    # what moves far away joins the window; a window beyond AREA_SHARE of the frame is the whole frame
    policy.passes(1)
    x0, y0, x1, y1 = policy.area(1, np.array([[300, 200, 310, 230]], np.float32))
    assert x0 <= 100 and y0 <= 100 and x1 >= 310 and y1 >= 230
    policy.passes(1)
    assert policy.area(1, np.array([[0, 0, 480, 360]], np.float32)) is None, "everything moved: the whole frame"
    # none where the search tiles (the tiles' own rotation), live (no sweeps), in a batch, nor in thorough
    for other in (
        ScalePolicy(1280, 720, 640, 30, windows=WINDOWS, search_imgsz=1280),
        ScalePolicy(480, 360, 480, lookahead=0, search_imgsz=960),
        ScalePolicy(480, 360, 480, lookahead=30, search_imgsz=960, every=1),
    ):
        for _ in range(8):
            other.passes(1)
            assert other.area(1) is None
            other.observe([person])
    policy.passes(2)
    assert policy.area(2) is None


def test_moving_boxes_hold_what_changed_and_the_whole_frame_when_unsure():
    from anonymise.policy import moving_boxes, shrunk

    a = np.full((120, 161, 3), 90, np.uint8)  # a width the shrinking does not divide
    b = a.copy()
    b[40:80, 141:161] = 250  # someone walked in, at the right edge
    (box,) = moving_boxes(shrunk(a), shrunk(b), 161, 120)
    assert box[0] <= 141 and box[1] <= 40 and box[2] >= 160.5 and box[3] >= 80 and box[2] - box[0] <= 32
    speck = a.copy()
    speck[8:12, 8:16] = 250  # noise: one shrunk pixel tall
    assert len(moving_boxes(shrunk(a), shrunk(speck), 161, 120)) == 0
    assert moving_boxes(None, shrunk(a), 161, 120).tolist() == [[0, 0, 161, 120]], "no frame before: everywhere"
    assert moving_boxes(shrunk(a), shrunk(a + 100), 161, 120).tolist() == [[0, 0, 161, 120]], "a light switched on"


def test_no_window_unless_the_next_sweep_searches_the_whole_frame():
    """The window's worst case (every - 1 frames) needs the next sweep frame to run the small search."""
    policy = ScalePolicy(640, 360, 640, lookahead=30, search_imgsz=1280, stride=2)  # lapse 10: nobody small, every 10th
    person = np.array([[100, 100, 110, 130]], np.float32)
    areas = {}
    for t in range(21):
        small, _ = policy.passes(1)
        if small:
            areas[t] = policy.area(1)
        policy.observe([person] if t == 1 else [np.zeros((0, 4), np.float32)])
    # seen on frame 1: the small search runs to frame 11, then on the lapse sweep (20) alone
    assert sorted(areas) == [*range(12), 20]
    assert all(areas[t] is not None for t in (3, 4, 6, 7, 8, 9)), "windows while the next sweep searches"
    assert areas[11] is None, "frame 15 will not search (nobody small since frame 1): frame 11 searches it all"


def test_detections_concat_keeps_keypoints_and_masks_an_empty_part_lacks():
    keypoints = np.zeros((1, 17, 3), np.float32)
    one = Detections(
        np.array([[0, 0, 4, 8]], np.float32), [0.9], [0], keypoints=keypoints, mask=np.ones((1, 8, 8), bool)
    )
    joined = Detections.concat([Detections.empty(), one])
    assert joined.keypoints is not None and joined.mask is not None and len(joined) == 1
    bare = Detections(np.array([[0, 0, 4, 8]], np.float32), [0.9], [0])
    assert Detections.concat([one, bare]).keypoints is None, "a part with people but no keypoints: none"
    assert len(Detections.concat([Detections.empty(), Detections.empty()])) == 0


class _Windowed(_Untiled):
    """Every magenta blob the small search's window holds is a small person; the frame-scale pass
    finds nobody. ``calls``: each call's ``area`` (``None``: the whole frame, or no small search)."""

    def __call__(self, frames, imgsz=None, plan=None):
        small, large, tiles, crops, search, area = _chosen(plan)
        import cv2
        from conftest import is_person_colour

        self.calls.append(area if small else "alone")
        out = []
        for frame in frames:
            hit = self.within(is_person_colour(frame, 10), area) if small and imgsz is None else hit_none(frame)
            count, _, stats, _ = cv2.connectedComponentsWithStats(hit.view(np.uint8))
            x, y, w, h = (stats[1:, i].astype(np.float32) for i in range(4))
            boxes = np.stack([x, y, x + w, y + h], axis=1).reshape(-1, 4)
            out.append(FrameDetections(Detections(boxes, [0.9] * len(boxes), [0] * len(boxes)), Detections.empty()))
        return out


def hit_none(frame):
    return np.zeros(frame.shape[:2], bool)


def test_a_still_person_outside_the_window_is_found_by_the_next_sweep_and_masked_throughout():
    from conftest import MAGENTA, is_person_colour, scene

    bg = scene(480, 640)  # the small search at 1280 px: no deep sweeps, the window's own sweeps alone
    bg[20:40, 20:28] = MAGENTA  # a small person, always there: the small search runs on every frame
    dim = np.array([200, 0, 200], np.uint8)  # nobody finds this (nor is it motion: 22 grey levels)
    frames = []
    for t in range(25):
        frame = bg.copy()
        # the worst case: someone far from everyone becomes findable just after a sweep, without moving
        frame[440:460, 600:608] = MAGENTA if t >= 11 else dim
        frames.append(frame)
    detector = _Windowed()
    # the motion guard off (nothing changes by more than 255 levels): the search alone must find them
    anon = Anonymiser(Config(pose=False, fail_closed=False, motion_threshold=255), detector=detector)
    stream = anon.stream(lookahead=30)
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    for t in range(11, 15):
        x0, y0, x1, y1 = detector.calls[t]
        assert x1 <= 600 or y1 <= 440, f"frame {t}: the window holds the far person ({detector.calls[t]})"
    assert detector.calls[15] is None, "the sweep searches the whole frame"
    # windows on 3-4, 6-9 and 11-14; once both are seen (15), one window holding them is most of the frame
    windowed = [t for t, c in enumerate(detector.calls) if isinstance(c, tuple)]
    assert windowed == [3, 4, 6, 7, 8, 9, 11, 12, 13, 14] and stream.counts.windowed == len(windowed)
    for i, o in enumerate(out):
        assert not is_person_colour(o).any(), f"frame {i}: a person is visible"
    assert stream.ledger.as_dict()["frames_by_reason"]["backfill"]["frames"] >= 4


class _FaintWalker(_Untiled):
    """As :class:`_FaintScene`, with keypoints: the pose model's skeleton of the magenta person."""

    def __call__(self, frames, imgsz=None, plan=None):
        small, large, tiles, crops, search, area = _chosen(plan)
        from conftest import is_person_colour

        self.calls.append(search)
        out = []
        for frame in frames:
            found = _found(self.within(is_person_colour(frame, 10), area) & (search is not None and search >= 1280))
            out.append(_with_skeleton(found) if len(found.people) else found)
        return out


def test_between_deep_sweeps_a_person_only_they_find_keeps_an_interpolated_skeleton():
    from conftest import MAGENTA, scene

    bg = scene(120, 160)
    frames = []
    for i in range(33):
        image = bg.copy()
        image[50:80, 30 + i : 40 + i] = MAGENTA  # walks right, 1 px a frame
        frames.append(image)
    detector = _FaintWalker()
    anon = Anonymiser(Config(pose=True, fail_closed=False), detector=detector)
    stream = anon.stream(lookahead=30)
    results = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream))
    deep = [i for i, s in enumerate(detector.calls) if s == 1280]
    assert deep == list(range(0, 33, SWEEP_EVERY)), "someone small is seen: a deep sweep on every 5th frame"
    for i in range(deep[-1] + 1):
        poses = results[i].poses
        assert len(poses) == 1 and poses.keypoints is not None, f"frame {i}: {len(poses)} skeletons"
        # the walker's centre line, within a pixel: interpolated between the two sightings, not held still
        assert abs(float(poses.keypoints[0, 0, 0]) - (35 + i)) <= 1.0, f"frame {i}: {poses.keypoints[0, 0, 0]}"


@pytest.mark.parametrize("preset", ["balanced", "fast"])
def test_a_photo_gets_every_pass_thorough_runs_whatever_the_preset(tmp_path, preset):
    """A photo has no second chance (no sweeps, tracks or look-ahead): the person only the deep
    search finds is masked at every preset, and the photo's config is thorough's."""
    from conftest import MAGENTA, is_person_colour, scene

    from anonymise.io.images import read_image, write_image

    photo = scene(120, 160)
    photo[50:80, 30:40] = MAGENTA
    src, dst = tmp_path / "photo.png", tmp_path / "out.png"
    write_image(src, photo)
    detector = _FaintScene()
    anon = Anonymiser(Config(pose=False, preset=preset), detector=detector)
    anon.process_image(src, dst)
    assert detector.calls == [1280], "the photo's one call is not the deep search"
    assert not is_person_colour(read_image(dst)).any(), "the person only the deep search finds is visible"
    assert anon.stream(still=True).config.preset == "thorough"
    assert anon.config.preset == preset, "the run's own config changed"
