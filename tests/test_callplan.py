"""One model call's plan (anonymise.callplan): the policy's choices sized into passes, as a pure
function of the policy's state; its budget in a crowd; the few input shapes a video compiles."""

from __future__ import annotations

import numpy as np
import pytest

from anonymise import Config
from anonymise.callplan import CallPlan, Kind, Pass, call_plan
from anonymise.detect.tiles import tile_windows
from anonymise.detections import Detections, FrameDetections, box_ioa
from anonymise.planner import Planner
from anonymise.policy import CROP_SHARE, SWEEP_EVERY, WARMUP, ScalePolicy
from anonymise.slot import Counts

HD = (1280, 720)
HD_WINDOWS = tile_windows(HD[1], HD[0])


def _passes(plan: CallPlan) -> list[tuple[str, int, int]]:
    return [(p.kind.value, p.imgsz, p.pieces) for p in plan.passes]


def test_the_policys_choices_are_sized_into_passes_in_merge_order():
    config = Config()
    # pedestrians.mp4's size: the search at 960 (32 px people shown 64 px tall), the frame's own pass at 480
    assert _passes(call_plan(480, 360, config)) == [("search", 960, 1), ("frame", 480, 1)]
    assert _passes(call_plan(480, 360, config, small=False)) == [("alone", 480, 1)]
    assert _passes(call_plan(480, 360, config, large=False)) == [("search", 960, 1)]
    # a window of 360x270 enlarged as the whole frame would be (2x), to a multiple of 32
    window = call_plan(480, 360, config, area=(120, 0, 480, 270))
    assert _passes(window) == [("area", 736, 1), ("frame", 480, 1)] and window.passes[0].windows == (
        (120, 0, 480, 270),
    )
    deep = call_plan(480, 360, config, deep=(1280, [True]), area=(120, 0, 480, 270))
    assert _passes(deep) == [("search", 1280, 1), ("frame", 480, 1)], "a deep sweep searches the whole frame"
    # 720p: the search at 1280 (not enlarged: no frame-scale pass), 15 tiles shown at 640
    full = call_plan(*HD, config, HD_WINDOWS)
    assert _passes(full) == [("search", 1280, 1), ("tiles", 640, 15)] and full.tiled
    keep = [j % 5 == 0 for j in range(15)]
    some = call_plan(*HD, config, HD_WINDOWS, tiles=keep, crops=[(0, 0, 160, 160), (600, 300, 760, 460)])
    assert _passes(some) == [("search", 1280, 1), ("tiles", 640, 3), ("crops", 320, 2)]
    assert _passes(call_plan(*HD, config, HD_WINDOWS, small=False)) == [("alone", 640, 1)]
    # --imgsz and --min-person size the passes; --preset fast searches for 48 px people
    assert _passes(call_plan(480, 360, Config(imgsz=640))) == [("search", 640, 1), ("frame", 480, 1)]
    assert _passes(call_plan(480, 360, Config(preset="fast"))) == [("search", 640, 1), ("frame", 480, 1)]


def _choose(policy: ScalePolicy) -> CallPlan:
    """The next call's plan on a 720p frame: a pure function of ``policy``'s state (which it advances)."""
    return call_plan(policy.width, policy.height, Config(), policy.windows, **policy.choose(1))


def _hd_policy() -> ScalePolicy:
    config = Config()
    return ScalePolicy(*HD, 640, 30, every=config.sweep_every, windows=HD_WINDOWS, search_imgsz=1280, stride=2)


def _searched(plan: CallPlan) -> list[tuple[int, int, int, int]]:
    """The windows the plan's tiles and crops search."""
    return [w for p in plan.passes if p.kind in (Kind.TILES, Kind.CROPS) for w in p.windows]


def _holds(windows, box) -> bool:
    return bool(len(windows)) and bool((box_ioa(np.asarray(windows, np.float32), box[None]) >= 0.999).any())


