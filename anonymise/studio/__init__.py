"""``anonymise serve``: a local review studio (upload, progress, review, correct, download).

Local-first: it binds to 127.0.0.1 unless told otherwise, every request needs the one-time
token it prints (as Jupyter does), the pages load nothing from elsewhere, and nothing goes
over the network. The web stack (FastAPI, uvicorn, python-multipart) is the ``studio`` extra:
most runs of a command-line anonymiser need no web server.

- :mod:`anonymise.studio.jobs`: the job folders, the queue and its workers, one job's run;
- :mod:`anonymise.studio.app`: the pages and the HTTP API.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from ..errors import ConfigError

INSTALL_HINT = 'anonymise serve needs the studio extra: pip install -e ".[studio]"'


def check_installed() -> None:
    """One clear line when the web stack is missing."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


#: hours an original is kept after upload, while its job is open for review (``keep_originals_hours``)
KEEP_ORIGINALS_HOURS = 72.0


def build(
    jobs_dir: Path,
    *,
    workers: int = 1,
    keep_originals: bool = True,
    keep_originals_hours: float | None = KEEP_ORIGINALS_HOURS,
    token: str | None = None,
    **app_options,
):
    """(app, store, token) with the workers started: what ``serve`` runs, and what tests drive.

    ``keep_originals``: a job keeps its upload while it is open for review (side by side,
    re-render), deleted when the job is marked reviewed or deleted, or ``keep_originals_hours``
    after upload (``None``: no limit); ``False``: every upload is deleted when its job ends.
    """
    check_installed()
    from .app import create_app
    from .jobs import JobStore, detector_cache, run_studio_job

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    token = token or secrets.token_urlsafe(24)
    store = JobStore(Path(jobs_dir), keep_originals=keep_originals, keep_originals_hours=keep_originals_hours)
    for _ in range(workers):  # each worker loads its models once, and its jobs share them
        detector_for = detector_cache()
        store.run_workers(1, lambda s, j, p, d=detector_for: run_studio_job(s, j, p, d))
    return create_app(store, token, **app_options), store, token


def originals_policy(keep_originals: bool, keep_originals_hours: float | None) -> str:
    """What the server does with unmasked uploads, in one line (printed at start, shown on the page)."""
    if not keep_originals:
        return "originals are not kept: each is deleted when its job ends (no side-by-side review, no re-render)"
    hours = keep_originals_hours
    limit = "" if hours is None else f", or {hours:g} hour{'' if hours == 1 else 's'} after upload"
    return (
        f"originals are kept while their job is open for review: deleted when it is marked reviewed or deleted{limit}"
    )


def default_jobs_dir() -> Path:
    """The studio's jobs folder when none is given: ``jobs`` in the per-user data directory.

    ``~/.local/share/anonymise/jobs`` on Linux (``$XDG_DATA_HOME`` where set),
    ``~/Library/Application Support/anonymise/jobs`` on macOS, ``%LOCALAPPDATA%\\anonymise\\jobs`` on
    Windows. Never the working directory: jobs hold unmasked originals, and a folder there lands in
    whatever it is, a git clone included. ``platformdirs`` comes with the studio extra.
    """
    try:
        import platformdirs
    except ImportError as e:
        raise ConfigError(f"{INSTALL_HINT} (missing: platformdirs)") from e
    return Path(platformdirs.user_data_dir("anonymise", appauthor=False)) / "jobs"


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    jobs_dir: Path | None = None,
    workers: int = 1,
    keep_originals: bool = True,
    max_upload_mb: float = 2048,
    echo=print,
    keep_originals_hours: float | None = KEEP_ORIGINALS_HOURS,
) -> None:
    check_installed()
    import uvicorn

    jobs_dir = default_jobs_dir() if jobs_dir is None else jobs_dir
    app, store, token = build(
        jobs_dir,
        workers=workers,
        keep_originals=keep_originals,
        keep_originals_hours=keep_originals_hours,
        max_upload_mb=max_upload_mb,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    echo(f"anonymise studio: jobs in {store.root.resolve()} (uploads, outputs, kept originals; --jobs-dir to change)")
    echo(f"Unmasked {originals_policy(keep_originals, keep_originals_hours)}.")
    echo("Open this URL in a browser (it holds the one-time token; keep it private):")
    echo(f"    http://{shown}:{port}/?token={token}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        echo(f"Listening on {host}: every request must carry the token.")
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False, date_header=False)
