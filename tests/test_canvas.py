import av
import cv2
import numpy as np
import pytest

from anonymise import canvas as canvas_module
from anonymise.canvas import Canvas, ColourCanvas, ImageCanvas, VideoCanvas
from anonymise.errors import SourceError

COLOURS = [(0, 0, 200), (0, 200, 0), (200, 0, 0), (200, 200, 0), (0, 200, 200)]  # BGR, one per frame


@pytest.fixture
def clip(tmp_path):
    """5 frames of distinct flat colours, 64x48."""
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for colour in COLOURS:
            image = np.empty((48, 64, 3), np.uint8)
            image[:] = colour
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode())
    return path


def _colour_of(image):
    return int(np.argmin([np.abs(image.astype(int) - c).mean() for c in COLOURS]))


def test_colour_canvases():
    for spec, bgr in (
        ("black", (0, 0, 0)),
        ("white", (255, 255, 255)),
        ("Red", (0, 0, 255)),
        ("#102030", (0x30, 0x20, 0x10)),
    ):
        with Canvas.parse(spec) as c:
            assert isinstance(c, ColourCanvas)
            frame = c.frame(7, (30, 40))
            assert frame.shape == (30, 40, 3) and frame.dtype == np.uint8
            assert (frame == bgr).all()
            assert c.frame(0, (30, 40, 3)).shape == (30, 40, 3), "a frame's full shape is accepted too"


def test_image_canvas_is_resized(tmp_path):
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, 10:] = (255, 0, 0)
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), image)
    with Canvas.parse(str(path)) as c:
        assert isinstance(c, ImageCanvas)
        frame = c.frame(0, (40, 80))
        assert frame.shape == (40, 80, 3)
        assert (frame[:, :35] == 0).all() and (frame[:, 45:] == (255, 0, 0)).all()
        again = c.frame(5, (40, 80))
        assert (again == frame).all() and again is not frame
        again[:] = 1
        assert (c.frame(6, (40, 80)) == frame).all(), "the cached image is not handed out"


def test_video_canvas_loops_and_resizes(clip):
    with Canvas.parse(str(clip)) as c:
        assert isinstance(c, VideoCanvas)
        frames = [c.frame(i, (30, 40)) for i in range(12)]
        assert c.length == 5
        assert all(f.shape == (30, 40, 3) and f.dtype == np.uint8 for f in frames)
        assert [_colour_of(f) for f in frames] == [i % 5 for i in range(12)]
        assert (frames[7] == frames[2]).all(), "frame 7 of the output is frame 2 of a 5-frame canvas"
        assert (c.frame(3, (30, 40)) == frames[3]).all(), "going back works"
        assert _colour_of(c.frame(1, (96, 128))) == 1, "another size"


def test_video_canvas_streams_long_videos_without_reopening_per_frame(clip, monkeypatch):
    opened = []

    class CountingReader(canvas_module.VideoReader):
        def __init__(self, *args, **kwargs):
            opened.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(canvas_module, "VideoReader", CountingReader)
    monkeypatch.setattr(canvas_module, "VIDEO_CACHE_BYTES", 0)  # as if the video were long
    with Canvas.parse(clip) as c:
        colours = [_colour_of(c.frame(i, (48, 64))) for i in range(13)]
    assert colours == [i % 5 for i in range(13)]
    assert len(opened) == 3, "opened once, then once per wrap-around"


def test_short_video_canvas_is_cached_after_its_first_pass(clip, monkeypatch):
    with Canvas.parse(clip) as c:
        first = [c.frame(i, (48, 64)) for i in range(6)]
        assert c._reader is None, "the file is closed once every frame is in memory"
        assert (c.frame(12, (48, 64)) == first[2]).all()


def test_errors(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=f"canvas: no such file: {missing}"):
        Canvas.parse(str(missing))
    with pytest.raises(
        ValueError, match="expected black, white, a colour name, #RRGGBB or a path to an image or video, got 'purple'"
    ):
        Canvas.parse("purple")
    with pytest.raises(ValueError, match="expected black, white"):
        Canvas.parse("#12345")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(SourceError, match=f"cannot read image {broken}"):
        Canvas.parse(broken)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match=str(garbage)) as info:
        Canvas.parse(garbage)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="index: expected an integer >= 0"):
        Canvas.parse("black").frame(-1, (4, 4))
    with pytest.raises(ValueError, match=r"shape: expected \(H, W\)"):
        Canvas.parse("black").frame(0, (0, 4))