def test_a_crowd_over_the_budget_gets_its_tile_instead_of_crops_never_fewer_places():
    policy = _hd_policy()
    for _ in range(WARMUP):
        _choose(policy)
        policy.observe([np.zeros((0, 4), np.float32)])
    # four small people only the tiles found, too far apart to share a crop, in the tile 480-800 x
    # 200-520: their four crops would cost that whole tile
    crowd = np.array(
        [[554, 265, 566, 295], [714, 265, 726, 295], [554, 425, 566, 455], [714, 425, 726, 455]], np.float32
    )
    alone = np.array([[40, 40, 52, 70]], np.float32)  # one more, alone, top left
    policy.observe([np.concatenate([crowd, alone])], [np.concatenate([crowd, alone])])
    costs, plans = [], []
    for _ in range(2 * SWEEP_EVERY):
        plan = _choose(policy)
        policy.observe([np.zeros((0, 4), np.float32)], [np.zeros((0, 4), np.float32)])
        if not plan.small:
            continue  # a strided frame: the tracks carry them
        plans.append(plan)
        tiles = next(p for p in plan.passes if p.kind is Kind.TILES)
        crops = [w for p in plan.passes if p.kind is Kind.CROPS for w in p.windows]
        assert all(_holds(_searched(plan), box) for box in crowd), "a person of the crowd was not searched"
        assert _holds(_searched(plan), alone[0]), "the person alone was not searched"
        assert not any(_holds(crops, box) for box in crowd), "the crowd got crops"
        costs.append(tiles.pieces + len(crops) * CROP_SHARE**2)
    assert len(plans) >= 4 and policy.crowded >= len(plans) - 1, "the tile ran for the crowd (or in its turn)"
    assert max(costs) <= len(HD_WINDOWS), "over the budget: more than every tile"
    assert any(p.kind is Kind.CROPS for plan in plans for p in plan.passes), "the person alone keeps a crop"


@pytest.mark.parametrize("spacing", [170, 130])
def test_a_crowd_across_the_frame_is_searched_whole_within_the_budget(spacing):
    """Small people only the tiles found, ``spacing`` px apart (too far to share a crop), over the
    whole frame: every one searched, at no more than every tile costs; the denser crowd gets exactly that."""
    policy = _hd_policy()
    for _ in range(WARMUP):
        _choose(policy)
        policy.observe([np.zeros((0, 4), np.float32)])
    grid = [(x, y) for x in range(20, 1260, spacing) for y in range(20, 680, spacing)]
    people = np.array([[x, y, x + 12, y + 30] for x, y in grid], np.float32)
    policy.observe([people], [people])
    plan = _choose(policy)
    if not plan.small:  # a strided frame: the next searches
        policy.observe([people], [people])
        plan = _choose(policy)
    assert all(_holds(_searched(plan), box) for box in people), "a person of the crowd was not searched"
    tiles = next(p for p in plan.passes if p.kind is Kind.TILES)
    crops = sum(p.pieces for p in plan.passes if p.kind is Kind.CROPS)
    assert tiles.pieces + crops * CROP_SHARE**2 <= len(HD_WINDOWS)
    if spacing == 130:  # 50 people: crops would cost more than every tile
        assert _passes(plan) == [("search", 1280, 1), ("tiles", 640, 15)], "not the whole search, without crops"


@pytest.mark.parametrize("appears", range(WARMUP + 1, WARMUP + 1 + 2 * SWEEP_EVERY))
def test_a_new_person_at_the_frame_edge_is_searched_within_the_rotation(appears):
    """Someone 20 px tall (only the tiles see them) steps in at the bottom right corner on any frame
    after the warm-up: a tile holding them runs within ``every * stride`` frames (the back-fill's reach)."""
    policy = _hd_policy()
    person = np.array([1250, 680, 1262, 700], np.float32)
    found_at = None
    for t in range(appears + 3 * SWEEP_EVERY * 2):
        plan = _choose(policy)
        seen = t >= appears and plan.small and _holds(_searched(plan), person)
        if seen and found_at is None:
            found_at = t
        boxes = person[None] if seen else np.zeros((0, 4), np.float32)
        policy.observe([boxes], [boxes])
    assert found_at is not None and found_at - appears < SWEEP_EVERY * policy.stride
    assert policy.stride == 2 and SWEEP_EVERY * policy.stride <= Config().hold


