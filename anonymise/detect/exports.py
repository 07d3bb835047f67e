"""Inference backends other than PyTorch: export the weights once, cache the result, reuse it.

``exported(weights, backend, imgsz)`` turns PyTorch ``.pt`` weights into an ONNX file, an
OpenVINO model folder or a TensorRT engine through Ultralytics' exporter and caches it
**beside the weights** in ``<weights stem>.exports/``, named by what changes the result::

    yolo11n-pose.exports/yolo11n-pose-869e83fcdffd-960-fp32.onnx
    yolo11n-pose.exports/yolo11n-pose-869e83fcdffd-960-fp32_openvino_model/
    yolo11n-pose.exports/yolo11n-pose-869e83fcdffd-640-fp16-b8-sm90-trt10.13.engine

(the weights' sha256, the export size, the precision, and for TensorRT the largest batch,
the GPU's compute capability and the TensorRT version). Weights inside an installed package
(the bundled pose model in site-packages) or in a folder we cannot write to are exported to
the user cache instead: ``$ANONYMISE_CACHE``, else ``$XDG_CACHE_HOME/anonymise/exports``
(``~/.cache/anonymise/exports``).

An export is written into a temporary folder beside its final place and moved there with one
rename, so an export that crashed or was interrupted never counts as cached.

Every export is ``dynamic`` (any batch and input size) so full frames, batches of tiles and the
320 px second look all run through one file. TensorRT engines have limits: sides from 32 px to
twice the export size, batches up to the export batch (the detector splits larger ones).

Ultralytics is imported only through :mod:`anonymise.detect` (the one module that imports
it), and only when an export actually runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import shutil
import site
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

from ..config import BACKENDS, INT8_BACKENDS
from ..errors import ModelError, first_line
from .weights import sha256_of

log = logging.getLogger("anonymise")
#: the one-off export's progress lines (the CLI shows them at its default level)
export_log = logging.getLogger("anonymise.export")

#: CPUs that OpenVINO's CPU plugin runs on (x86-64; ARM runs it too, but torch is the tested path there)
_OPENVINO_MACHINES = {"x86_64", "amd64", "x64"}

#: Ultralytics' export format name and the suffix of what it writes
_FORMAT = {"onnx": ("onnx", ".onnx"), "openvino": ("openvino", "_openvino_model"), "tensorrt": ("engine", ".engine")}
#: modules each backend needs: import name -> (pip name, extra that installs it)
_NEEDS = {
    "onnx": {"onnx": ("onnx", "onnx"), "onnxruntime": ("onnxruntime", "onnx")},
    "openvino": {"openvino": ("openvino", "openvino")},
    "tensorrt": {"tensorrt": ("tensorrt", "tensorrt"), "onnx": ("onnx", "tensorrt")},
}
#: what ``--int8`` adds: OpenVINO quantises with NNCF
_INT8_NEEDS = {"openvino": {"nncf": ("nncf", "int8")}, "tensorrt": {}}

#: temporary export folders older than this (seconds) are left-overs of a killed process
_STALE_S = 3600
#: model inputs an int8 calibration on the video's own frames collects (see :func:`quantize_openvino`)
CALIBRATION_SAMPLES = 64


def choose_backend(device: str, machine: str | None = None, has=None) -> str:
    """What ``--backend auto`` runs on ``device`` (a resolved ``cpu``, ``cuda:N`` or ``mps``).

    - CUDA: TensorRT when it is installed, else torch (fp16 on CUDA either way);
    - Apple silicon (``mps``): torch on the GPU;
    - an x86-64 CPU: OpenVINO (a dependency there; its CPU plugin runs the nano models 2-3x
      faster than torch), in bf16 where the CPU has AMX or AVX512-BF16 (see :func:`openvino_half_hint`);
    - anything else: torch.

    ``machine`` (``platform.machine()``) and ``has`` (module name -> bool) can be given for tests.
    """
    import platform

    has = has or _has_module
    machine = (machine or platform.machine()).lower()
    if str(device).startswith("cuda"):
        return "tensorrt" if has("tensorrt") and has("onnx") else "torch"
    if device == "cpu" and machine in _OPENVINO_MACHINES and has("openvino"):
        return "openvino"
    return "torch"


def int8_default(backend: str, device: str, has=None) -> bool:
    """Whether ``--backend auto`` quantises to int8: OpenVINO on a CPU, with NNCF installed.

    int8 runs the nano models about 1.8x faster than bf16 on this project's CPUs
    (docs/backends.md), calibrated on the first frames of the user's own video (see
    :func:`quantize_openvino`), so no calibration folder is needed.
    """
    has = has or _has_module
    return backend == "openvino" and device == "cpu" and has("nncf")


def own_calibration(backend: str, int8: bool) -> bool:
    """Whether an int8 export calibrates on the video's own frames: OpenVINO, no ``$ANONYMISE_CALIBRATION``."""
    return bool(int8) and backend == "openvino" and not os.environ.get("ANONYMISE_CALIBRATION")


