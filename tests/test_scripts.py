"""The benchmark scripts run end to end on a few real frames (their figures are not checked here:
speed targets live in the benchmarks, never in tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_bench_prints_every_stage_and_the_ratios(pedestrians, tmp_path):
    result = run_script(
        "bench.py", "--video", str(pedestrians), "--mode", "bbox", "--frames", "4", "--imgsz", "160", "--rounds", "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for stage in ("decode", "floor", "calls", "pipeline", "naive"):
        assert f"[bbox/cpu] {stage}" in result.stdout, f"no {stage} stage in:\n{result.stdout}"
    lines = result.stdout.splitlines()
    cells = lambda line: re.split(r"\s{2,}", line.strip())  # noqa: E731 - columns are 2+ spaces apart
    head = next(cells(line) for line in lines if line.startswith("mode "))
    row = next(cells(line) for line in lines if line.split()[:2] == ["bbox", "cpu"])
    table = dict(zip(head, row))
    for ratio in ("pipe/floor", "pipe/calls", "pipe/naive"):
        assert float(table[ratio]) > 0, f"{ratio}: {table[ratio]}"
    assert table["frames"] == "4"
    assert table["rounds"] == "2"
    assert "[bbox/cpu] round 2: pipeline" in result.stdout, result.stdout


@pytest.mark.slow
def test_privacy_eval_reports_residual_people_and_caches_the_reference(pedestrians, tmp_path):
    args = ("--video", str(pedestrians), "--frames", "3", "--presets", "plain")
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = run_script("privacy_eval.py", *args, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "residual" in first.stdout and "skeleton recall" in first.stdout
    cached = list((tmp_path / "anonymise" / "privacy_eval").glob("pedestrians-*.npz"))
    assert len(cached) == 1, "the reference's people were not cached"
    again = run_script("privacy_eval.py", *args, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    row = lambda out: next(line for line in out.splitlines() if line.split()[:1] == ["plain"])  # noqa: E731
    assert row(first.stdout).split()[:5] == row(again.stdout).split()[:5], "the cached reference gave other figures"


@pytest.mark.slow
def test_privacy_eval_suite_scores_pixels_on_a_closeup(pedestrians, tmp_path):
    closeup = pedestrians.parent / "closeups" / "book.mkv"
    if not closeup.is_file():
        pytest.skip(f"{closeup} not found")
    result = run_script(
        "privacy_eval.py",
        "--suite",
        "--clips",
        "book",
        "--frames",
        "3",
        "--save-frames",
        str(tmp_path / "frames"),
        env={"XDG_CACHE_HOME": str(tmp_path), "ANONYMISE_TEST_DATA": str(pedestrians.parent)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("book.mkv"))
    cells = row.split()
    assert cells[1] == "closeup" and cells[2] == "3", row
    assert 0 <= float(cells[3]) <= 100, row
    assert (tmp_path / "frames" / "book-0000.png").is_file(), "no frame written for looking at"


@pytest.mark.slow
def test_bench_resolutions_prints_a_row_with_both_presets(pedestrians):
    result = run_script(
        "bench.py",
        "--resolutions",
        "--rows",
        "360p",
        "--frames",
        "3",
        env={"ANONYMISE_TEST_DATA": str(pedestrians.parent)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("360p |")]
    cells = [c.strip() for c in row.split("|")]
    assert cells[1] == "pedestrians.mp4" and cells[2] == "residual people %"
    assert (
        float(cells[3]) > 0
        and float(cells[4]) > 0
        and float(cells[5]) == pytest.approx(float(cells[3]) / float(cells[4]), abs=0.01)
    )
    bad = run_script("bench.py", "--resolutions", "--rows", "4k")
    assert bad.returncode == 1 and "unknown row 4k" in bad.stderr


@pytest.mark.slow
def test_live_bench_serves_a_clip_in_real_time_and_reads_the_summary(pedestrians):
    # torch: no export or int8 calibration on a clean cache eats the run (a clean clone's CI recorded 0.5 s of 8)
    args = ("--", "--imgsz", "320", "--backend", "torch")
    result = run_script("live_bench.py", "--video", str(pedestrians), "--seconds", "14", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    (line,) = [x for x in lines if "frames written" in x]
    frames = int(re.search(r"(\d+) frames written", line).group(1))
    assert frames > 0 and re.search(r"\d+ dropped, latency median \d+ ms, p95 \d+ ms", line), line
    (timing,) = [x for x in lines if x.startswith("recording ")]
    recorded, span = (float(x) for x in re.search(r"recording ([\d.]+) s against ([\d.]+) s", timing).groups())
    # timed by capture: within 5%, or 1.5 frames of the 10 fps clip where the recording is short. A stop
    # writes the look-ahead and the frames already detected; the two in flight (the reader's newest, the
    # one in the models) are not: at the rate processed (1.7 fps on 2 cores, the stale frames dropped)
    # that is up to 2 / rate s more short (a clean clone's CI: 8.49 s against 9.44 s)
    rate = float(re.search(r"stopped: .*\(\d+ frames, ([\d.]+) fps", result.stdout + result.stderr).group(1))
    short = span - recorded
    assert span > 1.0 and -max(0.05 * span, 0.15) <= short <= max(0.05 * span, 0.15) + 2 / rate, timing
