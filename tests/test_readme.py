"""Every Python block of the README runs as written (in a scratch folder holding a copy of data/)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_blocks():
    assert BLOCKS, "no ```python block found in README.md"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})


def test_ci_runs_exactly_the_readme_commands():
    """The quick start's two commands are what .ci/run runs, in order (install plus sample, then the tests)."""
    quick = re.search(r"## Quick start.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in quick.splitlines() if line.strip()]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert len(commands) == 2 and ci[-2:] == commands


#: README command lines that need what a test machine lacks: a camera, a network stream, a Ray cluster
NEEDS_MORE = ("-i 0", "rtsp://", "tcp://", "--engine ray")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(("anonymise ", "python -m anonymise ")) and not any(n in line for n in NEEDS_MORE):
                lines.append(line)
    return lines


@pytest.mark.slow
def test_readme_commands_run(tmp_path, clip):
    """Every CLI line of the README's shell blocks runs, in order, on a short real clip standing in for its files."""
    import os
    import shlex
    import subprocess
    import sys

    import cv2

    commands = readme_commands()
    assert len(commands) >= 10, commands
    for name in ("clip.mp4", "in.mp4", "long.mp4", "interview.mp4"):
        shutil.copy(clip, tmp_path / name)
    (tmp_path / "footage" / "day1").mkdir(parents=True)
    shutil.copy(clip, tmp_path / "footage" / "day1" / "a.mp4")
    import av

    with av.open(str(clip)) as c:
        cv2.imwrite(str(tmp_path / "photo.jpg"), next(c.decode(video=0)).to_ndarray(format="bgr24"))
    env = {**os.environ, "ANONYMISE_SEG_MODEL": "yolo11n-seg.yaml"}  # no seg weights offline: the architecture
    for line in commands:
        line = line.replace("--start 1:30", "--start 0:00.5")  # the stand-in clip is 1.2 s long
        args = shlex.split(line)
        args = [sys.executable, *args[1:]] if args[0] == "python" else [shutil.which("anonymise"), *args[1:]]
        r = subprocess.run(
            [*args, "-q"] if "analyze" not in line else args,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, f"{line}: {r.stderr[-1500:]}"
    for made in (
        "clip_anonymised.mp4",
        "out/clean.mp4",
        "footage_anonymised/day1/a.mp4",
        "photo_anonymised.jpg",
        "long_anonymised.mp4",
        "interview_anonymised.mp4",
        "in_anonymised.keypoints.jsonl",
        "in_anonymised.jsonl",
        "footage_anonymised/day1/a.csv",
        "in_anonymised_events.csv",
    ):
        assert (tmp_path / made).is_file(), f"{made} was not written"


def test_the_readme_pictures_are_current():
    """docs/images/modes.json records the code that made the output-modes pictures: a change to that
    code (or to a picture by hand) without running the script again fails here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_readme_images", ROOT / "scripts" / "make_readme_images.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.stale() == "", "run python scripts/make_readme_images.py"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # no headings inside code blocks
    slugs: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        slug = _slug(heading)
        n = slugs.get(slug, 0)
        found.add(slug if n == 0 else f"{slug}-{n}")  # GitHub numbers repeated headings
        slugs[slug] = n + 1
    return found


def test_every_relative_link_and_anchor_in_the_readme_resolves():
    """Every link of the README (and of the docs it links to) to a file of the repository or to a
    heading exists (web links are not fetched: nothing goes over the network)."""
    pages, broken, seen = [ROOT / "README.md"], [], set()
    while pages:
        page = pages.pop()
        if page in seen:
            continue
        seen.add(page)
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)(?: \"[^\"]*\")?\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            where = (page.parent / file).resolve() if file else page
            if not where.exists():
                broken.append(f"{page.name}: {target} (no such file)")
                continue
            if anchor and where.suffix == ".md" and anchor not in _anchors(where):
                broken.append(f"{page.name}: {target} (no such heading)")
            if where.suffix == ".md" and where.is_relative_to(ROOT):
                pages.append(where)
    assert len(seen) > 3 and not broken, broken
