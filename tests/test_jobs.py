"""Planning a run: outputs for files and folders, and the rules that keep inputs safe."""

import pytest
from conftest import (
    ColourDetector,
    synthetic_frames,
    write_video,
)

from anonymise import Anonymiser, Config, OutputError, SourceError


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    anon = Anonymiser(Config(), detector=ColourDetector())
    with pytest.raises(SourceError, match="no videos or images in"):
        anon.run(empty)
    with pytest.raises(OutputError, match="output folder is the input folder"):
        anon.run(empty, empty)


def test_output_rules(tmp_path):
    src = write_video(tmp_path / "v.mp4", synthetic_frames(3), audio=None)
    anon = Anonymiser(Config(), detector=ColourDetector())
    with pytest.raises(OutputError, match="would overwrite the input"):
        anon.run(src, src)
    with pytest.raises(OutputError, match="needs a video extension"):
        anon.run(src, tmp_path / "out.txt")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        anon.run(src, blocker / "out.mp4")
    assert src.read_bytes()[:4] and blocker.read_text() == "x"
