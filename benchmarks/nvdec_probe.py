"""Probe PyNvVideoCodec on the GPU machine: API, decoder reuse, threads, colour parity with PyAV.

Scratch measurements that chose the GPU decode design (see benchmarks/RESULTS.md).
Run: python benchmarks/nvdec_probe.py (needs a CUDA GPU, PyNvVideoCodec and PyAV).
"""
from __future__ import annotations

import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from videomae.video import read_video  # noqa: E402


def make_video(path: Path, width: int, height: int, seconds: float = 10.0, fps: int = 30, keyint: int | None = None,
               seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 255, (height // 8 + 40, width // 8 + 40, 3)).astype(np.float32)
    big = torch.nn.functional.interpolate(torch.from_numpy(big).permute(2, 0, 1)[None], scale_factor=8,
                                          mode="bicubic")[0].clamp(0, 255).byte().permute(1, 2, 0).numpy()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23"} | ({"g": str(keyint), "keyint_min": str(keyint)} if keyint else {})
        for i in range(int(seconds * fps)):
            dx, dy = int(160 + 100 * np.sin(i / 40)), int(160 + 100 * np.cos(i / 50))
            frame = big[dy % 300: dy % 300 + height, dx % 300: dx % 300 + width]
            if frame.shape[0] != height or frame.shape[1] != width:
                frame = np.ascontiguousarray(big[:height, :width])
            frame = frame.copy()
            frame[(i * 3) % height: (i * 3) % height + 40, 50:120] = [255, 30, 30]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def main() -> None:
    import PyNvVideoCodec as nvc

    print("PyNvVideoCodec", nvc.__version__, "torch", torch.__version__, torch.cuda.get_device_name())
    tmp = Path(tempfile.mkdtemp())
    files = []
    t0 = time.time()
    for i, (w, h, k) in enumerate([(426, 320, None), (568, 320, None), (320, 426, None), (568, 320, 16)] * 4):
        p = tmp / f"v{i}.mp4"
        make_video(p, w, h, keyint=k, seed=i)
        files.append(p)
    print(f"made {len(files)} videos in {time.time() - t0:.1f}s")

    # API shapes
    dec = nvc.SimpleDecoder(str(files[0]), gpu_id=0, use_device_memory=True,
                            output_color_type=nvc.OutputColorType.RGBP)
    meta = dec.get_stream_metadata()
    print("len", len(dec), "meta", {k: getattr(meta, k) for k in dir(meta) if not k.startswith("_")})
    frames = dec.get_batch_frames_by_index([0, 4, 8])
    f0 = frames[0]
    print("frame type", type(f0), [a for a in dir(f0) if not a.startswith("_")])
    t = torch.from_dlpack(f0)
    print("dlpack tensor", t.shape, t.dtype, t.device, "pts", getattr(f0, "timestamp", None))

    # parity with PyAV at native size
    idx = list(range(0, 64, 4))
    for color in ("RGBP", "RGB"):
        d = nvc.SimpleDecoder(str(files[1]), gpu_id=0, use_device_memory=True,
                              output_color_type=getattr(nvc.OutputColorType, color))
        g = torch.stack([torch.from_dlpack(f).clone() for f in d.get_batch_frames_by_index(idx)]).cpu()
        if color == "RGBP":
            g = g.permute(0, 2, 3, 1)
        c = read_video(files[1], idx)
        diff = (g.int() - c.int()).abs().float()
        print(color, "shape", tuple(g.shape), "diff mean", diff.mean().item(),
              "p99", diff.flatten().quantile(0.99).item(), "p99.9", np.percentile(diff.numpy(), 99.9),
              "max", diff.max().item())

    # decoder creation vs reconfigure
    t0 = time.perf_counter()
    for f in files[:8]:
        d = nvc.SimpleDecoder(str(f), gpu_id=0, use_device_memory=True, output_color_type=nvc.OutputColorType.RGBP)
        d.get_batch_frames_by_index(list(range(100, 164, 4)))
    torch.cuda.synchronize()
    print(f"new decoder per file: {(time.perf_counter() - t0) / 8 * 1000:.1f} ms/clip")
    d = nvc.SimpleDecoder(str(files[0]), gpu_id=0, use_device_memory=True, output_color_type=nvc.OutputColorType.RGBP)
    t0 = time.perf_counter()
    for f in files[:8]:
        d.reconfigure_decoder(str(f))
        d.get_batch_frames_by_index(list(range(100, 164, 4)))
    torch.cuda.synchronize()
    print(f"reconfigure per file: {(time.perf_counter() - t0) / 8 * 1000:.1f} ms/clip")

    rng = np.random.default_rng(0)

    def worker(n: int, out: list) -> None:
        d = nvc.SimpleDecoder(str(files[0]), gpu_id=0, use_device_memory=True,
                              output_color_type=nvc.OutputColorType.RGBP)
        for _ in range(n):
            f = files[int(rng.integers(len(files)))]
            d.reconfigure_decoder(str(f))
            s = int(rng.integers(0, 300 - 64))
            fr = d.get_batch_frames_by_index(list(range(s, s + 64, 4)))
            out.append(torch.stack([torch.from_dlpack(x) for x in fr]).sum().item() * 0)

    for threads in (1, 4, 8, 16, 32):
        out: list = []
        n = 24 if threads <= 4 else 12
        t0 = time.perf_counter()
        ts = [threading.Thread(target=worker, args=(n, out)) for _ in range(threads)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        dt = time.perf_counter() - t0
        print(f"threads {threads}: {len(out) / dt:.1f} clips/s (reconfigure, random starts)")

    # sequential whole-file decode rate (NVDEC ceiling for this content)
    def whole(path: Path) -> int:
        d = nvc.SimpleDecoder(str(path), gpu_id=0, use_device_memory=True, output_color_type=nvc.OutputColorType.NATIVE)
        count, total = 0, len(d)
        while count < total:
            b = d.get_batch_frames(min(64, total - count))
            if not b:
                break
            count += len(b)
        return count

    for threads in (1, 8, 16):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            counts = list(pool.map(whole, files))
        dt = time.perf_counter() - t0
        print(f"whole files, {threads} threads: {sum(counts) / dt:.0f} frames/s")
    # CPU reference on one core
    t0 = time.perf_counter()
    for f in files[:4]:
        s = int(rng.integers(0, 300 - 64))
        read_video(f, list(range(s, s + 64, 4)))
    print(f"PyAV one core: {(time.perf_counter() - t0) / 4 * 1000:.1f} ms/clip")


if __name__ == "__main__":
    main()
