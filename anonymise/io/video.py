"""Video in and out with PyAV: exact timestamps, H.264 ``yuv420p`` output, the source's audio kept.

The reader demuxes video and audio from one container in one pass (so it works for live
streams too) and hands every audio packet along with the next video frame; the writer muxes
those packets just before it encodes that frame, which keeps the two streams interleaved and
in sync without a second pass over the input. Every output starts at 0, whatever clock the
source's container keeps (an MPEG-TS starts at 1.4 s, a stream joined mid-way anywhere).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

from ..detections import VideoInfo
from ..errors import ConfigError, OutputError, SourceError, StreamBroken
from .files import partial_path, publish

log = logging.getLogger(__name__)

#: audio codecs an MP4/MOV file can carry as they are; anything else is re-encoded to AAC
MP4_AUDIO_CODECS = {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"}
MP4_LIKE = {".mp4", ".m4v", ".mov"}
#: FFmpeg's default channel layout for a channel count (a source may give only the count)
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass
class Frame:
    """One decoded frame with the timing needed to write it back unchanged."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    #: frame duration in ``time_base`` units when known
    duration: int | None = None
    #: audio packets demuxed since the previous video frame (muxed before this frame)
    audio: list = field(default_factory=list)
    #: audio packets after the last video frame (muxed after it)
    audio_after: list = field(default_factory=list)

    @property
    def time(self) -> float | None:
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)


def _open_input(url: str, options: dict | None = None, timeout: float | None = None):
    try:
        return av.open(url, mode="r", options=options or {}, timeout=timeout)
    except FileNotFoundError:
        raise SourceError(f"no such file: {url}") from None
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise SourceError(f"cannot read {url}: {_ffmpeg_reason(e)}") from None


def _ffmpeg_reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.split(": '")[0].strip() or type(e).__name__


