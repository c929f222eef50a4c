"""A Kinetics-like data set for the data-path benchmark, made offline and deterministically.

Each video: about 10 s at 30 fps, short side 320, aspect 4:3, 16:9, 3:2 or (a few) portrait 9:16;
content with natural-image statistics (colour 1/f noise: amplitude falling as 1/frequency, as
in photographs), a camera that pans and shakes over a larger scene, textured objects that move
across it, a slow change of light, and sensor noise; encoded with libx264's defaults (CRF 23,
B-frames, keyframe interval 250). A few files carry an AAC audio track, a few have a variable
frame rate (jittered timestamps).

    python benchmarks/pipeline_data.py OUT_DIR [--count 512] [--seconds 10] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ASPECTS = [(4, 3), (16, 9), (4, 3), (16, 9), (3, 2), (4, 3), (16, 9), (4, 3), (16, 9), (3, 2), (4, 3), (9, 16)]


def pink_noise(height: int, width: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8 colour noise with a 1/f^exponent amplitude spectrum, channels correlated as
    in photographs (a strong luminance field plus weaker colour fields)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    amplitude = 1.0 / radius**exponent
    amplitude[0, 0] = 0.0
    fields = []
    for _ in range(3):
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
        field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width))
        fields.append(field / (field.std() + 1e-9))
    luma, c1, c2 = fields
    rgb = np.stack([luma + 0.35 * c1, luma - 0.2 * c1 + 0.2 * c2, luma - 0.35 * c2], axis=-1)
    base = rng.uniform(90, 150, 3)
    return np.clip(base + 42 * rgb, 0, 255).astype(np.uint8)


def frame_size(index: int) -> tuple[int, int]:
    """(width, height) with the short side 320 and even sides."""
    a, b = ASPECTS[index % len(ASPECTS)]
    if a >= b:
        return (round(320 * a / b / 2) * 2, 320)
    return (320, round(320 * b / a / 2) * 2)


def make_video(path: Path, index: int, seconds: float = 10.0, fps: int = 30, seed: int = 0,
               size: tuple[int, int] | None = None) -> dict:
    """One video; `size` (width, height) overrides the data set's `frame_size(index)`."""
    rng = np.random.default_rng([seed, index])
    width, height = size or frame_size(index)
    margin = 96
    scene = pink_noise(height + 2 * margin, width + 2 * margin, rng).astype(np.int16)
    noise_bank = rng.normal(0, 2.5, (6, height, width, 3)).astype(np.int16)
    sprites = []
    for _ in range(int(rng.integers(2, 5))):
        r = int(rng.integers(30, 90))
        yy, xx = np.mgrid[-r:r, -r:r]
        alpha = np.clip(1.5 - np.sqrt((yy / r) ** 2 + (xx / (r * rng.uniform(0.6, 1.0))) ** 2) * 1.5, 0, 1)[..., None]
        texture = pink_noise(2 * r, 2 * r, rng, exponent=0.8).astype(np.float32) * rng.uniform(0.6, 1.3, 3)
        sprites.append({"alpha": alpha.astype(np.float32), "texture": np.clip(texture, 0, 255),
                        "pos": rng.uniform([0, 0], [height, width]), "vel": rng.uniform(-4, 4, 2), "r": r})
    pan = rng.uniform(0.01, 0.04, 2)
    phase = rng.uniform(0, 2 * np.pi, 4)
    audio = index % 16 == 5
    variable = index % 16 == 11
    frames = int(seconds * fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23"}
        stream.codec_context.thread_count = 1
        if variable:
            stream.codec_context.time_base = Fraction(1, 90000)
        if audio:
            sound = out.add_stream("aac", rate=48000)
            sound.layout = "mono"
        t_pts = 0
        for i in range(frames):
            dy = int(margin + margin * 0.9 * np.sin(pan[0] * i * 2 * np.pi / 3 + phase[0]) + rng.integers(-2, 3))
            dx = int(margin + margin * 0.9 * np.sin(pan[1] * i * 2 * np.pi / 3 + phase[1]) + rng.integers(-2, 3))
            dy, dx = min(max(dy, 0), 2 * margin), min(max(dx, 0), 2 * margin)
            frame = scene[dy:dy + height, dx:dx + width].astype(np.float32)
            for sprite in sprites:
                sprite["pos"] += sprite["vel"]
                for axis, limit in ((0, height), (1, width)):
                    if not 0 <= sprite["pos"][axis] <= limit:
                        sprite["vel"][axis] *= -1
                r = sprite["r"]
                y0, x0 = int(sprite["pos"][0]) - r, int(sprite["pos"][1]) - r
                ys, xs = slice(max(y0, 0), min(y0 + 2 * r, height)), slice(max(x0, 0), min(x0 + 2 * r, width))
                sy, sx = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
                if ys.stop > ys.start and xs.stop > xs.start:
                    a = sprite["alpha"][sy, sx]
                    frame[ys, xs] = frame[ys, xs] * (1 - a) + sprite["texture"][sy, sx] * a
            light = 1.0 + 0.12 * np.sin(i / frames * 2 * np.pi + phase[2])
            pixels = np.clip(frame * light + noise_bank[i % len(noise_bank)], 0, 255).astype(np.uint8)
            video_frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if variable:
                video_frame.pts = t_pts
                video_frame.time_base = Fraction(1, 90000)
                t_pts += int(3000 * rng.uniform(0.6, 1.6))
            for packet in stream.encode(video_frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio:
            samples = int(seconds * 48000)
            t = np.arange(samples, dtype=np.float32) / 48000
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[:, start:start + 1024], format="fltp", layout="mono")
                chunk.sample_rate = 48000
                chunk.pts = start
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    size = path.stat().st_size
    return {"path": path.name, "width": width, "height": height, "frames": frames, "bytes": size,
            "bits_per_pixel": size * 8 / (width * height * frames), "audio": audio, "variable_rate": variable}


def _one(job: tuple[str, int, float, int]) -> dict:
    folder, index, seconds, seed = job
    path = Path(folder) / f"video_{index:04d}.mp4"
    return make_video(path, index, seconds, seed=seed)


def generate(out_dir: str | os.PathLike, count: int = 512, seconds: float = 10.0, workers: int | None = None,
             seed: int = 0) -> dict:
    """Write `count` videos to out_dir (skipping a complete earlier run) and return a summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "dataset.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if summary["count"] == count and summary["seconds"] == seconds and summary["seed"] == seed:
            return summary
    started = time.perf_counter()
    jobs = [(str(out), i, seconds, seed) for i in range(count)]
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        files = list(pool.map(_one, jobs, chunksize=4))
    pixels = sum(f["width"] * f["height"] * f["frames"] for f in files)
    total = sum(f["bytes"] for f in files)
    summary = {"count": count, "seconds": seconds, "seed": seed, "bytes": total,
               "bits_per_pixel": total * 8 / pixels, "min_bits_per_pixel": min(f["bits_per_pixel"] for f in files),
               "with_audio": sum(f["audio"] for f in files), "variable_rate": sum(f["variable_rate"] for f in files),
               "portrait": sum(f["height"] > f["width"] for f in files),
               "seconds_to_make": time.perf_counter() - started,
               "files": files}
    summary_path.write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    summary = generate(args.out_dir, args.count, args.seconds, args.workers)
    print(f"{summary['count']} videos, {summary['bytes'] / 1e6:.1f} MB, {summary['bits_per_pixel']:.3f} bit per pixel "
          f"per frame (min {summary['min_bits_per_pixel']:.3f}), {summary['with_audio']} with audio, "
          f"{summary['variable_rate']} variable frame rate, {summary['portrait']} portrait, made in "
          f"{summary['seconds_to_make']:.0f} s")


if __name__ == "__main__":
    main()
