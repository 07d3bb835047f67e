"""Live benchmark: a clip served in real time on the loopback, anonymised by the CLI at its defaults.

A child process of this script plays ``--video`` (looped) as an MPEG-TS stream on a listening TCP socket
(a process, not a thread: PyAV holds the GIL while it waits for the client),
paced by the wall clock at the clip's frame rate: the video re-encoded, its audio copied (AAC goes as
ADTS, as a camera's or an encoder's MPEG-TS carries it). ``anonymise bbox -i tcp://127.0.0.1:PORT`` runs
against it in a child process for ``--seconds``, then gets SIGINT (as Ctrl-C). Printed: the frames
written and the processed rate, the stale frames dropped, the latency from capture to written
frame (median and 95th percentile, from the CLI's summary), and the recording's duration against
the wall time it ran.

    python scripts/live_bench.py [--video ../shared/data/closeups/book.mkv] [--seconds 60]
    python scripts/live_bench.py --seconds 1800 --sample-every 30 -- --segment 600   # the soak

``--residual`` (privacy, as a surveillance camera's footage): the CLI runs with ``--no-pose`` (a
skeleton is no person), and the privacy reference (``privacy_eval.REFERENCE``: the pose model at
1280 px with tiles) counts the people in every 5th recorded frame against those in as many source
frames over the span recorded (see :func:`residual`: frames cannot be paired one to one, so every
person found in the recording counts as left):

    python scripts/live_bench.py --video ../shared/data/pedestrians.mp4 --seconds 40 --residual

``--sample-every S`` reads the CLI process's resident memory and open file descriptors
(``/proc/PID``) every S seconds, and at the end compares the first sample after the first minute
(models loaded, buffers warm) with the last and the largest: flat means within 10%.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(video: Path, port: int, stop: threading.Event | None = None, format: str = "mpegts") -> None:
    """Play ``video`` in a loop as ``format`` (MPEG-TS) on tcp://127.0.0.1:port (waits for the client), in
    real time: the video re-encoded, the source's audio (the first track) copied as it is."""
    with av.open(str(video)) as src:
        stream = src.streams.video[0]
        fps = stream.average_rate or Fraction(30)
        frames = [f.to_ndarray(format="bgr24") for f in src.decode(video=0)]
        audio = src.streams.audio[0] if src.streams.audio else None
        start = float((stream.start_time or 0) * stream.time_base)
        packets = _audio_packets(src, audio, start, len(frames) / float(fps)) if audio is not None else []
        height, width = frames[0].shape[:2]
        try:
            _stream(frames, fps, width, height, port, stop, format, audio, packets)
        except (OSError, av.FFmpegError):  # the client went away (a broken pipe on closing)
            pass


def _audio_packets(src, audio, start: float, seconds: float) -> list[tuple[float, bytes, int | None]]:
    """The audio that plays with the clip's ``seconds`` of video from ``start``, as (seconds from the first
    frame, data, duration in its time base), in order: each pass of the loop then follows the last (an
    encoder's priming before the first frame and any audio past the last are left out)."""
    src.seek(0)  # the video was decoded first
    packets = []
    for p in src.demux(audio):
        at = float(p.pts * audio.time_base) - start if p.pts is not None else -1.0
        if p.size and 0 <= at < seconds:
            packets.append((at, bytes(p), p.duration))
    return packets


