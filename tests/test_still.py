"""Large photos: detected at full size, masked and filled at a working size, composed at full size in bands."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import MAGENTA, ColourDetector, is_person_colour, scene

from anonymise import Anonymiser, Config, still
from anonymise.io.images import read_image, write_image


def test_enlarging_a_band_gives_the_rows_a_whole_resize_gives():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (37, 53, 3), np.uint8)
    whole = cv2.resize(small, (211, 149), interpolation=cv2.INTER_LINEAR)
    for rows in (slice(0, 40), slice(40, 101), slice(101, 149)):
        band = still._enlarge(small, rows, (149, 211), (37, 53))
        assert np.abs(band.astype(int) - whole[rows].astype(int)).max() <= 1


class _Sizes(ColourDetector):
    """The colour detector, recording the size of each frame-wide call's frame."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sizes = []

    def __call__(self, frames, imgsz=None, plan=None):
        if imgsz is None:
            self.sizes.append(frames[0].shape[:2])
        return super().__call__(frames, imgsz)


@pytest.mark.parametrize("pose", [False, True])
def test_a_photo_over_the_working_size_is_searched_at_full_size_and_masked_at_full_size(tmp_path, monkeypatch, pose):
    monkeypatch.setattr(still, "WORK_PIXELS", 30_000)  # a 400x300 photo is four times over it
    monkeypatch.setattr(still, "BAND_ROWS", 64)
    photo = scene(300, 400, seed=3)
    photo[120:200, 250:262] = MAGENTA  # 80 px tall, 12 px wide: 6 px wide at the working size
    src, dst = tmp_path / "big.png", tmp_path / "out.png"
    write_image(src, photo)
    detector = _Sizes(keypoints=pose)
    Anonymiser(Config(pose=pose), detector=detector).process_image(src, dst)
    out = read_image(dst)
    assert out.shape == photo.shape
    assert detector.sizes == [(300, 400)], "the search ran on the full-size photo, once"
    assert not is_person_colour(out, 60).any(), "the person is visible"
    far = np.ones(photo.shape[:2], bool)
    far[40:280, 170:340] = False  # the person, their grown body (keypoints say more), the enlargement's blur
    assert np.array_equal(out[far], photo[far]), "pixels far from the person changed"
    if pose:  # the skeleton is drawn at full size, over where the person was
        drawn = np.abs(out.astype(int) - photo.astype(int)).max(axis=-1) > 0
        assert drawn[120:200, 245:267].any()


def test_a_photo_within_the_working_size_is_done_as_one_frame(tmp_path):
    photo = scene(120, 160)
    photo[40:80, 60:80] = MAGENTA
    src, dst = tmp_path / "a.png", tmp_path / "b.png"
    write_image(src, photo)
    detector = _Sizes()
    Anonymiser(Config(pose=False), detector=detector).process_image(src, dst)
    assert detector.sizes == [(120, 160)] and not is_person_colour(read_image(dst)).any()


class _Masks(ColourDetector):
    """Seg-mode people (instance masks), and nobody in the photo."""

    def __call__(self, frames, imgsz=None, plan=None):
        from anonymise.detect import FrameDetections
        from anonymise.detections import Detections

        return [FrameDetections(Detections.empty(f.shape[:2]), Detections.empty()) for f in frames]


def test_a_large_photo_with_nobody_in_seg_mode_is_written_unchanged(tmp_path, monkeypatch):
    """Scaling an empty (0, H, W) mask once raised on np.stack: the photo failed."""
    monkeypatch.setattr(still, "WORK_PIXELS", 30_000)
    photo = scene(300, 400, seed=4)
    src, dst = tmp_path / "big.png", tmp_path / "out.png"
    write_image(src, photo)
    Anonymiser(Config(mode="seg", pose=False), detector=_Masks(with_masks=True)).process_image(src, dst)
    assert np.array_equal(read_image(dst), photo)


def test_a_large_photo_whose_composition_fails_never_shows_the_person(tmp_path, monkeypatch):
    """The working frame's compositing failing: the photo fully covered (fail closed); the full-size
    composition failing: the anonymised working copy, enlarged."""
    monkeypatch.setattr(still, "WORK_PIXELS", 30_000)
    photo = scene(300, 400, seed=5)
    photo[120:200, 250:262] = MAGENTA
    src = tmp_path / "big.png"
    write_image(src, photo)
    for broken in ("anonymise.composite.fill", "anonymise.still.compose"):
        with monkeypatch.context() as patch:
            patch.setattr(broken, lambda *a, **k: (_ for _ in ()).throw(MemoryError("no memory")))
            dst = tmp_path / f"{broken}.png"
            Anonymiser(Config(pose=False), detector=ColourDetector()).process_image(src, dst)
        out = read_image(dst)
        assert not is_person_colour(out, 60).any(), broken
        changed = (np.abs(out.astype(int) - photo.astype(int)).max(axis=-1) > 15).mean()
        assert changed > 0.5 if broken.endswith(".fill") else changed > 0.01, f"{broken}: {changed}"
