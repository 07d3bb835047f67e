import numpy as np
import pytest

from anonymise import Detections
from anonymise.masks import boxes_mask, feather, inflate, instances_mask, person_alpha, uncovered


def test_boxes_mask_fills_grows_and_clips():
    m = boxes_mask(np.array([[10.2, 20.7, 30.5, 40.0]]), (100, 100), grow=5)
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (5, 35, 15, 44)  # floor/ceil, then +-5
    assert set(np.unique(m)) == {0, 255}
    edge = boxes_mask(np.array([[-5, -5, 3, 3]]), (10, 10), grow=2)
    assert edge[:5, :5].all() and not edge[6:, 6:].any()


def test_inflate_grows_by_exact_euclidean_radius():
    m = np.zeros((101, 101), np.uint8)
    m[50, 50] = 255
    grown = inflate(m, 10)
    assert grown[50, 60] == 255 and grown[50, 61] == 0  # along an axis
    assert grown[57, 57] == 255 and grown[58, 58] == 0  # diagonal: sqrt(2)*7 = 9.9, sqrt(2)*8 = 11.3
    assert m.sum() == 255  # input untouched


def test_feather_keeps_mask_opaque_and_falls_off_outside():
    m = np.zeros((100, 100), np.uint8)
    m[40:60, 40:60] = 255
    a = feather(m, 15)
    assert (a[m > 0] == 255).all(), "a person's own pixels must never be half-blended"
    assert a[50, 62] > 0 and a[50, 62] < 255 + 1  # soft rim just outside
    assert a[50, 90] == 0 and a[5, 5] == 0  # far away untouched
    row = a[50, 59:80].astype(int)
    assert (np.diff(row) <= 0).all(), "alpha falls off monotonically away from the person"


def test_instances_mask_union_and_shape_check():
    masks = np.zeros((2, 10, 10), bool)
    masks[0, :2] = True
    masks[1, -2:] = True
    assert (instances_mask(masks, (10, 10)) > 0).sum() == 40
    with pytest.raises(ValueError, match=r"expected shape \(N, 5, 5\)"):
        instances_mask(masks, (5, 5))


def test_uncovered_flags_boxes_the_mask_misses():
    mask = np.zeros((100, 100), np.uint8)
    mask[0:50, 0:50] = 255
    boxes = np.array([[0, 0, 50, 50], [60, 60, 90, 90], [40, 40, 60, 60]], np.float32)
    assert uncovered(boxes, mask).tolist() == [False, True, True]  # the last is 25% covered


def test_person_alpha_seg_adds_extra_boxes_and_bbox_uses_boxes():
    shape = (80, 80)
    mask = np.zeros((1, *shape), bool)
    mask[0, 10:20, 10:20] = True
    seg = Detections([[10, 10, 20, 20]], [0.9], [0], mask=mask)
    a = person_alpha(
        seg, shape, inflate_px=2, feather_px=0, extra_boxes=np.array([[60, 60, 70, 70]], np.float32), dilate_px=0
    )
    assert a[15, 15] == 255 and a[9, 15] == 255 and a[7, 15] == 0  # inflated by 2
    assert a[65, 65] == 255  # the extra box
    box = Detections([[30, 30, 40, 40]], [0.9], [0])
    b = person_alpha(box, shape, dilate_px=3, feather_px=0)
    assert b[27, 27] == 255 and b[26, 26] == 0
