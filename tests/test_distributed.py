"""``--engine ray`` on a local Ray instance with a synthetic detector (skipped, saying why, without Ray)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ColourDetector, is_person_colour, read_frames, synthetic_frames, write_video
from typer.testing import CliRunner

from anonymise import Anonymiser, Config, ConfigError
from anonymise.cli import app
from anonymise.distributed import run_ray
from anonymise.jobs import BatchReport, FileResult

try:
    import ray
except ImportError:
    ray = None

TESTS = Path(__file__).resolve().parent
needs_ray = pytest.mark.skipif(ray is None, reason='Ray is not installed (pip install -e ".[ray]")')
RED = np.array([0, 0, 255], np.uint8)  # BGR; the synthetic scene always has green >= 60, so never this


class DyingDetector(ColourDetector):
    """Kills its Ray worker process (as a segfault or the OOM killer would) on a frame marked red, logging each
    death."""

    def __init__(self, deaths: str):
        super().__init__()
        self.deaths = deaths

    def __call__(self, frames, imgsz=None):
        for frame in frames:
            corner = frame[:8, :8].reshape(-1, 3).mean(axis=0)
            if corner[2] > 200 and corner[1] < 60:
                with open(self.deaths, "a") as f:
                    f.write("died\n")
                os._exit(1)
        return super().__call__(frames, imgsz)


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module: 2 CPUs, no dashboard, this folder importable in its workers."""
    if ray is None:
        pytest.skip('Ray is not installed (pip install -e ".[ray]")')
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, "YOLO_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


def _videos(root: Path, lengths: dict[str, int]) -> dict[str, int]:
    for name, n in lengths.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / name, synthetic_frames(n), audio=None)
    return lengths


def _shape(report: BatchReport, root: Path) -> list[tuple]:
    return [(Path(r.source).relative_to(root).as_posix(), r.status, r.frames, r.message) for r in report.results]


@needs_ray
def test_folder_over_ray_matches_a_local_run(tmp_path, cluster):
    root = tmp_path / "in"
    lengths = _videos(root, {"a.mp4": 6, "b.mp4": 9, "sub/c.mp4": 4})
    (root / "sub" / "broken.mp4").write_bytes(b"\x00" * 1000)
    cv2.imwrite(str(root / "sub" / "d.jpg"), synthetic_frames(1)[0])
    report = run_ray(Config(), root, tmp_path / "out", progress=True, detector_factory=ColourDetector)
    local = Anonymiser(Config(), detector=ColourDetector()).run(root, tmp_path / "local")
    assert _shape(report, root) == _shape(local, root), (
        "same files, order, statuses, frame counts and messages as a local run"
    )
    status = {Path(r.source).name: r.status for r in report.results}
    assert status == {"a.mp4": "done", "b.mp4": "done", "broken.mp4": "failed", "c.mp4": "done", "d.jpg": "done"}
    assert not report.ok and "broken.mp4" in report.failed[0].message
    for name, n in lengths.items():
        frames = read_frames(tmp_path / "out" / name)
        assert len(frames) == n, f"{name}: {len(frames)} frames written, {n} in the input"
        assert not any(is_person_colour(f).any() for f in frames), f"{name}: a person is visible"
    assert not is_person_colour(cv2.imread(str(tmp_path / "out" / "sub" / "d.jpg"))).any()
    assert all(isinstance(r, FileResult) and r.seconds > 0 for r in report.results if r.status == "done")
    assert not [p for p in (tmp_path / "out").rglob(".*")], "no partial files left behind"


@needs_ray
def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, cluster):
    root = tmp_path / "in"
    _videos(root, {"a.mp4": 4, "b.mp4": 4})
    (tmp_path / "out").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "out" / name).write_bytes(b"earlier run")
    again = run_ray(Config(), root, tmp_path / "out", detector_factory=ColourDetector)
    assert [(r.status, r.message) for r in again.results] == [("skipped", "output exists (use --overwrite)")] * 2
    assert (tmp_path / "out" / "a.mp4").read_bytes() == b"earlier run"
    forced = run_ray(Config(), root, tmp_path / "out", overwrite=True, actors=1, detector_factory=ColourDetector)
    assert [(r.status, r.frames) for r in forced.results] == [("done", 4), ("done", 4)]
    assert len(read_frames(tmp_path / "out" / "a.mp4")) == 4


