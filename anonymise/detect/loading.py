"""Loading a YOLO model by name or path, checked, and its export for the chosen backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import MIN_IMGSZ
from ..errors import ModelError, first_line
from . import exports, weights
from .yolo import YOLO, openvino_precision, person_class, short_names

log = logging.getLogger("anonymise")


def load_model(
    spec: str, task: str | tuple[str, ...], option: str, backend: str = "torch", auto: bool = False, **export
):
    """Load a YOLO model and check its task; every failure becomes one :class:`ModelError` line.

    With a ``backend`` other than ``torch`` the checked PyTorch weights are exported once (see
    :func:`anonymise.exports.exported`, which takes ``export``: imgsz, half, int8, batch, device)
    and the export is what is returned.
    """
    tasks = (task,) if isinstance(task, str) else task
    resolved = weights.resolve(spec)
    if (
        resolved.path is not None
        and resolved.path.is_file()
        and resolved.path.suffix.lower() not in weights.WEIGHT_SUFFIXES
    ):
        raise ModelError(f"{spec} is not a YOLO model file (expected one of {', '.join(weights.WEIGHT_SUFFIXES)})")
    try:
        model = YOLO(resolved.target, task=None)
    except (ConnectionError, FileNotFoundError) as e:
        if resolved.source == "download":
            raise ModelError(weights.missing_model_message(spec, option, first_line(e))) from None
        raise ModelError(f"cannot load model {spec}: {first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - torch/pickle/yaml raise many kinds for a file that is not a model
        raise ModelError(f"{spec} is not a YOLO model: {first_line(e)}") from None
    if model.task not in tasks:
        want = " or ".join(tasks)
        raise ModelError(f"{spec} is a '{model.task}' model but {option} needs a '{want}' model")
    person = person_class(model.names)
    if person is None:
        raise ModelError(f"{spec} has no 'person' class (classes: {short_names(model.names)})")
    if backend != "torch":
        if auto and not _exportable(model, resolved):
            log.info("%s runs as it is (--backend auto exports .pt weights only)", spec)
            return model
        return _exported_model(model, spec, resolved, backend, **export)
    return model


def _exportable(model, resolved: weights.ResolvedModel) -> bool:
    """Whether a loaded model has PyTorch ``.pt`` weights on disk to export from (not a .yaml, not an export)."""
    weights = getattr(model, "ckpt_path", None) or (
        resolved.path if resolved.path is not None and resolved.path.is_file() else None
    )
    return bool(weights) and Path(weights).suffix.lower() == ".pt"


def _exported_model(
    model,
    spec: str,
    resolved: weights.ResolvedModel,
    backend: str,
    *,
    imgsz: int = MIN_IMGSZ,
    half: bool = False,
    int8: bool = False,
    batch: int = 1,
    device: str | None = None,
    openvino_hint: str = "f32",
):
    """The ``backend`` export of a loaded PyTorch model, loaded and run once on a blank image."""
    weights = getattr(model, "ckpt_path", None) or (
        resolved.path if resolved.path is not None and resolved.path.is_file() else None
    )
    if not weights or Path(weights).suffix.lower() != ".pt":
        raise ModelError(
            f"--backend {backend} exports from PyTorch .pt weights; {spec} is not one (run it with --backend torch)"
        )
    own = exports.own_calibration(backend, int8)
    path = exports.calibrated(weights, imgsz) if own else None
    pending = own and path is None
    if path is None:  # calibrating on the video's own frames: the float export runs until then
        path = exports.exported(Path(weights), backend, imgsz, half, int8 and not own, batch=batch, device=device)
    exported = load_export(path, model.task, backend, device, half, "f32" if int8 and not pending else openvino_hint)
    if pending:
        exported.int8_calibration = Calibration(Path(weights), imgsz, path, openvino_hint)
    return exported


def load_export(path: Path, task: str, backend: str, device: str | None, half: bool, openvino_hint: str):
    try:
        exported = YOLO(str(path), task=task)  # exported formats do not say their task reliably
        # One call on a blank image builds the runtime now (with the device and precision the
        # detector uses, so it is kept): a broken export fails here, not on the first frame.
        exported.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, device=device or "cpu", half=half, verbose=False)
        if backend == "openvino":
            # int8 models run fastest with the rest in f32: 32 ms a 960 px frame here, 40 ms with bf16
            openvino_precision(exported, openvino_hint)
    except Exception as e:  # noqa: BLE001 - a broken cache entry or runtime: one line, and how to redo it
        raise ModelError(
            f"cannot run the {backend} export {path} ({first_line(e)}); delete it to export again"
        ) from None
    #: how it was loaded, so that :func:`twin` can load it again
    exported.anonymise_export = (Path(path), task, backend, device, half, openvino_hint)
    return exported


def twin(model):
    """A second instance of an exported model (the same file, runtime and precision), for calls from
    another thread; ``None`` for a model that was not loaded by :func:`load_export` (PyTorch weights
    share their instance, under the caller's lock)."""
    how = getattr(model, "anonymise_export", None)
    return None if how is None else load_export(*how)


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
