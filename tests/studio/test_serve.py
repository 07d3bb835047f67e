"""``anonymise serve``'s jobs folder: the per-user data folder by default, never the working
directory (a clone would take unmasked originals into its tree), printed at start; ``--jobs-dir``
wins."""

import sys

import pytest

pytest.importorskip("fastapi", reason="the studio extra is not installed: pip install -e '.[studio]'")
platformdirs = pytest.importorskip("platformdirs", reason="the studio extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the studio extra is not installed")

from typer.testing import CliRunner  # noqa: E402

import anonymise.studio as studio  # noqa: E402
from anonymise.cli import app  # noqa: E402


@pytest.fixture
def served(monkeypatch, tmp_path):
    """``serve`` without the server: (stores built, uvicorn.run calls); the workers stop afterwards."""
    stores, runs = [], []
    build = studio.build

    def recording_build(*args, **kwargs):
        built = build(*args, **kwargs)
        stores.append(built[1])
        return built

    monkeypatch.setattr(studio, "build", recording_build)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: runs.append(k))
    clone = tmp_path / "clone"
    clone.mkdir()
    monkeypatch.chdir(clone)  # as if run from a git clone
    yield stores, runs
    for store in stores:
        store.stop(1)


def _serve(*args):
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_default_jobs_folder_is_the_user_data_folder_and_is_printed(served, monkeypatch, tmp_path):
    stores, runs = served
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda name, *a, **k: str(tmp_path / "data" / name))
    output = _serve()
    jobs = tmp_path / "data" / "anonymise" / "jobs"
    assert stores[0].root == jobs and jobs.is_dir() and len(runs) == 1
    assert f"jobs in {jobs.resolve()}" in " ".join(output.split()), output
    assert not list((tmp_path / "clone").iterdir()), "nothing is written into the working directory"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_DATA_HOME is the Linux convention")
def test_the_default_follows_xdg_data_home(served, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert studio.default_jobs_dir() == tmp_path / "xdg" / "anonymise" / "jobs"
    output = _serve()
    assert str(tmp_path / "xdg" / "anonymise" / "jobs") in " ".join(output.split()), output


def test_an_explicit_jobs_dir_wins(served, monkeypatch, tmp_path):
    stores, _ = served
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda name, *a, **k: str(tmp_path / "data" / name))
    output = _serve("--jobs-dir", str(tmp_path / "mine"))
    assert stores[0].root == tmp_path / "mine" and (tmp_path / "mine").is_dir()
    assert f"jobs in {(tmp_path / 'mine').resolve()}" in " ".join(output.split()), output
    assert not (tmp_path / "data").exists(), "the default folder is not even created"


def test_the_help_names_the_default():
    text = " ".join(CliRunner().invoke(app, ["serve", "-h"], terminal_width=80).output.split())
    assert "~/.local/share/anonymise/jobs" in text and "anonymise-jobs" not in text


def test_the_server_states_what_it_keeps_of_the_originals(served, tmp_path):
    """Kept while a job is open for review, by default, up to a time limit the server prints;
    ``keep_originals=False`` keeps none; the CLI's call (``--keep-originals``) still works."""
    stores, _ = served
    said = []
    studio.serve(jobs_dir=tmp_path / "a", echo=said.append)
    assert stores[-1].keep_originals is True and stores[-1].keep_originals_hours == 72
    assert (
        "Unmasked originals are kept while their job is open for review: deleted when it is marked reviewed "
        "or deleted, or 72 hours after upload." in said
    ), said
    studio.serve(jobs_dir=tmp_path / "b", echo=said.append, keep_originals_hours=5)
    assert stores[-1].keep_originals_hours == 5 and any("or 5 hours after upload" in line for line in said)
    studio.serve(jobs_dir=tmp_path / "c", echo=said.append, keep_originals_hours=None)
    assert stores[-1].keep_originals_hours is None and said[-3].endswith("marked reviewed or deleted.")
    studio.serve(jobs_dir=tmp_path / "d", echo=said.append, keep_originals=False)
    assert stores[-1].keep_originals is False and "are not kept" in said[-3]
    output = " ".join(_serve("--keep-originals", "--jobs-dir", str(tmp_path / "e")).split())
    assert stores[-1].keep_originals is True
    assert studio.originals_policy(stores[-1].keep_originals, stores[-1].keep_originals_hours) in output


def test_serve_keeps_originals_by_default_and_its_options_reach_the_store(served, tmp_path):
    stores, _ = served
    _serve("--jobs-dir", str(tmp_path / "a"))
    assert stores[-1].keep_originals is True and stores[-1].keep_originals_hours == 72
    _serve("--no-keep-originals", "--keep-originals-hours", "5", "--jobs-dir", str(tmp_path / "b"))
    assert stores[-1].keep_originals is False and stores[-1].keep_originals_hours == 5
    bad = CliRunner().invoke(app, ["serve", "--keep-originals-hours", "0", "--jobs-dir", str(tmp_path / "c")])
    assert bad.exit_code == 1 and "--keep-originals-hours must be above 0" in bad.output
