"""anonymise: remove every person from a video, keep only the motion as a skeleton.

Library use::

    from anonymise import Anonymiser, Config

    anon = Anonymiser(Config(mode="seg"))
    anon.process_file("in.mp4", "out.mp4")

Heavy imports (torch, ultralytics) happen only when an :class:`Anonymiser` is built.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .config import Config, Mode
from .detections import Detections, VideoInfo
from .errors import AnonymiseError, ConfigError, ModelError, OutputError, SourceError

try:
    __version__ = version("anonymise")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "Anonymiser",
    "BatchReport",
    "Config",
    "Detections",
    "FileResult",
    "Mode",
    "VideoInfo",
    "AnonymiseError",
    "ConfigError",
    "ModelError",
    "OutputError",
    "SourceError",
    "__version__",
]


def __getattr__(name: str):
    # The pipeline pulls in PyAV and OpenCV; keep `import anonymise` and `anonymise --help` light.
    if name in ("Anonymiser", "BatchReport", "FileResult"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'anonymise' has no attribute {name!r}")
