import numpy as np
import pytest

from anonymise.composite import blend, fill, person_regions
from anonymise.config import Fill
from anonymise.masks import boxes_mask, feather


def _scene(box=(20, 10, 40, 50), shape=(80, 100), seed=0):
    """Random frame and background, and a feathered alpha over one box person."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    boxes = np.array([box], np.float32)
    return frame, background, feather(boxes_mask(boxes, shape), 9), boxes


def _checkerboard(shape, square):
    yy, xx = np.indices(shape)
    board = (((yy // square) + (xx // square)) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


@pytest.mark.parametrize("mode", list(Fill))
def test_every_mode_leaves_pixels_outside_alpha_bit_identical_and_inputs_untouched(mode):
    frame, background, alpha, boxes = _scene()
    copies = frame.copy(), background.copy(), alpha.copy(), boxes.copy()
    out = fill(frame, background, alpha, mode, boxes)
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    assert (out[alpha == 0] == frame[alpha == 0]).all()
    for original, now in zip(copies, (frame, background, alpha, boxes)):
        assert (original == now).all(), "inputs must not be modified"
    if mode is not Fill.NONE:
        assert (out[alpha == 255] != frame[alpha == 255]).any(axis=-1).mean() > 0.9, "people are replaced"


def test_background_mode_is_blend_and_modes_accept_strings():
    frame, background, alpha, _ = _scene()
    assert (fill(frame, background, alpha, "background") == blend(frame, background, alpha)).all()
    assert (fill(frame, None, alpha, "none") == frame).all()


def test_blackout_is_black_inside_and_rounded_on_the_rim():
    frame, _, alpha, _ = _scene()
    out = fill(frame, None, alpha, Fill.BLACKOUT)
    assert not out[alpha == 255].any()
    rim = (alpha > 0) & (alpha < 255)
    assert rim.any()
    expected = np.floor(frame * (1 - alpha[..., None] / 255.0) + 0.5).astype(np.uint8)
    assert (out[rim] == expected[rim]).all(), "same rounding as blend"


@pytest.mark.parametrize("mode", [Fill.BLUR, Fill.PIXELATE])
@pytest.mark.parametrize("height", [40, 200])
@pytest.mark.parametrize("with_boxes", [True, False])
def test_blur_and_pixelate_remove_fine_detail_at_any_person_size(mode, height, with_boxes):
    shape = (height + 60, height + 60)
    box = (30, 30, 30 + height // 2, 30 + height)
    frame = _checkerboard(shape, 2)
    _, _, alpha, boxes = _scene(box, shape)
    out = fill(frame, None, alpha, mode, boxes if with_boxes else None)
    inside = alpha == 255
    assert out[inside].std() < 0.1 * frame[inside].std(), "a person's detail must be gone"
    assert (out[alpha == 0] == frame[alpha == 0]).all()


@pytest.mark.parametrize("height", [40, 200])
def test_blur_strength_scales_with_the_person(height):
    """Face-sized features (an eighth of the person's height) are blurred away, small or big."""
    shape = (height + 60, height + 60)
    box = (30, 30, 30 + height // 2, 30 + height)
    frame = _checkerboard(shape, height // 8)
    _, _, alpha, boxes = _scene(box, shape)
    out = fill(frame, None, alpha, Fill.BLUR, boxes)
    inside = alpha == 255
    assert out[inside].std() < 0.1 * frame[inside].std()


@pytest.mark.parametrize("height", [40, 200])
def test_pixel_cells_scale_with_the_person(height):
    shape = (height + 60, height + 60)
    box = (30, 30, 30 + height // 2, 30 + height)
    frame, _, alpha, boxes = _scene(box, shape, seed=3)
    out = fill(frame, None, alpha, Fill.PIXELATE, boxes)
    row = out[30 + height // 2, 30 : 30 + height // 2].astype(int)
    changes = np.count_nonzero(np.abs(np.diff(row, axis=0)).sum(axis=1))
    assert changes <= (height // 2) / (height / 6) + 1, f"cells of about height/6 px, found {changes} changes"


def test_regions_no_box_explains_are_filled_too():
    shape = (120, 160)
    frame = _checkerboard(shape, 2)
    boxes = np.array([[10, 10, 40, 70]], np.float32)
    alpha = feather(boxes_mask(np.array([[10, 10, 40, 70], [100, 20, 130, 90]]), shape), 7)
    assert len(person_regions(alpha, boxes)) == 2
    for mode in (Fill.BLUR, Fill.PIXELATE):
        out = fill(frame, None, alpha, mode, boxes)
        second = alpha[:, 90:] == 255
        assert out[:, 90:][second].std() < 0.1 * frame[:, 90:][second].std()


def test_silhouette_is_flat_colour_inside():
    frame, background, alpha, _ = _scene()
    out = fill(frame, background, alpha, Fill.SILHOUETTE)
    assert (out[alpha == 255] == 128).all(), "neutral grey by default"
    red = fill(frame, background, alpha, "silhouette", colour="red")
    assert (red[alpha == 255] == (0, 0, 255)).all()
    custom = fill(frame, background, alpha, "silhouette", colour=(10, 20, 30))
    assert (custom[alpha == 255] == (10, 20, 30)).all()
    with pytest.raises(ValueError, match="colour"):
        fill(frame, background, alpha, "silhouette", colour=(10, 20))


def test_heatmap_never_shows_the_person():
    frame, background, alpha, _ = _scene()
    other = 255 - frame
    out, out2 = fill(frame, background, alpha, Fill.HEATMAP), fill(other, background, alpha, Fill.HEATMAP)
    inside = alpha == 255
    assert (out[inside] == out2[inside]).all(), "under alpha 255 the output does not depend on the frame"
    assert (out[inside] != background[inside]).any(), "the heat colour shows"


def test_fill_validates_its_arguments():
    frame, background, alpha, _ = _scene()
    with pytest.raises(ValueError, match="fill mode: expected one of background, blackout.*got 'sparkle'"):
        fill(frame, background, alpha, "sparkle")
    with pytest.raises(ValueError, match="fill mode background: expected a background image, got None"):
        fill(frame, None, alpha, "background")
    with pytest.raises(ValueError, match="alpha: expected uint8"):
        fill(frame, background, alpha.astype(np.float32), "blur")
    with pytest.raises(ValueError, match=r"boxes: expected shape \(N, 4\)"):
        fill(frame, background, alpha, "pixelate", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="equal"):
        fill(frame, background[:10], alpha, "blackout")


def test_an_empty_alpha_returns_a_copy():
    frame, background, _, _ = _scene()
    alpha = np.zeros(frame.shape[:2], np.uint8)
    for mode in Fill:
        out = fill(frame, background, alpha, mode)
        assert out is not frame and (out == frame).all()


def test_regions_cover_every_alpha_pixel_exactly_once():
    rng = np.random.default_rng(5)
    alpha = (rng.random((90, 120)) < 0.35).astype(np.uint8) * rng.integers(1, 256, (90, 120), dtype=np.uint8)
    alpha[30:60, 40:80] = 0  # a hole with islands in it
    alpha[40:45, 50:55] = 255
    cover = np.zeros(alpha.shape, int)
    for mask, (x, y, w, h), _ in person_regions(alpha):
        cover[y : y + h, x : x + w] += mask
    assert (cover[alpha > 0] == 1).all()
    frame = rng.integers(0, 256, (*alpha.shape, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (*alpha.shape, 3), dtype=np.uint8)
    a = alpha[..., None] / 255.0
    expected = np.floor(frame * (1 - a) + background * a + 0.5).astype(np.uint8)
    assert (fill(frame, background, alpha, "BACKGROUND") == expected).all()