def check_backend(backend: str, int8: bool = False, half: bool = False) -> str:
    """The backend name, lower-cased, once its packages are importable (and CUDA for TensorRT).

    :class:`ModelError` names the pip extra that installs what is missing.
    """
    name = str(backend).strip().lower()
    if name not in BACKENDS or name == "auto":
        raise ModelError(f"unknown backend {backend!r}: use one of {', '.join(b for b in BACKENDS if b != 'auto')}")
    if name == "torch":
        return name
    if int8 and name not in INT8_BACKENDS:
        raise ModelError(f"--int8 works with the {' and '.join(INT8_BACKENDS)} backends, not {name}")
    needs = {**_NEEDS[name], **(_INT8_NEEDS[name] if int8 else {})}
    missing = {pip: extra for module, (pip, extra) in needs.items() if not _has_module(module)}
    if missing:
        extras = ",".join(dict.fromkeys(missing.values()))
        raise ModelError(
            f"--backend {name}{' --int8' if int8 else ''} needs {' and '.join(missing)} (not installed): "
            f'pip install -e ".[{extras}]"'
        )
    if name == "tensorrt":
        import torch

        if not torch.cuda.is_available():
            raise ModelError(
                "--backend tensorrt needs an NVIDIA GPU with CUDA, and none is available (try --backend onnx or "
                "openvino)"
            )
        if (half or int8) and _trt_major() >= 11 and not _has_module("modelopt"):
            # TensorRT 11 dropped its fp16/int8 builder flags: Ultralytics bakes precision in with ModelOpt
            raise ModelError(
                'fp16/int8 engines with TensorRT 11 need NVIDIA ModelOpt: pip install "nvidia-modelopt[onnx]>=0.44"'
            )
    return name


def openvino_half_hint(quiet: bool = False, capabilities: list[str] | None = None) -> str:
    """OpenVINO's reduced CPU precision on this machine: ``bf16``, ``f16``, or ``f32`` when it has none.

    bf16 needs AMX or AVX512-BF16 (OpenVINO reports ``BF16``), fp16 an ARM CPU with it (``FP16``).
    ``quiet``: no warning when it has neither (``--backend auto`` then runs fp32 without a word).
    """
    if capabilities is None:
        try:
            import openvino

            capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        except Exception:  # noqa: BLE001 - no CPU plugin: fp32 (the export then fails with its own message)
            capabilities = []
    if "BF16" in capabilities:
        return "bf16"
    if "FP16" in capabilities:
        return "f16"
    if not quiet:
        log.warning("--half: this CPU has no bf16 or fp16 support in OpenVINO, running fp32")
    return "f32"


