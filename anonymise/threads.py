"""The pipeline's threads: decoding ahead and encoding behind, through bounded queues.

A frame that fails to encode stops the run (the writer's error is raised in the pipeline's
thread); closing a thread waits for it, so a decoder or encoder is never closed under it.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .errors import AnonymiseError, OutputError
from .io.video import Frame, VideoWriter

#: frames queued between the decoder, the models and the encoder
QUEUE_SIZE = 8


def batched(iterable: Iterable, n: int) -> Iterator[list]:
    it = iter(iterable)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


_DONE = object()


class Prefetch:
    """Iterate ``iterable`` in a background thread through a bounded queue.

    Exceptions raised by the iterable are re-raised in the consumer. :meth:`close` stops the
    thread and waits for it, so a decoder is never closed while the thread is inside it.
    """

    def __init__(self, iterable: Iterable, maxsize: int = QUEUE_SIZE, name: str = "anonymise-decode"):
        self._iterable = iterable
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._iterable:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._put(e)

    def __iter__(self) -> Iterator:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():  # closed (from another thread): nothing more comes
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> bool:
        """Stop and join the thread; ``False`` if it is still stuck (e.g. in a network read)."""
        self._stop.set()
        self._thread.join(timeout=30)
        return not self._thread.is_alive()

    def drain(self) -> list:
        """After :meth:`close`: the items made and not yet taken (an error or the end left out)."""
        items = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if item is not _DONE and not isinstance(item, BaseException):
                items.append(item)


class WriterThread:
    """Encodes frames in a thread; ``finish`` closes the file into place, ``abort`` removes it."""

    def __init__(self, writer: VideoWriter, maxsize: int = QUEUE_SIZE):
        self.writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="anonymise-encode", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # drain after a failure so producers never block
            frame, image = item
            try:
                self.writer.write_audio(frame.audio)
                self.writer.write(image, frame.pts, frame.duration)
                self.writer.write_audio(frame.audio_after)
            except BaseException as e:  # noqa: BLE001 - reported by put/finish
                self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            e = self._error
            if isinstance(e, AnonymiseError):
                raise e
            message = f"writing {self.writer.path} failed: {e}"
            tmp = getattr(self.writer, "tmp", None)
            if tmp is not None:  # the user asked for the output, never saw the hidden name it is written under
                message = message.replace(str(tmp), str(self.writer.path))
            raise OutputError(message) from e

    def put(self, frame: Frame, image: np.ndarray) -> None:
        self._raise()
        self._queue.put((frame, image))

    def finish(self) -> Path:
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            self.writer.abort()
            self._raise()
        return self.writer.close()

    def abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")
        self._queue.put(_DONE)
        self._thread.join()  # the encoder must be idle before its container is closed
        self.writer.abort()
