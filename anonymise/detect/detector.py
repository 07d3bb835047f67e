"""People and their keypoints from Ultralytics YOLO models (the only module that imports ultralytics).

``bbox`` mode without ``--bbox-model`` takes person boxes from the pose model: one forward
pass gives boxes and keypoints. ``seg`` mode runs the segmentation model for instance masks
(aligned to the original frame: letterbox padding removed, resized back) and the pose model
for keypoints; people the pose model finds but the segmentation missed are masked by box.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..callplan import WIDE, CallPlan, Pass, call_plan, choices
from ..config import MIN_IMGSZ, Config, Mode
from ..detections import Detections, FrameDetections
from ..errors import AnonymiseError, ConfigError, ModelError, first_line
from . import exports
from .loading import Calibration, load_export, load_model, twin
from .tiles import merge_tiles, pad_square, tile_only, tile_windows
from .yolo import LetterBox, person_class, to_detections, torch

log = logging.getLogger("anonymise")

#: how much lower the detection threshold is for int8 models: their scores near the threshold run
#: lower than fp32's. On pedestrians.mp4 at 960 px, int8 (calibrated on its first frames) finds
#: 96.9% of the people torch fp32 finds at the same threshold, and 99.5% with this margin
#: (6% more boxes); bf16 finds 100%. Privacy first: the margin buys the recall back.
INT8_CONF_MARGIN = 0.05
#: inputs per model call at most (frames, tiles and crops alike), on a CPU and on a GPU: a huge photo's
#: hundreds of tiles run in calls of this many, so one call's memory is bounded, and its input shapes few
PIECES_PER_CALL, PIECES_PER_CALL_GPU = 8, 32


def _mps_available() -> bool:
    """Whether torch has Apple's Metal GPU here (Apple silicon, a build with MPS)."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` when CUDA is available, else ``mps`` on Apple silicon, else ``cpu``;
    other values are checked."""
    d = str(device).strip().lower()
    if d in ("auto", ""):
        return "cuda:0" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d == "mps":
        if not _mps_available():
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


class Detector:
    """Runs the models a :class:`Config` asks for on batches of BGR frames."""

    def __init__(self, config: Config, device: str | None = None):
        self.config = config
        self.device = resolve_device(device or config.device)
        cuda = self.device.startswith("cuda")
        self.half = cuda if config.half is None else bool(config.half and cuda)
        self.batch = config.batch or (8 if cuda else 1)
        #: inputs (frames, tiles, crops) per model call at most: the memory of one call stays bounded
        self.pieces = max(self.batch, PIECES_PER_CALL_GPU if cuda else PIECES_PER_CALL)
        # Ultralytics' select_device() sets torch to cpu_count - 1 threads (a core for its training
        # data loader); here inference is the bottleneck, so keep torch's own count (2x on 2 cores).
        self._threads = torch.get_num_threads()
        auto = config.backend == "auto"
        chosen = exports.choose_backend(self.device) if auto else config.backend
        if auto and config.int8 and chosen not in exports.INT8_BACKENDS:
            chosen = "openvino"  # --int8 asks for a quantised export: OpenVINO is the CPU one
        int8 = config.int8
        if int8 is None:  # --backend auto quantises where it can (OpenVINO on a CPU, NNCF installed)
            int8 = auto and exports.int8_default(chosen, self.device)
        #: whether the models are (or are being calibrated to be) int8
        self.int8 = bool(int8)
        self.backend = exports.check_backend(chosen, self.int8, self.half)
        if self.backend == "tensorrt" and not cuda:
            raise ModelError(f"--backend tensorrt runs on a CUDA device, not {self.device} (try --device cuda)")
        openvino_hint = "f32"
        if self.backend == "openvino":
            # OpenVINO runs on the CPU here: fp32 (torch's results) unless --half asks for the CPU's
            # reduced precision (bf16 with AVX512-BF16/AMX, fp16 on ARM), ~1.6x faster; --backend auto
            # takes it where the CPU has it, unless --no-half
            if config.half or (auto and config.half is None):
                openvino_hint = exports.openvino_half_hint(quiet=auto and config.half is None)
            self.half = False
        if auto:
            precision = (
                f" {'int8' if self.int8 else openvino_hint}"
                if self.backend == "openvino"
                else " fp16"
                if self.half
                else ""
            )
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
            export = dict(
                backend=self.backend,
                imgsz=size,
                half=self.half,
                int8=self.int8,
                batch=self.batch,
                device=self.device,
                auto=auto,
            )
            if self.backend == "openvino":
                export["openvino_hint"] = openvino_hint
        #: largest batch per model call (TensorRT engines), by id(model)
        self._max_batch: dict[int, int] = {}
        #: ``[(the model, its twin)]`` the second looks run on beside the detect stage (see
        #: :meth:`look_shares_models`); one holder, shared by the shallow copies the studio makes per job
        self._twin: list[tuple | None] = [None]
        #: set while a run ends: an int8 calibration under way stops (see :meth:`calibrations_stopped`)
        self._stop = threading.Event()
        #: seconds spent so far on one-off work inside model calls: the int8 calibration (quantising
        #: and loading the result), done once and cached; a run reports its speed without it too
        self.one_off_seconds = 0.0
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
            self._max_batch = {
                id(m): self.batch for m in (self.pose_model, self.box_model, self.seg_model) if m is not None
            }
        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        if self.backend != "torch" and config.looks:
            # the second looks' twin loads with the models (~1.5 s here: two OpenVINO compiles), not on
            # the first look, where a live source would stall on it
            self._look_model()

    def _predict(self, model, frames: list[np.ndarray], imgsz: int):
        # a TensorRT engine takes at most its export batch; any model, at most PIECES_PER_CALL pieces
        # (the tiles of a 12 MP photo are 192 at once: 4 GB more for that one call on a CPU)
        limit = min(self._max_batch.get(id(model)) or self.pieces, self.pieces)
        if len(frames) > limit:
            return [r for i in range(0, len(frames), limit) for r in self._predict(model, frames[i : i + limit], imgsz)]
        calibration = getattr(model, "int8_calibration", None)
        if calibration is not None:
            self._calibrate(model, calibration, frames, imgsz)
        try:
            return model.predict(
                frames,
                imgsz=imgsz,
                conf=self._conf(model),
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

    def _conf(self, model) -> float:
        """The detection threshold for ``model``: ``--conf``, less INT8_CONF_MARGIN for an int8 model."""
        if self.int8 and getattr(model, "int8_calibration", None) is None:
            return max(self.config.conf - INT8_CONF_MARGIN, 0.01)
        return self.config.conf

    def _calibrate(self, model, calibration: Calibration, frames: list[np.ndarray], imgsz: int) -> None:
        """Collect model inputs for an int8 calibration; once there are enough, quantise and swap the model in.

        At most two inputs per call (whole frames, tiles and second-look crops in the proportions
        the run uses them), letterboxed as Ultralytics feeds the model. The float model answers
        until the swap; if the calibration fails, it stays, with a warning.
        """
        letterbox = LetterBox((imgsz, imgsz), auto=True, stride=32)
        for frame in frames[:2]:
            calibration.samples.append(letterbox(image=frame))
        if len(calibration.samples) < exports.CALIBRATION_SAMPLES:
            return
        del model.int8_calibration
        started = time.perf_counter()
        try:
            path = exports.quantize_openvino(
                calibration.weights, calibration.imgsz, calibration.float_export, calibration.samples, self._stop
            )
            quantised = load_export(path, model.task, self.backend, self.device, False, "f32")
        except exports.CalibrationStopped:
            # the run ended: the float model answers the rest of it, and the next run calibrates again
            model.int8_calibration = calibration
            return
        except ModelError as e:
            log.warning("%s; running %s", e, calibration.hint)
            self.int8 = False
            return
        finally:
            calibration.samples.clear()
            self.one_off_seconds += time.perf_counter() - started
        for name in ("pose_model", "box_model", "seg_model"):
            if getattr(self, name) is model:
                setattr(self, name, quantised)

    @contextmanager
    def calibrations_stopped(self) -> Iterator[None]:
        """While the block runs, an int8 calibration in another thread (the detect stage) ends at its
        next input, and none starts.

        A run that ends (Ctrl-C, SIGTERM, a cancelled job) waits for its detect thread in this block:
        the thread is not left in NNCF when the process exits, and Ctrl-C does not wait for the
        calibration (10 s here). The next run calibrates again, on its own first frames.
        """
        self._stop.set()
        try:
            yield
        finally:
            self._stop.clear()

    #: the call takes a plan (some passes only, on windows: :class:`anonymise.callplan.CallPlan`)
    multiscale = True

    def resolved(self) -> dict:
        """What this detector runs on, as chosen (the redaction report's settings): the backend, device,
        precision and batch, never ``None`` where a value was picked for "auto"."""
        if self.backend == "openvino":
            precision = "int8" if self.int8 else self.openvino_precision
        else:
            precision = "int8" if self.int8 else "fp16" if self.half else "fp32"
        return {
            "backend": self.backend,
            "device": self.device,
            "precision": precision,
            "batch": self.batch,
            "half": self.half,
            "int8": self.int8,
        }

    def windows(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The small search's tiles for frames of this size (``[]`` when it does not tile)."""
        return tile_windows(height, width, self.config.tiles, self.config.search_min_person)

    def __call__(
        self, frames: list[np.ndarray], imgsz: int | None = None, plan: CallPlan | None = None
    ) -> list[FrameDetections]:
        """Detect people in a batch of frames (all of one size): run the passes of ``plan``, merged.

        The detector plans nothing: ``plan`` (:func:`anonymise.callplan.call_plan`; the stream's
        :class:`anonymise.planner.Planner` makes one per call) says which passes run, at which sizes,
        on which windows. Without one, every pass runs on the whole frame (the plan with the policy's
        defaults, for this frame size): the **frame-scale pass** (the frame at its own size, at most
        640 px, where a person who fills the frame is one box) and the **small-person search** (the
        frame enlarged for ``--min-person`` people, plus tiles when that would exceed 1280 px), where a
        large person is often split into partial boxes. The passes are merged, never traded: every box
        of every pass is masked; skeletons are de-duplicated. A plan of one whole-frame pass gives
        that pass's results as they are.

        ``imgsz``: one pass at that size, no plan (a second look at a crop).
        """
        if not frames:
            return []
        if imgsz:
            return self._run(frames, imgsz)
        if plan is None or not plan.passes:
            height, width = frames[0].shape[:2]
            plan = call_plan(width, height, self.config, self.windows(width, height), **choices(plan))
        return self.execute(frames, plan)

    def execute(self, frames: list[np.ndarray], plan: CallPlan) -> list[FrameDetections]:
        """Each pass of ``plan`` on ``frames``, merged in the plan's order (see :meth:`__call__`)."""
        first, *rest = plan.passes
        if not rest and first.windows is None:
            return self._run(frames, first.imgsz)
        height, width = frames[0].shape[:2]
        shape = (height, width)
        parts: list[list[FrameDetections]] = [[] for _ in frames]
        offsets: list[tuple[int, int, int, int]] = []  # where each part lies in the frame
        wide = [0] * len(frames)  # people per frame the whole-frame passes found (the first parts)
        for step in plan.passes:
            where = [(0, 0, width, height)] if step.windows is None else list(step.windows)
            if not where:
                continue
            found = self._pieces(frames, step)
            n = len(where)
            for i in range(len(frames)):
                mine = found[i * n : (i + 1) * n]
                parts[i].extend(mine)
                if step.kind in WIDE:
                    wide[i] += sum(len(f.people) for f in mine)
            offsets.extend(where)
        nothing = FrameDetections(Detections.empty(shape if self.seg_model is not None else None), Detections.empty())
        merged = [merge_tiles(nothing, p, offsets, shape) for p in parts]
        if plan.tiled:  # who only the tiles found: where the policy keeps them running (ScalePolicy.tiles)
            for found, full in zip(merged, wide):
                found.tile_only = tile_only(found.people.xyxy[:full], found.people.xyxy[full:])
        return merged

    def _pieces(self, frames: list[np.ndarray], step: Pass) -> list[FrameDetections]:
        """``step`` on each frame whole, or on each of its windows of each frame (frame by frame)."""
        if step.windows is None:
            return self._run(frames, step.imgsz)
        # cut as they run, a call's worth at a time: a 48 MP photo's 768 tiles are 236 MB of copies
        cuts = [(f, w) for f in frames for w in step.windows]
        found = []
        for i in range(0, len(cuts), self.pieces):
            pieces = [np.ascontiguousarray(f[y0:y1, x0:x1]) for f, (x0, y0, x1, y1) in cuts[i : i + self.pieces]]
            found += self._run(pieces, step.imgsz)
        return found

    def look(self, crops: list[np.ndarray], imgsz: int) -> list[Detections]:
        """People (boxes, with keypoints when the pose model runs) in crops of any sizes, one model call.

        The second look of the motion guard: the pose model when there is one (its boxes and
        skeletons), else the person detector's boxes (masks are not kept: the caller masks boxes).
        """
        if not crops:
            return []
        model = self._look_model()
        pose = self.pose_model is not None  # the twin of the pose model gives keypoints too
        # Every crop padded to a square (grey, right and bottom: coordinates unchanged), so each call
        # has the input shape (batch, 3, imgsz, imgsz) whatever the crops: a handful of shapes for
        # the runtimes' per-shape caches (oneDNN primitives, OpenVINO reshapes) over a whole video.
        squares = [pad_square(crop) for crop in crops]
        found = []
        for crop, result in zip(crops, self._predict(model, squares, imgsz)):
            people = to_detections(result)  # boxes (and keypoints) only: no mask_shape, no masks
            if not pose:
                people.keypoints = None
            if len(people):
                height, width = crop.shape[:2]
                people.xyxy = np.clip(people.xyxy, 0, [width, height, width, height]).astype(np.float32)
                people = people[(people.xyxy[:, 2] > people.xyxy[:, 0]) & (people.xyxy[:, 3] > people.xyxy[:, 1])]
            found.append(people)
        return found

    def look_shares_models(self) -> bool:
        """Whether :meth:`look` runs on the models the detect stage calls (then the caller serialises
        the two), rather than on a twin of its own.

        An exported model (OpenVINO, ONNX, TensorRT) gets a twin, loaded once on the first look:
        the second looks then run beside the detect stage instead of waiting for its model call.
        PyTorch weights, and a model still collecting its int8 calibration, are shared.
        """
        return self._look_model() is self._main_model()

    def _main_model(self):
        """The model the second looks ask: the pose model when there is one (boxes and skeletons)."""
        return self.pose_model or self.box_model or self.seg_model

    def _look_model(self):
        main = self._main_model()
        if getattr(main, "int8_calibration", None) is not None:
            return main
        entry = self._twin[0]
        if entry is None or entry[0] is not main:  # the first look, or the model swapped after its int8 calibration
            try:
                copy = twin(main) or main
            except ModelError as e:  # the looks share the model, under the lock, as before
                log.warning("second looks share the detect stage's model: %s", e)
                copy = main
            finally:
                if torch.get_num_threads() != self._threads:  # Ultralytics' select_device() changes it
                    torch.set_num_threads(self._threads)
            if id(main) in self._max_batch:  # a TensorRT engine's twin takes the same batches
                self._max_batch = {**self._max_batch, id(copy): self._max_batch[id(main)]}
            entry = self._twin[0] = (main, copy)
        return entry[1]

    def _run(self, frames: list[np.ndarray], imgsz: int) -> list[FrameDetections]:
        height, width = frames[0].shape[:2]
        try:
            poses = (
                [to_detections(r) for r in self._predict(self.pose_model, frames, imgsz)] if self.pose_model else None
            )
            if self.seg_model is not None:
                people = [to_detections(r, (height, width)) for r in self._predict(self.seg_model, frames, imgsz)]
            elif self.box_model is not None:
                people = [to_detections(r) for r in self._predict(self.box_model, frames, imgsz)]
            else:
                people = poses
        except AnonymiseError:
            raise
        except torch.cuda.OutOfMemoryError as e:
            raise AnonymiseError(f"out of GPU memory (try a smaller --batch or --imgsz): {first_line(e)}") from None
        if poses is None or not self.config.pose:
            poses = [Detections.empty() for _ in frames]
        return [FrameDetections(p, k) for p, k in zip(people, poses)]