@needs_ray
def test_a_worker_that_dies_is_replaced_and_its_file_retried_then_failed(tmp_path, cluster):
    root = tmp_path / "in"
    _videos(root, {"a.mp4": 5, "c.mp4": 5})
    poison = synthetic_frames(5)
    for f in poison:
        f[:16, :16] = RED
    write_video(root / "b.mp4", poison, audio=None)
    deaths = tmp_path / "deaths.log"
    factory = functools.partial(DyingDetector, str(deaths))
    report = run_ray(Config(), root, tmp_path / "out", retries=1, detector_factory=factory)
    assert [(Path(r.source).name, r.status) for r in report.results] == [
        ("a.mp4", "done"),
        ("b.mp4", "failed"),
        ("c.mp4", "done"),
    ]
    assert deaths.read_text().count("died") == 2, "tried once, retried once"
    assert "Ray worker died on every attempt (2)" in report.failed[0].message
    assert not (tmp_path / "out" / "b.mp4").exists()


@needs_ray
def test_a_single_file(tmp_path, cluster):
    src = write_video(tmp_path / "v.mp4", synthetic_frames(4), audio=None)
    report = run_ray(Config(), src, actors=1, detector_factory=ColourDetector)
    assert [(r.status, r.frames, r.output) for r in report.results] == [("done", 4, tmp_path / "v_anonymised.mp4")]


def test_without_ray_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    write_video(tmp_path / "a.mp4", synthetic_frames(2), audio=None)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r'^--engine ray needs Ray: pip install -e "\.\[ray\]"$'):
        run_ray(Config(), tmp_path)


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        ("0", {}, "--engine ray takes files and folders, not a camera"),
        ("rtsp://host/stream", {}, "not a stream"),
        (None, {"retries": -1}, "retries must be an integer >= 0"),
        (None, {"actors": 0}, "actors must be an integer >= 1"),
        (None, {"cpus_per_actor": 0}, "cpus_per_actor must be a number > 0"),
        (None, {"gpus_per_actor": 1.5}, "above 1 must be a whole number"),
    ],
)
def test_bad_sources_and_options_are_one_line_errors(tmp_path, source, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        run_ray(Config(), source or tmp_path, **kwargs)


def test_a_numbered_gpu_is_refused():
    with pytest.raises(ConfigError, match="Ray gives each worker its GPU"):
        run_ray(Config(device="cuda:1"), ".")


def test_cli_engine_ray_calls_run_ray_with_the_options(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    write_video(tmp_path / "in" / "a.mp4", synthetic_frames(2), audio=None)
    seen = {}

    def fake_run_ray(config, plan, **kwargs):
        seen.update(config=config, plan=plan, **kwargs)
        return BatchReport([FileResult(str(tmp_path / "in" / "a.mp4"), tmp_path / "out" / "a.mp4", "done", 2, 0.1)])

    monkeypatch.setattr("anonymise.distributed.run_ray", fake_run_ray)
    args = [
        "bbox",
        "-i",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "--engine",
        "ray",
        "--ray-address",
        "auto",
        "--ray-actors",
        "3",
        "--ray-gpus-per-actor",
        "0.5",
        "--ray-retries",
        "2",
        "--conf",
        "0.2",
        "-q",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = seen["plan"]  # planned once, by the CLI
    assert seen["config"].conf == 0.2 and plan.source.path == tmp_path / "in" and not plan.overwrite
    assert [(j.source, j.output) for j in plan.jobs] == [(tmp_path / "in" / "a.mp4", tmp_path / "out" / "a.mp4")]
    assert {
        k: seen[k] for k in ("address", "actors", "gpus_per_actor", "cpus_per_actor", "retries", "audio", "progress")
    } == {
        "address": "auto",
        "actors": 3,
        "gpus_per_actor": 0.5,
        "cpus_per_actor": 1.0,
        "retries": 2,
        "audio": True,
        "progress": False,
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "ray", "--show"], "--show needs --engine local"),
        (["--ray-actors", "2"], "--ray-* options need --engine ray"),
    ],
)
def test_cli_engine_errors(tmp_path, extra, message):
    src = write_video(tmp_path / "a.mp4", synthetic_frames(2), audio=None)
    result = CliRunner().invoke(app, ["bbox", "-i", str(src), *extra])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
