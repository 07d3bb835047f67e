"""Every knob of the pipeline, in frozen dataclasses validated on construction."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from .errors import ConfigError

#: accepted values of ``--backend`` (``auto``: the fastest one this machine has, see :func:`choose_backend`)
BACKENDS = ("auto", "torch", "onnx", "openvino", "tensorrt")
#: backends that take ``--int8`` (they calibrate on images; see :func:`anonymise.detect.exports.exported`)
INT8_BACKENDS = ("openvino", "tensorrt")

DEFAULT_SEG_MODEL = "yolo11n-seg.pt"
DEFAULT_POSE_MODEL = "yolo11n-pose.pt"


class Mode(str, enum.Enum):
    """How people are found: instance masks (``seg``) or boxes (``bbox``)."""

    SEG = "seg"
    BBOX = "bbox"


class Fill(str, enum.Enum):
    """What replaces a person (``--fill``)."""

    #: the reconstructed scene behind them (the default)
    BACKGROUND = "background"
    #: black inside the mask
    BLACKOUT = "blackout"
    #: a Gaussian blur whose kernel scales with the person's size
    BLUR = "blur"
    #: big square cells whose size scales with the person's size
    PIXELATE = "pixelate"
    #: a flat-coloured silhouette over the reconstructed scene
    SILHOUETTE = "silhouette"
    #: the mask as a heat colour over the reconstructed scene
    HEATMAP = "heatmap"
    #: no fill: the frame as it is (for skeleton or data output only, never private on its own)
    NONE = "none"


class Audio(str, enum.Enum):
    """What happens to a video's sound (``--audio``): a voice identifies a person too."""

    #: the spans where someone speaks are silenced (Silero VAD, :mod:`anonymise.speech`), the rest kept
    MUTE_SPEECH = "mute-speech"
    #: a 1 kHz tone over the spans where someone speaks, as broadcast redaction does
    BEEP_SPEECH = "beep-speech"
    #: the soundtrack as it is (its packets copied)
    KEEP = "keep"
    #: no audio track
    DROP = "drop"


