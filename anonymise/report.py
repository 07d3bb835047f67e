"""The redaction report: the audit record of one output (``--report``, the studio's download).

Per tracked person, the first and last frame and the frames they were masked in by detection
and by the hold; per reason (back-fill, motion guard, second looks, carried boxes, manual
masks, frames that failed closed), the frames and regions; the settings and the model files'
sha256 used. Written as ``<output stem>.report.json`` and a one-page, self-contained
``<output stem>.report.html`` (no script, no remote asset) that a reviewer can archive.
"""

from __future__ import annotations

import dataclasses
import html
import json
import time
from pathlib import Path

from . import checks
from .config import Mode
from .io.files import atomic
from .ledger import REASONS

#: what each reason means, in the report's words
MEANING = {
    "detected": "a person the models found",
    "held": "a tracked person the models lost for a few frames, masked on their predicted path",
    "backfill": "a person masked in the frames before the models first found them",
    "motion": "moving, person-sized regions no detection explained (the motion guard)",
    "second_look": "people a second look at a crop found",
    "carried": "regions kept masked where the background could not vouch for what was there",
    "manual": "boxes from the redaction manifest (--masks)",
    "failed": "frames written fully masked because their processing failed (fail closed)",
    "shown": "still things the models called people, with no body part seen: shown as they are, not masked",
}


def _version() -> str:
    """The installed package's version (read here, not from the package, which sits above this module)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anonymise")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def report_paths(output: Path) -> tuple[Path, Path]:
    """(JSON, HTML) report paths beside ``output``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.report.json"), output.with_name(f"{output.stem}.report.html")


def model_hashes(config) -> dict[str, dict]:
    """Each model the config names: what it resolved to and the file's sha256 (where it is a file)."""
    from .detect.weights import resolve, sha256_of

    seg = config.mode is Mode.SEG
    names = {
        "pose": config.pose_model if config.pose or not seg else None,  # bbox takes its boxes from the pose model
        "seg" if seg else "person detector": config.seg_model if seg else config.bbox_model,
    }
    found = {}
    for role, spec in names.items():
        if not spec:
            continue
        try:
            model = resolve(spec)
        except Exception as e:  # noqa: BLE001 - the report says so rather than failing the run
            found[role] = {"model": str(spec), "error": str(e)}
            continue
        entry = {"model": str(spec), "source": model.source}
        if model.path is not None and model.path.is_file():
            entry["path"] = str(model.path)
            entry["sha256"] = sha256_of(model.path)
        found[role] = entry
    return found


def build(
    ledger: dict,
    config,
    *,
    source: str,
    output: Path,
    fps: float,
    seconds: float,
    counts=None,
    resolved=None,
    speech=None,
) -> dict:
    """The report of one output, as a JSON-ready dict. ``resolved``: the values the run chose where the
    config left the choice open (``None``: auto), and what it chose beyond the config (the backend's
    precision, the passes); they replace those ``None``s in the settings."""
    settings = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        settings[field.name] = getattr(value, "value", value)
    for name, value in (resolved or {}).items():
        if settings.get(name) in (None, "auto"):
            settings[name] = value
    audio = {"mode": settings.get("audio"), "spans": None}
    if speech is not None:  # the audio was redacted: what, where and why (detected, or by hand)
        from . import speech as voices

        spans = [
            {"start": round(x.start, 3), "end": round(x.end, 3), "why": x.source, "label": x.label} for x in speech
        ]
        audio = {
            **audio,
            "spans": spans,
            "model": {"model": "silero_vad.jit", "path": str(voices.model_path()), "sha256": voices.model_sha256()},
        }
    fields = {
        "anonymise": _version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input": str(source),
        "output": str(output),
        "fps": float(fps),
        "frames": ledger["frames"],
        "seconds": round(seconds, 2),
        "settings": settings,
        "models": model_hashes(config),
        "counts": dataclasses.asdict(counts) if counts is not None else {},
        "tracks": ledger["tracks"],
        "frames_by_reason": ledger["frames_by_reason"],
        "failed_closed": ledger["frames_by_reason"].get("failed", {}).get("spans", []),
        "audio": audio,
        "size": ledger.get("size"),
    }
    moments, more = checks.ranked(fields)
    fields["checks"] = [{**m, "checked": False} for m in moments]
    fields["checks_more"] = more
    return fields


