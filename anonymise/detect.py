"""People and their keypoints from Ultralytics YOLO models (the only module that imports ultralytics).

``bbox`` mode without ``--bbox-model`` takes person boxes from the pose model: one forward
pass gives boxes and keypoints. ``seg`` mode runs the segmentation model for instance masks
(aligned to the original frame: letterbox padding removed, resized back) and the pose model
for keypoints; people the pose model finds but the segmentation missed are masked by box.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backends, models
from .config import MAX_IMGSZ, MIN_IMGSZ, Config, Mode, auto_imgsz, inference_scale
from .errors import AnonymiseError, ConfigError, ModelError
from .types import Detections, suppress

# Privacy: no DNS probe at import, no usage analytics, no pip installs at run time.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "False")
# OpenVINO's model converter reports usage through openvino_telemetry when it is installed (it is a
# dependency of openvino): hidden from this process, the converter falls back to its no-op stub.
sys.modules.setdefault("openvino_telemetry", None)

import torch  # noqa: E402
from ultralytics import YOLO  # noqa: E402
from ultralytics.data.augment import LetterBox  # noqa: E402
from ultralytics.utils import ops  # noqa: E402
from ultralytics.utils.events import events as _ultralytics_events  # noqa: E402

_ultralytics_events.enabled = False  # even if a user sets YOLO_OFFLINE=0

log = logging.getLogger("anonymise")


@dataclass
class FrameDetections:
    """What the models found in one frame."""

    #: what gets masked: boxes, plus instance masks in ``seg`` mode
    people: Detections
    #: pose-model detections with ``keypoints`` (empty when pose is off)
    poses: Detections


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` when CUDA is available, else ``cpu``; other values are checked."""
    d = str(device).strip().lower()
    if d in ("auto", ""):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("device 'mps' requested but this machine has no Apple GPU")
        return "mps"
    if d.isdigit():
        d = f"cuda:{d}"
    if d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{device}' requested but CUDA is not available (try --device cpu)")
        index = int(d[5:]) if ":" in d else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{device}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return f"cuda:{index}"
    raise ConfigError(f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps")


def load_model(spec: str, task: str | tuple[str, ...], option: str, backend: str = "torch", auto: bool = False, **export):
    """Load a YOLO model and check its task; every failure becomes one :class:`ModelError` line.

    With a ``backend`` other than ``torch`` the checked PyTorch weights are exported once (see
    :func:`anonymise.backends.exported`, which takes ``export``: imgsz, half, int8, batch, device)
    and the export is what is returned.
    """
    tasks = (task,) if isinstance(task, str) else task
    resolved = models.resolve(spec)
    if resolved.path is not None and resolved.path.is_file() and resolved.path.suffix.lower() not in models.WEIGHT_SUFFIXES:
        raise ModelError(f"{spec} is not a YOLO model file (expected one of {', '.join(models.WEIGHT_SUFFIXES)})")
    try:
        model = YOLO(resolved.target, task=None)
    except (ConnectionError, FileNotFoundError) as e:
        if resolved.source == "download":
            raise ModelError(models.missing_model_message(spec, option, _first_line(e))) from None
        raise ModelError(f"cannot load model {spec}: {_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - torch/pickle/yaml raise many kinds for a file that is not a model
        raise ModelError(f"{spec} is not a YOLO model: {_first_line(e)}") from None
    if model.task not in tasks:
        want = " or ".join(tasks)
        raise ModelError(f"{spec} is a '{model.task}' model but {option} needs a '{want}' model")
    person = person_class(model.names)
    if person is None:
        raise ModelError(f"{spec} has no 'person' class (classes: {_short(model.names)})")
    if backend != "torch":
        if auto and not _exportable(model, resolved):
            log.info("%s runs as it is (--backend auto exports .pt weights only)", spec)
            return model
        return _exported_model(model, spec, resolved, backend, **export)
    return model


def _exportable(model, resolved: models.ResolvedModel) -> bool:
    """Whether a loaded model has PyTorch ``.pt`` weights on disk to export from (not a .yaml, not an export)."""
    weights = getattr(model, "ckpt_path", None) or (resolved.path if resolved.path is not None and resolved.path.is_file() else None)
    return bool(weights) and Path(weights).suffix.lower() == ".pt"


def _exported_model(model, spec: str, resolved: models.ResolvedModel, backend: str, *, imgsz: int = MIN_IMGSZ,
                    half: bool = False, int8: bool = False, batch: int = 1, device: str | None = None,
                    openvino_hint: str = "f32"):  # fmt: skip
    """The ``backend`` export of a loaded PyTorch model, loaded and run once on a blank image."""
    weights = getattr(model, "ckpt_path", None) or (resolved.path if resolved.path is not None and resolved.path.is_file() else None)
    if not weights or Path(weights).suffix.lower() != ".pt":
        raise ModelError(f"--backend {backend} exports from PyTorch .pt weights; {spec} is not one (run it with --backend torch)")
    own = backends.own_calibration(backend, int8)
    path = backends.calibrated(weights, imgsz) if own else None
    pending = own and path is None
    if path is None:  # calibrating on the video's own frames: the float export runs until then
        path = backends.exported(Path(weights), backend, imgsz, half, int8 and not own, batch=batch, device=device)
    exported = _load_export(path, model.task, backend, device, half, "f32" if int8 and not pending else openvino_hint)
    if pending:
        exported.int8_calibration = Calibration(Path(weights), imgsz, path, openvino_hint)
    return exported


def _load_export(path: Path, task: str, backend: str, device: str | None, half: bool, openvino_hint: str):
    try:
        exported = YOLO(str(path), task=task)  # exported formats do not say their task reliably
        # One call on a blank image builds the runtime now (with the device and precision the
        # detector uses, so it is kept): a broken export fails here, not on the first frame.
        exported.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, device=device or "cpu", half=half, verbose=False)
        if backend == "openvino":
            # int8 models run fastest with the rest in f32: 32 ms a 960 px frame here, 40 ms with bf16
            openvino_precision(exported, openvino_hint)
    except Exception as e:  # noqa: BLE001 - a broken cache entry or runtime: one line, and how to redo it
        raise ModelError(f"cannot run the {backend} export {path} ({_first_line(e)}); delete it to export again") from None
    return exported


@dataclass
class Calibration:
    """An int8 calibration on the video's own frames, under way (see :meth:`Detector._calibrate`).

    The model inputs collected so far live in memory only: they show people unmasked.
    """

    weights: Path
    imgsz: int
    float_export: Path
    #: the float model's precision hint, kept if the calibration fails
    hint: str
    samples: list = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.samples = []


def openvino_precision(model, hint: str = "f32") -> bool:
    """Recompile a loaded OpenVINO model with ``INFERENCE_PRECISION_HINT`` (``f32``, ``bf16``, ``f16``).

    OpenVINO's CPU plugin runs bf16 by default on CPUs with AVX512-BF16 or AMX (about 1.6x faster,
    slightly different boxes and scores: docs/backends.md), and Ultralytics gives no way to ask
    for f32, which is what the torch backend computes on a CPU. Returns whether the hint was applied.
    """
    from functools import partial

    backend = getattr(getattr(getattr(model, "predictor", None), "model", None), "backend", None)
    compile_model = getattr(backend, "compile_model", None)
    xml = next(Path(str(model.ckpt_path or model.model_name)).glob("*.xml"), None) if backend is not None else None
    if not isinstance(compile_model, partial) or xml is None:
        return False
    config = {**compile_model.keywords.get("config", {}), "INFERENCE_PRECISION_HINT": hint}
    backend.compile_model = partial(compile_model.func, *compile_model.args, **{**compile_model.keywords, "config": config})
    backend.ov_compiled_model = backend.compile_model(str(xml))
    return True


def export_weights(weights: Path, fmt: str, *, imgsz: int, half: bool = False, int8: bool = False, batch: int = 1,
                   data: str | None = None, device: str = "cpu") -> str:  # fmt: skip
    """Ultralytics' exporter on ``weights`` (dynamic shapes); returns what it wrote (beside ``weights``).

    Called by :mod:`anonymise.backends`, which caches the result.
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


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__).strip(" ❌⚠️")


def _short(names) -> str:
    values = list(names.values()) if isinstance(names, dict) else list(names)
    return ", ".join(map(str, values[:5])) + (" ..." if len(values) > 5 else "")


class Detector:
    """Runs the models a :class:`Config` asks for on batches of BGR frames."""

    def __init__(self, config: Config, device: str | None = None):
        self.config = config
        self.device = resolve_device(device or config.device)
        cuda = self.device.startswith("cuda")
        self.half = cuda if config.half is None else bool(config.half and cuda)
        self.batch = config.batch or (8 if cuda else 1)
        # Ultralytics' select_device() sets torch to cpu_count - 1 threads (a core for its training
        # data loader); here inference is the bottleneck, so keep torch's own count (2x on 2 cores).
        self._threads = torch.get_num_threads()
        auto = config.backend == "auto"
        chosen = backends.choose_backend(self.device) if auto else config.backend
        if auto and config.int8 and chosen not in backends.INT8_BACKENDS:
            chosen = "openvino"  # --int8 asks for a quantised export: OpenVINO is the CPU one
        int8 = config.int8
        if int8 is None:  # --backend auto quantises where it can (OpenVINO on a CPU, NNCF installed)
            int8 = auto and backends.int8_default(chosen, self.device)
        #: whether the models are (or are being calibrated to be) int8
        self.int8 = bool(int8)
        self.backend = backends.check_backend(chosen, self.int8, self.half)
        if self.backend == "tensorrt" and not cuda:
            raise ModelError(f"--backend tensorrt runs on a CUDA device, not {self.device} (try --device cuda)")
        openvino_hint = "f32"
        if self.backend == "openvino":
            # OpenVINO runs on the CPU here: fp32 (torch's results) unless --half asks for the CPU's
            # reduced precision (bf16 with AVX512-BF16/AMX, fp16 on ARM), ~1.6x faster; --backend auto
            # takes it where the CPU has it, unless --no-half
            if config.half or (auto and config.half is None):
                openvino_hint = backends.openvino_half_hint(quiet=auto and config.half is None)
            self.half = False
        if auto:
            precision = f" {'int8' if self.int8 else openvino_hint}" if self.backend == "openvino" else " fp16" if self.half else ""
            log.info("--backend auto: %s%s on %s", self.backend, precision, self.device)
        #: what the OpenVINO models compute in (``f32``, ``bf16``, ``f16``), else ``None``
        self.openvino_precision = openvino_hint if self.backend == "openvino" else None
        export = {}
        if self.backend != "torch":
            # Exports are dynamic: any batch and input size (full frames, tiles, the 320 px second look).
            # TensorRT's profile spans 32 px to twice the export size, so export at >= 640 (covers 1280).
            size = config.imgsz or MIN_IMGSZ
            if self.backend == "tensorrt":
                size = max(size, MIN_IMGSZ)
            export = dict(backend=self.backend, imgsz=size, half=self.half, int8=self.int8, batch=self.batch, device=self.device,
                          auto=auto)  # fmt: skip
            if self.backend == "openvino":
                export["openvino_hint"] = openvino_hint
        #: largest batch per model call (TensorRT engines), by id(model)
        self._max_batch: dict[int, int] = {}
        self.pose_model = None
        self.box_model = None
        self.seg_model = None
        if config.mode is Mode.SEG:
            self.seg_model = load_model(config.seg_model, "segment", "--seg-model", **export)
        elif config.bbox_model:
            self.box_model = load_model(config.bbox_model, ("detect", "segment", "pose"), "--bbox-model", **export)
        if config.pose or (config.mode is Mode.BBOX and not config.bbox_model):
            self.pose_model = load_model(config.pose_model, "pose", "--pose-model", **export)
        if self.backend == "tensorrt":
            self._max_batch = {id(m): self.batch for m in (self.pose_model, self.box_model, self.seg_model) if m is not None}
        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)

    def _predict(self, model, frames: list[np.ndarray], imgsz: int):
        limit = self._max_batch.get(id(model))
        if limit and len(frames) > limit:  # a TensorRT engine takes at most its export batch
            return [r for i in range(0, len(frames), limit) for r in self._predict(model, frames[i : i + limit], imgsz)]
        calibration = getattr(model, "int8_calibration", None)
        if calibration is not None:
            self._calibrate(model, calibration, frames, imgsz)
        try:
            return model.predict(
                frames,
                imgsz=imgsz,
                conf=self.config.conf,
                iou=self.config.iou,
                classes=[person_class(model.names)],
                device=self.device,
                half=self.half,
                verbose=False,
                retina_masks=False,
            )
        finally:
            if torch.get_num_threads() != self._threads:
                torch.set_num_threads(self._threads)

    def _calibrate(self, model, calibration: Calibration, frames: list[np.ndarray], imgsz: int) -> None:
        """Collect model inputs for an int8 calibration; once there are enough, quantise and swap the model in.

        At most two inputs per call (whole frames, tiles and second-look crops in the proportions
        the run uses them), letterboxed as Ultralytics feeds the model. The float model answers
        until the swap; if the calibration fails, it stays, with a warning.
        """
        letterbox = LetterBox((imgsz, imgsz), auto=True, stride=32)
        for frame in frames[:2]:
            calibration.samples.append(letterbox(image=frame))
        if len(calibration.samples) < backends.CALIBRATION_SAMPLES:
            return
        del model.int8_calibration
        try:
            path = backends.quantize_openvino(calibration.weights, calibration.imgsz, calibration.float_export, calibration.samples)
            quantised = _load_export(path, model.task, self.backend, self.device, False, "f32")
        except ModelError as e:
            log.warning("%s; running %s", e, calibration.hint)
            self.int8 = False
            return
        finally:
            calibration.samples.clear()
        for name in ("pose_model", "box_model", "seg_model"):
            if getattr(self, name) is model:
                setattr(self, name, quantised)

    #: the stream may ask for the frame-scale pass alone (``small=False``, see :class:`anonymise.policy.ScalePolicy`)
    multiscale = True

    def windows(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The small search's tiles for frames of this size (``[]`` when it does not tile)."""
        return tile_windows(height, width, self.config.tiles, self.config.search_min_person)

    def __call__(self, frames: list[np.ndarray], imgsz: int | None = None, small: bool = True, large: bool = True,
                 tiles: list[bool] | None = None) -> list[FrameDetections]:  # fmt: skip
        """Detect people in a batch of frames (all of one size), at every scale.

        Two searches are merged, never traded: the **frame-scale pass** (:func:`large_imgsz`: the
        frame at its own size, at most 640 px, where a person who fills the frame is one box) and
        the **small-person search** (the frame enlarged for ``--min-person`` people, plus tiles
        when that would exceed 1280 px), where a large person is often split into partial boxes.
        Every box of every pass is masked; skeletons are de-duplicated. ``small=False`` runs the
        frame-scale pass alone, ``large=False`` the small search alone (the stream's scale policy
        skips the pass whose kind of person has not been seen lately, with a full sweep every few
        frames; see :mod:`anonymise.policy`).

        ``imgsz`` overrides the inference size (one pass, no tiles), e.g. for a second look at a crop.
        ``tiles`` (one bool per window of :meth:`windows`): which tiles run (``None``: all).
        """
        if not frames:
            return []
        height, width = frames[0].shape[:2]
        if imgsz:
            return self._run(frames, imgsz)
        min_person = self.config.search_min_person
        size = self.config.imgsz or auto_imgsz(width, height, min_person)
        large = large_imgsz(width, height, size) if large or not small else None
        if not small and large:
            return self._run(frames, large)
        windows = tile_windows(height, width, self.config.tiles, min_person)
        if tiles is not None:
            windows = [w for w, keep in zip(windows, tiles) if keep]
        parts_per_frame: list[list[FrameDetections]] = [[] for _ in frames]
        offsets: list[tuple[int, int, int, int]] = []  # where each part lies in the frame
        if large:
            offsets.append((0, 0, width, height))
            for i, found in enumerate(self._run(frames, large)):
                parts_per_frame[i].append(found)
        if windows:
            tile_w, tile_h = windows[0][2] - windows[0][0], windows[0][3] - windows[0][1]
            crops = [np.ascontiguousarray(f[y0:y1, x0:x1]) for f in frames for x0, y0, x1, y1 in windows]
            tiles = self._run(crops, auto_imgsz(tile_w, tile_h, min_person))  # --imgsz is the full-frame pass's
            n = len(windows)
            for i in range(len(frames)):
                parts_per_frame[i].extend(tiles[i * n : (i + 1) * n])
            offsets.extend(windows)
        whole = self._run(frames, size)
        if not offsets:
            return whole
        return [merge_tiles(w, parts, offsets, (height, width)) for w, parts in zip(whole, parts_per_frame)]

    def look(self, crops: list[np.ndarray], imgsz: int) -> list[Detections]:
        """People (boxes, with keypoints when the pose model runs) in crops of any sizes, one model call.

        The second look of the motion guard: the pose model when there is one (its boxes and
        skeletons), else the person detector's boxes (masks are not kept: the caller masks boxes).
        """
        if not crops:
            return []
        model = self.pose_model or self.box_model or self.seg_model
        # Every crop padded to a square (grey, right and bottom: coordinates unchanged), so each call
        # has the input shape (batch, 3, imgsz, imgsz) whatever the crops: a handful of shapes for
        # the runtimes' per-shape caches (oneDNN primitives, OpenVINO reshapes) over a whole video.
        squares = [_pad_square(crop) for crop in crops]
        found = []
        for crop, result in zip(crops, self._predict(model, squares, imgsz)):
            people = to_detections(result)  # boxes (and keypoints) only: no mask_shape, no masks
            if model is not self.pose_model:
                people.keypoints = None
            if len(people):
                height, width = crop.shape[:2]
                people.xyxy = np.clip(people.xyxy, 0, [width, height, width, height]).astype(np.float32)
                people = people[(people.xyxy[:, 2] > people.xyxy[:, 0]) & (people.xyxy[:, 3] > people.xyxy[:, 1])]
            found.append(people)
        return found

    def _run(self, frames: list[np.ndarray], imgsz: int) -> list[FrameDetections]:
        height, width = frames[0].shape[:2]
        try:
            poses = [to_detections(r) for r in self._predict(self.pose_model, frames, imgsz)] if self.pose_model else None
            if self.seg_model is not None:
                people = [to_detections(r, (height, width)) for r in self._predict(self.seg_model, frames, imgsz)]
            elif self.box_model is not None:
                people = [to_detections(r) for r in self._predict(self.box_model, frames, imgsz)]
            else:
                people = poses
        except AnonymiseError:
            raise
        except torch.cuda.OutOfMemoryError as e:
            raise AnonymiseError(f"out of GPU memory (try a smaller --batch or --imgsz): {_first_line(e)}") from None
        if poses is None or not self.config.pose:
            poses = [Detections.empty() for _ in frames]
        return [FrameDetections(p, k) for p, k in zip(people, poses)]


def _pad_square(image: np.ndarray, value: int = 114) -> np.ndarray:
    """``image`` padded right or bottom to a square with Ultralytics' letterbox grey."""
    height, width = image.shape[:2]
    if height == width:
        return image
    side = max(height, width)
    square = np.full((side, side, *image.shape[2:]), value, image.dtype)
    square[:height, :width] = image
    return square


def large_imgsz(width: int, height: int, size: int) -> int | None:
    """Inference size of the frame-scale pass, or ``None`` when the main pass (``size``) does not enlarge the frame.

    The frame at its own size (a multiple of 32), at most ``MIN_IMGSZ``: nano models are trained
    at 640 px, where a person who fills the frame is found whole; enlarged 2x they often split
    such a person into partial boxes (head to thigh, plus fragments).
    """
    long_side = max(width, height)
    if size <= long_side:
        return None
    return min(int(np.ceil(long_side / 32) * 32), MIN_IMGSZ)


def tile_windows(height: int, width: int, tiles: str = "auto", min_person: int = 32) -> list[tuple[int, int, int, int]]:
    """Equal-size overlapping windows (x0, y0, x1, y1) covering the frame, or ``[]`` for no tiling.

    ``auto`` tiles only when enlarging the whole frame enough for ``min_person`` people would
    need more than ``MAX_IMGSZ``; each tile is then sized to be inferred at ``MIN_IMGSZ``.
    ``N`` cuts the long side into N tiles. Tiles overlap by at least two person heights, so
    every person lies whole in some tile.
    """
    tiles = str(tiles).lower()
    long_side = max(height, width)
    if tiles == "off":
        return []
    if tiles == "auto":
        scale = inference_scale(min_person)
        if long_side * scale <= MAX_IMGSZ:
            return []
        side = int(MIN_IMGSZ / scale)
    else:
        if int(tiles) <= 1:
            return []
        side = int(np.ceil(long_side / int(tiles) * 1.25))
    overlap = max(2 * min_person, side // 5)
    side = max(side, overlap + min_person)
    tile_w, tile_h = min(side, width), min(side, height)
    xs = _starts(width, tile_w, overlap)
    ys = _starts(height, tile_h, overlap)
    return [(x, y, x + tile_w, y + tile_h) for y in ys for x in xs]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if tile >= length:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)] if count > 1 else [0]


def merge_tiles(whole: FrameDetections, parts: list[FrameDetections], windows, shape: tuple[int, int]) -> FrameDetections:
    """One frame's detections from a full-frame pass and its tiles.

    Every box (and mask) is kept for masking, duplicates included: dropping a box that is only
    mostly inside another would leave the rest of that person unmasked. Skeletons are
    de-duplicated (:func:`suppress`) so a person cut by a tile edge is drawn once.
    """
    people, poses = [whole.people], [whole.poses]
    for part, (x0, y0, x1, y1) in zip(parts, windows):
        shifted = part.people.shifted(x0, y0)
        if part.people.mask is not None:
            canvas = np.zeros((len(part.people), *shape), bool)
            canvas[:, y0:y1, x0:x1] = part.people.mask
            shifted.mask = canvas
        people.append(shifted)
        poses.append(part.poses.shifted(x0, y0) if part.poses is not part.people else shifted)
    merged_people = Detections.concat(people)
    merged_poses = Detections.concat([p for p in poses if len(p)]) if any(len(p) for p in poses) else Detections.empty()
    if merged_poses.keypoints is not None and len(merged_poses):
        merged_poses = merged_poses[suppress(merged_poses)]
    return FrameDetections(merged_people, merged_poses)


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
