import numpy as np
import pytest
from conftest import MAGENTA, scene

from anonymise.motion import crop_window, moved, moving_regions, relit


def unexplained_regions(frame, moving, reference, seen, alpha, **kwargs) -> np.ndarray:
    """Boxes (K, 4) of the moving, person-sized regions that the mask does not explain."""
    regions = moving_regions(frame, moving, reference, seen, alpha, **kwargs)
    return regions.boxes[~regions.explained]


def _frame(x, background):
    f = background.copy()
    f[30:80, x : x + 20] = MAGENTA
    return f


def test_a_moving_unexplained_blob_is_found_and_a_masked_one_is_not():
    bg = scene()
    seen = np.ones(bg.shape[:2], bool)
    previous, frame = _frame(40, bg), _frame(46, bg)
    none = np.zeros(bg.shape[:2], np.uint8)
    (box,) = unexplained_regions(frame, moved(frame, previous), bg, seen, none, min_height=16)
    assert box[0] <= 46 and box[2] >= 66 and box[1] <= 30 and box[3] >= 80
    covered = none.copy()
    covered[25:85, 40:70] = 255
    assert len(unexplained_regions(frame, moved(frame, previous), bg, seen, covered, min_height=16)) == 0


def test_still_changes_small_blobs_and_unknown_background_are_ignored():
    bg = scene()
    seen = np.ones(bg.shape[:2], bool)
    none = np.zeros(bg.shape[:2], np.uint8)
    parked = _frame(40, bg)
    assert len(unexplained_regions(parked, moved(parked, parked), bg, seen, none)) == 0, (
        "no motion: a parked car, not a person"
    )
    speck = bg.copy()
    speck[10:14, 10:14] = 255
    assert len(unexplained_regions(speck, moved(speck, bg), bg, seen, none, min_height=16)) == 0, (
        "too small to be a person"
    )
    assert len(unexplained_regions(_frame(46, bg), moved(_frame(46, bg), _frame(40, bg)), bg, ~seen, none)) == 0, (
        "nothing known to compare with"
    )
    flash = np.full_like(bg, 255)
    assert len(unexplained_regions(flash, moved(flash, bg), bg, seen, none)) == 0, (
        "a lighting change covering the frame is not a person"
    )


def test_a_screen_whose_light_changes_is_not_a_person_and_a_person_on_it_or_a_flat_wall_still_is():
    bg = scene(seed=3)
    seen = np.ones(bg.shape[:2], bool)
    none = np.zeros(bg.shape[:2], np.uint8)
    before = bg.copy()
    screen = (slice(20, 100), slice(30, 90))
    after = bg.copy()
    lit = bg[screen].astype(np.float32) * np.array([1.3, 1.0, 0.8]) + np.array([10, 0, -5])  # white balance
    after[screen] = lit.clip(0, 255).astype(np.uint8)
    assert len(unexplained_regions(before, moved(before, bg), bg, seen, none, min_height=16)) == 0
    assert len(unexplained_regions(after, moved(after, before), bg, seen, none, min_height=16)) == 0, (
        "a screen's new white balance"
    )
    assert relit(after[screen], bg[screen], seen[screen], 30)
    person = after.copy()
    person[40:90, 50:70] = MAGENTA
    (box,) = unexplained_regions(person, moved(person, before), bg, seen, none, min_height=16)
    assert box[1] <= 40 and box[3] >= 90, "a person in front of it is found"
    flat = np.full_like(bg, 120)
    grey = flat.copy()
    grey[30:80, 40:60] = 60  # a person in grey against a flat wall: a gain and an offset fit it
    assert not relit(grey[30:80, 40:60], flat[30:80, 40:60], seen[30:80, 40:60], 30), "no texture to judge by"
    assert len(unexplained_regions(grey, moved(grey, flat), flat, seen, none, min_height=16)) == 1


def test_crop_window_keeps_context_and_stays_in_frame():
    assert crop_window(np.array([100, 100, 110, 120]), (200, 300)) == (73, 78, 137, 142)  # 3x the box, at least 64
    left, top, right, bottom = crop_window(np.array([0, 0, 10, 10]), (200, 300), minimum=64)
    assert (left, top) == (0, 0) and right <= 300 and bottom <= 200
    with pytest.raises(ValueError):
        unexplained_regions(
            scene(), moved(scene(), None), scene()[:10], np.ones((120, 160), bool), np.zeros((120, 160), np.uint8)
        )


def test_moving_regions_report_explained_ones_and_their_foreground():
    """Explained regions are reported too: the guard masks what sticks out of a detection and distrusts the
    background there."""
    bg = scene()
    seen = np.ones(bg.shape[:2], bool)
    covered = np.zeros(bg.shape[:2], np.uint8)
    covered[30:70, 46:66] = 255  # a detection covering 80% of the person
    r = moving_regions(_frame(46, bg), moved(_frame(46, bg), _frame(40, bg)), bg, seen, covered, min_height=16)
    assert r.explained.tolist() == [True]
    assert r.foreground[75, 50] and not r.foreground[10, 10], "the part below the detection is foreground"


def test_each_second_look_runs_at_the_smallest_size_that_shows_its_region_target_tall_one_call_per_size():
    import contextlib

    from anonymise.detections import Detections
    from anonymise.guard import LOOK_SIZES, SECOND_LOOK_IMGSZ, look_size, second_look

    assert look_size(np.array([0, 0, 20, 40]), (120, 120)) == 224, "40 px in 120 at 160 is 53 px: under 64"
    assert look_size(np.array([0, 0, 50, 100]), (150, 150)) == 160, "a held track with little context"
    assert look_size(np.array([0, 0, 8, 10]), (64, 64)) == SECOND_LOOK_IMGSZ, "never above the look's own size"
    assert LOOK_SIZES[-1] == SECOND_LOOK_IMGSZ

    calls = []

    class Looker:
        def look_shares_models(self):
            return True

        def look(self, crops, imgsz):  # one person filling each crop's top-left 10x20 px
            calls.append((len(crops), imgsz))
            box = np.array([[0, 0, 10, 20]], np.float32)
            return [Detections(box, np.array([imgsz / 1000], np.float32), np.zeros(1, np.int64)) for _ in crops]

    image = np.zeros((720, 1280, 3), np.uint8)
    regions = np.array([[100, 100, 120, 140], [500, 300, 550, 400], [900, 100, 920, 140]], np.float32)
    found = second_look(Looker(), contextlib.nullcontext(), image, regions, np.array([1.0, 0.25, 1.0]))
    assert sorted(calls) == [(1, 160), (2, 224)], "one call per size, the crops of a size together"
    # each crop's people come back in frame coordinates, in the order of the regions, from its own size
    assert len(found) == 3
    assert np.allclose(found.confidence, [0.224, 0.160, 0.224])
    assert np.allclose(found.xyxy[:, :2], [[50, 60], [450, 275], [850, 60]], atol=1)
