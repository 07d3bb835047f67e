"""The studio's web app (FastAPI on Starlette): pages, the jobs API, progress events, downloads.

Every request carries the one-time token (``?token=`` on the first visit, then a cookie, or an
``X-Anonymise-Token`` header); without it the answer is 401. Every response says
``Content-Security-Policy: default-src 'self'``: the pages load nothing from anywhere else
(their script, style and icons are served here), and FastAPI's ``/docs`` (whose assets come
from a CDN) is off.

The cookie alone does not prove the studio's own page sent a request: a page on another port of
127.0.0.1 is *same-site*, so the browser sends the ``SameSite=Strict`` cookie with its requests
too. So (see :func:`refusal`) a request that changes anything must come from the studio's own
origin (its ``Origin``, else its ``Referer``), or carry the token in the header, which no other
page can set without a CORS preflight this app never grants; a job's files (the kept original
among them) go only to the studio's own pages (``Sec-Fetch-Site``) or to the header; and every
response says ``Cross-Origin-Resource-Policy: same-origin``, so no other origin embeds any of it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ..io.sources import SourceKind
from ..manifest import Manifest
from ..report import mark_checked
from . import originals_policy
from .jobs import CHOICES, SETTINGS, JobStore, StudioJob, studio_canvas

STATIC = Path(__file__).parent / "static"
#: every page and answer: nothing from elsewhere, no framing, no form posted elsewhere
CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
#: files of a job (outputs, the original): shown, never run (a sandbox, no script)
FILE_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
COOKIE = "anonymise_token"
HEADER = "x-anonymise-token"
#: requests that change something: only from the studio's own origin, or with the header token
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: a job's files (outputs, the original, the zip): only to the studio's own pages, or with the header token
JOB_FILES = re.compile(r"^/api/jobs/[^/]+/files/")
#: ``Sec-Fetch-Site`` values that are the studio's own page or the user's own act (address bar, bookmark)
OWN_FETCH = frozenset({"same-origin", "none"})
#: uploads larger than this are refused (``--max-upload-mb``)
MAX_UPLOAD_MB = 2048
CHUNK = 1 << 20

DOWNLOADS = {
    "video": "video/mp4",
    "image": None,
    "keypoints": "application/x-ndjson",
    "events": "text/csv",
    "report_json": "application/json",
    "report_html": "text/html",
}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case, without a default port; ``None`` for anything
    that names no http(s) origin (``null``, a ``file:`` page, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def own_origin(request: Request) -> str | None:
    """The origin this request was addressed to: its scheme and its ``Host`` header."""
    return origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}")


def is_own(url: str, own: str | None) -> bool:
    """Whether ``url`` (an ``Origin`` or a ``Referer``) is of the studio's own origin (``null`` never is)."""
    return own is not None and origin_of(url) == own


def refusal(request: Request, by_header: bool) -> str | None:
    """Why this request may not come from where it comes from (``None``: it may).

    ``by_header``: the valid token came in the ``X-Anonymise-Token`` header, which only an API
    client (or the studio's own origin) can send. A foreign ``Origin`` is refused even then. A
    request that changes something and says neither ``Origin`` nor ``Referer`` is refused unless
    it has the header: every browser sends ``Origin`` with a cross-origin POST, so such a request
    is a script's, and a script can send the header.
    """
    own = own_origin(request)
    origin = request.headers.get("origin")
    if origin is not None and not is_own(origin, own):
        return f"a request from another origin ({origin}) is refused: use the studio's own page"
    if request.method in UNSAFE and origin is None and not by_header:
        referer = request.headers.get("referer")
        if referer is None:
            return "a request that changes something must come from the studio's page or carry X-Anonymise-Token"
        if not is_own(referer, own):
            return "a request from another page is refused: use the studio's own page"
    if JOB_FILES.match(request.url.path) and not by_header and not from_own_page(request, own):
        return "a job's files are served only to the studio's own pages (or with X-Anonymise-Token)"
    return None


