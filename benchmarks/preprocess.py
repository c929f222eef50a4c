"""CPU preprocessing throughput: our VideoMAEImageProcessor against transformers', same frames.

16 synthetic 1280x720 RGB frames (what a decoder hands over: uint8, (H, W, 3)) go through both
processors with their defaults (shorter side 224, centre crop 224, rescale, normalise) on the
same cores, torch limited to `--threads` threads. transformers' fastest available backend is
used (the torchvision one when torchvision is installed, else the PIL one); the script says
which. Times are medians of interleaved repeats; it prints frames/s and ours / transformers.
Outputs are compared first, in 8-bit levels.

    python benchmarks/preprocess.py [--threads 2] [--repeats 15]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from videomae import VideoMAEImageProcessor  # noqa: E402


def synthetic_frames(num_frames: int = 16, height: int = 720, width: int = 1280, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames with gradients, moving shapes, edges and sensor-like noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        shift = 6.0 * t
        image = np.stack(
            [
                128 + 100 * np.sin((xx + shift) / 97.0) * np.cos(yy / 61.0),
                (xx * 0.15 + yy * 0.2 + shift) % 256,
                128 + 90 * np.sin((xx - yy + 2 * shift) / 37.0),
            ],
            axis=-1,
        )
        cx, cy = int(300 + 20 * t), int(200 + 8 * t)
        image[cy : cy + 180, cx : cx + 260] = (230, 40, 60)
        image += rng.normal(0, 4, image.shape).astype(np.float32)
        frames[t] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def reference_processor():
    """transformers' fastest VideoMAE image processor available here, and its backend name."""
    import transformers
    from transformers.utils import is_torchvision_available

    logging.getLogger("transformers").setLevel(logging.ERROR)
    if is_torchvision_available():
        processor = transformers.VideoMAEImageProcessor()
    else:
        processor = transformers.VideoMAEImageProcessorPil()
    return processor, getattr(processor, "backend", type(processor).__name__)


def median_ms(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import PIL
    import transformers

    reference, backend = reference_processor()
    ours = VideoMAEImageProcessor()
    print(f"device: {cpu_name()}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"pillow {PIL.__version__}, numpy {np.__version__}"
    )
    print(f"transformers backend: {backend} ({type(reference).__name__})")

    video = synthetic_frames(args.frames)
    inputs = {
        "list(video) (frames of one array, as the transformers docs pass them)": list(video),
        "separate frame arrays (one allocation per frame)": [frame.copy() for frame in video],
        "4-d array (T, H, W, 3)": video,
    }
    expected = reference(list(video), return_tensors="np").pixel_values
    got = ours(list(video), return_tensors="np").pixel_values
    levels = float(np.abs(expected - got).max() * 0.5 * 255)
    print(f"output {got.shape}, max difference {np.abs(expected - got).max():.5f} = {levels:.3f} 8-bit levels")

    print(f"\n{args.frames} frames of {video.shape[2]}x{video.shape[1]}, median of {args.repeats} interleaved runs")
    for name, frames in inputs.items():
        for _ in range(2):  # warm-up
            reference(frames, return_tensors="pt")
            ours(frames, return_tensors="pt")
        theirs_ms, ours_ms = [], []
        for _ in range(args.repeats):
            theirs_ms += median_ms(lambda f=frames: reference(f, return_tensors="pt"), 1)
            ours_ms += median_ms(lambda f=frames: ours(f, return_tensors="pt"), 1)
        t_ms, o_ms = statistics.median(theirs_ms), statistics.median(ours_ms)
        print(f"  {name}:")
        label = f"transformers ({backend}):"
        print(f"    {label:<24}{t_ms:7.1f} ms  {args.frames / t_ms * 1000:7.1f} frames/s")
        print(f"    {'videomae:':<24}{o_ms:7.1f} ms  {args.frames / o_ms * 1000:7.1f} frames/s")
        print(f"    ratio: {t_ms / o_ms:.2f}x")


if __name__ == "__main__":
    main()
