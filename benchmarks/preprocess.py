"""CPU preprocessing throughput: our VideoMAEImageProcessor against transformers', same frames.

16 synthetic 1280x720 RGB frames go through every processor with its defaults (shorter side
224, bilinear, centre crop 224, rescale, normalise, `return_tensors="pt"`) on the same cores,
torch limited to `--threads` threads, in two forms:

  tensor   one contiguous (16, 3, 720, 1280) uint8 tensor: channels-first memory
  tensor, channels-last memory   the same shape, a (16, 720, 1280, 3) tensor permuted, as decoded
           frames (H, W, 3) become when moved to channels first without a copy
  list     `list(video)` of (720, 1280, 3) uint8 arrays (what the transformers docs pass)

Processors: ours; transformers' `VideoMAEVideoProcessor` and its `VideoMAEImageProcessor`
(torchvision backend; both need torchvision, and are skipped without it); its
`VideoMAEImageProcessorPil` (PIL backend). Each repeat runs every processor once, in an order
rotated from one repeat to the next, so the machine's load falls on all of them alike; times
are medians. Outputs are compared first, in 8-bit levels. The load average is printed before
and after: on a shared machine, re-run when it is high.

    python benchmarks/preprocess.py [--threads 2] [--repeats 21] [--frames 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from videomae import VideoMAEImageProcessor  # noqa: E402
from machine import cpu_name  # noqa: E402


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


def reference_processors() -> dict[str, Callable]:
    """transformers' VideoMAE processors available here, by name."""
    import transformers
    from transformers.utils import is_torchvision_available

    logging.getLogger("transformers").setLevel(logging.ERROR)
    found = {}
    if is_torchvision_available():
        found["transformers VideoMAEVideoProcessor (torchvision)"] = transformers.VideoMAEVideoProcessor()
        found["transformers VideoMAEImageProcessor (torchvision)"] = transformers.VideoMAEImageProcessor()
    found["transformers VideoMAEImageProcessorPil (PIL)"] = transformers.VideoMAEImageProcessorPil()
    return found


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import PIL
    import transformers

    processors = {"videomae VideoMAEImageProcessor": VideoMAEImageProcessor(), **reference_processors()}
    ours = "videomae VideoMAEImageProcessor"
    try:
        import torchvision

        torchvision_version = torchvision.__version__
    except ImportError:
        torchvision_version = "not installed"
    print(f"device: {cpu_name()}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision_version}, "
        f"transformers {transformers.__version__}, pillow {PIL.__version__}, numpy {np.__version__}"
    )
    print(f"load average (1, 5, 15 min) before: {load_average()}")

    video = synthetic_frames(args.frames)
    inputs = {
        f"tensor: one ({args.frames}, 3, {video.shape[1]}, {video.shape[2]}) uint8 tensor": torch.from_numpy(
            video
        ).permute(0, 3, 1, 2).contiguous(),
        "tensor, channels-last memory: the same shape, a permuted (T, H, W, 3) tensor": torch.from_numpy(
            video
        ).permute(0, 3, 1, 2),
        f"list: list(video) of {args.frames} ({video.shape[1]}, {video.shape[2]}, 3) uint8 arrays": list(video),
    }

    print("\nparity on the tensor input (largest difference, 8-bit levels = normalised difference * 0.5 * 255):")
    tensor = next(iter(inputs.values()))
    got = processors[ours](tensor, return_tensors="pt").pixel_values
    for name, processor in processors.items():
        if name != ours:
            expected = processor(tensor, return_tensors="pt").pixel_values
            print(f"  ours vs {name}: {float((got - expected).abs().max()) * 0.5 * 255:.3f}")

    for input_name, frames in inputs.items():
        times: dict[str, list[float]] = {name: [] for name in processors}
        names = list(processors)
        for name in names:  # warm-up
            processors[name](frames, return_tensors="pt")
        for repeat in range(args.repeats):
            for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                start = time.perf_counter()
                processors[name](frames, return_tensors="pt")
                times[name].append((time.perf_counter() - start) * 1000)
        print(f"\n{input_name}: median of {args.repeats} interleaved runs")
        ours_ms = statistics.median(times[ours])
        for name in names:
            ms = statistics.median(times[name])
            ratio = "" if name == ours else f"   ours is {ms / ours_ms:.2f}x faster"
            print(f"  {name:<52}{ms:7.1f} ms {args.frames / ms * 1000:7.1f} frames/s{ratio}")
    print(f"\nload average (1, 5, 15 min) after: {load_average()}")


if __name__ == "__main__":
    main()
