"""People and their keypoints from Ultralytics YOLO models: everything that imports Ultralytics.

- :mod:`.yolo`: Ultralytics set up offline, and the glue to its models and results;
- :mod:`.weights`: where weights come from (bundled, a path, a name to download when online);
- :mod:`.exports`: the backends other than PyTorch, exported once and cached; int8 calibration;
- :mod:`.loading`: a model by name or path, checked, as the chosen backend runs it;
- :mod:`.tiles`: the small-person search's tiles, and merging what each part found;
- :mod:`.detector`: :class:`Detector`, the passes a frame gets, merged;
- :mod:`.tracker`: Ultralytics' ByteTrack over our detections, with a hold of lost tracks.
"""

from ..callplan import alone_imgsz, large_imgsz
from ..detections import FrameDetections, suppress
from .detector import Detector, resolve_device
from .loading import load_model
from .tiles import merge_tiles, tile_only, tile_windows
from .yolo import align_masks, person_class, to_detections

__all__ = [
    "Detector",
    "FrameDetections",
    "align_masks",
    "alone_imgsz",
    "large_imgsz",
    "load_model",
    "merge_tiles",
    "person_class",
    "resolve_device",
    "suppress",
    "tile_only",
    "tile_windows",
    "to_detections",
]