def _stream(frames, fps, width, height, port, stop, format="mpegts", audio=None, packets=()) -> None:
    with av.open(f"tcp://127.0.0.1:{port}?listen=1", "w", format=format) as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"preset": "ultrafast", "tune": "zerolatency"}
        a = out.add_stream_from_template(audio) if packets else None
        loop = len(frames) / float(fps)  # seconds of one pass over the clip
        start, i, n = time.monotonic(), 0, 0  # n: audio packets sent, over all passes
        try:
            while stop is None or not stop.is_set():
                due = start + i / float(fps)
                time.sleep(max(0.0, due - time.monotonic()))
                # the audio that plays up to the end of this frame, copied with the pass's offset
                while a is not None and (n // len(packets)) * loop + packets[n % len(packets)][0] < (i + 1) / fps:
                    at, data, duration = packets[n % len(packets)]
                    packet = av.Packet(data)
                    packet.pts = packet.dts = round(((n // len(packets)) * loop + at) / a.time_base)
                    packet.duration, packet.time_base, packet.stream = duration, a.time_base, a
                    out.mux(packet)
                    n += 1
                frame = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="bgr24")
                frame.pts = i
                for packet in v.encode(frame):
                    out.mux(packet)
                i += 1
        except (OSError, av.FFmpegError):  # the client went away
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=ROOT.parent / "shared" / "data" / "closeups" / "book.mkv")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-every", type=float, default=0.0, help="seconds between RSS/FD samples (0: none)")
    parser.add_argument("--residual", action="store_true", help="residual people in the recording (see above)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the child that streams
    parser.add_argument("args", nargs="*", help="more options for anonymise bbox (after --)")
    args = parser.parse_args()
    if args.serve:
        serve(args.video, args.serve)
        return
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--video", str(args.video), "--serve", str(port)])
    time.sleep(2.0)  # listening
    with tempfile.TemporaryDirectory(prefix="anonymise-live-") as tmp:
        out = Path(tmp) / "live.mp4"
        cmd = ["anonymise", "bbox", "-i", f"tcp://127.0.0.1:{port}", "-o", str(out), "--segment", "0", *args.args]
        if args.residual:
            cmd.append("--no-pose")
        print("running: " + shlex.join(cmd), flush=True)
        started = time.monotonic()
        # Ctrl-C's default action in the child even where this runs as a background job of a script (whose
        # children inherit SIGINT ignored, and Python then installs no handler for it): the stop is SIGINT
        child = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
        )
        opened: list[float] = []  # when the recording's file appeared: its first frame is captured then

        def watch() -> None:
            while not opened and child.poll() is None:
                if any(Path(tmp).glob(".live*.mp4")):
                    opened.append(time.monotonic() - started)
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()
        samples = []  # (seconds, RSS MiB, open FDs)
        while time.monotonic() - started < args.seconds:
            step = args.sample_every or args.seconds
            time.sleep(max(0.0, min(step, args.seconds - (time.monotonic() - started))))
            if args.sample_every and child.poll() is None:
                samples.append((time.monotonic() - started, *usage(child.pid)))
                print(
                    f"  {samples[-1][0]:7.0f} s: RSS {samples[-1][1]:7.1f} MiB, {samples[-1][2]} open files", flush=True
                )
        stopped = time.monotonic() - started
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=120)
        wall = time.monotonic() - started
        server.kill()
        server.wait()
        print("\n".join(x for x in (stderr.strip(), stdout.strip()) if x))
        frames, duration, audio = 0, 0.0, 0.0
        for path in sorted(Path(tmp).glob("live*.mp4")):  # one file, or the segments of a soak
            with av.open(str(path)) as c:
                v = c.streams.video[0]
                frames += sum(1 for _ in c.decode(v))
                duration += float(v.duration * v.time_base) if v.duration else float(c.duration or 0) / 1e6
                if c.streams.audio:
                    c.seek(0)  # decoding the video read the file to its end
                    audio += sum(float(p.duration * p.time_base) for p in c.demux(c.streams.audio[0]) if p.duration)
        found = residual(sorted(Path(tmp).glob("live*.mp4"))[0], args.video) if args.residual and frames else None
    m = re.search(r"(\d+) stale frames dropped, latency (\d+) ms median, (\d+) ms 95th", stdout)
    dropped, median, p95 = (int(x) for x in m.groups()) if m else (None, None, None)
    print(
        f"source {args.video.name} served in real time; ran {wall:.1f} s (SIGINT after {args.seconds:.0f} s): "
        f"{frames} frames written ({frames / max(duration, 1e-6):.1f} fps of recording), {dropped} dropped, "
        f"latency median {median} ms, p95 {p95} ms, recording {duration:.1f} s, its audio {audio:.1f} s"
    )
    if opened:
        span = stopped - opened[0]
        print(
            f"recording {duration:.2f} s against {span:.2f} s from the file's first frame to SIGINT: "
            f"{100 * (duration - span) / span:+.2f}%"
        )
    if found is not None:
        people, left = found
        print(
            f"residual people: the reference finds {left} people in every 5th recorded frame, against {people} in "
            f"as many source frames over the span recorded ({100 * left / max(people, 1):.2f}%)"
        )
    warm = [x for x in samples if x[0] >= 60] or samples
    if warm:
        first, last = warm[0], warm[-1]
        for name, i in (("RSS MiB", 1), ("open files", 2)):
            top = max(x[i] for x in warm)
            flat = top <= 1.1 * first[i] and last[i] <= 1.1 * first[i]
            print(
                f"{name}: {first[i]:.1f} at {first[0]:.0f} s, {last[i]:.1f} at {last[0]:.0f} s, "
                f"largest {top:.1f}: {'flat (within 10%)' if flat else 'NOT flat'}"
            )


def residual(recording: Path, video: Path, every: int = 5) -> tuple[int, int]:
    """(people the reference finds in every ``every``-th recorded frame, people it finds in as many
    source frames spread over the same part of the clip).

    Frames are not paired one to one: the stream is served from the moment the CLI connects, but
    its reader starts once the models are loaded and reads the backlog TCP held as fast as it can,
    so a capture time does not say which source frame it shows. Every person the reference still
    finds in the recording is counted as left (a false find on a fill counts too: the figure errs
    towards a leak), against the people in the source's frames over the span recorded.
    """
    sys.path.insert(0, str(ROOT / "scripts"))
    from privacy_eval import REFERENCE, people

    from anonymise.detect import Detector
    from anonymise.io.video import VideoReader

    with VideoReader(recording, audio=False) as reader:
        recorded = [(frame.time, frame.image) for i, frame in enumerate(reader) if i % every == 0]
    with VideoReader(video, audio=False) as reader:
        fps = float(reader.info.fps)
        source = [f.image for f in reader]
    reference = Detector(REFERENCE)
    left = sum(len(p) for p in people(reference, [image for _, image in recorded]))
    served = [source[round(when * fps) % len(source)] for when, _ in recorded]
    return sum(len(p) for p in people(reference, served)), left


def default_sigint() -> None:
    """In a child before it runs: SIGINT back to its default, so Python raises KeyboardInterrupt on it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def usage(pid: int) -> tuple[float, int]:
    """(resident memory in MiB, open file descriptors) of a process, from /proc."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return rss, len(list(Path(f"/proc/{pid}/fd").iterdir()))


if __name__ == "__main__":
    main()
