"""The studio in a real browser: Debian's Chromium driven by Playwright, the real models, a real
clip cut from pedestrians.mp4. Upload (nothing ticked: the original is kept while the job is
open for review, as the form says), progress to 100%, review (the player, its duration, the
timeline), a manual box drawn and re-rendered, the report downloaded, the job marked reviewed
(its original deleted), and the jobs page telling its version. And another page on
127.0.0.1 (same-site, so the studio's cookie goes with its requests) that tries to upload,
re-render and play the kept original, and gets nothing.

Screenshots of each step go to a temporary folder, or to ``$ANONYMISE_SCREENSHOTS`` when set
(``ANONYMISE_SCREENSHOTS=docs/images python -m pytest tests/studio/test_browser.py`` refreshes
the README's). Skipped, saying why, where Chromium or Playwright is absent.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ColourDetector, cut_clip, read_frames, synthetic_frames, write_video

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra has it)")
pytest.importorskip("fastapi", reason="the studio extra is not installed")
if CHROMIUM is None:
    pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

FRAMES = 30  # 3 s of pedestrians.mp4 at 10 fps: past the 30-frame look-ahead is not needed, a few people walk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app):
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from anonymise.studio import build

    jobs = tmp_path_factory.mktemp("studio") / "jobs"
    app, store, token = build(jobs)  # the defaults: originals kept while their job is open for review
    with running(app) as url:
        yield url, token, store


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def shots() -> Path:
    folder = Path(os.environ.get("ANONYMISE_SCREENSHOTS") or Path(os.environ.get("TMPDIR", "/tmp")) / "studio-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_upload_watch_review_correct_rerender_and_download(server, browser, pedestrians, tmp_path):
    url, token, store = server
    clip = cut_clip(pedestrians, tmp_path / "walkers.mp4", FRAMES, skip=250)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    assert page.goto(f"{url}/").status == 401, "no token, no studio"
    problems = []  # from here on: errors on the console, and any answer >= 400
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{url}/?token={token}")
    assert page.url == f"{url}/", "the token leaves the address bar"
    playable = page.evaluate("() => document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.640028\"')")
    assert playable in ("probably", "maybe"), "this Chromium cannot play H.264: the studio would need a WebM copy"

    # upload with nothing ticked, and watch the progress reach 100%
    page.wait_for_function("() => document.querySelector('#originals-note').textContent.length > 0")
    assert "72 hours after upload" in page.inner_text("#originals-note"), "the form says how long originals stay"
    assert page.is_checked("#keep_original"), "kept while the job is open for review, unasked"
    assert (
        page.input_value("select[name=fill]") == "background" and page.input_value("select[name=preset]") == "balanced"
    )
    page.set_input_files("#files", str(clip))
    page.screenshot(full_page=True, path=shots() / "studio-upload.png")
    started = time.perf_counter()
    page.click("#start")
    page.wait_for_selector("tr.job .status-running, tr.job .status-done", timeout=60_000)
    page.wait_for_selector("tr.job .status-done", timeout=240_000)
    uploaded_to_done = time.perf_counter() - started
    assert "100%" in page.inner_text("tr.job .percent")
    page.screenshot(full_page=True, path=shots() / "studio-jobs.png")
    (job,) = store.jobs.values()
    assert job.frames == FRAMES and job.status == "done"
    assert page.inner_text("tr.job td.version") == "original render" and "kept until" in page.inner_text(
        "tr.job td.original"
    )

    # the review page: the player loads and lasts as long as the input
    page.click("tr.job a.review")
    page.wait_for_function("() => document.querySelector('#video').readyState >= 1", timeout=30_000)
    duration = page.evaluate("() => document.querySelector('#video').duration")
    assert abs(duration - FRAMES / 10) <= 0.11, f"the player says {duration} s for {FRAMES} frames at 10 fps"
    rows = page.locator("#timeline .row")
    assert rows.count() >= 1 and page.locator("#timeline .row .span.detected").count() >= 1
    reviewed = time.perf_counter() - started
    page.evaluate(
        "() => new Promise(done => { const v = document.querySelector('#video');"
        " v.addEventListener('seeked', done, {once: true}); document.querySelector('#timeline .row').click(); })"
    )  # a click on a row seeks the player
    page.screenshot(full_page=True, path=shots() / "studio-review.png")

    # the checks, ranked by risk: the first is ticked (the report records it, and keeps it over a re-render)
    checks = page.locator("#checks li.check-item")
    assert checks.count() >= 1, page.inner_text("#checks")
    ticked = checks.first.get_attribute("data-id")
    checks.first.locator("input").check()
    page.wait_for_function("() => document.querySelector('#mask-status').textContent.includes('checks marked')")
    assert [c["id"] for c in json.loads(store.output(job, "report_json").read_text())["checks"] if c["checked"]] == [
        ticked
    ]

    # "extend" on a track fills in its last box and the frames after it (not added here)
    page.click("#timeline .row .extend")
    page.wait_for_function("() => !document.querySelector('#add').disabled", timeout=10_000)
    assert "last box" in page.inner_text("#box-text") and page.input_value("#label").endswith("extended")
    page.fill("#label", "missed person")

    # a manual box over the top-left corner, frames 0 to the end, then re-render
    before = read_frames(store.output(job, "video"))
    page.check("#drawing")
    page.locator("#video").scroll_into_view_if_needed()
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.3, steps=5)
    page.mouse.up()
    page.fill("#start", "0")
    page.fill("#end", str(FRAMES - 1))
    page.fill("#label", "sign")
    page.click("#add")
    assert "frames 0–29" in page.inner_text("#masks")
    # and the sound muted by hand over a stretch (a name said that no detector would hear as speech)
    page.fill("#mute-start", "0.5")
    page.fill("#mute-end", "1")
    page.fill("#mute-label", "a name said")
    page.click("#mute-add")
    assert "sound muted 0.50–1.00 s" in page.inner_text("#mutes")
    page.screenshot(full_page=True, path=shots() / "studio-correction.png")
    page.click("#rerender")
    page.wait_for_function(
        "() => document.querySelector('#mask-status').textContent.includes('re-rendered')", timeout=240_000
    )
    page.wait_for_selector("#timeline .row[data-kind=manual] .span.manual", timeout=10_000)  # the new report
    page.wait_for_selector("#timeline .row[data-kind=speech] .span.manual", timeout=10_000)  # its sound row
    assert page.locator(f"#checks li[data-id='{ticked}'] input").is_checked(), "the tick is kept on the new render"
    assert json.loads(store.manifest_path(job).read_text())["audio"] == [
        {"start": 0.5, "end": 1.0, "label": "a name said"}
    ]
    # the new render's frame painted before the picture is taken (the README shows it): a row's click seeks
    page.evaluate(
        "() => new Promise(done => { const v = document.querySelector('#video');"
        " v.addEventListener('seeked', done, {once: true}); document.querySelector('#timeline .row').click(); })"
    )
    page.screenshot(full_page=True, path=shots() / "studio-rerendered.png")
    after = read_frames(store.output(job, "video"))
    assert len(after) == len(before) == FRAMES
    (mask,) = json.loads(store.manifest_path(job).read_text())["masks"]
    x0, y0, x1, y1 = (int(v) for v in mask["box"])
    assert x1 - x0 > 50 and y1 - y0 > 50, mask
    inner = (slice(y0 + 10, y1 - 10), slice(x0 + 10, x1 - 10))
    changed = [np.abs(a[inner].astype(int) - b[inner].astype(int)).mean() > 3 for a, b in zip(after, before)]
    assert sum(changed) >= FRAMES * 0.8, f"the box's region changed in only {sum(changed)} of {FRAMES} frames"

    # download the report
    with page.expect_download() as download:
        page.click("a.download-report_html")
    saved = tmp_path / "report.html"
    download.value.save_as(saved)
    assert "Redaction report" in saved.read_text() and "manual" in saved.read_text()

    # done: marked reviewed, the unmasked original goes, and a re-render is no longer offered
    assert store.original(job) is not None
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#reviewed")
    page.wait_for_function(
        "() => document.querySelector('#mask-status').textContent.includes('marked reviewed')", timeout=10_000
    )
    assert job.reviewed is not None and store.original(job) is None
    assert not (store.folder(job.id) / "original").exists(), "the original is gone from the disk"
    assert page.is_disabled("#rerender") and page.is_disabled("#reviewed")
    page.goto(f"{url}/")
    page.wait_for_selector("tr.job td.version")
    assert page.inner_text("tr.job td.version") == "re-render 1"
    assert page.inner_text("tr.job td.original") == "deleted when the job was marked reviewed"
    page.screenshot(full_page=True, path=shots() / "studio-reviewed.png")
    assert not problems, problems
    print(f"upload to done {uploaded_to_done:.1f} s, to review {reviewed:.1f} s ({FRAMES} frames)")


ATTACK = """<!doctype html><meta charset="utf-8"><title>another page on this machine</title>
<iframe name="sink"></iframe>
<form id="post" method="POST" action="{studio}/api/jobs/{job}/rerender" target="sink"></form>
<video id="video" src="{studio}/api/jobs/{job}/files/original" preload="auto" muted></video>
<script>
window.outcome = {{video: "pending", upload: "pending"}};
const video = document.getElementById("video");
video.addEventListener("loadedmetadata", () => outcome.video = "loaded");
video.addEventListener("error", () => outcome.video = "refused");
const form = new FormData();
form.append("files", new Blob(["not a video"], {{type: "video/mp4"}}), "planted.mp4");
fetch("{studio}/api/jobs", {{method: "POST", mode: "no-cors", credentials: "include", body: form}})
  .then(() => outcome.upload = "sent", () => outcome.upload = "failed");
