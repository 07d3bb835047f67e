"""The command line: real runs on a clip of the shared video, and one clear line for every bad input."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import stream_summary, synthetic_frames, write_video, write_zero_frame_video
from typer.testing import CliRunner

from anonymise import __version__
from anonymise.cli import app

runner = CliRunner()
FAST = ["--imgsz", "320", "--quiet"]


def _default_sigint() -> None:
    """In the child: SIGINT at its default, so that the CLI gets Python's KeyboardInterrupt even where the
    test runner was started as a background job of a script (its children inherit SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _error_line(result) -> str:
    text = (result.stderr if hasattr(result, "stderr") and isinstance(result.stderr, str) else result.output).strip()
    return text


def test_version_and_help():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"anonymise {__version__}"
    for command in ("seg", "bbox"):
        r = runner.invoke(app, [command, "-h"])
        assert r.exit_code == 0
        for option in (
            "--video-source",
            "--output",
            "--pose-model",
            "--device",
            "--imgsz",
            "--conf",
            "--alpha",
            "--feather",
            "--pose-conf",
            "--no-pose",
            "--show",
            "--no-audio",
            "--quiet",
            "--lookahead",
            "--overwrite",
            "--min-person",
            "--tiles",
            "--hold",
            "--fail-closed",
        ):
            assert option in r.output, f"{command} -h lacks {option}"
    assert (
        "--inflate" in runner.invoke(app, ["seg", "-h"]).output
        and "--seg-model" in runner.invoke(app, ["seg", "-h"]).output
    )
    assert (
        "--dilate" in runner.invoke(app, ["bbox", "-h"]).output
        and "--bbox-model" in runner.invoke(app, ["bbox", "-h"]).output
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", ["bbox", "seg"])
def test_real_clip_end_to_end(clip, tmp_path, command):
    """12 frames of pedestrians.mp4: same frame count, duration, fps, H.264 and the AAC track."""
    out = tmp_path / f"{command}.mp4"
    extra = ["--seg-model", "yolo11n-seg.yaml"] if command == "seg" else []
    r = runner.invoke(app, [command, "-i", str(clip), "-o", str(out), *FAST, *extra])
    assert r.exit_code == 0, r.output
    src, dst = stream_summary(clip), stream_summary(out)
    assert dst["frames"] == src["frames"] == 12
    assert dst["duration"] == pytest.approx(src["duration"]) == pytest.approx(1.2)
    assert dst["fps"] == src["fps"] == 10
    assert dst["codec"] == "h264" and dst["pix_fmt"] == "yuv420p" and dst["audio"] == ["aac"]
    assert dst["size"] == (480, 360)
    assert [p.name for p in tmp_path.iterdir()] == [out.name], "no temporary files left"


@pytest.mark.slow
def test_bbox_changes_people_and_keeps_the_rest(clip, tmp_path):
    """On real footage: pixels around the pose model's people change, the lawn far from them does not."""
    from conftest import read_frames

    from anonymise import Config
    from anonymise.detect import Detector

    out = tmp_path / "o.mp4"
    r = runner.invoke(app, ["bbox", "-i", str(clip), "-o", str(out), "--imgsz", "960", "--quiet", "--no-pose"])
    assert r.exit_code == 0, r.output
    src, dst = read_frames(clip), read_frames(out)
    found = Detector(Config(imgsz=960, device="cpu"))([src[-1]])[0].people
    assert len(found) >= 2
    for x1, y1, x2, y2 in found.xyxy.astype(int):
        before = src[-1][y1:y2, x1:x2].astype(int)
        after = dst[-1][y1:y2, x1:x2].astype(int)
        assert np.abs(before - after).mean() > 8, "a person's box still looks like the input"
    lawn = (slice(300, 360), slice(0, 200))  # bottom-left lawn: nobody walks there in this clip
    assert np.abs(src[-1][lawn].astype(int) - dst[-1][lawn].astype(int)).mean() < 2.5


def _write_corrupt(tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return bad


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", r"no such file or folder: .*missing.mp4"),
        ("empty_folder", r"no videos or images in"),
        ("corrupt", r"cannot read .*corrupt.mp4"),
        ("truncated", r"(cannot read|corrupt video) .*truncated.mp4"),
        ("zero_frames", r"no video frames could be decoded"),
        ("camera", r"cannot open camera 97"),
        ("unwritable", r"cannot write to folder .*plainfile"),
        ("same_as_input", r"output would overwrite the input"),
        ("device", r"unknown device 'quantum'"),
        ("not_a_model", r"is not a YOLO model"),
        ("detect_model_for_seg", r"is a 'detect' model but --seg-model needs a 'segment' model"),
        ("bad_value", r"alpha must be in \(0, 1\], got 2.0"),
        ("no_display", r"--show needs a display"),
        ("start_past_end", r"--start 10 s is past the end of .*good.mp4 \(2.0 s long\)"),
        ("image_too_large", r"image .*huge.png is 12000x10001 \(120 MP\), over the 120 MP limit"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, monkeypatch, case, message):
    monkeypatch.chdir(tmp_path)
    good = write_video(tmp_path / "good.mp4", synthetic_frames(20), audio=None)
    args = ["bbox", "-i", str(good), *FAST]
    if case == "missing":
        args[2] = str(tmp_path / "missing.mp4")
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        args[2] = str(tmp_path / "empty")
    elif case == "corrupt":
        args[2] = str(_write_corrupt(tmp_path))
    elif case == "truncated":
        cut = tmp_path / "truncated.mp4"
        cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        args[2] = str(cut)
    elif case == "zero_frames":
        empty = write_zero_frame_video(tmp_path / "zero.mkv")
        args[2] = str(empty)
    elif case == "camera":
        args[2] = "97"
    elif case == "unwritable":
        (tmp_path / "plainfile").write_text("x")
        args += ["-o", str(tmp_path / "plainfile" / "out.mp4")]
    elif case == "same_as_input":
        args += ["-o", str(good)]
    elif case == "device":
        args += ["--device", "quantum"]
    elif case == "not_a_model":
        (tmp_path / "fake.pt").write_bytes(b"definitely not a checkpoint")
        args += ["--pose-model", str(tmp_path / "fake.pt")]
    elif case == "detect_model_for_seg":
        args = ["seg", "-i", str(good), "--seg-model", "yolo11n.yaml", *FAST]
    elif case == "bad_value":
        args += ["--alpha", "2"]
    elif case == "no_display":
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        args += ["--show"]
    elif case == "start_past_end":  # a 0-frame video and exit 0, once
        args += ["--start", "10"]
    elif case == "image_too_large":  # a PNG header alone: decoded, 360 MB
        import zlib

        huge = tmp_path / "huge.png"
        chunk = lambda kind, data: (  # noqa: E731
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )
        header = (12000).to_bytes(4, "big") + (10001).to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
        huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
        args[2] = str(huge)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {r.output!r}"
    assert lines[0].startswith("Error: ")
    import re

    assert re.search(message, lines[0]), lines[0]
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, "a failed run must not create, change or remove files"


@pytest.mark.slow
def test_unwritable_folder_for_a_normal_user(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write to a read-only folder; the plain-file case above covers the error path")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    good = write_video(tmp_path / "good.mp4", synthetic_frames(5), audio=None)
    r = runner.invoke(app, ["bbox", "-i", str(good), "-o", str(locked / "o.mp4"), *FAST])
    assert r.exit_code == 1 and "cannot write to folder" in r.output


@pytest.mark.slow
def test_folder_run_summary_and_exit_code(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    write_video(root / "a.mp4", synthetic_frames(6), audio=None)
    (root / "b.mp4").write_bytes(b"\x00" * 100)
    r = runner.invoke(app, ["bbox", "-i", str(root), "--imgsz", "320"])
    assert r.exit_code == 1
    assert "1 done, 0 skipped, 1 failed" in r.output
    assert (tmp_path / "in_anonymised" / "a.mp4").exists()
    r = runner.invoke(app, ["bbox", "-i", str(root), "--imgsz", "320"])
    assert "0 done, 1 skipped, 1 failed" in r.output


AUDIT = """
import sys, json
events = []
def hook(name, args):
    if name.startswith("socket.") or name in ("urllib.Request", "http.client.connect"):
        events.append(name)
sys.addaudithook(hook)
from anonymise.cli import main
try:
    sys.argv = ["anonymise"] + sys.argv[1:]
    main()
except SystemExit as e:
    code = e.code or 0
else:
    code = 0
print("SOCKET_EVENTS=" + json.dumps(events))
sys.exit(code)
"""


@pytest.mark.slow
def test_a_run_opens_no_socket(clip, tmp_path):
    """Audit hooks see every socket created, resolved or connected: a real run must make none."""
    out = tmp_path / "o.mp4"
    r = subprocess.run(
        [sys.executable, "-c", AUDIT, "bbox", "-i", str(clip), "-o", str(out), *FAST],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "SOCKET_EVENTS=[]" in r.stdout, r.stdout
    assert stream_summary(out)["frames"] == 12


@pytest.mark.slow
def test_help_fits_80_columns_and_keeps_brackets():
    for command in ("seg", "bbox", "export", "analyze", "serve"):
        r = runner.invoke(app, [command, "-h"], terminal_width=80, env={"COLUMNS": "80"})
        assert r.exit_code == 0
        lines = r.output.splitlines()
        assert max(map(len, lines)) <= 80, f"{command} -h: {max(lines, key=len)!r}"
        assert "\u2026" not in r.output, f"{command} -h cuts an option or default"
    assert '".[ray]"' in runner.invoke(app, ["bbox", "-h"], terminal_width=80).output, "[ray] is not markup"


def _sections(text: str) -> dict[str, list[set[str]]]:
    """A help text's sections (a line ``Name:`` at column 0) -> the flags of each option in it, in order."""
    sections, name = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            name = line[:-1]
            sections[name] = []
        elif name is not None and line.startswith("  -"):
            first_column = line[2:].split("  ")[0].split(" <")[0]
            sections[name].append(set(first_column.replace(",", " ").replace("/", " ").split()))
    return sections


@pytest.mark.parametrize("command", ["seg", "bbox"])
def test_every_option_sits_in_a_named_panel_and_the_help_shows_three_examples(command):
    import shlex

    from typer.main import get_command

    from anonymise.cli import IO, PANELS

    click_command = get_command(app).commands[command]
    options = [p for p in click_command.params if p.param_type_name == "option"]
    assert len(options) > 40 and all(p.rich_help_panel in PANELS for p in options), [
        p.name for p in options if p.rich_help_panel not in PANELS
    ]
    text = runner.invoke(app, [command, "-h"], terminal_width=80, env={"COLUMNS": "80"}).output
    sections = _sections(text)
    assert list(sections) == list(PANELS), "the panels, in order, and no catch-all Options"
    for p in options:
        assert any(set(p.opts) <= flags for flags in sections[p.rich_help_panel]), f"{p.opts} not in its panel"
    io = sections[IO]
    assert "--video-source" in io[0] and "--output" in io[1], "the common options first"
    start = next(i for i, flags in enumerate(io) if "--start" in flags)
    assert "--duration" in io[start + 1], "--start and --duration sit together"
    assert "--help" in io[-1]
    examples = [line.strip() for line in text.split("Examples:")[1].split("\n\n")[0].splitlines() if line.strip()]
    runs = [line for line in examples if line.startswith(f"anonymise {command} ")]
    assert len(runs) == 3 and len(examples) == 6, examples  # each with its comment
    clone = Path(__file__).resolve().parents[1]
    for line in runs:  # each parses (its options exist, their values are of the right kind) and its file exists
        args = shlex.split(line)[2:]
        click_command.make_context(command, list(args))
        source = args[args.index("-i") + 1]
        assert source in ("0", "footage/") or (clone / source).is_file(), line


def test_the_imgsz_default_the_help_states_is_the_codes_and_the_readmes():
    from anonymise.config import MAX_IMGSZ, MIN_IMGSZ, TARGET_PERSON_PX, Config, auto_imgsz

    text = " ".join(runner.invoke(app, ["bbox", "-h"], terminal_width=80).output.split())
    size = auto_imgsz(480, 360, Config().min_person)
    stated = f"is {TARGET_PERSON_PX} px at the model, within {MIN_IMGSZ}-{MAX_IMGSZ}: 480x360 -> {size})"
    assert stated in text, text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"{TARGET_PERSON_PX} px at the model, within {MIN_IMGSZ}\u2013{MAX_IMGSZ} (480\u00d7360 \u2192 {size})" in (
        readme
    )
    assert auto_imgsz(480 * 4, 360 * 4) == MAX_IMGSZ and auto_imgsz(160, 120) == MIN_IMGSZ


#: Config fields that are no option of seg or bbox, and why (a new field is an option, or says here why not)
NOT_OPTIONS = {
    "mode": "the command itself: seg or bbox",
    "pose": "from --no-pose and --keypoints: the pose model runs when skeletons are drawn or keypoints written",
    "draw_pose": "from --no-pose",
    "iou": "the detector's suppression overlap: a model constant, set from Python only",
    "track": "the tracker carries the hold, back-fill and gap-fill that privacy relies on: off from Python only",
    "motion_threshold": "the motion guard's grey-level step, tuned with the guard: set from Python only",
    "second_look": "--preset says it (fast has none); off from Python only",
}


def _options(command: str) -> dict:
    from typer.main import get_command

    return {p.name: p for p in get_command(app).commands[command].params if p.param_type_name == "option"}


def test_every_config_field_is_an_option_of_seg_or_bbox_with_configs_default():
    from dataclasses import fields

    from anonymise import Config

    options = {**_options("seg"), **_options("bbox")}
    names = [f.name for f in fields(Config)]
    missing = [name for name in names if name not in options and name not in NOT_OPTIONS]
    assert not missing, f"Config fields with no option in seg or bbox, and not in NOT_OPTIONS: {missing}"
    assert not NOT_OPTIONS.keys() - set(names), "NOT_OPTIONS names a field Config no longer has"
    assert not NOT_OPTIONS.keys() & options.keys(), "a field in NOT_OPTIONS is an option after all"
    for name in options.keys() & set(names):
        assert options[name].default == getattr(Config(), name), f"--{name}'s default is not Config's"
    assert _options("seg").keys() - _options("bbox").keys() == {"inflate", "seg_model"}
    assert _options("bbox").keys() - _options("seg").keys() == {"bbox_model"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["bbox", "--conf", "0.3", "--fill", "blur", "--dilate", "3", "--preset", "fast", "--audio", "keep"],
            {"mode": "bbox", "conf": 0.3, "fill": "blur", "dilate": 3, "preset": "fast", "audio": "keep"},
        ),
        (
            ["seg", "--inflate", "2", "--seg-model", "x-seg.pt", "--no-fail-closed", "--tiles", "3", "--no-audio"],
            {"mode": "seg", "inflate": 2, "seg_model": "x-seg.pt", "fail_closed": False, "tiles": "3", "audio": "drop"},
        ),
        (
            ["bbox", "--no-pose", "--keypoints", "csv", "--skeleton-colour", "track", "--lookahead", "4"],
            {"pose": True, "draw_pose": False, "skeleton_colour": "track", "lookahead": 4},
        ),
        (
            ["export", "--min-person", "40", "--hold", "2", "--backend", "torch"],
            {"fill": "none", "audio": "drop", "min_person": 40, "hold": 2, "backend": "torch", "draw_pose": True},
        ),
    ],
)
def test_the_options_given_reach_the_config(tmp_path, monkeypatch, args, expected):
    """Each command hands its options to Config as given (export: no fill, no audio); the run stops at the plan."""
    import anonymise.jobs
    from anonymise import Config, cli
    from anonymise.errors import ConfigError

    built = []

    class Recorded(Config):
        def __post_init__(self):
            super().__post_init__()
            built.append(self)

    monkeypatch.setattr(cli, "Config", Recorded)

    def stop(*args, **kwargs):
        raise ConfigError("planned")

    monkeypatch.setattr(anonymise.jobs, "plan_jobs", stop)
    r = runner.invoke(app, [args[0], "-i", str(tmp_path / "in.mp4"), *args[1:]])
    assert r.exit_code == 1 and "planned" in r.output, r.output
    assert {name: getattr(built[0], name) for name in expected} == expected


def test_usage_errors_are_one_line_and_exit_1():
    for args, line in (
        (["bbox", "--nope"], "Error: No such option: --nope (Possible options: --no-pose) (see anonymise bbox --help)"),
        (["bbox"], "Error: Missing option '--video-source' / '-i'. (see anonymise bbox --help)"),
        (
            ["bbox", "-i", "x.mp4", "--conf", "high"],
            "Error: Invalid value for '--conf': Input should be a valid number",
        ),
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and r.output.strip().splitlines()[0].startswith(line[:40]), r.output
        assert len(r.output.strip().splitlines()) == 1, r.output


def test_python_m_from_the_folder_holding_the_clone_says_why_it_fails(tmp_path):
    """A clone named anonymise, run from its parent folder: the clone's root shadows the package."""
    (tmp_path / "anonymise").symlink_to(Path(__file__).resolve().parents[1], target_is_directory=True)
    r = subprocess.run(
        [sys.executable, "-m", "anonymise", "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 1
    text = " ".join((r.stderr or r.stdout).split())
    assert "hides the installed package" in text or "No module named anonymise.__main__" in text, text
    assert "Traceback" not in r.stderr


def test_installed_entry_point_and_module(tmp_path):
    exe = shutil.which("anonymise")
    assert exe, "the anonymise entry point is not installed (pip install -e .)"
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"anonymise {__version__}"
    r = subprocess.run(
        [sys.executable, "-m", "anonymise", "bbox", "-i", str(tmp_path / "nope.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"Error: no such file or folder: {tmp_path / 'nope.mp4'}"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, code, message",
    [
        (signal.SIGINT, 130, "Error: interrupted; unfinished outputs were removed"),
        (signal.SIGTERM, 143, "Error: stopped by SIGTERM; unfinished outputs were removed"),
        (signal.SIGHUP, 129, "Error: stopped by SIGHUP; unfinished outputs were removed"),
    ],
)
def test_ctrl_c_sigterm_and_sighup_leave_no_file(tmp_path, signum, code, message):
    src = write_video(tmp_path / "long.mp4", synthetic_frames(300, speed=0), audio="aac")
    proc = subprocess.Popen(
        [shutil.which("anonymise"), "bbox", "-i", str(src), "--imgsz", "320", "--lookahead", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
        cwd=tmp_path,
        preexec_fn=_default_sigint,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".long_anonymised.partial-*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".long_anonymised.partial-*")), "the run never started writing"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip() == message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"], "a partial output or lock was left behind"


@pytest.mark.slow
def test_ctrl_c_during_the_int8_calibration_exits_cleanly_and_caches_nothing(tmp_path):
    """The first run on a fresh cache calibrates int8 in its detect thread: Ctrl-C then stops the
    calibration too (a thread left in NNCF crashed the exit with SIGSEGV), and nothing half-made stays."""
    src = write_video(tmp_path / "long.mp4", synthetic_frames(300, speed=0), audio="aac")
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [shutil.which("anonymise"), "bbox", "-i", str(src), "--imgsz", "320", "--lookahead", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**_clean_env(), "ANONYMISE_CACHE": str(cache)},
        cwd=tmp_path,
        preexec_fn=_default_sigint,
    )
    lines, calibrating = [], threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line.rstrip())
            if line.startswith("INFO: int8: calibrating"):
                calibrating.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert calibrating.wait(180), "\n".join(lines)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(10)
    assert proc.returncode == 130, "\n".join(lines)
    assert lines[-1] == "Error: interrupted; unfinished outputs were removed", lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "long.mp4"], "a partial output was left"
    assert [p.name for p in cache.iterdir() if "int8" in p.name or ".tmp-" in p.name] == [], "nothing half-made"


def test_the_exit_skips_the_interpreter_shutdown_only_while_a_pipeline_thread_is_stuck(monkeypatch):
    """A decode, detect or encode thread still in native code at exit would crash the shutdown."""
    from anonymise import cli

    exits = []
    monkeypatch.setattr(cli.os, "_exit", exits.append)
    release = threading.Event()
    other = threading.Thread(target=release.wait, name="a-library-thread", daemon=True)
    other.start()
    cli._exit_past_stuck_threads(130)
    assert exits == [], "another library's thread is not ours to judge"
    stuck = threading.Thread(target=release.wait, name="anonymise-detect", daemon=True)
    stuck.start()
    try:
        cli._exit_past_stuck_threads(130)
        cli._exit_past_stuck_threads(None)
    finally:
        release.set()
        stuck.join()
        other.join()
    assert exits == [130, 0]
    cli._exit_past_stuck_threads(1)
    assert exits == [130, 0], "nothing stuck: the normal exit"


@pytest.mark.slow
def test_a_camera_that_cannot_be_opened_is_one_line(tmp_path):
    """OpenCV probes every backend for a missing camera and logs a dozen warnings: silenced, one line left."""
    r = subprocess.run(
        [shutil.which("anonymise"), "bbox", "-i", "63", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
        cwd=tmp_path,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["Error: cannot open camera 63 (no such device, or it is busy)"], r.stderr


@pytest.mark.parametrize("case", ["corrupt", "zero_frames", "start_past_end"])
def test_a_bad_input_is_reported_before_the_models_load(tmp_path, monkeypatch, case):
    """Probed first: one line in a second, not after the 6-12 s the models take to load."""

    def no_models(*args, **kwargs):
        raise AssertionError("the models loaded for an input that cannot be processed")

    monkeypatch.setattr("anonymise.detect.Detector", no_models)
    path = {
        "corrupt": lambda: _write_corrupt(tmp_path),
        "zero_frames": lambda: write_zero_frame_video(tmp_path / "zero.mkv"),
        "start_past_end": lambda: write_video(tmp_path / "good.mp4", synthetic_frames(20), audio=None),
    }[case]()
    args = ["bbox", "-i", str(path)] + (["--start", "3"] if case == "start_past_end" else [])
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1, r.output
    assert "AssertionError" not in r.output
