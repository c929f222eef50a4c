"""Which stored format should `videomae prep` write? Disk size against clip decode speed.

Makes 10 s, 30 fps source videos with natural-image-like content (a large 1/f-noise "photo"
panned and slowly zoomed, textured objects moving over it, light sensor noise), encoded as
cameras and web sites do (libx264 defaults: CRF 23, preset medium, keyint 250, B-frames). Then
rewrites them with `videomae.prep.transcode` in several formats (frame stride, keyframe
interval, B-frames, short side, preset) and measures for each:

- disk: stored bytes / source bytes, for each source size (the ratio depends on it);
- decode: clips/s on ONE core (the process is pinned to one CPU) with `read_video` on training
  indices: 16 frames at stride 4 source frames (stride 4 / S stored frames), random starts from
  `sample_frame_indices` (the same seeds for every format), in rounds over every format in a
  shuffled order (median round; the machine is shared), frames resized by the decoder to short
  side 320 (to the stored size where it is smaller); the source row reads the originals;
- quality: PSNR (dB) of 16 stored frames against the source frames they stand for, the source
  scaled to the stored size with the same (area) filter;
- prep: seconds of one core per 10 s source video (decode + scale + encode).

    python benchmarks/prep_formats.py [--clips 4] [--rounds 3] [--sizes 1280x720,640x360]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from videomae import probe_video, read_video, sample_frame_indices  # noqa: E402
from videomae.prep import PrepOptions, transcode  # noqa: E402
from machine import cpu_name  # noqa: E402

# (label, options): keyframe intervals with and without B-frames (B-frames delay a decoder's first
# frame after each seek), then frame strides, a smaller short side and the encoder's presets.
VARIANTS = [
    ("k1 (all intra)", PrepOptions(keyint=1, bframes=0)),
    ("k4", PrepOptions(keyint=4, bframes=0)),
    ("k8", PrepOptions(keyint=8, bframes=0)),
    ("k8 bf3", PrepOptions(keyint=8, bframes=3)),
    ("k16", PrepOptions(keyint=16, bframes=0)),
    ("k16 bf3", PrepOptions(keyint=16, bframes=3)),
    ("k32", PrepOptions(keyint=32, bframes=0)),
    ("k16 medium", PrepOptions(keyint=16, bframes=0, preset="medium")),
    ("k16 veryfast", PrepOptions(keyint=16, bframes=0, preset="veryfast")),
    ("S2 k8", PrepOptions(frame_stride=2, keyint=8, bframes=0)),
    ("S2 k16", PrepOptions(frame_stride=2, keyint=16, bframes=0)),
    ("S4 k4", PrepOptions(frame_stride=4, keyint=4, bframes=0)),
    ("S4 k8", PrepOptions(frame_stride=4, keyint=8, bframes=0)),
    ("short 256 k8", PrepOptions(short_side=256, keyint=8, bframes=0)),
]


def pink_noise(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 with a 1/f amplitude spectrum, the statistics of natural photographs."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(height, width))
    channels = []
    mix = rng.normal(size=(3, 3)) * 0.4 + np.eye(3)  # correlated colour channels, as in photos
    base = [np.fft.irfft2(amplitude * np.exp(2j * np.pi * rng.random(amplitude.shape)), s=(height, width))
            for _ in range(3)]
    for c in range(3):
        channels.append(sum(mix[c, k] * base[k] for k in range(3)))
    image = np.stack(channels, axis=-1)
    image = (image - image.mean()) / image.std()
    return np.clip(128 + 48 * image, 0, 255).astype(np.uint8)


def write_source(path: Path, width: int, height: int, seed: int, seconds: int = 10, fps: int = 30) -> None:
    """A camera-like source: libx264 defaults (CRF 23, preset medium, keyint 250)."""
    rng = np.random.default_rng(seed)
    scene = pink_noise(2 * height, 2 * width, rng)
    sprite_texture = pink_noise(height // 3, height // 3, rng)
    yy, xx = np.mgrid[0 : height // 3, 0 : height // 3]
    r = height // 6
    disc = (yy - r) ** 2 + (xx - r) ** 2 < r * r
    sprites = [(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-6, 6), rng.uniform(-4, 4))
               for _ in range(3)]
    noise = rng.normal(0, 2.0, size=(31, height, width, 3)).astype(np.int16)  # a prime-length bank of grain
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(seconds * fps):
            zoom = 1.0 + 0.4 * (0.5 + 0.5 * np.sin(t / 90.0))  # window = zoom x frame size
            cw, ch = int(width * zoom), int(height * zoom)
            x0 = int((scene.shape[1] - cw) * (0.5 + 0.5 * np.sin(t / 70.0)))
            y0 = int((scene.shape[0] - ch) * (0.5 + 0.5 * np.cos(t / 110.0)))
            crop = np.ascontiguousarray(scene[y0 : y0 + ch, x0 : x0 + cw])
            view = av.VideoFrame.from_ndarray(crop, format="rgb24").reformat(width, height, interpolation="BILINEAR")
            image = view.to_ndarray().astype(np.int16)
            for x, y, vx, vy in sprites:
                px, py = int(x + vx * t) % (width - 2 * r), int(y + vy * t) % (height - 2 * r)
                region = image[py : py + 2 * r, px : px + 2 * r]
                region[disc] = sprite_texture[disc]
            image += noise[t % len(noise)]
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def clip_indices(num_frames: int, stride: int, clips: int, seed: int) -> list[np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    return [sample_frame_indices(16, stride, num_frames, generator) for _ in range(clips)]


def decode_seconds(path: Path, stride: int, clips: int, seed: int, resize: int | None) -> float:
    """Seconds per clip of `read_video` on training indices at `stride` stored frames."""
    indices = clip_indices(probe_video(path).num_frames, stride, clips, seed)
    start = time.perf_counter()
    for chosen in indices:
        read_video(path, chosen, resize=resize)
    return (time.perf_counter() - start) / clips


def psnr(stored: Path, source: Path, frame_stride: int) -> float:
    """PSNR of 16 stored frames against the source frames they stand for, at the stored size."""
    info = probe_video(stored)
    chosen = np.linspace(0, info.num_frames - 1, 16).astype(np.int64)
    ours = read_video(stored, chosen).float()
    full = read_video(source, chosen * frame_stride).numpy()  # scaled as prep scales: area filter, exact size
    reference = torch.from_numpy(np.stack([
        av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(info.width, info.height, interpolation="AREA")
        .to_ndarray() for frame in full])).float()
    mse = float(((ours - reference) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4, help="random clips per video, format and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every format (median taken)")
    parser.add_argument("--sizes", default="1280x720,640x360", help="source sizes WxH, comma separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core: decode and prep per core
    print(f"device: {cpu_name()}, {os.cpu_count()} cores, pinned to one; load average {os.getloadavg()[0]:.1f}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, av {av.__version__}, "
          f"libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}, numpy {np.__version__}")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for i, size in enumerate(args.sizes.split(",")):
            width, height = map(int, size.split("x"))
            path = Path(tmp) / f"source_{width}x{height}.mp4"
            start = time.perf_counter()
            write_source(path, width, height, seed=i)
            keys = sum(p.is_keyframe for p in av.open(str(path)).demux(video=0) if p.size)
            print(f"source {path.name}: {path.stat().st_size / 1e6:.2f} MB, {keys} keyframes in 300 frames, "
                  f"written in {time.perf_counter() - start:.1f} s")
            sources.append(path)
        source_mb = [p.stat().st_size / 1e6 for p in sources]

        # Prepare every format once: disk, quality, prep time. files[label] = [(stored, stride, resize), ...]
        files: dict[str, list[tuple[Path, int, int]]] = {"source": [(p, 4, 320) for p in sources]}
        stats: dict[str, dict] = {}
        for label, options in VARIANTS:
            files[label], stat = [], {"ratios": [], "psnr": [], "prep": []}
            for path in sources:
                out = Path(tmp) / f"{path.stem}_{label.replace(' ', '_')}.mp4"
                start = time.perf_counter()
                transcode(path, out, options, threads=1)
                stat["prep"].append(time.perf_counter() - start)
                stat["ratios"].append(out.stat().st_size / path.stat().st_size)
                stat["psnr"].append(psnr(out, path, options.frame_stride))
                info = probe_video(out)
                files[label].append((out, 4 // options.frame_stride, min(320, info.height, info.width)))
            stats[label] = stat
            print(f"  prepared {label}: disk {' / '.join(f'{r:.2f}x' for r in stat['ratios'])}, "
                  f"{np.mean(stat['psnr']):.1f} dB, {np.mean(stat['prep']):.1f} s", flush=True)

        # Decode speed: rounds over every format in a shuffled order, new random clips each round,
        # so a change in the shared machine's load hits every format alike; the median round counts.
        per_clip: dict[str, list[float]] = {label: [] for label in files}
        order = list(files)
        for round_index in range(args.rounds):
            random.Random(round_index).shuffle(order)
            for label in order:
                per_clip[label].append(float(np.mean([decode_seconds(path, stride, args.clips, round_index, resize)
                                                      for path, stride, resize in files[label]])))
            print(f"  decode round {round_index + 1} of {args.rounds} done", flush=True)

    rate = {label: 1.0 / float(np.median(seconds)) for label, seconds in per_clip.items()}
    names = " / ".join(p.stem.removeprefix("source_") for p in sources)
    print(f"\nsources: {', '.join(f'{p.name} {mb:.2f} MB' for p, mb in zip(sources, source_mb))}; "
          f"{args.clips} clips x {len(sources)} videos x {args.rounds} rounds per format; "
          f"total {time.perf_counter() - began:.0f} s\n")
    print(f"| format | frame stride | keyint | B-frames | short side | preset | disk vs source ({names}) "
          f"| decode clips/s, 1 core | vs source | PSNR dB | prep s per 10 s video, 1 core |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| source (H.264 as written by cameras) | 1 | 250 | 3 | {names} | medium | 1.00x / 1.00x "
          f"| {rate['source']:.1f} | 1.0x | - | - |")
    for label, options in VARIANTS:
        stat = stats[label]
        print(f"| {label} | {options.frame_stride} | {options.keyint} | {options.bframes} | {options.short_side} "
              f"| {options.preset} | {' / '.join(f'{r:.2f}x' for r in stat['ratios'])} | {rate[label]:.1f} "
              f"| {rate[label] / rate['source']:.1f}x | {np.mean(stat['psnr']):.1f} | {np.mean(stat['prep']):.1f} |")


if __name__ == "__main__":
    main()
