"""Still images: the pixel limit read from the header, and writes whose failures say what failed."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from anonymise import OutputError, SourceError
from anonymise.io import images


def test_a_full_disk_is_reported_as_such_naming_the_output_and_leaving_nothing(tmp_path, monkeypatch):
    """A snapshot on a full disk was once reported as an "unsupported image extension"."""

    def full(self, data):
        Path.write_text(self, "")  # the temporary file exists, as a short write leaves it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    dst = tmp_path / "snap_000010.jpg"
    with pytest.raises(OutputError, match=r"^cannot write .*snap_000010.jpg: No space left on device$"):
        images.write_image(dst, np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == [], "no partial file left"


def test_an_extension_opencv_cannot_write_is_named(tmp_path):
    with pytest.raises(OutputError, match=r"unsupported image extension '\.xyz'"):
        images.write_image(tmp_path / "a.xyz", np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_the_pixel_limit_comes_from_the_header_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    images.write_image(path, np.zeros((30, 40, 3), np.uint8))
    assert images.image_size(path) == (40, 30)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setattr(images.cv2, "imread", lambda *a: pytest.fail("decoded an image over the limit"))
    with pytest.raises(SourceError, match=r"is 40x30 \(0 MP\), over the 0 MP limit"):
        images.read_image(path)
    (tmp_path / "b.png").write_bytes(b"not an image at all")
    with pytest.raises(SourceError, match="cannot read image .*b.png"):
        images.image_size(tmp_path / "b.png")
