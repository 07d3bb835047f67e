"""Progress bars on stderr: files, then frames with their rate (rich); silent when off."""

from __future__ import annotations

import time


class Progress:
    """Nested progress (files, then frames with fps) on stderr; silent when ``enabled`` is false."""

    def __init__(self, enabled: bool = True, files: int = 1):
        self._progress = None
        self._name = ""
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._files = self._progress.add_task("files", total=files, rate="", visible=files > 1)
        self._frames = None
        self._count, self._start = 0, 0.0

    def __enter__(self) -> Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_file(self, name: str, total: int | None, phase: str = "") -> None:
        """A bar for the frames of ``name`` (``phase``: which pass, shown beside it)."""
        self._name = name
        if self._progress is None:
            return
        if self._frames is not None:
            self._progress.remove_task(self._frames)
        self._frames = self._progress.add_task(self._describe(phase), total=total, rate="")
        self._count, self._start = 0, time.perf_counter()

    def restart(self, phase: str = "") -> None:
        """The file's frames again from 0, for a second pass (``phase`` shown beside its name)."""
        if self._progress is None or self._frames is None:
            return
        self._progress.reset(self._frames, description=self._describe(phase), rate="")
        self._count, self._start = 0, time.perf_counter()

    def advance(self, n: int = 1) -> None:
        if self._progress is None or self._frames is None:
            return
        self._count += n
        fps = self._count / max(time.perf_counter() - self._start, 1e-6)
        self._progress.update(self._frames, advance=n, rate=f"{fps:.1f} fps")

    def _describe(self, phase: str) -> str:
        return f"{self._name} ({phase})" if phase else self._name

    def end_file(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._files, 1)
