"""Still images in and out: the extensions we take, reading, and writing atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError, SourceError
from .files import atomic

#: image extensions taken as input (and written for image outputs and snapshots)
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # applies EXIF orientation
    if image is None:
        raise SourceError(f"cannot read image {path} (corrupt or unsupported format)")
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an image atomically (temporary name, then rename); no metadata is carried over."""
    with atomic(path) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), image)
        except cv2.error as e:
            raise OutputError(f"cannot write {path}: {str(e).strip().splitlines()[-1]}") from None
        if not ok:
            raise OutputError(f"cannot write {path} (unsupported image extension or unwritable folder)")
    return path
