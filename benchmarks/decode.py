"""Clip decoding: videomae.read_video (seek, skip) against decoding every frame up to the clip.

Writes a 10-second, 30 fps, 1280x720 H.264 file with PyAV (libx264 defaults: GOP up to 250,
B-frames; synthetic moving content with noise), then reads 16 frames at stride 4 (a 61-frame
window) at several positions, both ways:

- baseline: `read_video_pyav` from the transformers VideoMAE documentation: seek to 0, decode
  every frame up to the last index, keep the wanted ones, convert them to RGB;
- videomae: `read_video(path, indices)`.

Both open the file themselves and return the same (16, 720, 1280, 3) uint8 frames (checked).
Times are medians of interleaved repeats.

    python benchmarks/decode.py [--video FILE] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from videomae import read_video, sample_frame_indices  # noqa: E402
from machine import cpu_name  # noqa: E402


def write_test_video(path: Path, seconds: int = 10, fps: int = 30, width: int = 1280, height: int = 720) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)  # x264 defaults: preset medium, keyint 250
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(seconds * fps):
            shift = 4.0 * t
            image = np.stack(
                [
                    128 + 100 * np.sin((xx + shift) / 97.0) * np.cos(yy / 61.0),
                    (xx * 0.15 + yy * 0.2 + shift) % 256,
                    128 + 90 * np.sin((xx - yy + 2 * shift) / 37.0),
                ],
                axis=-1,
            )
            cx, cy = int(100 + 3 * t) % (width - 260), int(100 + 2 * t) % (height - 180)
            image[cy : cy + 180, cx : cx + 260] = (230, 40, 60)
            image += rng.normal(0, 3, image.shape).astype(np.float32)
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_video_pyav(container, indices):
    """The transformers documentation's decoder (VideoMAE model page), unchanged in behaviour."""
    frames = []
    container.seek(0)
    start_index = indices[0]
    end_index = indices[-1]
    for i, frame in enumerate(container.decode(video=0)):
        if i > end_index:
            break
        if i >= start_index and i in indices:
            frames.append(frame)
    return np.stack([x.to_ndarray(format="rgb24") for x in frames])


def baseline(path: Path, indices: np.ndarray) -> np.ndarray:
    with av.open(str(path)) as container:
        return read_video_pyav(container, indices)


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = sorted((p.pts, p.is_keyframe) for p in container.demux(stream) if p.size)
    return [i for i, (_, key) in enumerate(packets) if key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="use this file instead of generating one")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device: {cpu_name()}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, av {av.__version__}, "
          f"FFmpeg libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.video
        if path is None:
            path = Path(tmp) / "bench_720p30_10s.mp4"
            start = time.perf_counter()
            write_test_video(path)
            print(f"wrote {path.name} in {time.perf_counter() - start:.1f} s")
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            num_frames, size = stream.frames, (stream.width, stream.height)
            print(f"video: {size[0]}x{size[1]}, {num_frames} frames, {float(stream.average_rate):.0f} fps, "
                  f"{stream.codec_context.name}, {path.stat().st_size / 1e6:.1f} MB, keyframes at {keyframes(path)}")

        starts = [0, 60, 120, 180, num_frames - 61]
        clips = {f"frames {s}..{s + 60}": np.arange(s, s + 61, 4) for s in starts}
        generator = torch.Generator().manual_seed(0)
        random_clips = [sample_frame_indices(16, 4, num_frames, generator) for _ in range(10)]

        for indices in list(clips.values())[:1]:  # warm-up (FFmpeg's converters initialise once)
            baseline(path, indices)
            read_video(path, indices)
        print(f"\n16 frames at stride 4, median of {args.repeats} interleaved runs (ms)")
        print(f"  {'clip':<22}{'baseline':>10}{'videomae':>10}{'ratio':>8}")
        totals = [0.0, 0.0]
        for name, indices in clips.items():
            assert np.array_equal(baseline(path, indices), read_video(path, indices).numpy()), name
            base, ours = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                baseline(path, indices)
                base.append(time.perf_counter() - start)
                start = time.perf_counter()
                read_video(path, indices)
                ours.append(time.perf_counter() - start)
            b_ms, o_ms = statistics.median(base) * 1000, statistics.median(ours) * 1000
            totals[0] += b_ms
            totals[1] += o_ms
            print(f"  {name:<22}{b_ms:>10.1f}{o_ms:>10.1f}{b_ms / o_ms:>7.2f}x")
        print(f"  {'mean of positions':<22}{totals[0] / len(clips):>10.1f}{totals[1] / len(clips):>10.1f}"
              f"{totals[0] / totals[1]:>7.2f}x")

        base_total = ours_total = 0.0
        for indices in random_clips:
            start = time.perf_counter()
            baseline(path, indices)
            base_total += time.perf_counter() - start
            start = time.perf_counter()
            read_video(path, indices)
            ours_total += time.perf_counter() - start
        print(f"  {'10 random clips, mean':<22}{base_total * 100:>10.1f}{ours_total * 100:>10.1f}"
              f"{base_total / ours_total:>7.2f}x   (sample_frame_indices, seed 0)")


if __name__ == "__main__":
    main()