def _has_module(name: str) -> bool:
    """Whether ``name`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _trt_major() -> int:
    try:
        from importlib.metadata import version

        return int(version("tensorrt").split(".")[0])
    except Exception:  # noqa: BLE001 - a tensorrt without metadata: assume the older API
        return 10


def exported(
    weights: str | os.PathLike,
    backend: str,
    imgsz: int,
    half: bool = False,
    int8: bool = False,
    *,
    batch: int = 1,
    device: str | None = None,
    calibration: str | os.PathLike | None = None,
) -> Path:
    """The ``backend`` export of ``weights`` at ``imgsz``: from the cache, or exported now and cached.

    ``half`` stores fp16 weights (ONNX, TensorRT; OpenVINO picks its own precision per device and
    ignores it). ``int8`` quantises (OpenVINO, TensorRT) after calibrating on ``calibration``: a
    folder of images like the ones you process (a few hundred frames) or a YOLO data yaml, by
    default ``$ANONYMISE_CALIBRATION``; offline there is no other source. ``batch`` is the largest
    batch a TensorRT engine takes (other exports take any batch); ``device`` the CUDA device a
    TensorRT engine is built on (ONNX and OpenVINO export on the CPU).

    Raises :class:`ModelError` (one line) for a missing package, TensorRT without CUDA, weights that
    are not PyTorch ``.pt`` files, and any failure of the export itself.
    """
    backend = check_backend(backend, int8, half)
    if backend == "torch":
        raise ModelError("the torch backend runs the .pt weights as they are: nothing to export")
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise ModelError(f"weights to export not found: {weights}")
    if weights.suffix.lower() != ".pt":
        raise ModelError(
            f"--backend {backend} exports from PyTorch .pt weights; {weights.name} is not one (it runs as it is "
            "with --backend torch)"
        )
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or not 32 <= imgsz <= 4096:
        raise ModelError(f"export imgsz must be an integer in [32, 4096], got {imgsz!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ModelError(f"export batch must be an integer >= 1, got {batch!r}")
    half = bool(half) and not int8 and backend != "openvino"
    batch = batch if backend == "tensorrt" else 1
    device = (device or "cuda:0") if backend == "tensorrt" else "cpu"
    name = export_name(weights, backend, imgsz, half=half, int8=int8, batch=batch, device=device)
    for folder in _cache_dirs(weights):
        if _complete(folder / name):
            return folder / name
    calibration = _calibration(calibration) if int8 else None
    folder = _writable_cache_dir(weights)
    return _export_into(folder, name, weights, backend, imgsz, half, int8, batch, calibration, device)


def export_name(
    weights: Path,
    backend: str,
    imgsz: int,
    *,
    half: bool = False,
    int8: bool | str = False,
    batch: int = 1,
    device: str | None = None,
) -> str:
    """The cache file (or folder) name of an export: what is in it, so a changed setting never reuses it.

    ``int8="video"``: quantised on a video's own frames (:func:`quantize_openvino`).
    """
    precision = "int8video" if int8 == "video" else "int8" if int8 else "fp16" if half else "fp32"
    key = f"{weights.stem}-{sha256_of(weights.resolve())[:12]}-{imgsz}-{precision}"
    if backend == "tensorrt":  # an engine is built for one GPU and one TensorRT, with a largest batch
        key += f"-b{batch}-{_gpu_tag(device)}"
    return key + _FORMAT[backend][1]


def user_cache_dir() -> Path:
    """``$ANONYMISE_CACHE``, else ``$XDG_CACHE_HOME/anonymise/exports`` (``~/.cache/anonymise/exports``)."""
    if os.environ.get("ANONYMISE_CACHE"):
        return Path(os.environ["ANONYMISE_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "anonymise" / "exports"


def calibrated(weights: str | os.PathLike, imgsz: int) -> Path | None:
    """The cached OpenVINO int8 export of ``weights`` calibrated on a video's own frames, if any."""
    weights = Path(weights).expanduser()
    name = export_name(weights, "openvino", imgsz, int8="video")
    return next((folder / name for folder in _cache_dirs(weights) if _complete(folder / name)), None)


class CalibrationStopped(Exception):
    """The run ended (Ctrl-C, SIGTERM, a cancelled job) while an int8 calibration was under way."""


