"""Phone videos stored sideways with a rotation tag, and photos with EXIF orientation, are turned upright
before detection (a sideways person is a person the models miss) and written upright."""

from __future__ import annotations

import av
import numpy as np
from conftest import ColourDetector, is_person_colour, synthetic_frames

from anonymise import Anonymiser, Config
from anonymise.io.images import read_image
from anonymise.io.video import VideoReader


def write_sideways(path, upright: list[np.ndarray], degrees: int = 90):
    """Frames stored turned by ``degrees`` clockwise, with the display rotation that turns them back."""
    turns = {90: -1, 180: 2, 270: 1}[degrees]
    stored = [np.ascontiguousarray(np.rot90(f, turns)) for f in upright]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.height, s.width = stored[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.set_display_rotation(degrees)  # counter-clockwise, as VideoFrame.rotation reads it
        for image in stored:
            out.mux(s.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(s.encode())
    return path


def test_reader_turns_a_rotated_video_upright(tmp_path):
    upright = synthetic_frames(4, height=120, width=160)
    for degrees in (90, 180, 270):
        path = write_sideways(tmp_path / f"phone{degrees}.mp4", upright, degrees)
        with VideoReader(path) as reader:
            assert (reader.info.width, reader.info.height) == (160, 120), degrees
            frames = [f.image for f in reader]
        assert frames[0].shape == (120, 160, 3)
        error = np.abs(frames[2].astype(int) - upright[2].astype(int)).mean()
        assert error < 6, f"{degrees}: frames are not upright (mean error {error:.1f})"


def test_output_of_a_rotated_video_is_upright_untagged_and_anonymised(tmp_path):
    upright = synthetic_frames(8, height=120, width=160)
    src = write_sideways(tmp_path / "phone.mp4", upright, 90)
    dst = tmp_path / "out.mp4"
    Anonymiser(Config(pose=False), detector=ColourDetector()).process_video(src, dst)
    with av.open(str(dst)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 8
    assert (frames[0].width, frames[0].height) == (160, 120), "the output is not upright"
    assert not frames[0].rotation, "the output kept a rotation tag: players would turn it again"
    for f in frames:
        assert not is_person_colour(f.to_ndarray(format="bgr24")).any()


def test_image_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    upright = synthetic_frames(1, height=120, width=160)[0]
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # stored turned a quarter counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "photo.jpg"
    Image.fromarray(stored[..., ::-1]).save(path, exif=exif, quality=95)
    image = read_image(path)
    assert image.shape == (120, 160, 3)
    assert np.abs(image.astype(int) - upright.astype(int)).mean() < 6