def from_own_page(request: Request, own: str | None) -> bool:
    """Whether the browser says the studio's own page (or the user, from the address bar) asked:
    ``Sec-Fetch-Site`` where it sends it, else a ``Referer`` from the studio (the studio's
    ``Referrer-Policy: same-origin`` sends one to itself, and never to anyone else)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in OWN_FETCH
    return is_own(request.headers.get("referer", ""), own)


def create_app(store: JobStore, token: str, max_upload_mb: float = MAX_UPLOAD_MB) -> FastAPI:
    app = FastAPI(title="anonymise studio", docs_url=None, redoc_url=None, openapi_url=None)
    limit = int(max_upload_mb * (1 << 20))

    @app.middleware("http")
    async def guard(request: Request, call_next):
        given = request.query_params.get("token") or request.headers.get(HEADER) or request.cookies.get(COOKIE)
        given = given.encode() if given else b""
        header = request.headers.get(HEADER, "").encode()
        by_header = bool(header) and hmac.compare_digest(header, token.encode())
        if request.url.path == "/favicon.ico":  # the one thing served without the token: the icon
            response = FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
        elif not given or not hmac.compare_digest(given, token.encode()):
            response: Response = JSONResponse({"detail": "a valid token is required (see the URL serve printed)"}, 401)
        elif reason := refusal(request, by_header):
            response = JSONResponse({"detail": reason}, 403)
        else:
            response = await call_next(request)
            if (
                request.query_params.get("token")
                and request.method == "GET"
                and request.url.path in ("/", "/index.html")
            ):
                response = RedirectResponse("/", 303)  # the token leaves the address bar, the cookie keeps it
            if request.query_params.get("token"):
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: the studio's own requests keep their Origin (no-referrer makes
        # it ``null`` on a same-origin form post) and their Referer (what serves a job's files to a
        # browser that sends no Sec-Fetch-Site); other origins still get no Referer at all
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def page(name: str) -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-store"})

    @app.get("/")
    def index():
        return page("index.html")

    @app.get("/review/{job_id}")
    def review(job_id: str):
        find(job_id)
        return page("review.html")

    def find(job_id: str) -> StudioJob:
        job = store.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        return job

    def public(job: StudioJob) -> dict:
        """A job as the API answers it: its state, version, and when its original goes."""
        return {**job.public(), "original_until": store.original_until(job)}

    @app.get("/api/settings")
    def settings():
        return {
            "defaults": SETTINGS,
            "choices": CHOICES,
            "keep_originals": store.keep_originals,
            "keep_originals_hours": store.keep_originals_hours,
            "originals": originals_policy(store.keep_originals, store.keep_originals_hours),
            "max_upload_mb": max_upload_mb,
        }

    def listing() -> list[dict]:
        return [public(j) for j in sorted(store.jobs.values(), key=lambda j: j.created)]

    @app.get("/api/jobs")
    def jobs():
        store.expire()  # the originals' time limit, checked whenever the jobs are listed
        return listing()

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str):
        store.expire()
        return public(find(job_id))

    @app.post("/api/jobs")
    async def upload(request: Request):
        """Files (multipart ``files``) and settings (form fields): one job per file, queued in order."""
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            raise HTTPException(411, "an upload must say its length (Content-Length)")
        if int(declared) > limit + (1 << 16):  # all the files of one request together
            raise HTTPException(413, f"upload larger than the {max_upload_mb:g} MB limit")
        form = await request.form(max_files=100, max_fields=50)
        chosen = dict(SETTINGS)
        for key, default in SETTINGS.items():
            if key in form:
                value = str(form[key])
                chosen[key] = value.lower() in ("1", "true", "on", "yes") if isinstance(default, bool) else value
        for key, allowed in CHOICES.items():  # Config's own modes, presets and fills
            if chosen[key] not in allowed:
                raise HTTPException(422, f"{key} must be one of {', '.join(allowed)}, got {chosen[key][:40]!r}")
        try:
            chosen["canvas"] = studio_canvas(chosen["canvas"])
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        keep = form.get("keep_original")
        keep_original = None if keep is None else str(keep).lower() in ("1", "true", "on", "yes")
        files = [f for f in form.getlist("files") if hasattr(f, "read")]
        if not files:
            raise HTTPException(422, "no files uploaded (multipart field 'files')")
        created = []
        written = 0
        try:
            for upload_file in files:
                job, path = store.create(upload_file.filename or "upload", chosen, keep_original)
                created.append(job)
                with open(path, "wb") as out:
                    while chunk := await upload_file.read(CHUNK):
                        written += len(chunk)
                        if written > limit:
                            raise HTTPException(413, f"{job.name} is larger than the {max_upload_mb:g} MB limit")
                        out.write(chunk)
        except BaseException:
            for job in created:
                store.delete(job.id)
            raise
        finally:
            await form.close()
        for job in created:
            store.submit(job)
        return [public(j) for j in created]

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str):
        find(job_id)
        return public(store.cancel(job_id))

    @app.post("/api/jobs/{job_id}/reviewed")
    def reviewed(job_id: str):
        """The reviewer is done with the job: its unmasked original is deleted now."""
        find(job_id)
        try:
            return public(store.mark_reviewed(job_id))
        except ValueError as e:
            raise HTTPException(409, str(e)) from None

    @app.delete("/api/jobs/{job_id}")
    def delete(job_id: str):
        find(job_id)
        store.delete(job_id)
        return {"deleted": job_id}

    @app.get("/api/jobs/{job_id}/manifest")
    def get_manifest(job_id: str):
        path = store.manifest_path(find(job_id))
        return json.loads(path.read_text()) if path.is_file() else {"version": 1, "masks": []}

    def files(path: Path, media_type: str | None = None, filename: str | None = None) -> FileResponse:
        """A job's file: never cached (a re-render replaces it), shown in a sandbox, never run."""
        headers = {"Cache-Control": "no-store", "Content-Security-Policy": FILE_CSP}
        return FileResponse(path, media_type=media_type, filename=filename, headers=headers)

    @app.put("/api/jobs/{job_id}/manifest")
    async def put_manifest(job_id: str, request: Request):
        job = find(job_id)
        if job.kind == SourceKind.IMAGE:
            raise HTTPException(422, "manual masks apply to videos (an image job has no frames to range over)")
        try:
            manifest = Manifest.parse(await request.json(), "manifest")
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        data = manifest.as_dict()
        data.setdefault("video", job.name)
        if job.width:
            data["size"] = [job.width, job.height]
        path = store.manifest_path(job)
        path.write_text(json.dumps(data, indent=1))
        return data

    @app.put("/api/jobs/{job_id}/checks")
    async def put_checks(job_id: str, request: Request):
        """The checks the reviewer ticked (``{"checked": [ids]}``): recorded in the current render's
        report (JSON and HTML) and kept for the next render's."""
        job = find(job_id)
        path = store.output(job, "report_json")
        if path is None:
            raise HTTPException(409, "this job has no report to record checks in")
        body = await request.json()
        ids = body.get("checked") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise HTTPException(422, 'checks: expected {"checked": [the ids of the checks ticked]}')
        store.checks_path(job).write_text(json.dumps(sorted(set(ids))))
        return {"checks": mark_checked(path, set(ids)).get("checks", [])}

    @app.post("/api/jobs/{job_id}/rerender")
    def rerender(job_id: str):
        job = find(job_id)
        if job.status in ("queued", "running"):
            raise HTTPException(409, "the job is still queued or running")
        store.expire()
        if store.original(job) is None:
            why = job.original_gone or "not a regular file in the job's folder"
            raise HTTPException(409, f"the original is gone ({why}), so this job cannot be re-rendered: upload again")
        if not store.submit(job, again=True):
            raise HTTPException(409, "the job is still queued or running")
        return public(job)

    @app.get("/api/jobs/{job_id}/files/{kind}")
    def download(job_id: str, kind: str, request: Request):
        job = find(job_id)
        if kind == "zip":
            path = store.zip_outputs(job)
            return files(path, "application/zip", path.name)
        if kind == "original":
            store.expire()
            path = store.original(job)
            if path is None or job.kind not in (SourceKind.VIDEO, SourceKind.IMAGE):
                raise HTTPException(404, f"the original is gone ({job.original_gone or 'not kept'})")
            media = "video/mp4" if job.kind == SourceKind.VIDEO else None  # a probed video: renamed .mp4
            return files(path, media, None if job.kind == SourceKind.VIDEO else path.name)
        if kind == "snapshot":
            path = store.snapshot(job, request.query_params.get("name", ""))
            if path is None:
                raise HTTPException(404, "no such snapshot")
            return files(path, "image/jpeg")
        if kind not in DOWNLOADS:
            raise HTTPException(404, f"no download {kind!r}")
        path = store.output(job, kind)
        if path is None:
            raise HTTPException(404, f"job {job_id} has no {kind}")
        attach = request.query_params.get("download") is not None
        return files(path, DOWNLOADS[kind], path.name if attach else None)

    @app.get("/api/events")
    async def events(request: Request):
        """Server-Sent Events: every job's state, whenever any changes (and a keep-alive)."""

        async def stream():
            seen = -1
            idle = 0
            while not await request.is_disconnected():
                if store.version != seen:
                    seen = store.version
                    idle = 0
                    yield f"data: {json.dumps(listing())}\n\n"
                elif idle >= 60:
                    idle = 0
                    store.expire()  # an open page sees an original's time run out (the next pass sends it)
                    yield ": keep-alive\n\n"
                idle += 1
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return app
