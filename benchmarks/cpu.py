"""CPU inference: `videomae classify` against the transformers documentation's VideoMAE
classification example, side by side in one process, on the same model and the same files.

- Videos: five 10 s, 30 fps, 1280x720 H.264 files (libx264, CRF 23, keyframe interval up to
  250), generated with PyAV by benchmarks/pipeline_data.py (1/f colour noise scene, a panning
  and shaking camera, moving textured objects, sensor noise).
- Model: ViT-B 16x224 (transformers' `VideoMAEConfig` defaults, 400 labels) with random
  weights. transformers builds it from the config and saves it with its image processor; both
  libraries load that folder. No hub access.
- transformers: its documented example for `VideoMAEForVideoClassification`, per video:
  `av.open`, `sample_frame_indices(clip_len=16, frame_sample_rate=1, seg_len=frames)` (NumPy
  seeded 0 once per run), `read_video_pyav`, `AutoImageProcessor(list(video),
  return_tensors="pt")` (without torchvision it is the PIL processor), forward under
  `torch.no_grad()`, `argmax`. With its defaults (float32), and again with the model loaded
  in bfloat16 (`from_pretrained(dtype=torch.bfloat16)`, pixel values cast to bfloat16).
- videomae: `videomae classify FILES --model FOLDER --num-clips 1 --dtype auto --format jsonl`
  run through `videomae.cli.main` in this process: one clip a video as in the example (the
  command's default is 4); decoding runs in a worker process ahead of the model, as the command
  does by default.

Figure: seconds per video beyond the first, (time for the five - time for the first alone) / 4,
so loading, start-up and warm-up cancel out. Each repeat runs the three in an order
rotated from one repeat to the next; medians over repeats. torch uses `--threads` threads.

--profile adds each stage's CPU time a video on one core (what the two cores share).

    python benchmarks/cpu.py [--dir /tmp/videomae-cpu] [--repeats 3] [--threads 2] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_data  # noqa: E402
from decode import read_video_pyav  # noqa: E402 (the transformers documentation's decoder)
from machine import cpu_name  # noqa: E402

from videomae import devices  # noqa: E402
from videomae.cli import main as videomae_main  # noqa: E402

NUM_VIDEOS = 5


# --------------------------------------------------------------------------- setup
def make_videos(folder: Path) -> list[Path]:
    """Five 720p files (made once; reused when present)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(NUM_VIDEOS):
        path = folder / f"clip_{i}.mp4"
        if not path.is_file():
            pipeline_data.make_video(path, i, size=(1280, 720))
        paths.append(path)
    return paths


def make_model(folder: Path) -> Path:
    """A random ViT-B 16x224 classifier saved by transformers, with its image processor."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        config = VideoMAEConfig(num_labels=400, id2label={i: f"class {i}" for i in range(400)})
        VideoMAEForVideoClassification(config).eval().save_pretrained(folder)
        VideoMAEImageProcessor().save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- transformers' example


def sample_frame_indices(clip_len, frame_sample_rate, seg_len):  # noqa: ANN001, ANN201 - as documented
    converted_len = int(clip_len * frame_sample_rate)
    end_idx = np.random.randint(converted_len, seg_len)
    start_idx = end_idx - converted_len
    indices = np.linspace(start_idx, end_idx, num=clip_len)
    indices = np.clip(indices, start_idx, end_idx - 1).astype(np.int64)
    return indices


class TransformersExample:
    """The documented example, the model and processor loaded once, then one video at a time."""

    def __init__(self, folder: Path, dtype: torch.dtype) -> None:
        from transformers import AutoImageProcessor, VideoMAEForVideoClassification

        self.dtype = dtype
        self.processor = AutoImageProcessor.from_pretrained(folder)
        self.model = VideoMAEForVideoClassification.from_pretrained(folder, dtype=dtype).eval()

    def __call__(self, paths: list[Path]) -> list[int]:
        """The predicted class of each video."""
        np.random.seed(0)
        predicted = []
        for path in paths:
            with av.open(str(path)) as container:
                indices = sample_frame_indices(clip_len=16, frame_sample_rate=1,
                                               seg_len=container.streams.video[0].frames)
                video = read_video_pyav(container, indices)
            inputs = self.processor(list(video), return_tensors="pt")
            with torch.no_grad():
                logits = self.model(pixel_values=inputs["pixel_values"].to(self.dtype)).logits
            predicted.append(int(logits.argmax(-1).item()))
        return predicted


# --------------------------------------------------------------------------- ours
def videomae_classify(folder: Path, paths: list[Path], extra: tuple[str, ...] = ()) -> str:
    """`videomae classify` on the files, as typed; its stderr (the dtype line)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = videomae_main(["classify", *map(str, paths), "--model", str(folder), "--num-clips", "1",
                              "--dtype", "auto", "--format", "jsonl", "--no-progress", *extra])
    if code != 0 or len(out.getvalue().splitlines()) != len(paths):
        raise RuntimeError(f"videomae classify failed: {err.getvalue()}")
    return err.getvalue().strip()


