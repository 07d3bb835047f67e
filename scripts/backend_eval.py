"""Accuracy and speed of each installed CPU backend against torch fp32 (the table in docs/backends.md).

For every backend the same :class:`anonymise.detect.Detector` the pipeline uses is built
(``bbox`` mode: the pose model's boxes, ``imgsz=960``, ``tiles=off``, ``conf=0.15``) and run on
the first ``--frames`` frames, one frame per call as on a CPU. The torch fp32 boxes are the
reference:

recall
    share of torch's person boxes that the backend also finds (greedy one-to-one match at
    IoU >= 0.5). Below 1 means people torch masks and this backend would not.
extra
    the backend's boxes that match no torch box (per frame, summed).
IoU / dconf
    mean IoU and mean absolute confidence difference of the matched pairs.
fps
    model calls only (frames already decoded), after one untimed warm-up call; the variants take
    turns every 10 frames, so load from other processes falls on all of them alike.
export s
    building the detector when it had to export first (export, load, warm-up); 0 when the
    export came from the cache.

Variants: ``torch``; ``onnx``; ``openvino`` (fp32, anonymise's default); ``openvino-bf16``
(``--half``: OpenVINO's reduced precision on CPUs with AVX512-BF16/AMX); ``openvino-int8``
(NNCF, needs ``nncf``), calibrated on every 6th frame *after* the evaluated ones (or
``--calibration DIR``). Exports go to the usual cache (see docs/backends.md).

    python scripts/backend_eval.py [--video PATH] [--frames 100] [--imgsz 960] [--variants torch,onnx,...]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anonymise import Config  # noqa: E402

VARIANTS = ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8")
NEEDS = {
    "onnx": ("onnx", "onnxruntime"),
    "openvino": ("openvino",),
    "openvino-bf16": ("openvino",),
    "openvino-int8": ("openvino", "nncf"),
}


def read(video: Path, start: int, count: int, step: int = 1) -> list[np.ndarray]:
    frames = []
    with av.open(str(video)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= start and (i - start) % step == 0:
                frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) >= count:
                break
    return frames


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def match(ref, got, threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs (ref index, got index, IoU) with IoU >= threshold, best first."""
    if not len(ref) or not len(got):
        return []
    iou = iou_matrix(ref.xyxy, got.xyxy)
    pairs, used_r, used_g = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        r, g = np.unravel_index(flat, iou.shape)
        if iou[r, g] < threshold:
            break
        if r in used_r or g in used_g:
            continue
        used_r.add(r)
        used_g.add(g)
        pairs.append((int(r), int(g), float(iou[r, g])))
    return pairs


def build(variant: str, imgsz: int, calibration: str | None):
    """(detector, export seconds, precision in effect) for one variant."""
    from anonymise.detect import Detector
    from anonymise.detect import exports as backends

    backend = variant.split("-")[0]
    int8 = variant.endswith("int8")
    if int8 and calibration:
        os.environ["ANONYMISE_CALIBRATION"] = calibration
    exports = []
    real = backends._export
    backends._export = lambda *a, **k: exports.append(1) or real(*a, **k)
    started = time.perf_counter()
    try:
        half = variant.endswith("bf16")  # --half: OpenVINO's reduced CPU precision
        detector = Detector(
            Config(mode="bbox", backend=backend, int8=int8, half=half, imgsz=imgsz, tiles="off", device="cpu")
        )
    finally:
        backends._export = real
    export_s = time.perf_counter() - started if exports else 0.0
    precision = "fp32"
    if backend == "openvino":
        model = detector.pose_model
        compiled = model.predictor.model.backend.ov_compiled_model
        precision = str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: '", "").replace("'>", "")
        precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(precision, precision)
        if int8:
            precision = f"int8 + {precision}"
    return detector, export_s, precision


def timed(detectors: dict, frames: list[np.ndarray], block: int = 10) -> tuple[dict, dict]:
    """Each detector on each frame, taking turns every ``block`` frames so that load from other
    processes on a shared machine falls on every variant alike. Returns (people per frame, fps)."""
    for detector in detectors.values():
        detector([frames[0]])  # warm-up
    found = {v: [] for v in detectors}
    seconds = dict.fromkeys(detectors, 0.0)
    for start in range(0, len(frames), block):
        for variant, detector in detectors.items():
            detector([frames[start]])  # untimed: another runtime's idle threads may still hold the cores
            for frame in frames[start : start + block]:
                t = time.perf_counter()
                (result,) = detector([frame])
                seconds[variant] += time.perf_counter() - t
                found[variant].append(result.people)
    return found, {v: len(frames) / s for v, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=ROOT.parent / "shared" / "data" / "pedestrians.mp4")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--imgsz", type=int, default=960)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--calibration", help="folder of calibration images for int8 (default: frames after the evaluated ones)"
    )
    args = parser.parse_args()

    frames = read(args.video, 0, args.frames)
    h, w = frames[0].shape[:2]
    print(
        f"{args.video.name}: {len(frames)} frames {w}x{h}, imgsz={args.imgsz}, tiles=off, conf={Config().conf}, CPU "
        f"{platform.processor() or platform.machine()} x{os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    calibration = args.calibration or os.environ.get("ANONYMISE_CALIBRATION")
    tmp = None
    if any(v.endswith("int8") for v in variants) and not calibration:
        tmp = tempfile.TemporaryDirectory(prefix="anonymise-calibration-")
        for i, image in enumerate(read(args.video, args.frames, 120, step=6)):
            cv2.imwrite(f"{tmp.name}/{i:04d}.jpg", image)
        calibration = tmp.name

    built = {}
    for variant in ["torch"] + [v for v in variants if v != "torch"]:
        missing = [m for m in NEEDS.get(variant, ()) if importlib.util.find_spec(m) is None]
        if missing:
            print(f"{variant}: skipped ({', '.join(missing)} not installed)")
            continue
        built[variant] = build(variant, args.imgsz, calibration)
        print(f"{variant}: ready ({built[variant][2]}, export {built[variant][1]:.0f} s)", flush=True)
    found, fps = timed({v: b[0] for v, b in built.items()}, frames)
    reference = found["torch"]
    total = sum(len(r) for r in reference)
    rows = []
    for variant, (_, export_s, precision) in built.items():
        pairs = [match(r, g) for r, g in zip(reference, found[variant])]
        matched = sum(len(p) for p in pairs)
        extra = sum(len(g) - len(p) for g, p in zip(found[variant], pairs))
        ious = [iou for p in pairs for _, _, iou in p]
        dconf = [
            abs(float(r.confidence[i]) - float(g.confidence[j]))
            for r, g, p in zip(reference, found[variant], pairs)
            for i, j, _ in p
        ]
        rows.append(
            (
                variant,
                precision,
                matched / max(total, 1),
                matched,
                total,
                extra,
                np.mean(ious) if ious else 0.0,
                np.mean(dconf) if dconf else 0.0,
                fps[variant],
                export_s,
            )
        )
    if tmp is not None:
        tmp.cleanup()

    print()
    print(
        "| backend | precision | person recall vs torch | extra boxes | mean IoU | mean abs dconf | fps (model "
        "calls) | export s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for variant, precision, recall, matched, total, extra, iou, dconf, fps, export_s in rows:
        print(
            f"| {variant} | {precision} | {recall:.3f} ({matched}/{total}) | {extra} | {iou:.3f} | {dconf:.4f} | "
            f"{fps:.1f} | {export_s:.0f} |"
        )


if __name__ == "__main__":
    main()
