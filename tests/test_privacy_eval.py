"""The pixel-truth metric of scripts/privacy_eval.py, on synthetic frames where the answer is known."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def metric():
    spec = importlib.util.spec_from_file_location("privacy_eval", ROOT / "scripts" / "privacy_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["privacy_eval"] = module
    spec.loader.exec_module(module)
    return module


def test_person_pixels_are_in_a_box_and_unlike_the_empty_scene(metric):
    empty = np.full((50, 60, 3), 100, np.uint8)
    frame = empty.copy()
    frame[10:30, 20:30] = 200  # the person: 200 pixels
    frame[40:45, 50:55] = 200  # a change outside every box (not a person)
    person = metric.person_pixels(frame, empty, np.array([[18, 8, 32, 32]]), grow=0.0)
    assert person.sum() == 200 and person[10:30, 20:30].all()


def test_leaked_counts_person_pixels_the_output_left_unchanged(metric):
    frame = np.full((20, 20, 3), 50, np.uint8)
    where = np.zeros((20, 20), bool)
    where[5:15, 5:15] = True  # 100 person pixels
    out = frame.copy()
    out[5:15, 5:10] = 200  # half replaced
    out[5:15, 10:12] = 50 + metric.LEAK_TOL  # within the tolerance: unchanged
    leak = metric.leaked(frame, out, where)
    assert leak.sum() == 50
    assert not leak[:, :5].any(), "a pixel outside the person counted"


def test_core_is_the_box_shrunk_by_15_percent_per_side(metric):
    core = metric.core_pixels(np.array([[0, 0, 100, 200]]), (300, 300))
    ys, xs = np.nonzero(core)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (15, 85, 30, 170)


def test_leak_summary(metric):
    row = metric.leak_summary([0, 3, 10, 0], [100, 100, 100, 0])
    assert row["leak %"] == pytest.approx(13 / 300 * 100)
    assert row["frames > 5%"] == 1 and row["frames > 2%"] == 2
    assert row["worst frame"] == 2 and row["worst %"] == pytest.approx(10.0)
    assert row["frames scored"] == 3


def test_a_closeup_reference_drops_a_weak_second_box(metric):
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32)
    kept = metric.closeup_people(boxes, np.array([0.9, 0.5, 0.7], np.float32))
    assert kept.tolist() == boxes[[0, 2]].tolist()


# -- scene: what holds no person is output as it came, and the fill is the scene behind them ---------------


def _floor(seed: int = 0, shape=(60, 80, 3)) -> np.ndarray:
    """A textured empty scene (values 40-200: a gain of 1.2 and an offset of -10 do not clip)."""
    return np.random.default_rng(seed).integers(40, 200, shape, dtype=np.uint8)


BOX = np.array([[30, 20, 40, 40]], np.float32)  # 10 wide, 20 tall: grown by 25% of its height, 5 px per side


def test_grown_region_grows_every_side_by_a_share_of_the_height(metric):
    region = metric.grown_region(BOX, (60, 80), 0.25)
    ys, xs = np.nonzero(region)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (25, 45, 15, 45)


def test_an_output_unchanged_outside_the_grown_boxes_loses_no_scene(metric):
    image = _floor()
    out = image + metric.SCENE_LEVELS  # every pixel off by 15 levels: the encoder's noise, not a loss
    out[15:45, 25:45] = 0  # the whole grown box painted over: the person's region, not scene
    assert metric.scene_lost(image, out, BOX) == 0.0


def test_a_box_painted_over_empty_floor_counts_as_scene_lost(metric):
    image = _floor()
    out = image.copy()
    out[0:10, 0:10] = 255 - image[0:10, 0:10]  # a mask where nobody stands: 100 pixels, all changed a lot
    outside = 60 * 80 - 20 * 30
    assert metric.scene_lost(image, out, BOX) == pytest.approx(100 / outside)
    out[0:10, 0:10] = image[0:10, 0:10] + metric.SCENE_LEVELS  # changed by exactly 15: the encoder's noise
    assert metric.scene_lost(image, out, BOX) == 0.0


def test_scene_lost_is_nan_when_the_grown_boxes_cover_the_frame(metric):
    image = _floor()
    assert np.isnan(metric.scene_lost(image, image, np.array([[0, 0, 80, 60]])))


def test_a_perfect_fill_has_no_error_and_a_wrong_one_its_difference(metric):
    empty = _floor()
    out = empty.copy()
    out[0:5, 0:5] = 0  # outside the box: never counted
    assert metric.fill_error(out, empty, BOX) == 0.0
    out[20:40, 30:40] = empty[20:40, 30:40] + 12  # the fill 12 levels off
    out[20:40, 30:35, 1] = empty[20:40, 30:35, 1] - 20  # half of it 20 off in one channel: the largest counts
    assert metric.fill_error(out, empty, BOX) == pytest.approx(16.0)
    assert np.isnan(metric.fill_error(out, empty, np.zeros((0, 4))))


def test_a_lighting_change_is_undone_by_the_fit(metric):
    empty = _floor()
    lit = np.clip(np.rint(1.2 * empty.astype(float) - 10), 0, 255).astype(np.uint8)  # the room now
    frame = lit.copy()
    frame[20:40, 30:40] = 0  # a person in black: inside the grown box, left out of the fit
    outside = ~metric.grown_region(BOX, empty.shape[:2])
    fitted = metric.match_lighting(empty, frame, outside)
    assert fitted.dtype == np.uint8 and fitted.shape == empty.shape
    assert np.abs(fitted.astype(int) - lit).max() <= 1  # everywhere, under the person too
    assert metric.fill_error(lit, fitted, BOX) < 1.0  # a fill of the room as lit now: right
    assert metric.fill_error(lit, empty, BOX) > 10  # judged against the unlit scene: wrong by the change


def test_the_fit_leaves_the_scene_alone_with_too_few_pixels_outside(metric):
    empty, frame = _floor(0), _floor(1)
    outside = np.zeros(empty.shape[:2], bool)
    outside[0, : metric.MIN_FIT_PIXELS - 1] = True
    assert (metric.match_lighting(empty, frame, outside) == empty).all()
    with pytest.raises(ValueError, match="outside: expected bool"):
        metric.match_lighting(empty, frame, outside.astype(np.uint8))


def test_the_empty_scene_is_the_median_where_a_walker_passes(metric):
    scene = _floor()
    frames = []
    for i in range(7):
        frame = scene.copy()
        frame[10:50, 10 * i : 10 * i + 10] = 0  # someone walking across, in one frame of seven at each pixel
        frames.append(frame)
    assert (metric.empty_scene(frames, band=16) == scene).all()
    with pytest.raises(ValueError, match="at least one frame"):
        metric.empty_scene([])


def test_scene_summary_leaves_out_frames_with_nothing_to_score(metric):
    nan = float("nan")
    row = metric.scene_summary([0.01, nan, 0.03], [0.008, 0.008, nan], [10.0, nan], [14.0, nan])
    assert row["scene lost %"] == pytest.approx(2.0) and row["scene worst %"] == pytest.approx(3.0)
    assert row["scene worst frame"] == 2 and row["scene frames"] == 2
    assert row["floor %"] == pytest.approx(0.8)
    assert row["fill error"] == 10.0 and row["fill error unlit"] == 14.0 and row["fill frames"] == 1
    assert metric.scene_text(row) == (
        "scene lost 2.0% (worst 3.0%, frame 2), floor 0.8%; fill error 10.0 levels (14.0 without the lighting fit)"
    )
    nobody = metric.scene_summary([0.0], [0.0], [nan], [nan])
    assert metric.scene_text(nobody).endswith("fill error n/a (no reference person in the frames scored)")
    closeup = metric.scene_summary([0.0], [0.0], None, None)
    assert "fill error" not in closeup and metric.scene_text(closeup).endswith("fill error n/a (no empty scene)")


def test_a_crowd_cells_people_are_placed_in_the_mosaic_and_visible_where_their_core_is_unchanged(metric):
    """bench_resolutions' crowd score: each reference box of a 480x360 moment lands where the mosaic put
    that moment, and counts as visible where half of its core or more is as it came."""
    spec = importlib.util.spec_from_file_location("bench_resolutions", ROOT / "scripts" / "bench_resolutions.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_resolutions"] = bench  # its dataclasses look their module up
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    layout = bench.Mosaic((0, 1, 2, 3), 2, (960, 540))  # cells of 480x270
    box = np.array([[48, 36, 96, 108]], np.float32)
    assert bench.placed(box, 3, layout).tolist() == [[528, 297, 576, 351]], "cell 3: right, bottom; height x0.75"
    image = np.random.default_rng(0).integers(0, 255, (540, 960, 3), np.uint8)
    output = image.copy()
    people = np.array([[100, 100, 140, 200], [300, 100, 340, 200], [500, 100, 540, 200]], np.float32)
    output[100:200, 100:140] = 0  # masked whole
    output[100:200, 300:340] = np.clip(image[100:200, 300:340].astype(int) + 6, 0, 255)  # within LEAK_TOL: shown
    output[100:140, 500:540] = 0  # the top 40%: the rest of the core shows
    assert bench.shown(image, output, people).tolist() == [False, True, True]