def per_video(run: Callable[[list[Path]], object], paths: list[Path]) -> float:
    """Seconds per video beyond the first: (time for all - time for the first alone) / (n - 1),
    so loading, start-up and warm-up cancel out."""
    start = time.perf_counter()
    run(paths[:1])
    one = time.perf_counter() - start
    start = time.perf_counter()
    run(paths)
    return (time.perf_counter() - start - one) / (len(paths) - 1)


# --------------------------------------------------------------------------- where the time goes
def profile(folder: Path, paths: list[Path], repeats: int) -> None:
    """Each stage's CPU time a video on one core (medians): the work that two cores share, which
    a busy machine distorts less than wall-clock times."""
    from videomae.pipeline import VideoClips, load_classifier, load_processor

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    example, example_bf16 = TransformersExample(folder, torch.float32), TransformersExample(folder, torch.bfloat16)
    ours = load_classifier(str(folder)).eval()
    processor = load_processor(str(folder), ours.config)
    exact = VideoClips(paths, processor, ours.config.num_frames, 4, 1)
    clips = VideoClips(paths, processor, ours.config.num_frames, 4, 1, decoder_resize=True)  # classify's default
    np.random.seed(0)
    frames = {}
    for path in paths:
        with av.open(str(path)) as container:
            frames[path] = sample_frame_indices(16, 1, container.streams.video[0].frames)
    pixels = torch.randn(1, 16, 3, 224, 224)

    def decode_theirs() -> None:
        for path in paths:
            with av.open(str(path)) as container:
                read_video_pyav(container, frames[path])

    video = {path: None for path in paths}

    def process_theirs() -> None:
        for path in paths:
            if video[path] is None:
                with av.open(str(path)) as container:
                    video[path] = read_video_pyav(container, frames[path])
        for path in paths:
            example.processor(list(video[path]), return_tensors="pt")

    def forward(model: torch.nn.Module, dtype: torch.dtype | None) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=dtype is not None):
                model(pixels if dtype is None or model is ours else pixels.to(dtype))
        return run

    process_theirs()  # decodes once, outside the timing
    stages = {
        "transformers: read_video_pyav": (decode_theirs, len(paths)),
        "transformers: image processor": (process_theirs, len(paths)),
        "transformers: model, float32": (forward(example.model, None), 1),
        "transformers: model, bfloat16 weights": (forward(example_bf16.model, torch.bfloat16), 1),
        "videomae: decode, resize, crop (classify)": (lambda: [clips[i] for i in range(len(paths))], len(paths)),
        "videomae: the same, --exact-resize": (lambda: [exact[i] for i in range(len(paths))], len(paths)),
        "videomae: model, bfloat16 autocast": (forward(ours, torch.bfloat16), 1),
    }
    print(f"CPU time a video on one core, median of {repeats}:")
    for name, (run, count) in stages.items():
        run()
        times = []
        for _ in range(repeats):
            start = time.process_time()
            run()
            times.append((time.process_time() - start) / count)
        print(f"  {name:<46} {statistics.median(times):.3f} s")
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/videomae-cpu"), help="videos and model folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--profile", action="store_true", help="also each stage's CPU time on one core")
    args = parser.parse_args()
    import logging

    import transformers

    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    paths = make_videos(args.dir / "videos")
    folder = make_model(args.dir / "model")
    fp32, bf16 = TransformersExample(folder, torch.float32), TransformersExample(folder, torch.bfloat16)
    said: list[str] = []
    runs: dict[str, Callable[[list[Path]], object]] = {
        "transformers example, float32 (its default)": fp32,
        "transformers example, bfloat16": bf16,
        "videomae classify --dtype auto": lambda files: said.append(videomae_classify(folder, files)),
    }
    names = list(runs)
    results: dict[str, list[float]] = {name: [] for name in names}
    loads = [os.getloadavg()[0]]
    for repeat in range(args.repeats):
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in order:
            results[name].append(per_video(runs[name], paths))
        loads.append(os.getloadavg()[0])

    medians = {name: statistics.median(values) for name, values in results.items()}
    base, base_bf16, ours_s = medians[names[0]], medians[names[1]], medians[names[2]]
    print(f"device: {cpu_name()}, {os.cpu_count()} CPUs, torch threads {args.threads}; bf16 units: "
          f"{devices.cpu_bf16_units()}; load average {min(loads):.1f} to {max(loads):.1f}")
    print(f"versions: Python {platform.python_version()}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, PyAV {av.__version__}; processor {type(fp32.processor).__name__}")
    print(f"videomae classify said: {said[-1]}")
    print(f"{NUM_VIDEOS} videos (1280x720, 10 s, H.264), seconds per video beyond the first, median of "
          f"{args.repeats}:")
    for name in names:
        values = ", ".join(f"{v:.3f}" for v in results[name])
        print(f"  {name:<46} {medians[name]:.3f} s  ({values})")
    print(f"videomae vs the example in float32: {base / ours_s:.2f}x; vs the example in bfloat16: "
          f"{base_bf16 / ours_s:.2f}x")
    print(json.dumps({"medians_s": medians, "runs_s": results}))
    if args.profile:
        profile(folder, paths, args.repeats)


if __name__ == "__main__":
    main()
