import numpy as np
import pytest

from anonymise.composite import blend, blend_torch
from anonymise.pose import draw_skeleton


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    alpha = np.zeros((50, 60), np.uint8)
    alpha[10:30, 20:40] = rng.integers(1, 256, (20, 20), dtype=np.uint8)
    alpha[15:25, 25:35] = 255
    return frame, background, alpha


def test_blend_exact_outside_full_inside_rounded_between():
    frame, background, alpha = _inputs()
    copies = frame.copy(), background.copy(), alpha.copy()
    out = blend(frame, background, alpha)
    assert (out[alpha == 0] == frame[alpha == 0]).all(), "pixels away from people must be bit-identical"
    assert (out[alpha == 255] == background[alpha == 255]).all()
    a = alpha[..., None] / 255.0
    expected = np.floor(frame * (1 - a) + background * a + 0.5)
    assert np.abs(out.astype(int) - expected.astype(int)).max() == 0, "rounding, not truncation"
    for original, now in zip(copies, (frame, background, alpha)):
        assert (original == now).all(), "inputs must not be modified"


def test_blend_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    frame, background, alpha = _inputs(1)
    out = blend_torch(torch.from_numpy(frame), torch.from_numpy(background), torch.from_numpy(alpha)).numpy()
    assert (out == blend(frame, background, alpha)).all()


def test_blend_rejects_mismatched_inputs():
    frame, background, alpha = _inputs()
    with pytest.raises(ValueError, match="alpha: expected uint8"):
        blend(frame, background, alpha.astype(np.float32))
    with pytest.raises(ValueError, match="equal"):
        blend(frame, background[:10], alpha)


def test_skeleton_drawn_only_for_confident_joints():
    frame = np.zeros((200, 200, 3), np.uint8)
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 5] = (50, 50, 0.9)  # left shoulder
    kp[0, 7] = (50, 150, 0.9)  # left elbow: limb 5-7 drawn
    kp[0, 6] = (150, 50, 0.9)  # right shoulder
    kp[0, 8] = (150, 150, 0.1)  # right elbow under conf: limb 6-8 not drawn
    out = draw_skeleton(frame, kp, conf=0.5)
    assert out[100, 49:52].any(), "the confident limb is drawn"
    assert not out[100, 145:156].any(), "a limb to an unconfident joint is not drawn"
    assert not frame.any(), "input not modified"
    with pytest.raises(ValueError, match=r"expected shape \(N, 17, 3\)"):
        draw_skeleton(frame, np.zeros((1, 5, 3)))


# --- skeleton styling -------------------------------------------------------------------------


def _old_draw_skeleton(frame, keypoints, conf=0.3, thickness=None):
    """draw_skeleton as it was before styling options were added (the reference for defaults)."""
    import cv2

    from anonymise.pose import JOINT_COLOUR, SKELETON, line_thickness

    keypoints = np.asarray(keypoints, np.float32)
    out = frame.copy()
    t = thickness or line_thickness(frame.shape)
    radius = t + 1
    for person in keypoints:
        visible = person[:, 2] >= conf
        points = np.round(person[:, :2]).astype(np.int32)
        for (i, j), colour in SKELETON:
            if visible[i] and visible[j]:
                cv2.line(out, tuple(points[i]), tuple(points[j]), colour, t, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(out, tuple(points[k]), radius, JOINT_COLOUR, -1, cv2.LINE_AA)
    return out


def _people(n, shape, seed=0):
    rng = np.random.default_rng(seed)
    kp = np.empty((n, 17, 3), np.float32)
    kp[..., 0] = rng.uniform(0, shape[1], (n, 17))
    kp[..., 1] = rng.uniform(0, shape[0], (n, 17))
    kp[..., 2] = rng.uniform(0, 1, (n, 17))
    return kp


@pytest.mark.parametrize("shape", [(240, 320, 3), (480, 640, 3), (1080, 1920, 3)])
@pytest.mark.parametrize("thickness", [None, 3])
def test_default_skeleton_is_unchanged(shape, thickness):
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    kp = _people(4, shape)
    assert (draw_skeleton(frame, kp, 0.3, thickness) == _old_draw_skeleton(frame, kp, 0.3, thickness)).all()


def _one_arm(track_conf=0.9):
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 5] = (50, 50, 0.9)
    kp[0, 7] = (50, 150, track_conf)
    return kp


