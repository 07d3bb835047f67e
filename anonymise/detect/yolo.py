"""Ultralytics, set up for privacy, and the glue to its models and results.

The package's other modules reach Ultralytics through this one (and :mod:`.tracker`, which
feeds its ByteTrack): importing it sets Ultralytics' offline environment first.
"""

from __future__ import annotations

import os
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from ..detections import Detections
from ..errors import ModelError

# Privacy: no DNS probe at import, no usage analytics, no pip installs at run time.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "False")
# OpenVINO's model converter reports usage through openvino_telemetry when it is installed (it is a
# dependency of openvino): hidden from this process, the converter falls back to its no-op stub.
sys.modules.setdefault("openvino_telemetry", None)

import torch  # noqa: E402
from ultralytics import YOLO  # noqa: E402
from ultralytics.utils import ops  # noqa: E402
from ultralytics.utils.events import events as _ultralytics_events  # noqa: E402

_ultralytics_events.enabled = False  # even if a user sets YOLO_OFFLINE=0

from ultralytics.data.augment import LetterBox  # noqa: E402, F401 - the detector's calibration letterboxes as Ultralytics does

#: OpenVINO CPU properties every model is compiled with. Threads not pinned to cores: the detect
#: stage's model and the second looks' twin run at once, and pinned, their threads wait for each
#: other's cores (measured: docs/decisions.md, "detect/yolo.py").
OPENVINO_CPU = {"ENABLE_CPU_PINNING": False}


def openvino_precision(model, hint: str = "f32") -> bool:
    """Recompile a loaded OpenVINO model with ``INFERENCE_PRECISION_HINT`` (``f32``, ``bf16``, ``f16``)
    and :data:`OPENVINO_CPU`.

    OpenVINO's CPU plugin runs bf16 by default on CPUs with AVX512-BF16 or AMX (about 1.6x faster,
    slightly different boxes and scores: docs/backends.md), and Ultralytics gives no way to ask
    for f32, which is what the torch backend computes on a CPU. Returns whether the hint was applied.
    """

    backend = getattr(getattr(getattr(model, "predictor", None), "model", None), "backend", None)
    compile_model = getattr(backend, "compile_model", None)
    xml = next(Path(str(model.ckpt_path or model.model_name)).glob("*.xml"), None) if backend is not None else None
    if not isinstance(compile_model, partial) or xml is None:
        return False
    config = {**compile_model.keywords.get("config", {}), "INFERENCE_PRECISION_HINT": hint, **OPENVINO_CPU}
    backend.compile_model = partial(
        compile_model.func, *compile_model.args, **{**compile_model.keywords, "config": config}
    )
    backend.ov_compiled_model = backend.compile_model(str(xml))
    return True


def export_weights(
    weights: Path,
    fmt: str,
    *,
    imgsz: int,
    half: bool = False,
    int8: bool = False,
    batch: int = 1,
    data: str | None = None,
    device: str = "cpu",
) -> str:
    """Ultralytics' exporter on ``weights`` (dynamic shapes); returns what it wrote (beside ``weights``).

    Called by :func:`anonymise.detect.exports.exported`, which caches the result.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT

    options = dict(format=fmt, imgsz=imgsz, dynamic=True, batch=batch, device=device, verbose=False)
    if "quantize" in DEFAULT_CFG_DICT:  # Ultralytics >= 8.4.1xx: one precision argument
        options["quantize"] = 8 if int8 else 16 if half else None
    else:
        options.update(half=half, int8=int8)
    if data:
        options["data"] = data
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():  # torch.jit's deprecation notices are not the user's business
            warnings.simplefilter("ignore", FutureWarning)
            return YOLO(str(weights)).export(**options)
    finally:
        torch.set_num_threads(threads)  # the exporter's select_device() changes it


def person_class(names: dict | list) -> int | None:
    """The index of the 'person' class; 0 for an unnamed 80-class (COCO-layout) model built from a yaml."""
    items = list(names.items() if isinstance(names, dict) else enumerate(names))
    for k, v in items:
        if str(v).lower() == "person":
            return int(k)
    if len(items) == 80 and all(str(v) == str(k) for k, v in items):
        return 0
    return None


def short_names(names) -> str:
    values = list(names.values()) if isinstance(names, dict) else list(names)
    return ", ".join(map(str, values[:5])) + (" ..." if len(values) > 5 else "")


def to_detections(result, mask_shape: tuple[int, int] | None = None) -> Detections:
    """Convert one Ultralytics ``Results`` to :class:`Detections`.

    With ``mask_shape`` (segmentation models) the detections always carry masks at that size,
    an empty (0, H, W) stack when nobody was found.
    """
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty(mask_shape)
    xyxy = boxes.xyxy.float().cpu().numpy()
    conf = boxes.conf.float().cpu().numpy()
    cls = boxes.cls.cpu().numpy().astype(np.int64)
    ids = boxes.id.cpu().numpy().astype(np.int64) if boxes.is_track and boxes.id is not None else None
    keypoints = result.keypoints.data.float().cpu().numpy() if result.keypoints is not None else None
    mask = None
    if mask_shape is not None:
        if result.masks is None:
            raise ModelError("the segmentation model returned boxes without masks")
        mask = align_masks(result.masks.data, mask_shape)
    return Detections(xyxy, conf, cls, mask=mask, tracker_id=ids, keypoints=keypoints)


def align_masks(masks: torch.Tensor, frame_shape: tuple[int, int]) -> np.ndarray:
    """(N, h, w) masks at the letterboxed inference size -> (N, H, W) bool at the frame's size."""
    if masks.ndim != 3:
        raise ValueError(f"masks: expected (N, h, w), got {tuple(masks.shape)}")
    scaled = ops.scale_masks(masks[None].float(), tuple(frame_shape))[0]
    return (scaled > 0.5).cpu().numpy()