document.getElementById("post").submit();
</script>
"""


@contextlib.contextmanager
def another_page(html: str):
    """``html`` served at ``/`` of another free port of 127.0.0.1 (same-site as the studio, another origin)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(10)


def answers(app, log: list):
    """``app``, noting (method, path, status) of every answer it gives in ``log``."""

    async def noted(scope, receive, send):
        async def spy(message):
            if message["type"] == "http.response.start":
                log.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await app(scope, receive, spy)

    return noted


def test_another_page_on_this_machine_cannot_upload_rerender_or_play_a_job(browser, tmp_path):
    from anonymise.studio.app import create_app
    from anonymise.studio.jobs import SETTINGS, JobStore, run_studio_job

    store = JobStore(tmp_path / "jobs", keep_originals=True)
    store.run_workers(1, lambda s, j, p: run_studio_job(s, j, p, lambda config: ColourDetector()))
    job, path = store.create("walk.mp4", dict(SETTINGS), keep_original=True)
    write_video(path, synthetic_frames(24), fps=10, audio=None)
    store.submit(job)
    deadline = time.monotonic() + 60
    while job.status != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.status == "done", job.error
    token, log = "browser-test-token", []
    with running(answers(create_app(store, token), log)) as studio:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{studio}/?token={token}")  # the reviewer's browser now holds the studio's cookie
        assert page.url == f"{studio}/"

        # the studio's own page: it changes things and plays the original
        review = page.evaluate(
            """async ([jobId]) => {
                 const rerender = await fetch(`/api/jobs/${jobId}/rerender`, {method: "POST"});
                 const video = document.createElement("video");
                 video.muted = true;
                 video.src = `/api/jobs/${jobId}/files/original`;
                 const played = await new Promise(done => {
                   video.onloadedmetadata = () => done("loaded");
                   video.onerror = () => done("refused");
                 });
                 return [rerender.status, played];
               }""",
            [job.id],
        )
        assert review == [200, "loaded"], review
        deadline = time.monotonic() + 60
        while (job.status != "done" or job.renders != 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.status == "done" and job.renders == 2

        # another page, on another port of 127.0.0.1
        del log[:]
        with another_page(ATTACK.format(studio=studio, job=job.id)) as attack:
            page.goto(attack)
            page.wait_for_function("() => outcome.video !== 'pending' && outcome.upload !== 'pending'", timeout=20_000)
            outcome = page.evaluate("() => outcome")
            deadline = time.monotonic() + 10
            while len(set(log)) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
        context.close()
    assert outcome["video"] == "refused", outcome
    assert set(log) == {
        ("POST", "/api/jobs", 403),
        ("POST", f"/api/jobs/{job.id}/rerender", 403),
        ("GET", f"/api/jobs/{job.id}/files/original", 403),
    }, "each request reached the studio with its cookie (else 401), and was refused"
    assert list(store.jobs) == [job.id], "no job was created"
    assert job.renders == 2 and job.status == "done", "no re-render"
