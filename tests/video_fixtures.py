"""Small test videos written with PyAV, and the frames a plain sequential decode gives.

Import what a test needs (`from video_fixtures import write_video, ...`); nothing here is a pytest
hook, so it lives beside whatever tests/conftest.py holds.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames that differ from each other everywhere, smooth enough for lossy codecs.

    Frame i is a gradient shifted by 8 * i levels, plus a bright square whose position depends
    on i, so any two frames are far apart even after compression.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        base = np.stack([xx * 2 + i * 8, yy * 3 + i * 8, (xx + yy) + i * 8], axis=-1) % 200
        frames[i] = base.astype(np.uint8)
        size = max(2, min(height, width) // 4)
        top = (i * 3) % max(1, height - size)
        left = (i * 5) % max(1, width - size)
        frames[i, top : top + size, left : left + size] = 230 + rng.integers(0, 20)
    return frames


def write_video(
    path: Path,
    frames: np.ndarray,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fps: int = 25,
    options: dict[str, str] | None = None,
    pts_ms: list[int] | None = None,
    rotation: int | None = None,
    src_format: str | None = None,
) -> Path:
    """Encode `frames` ((T, H, W, C) uint8; C = 1 gray, 3 rgb, 4 rgba) into `path`.

    `pts_ms` gives each frame's timestamp in milliseconds (a variable frame rate); `rotation`
    writes a display matrix turning the video that many degrees counter-clockwise.
    """
    if src_format is None:
        src_format = {1: "gray", 3: "rgb24", 4: "rgba"}[frames.shape[-1] if frames.ndim == 4 else 1]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        if pts_ms is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, image in enumerate(frames):
            if src_format == "gray" and image.ndim == 3:
                image = image[..., 0]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=src_format)
            if pts_ms is not None:
                frame.pts = pts_ms[i]
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path) -> Path:
    """An .mp4 holding an AAC audio stream and no video."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_with_audio(path: Path, frames: np.ndarray) -> Path:
    """H.264 video plus an AAC audio track, as phones and cameras write."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i, image in enumerate(frames):
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            sound.sample_rate, sound.pts = 16000, i * 1024
            for packet in audio.encode(sound):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return path


def write_mpeg_ts(path: Path, frames: np.ndarray) -> Path:
    """MPEG-2 in MPEG-TS: the first keyframe is stamped after its decode time, and seeking to a
    keyframe's timestamp lands on the next one."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg2video", rate=Fraction(12))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"g": "4"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame in presentation order, decoded sequentially from the start: the reference."""
    with av.open(str(path)) as container:
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return [array for _, array in sorted(frames, key=lambda item: item[0])]


def codec_available(name: str) -> bool:
    return name in av.codecs_available


# (file name, codec, pixel format, encoder options): one per container / codec family.
CODEC_CASES = [
    ("h264.mp4", "libx264", "yuv420p", {"g": "8", "bf": "2"}),
    ("h264.mkv", "libx264", "yuv420p", {"g": "8"}),
    ("vp8.webm", "libvpx", "yuv420p", {"g": "8"}),
    ("vp9.webm", "libvpx-vp9", "yuv420p", {"g": "8"}),
    ("mpeg4.avi", "mpeg4", "yuv420p", {"g": "8"}),
    ("mjpeg.avi", "mjpeg", "yuvj420p", {}),
    ("ffv1.mkv", "ffv1", "bgr0", {}),
]