@dataclass(frozen=True)
class Config:
    """Processing settings shared by the CLI and the Python API.

    Defaults favour privacy (recall) over precision: a false mask costs a little background,
    a missed person is a leak.
    """

    mode: Mode = Mode.BBOX
    seg_model: str = DEFAULT_SEG_MODEL
    #: person detector for ``bbox`` mode; ``None`` takes the pose model's boxes (one forward pass)
    bbox_model: str | None = None
    pose_model: str = DEFAULT_POSE_MODEL
    #: run the pose model (skeletons, keypoint exports) even when it is not needed for boxes
    pose: bool = True
    #: draw the skeletons (``False`` with ``pose`` on: keypoints are exported, not drawn)
    draw_pose: bool = True
    #: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps`` ...
    device: str = "auto"
    #: inference size; ``None`` picks one from the frame size (see ``auto_imgsz``)
    imgsz: int | None = None
    #: person confidence threshold (low on purpose: recall first)
    conf: float = 0.15
    #: IoU threshold of the detector's non-maximum suppression
    iou: float = 0.6
    #: running-average background learning rate per frame, in (0, 1]
    alpha: float = 0.05
    #: seg: grow every instance mask by this many pixels (distance transform)
    inflate: int = 8
    #: bbox: grow every box by this many pixels
    dilate: int = 8
    #: Gaussian feather kernel size in pixels (0: hard edge); grows outwards, never into the person
    feather: int = 15
    #: minimum keypoint confidence for a joint to be drawn
    pose_conf: float = 0.3
    #: frames the background model sees ahead of the frame being written (output delay);
    #: ``None``: 30 for files, 15 for cameras and streams (their delay: see the README)
    lookahead: int | None = None
    #: live sources in real time: the newest frame is processed, stale ones are dropped (and counted);
    #: ``None``: on for cameras and streams (a file is never dropped from)
    realtime: bool | None = None
    #: smallest person height (pixels) to find: sets the inference size and tiling (see ``auto_imgsz``)
    min_person: int = 32
    #: tiled inference: ``auto`` (when people are small for the frame), ``off``, or N tiles on the long side
    tiles: str = "auto"
    #: track people (Ultralytics ByteTrack) for the hold, back-fill and gap-fill
    track: bool = True
    #: frames a lost track stays masked; also how far back a new track is back-filled
    hold: int = 15
    #: the motion guard: mask moving, person-sized regions no detection explains (files and live sources alike)
    fail_closed: bool = True
    #: grey-level difference from the background that counts as foreground for the motion guard
    motion_threshold: int = 30
    #: look again at a higher resolution on a crop around each unexplained region
    second_look: bool = True
    #: frames per model call; ``None``: 1 on CPU, 8 on CUDA
    batch: int | None = None
    #: half precision inference; ``None``: on for CUDA, off elsewhere
    half: bool | None = None
    #: inference runtime: ``auto`` (OpenVINO on x86-64 CPUs, TensorRT or torch on CUDA, torch elsewhere;
    #: see :func:`anonymise.detect.exports.choose_backend`), ``torch``, or an export cached beside the weights:
    #: ``onnx``, ``openvino``, ``tensorrt``
    backend: str = "auto"
    #: int8 quantisation of the export (``openvino``, ``tensorrt``). OpenVINO calibrates on the first
    #: frames of the video (cached), or on ``$ANONYMISE_CALIBRATION`` when it is set. ``None``: on with
    #: ``backend="auto"`` where OpenVINO runs on the CPU and NNCF is installed
    int8: bool | None = None
    #: the compute policy (see :data:`PRESETS`): ``thorough``, ``balanced`` or ``fast``
    preset: str = "balanced"
    #: a redaction manifest (JSON, see :mod:`anonymise.manifest`): boxes always masked in their frames
    masks: str | None = None
    #: what replaces a person (see :class:`Fill`)
    fill: Fill = Fill.BACKGROUND
    #: what happens to the sound (see :class:`Audio`): speech muted by default
    audio: Audio = Audio.MUTE_SPEECH
    #: draw the skeletons on this instead of the anonymised frame: ``black``, ``white``, a colour
    #: (name or ``#RRGGBB``), or a path to an image or video (looped, resized)
    canvas: str | None = None
    #: skeleton colours: ``limbs`` (one per body part), ``track`` (one per person, stable), or one colour
    skeleton_colour: str = "limbs"
    #: skeleton line thickness in pixels; ``None`` scales it with the frame size
    thickness: int | None = None
    #: show keypoint confidence as joint size
    show_conf: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            raise ConfigError(f"mode must be 'seg' or 'bbox', got {self.mode!r}") from None
        _check_range("conf", self.conf, 0.0, 1.0, low_open=True)
        _check_range("iou", self.iou, 0.0, 1.0, low_open=True)
        _check_range("alpha", self.alpha, 0.0, 1.0, low_open=True)
        _check_range("pose_conf", self.pose_conf, 0.0, 1.0)
        for name in ("inflate", "dilate", "feather", "lookahead", "hold"):
            value = getattr(self, name)
            if name == "lookahead" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
        if self.imgsz is not None and (not isinstance(self.imgsz, int) or not 32 <= self.imgsz <= 4096):
            raise ConfigError(f"imgsz must be an integer in [32, 4096], got {self.imgsz!r}")
        if not isinstance(self.min_person, int) or not 4 <= self.min_person <= 4096:
            raise ConfigError(f"min_person must be an integer in [4, 4096], got {self.min_person!r}")
        if not isinstance(self.motion_threshold, int) or not 1 <= self.motion_threshold <= 255:
            raise ConfigError(f"motion_threshold must be an integer in [1, 255], got {self.motion_threshold!r}")
        tiles = str(self.tiles).strip().lower()
        if tiles not in ("auto", "off") and not (tiles.isdigit() and 1 <= int(tiles) <= 16):
            raise ConfigError(f"tiles must be auto, off or a number of tiles 1-16, got {self.tiles!r}")
        object.__setattr__(self, "tiles", tiles)
        if self.batch is not None and (not isinstance(self.batch, int) or self.batch < 1):
            raise ConfigError(f"batch must be an integer >= 1, got {self.batch!r}")
        backend = str(getattr(self.backend, "value", self.backend)).strip().lower()
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        object.__setattr__(self, "backend", backend)
        preset = str(self.preset).strip().lower()
        if preset not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        object.__setattr__(self, "preset", preset)
        if self.realtime is not None and not isinstance(self.realtime, bool):
            raise ConfigError(f"realtime must be True, False or None, got {self.realtime!r}")
        if self.int8 is not None and not isinstance(self.int8, bool):
            raise ConfigError(f"int8 must be True, False or None, got {self.int8!r}")
        if self.int8 and backend not in (*INT8_BACKENDS, "auto"):
            raise ConfigError(f"int8 needs backend {' or '.join(INT8_BACKENDS)}, got backend {backend!r}")
        try:
            object.__setattr__(self, "fill", Fill(str(getattr(self.fill, "value", self.fill)).lower()))
        except ValueError:
            raise ConfigError(f"fill must be one of {', '.join(f.value for f in Fill)}, got {self.fill!r}") from None
        try:
            object.__setattr__(self, "audio", Audio(str(getattr(self.audio, "value", self.audio)).lower()))
        except ValueError:
            raise ConfigError(f"audio must be one of {', '.join(a.value for a in Audio)}, got {self.audio!r}") from None
        colour = str(self.skeleton_colour).strip().lower()
        if colour not in ("limbs", "track"):
            from .colours import parse_colour

            try:
                parse_colour(colour)
            except ValueError:
                raise ConfigError(
                    f"skeleton_colour must be limbs, track, a colour name or #RRGGBB, got {self.skeleton_colour!r}"
                ) from None
        object.__setattr__(self, "skeleton_colour", colour)
        if self.thickness is not None and (not isinstance(self.thickness, int) or not 1 <= self.thickness <= 100):
            raise ConfigError(f"thickness must be an integer in [1, 100], got {self.thickness!r}")
        if self.canvas is not None and not str(self.canvas).strip():
            raise ConfigError("canvas must be black, white, a colour or a path to an image or video, got ''")
        if self.masks is not None:
            from .manifest import Manifest

            object.__setattr__(self, "masks", str(self.masks))
            Manifest.load(self.masks)  # a bad manifest fails here, before any model loads
        for name in ("seg_model", "pose_model"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must name a model file or an Ultralytics model name")

    @property
    def search_min_person(self) -> int:
        """The smallest person the small-person search is sized for (``fast``: at least 48 px)."""
        return max(self.min_person, PRESETS[self.preset]["min_person"])

    @property
    def looks(self) -> bool:
        """Whether the motion guard and held tracks get second looks on crops (not with ``fast``)."""
        return self.second_look and PRESETS[self.preset]["second_look"]

    @property
    def sweep_every(self) -> int:
        """The small search and the frame-scale pass each run on at least every this many frames."""
        return PRESETS[self.preset]["sweep_every"]

    @property
    def search_every(self) -> int:
        """Between sweeps, the small search runs on at most every this many frames (the tracks carry the people)."""
        return PRESETS[self.preset]["search_every"]

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _check_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name} must be in {bracket}{low:g}, {high:g}], got {value!r}")