def quantize_openvino(
    weights: str | os.PathLike,
    imgsz: int,
    float_export: str | os.PathLike,
    samples: list,
    stop: threading.Event | None = None,
) -> Path:
    """Quantise the fp32 OpenVINO export of ``weights`` to int8 with NNCF, calibrated on ``samples``; cached.

    ``samples`` are model inputs as the detector ran them: letterboxed uint8 BGR images (H, W, 3)
    from the first frames of the user's own video. They are held in memory only, never written:
    they show people unmasked. The result is cached like any export (:func:`calibrated` finds it)
    and written into a temporary folder first, so an interrupted calibration never counts.
    NNCF's settings are Ultralytics' own: the mixed preset, the detection head's sigmoid and
    distribution-focal-loss layers left in floating point.

    ``stop``, once set (from another thread), ends the calibration at its next input with
    :class:`CalibrationStopped`: a process must not exit with NNCF still running in a thread
    (OpenVINO's runtime torn down under it crashes the interpreter), and waiting for the whole
    calibration (10 s here) would hold Ctrl-C.
    """
    import numpy as np

    def check() -> None:
        if stop is not None and stop.is_set():
            raise CalibrationStopped(f"the int8 calibration of {Path(weights).name} was stopped")

    check()
    _quiet_openvino_telemetry()
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # NNCF's import: "No CUDA runtime is found"
    try:
        import nncf
        import openvino as ov
    except ImportError as e:
        raise ModelError(f'int8 calibration needs nncf (not installed): pip install -e ".[int8]" ({e})') from None
    weights, float_export = Path(weights).expanduser(), Path(float_export)
    if not samples:
        raise ModelError("int8 calibration needs at least one frame")
    name = export_name(weights, "openvino", imgsz, int8="video")
    folder = _writable_cache_dir(weights)
    final = folder / name
    _sweep(folder)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=folder))
    try:
        model = ov.Core().read_model(next(float_export.glob("*.xml")))
        ops = model.get_ordered_ops()
        sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
        head = sigmoids[-1].split("/", 1)[0] if sigmoids else None
        ignored = [
            op.get_friendly_name()
            for op in ops
            if op.get_type_name() == "Sigmoid"
            or (head and op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl")))
        ]

        def tensor(image):  # BGR uint8 HWC -> RGB float (1, 3, H, W) in [0, 1], as Ultralytics feeds it
            check()
            return np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255

        export_log.info(
            "int8: calibrating %s on %d inputs from this video's first frames, once; cached as %s",
            weights.name,
            len(samples),
            final,
        )
        started = time.perf_counter()
        logging.getLogger("nncf").setLevel(logging.WARNING)
        # NNCF's progress bars (stdout) only where the export log shows: not under --quiet
        shown = export_log.isEnabledFor(logging.INFO)
        try:
            check()
            with contextlib.nullcontext() if shown else contextlib.redirect_stdout(io.StringIO()):
                quantised = nncf.quantize(
                    model,
                    nncf.Dataset(samples, tensor),
                    preset=nncf.QuantizationPreset.MIXED,
                    subset_size=len(samples),
                    ignored_scope=nncf.IgnoredScope(names=ignored),
                )
            check()
            target = work / name
            target.mkdir()
            ov.save_model(quantised, target / f"{weights.stem}.xml")
            shutil.copyfile(float_export / "metadata.yaml", target / "metadata.yaml")
        except CalibrationStopped:
            raise
        except Exception as e:  # noqa: BLE001 - NNCF and OpenVINO raise many kinds; one line
            check()  # a stop that NNCF wrapped in an error of its own
            raise ModelError(f"int8 calibration of {weights.name} failed: {first_line(e)}") from None
        try:
            os.replace(target, final)  # atomic: the cache holds a whole export or none
        except OSError:
            if not _complete(final):  # not another process that finished the same calibration first
                raise
        export_log.info("calibrated %s in %.1f s", final.name, time.perf_counter() - started)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- where ---------------------------------------------------------------------------------------


def _beside(weights: Path) -> Path:
    return weights.resolve().parent / f"{weights.stem}.exports"


def _cache_dirs(weights: Path) -> list[Path]:
    return [_beside(weights), user_cache_dir()]


def _installed(path: Path) -> bool:
    """Whether ``path`` lies inside an installed package (site-packages): never written into."""
    roots = {sysconfig.get_paths().get(k) for k in ("purelib", "platlib")}
    roots.update(getattr(site, "getsitepackages", lambda: [])())
    roots.add(getattr(site, "getusersitepackages", lambda: None)())
    path = path.resolve()
    for root in filter(None, roots):
        try:
            path.relative_to(Path(root).resolve())
            return True
        except ValueError:
            continue
    return False


def _writable_cache_dir(weights: Path) -> Path:
    beside = _beside(weights)
    if not _installed(weights):
        try:
            beside.mkdir(exist_ok=True)
            if os.access(beside, os.W_OK | os.X_OK):
                return beside
        except OSError:
            pass
    user = user_cache_dir()
    try:
        user.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(
            f"cannot write exports beside {weights.name} nor to {user} ({e.strerror}); set ANONYMISE_CACHE to a "
            "writable folder"
        ) from None
    if not os.access(user, os.W_OK | os.X_OK):
        raise ModelError(
            f"cannot write exports beside {weights.name} nor to {user}; set ANONYMISE_CACHE to a writable folder"
        )
    return user


def _complete(path: Path) -> bool:
    """A finished export: a non-empty file, or an OpenVINO folder with its model and metadata."""
    if path.name.endswith("_openvino_model"):
        return (
            path.is_dir() and any(path.glob("*.xml")) and any(path.glob("*.bin")) and (path / "metadata.yaml").is_file()
        )
    return path.is_file() and path.stat().st_size > 0


def _gpu_tag(device: str | None = None) -> str:
    import torch

    major, minor = torch.cuda.get_device_capability(device) if torch.cuda.is_available() else (0, 0)
    try:
        from importlib.metadata import version

        trt = ".".join(version("tensorrt").split(".")[:2])
    except Exception:  # noqa: BLE001 - a name is enough; check_backend already checked it imports
        trt = "x"
    return f"sm{major}{minor}-trt{trt}"


# -- how -----------------------------------------------------------------------------------------


def _calibration(calibration) -> str:
    source = calibration or os.environ.get("ANONYMISE_CALIBRATION")
    if not source:
        raise ModelError(
            "--int8 calibrates on sample images and none are on this machine: set ANONYMISE_CALIBRATION "
            "to a folder of frames like the ones you process (a few hundred) or a YOLO data yaml"
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelError(f"int8 calibration data not found: {path}")
    return str(path)


def _export_into(
    folder: Path,
    name: str,
    weights: Path,
    backend: str,
    imgsz: int,
    half: bool,
    int8: bool,
    batch: int,
    calibration: str | None,
    device: str,
) -> Path:
    final = folder / name
    _sweep(folder)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=folder))
    try:
        source = work / weights.name  # Ultralytics writes the export beside the file it loads
        try:
            os.link(weights.resolve(), source)
        except OSError:
            shutil.copyfile(weights, source)
        data = _data_yaml(work, calibration) if calibration else None
        fmt = _FORMAT[backend][0]
        export_log.info("exporting %s to %s (%s), once; cached as %s", weights.name, backend, fmt, final)
        started = time.perf_counter()
        try:
            result = Path(
                _export(source, fmt, imgsz=imgsz, half=half, int8=int8, batch=batch, data=data, device=device)
            )
        except ModelError:
            raise
        except Exception as e:  # noqa: BLE001 - the exporter raises many kinds; one line for the CLI
            raise ModelError(f"{backend} export of {weights.name} failed: {first_line(e)}") from None
        if not result.is_absolute():
            result = work / result
        if not result.exists():
            raise ModelError(f"{backend} export of {weights.name} failed: the exporter wrote no {result.name}")
        if final.exists() and not _complete(final):  # a damaged entry (files deleted by hand): replace it
            shutil.rmtree(final, ignore_errors=True) if final.is_dir() else final.unlink(missing_ok=True)
        try:
            os.replace(result, final)  # atomic: the cache holds a whole export or none
        except OSError:
            if not _complete(final):  # not another process that finished the same export first
                raise
        if not _complete(final):
            raise ModelError(f"{backend} export of {weights.name} failed: {final.name} is incomplete")
        export_log.info("exported %s in %.1f s", final.name, time.perf_counter() - started)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export(weights: Path, fmt: str, **options) -> str:
    """Run Ultralytics' exporter (through :mod:`anonymise.detect`, the module that imports it)."""
    if fmt == "openvino":
        _quiet_openvino_telemetry()
    from .yolo import export_weights

    return export_weights(weights, fmt, **options)