class _Tiler:
    """A multiscale detector with the 720p tiles (it never runs here: only its plans are asked for)."""

    multiscale = True
    config = Config()
    device, batch = "cpu", 1

    def windows(self, width, height):
        return tile_windows(height, width)


def test_a_scene_cut_plans_the_whole_search_again():
    a = np.full((720, 1280, 3), 40, np.uint8)
    b = np.full((720, 1280, 3), 200, np.uint8)
    counts = Counts()
    planner = Planner(30, counts)
    nobody = [FrameDetections(Detections.empty(), Detections.empty())]
    plans = []
    for image in [a] * 12 + [b] * 12:
        plans.append(planner.plan([image], _Tiler(), Config()))
        planner.mark(plans[-1], nobody)
        planner.observe(nobody)
    whole = [("search", 1280, 1), ("tiles", 640, 15)]
    assert counts.scene_cuts == 1
    assert all(_passes(p) == whole for p in plans[:WARMUP]) and all(
        _passes(p) == whole for p in plans[12 : 12 + WARMUP]
    )
    assert all(_passes(p) != whole for p in plans[WARMUP:12]), "nobody seen: fewer tiles, or the pass at 640 alone"


def test_a_video_compiles_a_bounded_number_of_input_shapes():
    """The runtimes compile (and cache) each input shape. Over 300 frames of walkers at 720p and at
    480x360, the plans' passes (letterboxed as Ultralytics feeds the model) and the second looks'
    sizes come to a few shapes: one per kind of pass, the window's few (AREA_STEPS), three looks."""
    from ultralytics.data.augment import LetterBox

    from anonymise.guard import LOOK_SIZES

    rng = np.random.default_rng(0)
    for width, height in (HD, (480, 360)):
        detector = _Tiler()
        planner = Planner(30, Counts())
        shapes = set()
        # walkers in the left half (at 480x360 the search then runs on windows: ScalePolicy.area)
        walkers = rng.uniform([0, 0], [width / 2 - 20, height - 50], (12, 2))
        speed = rng.uniform(-3, 3, (12, 2))
        for t in range(300):
            image = np.zeros((height, width, 3), np.uint8)
            plan = planner.plan([image], detector, Config())
            for p in plan.passes:
                for x0, y0, x1, y1 in p.windows or [(0, 0, width, height)]:
                    piece = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
                    shapes.add(LetterBox((p.imgsz, p.imgsz), auto=True, stride=32)(image=piece).shape[:2])
            at = np.clip(walkers + speed * t, 0, [width / 2 - 20, height - 50])
            boxes = np.hstack([at, at + [12, 30 if t % 50 < 25 else 45]]).astype(np.float32)
            found = FrameDetections(Detections(boxes, [0.9] * len(boxes), [0] * len(boxes)), Detections.empty())
            found.tile_only = boxes[: 6 if plan.tiled else 0]
            planner.observe([found])
        shapes |= {(s, s) for s in LOOK_SIZES}
        # search, alone, tiles, crops; or search, deep, the frame's own (alone too), and the windows' 3 x 3 shapes
        kinds = 4 if width == 1280 else 3 + 9
        assert len(shapes) <= kinds + len(LOOK_SIZES), f"{width}x{height}: {sorted(shapes)}"


def test_a_pass_counts_its_pieces():
    assert Pass(Kind.SEARCH, 960).pieces == 1 and Pass(Kind.TILES, 640, ((0, 0, 1, 1),) * 3).pieces == 3
    assert call_plan(*HD, Config(), HD_WINDOWS).pieces() == 16
