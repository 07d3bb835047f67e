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