def _quiet_openvino_telemetry() -> None:
    """Keep OpenVINO's model converter (and NNCF) from sending usage telemetry.

    ``openvino.tools.ovc`` reports each conversion to Google Analytics unless the user opted out;
    when ``openvino_telemetry`` cannot be imported it uses its own no-op stub.
    """
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import -> ImportError -> stub
        return
    telemetry = sys.modules["openvino_telemetry"]
    if telemetry is not None:  # imported before us: withdraw its consent for this process
        try:
            instance = telemetry.Telemetry.__dict__.get("_SingletonMetaClass__single_instance")
            if instance is not None:
                instance.consent = False
        except Exception:  # noqa: BLE001
            pass


def _data_yaml(work: Path, calibration: str) -> str:
    """A data yaml for calibration: the given one, or one over a folder of images (no labels needed)."""
    path = Path(calibration)
    if path.is_file():
        return str(path)
    images = work / "calibration" / "images"
    images.mkdir(parents=True)
    from ..io.images import IMAGE_EXTS as suffixes

    count = 0
    for i, image in enumerate(sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)):
        target = images / f"{i:06d}{image.suffix.lower()}"  # links: the label cache stays in work/
        try:
            target.symlink_to(image.resolve())
        except OSError:
            shutil.copyfile(image, target)
        count += 1
    if not count:
        raise ModelError(f"int8 calibration folder {path} holds no images")
    yaml = work / "calibration.yaml"
    yaml.write_text(f"path: {images.parent}\ntrain: images\nval: images\nnames:\n  0: person\nkpt_shape: [17, 3]\n")
    return str(yaml)


def _sweep(folder: Path) -> None:
    """Remove temporary export folders that a killed process left behind."""
    now = time.time()
    for left in folder.glob(".*.tmp-*"):
        try:
            if now - left.stat().st_mtime > _STALE_S:
                shutil.rmtree(left, ignore_errors=True)
        except OSError:
            continue
