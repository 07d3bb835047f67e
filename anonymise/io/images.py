"""Still images in and out: the extensions we take, reading, and writing atomically."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError, SourceError
from .files import atomic

#: image extensions taken as input (and written for image outputs and snapshots)
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


#: the largest image taken, in pixels (a 108 MP phone photo is 12000x9000): beyond it one line, as
#: Pillow's decompression-bomb guard does, since a small file can decode to gigabytes (a 1 MB JPEG of
#: 8000x6000 is 144 MB of pixels, and the work on it a multiple of that)
MAX_IMAGE_PIXELS = 120_000_000


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image's header, without decoding it; raises :class:`SourceError` for a
    file that is not an image, or one over :data:`MAX_IMAGE_PIXELS`."""
    from PIL import Image  # Ultralytics' own dependency: reads the header alone

    # Ultralytics replaces Image.open with one that pip-installs a HEIF plugin on a file Pillow cannot
    # identify: nothing is installed or fetched at run time here, so Pillow's own open is used
    opener = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", Image.open)
    try:
        with warnings.catch_warnings():  # Pillow's warning at 89 MP: our own limit decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with opener(path) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        width = height = MAX_IMAGE_PIXELS  # larger than Pillow's own limit: over ours too
    except (OSError, ValueError, SyntaxError):  # Pillow's errors for a file that is no image it knows
        if cv2.haveImageReader(str(path)):  # a format OpenCV reads and Pillow does not: decoded later
            return 0, 0
        raise SourceError(f"cannot read image {path} (corrupt or unsupported format)") from None
    _within_limit(path, width, height)
    return width, height


def _within_limit(path: Path, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise SourceError(
            f"image {path} is {width}x{height} ({width * height / 1e6:.0f} MP), over the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP limit: scale it down first"
        )


def read_image(path: Path) -> np.ndarray:
    image_size(path)  # the pixel limit, before decoding
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # applies EXIF orientation
    if image is None:
        raise SourceError(f"cannot read image {path} (corrupt or unsupported format)")
    _within_limit(path, image.shape[1], image.shape[0])  # a format Pillow cannot size: checked once decoded
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an image atomically (temporary name, then rename); no metadata is carried over.

    Encoded in memory first, so that an extension OpenCV cannot write and a disk that is full (or a
    folder that refuses the file) each get their own message, naming ``path``."""
    try:
        ok, data = cv2.imencode(path.suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(f"cannot write {path}: unsupported image extension {path.suffix!r}")
    with atomic(path) as tmp:
        try:
            tmp.write_bytes(data.tobytes())
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    return path