def write(report: dict, output: Path) -> tuple[Path, Path]:
    """Write the JSON and HTML reports beside ``output`` (each atomically)."""
    json_path, html_path = report_paths(output)
    with atomic(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    with atomic(html_path) as tmp:
        tmp.write_text(to_html(report), encoding="utf-8")
    return json_path, html_path


def mark_checked(json_path: Path, checked: set[str]) -> dict:
    """The report at ``json_path`` with the checks whose ``id`` is in ``checked`` marked checked (the
    others not), written again, its HTML page beside it too (each atomically); returns it."""
    json_path = Path(json_path)
    report = json.loads(json_path.read_text(encoding="utf-8"))
    for check in report.get("checks", []):
        check["checked"] = check["id"] in checked
    with atomic(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    html_path = json_path.with_name(json_path.name.removesuffix(".json") + ".html")
    with atomic(html_path) as tmp:
        tmp.write_text(to_html(report), encoding="utf-8")
    return report


def _spans(runs: list, fps: float, limit: int = 40) -> str:
    def one(first: int, last: int) -> str:
        if first == last:
            return f"{first} ({first / fps:.2f} s)" if fps else str(first)
        return f"{first}–{last} ({first / fps:.2f}–{last / fps:.2f} s)" if fps else f"{first}–{last}"

    shown = ", ".join(one(a, b) for a, b in runs[:limit])
    more = f", … {len(runs) - limit} more spans (see the JSON)" if len(runs) > limit else ""
    return html.escape(shown + more) if runs else "none"


def to_html(report: dict) -> str:
    """A one-page HTML report: inline style, no script, nothing fetched."""
    e = html.escape
    fps = report.get("fps") or 0.0
    rows = []
    for track in report["tracks"]:
        rows.append(
            f"<tr><td>{track['id']}</td><td>{track['first']}</td><td>{track['last']}</td>"
            f"<td>{track['frames_detected']}</td><td>{track['frames_held']}</td>"
            f"<td>{_spans(track['held'], fps, 10)}</td></tr>"
        )
    reasons = []
    for reason in ("detected", *REASONS):
        entry = report["frames_by_reason"].get(reason, {"frames": 0, "regions": 0, "spans": []})
        reasons.append(
            f"<tr><th>{e(reason)}</th><td>{e(MEANING[reason])}</td><td>{entry['frames']}</td>"
            f"<td>{entry['regions']}</td><td>{_spans(entry['spans'], fps)}</td></tr>"
        )
    models = "".join(
        f"<tr><th>{e(role)}</th><td>{e(m.get('model', ''))}</td><td><code>{e(m.get('sha256', m.get('error', '')))}"
        f"</code></td></tr>"
        for role, m in report["models"].items()
    )
    settings = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in report["settings"].items())
    failed = report["frames_by_reason"].get("failed", {}).get("frames", 0)
    verdict = (
        f"{failed} frame(s) failed closed (written fully masked)."
        if failed
        else "No frame failed closed: every frame was processed."
    )
    tracks = "".join(rows) or '<tr><td colspan="6">no tracked person</td></tr>'
    moments = (
        "".join(
            f"<tr><td>{m['risk']:.2f}</td><td>{_spans([[m['first'], m['last']]], fps)}</td><td>{e(m['why'])}</td>"
            f"<td>{'checked' if m.get('checked') else ''}</td></tr>"
            for m in report.get("checks", [])
        )
        or '<tr><td colspan="4">nothing to check</td></tr>'
    )
    if report.get("checks_more"):
        moments += f'<tr><td colspan="4">… {report["checks_more"]} more of lower risk (none listed)</td></tr>'
    audio = report.get("audio") or {}
    if audio.get("spans") is None:
        sound = f"<p>Not redacted (--audio {e(str(audio.get('mode')))}, or no audio track).</p>"
    else:
        spans = (
            "".join(
                f"<tr><td>{x['start']:.2f}–{x['end']:.2f} s</td><td>{e(x['why'])}</td><td>{e(x['label'])}</td></tr>"
                for x in audio["spans"]
            )
            or '<tr><td colspan="3">no speech found</td></tr>'
        )
        model = audio.get("model", {})
        sound = (
            f"<p>--audio {e(str(audio['mode']))}: {len(audio['spans'])} span(s); speech found by "
            f"{e(model.get('model', ''))} <code>{e(model.get('sha256', ''))}</code></p>"
            f"<table><tr><th>span</th><th>why</th><th>label</th></tr>{spans}</table>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Redaction report: {e(Path(report["output"]).name)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
code {{ font-size: 12px; }}
</style></head><body>
<h1>Redaction report</h1>
<p><b>Output</b> {e(report["output"])}<br><b>Input</b> {e(report["input"])}<br>
<b>Frames</b> {report["frames"]} at {fps:.3f} fps · <b>made</b> {e(report["created"])}
by anonymise {e(report["anonymise"])} in {report["seconds"]} s</p>
<p>{e(verdict)}</p>
<h2>Checks, by risk</h2>
<p>Moments a reviewer should look at, the likeliest to show a person first (see anonymise.checks).</p>
<table><tr><th>risk</th><th>frames</th><th>why</th><th>reviewer</th></tr>{moments}</table>
<h2>People (tracks)</h2>
<table><tr><th>track</th><th>first frame</th><th>last frame</th><th>frames detected</th><th>frames held</th>
<th>held spans</th></tr>{tracks}</table>
<h2>What was masked, by reason</h2>
<table><tr><th>reason</th><th>meaning</th><th>frames</th><th>regions</th><th>frames (spans)</th></tr>
{"".join(reasons)}</table>
<h2>Sound</h2>{sound}
<h2>Models</h2><table><tr><th>role</th><th>model</th><th>sha256</th></tr>{models}</table>
<h2>Settings</h2><table>{settings}</table>
</body></html>
"""