def parse_time(text: str | float | int, option: str = "time") -> float:
    """Seconds from ``90``, ``90.5``, ``1:30`` or ``0:01:30.5``; :class:`ConfigError` otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        parts = str(text).strip().split(":")
        try:
            if not 1 <= len(parts) <= 3 or any(not p.strip() for p in parts):
                raise ValueError
            seconds = 0.0
            for part in parts:
                seconds = seconds * 60 + float(part)
        except ValueError:
            raise ConfigError(f"{option} must be seconds (90, 90.5) or [HH:]MM:SS, got {text!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigError(f"{option} must be a time >= 0, got {text!r}")
    return seconds


@dataclass(frozen=True)
class Span:
    """Part of a file: from ``start`` seconds, for ``duration`` seconds or ``frames`` frames, whichever ends first.

    The output is that part alone: its first frame is at 0, its audio is the audio of that span,
    and frame indices start at 0.
    """

    start: float = 0.0
    duration: float | None = None
    frames: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.start, (int, float)) or isinstance(self.start, bool) or not self.start >= 0:
            raise ConfigError(f"--start must be a time >= 0, got {self.start!r}")
        if self.duration is not None and not (isinstance(self.duration, (int, float)) and self.duration > 0):
            raise ConfigError(f"--duration must be a time > 0, got {self.duration!r}")
        if self.frames is not None and (
            isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1
        ):
            raise ConfigError(f"--frames must be an integer >= 1, got {self.frames!r}")

    @property
    def whole(self) -> bool:
        return not self.start and self.duration is None and self.frames is None

    def expected(self, frames: int | None, fps: float) -> int | None:
        """How many frames of a file of ``frames`` frames at ``fps`` the span holds (an estimate)."""
        limits = [n for n in (self.frames, round(self.duration * fps) if self.duration is not None else None) if n]
        if frames:
            limits.append(max(frames - round(self.start * fps), 0))
        return min(limits) if limits else None


class VideoReader:
    """Decode a video file or stream into BGR frames, with the audio packets riding along.

    Use as a context manager, then iterate. ``info`` describes the source before decoding.
    """

    def __init__(self, url: str | os.PathLike, audio: bool = True, live: bool | None = None, span: Span | None = None):
        """``span``: only part of a file (see :class:`Span`); ``info.frames`` is then its estimated length."""
        self.url = str(url)
        self.span = span if span is not None and not span.whole else None
        options = {"rtsp_transport": "tcp"} if self.url.startswith("rtsp") else {}
        if "://" in self.url:
            # FFmpeg holds every packet back while it probes a stream it cannot identify (G.711 in MPEG-TS),
            # for 2500 of that stream's packets: minutes of a live stream, and the open times out without
            # even the video's frame size. A codec it can identify is known within a few packets.
            options["max_probe_packets"] = str(PROBE_PACKETS)
        timeout = (READ_TIMEOUT_S, READ_TIMEOUT_S) if "://" in self.url else None
        self._container = _open_input(self.url, options, timeout=timeout)
        try:
            if not self._container.streams.video:
                raise SourceError(f"no video stream in {self.url}")
            self._video = self._container.streams.video[0]
            self._video.thread_type = "AUTO"
            self._audio = self._container.streams.audio[0] if audio and self._container.streams.audio else None
            if self._audio is not None and len(self._container.streams.audio) > 1:
                log.warning(
                    "%s has %d audio tracks; only the first is kept", self.url, len(self._container.streams.audio)
                )
            unkept = _unkept(self._container)
            if unkept:
                log.warning("%s has %s; not kept (only the video and its audio are written)", self.url, unkept)
            cc = self._video.codec_context
            if not cc.width or not cc.height:
                raise SourceError(f"cannot read {self.url}: the video stream has no frame size")
            fps = self._video.average_rate or self._video.guessed_rate or self._video.base_rate or Fraction(25)
            duration = None
            if self._video.duration is not None and self._video.time_base:
                duration = float(self._video.duration * self._video.time_base)
            elif self._container.duration:
                duration = self._container.duration / av.time_base
            if live is None:
                live = duration is None and "://" in self.url
            # AVI stores no presentation timestamps: with B-frames the decoder's guesses come out of
            # order. Its frames are one tick each (constant rate), so they are timed by their index.
            self._timed_by_index = "avi" in self._container.format.name.split(",")
            #: quarter turns counter-clockwise that bring the stored frames upright (a phone's rotation tag)
            self.quarter_turns = 0 if live else _quarter_turns(self.url)
            width, height = (cc.height, cc.width) if self.quarter_turns % 2 else (cc.width, cc.height)
            self.info = VideoInfo(
                width=width,
                height=height,
                fps=Fraction(fps),
                frames=self._video.frames or None,
                duration=duration,
                has_audio=self._audio is not None,
                live=live,
            )
            if self.span is not None:
                if live:
                    raise ConfigError("--start, --duration and --frames take files, not live sources")
                self.info = replace(self.info, frames=self.span.expected(self.info.frames, float(fps)))
                if self.span.start and not self._timed_by_index:  # to the keyframe before it; frames up to it dropped
                    self._container.seek(int(self.span.start * av.time_base), backward=True)
        except BaseException:
            self._container.close()
            raise

    @property
    def audio_stream(self):
        return self._audio

    @property
    def time_base(self) -> Fraction:
        return self._video.time_base or Fraction(1, 90000)

    def __iter__(self) -> Iterator[Frame]:
        frames = self._frames()
        try:
            cut = _cut(frames, self.span, self._video, self._audio) if self.span is not None else frames
            yield from _from_zero(cut)
        finally:
            frames.close()

    def _frames(self) -> Iterator[Frame]:
        # One frame is held back so that audio demuxed after the last video frame can ride on it.
        streams = [self._video] + ([self._audio] if self._audio is not None else [])
        pending: list = []
        held: Frame | None = None
        index = 0
        try:
            for packet in self._container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None and packet.size:
                        pending.append(packet)
                    continue
                for vf in packet.decode():
                    if held is not None:
                        yield held
                    held, pending = self._frame(vf, index, pending), []
                    index += 1
        except (av.FFmpegError, OSError) as e:
            if self.info.live and index:  # a camera or stream that stopped in the middle: not a bad file
                reason = _ffmpeg_reason(e)
                if "immediate exit" in reason.lower() or isinstance(e, TimeoutError):
                    reason = f"no data for {READ_TIMEOUT_S:.0f} s"
                raise StreamBroken(f"stream {self.url} broke off after {index} frames: {reason}") from None
            if isinstance(e, OSError) and not isinstance(e, av.FFmpegError):
                raise
            raise SourceError(f"corrupt video {self.url} (after {index} frames): {_ffmpeg_reason(e)}") from None
        if held is None:
            raise SourceError(f"no video frames could be decoded from {self.url}")
        held.audio_after = pending
        yield held
        if self.info.live:  # a live stream does not end: the sender went away (closed, or killed)
            raise StreamBroken(f"stream {self.url} ended after {index} frames: the sender closed the connection")

    def _frame(self, vf: av.VideoFrame, index: int, audio: list) -> Frame:
        image = vf.to_ndarray(format="bgr24")
        if self.quarter_turns:  # upright before detection: a sideways person is a person the models miss
            image = np.ascontiguousarray(np.rot90(image, self.quarter_turns))
        duration = vf.duration if getattr(vf, "duration", None) else None
        pts, time_base = vf.pts, vf.time_base or self.time_base
        if self._timed_by_index:
            tick = max(round(1 / (self.info.fps * self.time_base)), 1)
            pts, time_base, duration = (self._video.start_time or 0) + index * tick, self.time_base, tick
        return Frame(image, index, pts, time_base, duration, audio)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unkept(container) -> str:
    """What of ``container`` no output carries and a user may miss, in words (``""``: nothing):
    subtitles (which may name people), and streams FFmpeg cannot identify (MPEG-TS has no stream
    type for G.711: a camera's audio then comes as bytes of no known kind). Timecode and telemetry
    tracks (a phone's, a GoPro's) are dropped by design and not mentioned.
    """
    said = []
    unknown = [s for s in container.streams.data if s.codec_context is None or s.codec_context.name == "bin_data"]
    for kind, streams in (("subtitle track", container.streams.subtitles), ("data stream", unknown)):
        if streams:
            said.append(f"{len(streams)} {kind}{'s' if len(streams) > 1 else ''}")
    if unknown:
        said[-1] += " of a kind FFmpeg cannot identify (as G.711 audio in MPEG-TS is)"
    return " and ".join(said)


def _from_zero(frames: Iterator[Frame]) -> Iterator[Frame]:
    """The frames, with their audio, moved so that the first frame is at 0.

    A container's clock may start anywhere (an MPEG-TS at 1.4 s, a stream joined mid-way at any
    time): an output that kept it would start late (an MP4 plays the gap as a frozen frame), and a
    live recording's audio would not meet its video (which takes capture times from 0). Audio
    from before the first frame (if any) is left out, as for a span.
    """
    origin = None  # the first frame's timestamp (the reader's frames share one time base)
    for frame in frames:
        if origin is None:
            origin = frame.pts if frame.pts is not None and frame.pts > 0 and frame.time_base else 0
            seconds = float(origin * frame.time_base) if origin else 0.0
        if origin and frame.pts is not None:
            frame.pts -= origin
            frame.audio, frame.audio_after = shifted(frame.audio, seconds), shifted(frame.audio_after, seconds)
        yield frame


def _quarter_turns(url: str) -> int:
    """Quarter turns (counter-clockwise) that bring a file's frames upright, from the display matrix
    (a phone's rotation tag) of its first frame; 0 when it has none or it cannot be read."""
    try:
        with av.open(url, mode="r") as container:
            for frame in container.decode(video=0):
                rotation = getattr(frame, "rotation", 0) or 0
                return int(round(rotation / 90)) % 4
    except Exception:  # noqa: BLE001 - the reader reports what is wrong with the file; upright is the default
        return 0
    return 0


#: how far (seconds) audio packets may trail the video they play with in the file's interleaving
AUDIO_LAG = 1.0


def _cut(frames: Iterator[Frame], span: Span, video, audio) -> Iterator[Frame]:
    """The frames of ``span``, re-timed so that the first one is where the stream starts, indices from 0.

    Audio goes by its own timestamps: a packet plays in the span when it starts between the first
    kept frame and the end of the last one (files interleave audio some way ahead of or behind
    the video it plays with, so the frames just outside the span are read for theirs).
    """
    origin = video.start_time or 0  # the stream's first timestamp (video time base)

    def seconds(frame: Frame) -> tuple[float, float]:
        tb = frame.time_base or Fraction(1, 25)
        return float(((frame.pts or 0) - origin) * tb), float((frame.duration or 0) * tb)

    end = span.start + span.duration if span.duration is not None else None
    early: list = []  # audio read with the frames before the span
    held: Frame | None = None
    first = stop = None  # the span's first and end times (seconds from the stream's start)
    offset = kept = 0
    for frame in frames:
        t, length = seconds(frame)
        packets = frame.audio + frame.audio_after
        if held is None and t + length / 2 < span.start:
            early = [p for p in early if _start(p, audio) >= t - AUDIO_LAG] + packets
            continue
        if (end is not None and t + length / 2 >= end) or (span.frames is not None and kept == span.frames):
            if held is None:
                return
            if stop is None:
                stop = min(end, t) if end is not None else t
            held.audio_after += packets  # late audio of the span, sorted out when it is yielded
            if t > stop + AUDIO_LAG:
                break
            continue
        if held is not None:
            yield _retimed(held, first, None, offset, audio)
        if first is None:
            first, offset = t, (frame.pts or 0) - origin
            frame.audio = early + frame.audio
        frame.audio, frame.audio_after = frame.audio + frame.audio_after, []
        frame.index = kept
        held, kept = frame, kept + 1
    if held is not None:
        if stop is None:
            t, length = seconds(held)
            stop = t + (length or 0.04)
        yield _retimed(held, first, stop, offset, audio)


def _start(packet, audio) -> float:
    """When an audio packet starts (seconds from its stream's start)."""
    return float(((packet.pts or 0) - (audio.start_time or 0)) * audio.time_base)


def _retimed(frame: Frame, first: float, stop: float | None, offset: int, audio) -> Frame:
    """A kept frame moved ``offset`` earlier, with the audio that starts in [first, stop) moved with it."""
    kept = []
    if audio is not None:
        inside = [
            p
            for p in frame.audio + frame.audio_after
            if _start(p, audio) >= first - 1e-6 and (stop is None or _start(p, audio) < stop - 1e-6)
        ]
        kept = shifted(inside, float(offset * frame.time_base) if frame.time_base else 0.0)
    frame.audio, frame.audio_after = kept, []
    frame.pts = (frame.pts or 0) - offset
    return frame


def shifted(packets: list, seconds: float) -> list:
    """Audio packets moved ``seconds`` earlier (in place); those that would start before 0 are left out."""
    moved = []
    for packet in packets:
        delta = round(seconds / float(packet.time_base)) if packet.time_base else 0
        if packet.pts is not None and packet.pts - delta < 0:
            continue
        if packet.pts is not None:
            packet.pts -= delta
        if packet.dts is not None:
            packet.dts -= delta
        moved.append(packet)
    return moved


def playable_frames(path: str | os.PathLike, limit: int = 1_000_000) -> int:
    """How many video frames ``path`` decodes to (at most ``limit``); 0 when it cannot be read."""
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return 0
            for _ in container.decode(video=0):
                count += 1
                if count >= limit:
                    break
    except (av.FFmpegError, OSError):
        pass
    return count


def _is_adts(stream) -> bool:
    """Whether an audio stream is ADTS AAC (as MPEG-TS and raw ``.aac`` carry it): a header on every
    packet and no extradata, which MP4 and MOV cannot carry as it is."""
    context = stream.codec_context
    return context is not None and context.name == "aac" and not context.extradata


def audio_copyable(suffix: str, codec: str) -> bool:
    """Whether a container with this file ``suffix`` can carry ``codec`` audio (its canonical name) as it is."""
    suffix = suffix.lower()
    if suffix == ".mov":
        return codec in MP4_AUDIO_CODECS or codec.startswith("pcm_")
    if suffix in MP4_LIKE:
        return codec in MP4_AUDIO_CODECS
    return True


_NVENC: bool | None = None


def nvenc_available() -> bool:
    """Whether FFmpeg here can open an NVENC H.264 encoder (the codec built in *and* a GPU that has one)."""
    global _NVENC
    if _NVENC is None:
        _NVENC = False
        if "h264_nvenc" in av.codecs_available:
            try:
                ctx = av.CodecContext.create("h264_nvenc", "w")
                ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 256, 256, "yuv420p", Fraction(1, 25)
                ctx.open()
                _NVENC = True
            except Exception:  # noqa: BLE001 - no device, no driver, or no NVENC unit (H100)
                _NVENC = False
    return _NVENC


#: samples FFmpeg's AAC encoder puts before the first (its priming: the first packet is at -1024)
AAC_PRIMING = 1024
#: seconds a stream may deliver nothing (opening, or between packets) before it counts as stalled
READ_TIMEOUT_S = 15.0
#: packets of a stream's unidentified track FFmpeg probes before it gives up on it (its default: 2500)
PROBE_PACKETS = 10
#: containers that can be written as fragmented MP4 (playable up to the last fragment after a crash)
FRAGMENTABLE = (".mp4", ".mov", ".m4v")


class VideoWriter:
    """Encode BGR frames to H.264 ``yuv420p`` at ``path``, atomically.

    Frames keep the source's timestamps (no drift, variable frame rate kept). Audio packets
    are copied (ADTS AAC moved into MP4's form on the way), or re-encoded to AAC when the output
    container cannot carry the codec. Audio that cannot be written costs only the audio: the
    video is written without it, and a warning says so once. The file is written under a
    temporary name and renamed on :meth:`close`; :meth:`abort` removes it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction | None = None,
        audio_stream=None,
        crf: int = 20,
        preset: str = "veryfast",
        codec: str = "libx264",
        gpu: bool = False,
        live: bool = False,
        speech=None,
    ):
        """``live``: a camera or stream recording, written as fragmented MP4 (MP4, MOV, M4V) with a
        keyframe every second, so that a crash or SIGKILL loses at most the last second or two; its
        hidden name marks it for recovery (see :func:`~anonymise.io.files.partial_path`).
        ``speech``: a :class:`~anonymise.speech.SpeechGate` the audio passes through (decoded, its
        speech muted or beeped, encoded to AAC); ``None``: the audio is copied."""
        self.path = Path(path)
        self.speech = speech
        self._fragmented = live and self.path.suffix.lower() in FRAGMENTABLE
        self.width, self.height = width + width % 2, height + height % 2  # 4:2:0 needs even sizes
        if gpu and codec == "libx264" and nvenc_available():
            codec = "h264_nvenc"  # the GPU's encoder, where it has one (an H100 has none: libx264 then)
        self.codec = codec
        self.time_base = time_base or Fraction(1, 1) / Fraction(fps)
        self._fps = Fraction(fps)
        self._next_pts = 0
        self._last_pts: int | None = None
        try:
            self._open(audio_stream, crf, preset, live)
        except OutputError as e:
            if audio_stream is None:
                raise
            self._open(None, crf, preset, live)  # the video alone; raises when that cannot be written either
            reason = str(e).removeprefix(f"cannot write {self.path}: ")
            log.warning("%s is written without its audio: %s", self.path.name, reason)

    def _open(self, audio_stream, crf: int, preset: str, live: bool) -> None:
        """Create the temporary file, its streams and its header; :class:`OutputError` (and nothing
        left behind) when FFmpeg refuses them."""
        self.tmp = partial_path(self.path, live=self._fragmented)
        self._audio_out = None
        self._audio_decoder = None
        self._resampler = None
        self._adts = None  # the aac_adtstoasc filter, for ADTS AAC into MP4 / MOV
        self._audio_lost = False
        adts = audio_stream is not None and _is_adts(audio_stream) and self.path.suffix.lower() in MP4_LIKE
        try:
            # a fragment at every keyframe, written through at once (no I/O buffer to lose); ADTS AAC's
            # AudioSpecificConfig comes with its first packet, so the header waits for it (delay_moov)
            flags = "frag_keyframe+empty_moov+default_base_moof" + ("+delay_moov" if adts else "")
            options = {"movflags": flags, "flush_packets": "1"} if self._fragmented else {}
            self._container = av.open(str(self.tmp), mode="w", options=options)
        except (av.FFmpegError, OSError) as e:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.path}: {_ffmpeg_reason(e)}") from None
        except BaseException:  # a signal (Ctrl-C, SIGTERM) while the file was being created: no partial left
            self.tmp.unlink(missing_ok=True)
            raise
        try:
            stream = self._container.add_stream(self.codec, rate=self._fps)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            stream.time_base = self.time_base
            stream.codec_context.time_base = self.time_base
            if self._fragmented:  # a keyframe (so a fragment on disk) every second
                stream.codec_context.gop_size = max(1, round(float(self._fps)))
            # AVI stores no presentation timestamps: B-frames would come back out of order and delayed
            no_reorder = self.path.suffix.lower() == ".avi"
            if self.codec == "libx264":
                stream.options = {"crf": str(crf), "preset": preset, **({"bf": "0"} if no_reorder else {})}
                if live:  # no look-ahead in the encoder: frames reach the file (and a fragment) without delay
                    stream.options = {**stream.options, "tune": "zerolatency"}
            elif self.codec == "h264_nvenc":
                stream.options = {
                    "preset": "p4",
                    "rc": "vbr",
                    "cq": str(crf + 3),
                    **({"bf": "0"} if no_reorder else {}),
                }
            self._stream = stream
            if audio_stream is not None:
                self._add_audio(audio_stream)
            # open the encoders and write the header now: an audio or video setting the encoder refuses
            # fails here, before the first frame is processed, not after the whole clip
            self._container.start_encoding()
        except (av.FFmpegError, ValueError) as e:
            self._container.close()
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.path}: {_ffmpeg_reason(e)}") from None
        except BaseException:
            self._container.close()
            self.tmp.unlink(missing_ok=True)
            raise

    def _add_audio(self, src) -> None:
        name = src.codec_context.name  # the decoder ("mp3float")
        copyable = audio_copyable(self.path.suffix, getattr(src.codec_context.codec, "canonical_name", name))
        # AVI takes AAC's configuration in its header only, which ADTS AAC has not: re-encoded
        if self.speech is not None or not copyable or (_is_adts(src) and self.path.suffix.lower() == ".avi"):
            rate = src.codec_context.sample_rate or 48000
            self._audio_out = self._container.add_stream("aac", rate=rate)
            layout = src.codec_context.layout
            # the encoder needs a named layout: "2 channels" (no channel mask, e.g. PCM in an AVI) -> stereo
            channels = layout.nb_channels if layout is not None and layout.nb_channels else 2
            self._audio_out.layout = DEFAULT_LAYOUTS.get(channels, "stereo")
            self._audio_decoder = av.CodecContext.create(name, "r")
            if src.codec_context.extradata:
                self._audio_decoder.extradata = src.codec_context.extradata
            self._audio_decoder.sample_rate = rate
            self._audio_decoder.layout = self._audio_out.layout
            self._audio_decoder.format = src.codec_context.format
            self._resampler = av.AudioResampler(format="fltp", layout=self._audio_out.layout, rate=rate)
            self._audio_rate = rate
            self._no_timestamps = self.path.suffix.lower() == ".avi"
            self._audio_next: int | None = None  # the next sample's pts (1 / rate), once the first is placed
            if self.speech is None:
                log.info("re-encoding %s audio to AAC for %s", name, self.path.suffix)
        else:
            self._audio_out = self._container.add_stream_from_template(src)
            if _is_adts(src) and self.path.suffix.lower() in MP4_LIKE:
                # MP4 keeps AAC's configuration in its header, not on every packet (FFmpeg's own
                # check would add this filter only to a file whose header is written last)
                self._adts = BitStreamFilterContext("aac_adtstoasc", src)

    def write_audio(self, packets: list) -> None:
        """Mux audio packets (copied, or re-encoded); a failure stops the audio, never the video."""
        if self._audio_out is None or self._audio_lost or not packets:
            return
        try:
            for packet in packets:
                self._write_audio(packet)
        except (av.FFmpegError, ValueError) as e:
            self._lose_audio(e)

    def _write_audio(self, packet) -> None:
        if self._audio_decoder is not None:
            for frame in self._audio_decoder.decode(packet):
                self._encode_audio(self.speech.push(frame) if self.speech is not None else [frame])
            return
        if self._adts is not None:
            time_base = packet.time_base
            for filtered in self._adts.filter(packet):
                filtered.time_base = time_base
                filtered.stream = self._audio_out
                self._container.mux(filtered)
            return
        packet.stream = self._audio_out
        self._container.mux(packet)

    def _encode_audio(self, frames: list) -> None:
        """Encode decoded frames to the AAC track, laid end to end from where the first one plays: a gap
        in the source (a live source's lost packets) is filled with silence, an overlap is cut, so that
        the encoder's timestamps stay contiguous and the audio stays in time with the video."""
        for frame in frames:
            for resampled in self._resampler.resample(frame):
                at = frame.pts * frame.time_base if frame.pts is not None and frame.time_base else None
                start = round(at * self._audio_rate) if at is not None else self._audio_next
                if self._audio_next is None:
                    # AVI keeps no timestamps: the AAC encoder's priming (its first packet before 0) would
                    # make the muxer shift the video a frame later; the audio starts after it instead
                    self._audio_next = max(start or 0, 0) + (AAC_PRIMING if self._no_timestamps else 0)
                elif start is not None and start - self._audio_next > resampled.samples // 2:  # a gap
                    self._silence(start - self._audio_next)
                elif start is not None and self._audio_next - start >= resampled.samples:  # all played already
                    continue
                resampled.pts, resampled.time_base = self._audio_next, Fraction(1, self._audio_rate)
                self._audio_next += resampled.samples
                self._container.mux(self._audio_out.encode(resampled))

    def _silence(self, samples: int) -> None:
        """``samples`` of silence into the AAC track at its next timestamp."""
        layout = self._audio_out.layout.name
        channels = self._audio_out.layout.nb_channels
        while samples > 0:
            n = min(samples, self._audio_rate)
            frame = av.AudioFrame.from_ndarray(np.zeros((channels, n), np.float32), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = (
                self._audio_rate,
                self._audio_next,
                Fraction(1, self._audio_rate),
            )
            self._audio_next += n
            samples -= n
            self._container.mux(self._audio_out.encode(frame))

    def _lose_audio(self, error: Exception) -> None:
        """Stop writing audio after a failure; said once. The video goes on (its track is whole)."""
        self._audio_lost = True
        log.warning(
            "%s: the audio could not be written (%s); the video goes on without it from %.1f s",
            self.path.name,
            _ffmpeg_reason(error),
            float((self._last_pts or 0) * self.time_base),
        )

    def write(self, image: np.ndarray, pts: int | None = None, duration: int | None = None) -> None:
        """Encode one BGR frame at ``pts`` (in ``time_base`` units; ``None``: the next frame slot)."""
        if image.shape[0] != self.height or image.shape[1] != self.width:
            image = _pad_even(image, self.height, self.width)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = self._next_pts if self._last_pts is None else max(self._next_pts, self._last_pts + 1)
        step = round(Fraction(1, 1) / (self._fps * self.time_base)) or 1
        frame.pts, frame.time_base = pts, self.time_base
        frame.duration = duration or step
        self._last_pts, self._next_pts = pts, pts + (duration or step)
        self._container.mux(self._stream.encode(frame))

    def close(self) -> Path:
        """Flush the encoders, finish the file and move it to its final name."""
        try:
            self._container.mux(self._stream.encode(None))
            if self._audio_decoder is not None and not self._audio_lost:
                try:
                    if self.speech is not None:  # what the gate still holds: its speech decided at the end
                        self._encode_audio(self.speech.flush())
                    self._container.mux(self._audio_out.encode(None))
                except (av.FFmpegError, ValueError) as e:
                    self._lose_audio(e)
            self._container.close()
        except BaseException:
            self.abort()
            raise
        return publish(self.tmp, self.path)

    def abort(self) -> None:
        """Stop writing and remove the temporary file; the final path is never touched."""
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - a half-open container may fail to close; it is deleted anyway
            pass
        self.tmp.unlink(missing_ok=True)


def _pad_even(image: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.copyMakeBorder(image, 0, height - image.shape[0], 0, width - image.shape[1], cv2.BORDER_REPLICATE)