def test_track_colours_are_stable_and_distinct():
    from anonymise.pose import UNTRACKED_COLOUR, track_colour

    colours = [track_colour(i) for i in range(8)]
    assert len(set(colours)) == 8, "a handful of ids get different colours"
    assert colours == [track_colour(i) for i in range(8)], "same id, same colour, every call"
    assert track_colour(-1) == UNTRACKED_COLOUR
    frame = np.zeros((200, 200, 3), np.uint8)
    for track in (0, 3, 7, -1):
        out = draw_skeleton(frame, _one_arm(), thickness=4, track_ids=[track])
        again = draw_skeleton(frame, _one_arm(), thickness=4, track_ids=np.array([track]))
        assert (out == again).all()
        assert tuple(out[100, 50]) == track_colour(track), "limb in the track's colour"
        assert tuple(out[50, 50]) == track_colour(track), "joint in the track's colour"
    assert not frame.any(), "input not modified"


def test_one_colour_for_everyone_and_for_untracked():
    frame = np.zeros((200, 200, 3), np.uint8)
    assert tuple(draw_skeleton(frame, _one_arm(), 0.3, 4, colour=(1, 2, 3))[100, 50]) == (1, 2, 3)
    assert tuple(draw_skeleton(frame, _one_arm(), 0.3, 4, colour="red")[50, 50]) == (0, 0, 255)
    assert tuple(draw_skeleton(frame, _one_arm(), 0.3, 4, track_ids=[-1], colour="blue")[100, 50]) == (255, 0, 0)
    with pytest.raises(ValueError, match="expected a colour name"):
        draw_skeleton(frame, _one_arm(), colour="mauve")
    with pytest.raises(ValueError, match="track_ids: expected 1 integers"):
        draw_skeleton(frame, _one_arm(), track_ids=[1, 2])


def test_joints_under_conf_are_not_drawn_in_any_style():
    frame = np.zeros((200, 200, 3), np.uint8)
    for style in ({}, {"track_ids": [2]}, {"colour": "white"}, {"show_conf": True}):
        out = draw_skeleton(frame, _one_arm(track_conf=0.2), conf=0.5, **style)
        assert out[45:56, 45:56].any(), "the confident joint is drawn"
        assert not out[140:160, 40:60].any(), f"the unconfident joint and its limb are not drawn ({style})"


def test_show_conf_scales_joint_size():
    from anonymise.pose import joint_radius

    frame = np.zeros((400, 400, 3), np.uint8)
    kp = np.zeros((2, 17, 3), np.float32)
    kp[0, 0] = (100, 100, 1.0)
    kp[1, 0] = (300, 300, 0.4)
    out = draw_skeleton(frame, kp, conf=0.3, radius=10, show_conf=True)
    big, small = np.count_nonzero(out[80:121, 80:121, 0]), np.count_nonzero(out[280:321, 280:321, 0])
    assert big > 4 * small > 0, "area grows with confidence (radius 10 vs 4)"
    assert joint_radius((1080, 1920)) > joint_radius((480, 640)) > joint_radius((240, 320)) >= 2


def test_parse_colour():
    from anonymise.colours import parse_colour

    assert parse_colour("black") == (0, 0, 0)
    assert parse_colour(" Grey ") == parse_colour("gray") == (128, 128, 128)
    assert parse_colour("red") == (0, 0, 255), "BGR"
    assert parse_colour("#FF8000") == (0, 128, 255)
    assert parse_colour("#00ff00") == (0, 255, 0)
    for bad in ("#fff", "#GG0000", "purple", "", "0,0,255"):
        with pytest.raises(ValueError, match="expected a colour name .* or #RRGGBB, got"):
            parse_colour(bad)