#: The compute policy's presets (``--preset``). Each pass of the detector (the frame-scale pass and the
#: small-person search) runs on every frame while its kind of person was seen lately and on at least
#: every ``sweep_every``-th frame otherwise (the small search every ``sweep_every * search_every``-th
#: where it does not tile, and between sweeps on a window around the people and motion only:
#: see :mod:`anonymise.policy`); ``min_person`` is a floor
#: on ``--min-person`` for the small search; ``second_look`` allows the second looks on crops. Where
#: the small search tiles the frame, a rotating ``1 / sweep_every`` share of its tiles runs on each
#: frame it searches, plus a person crop (a quarter of a tile) around each person only the tiles found
#: (``ScalePolicy.tiles``), and the search
#: runs on at most every ``search_every``-th frame between sweeps, the tracks carrying its people
#: across (``ScalePolicy.stride``).
PRESETS: dict[str, dict] = {
    "thorough": {"sweep_every": 1, "search_every": 1, "min_person": 4, "second_look": True},  # all, every frame, deep
    "balanced": {"sweep_every": 5, "search_every": 2, "min_person": 4, "second_look": True},  # the default
    "fast": {"sweep_every": 10, "search_every": 1, "min_person": 48, "second_look": False},
}

#: people this tall (pixels, at the model's input) are found reliably by nano YOLO models
TARGET_PERSON_PX = 64
MIN_IMGSZ, MAX_IMGSZ = 640, 1280


def inference_scale(min_person: int = 32) -> float:
    """How much frames are enlarged for the model so that a ``min_person`` person is found."""
    return TARGET_PERSON_PX / min_person


def auto_imgsz(width: int, height: int, min_person: int = 32) -> int:
    """Inference size for a frame when ``--imgsz`` is not given.

    Nano YOLO models stop seeing people under ~40-60 px at their input, and surveillance frames
    are full of such people, so a frame is enlarged until a ``min_person`` person is
    ``TARGET_PERSON_PX`` tall (480x360 with 32 px people -> 960), within [640, 1280]. Beyond
    1280, tiling takes over (see ``detect.tile_windows``). A multiple of 32 (the models' stride).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    side = min(MAX_IMGSZ, max(MIN_IMGSZ, max(width, height) * inference_scale(min_person)))
    return int(round(side / 32) * 32)
